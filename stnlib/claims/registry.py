"""The paper's claims as data, and how a claim is judged in a profile.

Each :class:`Claim` holds the paper's statement (paraphrased, with the section, table or figure it
comes from), the paper's numbers (from :mod:`stnlib.paper`, the only place they are typed), the runs
whose records test it, the regime the records must be in, the rule in words, and the function that
applies the rule (:mod:`stnlib.claims.rules`, or :mod:`stnlib.claims.exact` for constructions).
Two claims are our own questions and are labelled so (``source == "added"``).

:meth:`Claim.evaluate` applies, in order: records present (else "not run"), the regime checks (else
"regime not reached", naming the failed check and showing the data anyway), the rule, and the seed
count (fewer than three seeds: at most "indicated").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stnlib import paper
from stnlib.claims import exact, rules
from stnlib.claims.evidence import Evidence
from stnlib.claims.regime import RegimeCheck, mnist_regime, svhn_regime
from stnlib.claims.stats import K_SIGMA, MIN_SEEDS
from stnlib.claims.verdicts import NOT_RUN, REGIME, Judgement, Verdict, with_seeds
from stnlib.nn import display_name

CHAPTERS: tuple[str, ...] = ("theory", "toy", "mnist", "svhn", "beyond")


@dataclass(frozen=True)
class Claim:
    """One claim of the paper (or one added question) and how the book decides it."""

    id: str
    chapter: str
    title: str
    statement: str
    reference: str
    paper: str
    rule: str
    judge: Callable[..., Judgement] = field(repr=False, compare=False)
    needs: tuple[tuple[str, str], ...] = ()
    regime: tuple[RegimeCheck, ...] = ()
    source: str = "paper"  # "paper" or "added" (our question, not the paper's)
    paper_values: dict[str, float] = field(default_factory=dict)

    @property
    def exact(self) -> bool:
        """A construction computed live (no records), reported apart from the trained results."""
        return not self.needs

    @property
    def experiments(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(e for e, _ in self.needs))

    def all_needs(self) -> tuple[tuple[str, str], ...]:
        """Every run the claim reads: its own and its regime checks'."""
        return tuple(dict.fromkeys(self.needs + tuple(n for c in self.regime for n in c.needs)))

    def evaluate(self, profile: str, *, records_root: str | Path | None = None,
                 evidence: Evidence | None = None) -> Verdict:
        """The verdict on this claim in ``profile`` (records read from ``records_root``; never trains)."""
        if self.exact:
            j = self.judge()
            return Verdict(self.id, profile, j.verdict, j.ours, j.evidence, values=j.values,
                           caveats=("an exact construction, computed live: the same in every profile",))
        ev = evidence or Evidence(profile, records_root)
        absent = [f"{e}/{m}" for e, m in self.all_needs() if not ev.records(e, m)]
        if absent:
            failed = [f"{e}/{m}" for e, m in self.all_needs() if ev.runs(e, m).failed]
            why = f"no complete {profile} record for {', '.join(absent)}"
            return Verdict(self.id, profile, NOT_RUN, "—", why + (f" (training failed: {', '.join(failed)})"
                                                                  if failed else ""))
        seeds = ev.n_seeds(self.all_needs())
        regime = tuple(check.evaluate(ev) for check in self.regime)
        j = self.judge(ev)
        caveats = tuple(ev.caveats(self.all_needs()))
        if seeds < MIN_SEEDS:
            caveats += (f"{seeds} seed{'s' if seeds != 1 else ''}: at most 'indicated' (needs {MIN_SEEDS})",)
        if any(not r.passed for r in regime):
            failed = "; ".join(f"{r.check} — {r.detail}" for r in regime if not r.passed)
            return Verdict(self.id, profile, REGIME, j.ours, f"regime not reached: {failed}. What the rule would "
                           f"say on these records: {j.verdict} ({j.evidence})", seeds, regime, caveats,
                           j.values, j.comparisons)
        return Verdict(self.id, profile, with_seeds(j.verdict, seeds), j.ours, j.evidence, seeds, regime,
                       caveats, j.values, j.comparisons)


