"""Regime checks: are the trained networks where the paper's claim is about?

A claim about trained networks is judged only where the networks are in the regime the paper's
claim speaks of: trained to convergence, at least as good as the plain CNN where the paper's STNs
are, and (for the orientation claims) with an input-level ST that actually undoes the rotation.
Each check is data (a threshold and the models it reads), stated in words in the ledger, and a
failed one turns the verdict into "regime not reached" naming it; it is never "reproduced".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from stnlib import paper
from stnlib.claims.evidence import Evidence
from stnlib.nn import display_name

#: Convergence: the test error may still fall by at most this much (pp) over the last fifth of training.
CONVERGED_PP = {"mnist-rot": 0.5, "mnist-rot-adam": 0.5, "mnist-trans": 0.5, "svhn": 2.0}
#: Our errors must be within this factor of the paper's (Table 1; on real SVHN, Table 2).
PAPER_FACTOR = 3.0
#: An input-level ST canonicalises when its predicted angle has a Deming slope at or below this
#: against the applied one (−1 undoes every rotation; −0.6 undoes most of it).
CANONICAL_SLOPE = -0.6
#: SVHN: the models have left the "length prior" plateau when the CNN's sequence error is below this.
SVHN_PLATEAU_PCT = 20.0
#: Translation: an input-level ST localises the digit when |r| of its predicted shift reaches this.
LOCALISES_R = 0.9


@dataclass(frozen=True)
class RegimeResult:
    check: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class RegimeCheck:
    """One condition the records must meet before a claim is judged on them."""

    kind: str  # "converged", "beats_cnn", "near_paper", "canonicalises", "localises", "off_plateau"
    experiment: str
    models: tuple[str, ...]

    @property
    def needs(self) -> tuple[tuple[str, str], ...]:
        return tuple((self.experiment, m) for m in self.models)

    def describe(self) -> str:
        """The rule in words (the ledger prints it)."""
        exp, ms = self.experiment, ", ".join(display_name(m) for m in self.models)
        stns = ", ".join(display_name(m) for m in self.models if m != "cnn")
        return {
            "converged": f"{exp}: the test error of {ms} falls by less than {CONVERGED_PP[exp]:g} pp over the "
                         "last fifth of training (mean over seeds)",
            "beats_cnn": f"{exp}: every STN ({stns}) has a lower mean test error than the CNN, as in the paper",
            "near_paper": f"{exp}: the mean test errors of {ms} are within {PAPER_FACTOR:g}× the paper's",
            "canonicalises": f"{exp}: the input-level {ms} undoes the rotation (Deming slope of predicted "
                             f"against applied angle ≤ {CANONICAL_SLOPE:g}, mean over seeds)",
            "localises": f"{exp}: {ms} localises the digit (|r| of predicted against applied shift ≥ "
                         f"{LOCALISES_R:g})",
            "off_plateau": f"{exp}: the CNN's sequence error is below {SVHN_PLATEAU_PCT:g}% (off the "
                           "all-blank plateau)",
        }[self.kind]

    def evaluate(self, ev: Evidence) -> RegimeResult:
        fn = getattr(self, f"_{self.kind}")
        passed, detail = fn(ev)
        return RegimeResult(self.describe(), passed, detail)

    # ----- the checks

    def _converged(self, ev: Evidence) -> tuple[bool, str]:
        drops = {m: ev.estimate(self.experiment, m, "late_drop").mean for m in self.models}
        worst = max(drops, key=drops.get)
        ok = drops[worst] < CONVERGED_PP[self.experiment]
        return ok, (f"largest fall over the last fifth: {display_name(worst)} {drops[worst]:+.2f} pp "
                    f"({'<' if ok else '≥'} {CONVERGED_PP[self.experiment]:g})")

    def _beats_cnn(self, ev: Evidence) -> tuple[bool, str]:
        cnn = ev.estimate(self.experiment, "cnn", "error").mean
        worse = [m for m in self.models if m != "cnn" and ev.estimate(self.experiment, m, "error").mean >= cnn]
        if worse:
            return False, (f"CNN {cnn:.2f}%; not below it: " + ", ".join(
                f"{display_name(m)} {ev.estimate(self.experiment, m, 'error').mean:.2f}%" for m in worse))
        best = max(ev.estimate(self.experiment, m, "error").mean for m in self.models if m != "cnn")
        return True, f"CNN {cnn:.2f}%, every STN below it (highest {best:.2f}%)"

    def _near_paper(self, ev: Evidence) -> tuple[bool, str]:
        ratios = {}
        for m in self.models:
            p = paper.paper_error(self.experiment, m)
            if p is not None:
                ratios[m] = ev.estimate(self.experiment, m, "error").mean / p
        worst = max(ratios, key=ratios.get)
        ok = ratios[worst] <= PAPER_FACTOR
        return ok, f"largest ratio to the paper: {display_name(worst)} {ratios[worst]:.2f}×"

    def _canonicalises(self, ev: Evidence) -> tuple[bool, str]:
        parts, ok = [], True
        for m in self.models:
            slope = ev.estimate(self.experiment, m, "slope").mean
            ok = ok and slope <= CANONICAL_SLOPE
            parts.append(f"{display_name(m)} slope {slope:+.2f}")
        return ok, "; ".join(parts) + f" (needs ≤ {CANONICAL_SLOPE:g})"

    def _localises(self, ev: Evidence) -> tuple[bool, str]:
        parts, ok = [], True
        for m in self.models:
            r = ev.estimate(self.experiment, m, "abs_r").mean
            ok = ok and r >= LOCALISES_R
            parts.append(f"{display_name(m)} |r| {r:.2f}")
        return ok, "; ".join(parts) + f" (needs ≥ {LOCALISES_R:g})"

    def _off_plateau(self, ev: Evidence) -> tuple[bool, str]:
        cnn = ev.estimate(self.experiment, "cnn", "error").mean
        return cnn < SVHN_PLATEAU_PCT, f"CNN sequence error {cnn:.1f}%"


def mnist_regime(experiment: str, models: Sequence[str], *, orientation: bool = False) -> tuple[RegimeCheck, ...]:
    """The regime of an MNIST error or orientation claim on ``experiment``."""
    table1 = ("cnn", "stn-c0", "stn-c1", "stn-sl1")
    checks = [RegimeCheck("converged", experiment, tuple(dict.fromkeys(models))),
              RegimeCheck("beats_cnn", experiment, table1)]
    if experiment in paper.TABLE1_ERROR_PERCENT:
        checks.append(RegimeCheck("near_paper", experiment, table1))
    if orientation:
        checks.append(RegimeCheck("canonicalises", experiment, ("stn-c0",)))
    return tuple(checks)


def svhn_regime(models: Sequence[str]) -> tuple[RegimeCheck, ...]:
    """The regime of an SVHN depth claim: the CNN off the plateau, every compared model converged."""
    return (RegimeCheck("off_plateau", "svhn", ("cnn",)),
            RegimeCheck("converged", "svhn", tuple(dict.fromkeys(("cnn", *models)))))