def _t1(exp: str) -> dict[str, float]:
    return paper.TABLE1_ERROR_PERCENT[exp]


def _paper_errors(values: dict[str, float], models: tuple[str, ...]) -> str:
    return ", ".join(f"{display_name(m)} {values[m]:.2f}%" for m in models)


def _mnist_claims() -> tuple[Claim, ...]:
    rot, tra = _t1("mnist-rot"), _t1("mnist-trans")
    trio = ("stn-c0", "stn-c1", "stn-sl1")
    rot_needs = tuple(("mnist-rot", m) for m in trio)
    trans_needs = tuple(("mnist-trans", m) for m in trio)
    return (
        Claim(id="mnist-c1-worse", chapter="mnist",
              title="Under rotation, STN-C1 is worse than STN-C0 and STN-SL1",
              statement="The inability of STN-C1 to align the feature maps of rotated images costs accuracy: its "
                        "rotated-MNIST test error is higher than that of STN-C0 and STN-SL1.",
              reference="§2, Table 1, rotation column", paper=_paper_errors(rot, trio),
              paper_values={m: rot[m] for m in trio}, needs=rot_needs,
              regime=mnist_regime("mnist-rot", ("cnn", *rules.ROT_STNS)),
              rule=f"C1 − C0 > 0 and C1 − SL1 > 0 in rotated-MNIST test error, each beyond {K_SIGMA:g} standard "
                   "errors", judge=rules.c1_worse),
        Claim(id="mnist-gap-translation", chapter="mnist",
              title="The STN-C1 gap is smaller under translation than under rotation",
              statement="For translations STN-C1 does better, since a translation does not shift activity between "
                        "channels: its error gap to STN-C0 and STN-SL1 is smaller on translated MNIST.",
              reference="§2 text and Table 1",
              paper=f"C1 − C0: rotation {rot['stn-c1'] - rot['stn-c0']:+.2f} pp, translation "
                    f"{tra['stn-c1'] - tra['stn-c0']:+.2f} pp; C1 − SL1: rotation {rot['stn-c1'] - rot['stn-sl1']:+.2f}"
                    f" pp, translation {tra['stn-c1'] - tra['stn-sl1']:+.2f} pp",
              needs=rot_needs + trans_needs,
              regime=mnist_regime("mnist-rot", ("cnn", *rules.ROT_STNS))
              + mnist_regime("mnist-trans", ("cnn", *rules.ROT_STNS))
              + (RegimeCheck("localises", "mnist-trans", ("stn-c0",)),),
              rule="first the rotation gap must hold (as in mnist-c1-worse); then (rotation gap − translation gap) "
                   f"> 0 against C0 and against SL1, each beyond {K_SIGMA:g} standard errors",
              judge=rules.gap_translation),
        Claim(id="mnist-c1-orientation", chapter="mnist",
              title="STN-C1 does not learn the orientation of rotated digits",
              statement="The rotation STN-C1 predicts does not follow the rotation applied to the digit, unlike "
                        "that of STN-C0 and STN-SL1.",
              reference="§2, Figures 2 and 3 (left)", paper="Figure 3: C1's predicted angle is flat (no numbers)",
              needs=rot_needs, regime=mnist_regime("mnist-rot", ("cnn", *rules.ROT_STNS), orientation=True),
              rule=f"C1's slope stays above {rules.FLAT_SLOPE:g} (it undoes less than a fifth of each rotation), and "
                   f"C0's and SL1's slopes are steeper than C1's, each beyond {K_SIGMA:g} standard errors",
              judge=rules.c1_orientation),
        Claim(id="mnist-sl1-orientation", chapter="mnist", title="STN-SL1 learns the orientation",
              statement="STN-SL1, which transforms the input using shared first-layer features, correctly predicts "
                        "the orientation of rotated digits.",
              reference="§2, Figure 3 (right)", paper="Figure 3: SL1's predicted angle follows the applied one",
              needs=(("mnist-rot", "stn-sl1"),),
              regime=mnist_regime("mnist-rot", ("cnn", *rules.ROT_STNS), orientation=True),
              rule=f"SL1's slope below the canonicalising {rules.CANONICAL_SLOPE:g} and its pooled per-class "
                   f"deviation below the {rules.NO_LEARNING_DEV_DEG:.1f}° of an ST that predicts nothing, each "
                   f"beyond {K_SIGMA:g} standard errors", judge=rules.sl1_orientation),
        Claim(id="mnist-optimizer", chapter="mnist", source="added",
              title="Whether STN-C1 learns the orientation does not depend on the optimiser (SGD or Adam)",
              statement="Not the paper's claim. The finding of the C1-orientation rule is the same with Adam as "
                        "with SGD, at the same schedule length.",
              reference="not in the paper (added question)", paper="not in the paper (added question)",
              needs=rot_needs + tuple(("mnist-rot-adam", m) for m in trio),
              regime=mnist_regime("mnist-rot", ("cnn", *rules.ROT_STNS), orientation=True)
              + (RegimeCheck("converged", "mnist-rot-adam", trio),
                 RegimeCheck("canonicalises", "mnist-rot-adam", ("stn-c0",))),
              rule="the mnist-c1-orientation rule under SGD and under Adam: the same finding → reproduced; "
                   "opposite findings → not reproduced; same direction, different strength → partly",
              judge=rules.optimizer),
    )


def _svhn_claims() -> tuple[Claim, ...]:
    t2 = paper.TABLE2_ERROR_PERCENT
    cx = ("stn-c0", *(f"stn-c{x}" for x in rules.SVHN_DEPTHS))
    slx = (*cx, *(f"stn-sl{x}" for x in rules.SVHN_DEPTHS))
    return (
        Claim(id="svhn-cx-depth", chapter="svhn", title="STN-CX does not improve with depth",
              statement="Transforming deeper feature maps does not help: a trade-off between deeper features and "
                        "the inability to align them.",
              reference="§2 text, Table 2, STN-CX column", paper=_paper_errors(t2, cx),
              paper_values={m: t2[m] for m in cx}, needs=tuple(("svhn", m) for m in cx), regime=svhn_regime(cx),
              rule=f"CX − C0 > 0 (worse) at X = 3, 6, 8, each beyond {K_SIGMA:g} standard errors; a CX better than "
                   "C0 fails the claim", judge=rules.svhn_cx),
        Claim(id="svhn-slx-depth", chapter="svhn", title="STN-SLX improves with depth",
              statement="Sharing the localisation layers with the classifier and transforming the input lets "
                        "STN-SLX take advantage of deeper features: its error falls as X grows.",
              reference="§2 text, Table 2, STN-SLX column",
              paper=_paper_errors(t2, ("stn-c0", *(f"stn-sl{x}" for x in rules.SVHN_DEPTHS))),
              paper_values={m: t2[m] for m in slx}, needs=tuple(("svhn", m) for m in slx), regime=svhn_regime(slx),
              rule=f"SL8 better than C0 and SLX better than CX at X = 3, 6, 8, each beyond {K_SIGMA:g} standard "
                   "errors; a step to a deeper X that gets worse beyond noise fails the claim",
              judge=rules.svhn_slx),
    )


def _build() -> tuple[Claim, ...]:
    exact_claims = (
        Claim(id="theory-rotation", chapter="theory",
              title="Undoing a rotation spatially does not align CNN feature maps",
              statement="Applying the inverse rotation to the feature maps of a rotated image does not, in general, "
                        "recover the feature maps of the original image: T⁻¹(ΓTf) ≠ Γf.",
              reference="§1, equation (1)", paper="equation (1); an argument, no numbers",
              rule=f"random MNIST conv1 on 64 test digits, exact quarter turns: every error ≥ {exact.MISALIGNED}, "
                   f"and C4-invariant filters (the exception the theory allows) ≤ {exact.ALIGNED_TOL:g}",
              judge=exact.theory_rotation),
        Claim(id="theory-translation", chapter="theory",
              title="Translations are the exception: the maps of a shifted image are shifted maps",
              statement="A translation does not move activity between channels, so shifting the feature maps back "
                        "aligns them with those of the original image (away from the borders).",
              reference="§2 text on STN-C1 and translations", paper="stated in the text; no numbers",
              rule=f"the same conv1, integer shifts: largest error ≤ {exact.ALIGNED_TOL:g}",
              judge=exact.theory_translation),
        Claim(id="toy-wm", chapter="toy",
              title="The W/M counterexample: no spatial warp aligns, rotation plus channel swap does",
              statement="With two channels detecting 'W' and 'M', a 180° rotation of a 'W' moves the activity into "
                        "the M channel; no purely spatial warp moves it back, a rotation plus a channel swap does.",
              reference="§1, Figure 1", paper="Figure 1 (a drawing, no numbers)",
              rule=f"best rotation and best affine warp ≥ {exact.MISALIGNED}; rotation + channel swap ≤ "
                   f"{exact.ALIGNED_TOL:g}", judge=exact.toy_counterexample),
    )
    beyond = Claim(
        id="beyond-ec1-orientation", chapter="beyond", source="added",
        title="An equivariant feature-map ST (STN-EC1) learns the orientation where STN-C1 does not",
        statement="Not the paper's claim. With C4-equivariant first-layer features, an ST that rotates the feature "
                  "maps and shifts the orientation channels learns the orientation better than STN-C1.",
        reference="not in the paper (added question, chapter Beyond the paper)",
        paper="not in the paper (added question)", needs=(("mnist-rot", "stn-c1"), ("mnist-rot", "stn-ec1")),
        regime=(RegimeCheck("converged", "mnist-rot", ("stn-c1", "stn-ec1")),
                RegimeCheck("canonicalises", "mnist-rot", ("stn-c0",))),
        rule=f"EC1's slope steeper and its |r| higher than C1's, each beyond {K_SIGMA:g} standard errors",
        judge=rules.ec1_orientation)
    return exact_claims + _mnist_claims() + _svhn_claims() + (beyond,)


#: Every claim the book tests, in book order.
CLAIMS: tuple[Claim, ...] = _build()
_BY_ID = {c.id: c for c in CLAIMS}


def get_claim(claim_id: str) -> Claim:
    """The claim called ``claim_id``; a ``ValueError`` lists the valid ids otherwise."""
    try:
        return _BY_ID[claim_id]
    except KeyError:
        raise ValueError(f"unknown claim {claim_id!r}; valid claims: {', '.join(_BY_ID)}") from None


def claims_for(chapter: str | None = None, *, exact: bool | None = None) -> tuple[Claim, ...]:
    """The claims of ``chapter`` (all for ``None``), optionally only the exact or only the empirical ones."""
    if chapter is not None and chapter not in CHAPTERS:
        raise ValueError(f"unknown chapter {chapter!r}; valid chapters: {', '.join(CHAPTERS)}")
    return tuple(c for c in CLAIMS if (chapter is None or c.chapter == chapter)
                 and (exact is None or c.exact == exact))


def evaluate(profile: str, *, chapter: str | None = None, records_root: str | Path | None = None,
             exact: bool | None = None) -> list[Verdict]:
    """The verdict on every claim (of ``chapter``) in ``profile``, from records only (never trains)."""
    ev = Evidence(profile, records_root)
    return [c.evaluate(profile, evidence=ev) for c in claims_for(chapter, exact=exact)]


def required_runs(profile: str, chapter: str | None = None) -> list[tuple[str, str, int]]:
    """Every (experiment, model, seed) whose record the ledger reads in ``profile``."""
    from stnlib.profiles import seeds_for

    needs = dict.fromkeys(n for c in claims_for(chapter) for n in c.all_needs())
    return [(e, m, s) for e, m in needs for s in seeds_for(profile, e, m)]


def values_of(verdicts: list[Verdict]) -> dict[str, dict[str, Any]]:
    """``{claim id: values}`` of a list of verdicts (the numbers each verdict used)."""
    return {v.claim_id: v.values for v in verdicts}
