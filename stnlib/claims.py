"""The paper's claims as data, each with a verdict computed from result records.

Every claim of Finnveden, Jansson & Lindeberg (2020) that the book tests is a :class:`Claim`: the
paper's statement (paraphrased, with the section, table or figure it comes from), the paper's numbers
(from :mod:`stnlib.paper`, the only place they are typed), the experiments and models whose records
test it, the decision rule in words, and a function that computes a :class:`Verdict` from the records.
Two claims are our own questions, not the paper's, and are labelled so (``source == "added"``).

The verdicts are computed, never written by hand:

* the theory and toy claims are exact statements about fixed feature extractors; they are computed
  live from :mod:`stnlib.toy` (a few seconds, no training, the same in every profile);
* the MNIST, SVHN and beyond-the-paper claims read result records only
  (:func:`stnlib.records.read_record`); this module never trains. A claim whose records are missing
  for a profile gets "not run in this profile"; a malformed record raises
  :class:`stnlib.records.RecordError`.

Entry points: :func:`evaluate` (a list of verdicts), :func:`ledger_table` (a pandas table: claim,
paper, ours, verdict, evidence), :func:`ledger_html`, :func:`conclusions_markdown` (prose generated from
the verdicts), :func:`cost_table` (wall time and device per experiment, from record provenance),
:func:`required_records` and :func:`check_records` (every record the ledger needs exists and is well
formed, complete and up to date).

The decision rule is :data:`DECISION_RULE`, appended below.
"""

from __future__ import annotations

import functools
import html
import math
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stnlib import paper, records
from stnlib.paths import benchmark_results_root
from stnlib.profiles import EXPERIMENTS, EXTENSION_MODELS, deviations_for, get_profile
from stnlib.train import build_config

# ---------------------------------------------------------------------------------------
# vocabulary and thresholds

REPRODUCED = "reproduced"
PARTLY = "partly reproduced"
NOT_REPRODUCED = "not reproduced"
INCONCLUSIVE = "inconclusive (within noise)"
NOT_RUN = "not run in this profile"
#: The note every live (theory/toy) verdict carries; informative, not a limitation.
LIVE_NOTE = "computed live from stnlib.toy: exact, no training, the same in every profile"
#: Every verdict a claim can get, in the order the ledger counts them.
VERDICTS: tuple[str, ...] = (REPRODUCED, PARTLY, NOT_REPRODUCED, INCONCLUSIVE, NOT_RUN)
#: Chapters the claims belong to, in book order.
CHAPTERS: tuple[str, ...] = ("theory", "toy", "mnist", "svhn", "beyond")

#: Outcomes of one comparison.
HOLDS, REVERSED, NOISE = "holds", "reversed", "within noise"

#: A difference is decided when it exceeds this many combined standard errors.
K_SIGMA = 2.0
#: One-seed noise floor of |r| (predicted vs applied angle), per model. An assumption, see the rule.
R_FLOOR = 0.05
#: One-seed noise floor of the pooled per-class deviation (degrees), per model (5% of the 52° spread).
DEV_FLOOR_DEG = 2.5
#: Pooled class deviation of an ST that predicts nothing: the spread of U(-90°, 90°), 90/√3 degrees.
NO_LEARNING_DEV_DEG = 90.0 / math.sqrt(3.0)
#: |r| at or above this counts as "learns the orientation" (absolute criterion of claim mnist-sl1-orientation).
R_LEARNED = 0.5
#: Exact (theory/toy) claims: a relative error at or below this is "aligned" (float32 rounding).
ALIGNED_TOL = 1e-5
#: Exact claims: a relative error at or above this is "clearly not aligned" (half the reference norm left).
MISALIGNED = 0.5

DECISION_RULE = f"""\
**Exact claims (theory, toy).** These are statements about fixed, hand-built or randomly initialised
feature extractors, computed live from `stnlib.toy` with exact quarter turns and integer shifts. A
relative feature-map error $\\lVert S\\,\\Gamma(Tf) - \\Gamma f\\rVert / \\lVert\\Gamma f\\rVert$ at or below
{ALIGNED_TOL:g} counts as *aligned* (float32 rounding); at or above {MISALIGNED} as *clearly not aligned*
(more than half of the reference left over). A claim is reproduced when every part lands on the side the
paper states, not reproduced when the key part lands on the other side, and partly reproduced in between.

**Claims tested by trained networks (MNIST, SVHN, beyond).** Each claim is broken into comparisons
(for example "STN-C1 has a higher rotated-MNIST error than STN-C0"). A comparison is a difference $d$,
signed so that $d > 0$ is the paper's direction, with a standard error $s$ combined from the models
involved ($s^2 = \\sum_i s_i^2$). It **holds** if $d > {K_SIGMA:g}\\,s$, is **reversed** if $d < -{K_SIGMA:g}\\,s$,
and is **within noise** otherwise. The standard error $s_i$ of one model's number:

* *several seeds* ($k \\ge 2$): the standard error of the seed mean, $\\max(\\mathrm{{sd}}, f)/\\sqrt{{k}}$,
  where sd is the standard deviation over seeds and $f$ the one-seed floor below (so a seed spread that is
  small by chance cannot make a difference look decided);
* *one seed*: seed noise cannot be measured, so the floor $f$ stands in for it and the verdict carries the
  caveat "one seed". For a test error $p$ on $N$ test examples,
  $f = \\max\\big(\\sqrt{{p(1-p)/N}},\\ \\text{{sd of the test passes}}\\big)$. The binomial standard error is the sampling noise of an error rate measured on
  $N$ examples; we *assume* that two trainings of the same network differ by about that much (they get
  different test examples wrong). On rotated MNIST the spread over the resampled test passes is used when
  it is larger. For the orientation statistics the sampling error over the test digits (10,000 in `quick`
  and `full`) is about 0.01 or less and is not the issue; the seed spread is unknown, and we assume
  $f = {R_FLOOR}$ for $|r|$ and $f = {DEV_FLOOR_DEG}°$ for the pooled per-class deviation (5% of the
  {NO_LEARNING_DEV_DEG:.0f}° spread of an ST that predicts nothing). These floors are assumptions, not
  measurements; the `full` profile (3 seeds) measures the spread instead.

The comparisons of a claim combine into a verdict: **reproduced** if all hold; **partly reproduced** if
some hold (and, for the SVHN depth claims, if the pattern is mixed, see each claim's rule); **not
reproduced** if none holds and at least one is reversed; **inconclusive (within noise)** if all are
within noise; **not run in this profile** if a record the claim needs does not exist for the profile (a
malformed record is an error, not a verdict). The orientation claims also use an absolute criterion
of *learning the orientation*: $|r| \\ge {R_LEARNED}$ between predicted and applied angle (halfway between no
relation and a perfect one) together with a pooled per-class deviation clearly below the
{NO_LEARNING_DEV_DEG:.0f}° of an ST that predicts nothing. It decides "STN-SL1 learns the orientation", and
turns "STN-C1 does not learn the orientation" into *not reproduced* when STN-C1 does not differ from
STN-C0 and STN-SL1 and learns the orientation itself. Verdicts in the `smoke` profile are code-path checks and mean nothing.
"""

__doc__ = (__doc__ or "") + "\nDecision rule\n-------------\n\n" + DECISION_RULE


# ---------------------------------------------------------------------------------------
# data types


@dataclass(frozen=True)
class Estimate:
    """One model's number over its seeds: the mean, its standard error and where the SE came from."""

    mean: float
    se: float
    values: tuple[float, ...]
    se_source: str  # "seeds" or "floor"

    @property
    def n_seeds(self) -> int:
        return len(self.values)


@dataclass(frozen=True)
class Comparison:
    """A signed difference (``diff > 0`` = the paper's direction), its standard error and outcome."""

    label: str
    diff: float
    se: float
    unit: str = ""

    @property
    def margin(self) -> float:
        """The decision margin ``K_SIGMA · se``."""
        return K_SIGMA * self.se

    @property
    def outcome(self) -> str:
        if self.diff > self.margin:
            return HOLDS
        if self.diff < -self.margin:
            return REVERSED
        return NOISE

    def describe(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        return f"{self.label}: {self.diff:+.2f}{unit} (margin ±{self.margin:.2f}) → {self.outcome}"


@dataclass(frozen=True)
class Verdict:
    """The verdict on one claim in one profile, with the numbers behind it.

    ``ours`` is a short summary of our numbers, ``evidence`` the comparisons that decided the verdict,
    ``values`` every number used (a flat dict), ``caveats`` what limits the verdict (one seed, profile
    deviations, the SVHN stand-in, stale records).
    """

    claim_id: str
    profile: str
    verdict: str
    ours: str
    evidence: str
    values: dict[str, Any] = field(default_factory=dict)
    caveats: tuple[str, ...] = ()
    comparisons: tuple[Comparison, ...] = ()

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"unknown verdict {self.verdict!r}; valid verdicts: {', '.join(VERDICTS)}")

    @property
    def claim(self) -> Claim:
        return get_claim(self.claim_id)


@dataclass(frozen=True)
class _Outcome:
    """What a claim's compute function returns; :meth:`Claim.evaluate` turns it into a Verdict."""

    verdict: str
    ours: str
    evidence: str
    values: dict[str, Any]
    comparisons: tuple[Comparison, ...] = ()
    caveats: tuple[str, ...] = ()


@dataclass(frozen=True)
class Claim:
    """One claim of the paper (or one added question) and how the book decides it.

    ``needs`` lists the (experiment, model) pairs whose records test the claim (empty for the claims
    computed live from :mod:`stnlib.toy`); every seed of the profile is read.
    """

    id: str
    chapter: str
    title: str
    statement: str
    reference: str
    paper: str
    paper_values: Mapping[str, float]
    needs: tuple[tuple[str, str], ...]
    rule: str
    compute: Callable[[_Context], _Outcome] = field(repr=False, compare=False)
    source: str = "paper"  # "paper" or "added" (our question, not the paper's)

    @property
    def experiments(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(e for e, _ in self.needs))

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(m for _, m in self.needs))

    @property
    def live(self) -> bool:
        """True for the exact claims computed from :mod:`stnlib.toy` instead of records."""
        return not self.needs

    def evaluate(self, profile: str, *, records_root: str | Path | None = None,
                 _ctx: _Context | None = None) -> Verdict:
        """The verdict on this claim in ``profile`` (records read from ``records_root``)."""
        ctx = _ctx or _Context(profile, records_root)
        if self.live:
            out = self.compute(ctx)
            caveats = (LIVE_NOTE, *out.caveats)
            return Verdict(self.id, profile, out.verdict, out.ours, out.evidence, out.values,
                           caveats, out.comparisons)
        missing, failed, partial = [], [], []
        for exp, model in self.needs:
            state = ctx.state(exp, model)
            if state["complete"]:
                if len(state["complete"]) < len(ctx.seeds):
                    partial.append(f"{exp}/{model}: {len(state['complete'])} of {len(ctx.seeds)} seeds")
                continue
            if state["failed"]:
                failed.append(f"{exp}/{model} (training failed: seed {', '.join(map(str, state['failed']))})")
            else:
                missing.append(f"{exp}/{model}")
        if missing or failed:
            parts = []
            if missing:
                parts.append(f"no {profile} record for {', '.join(missing)}")
            if failed:
                parts.append(", ".join(failed))
            return Verdict(self.id, profile, NOT_RUN, "—", "; ".join(parts),
                           {"missing": missing, "failed": failed})
        out = self.compute(ctx)
        caveats = list(out.caveats)
        caveats.extend(f"only {p}" for p in partial)
        caveats.extend(ctx.caveats(self.needs))
        return Verdict(self.id, profile, out.verdict, out.ours, out.evidence, out.values,
                       tuple(dict.fromkeys(caveats)), out.comparisons)


# ---------------------------------------------------------------------------------------
# reading records


def _label(model: str) -> str:
    return model.upper()


def _metric(rec: Mapping[str, Any], *keys: str) -> Any:
    """``rec["metrics"][k1][k2]...``; a missing entry is a malformed record (RecordError)."""
    value: Any = rec.get("metrics")
    for key in keys:
        if not isinstance(value, Mapping) or key not in value:
            where = f"{rec.get('experiment')}/{rec.get('model')} ({rec.get('profile')}, seed {rec.get('seed')})"
            raise records.RecordError(
                f"record {where} has no metrics.{'.'.join(keys)}; it is malformed or from an older "
                "stnlib: retrain it"
            )
        value = value[key]
    return value


def _expected_hash(experiment: str, model: str, profile: str, seed: int) -> str | None:
    """The config hash a fresh run would have now (None when the model is unknown to train.py)."""
    try:
        return records.config_hash(build_config(experiment, model, profile, seed))
    except ValueError:
        return None


def _read_checked(experiment: str, model: str, profile: str, seed: int,
                  root: str | Path | None) -> dict[str, Any] | None:
    """The record of one run, or None if there is none; identity mismatches raise RecordError."""
    path = records.record_path(experiment, model, profile, seed, root)
    if not path.exists():
        return None
    rec = records.read_record(path)
    found = (rec["experiment"], rec["model"], rec["profile"], rec["seed"])
    if found != (experiment, model, profile, seed):
        raise records.RecordError(
            f"{path}: the record is for {found[0]}/{found[1]} ({found[2]}, seed {found[3]}), not for "
            f"{experiment}/{model} ({profile}, seed {seed}); it was copied to the wrong place"
        )
    if rec["status"] == "complete":
        _metric(rec, "test_error")
    return rec


class _Context:
    """The records of one profile, read lazily and once; the numbers claims are computed from."""

    def __init__(self, profile: str, root: str | Path | None) -> None:
        self.profile = profile
        self.seeds = get_profile(profile).seeds
        self.root = root
        self._states: dict[tuple[str, str], dict[str, Any]] = {}

    def state(self, experiment: str, model: str) -> dict[str, Any]:
        key = (experiment, model)
        if key not in self._states:
            complete, failed, stale = [], [], []
            for seed in self.seeds:
                rec = _read_checked(experiment, model, self.profile, seed, self.root)
                if rec is None:
                    continue
                if rec["status"] != "complete":
                    failed.append(seed)
                    continue
                complete.append(rec)
                expected = _expected_hash(experiment, model, self.profile, seed)
                if expected is not None and rec["config_hash"] != expected:
                    stale.append(seed)
            self._states[key] = {"complete": complete, "failed": failed, "stale": stale}
        return self._states[key]

    def records(self, experiment: str, model: str) -> list[dict[str, Any]]:
        return self.state(experiment, model)["complete"]

    def error(self, experiment: str, model: str) -> Estimate:
        """Test error in percent (MNIST: mean over the test passes; SVHN: sequence error)."""
        recs = self.records(experiment, model)
        values = [100.0 * float(_metric(r, "test_error")) for r in recs]
        floors = [_error_floor(r) for r in recs]
        return _estimate(values, floors)

    def orientation(self, experiment: str, model: str, key: str) -> Estimate:
        """``abs_r``, ``r`` or ``pooled_class_deviation`` of the final orientation statistics."""
        recs = self.records(experiment, model)
        values = [float(_metric(r, "orientation", key)) for r in recs]
        floor = DEV_FLOOR_DEG if key == "pooled_class_deviation" else R_FLOOR
        return _estimate(values, [floor] * len(values))

    def data_source(self, experiment: str, model: str) -> str:
        srcs = {str(r["provenance"].get("data_source", "unknown")) for r in self.records(experiment, model)}
        return "; ".join(sorted(srcs))

    def caveats(self, needs: Sequence[tuple[str, str]]) -> list[str]:
        out = []
        if self.profile == "smoke":
            out.append("smoke profile: a few iterations on a subset, a code-path check; its numbers mean nothing")
        if len(self.seeds) == 1 or any(len(self.records(e, m)) == 1 for e, m in needs):
            out.append("one seed: seed noise not measured, the stated noise floor stands in for it")
        for exp in dict.fromkeys(e for e, _ in needs):
            devs = deviations_for(self.profile, exp)
            if devs and self.profile != "smoke":
                out.append(f"{self.profile} profile: {len(devs)} deviation(s) from the paper's protocol "
                           f"for {exp}")
        if any(e == "svhn" for e, _ in needs):
            srcs = {self.data_source(e, m) for e, m in needs if e == "svhn"}
            out.append("SVHN data: " + "; ".join(sorted(srcs)))
        stale = [f"{e}/{m}" for e, m in needs if self.state(e, m)["stale"]]
        if stale:
            out.append(f"stale record(s), config differs from the current {self.profile} profile: "
                       + ", ".join(stale))
        return out


def _error_floor(rec: Mapping[str, Any]) -> float:
    """One-seed noise floor of a test error, in percent: max(binomial SE, sd over test passes)."""
    p = float(_metric(rec, "test_error"))
    n = int(rec["metrics"].get("test_examples") or 0)
    if n <= 0:
        raise records.RecordError(
            f"record {rec.get('experiment')}/{rec.get('model')} has no positive metrics.test_examples"
        )
    pc = min(max(p, 1.0 / n), 1.0 - 1.0 / n)  # an error of exactly 0 still has sampling noise
    binomial = 100.0 * math.sqrt(pc * (1.0 - pc) / n)
    passes = [float(v) for v in rec["metrics"].get("test_error_passes") or ()]
    pass_sd = 100.0 * statistics.stdev(passes) if len(passes) >= 2 else 0.0
    return max(binomial, pass_sd)


def _estimate(values: Sequence[float], floors: Sequence[float]) -> Estimate:
    k = len(values)
    if k == 0:
        raise ValueError("no values to estimate from")
    mean = statistics.fmean(values)
    floor = statistics.fmean(floors)
    if k == 1:
        return Estimate(mean, floor, tuple(values), "floor")
    sd = statistics.stdev(values)
    return Estimate(mean, max(sd, floor) / math.sqrt(k), tuple(values),
                    "seeds" if sd >= floor else "floor")


def _diff(label: str, plus: Sequence[Estimate], minus: Sequence[Estimate], unit: str) -> Comparison:
    """``sum(plus) - sum(minus)`` with the combined standard error of all terms."""
    d = sum(e.mean for e in plus) - sum(e.mean for e in minus)
    se = math.sqrt(sum(e.se ** 2 for e in (*plus, *minus)))
    return Comparison(label, d, se, unit)


def combine(comparisons: Sequence[Comparison]) -> str:
    """The generic rule: all hold → reproduced; some hold → partly; none hold and some reversed →
    not reproduced; all within noise → inconclusive."""
    outcomes = [c.outcome for c in comparisons]
    if not outcomes:
        raise ValueError("a claim needs at least one comparison")
    if all(o == HOLDS for o in outcomes):
        return REPRODUCED
    if HOLDS in outcomes:
        return PARTLY
    if REVERSED in outcomes:
        return NOT_REPRODUCED
    return INCONCLUSIVE


def _evidence(comparisons: Sequence[Comparison]) -> str:
    return "; ".join(c.describe() for c in comparisons)


def _pct(e: Estimate) -> str:
    return f"{e.mean:.2f}%"


def _comparison_values(comparisons: Sequence[Comparison]) -> dict[str, Any]:
    return {f"{c.label} [diff]": c.diff for c in comparisons} | {
        f"{c.label} [se]": c.se for c in comparisons} | {
        f"{c.label} [outcome]": c.outcome for c in comparisons}


def _estimate_values(prefix: str, e: Estimate) -> dict[str, Any]:
    return {prefix: e.mean, f"{prefix} se": e.se, f"{prefix} seeds": e.n_seeds, f"{prefix} se from": e.se_source}


# ---------------------------------------------------------------------------------------
# theory and toy: exact, computed live


@functools.lru_cache(maxsize=1)
def _toy_wm() -> dict[str, float]:
    from stnlib import toy

    # A 15° grid includes every quarter turn (exact); the affine fit starts at the true inverse.
    wm = toy.wm_counterexample(angles=range(0, 360, 15), affine_steps=60)
    return {"back_rotated": wm.back_rotated_error, "best_rotation": wm.rotation.best_error,
            "best_affine": wm.affine.best_error, "lower_bound": wm.lower_bound,
            "swap": wm.swap_error}


@functools.lru_cache(maxsize=1)
def _first_layer() -> dict[str, Any]:
    """Misalignment of a random MNIST conv1 for exact quarter turns and integer shifts."""
    from stnlib import toy

    images = toy.mnist_test_images(64)
    conv = toy.random_first_layer(0)
    norm = toy.MNIST_NORMALIZATION
    angles = (90.0, 180.0, 270.0)
    shifts = ((3, 0), (0, -2), (5, 5), (-4, 3))
    rot = toy.rotation_misalignment_curve(conv, images, angles, normalization=norm)
    inv = toy.rotation_misalignment_curve(toy.c4_symmetrized(conv), images, angles, normalization=norm)
    tr = toy.translation_misalignment_curve(conv, images, shifts, normalization=norm)
    return {"n_images": int(images.shape[0]), "angles": angles, "shifts": shifts,
            "rotation": [float(v) for v in rot], "invariant": [float(v) for v in inv],
            "translation": [float(v) for v in tr]}


def _exact_verdict(key_good: bool, key_bad: bool, others_good: bool) -> str:
    if key_good and others_good:
        return REPRODUCED
    if key_bad:
        return NOT_REPRODUCED
    return PARTLY


def _theory_rotation(ctx: _Context) -> _Outcome:
    try:
        r = _first_layer()
    except FileNotFoundError as e:
        return _Outcome(NOT_RUN, "—", f"MNIST test digits not available: {e}", {})
    worst_aligned = min(r["rotation"])
    control = max(r["invariant"])
    verdict = _exact_verdict(worst_aligned >= MISALIGNED, worst_aligned <= ALIGNED_TOL,
                             control <= ALIGNED_TOL)
    per_angle = ", ".join(f"{a:.0f}°: {v:.2f}" for a, v in zip(r["angles"], r["rotation"]))
    ours = (f"random conv1 on {r['n_images']} MNIST digits, error after undoing the rotation spatially: "
            f"{per_angle}; C4-invariant filters: {control:.1e}")
    evidence = (f"smallest error over exact quarter turns {worst_aligned:.2f} "
                f"({'≥' if worst_aligned >= MISALIGNED else '<'} {MISALIGNED}: "
                f"{'clearly not aligned' if worst_aligned >= MISALIGNED else 'not clearly misaligned'}); "
                f"control with C4-invariant filters {control:.1e} "
                f"({'≤' if control <= ALIGNED_TOL else '>'} {ALIGNED_TOL:g}: the measure reaches 0 when "
                "the theory says it should)")
    values = {f"rotation {a:.0f}°": v for a, v in zip(r["angles"], r["rotation"])}
    values |= {f"C4-invariant {a:.0f}°": v for a, v in zip(r["angles"], r["invariant"])}
    return _Outcome(verdict, ours, evidence, values)


def _theory_translation(ctx: _Context) -> _Outcome:
    try:
        r = _first_layer()
    except FileNotFoundError as e:
        return _Outcome(NOT_RUN, "—", f"MNIST test digits not available: {e}", {})
    worst = max(r["translation"])
    verdict = _exact_verdict(worst <= ALIGNED_TOL, worst >= MISALIGNED, True)
    shifts = ", ".join(f"({dx},{dy})" for dx, dy in r["shifts"])
    ours = (f"random conv1 on {r['n_images']} MNIST digits, integer shifts {shifts} px: largest error "
            f"after shifting the feature maps back {worst:.1e}")
    evidence = (f"largest error {worst:.1e} {'≤' if worst <= ALIGNED_TOL else '>'} {ALIGNED_TOL:g} "
                f"({'aligned' if worst <= ALIGNED_TOL else 'not aligned'} away from the borders)")
    values = {f"shift {s}": v for s, v in zip(r["shifts"], r["translation"])}
    return _Outcome(verdict, ours, evidence, values)


def _toy_counterexample(ctx: _Context) -> _Outcome:
    r = _toy_wm()
    best_spatial = min(r["best_rotation"], r["best_affine"])
    verdict = _exact_verdict(best_spatial >= MISALIGNED, best_spatial <= ALIGNED_TOL,
                             r["swap"] <= ALIGNED_TOL)
    ours = (f"W/M detector, 180° rotation: inverse rotation {r['back_rotated']:.3f}, best rotation "
            f"{r['best_rotation']:.3f}, best affine warp {r['best_affine']:.3f} (bound for any spatial "
            f"warp {r['lower_bound']:.3f}); rotation + channel swap {r['swap']:.1e}")
    evidence = (f"best spatial warp {best_spatial:.3f} "
                f"{'≥' if best_spatial >= MISALIGNED else '<'} {MISALIGNED}; rotation + channel swap "
                f"{r['swap']:.1e} {'≤' if r['swap'] <= ALIGNED_TOL else '>'} {ALIGNED_TOL:g}")
    return _Outcome(verdict, ours, evidence, dict(r))


# ---------------------------------------------------------------------------------------
# MNIST


def _mnist_c1_worse(ctx: _Context) -> _Outcome:
    e = {m: ctx.error("mnist-rot", m) for m in ("stn-c0", "stn-c1", "stn-sl1")}
    comps = (
        _diff("STN-C1 − STN-C0", [e["stn-c1"]], [e["stn-c0"]], "pp"),
        _diff("STN-C1 − STN-SL1", [e["stn-c1"]], [e["stn-sl1"]], "pp"),
    )
    ours = ", ".join(f"{_label(m)} {_pct(v)}" for m, v in e.items())
    values = {k: v for m, est in e.items() for k, v in _estimate_values(f"{m} error %", est).items()}
    return _Outcome(combine(comps), ours, _evidence(comps), values | _comparison_values(comps), comps)


def _mnist_gap(ctx: _Context) -> _Outcome:
    e = {(x, m): ctx.error(x, m) for x in ("mnist-rot", "mnist-trans") for m in ("stn-c0", "stn-c1", "stn-sl1")}
    comps = tuple(
        _diff(f"(C1 − {ref.upper()[4:]}) rotation − translation",
              [e["mnist-rot", "stn-c1"], e["mnist-trans", ref]],
              [e["mnist-rot", ref], e["mnist-trans", "stn-c1"]], "pp")
        for ref in ("stn-c0", "stn-sl1")
    )
    gaps = {f"{x} C1 − {ref.upper()[4:]}": e[x, "stn-c1"].mean - e[x, ref].mean
            for x in ("mnist-rot", "mnist-trans") for ref in ("stn-c0", "stn-sl1")}
    ours = (f"C1 − C0: rotation {gaps['mnist-rot C1 − C0']:+.2f} pp, translation "
            f"{gaps['mnist-trans C1 − C0']:+.2f} pp; C1 − SL1: rotation {gaps['mnist-rot C1 − SL1']:+.2f} pp, "
            f"translation {gaps['mnist-trans C1 − SL1']:+.2f} pp")
    values = dict(gaps) | {f"{x} {m} error %": v.mean for (x, m), v in e.items()}
    return _Outcome(combine(comps), ours, _evidence(comps), values | _comparison_values(comps), comps)


def _learns(ctx: _Context, experiment: str, model: str) -> tuple[bool, str]:
    """The absolute criterion: |r| ≥ R_LEARNED and a pooled deviation clearly below no learning."""
    r = ctx.orientation(experiment, model, "abs_r")
    dev = ctx.orientation(experiment, model, "pooled_class_deviation")
    below = NO_LEARNING_DEV_DEG - dev.mean > K_SIGMA * dev.se
    ok = r.mean >= R_LEARNED and below
    return ok, (f"{_label(model)} {'learns' if ok else 'does not clearly learn'} the orientation "
                f"(|r| {r.mean:.2f} {'≥' if r.mean >= R_LEARNED else '<'} {R_LEARNED}, deviation "
                f"{dev.mean:.1f}° {'clearly below' if below else 'not clearly below'} "
                f"{NO_LEARNING_DEV_DEG:.1f}°)")


def _c1_orientation(ctx: _Context, experiment: str) -> _Outcome:
    """The rule of mnist-c1-orientation applied to one experiment (SGD or Adam)."""
    r = {m: ctx.orientation(experiment, m, "abs_r") for m in ("stn-c0", "stn-c1", "stn-sl1")}
    d = {m: ctx.orientation(experiment, m, "pooled_class_deviation") for m in ("stn-c0", "stn-c1", "stn-sl1")}
    comps = (
        _diff("|r| C0 − C1", [r["stn-c0"]], [r["stn-c1"]], ""),
        _diff("|r| SL1 − C1", [r["stn-sl1"]], [r["stn-c1"]], ""),
        _diff("deviation C1 − C0", [d["stn-c1"]], [d["stn-c0"]], "°"),
        _diff("deviation C1 − SL1", [d["stn-c1"]], [d["stn-sl1"]], "°"),
    )
    verdict = combine(comps)
    evidence = _evidence(comps)
    c1_learns, c1_text = _learns(ctx, experiment, "stn-c1")
    if verdict == INCONCLUSIVE and c1_learns:
        # No difference to C0 and SL1, and C1 itself learns the orientation: the claim fails.
        verdict = NOT_REPRODUCED
        evidence += f"; no difference, and {c1_text}"
    ours = "; ".join(f"{_label(m)} |r| {r[m].mean:.2f}, deviation {d[m].mean:.1f}°" for m in r)
    values = {f"{experiment} {m} |r|": r[m].mean for m in r} | {
        f"{experiment} {m} deviation °": d[m].mean for m in d} | _comparison_values(comps)
    values[f"{experiment} stn-c1 learns"] = c1_learns
    return _Outcome(verdict, ours, evidence, values, comps)


def _mnist_c1_orientation(ctx: _Context) -> _Outcome:
    return _c1_orientation(ctx, "mnist-rot")


def _mnist_sl1_orientation(ctx: _Context) -> _Outcome:
    r = ctx.orientation("mnist-rot", "stn-sl1", "abs_r")
    signed = ctx.orientation("mnist-rot", "stn-sl1", "r")
    dev = ctx.orientation("mnist-rot", "stn-sl1", "pooled_class_deviation")
    comps = (
        Comparison(f"|r| − {R_LEARNED}", r.mean - R_LEARNED, r.se),
        Comparison(f"no-learning deviation {NO_LEARNING_DEV_DEG:.1f}° − deviation", NO_LEARNING_DEV_DEG - dev.mean,
                   dev.se, "°"),
    )
    detectable = r.mean > K_SIGMA * r.se
    below = comps[1].outcome == HOLDS
    if _learns(ctx, "mnist-rot", "stn-sl1")[0]:
        verdict = REPRODUCED
    elif not detectable and not below:
        verdict = NOT_REPRODUCED
    else:
        verdict = PARTLY
    strength = ("strong (|r| ≥ {0})".format(R_LEARNED) if r.mean >= R_LEARNED
                else "weak but detectable" if detectable else "not detectable")
    ours = f"STN-SL1: r {signed.mean:+.2f} (|r| {r.mean:.2f}), pooled deviation {dev.mean:.1f}°"
    evidence = (f"correlation {strength} (detectable above {K_SIGMA * r.se:.2f}); pooled deviation "
                f"{dev.mean:.1f}° vs {NO_LEARNING_DEV_DEG:.1f}° for no learning → {comps[1].outcome}")
    caveats = ()
    if signed.mean > 0:
        caveats = ("r is positive: the predicted rotation grows with the applied one instead of undoing it",)
    values = {"stn-sl1 r": signed.mean, "stn-sl1 |r|": r.mean, "stn-sl1 |r| se": r.se,
              "stn-sl1 deviation °": dev.mean, "stn-sl1 deviation se": dev.se} | _comparison_values(comps)
    return _Outcome(verdict, ours, evidence, values, comps, caveats)


def _finding(verdict: str) -> str | None:
    """What a verdict of the C1-orientation claim says: C1 fails to learn, learns, or undecided."""
    if verdict in (REPRODUCED, PARTLY):
        return "fails"
    if verdict == NOT_REPRODUCED:
        return "learns"
    return None


def _mnist_optimizer(ctx: _Context) -> _Outcome:
    per = {}
    values: dict[str, Any] = {}
    for exp, name in (("mnist-rot", "SGD"), ("mnist-rot-adam", "Adam")):
        out = _c1_orientation(ctx, exp)
        per[name] = out
        values |= out.values
        values[f"{exp} verdict of mnist-c1-orientation"] = out.verdict
    c1 = {name: ctx.orientation(exp, "stn-c1", "abs_r")
          for exp, name in (("mnist-rot", "SGD"), ("mnist-rot-adam", "Adam"))}
    shift = _diff("STN-C1 |r| SGD − Adam", [c1["SGD"]], [c1["Adam"]], "")
    f_sgd, f_adam = _finding(per["SGD"].verdict), _finding(per["Adam"].verdict)
    if f_sgd is None or f_adam is None:
        verdict = INCONCLUSIVE
    elif f_sgd != f_adam:
        verdict = NOT_REPRODUCED
    elif per["SGD"].verdict == per["Adam"].verdict:
        verdict = REPRODUCED
    else:
        verdict = PARTLY
    ours = (f"SGD: C1 |r| {c1['SGD'].mean:.2f} → '{per['SGD'].verdict}'; Adam: C1 |r| {c1['Adam'].mean:.2f} "
            f"→ '{per['Adam'].verdict}'")
    evidence = (f"the C1-orientation rule under SGD: {per['SGD'].verdict} ({per['SGD'].evidence}); "
                f"under Adam: {per['Adam'].verdict} ({per['Adam'].evidence}); {shift.describe()}")
    values |= {"C1 |r| SGD": c1["SGD"].mean, "C1 |r| Adam": c1["Adam"].mean} | _comparison_values([shift])
    return _Outcome(verdict, ours, evidence, values, (shift,))


# ---------------------------------------------------------------------------------------
# SVHN

_DEPTHS = (3, 6, 8)


def _svhn_source_note(ctx: _Context) -> str:
    src = ctx.data_source("svhn", "stn-c0")
    return "synthetic stand-in" if "synthetic" in src.lower() else src


def _svhn_cx(ctx: _Context) -> _Outcome:
    c0 = ctx.error("svhn", "stn-c0")
    cx = {x: ctx.error("svhn", f"stn-c{x}") for x in _DEPTHS}
    comps = tuple(_diff(f"C{x} − C0", [cx[x]], [c0], "pp") for x in _DEPTHS)
    outcomes = [c.outcome for c in comps]
    worse, better = HOLDS in outcomes, REVERSED in outcomes
    if worse and not better:
        verdict = REPRODUCED
    elif worse and better:
        verdict = PARTLY
    elif better:
        verdict = NOT_REPRODUCED
    else:
        verdict = INCONCLUSIVE
    note = _svhn_source_note(ctx)
    ours = f"[{note}] C0 {_pct(c0)}, " + ", ".join(f"C{x} {_pct(cx[x])}" for x in _DEPTHS)
    evidence = f"data: {ctx.data_source('svhn', 'stn-c0')}; " + _evidence(comps)
    values = {"svhn C0 error %": c0.mean} | {f"svhn C{x} error %": cx[x].mean for x in _DEPTHS}
    values |= {"data source": ctx.data_source("svhn", "stn-c0")} | _comparison_values(comps)
    return _Outcome(verdict, ours, evidence, values, comps)


def _svhn_slx(ctx: _Context) -> _Outcome:
    c0 = ctx.error("svhn", "stn-c0")
    cx = {x: ctx.error("svhn", f"stn-c{x}") for x in _DEPTHS}
    sl = {x: ctx.error("svhn", f"stn-sl{x}") for x in _DEPTHS}
    beats = tuple(_diff(f"C{x} − SL{x}", [cx[x]], [sl[x]], "pp") for x in _DEPTHS)
    stays = tuple(_diff(f"C0 − SL{x}", [c0], [sl[x]], "pp") for x in _DEPTHS)
    b = [c.outcome for c in beats]
    s_reversed = any(c.outcome == REVERSED for c in stays)
    if all(o == HOLDS for o in b) and not s_reversed:
        verdict = REPRODUCED
    elif HOLDS not in b and (REVERSED in b or s_reversed):
        verdict = NOT_REPRODUCED
    elif HOLDS not in b:
        verdict = INCONCLUSIVE
    else:
        verdict = PARTLY
    note = _svhn_source_note(ctx)
    ours = f"[{note}] C0 {_pct(c0)}, " + ", ".join(f"SL{x} {_pct(sl[x])} (C{x} {_pct(cx[x])})" for x in _DEPTHS)
    evidence = (f"data: {ctx.data_source('svhn', 'stn-c0')}; SLX beats CX: {_evidence(beats)}; "
                f"SLX improves or stays (a reversal counts against): {_evidence(stays)}")
    values = {"svhn C0 error %": c0.mean} | {f"svhn SL{x} error %": sl[x].mean for x in _DEPTHS}
    values |= {f"svhn C{x} error %": cx[x].mean for x in _DEPTHS}
    values |= {"data source": ctx.data_source("svhn", "stn-c0")} | _comparison_values(beats + stays)
    return _Outcome(verdict, ours, evidence, values, beats + stays)


# ---------------------------------------------------------------------------------------
# beyond the paper


def _beyond_ec1(ctx: _Context) -> _Outcome:
    r = {m: ctx.orientation("mnist-rot", m, "abs_r") for m in ("stn-c1", "stn-ec1")}
    d = {m: ctx.orientation("mnist-rot", m, "pooled_class_deviation") for m in ("stn-c1", "stn-ec1")}
    comps = (
        _diff("|r| EC1 − C1", [r["stn-ec1"]], [r["stn-c1"]], ""),
        _diff("deviation C1 − EC1", [d["stn-c1"]], [d["stn-ec1"]], "°"),
    )
    e = {m: ctx.error("mnist-rot", m) for m in ("stn-c1", "stn-ec1")}
    ours = "; ".join(f"{_label(m)} |r| {r[m].mean:.2f}, deviation {d[m].mean:.1f}°, error {_pct(e[m])}"
                     for m in r)
    values = {f"{m} |r|": r[m].mean for m in r} | {f"{m} deviation °": d[m].mean for m in d}
    values |= {f"{m} error %": e[m].mean for m in e} | _comparison_values(comps)
    return _Outcome(combine(comps), ours, _evidence(comps), values, comps)


# ---------------------------------------------------------------------------------------
# the claims


def _t1(model: str, exp: str) -> float:
    return paper.TABLE1_ERROR_PERCENT[exp][model]


def _t2(model: str) -> float:
    return paper.TABLE2_ERROR_PERCENT[model]


def _build_claims() -> tuple[Claim, ...]:
    rot = {m: _t1(m, "mnist-rot") for m in ("stn-c0", "stn-c1", "stn-sl1")}
    tra = {m: _t1(m, "mnist-trans") for m in ("stn-c0", "stn-c1", "stn-sl1")}
    gap = {("rot", "C0"): rot["stn-c1"] - rot["stn-c0"], ("trans", "C0"): tra["stn-c1"] - tra["stn-c0"],
           ("rot", "SL1"): rot["stn-c1"] - rot["stn-sl1"], ("trans", "SL1"): tra["stn-c1"] - tra["stn-sl1"]}
    t2 = {m: _t2(m) for m in paper.TABLE2_ERROR_PERCENT}
    orient_needs = tuple(("mnist-rot", m) for m in ("stn-c0", "stn-c1", "stn-sl1"))
    return (
        Claim(
            id="theory-rotation", chapter="theory",
            title="Undoing a rotation spatially does not align CNN feature maps",
            statement="An ST that applies the inverse rotation to the feature maps of a rotated image does "
                      "not, in general, recover the feature maps of the original image: "
                      "T⁻¹(ΓTf) ≠ Γf.",
            reference="§1, equation (1)", paper="equation (1); an argument, no numbers", paper_values={},
            needs=(),
            rule=f"the random MNIST conv1 (seed 0) on 64 test digits, exact quarter turns: every error "
                 f"≥ {MISALIGNED} → reproduced if C4-invariant filters (the exception the theory allows) "
                 f"give ≤ {ALIGNED_TOL:g}; any error ≤ {ALIGNED_TOL:g} → not reproduced; else partly",
            compute=_theory_rotation,
        ),
        Claim(
            id="theory-translation", chapter="theory",
            title="Translations are the exception: feature maps of a shifted image are shifted maps",
            statement="A translation does not move activity between channels, so shifting the feature maps "
                      "back aligns them with those of the original image (away from the borders).",
            reference="§2 text on STN-C1 and translations",
            paper="stated in the text; no numbers", paper_values={}, needs=(),
            rule=f"the same random conv1, integer shifts: largest error ≤ {ALIGNED_TOL:g} → reproduced; "
                 f"≥ {MISALIGNED} → not reproduced; else partly",
            compute=_theory_translation,
        ),
        Claim(
            id="toy-wm", chapter="toy",
            title="The W/M counterexample: no spatial warp aligns, rotation plus channel swap does",
            statement="With two channels detecting 'W' and 'M', a 180° rotation of a 'W' moves the activity "
                      "into the M channel; a purely spatial warp cannot move it back, a rotation combined "
                      "with a channel swap can.",
            reference="§1, Figure 1", paper="Figure 1 (a drawing, no numbers)", paper_values={}, needs=(),
            rule=f"best rotation (15° grid with the exact quarter turns) and best affine warp ≥ {MISALIGNED}, "
                 f"and rotation + channel swap ≤ {ALIGNED_TOL:g} → reproduced; best spatial warp ≤ "
                 f"{ALIGNED_TOL:g} → not reproduced; else partly",
            compute=_toy_counterexample,
        ),
        Claim(
            id="mnist-c1-worse", chapter="mnist",
            title="Under rotation, STN-C1 is worse than STN-C0 and STN-SL1",
            statement="The inability of STN-C1 to align the feature maps of rotated images costs accuracy: "
                      "its rotated-MNIST test error is higher than that of STN-C0 and STN-SL1.",
            reference="§2, Table 1, rotation column",
            paper=f"rotation: STN-C1 {rot['stn-c1']:.2f}%, STN-C0 {rot['stn-c0']:.2f}%, "
                  f"STN-SL1 {rot['stn-sl1']:.2f}%",
            paper_values={f"{m} rotation %": v for m, v in rot.items()},
            needs=orient_needs,
            rule="two comparisons of rotated-MNIST test error, C1 − C0 > 0 and C1 − SL1 > 0, each decided "
                 f"beyond {K_SIGMA:g} combined standard errors; generic combination",
            compute=_mnist_c1_worse,
        ),
        Claim(
            id="mnist-gap-translation", chapter="mnist",
            title="The STN-C1 gap is smaller under translation than under rotation",
            statement="For translations STN-C1 does better, since a translation does not shift the feature "
                      "map's channel dimension: its error gap to STN-C0 and STN-SL1 is smaller on translated "
                      "MNIST than on rotated MNIST.",
            reference="§2 text and Table 1",
            paper=f"C1 − C0: rotation {gap['rot', 'C0']:+.2f} pp, translation {gap['trans', 'C0']:+.2f} pp; "
                  f"C1 − SL1: rotation {gap['rot', 'SL1']:+.2f} pp, translation {gap['trans', 'SL1']:+.2f} pp",
            paper_values={f"C1 − {r} {x} pp": v for (x, r), v in gap.items()},
            needs=orient_needs + tuple(("mnist-trans", m) for m in ("stn-c0", "stn-c1", "stn-sl1")),
            rule="difference of gaps (rotation gap − translation gap, in percentage points) against C0 and "
                 f"against SL1, each decided beyond {K_SIGMA:g} combined standard errors of the four "
                 "errors involved; generic combination",
            compute=_mnist_gap,
        ),
        Claim(
            id="mnist-c1-orientation", chapter="mnist",
            title="STN-C1 does not learn the orientation of rotated digits",
            statement="The rotation predicted by STN-C1 does not follow the rotation applied to the digit "
                      "(its ST does not put digits into a canonical pose), unlike STN-C0 and STN-SL1.",
            reference="§2, Figures 2 and 3, left panel",
            paper="Figure 3: C1's predicted angle is flat against the applied one (no numbers)",
            paper_values={}, needs=orient_needs,
            rule="four comparisons on the final orientation statistics of rotated MNIST: |r| of C1 below "
                 "that of C0 and of SL1, and C1's pooled per-class deviation above that of C0 and of SL1; "
                 f"each decided beyond {K_SIGMA:g} combined standard errors; generic combination, except "
                 f"that all-within-noise becomes 'not reproduced' when C1 itself learns the orientation "
                 f"(|r| ≥ {R_LEARNED} and a deviation clearly below the {NO_LEARNING_DEV_DEG:.1f}° of no "
                 "learning)",
            compute=_mnist_c1_orientation,
        ),
        Claim(
            id="mnist-sl1-orientation", chapter="mnist",
            title="STN-SL1 learns the orientation",
            statement="STN-SL1, which transforms the input using shared first-layer features, predicts the "
                      "orientation of rotated digits.",
            reference="§2, Figure 3, right panel",
            paper="Figure 3: SL1's predicted angle follows the applied one (no numbers)",
            paper_values={}, needs=(("mnist-rot", "stn-sl1"),),
            rule=f"|r| ≥ {R_LEARNED} and a pooled per-class deviation below the {NO_LEARNING_DEV_DEG:.1f}° of "
                 f"no learning (beyond {K_SIGMA:g} standard errors) → reproduced; |r| not above "
                 f"{K_SIGMA:g} standard errors and deviation not below → not reproduced; else partly",
            compute=_mnist_sl1_orientation,
        ),
        Claim(
            id="mnist-optimizer", chapter="mnist", source="added",
            title="Whether STN-C1 learns the orientation does not depend on the optimiser (SGD or Adam)",
            statement="Not the paper's claim. The verdict of mnist-c1-orientation is the same with Adam "
                      "(lr 1e-3) as with SGD.",
            reference="not in the paper (added question)",
            paper="not in the paper (added question)", paper_values={},
            needs=orient_needs + tuple(("mnist-rot-adam", m) for m in ("stn-c0", "stn-c1", "stn-sl1")),
            rule="apply the mnist-c1-orientation rule to mnist-rot (SGD) and to mnist-rot-adam: the same "
                 "verdict → reproduced (the finding does not depend on the optimiser); the same finding "
                 "with different strength → partly; opposite findings (C1 fails under one optimiser, learns "
                 "under the other) → not reproduced; undecided under either → inconclusive",
            compute=_mnist_optimizer,
        ),
        Claim(
            id="svhn-cx-depth", chapter="svhn",
            title="STN-CX does not improve with depth and can get worse",
            statement="Transforming deeper feature maps (STN-CX) does not help and can hurt: a trade-off "
                      "between deeper features and the inability to align them.",
            reference="§2 text, Table 2, STN-CX column",
            paper=", ".join(f"C{x} {t2[f'stn-c{x}']:.2f}%" for x in (0, *_DEPTHS)),
            paper_values={f"stn-c{x} %": t2[f"stn-c{x}"] for x in (0, *_DEPTHS)},
            needs=tuple(("svhn", f"stn-c{x}") for x in (0, *_DEPTHS)),
            rule="the error of CX − C0 for X = 3, 6, 8, each decided beyond "
                 f"{K_SIGMA:g} combined standard errors: some CX worse and none better → reproduced; some "
                 "worse and some better → partly; some better and none worse → not reproduced; all within "
                 "noise → inconclusive",
            compute=_svhn_cx,
        ),
        Claim(
            id="svhn-slx-depth", chapter="svhn",
            title="STN-SLX improves or stays with depth and beats STN-CX at X ≥ 3",
            statement="Sharing the localisation layers with the classifier and transforming the input "
                      "(STN-SLX) can take advantage of deeper features.",
            reference="§2 text, Table 2, STN-SLX column",
            paper="C0 {0:.2f}%, ".format(t2["stn-c0"]) + ", ".join(
                f"SL{x} {t2[f'stn-sl{x}']:.2f}% (C{x} {t2[f'stn-c{x}']:.2f}%)" for x in _DEPTHS),
            paper_values={f"stn-sl{x} %": t2[f"stn-sl{x}"] for x in _DEPTHS} | {"stn-c0 %": t2["stn-c0"]},
            needs=tuple(("svhn", f"stn-c{x}") for x in (0, *_DEPTHS))
            + tuple(("svhn", f"stn-sl{x}") for x in _DEPTHS),
            rule="CX − SLX for X = 3, 6, 8 (SLX better), and C0 − SLX (SLX not worse than C0), each decided "
                 f"beyond {K_SIGMA:g} combined standard errors: SLX better at every X and never worse than "
                 "C0 → reproduced; better at no X and worse somewhere → not reproduced; better at no X and "
                 "nothing reversed → inconclusive; else partly",
            compute=_svhn_slx,
        ),
        Claim(
            id="beyond-ec1-orientation", chapter="beyond", source="added",
            title="An equivariant feature-map ST (STN-EC1) learns the orientation where STN-C1 does not",
            statement="Not the paper's claim. With C4-equivariant first-layer features, an ST that rotates "
                      "the feature maps and shifts the orientation channels (STN-EC1) learns the orientation "
                      "of rotated digits better than STN-C1.",
            reference="not in the paper (added question, chapter Beyond the paper)",
            paper="not in the paper (added question)", paper_values={},
            needs=(("mnist-rot", "stn-c1"), ("mnist-rot", "stn-ec1")),
            rule="|r| of EC1 above that of C1, and EC1's pooled per-class deviation below C1's, each decided "
                 f"beyond {K_SIGMA:g} combined standard errors; generic combination",
            compute=_beyond_ec1,
        ),
    )


#: Every claim the book tests, in book order.
CLAIMS: tuple[Claim, ...] = _build_claims()
_BY_ID = {c.id: c for c in CLAIMS}


def get_claim(claim_id: str) -> Claim:
    """The claim called ``claim_id``; a ``ValueError`` lists the valid ids otherwise."""
    try:
        return _BY_ID[claim_id]
    except KeyError:
        raise ValueError(f"unknown claim {claim_id!r}; valid claims: {', '.join(_BY_ID)}") from None


def claims_for(chapter: str | None = None) -> tuple[Claim, ...]:
    """The claims of ``chapter`` (all claims for ``None``)."""
    if chapter is None:
        return CLAIMS
    if chapter not in CHAPTERS:
        raise ValueError(f"unknown chapter {chapter!r}; valid chapters: {', '.join(CHAPTERS)}")
    return tuple(c for c in CLAIMS if c.chapter == chapter)


# ---------------------------------------------------------------------------------------
# evaluation


def evaluate(profile: str, *, chapter: str | None = None,
             records_root: str | Path | None = None) -> list[Verdict]:
    """The verdict on every claim (of ``chapter``) in ``profile``, from records only (never trains).

    Missing records give "not run in this profile"; a malformed record raises
    :class:`stnlib.records.RecordError`.
    """
    get_profile(profile)
    ctx = _Context(profile, records_root)
    return [c.evaluate(profile, records_root=records_root, _ctx=ctx) for c in claims_for(chapter)]


def required_records(profile: str, chapter: str | None = None) -> list[tuple[str, str, int]]:
    """Every (experiment, model, seed) whose record the ledger reads in ``profile``."""
    seeds = get_profile(profile).seeds
    needs = dict.fromkeys(n for c in claims_for(chapter) for n in c.needs)
    return [(e, m, s) for e, m in needs for s in seeds]


def check_record(experiment: str, model: str, profile: str, seed: int, *,
                 records_root: str | Path | None = None, check_config: bool = True) -> Path:
    """Raise :class:`stnlib.records.RecordError` unless the record exists, is well formed, complete,
    carries the metrics the ledger reads and (``check_config``) matches the current profile's config."""
    path = records.record_path(experiment, model, profile, seed, records_root)
    if not path.exists():
        raise records.RecordError(
            f"{path}: missing; the claims ledger needs it. Train it with `python -m stnlib train "
            f"{experiment} {model} --profile {profile} --seed {seed}`"
        )
    rec = _read_checked(experiment, model, profile, seed, records_root)
    assert rec is not None
    if rec["status"] != "complete":
        raise records.RecordError(f"{path}: status {rec['status']!r}; the training run failed, retrain it")
    _error_floor(rec)
    if model != "cnn" and experiment.startswith("mnist"):
        for key in ("abs_r", "r", "pooled_class_deviation"):
            _metric(rec, "orientation", key)
    if check_config:
        expected = _expected_hash(experiment, model, profile, seed)
        if expected is not None and rec["config_hash"] != expected:
            raise records.RecordError(
                f"{path}: stale, its config_hash {rec['config_hash']} differs from the current {profile} "
                f"config ({expected}); retrain it so the book does not retrain on build"
            )
    return path


def check_records(profile: str, *, chapter: str | None = None, records_root: str | Path | None = None,
                  check_config: bool = True) -> list[Path]:
    """Check every record the ledger needs (:func:`check_record`); one RecordError lists all problems."""
    problems, paths = [], []
    for exp, model, seed in required_records(profile, chapter):
        try:
            paths.append(check_record(exp, model, profile, seed, records_root=records_root,
                                      check_config=check_config))
        except records.RecordError as e:
            problems.append(str(e))
    if problems:
        raise records.RecordError(
            f"{len(problems)} of {len(problems) + len(paths)} records the claims ledger needs in profile "
            f"{profile!r} are missing or unusable:\n- " + "\n- ".join(problems)
        )
    return paths


def records_used(profile: str, *, chapter: str | None = None,
                 records_root: str | Path | None = None) -> list[dict[str, Any]]:
    """The complete records the ledger reads in ``profile`` (those that exist), for the chapter's card."""
    out = []
    for exp, model, seed in required_records(profile, chapter):
        rec = _read_checked(exp, model, profile, seed, records_root)
        if rec is not None and rec["status"] == "complete":
            out.append(rec)
    return out


# ---------------------------------------------------------------------------------------
# presentation


def ledger_table(profile: str, chapter: str | None = None, *, records_root: str | Path | None = None,
                 verdicts: Sequence[Verdict] | None = None):
    """The ledger as a pandas DataFrame: one row per claim (paper vs ours, verdict, evidence).

    Pass ``verdicts`` (from :func:`evaluate`) to avoid evaluating twice.
    """
    import pandas as pd

    if verdicts is None:
        verdicts = evaluate(profile, chapter=chapter, records_root=records_root)
    elif chapter is not None:
        verdicts = [v for v in verdicts if v.claim.chapter == chapter]
    rows = []
    for v in verdicts:
        c = v.claim
        rows.append({
            "id": c.id,
            "chapter": c.chapter,
            "claim": c.title + (" [ours]" if c.source == "added" else ""),
            "reference": c.reference,
            "paper": c.paper,
            "ours": v.ours,
            "verdict": v.verdict,
            "evidence": v.evidence,
            "caveats": "; ".join(v.caveats),
        })
    columns = ["id", "chapter", "claim", "reference", "paper", "ours", "verdict", "evidence", "caveats"]
    return pd.DataFrame(rows, columns=columns)


#: Background colours of the verdict cells (colour-blind safe, readable on white).
VERDICT_COLORS = {
    REPRODUCED: "#cfe8cf",
    PARTLY: "#fdebc8",
    NOT_REPRODUCED: "#f6c9c4",
    INCONCLUSIVE: "#e4e4e4",
    NOT_RUN: "#ffffff",
}


def ledger_html(table=None, *, profile: str | None = None, chapter: str | None = None,
                records_root: str | Path | None = None,
                columns: Sequence[str] = ("claim", "reference", "paper", "ours", "verdict", "evidence",
                                          "caveats")) -> str:
    """The ledger as an HTML table with coloured verdict cells (pass a :func:`ledger_table` or a profile)."""
    if table is None:
        if profile is None:
            raise ValueError("ledger_html needs a ledger_table(...) or profile=")
        table = ledger_table(profile, chapter, records_root=records_root)
    head = "".join(f'<th style="text-align:left">{html.escape(c)}</th>' for c in columns)
    body = []
    for _, row in table.iterrows():
        cells = []
        for c in columns:
            text = html.escape(str(row[c]))
            if c == "verdict":
                color = VERDICT_COLORS.get(str(row[c]), "#ffffff")
                cells.append(f'<td style="vertical-align:top;background:{color};font-weight:bold">{text}</td>')
            elif c in ("evidence", "caveats"):
                cells.append(f'<td style="vertical-align:top;font-size:85%">{text}</td>')
            else:
                cells.append(f'<td style="vertical-align:top">{text}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return ('<table class="claims-ledger" style="text-align:left">\n'
            f"<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(body) + "\n</tbody>\n</table>\n")


def verdict_counts(verdicts: Iterable[Verdict]) -> dict[str, int]:
    """How many claims got each verdict (every verdict listed, in :data:`VERDICTS` order)."""
    counts = dict.fromkeys(VERDICTS, 0)
    for v in verdicts:
        counts[v.verdict] += 1
    return counts


def _bullet(v: Verdict) -> str:
    c = v.claim
    where = "" if c.source == "added" else f" ({c.reference})"
    if v.verdict == NOT_RUN:
        return f"- **{c.title}**{where}."
    return f"- **{c.title}**{where}: {v.ours}."


def conclusions_markdown(verdicts: Sequence[Verdict], profile: str) -> str:
    """Prose for the conclusions chapter, generated from the verdicts (no verdict is typed by hand).

    The paper's claims are grouped by verdict; our added questions follow in a group of their own,
    each with its verdict spelled out; then the caveats that limit the verdicts (:func:`why_markdown`).
    """
    counts = verdict_counts(verdicts)
    n = len(verdicts)
    lines = [
        f"In the `{profile}` profile the ledger holds {n} claims: "
        + ", ".join(f"{k} {name}" for name, k in counts.items() if k) + ".",
        "",
    ]
    papers = [v for v in verdicts if v.claim.source != "added"]
    added = [v for v in verdicts if v.claim.source == "added"]
    groups = (
        ("What the reproduction confirms", REPRODUCED),
        ("What it confirms only in part", PARTLY),
        ("What it does not confirm", NOT_REPRODUCED),
        ("What it cannot decide", INCONCLUSIVE),
        (f"What the `{profile}` profile does not test", NOT_RUN),
    )
    for heading, kind in groups:
        chosen = [v for v in papers if v.verdict == kind]
        if not chosen:
            continue
        lines += [f"**{heading}.**", ""]
        for v in chosen:
            line = _bullet(v)
            if v.verdict != REPRODUCED:
                line += f" Evidence: {v.evidence}."
            lines.append(line)
        lines.append("")
    if added:
        lines += ["**Our added questions** (not claims of the paper; the verdict says whether our "
                  "statement held).", ""]
        for v in added:
            lines.append(_bullet(v) + f" Verdict: *{v.verdict}*. Evidence: {v.evidence}.")
        lines.append("")
    reasons = why_markdown(verdicts, profile)
    if reasons:
        lines += ["**Why the verdicts are limited.**", "", reasons]
    return "\n".join(lines).rstrip() + "\n"


def details_markdown(verdicts: Sequence[Verdict]) -> str:
    """Every claim in full: statement, source, the paper's numbers, the rule, ours, verdict, evidence."""
    blocks = []
    for v in verdicts:
        c = v.claim
        origin = "our added question, not the paper's" if c.source == "added" else c.reference
        lines = [
            f"**`{c.id}`: {c.title}** ({origin})",
            "",
            f"- *Statement:* {c.statement}",
            f"- *Paper:* {c.paper}",
            "- *Tested by:* " + (", ".join(f"`{e}/{m}`" for e, m in c.needs) if c.needs
                                  else "computed live from `stnlib.toy`"),
            f"- *Rule:* {c.rule}",
            f"- *Ours:* {v.ours}",
            f"- *Verdict:* **{v.verdict}**. {v.evidence}",
        ]
        if v.caveats:
            lines.append("- *Caveats:* " + "; ".join(v.caveats))
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def why_markdown(verdicts: Sequence[Verdict], profile: str) -> str:
    """The caveats behind the verdicts, grouped: profile deviations, data stand-in, seed noise, staleness."""
    caveats = list(dict.fromkeys(c for v in verdicts for c in v.caveats if c != LIVE_NOTE))
    affected = {c: [v.claim_id for v in verdicts if c in v.caveats] for c in caveats}
    lines = []
    for c in caveats:
        ids = affected[c]
        lines.append(f"- {c[0].upper() + c[1:]} ({len(ids)} claim{'s' if len(ids) != 1 else ''}: "
                     f"{', '.join(ids)}).")
    exps = list(dict.fromkeys(e for v in verdicts for e in v.claim.experiments if v.verdict != NOT_RUN))
    by_devs: dict[tuple[str, ...], list[str]] = {}
    for exp in exps:
        devs = tuple(deviations_for(profile, exp))
        if devs:
            by_devs.setdefault(devs, []).append(exp)
    for devs, group in by_devs.items():
        names = ", ".join(f"`{e}`" for e in group)
        lines.append(f"- Deviations of the `{profile}` profile from the paper's protocol for {names}: "
                     + "; ".join(devs) + ".")
    return "\n".join(lines) + "\n" if lines else ""


#: Which chapter trains which models of which experiment (for the cost table).
_CHAPTER_RUNS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("mnist", "mnist-rot", EXPERIMENTS["mnist-rot"]["models"]),
    ("mnist", "mnist-trans", EXPERIMENTS["mnist-trans"]["models"]),
    ("mnist", "mnist-rot-adam", EXPERIMENTS["mnist-rot-adam"]["models"]),
    ("svhn", "svhn", EXPERIMENTS["svhn"]["models"]),
    ("beyond", "mnist-rot", EXTENSION_MODELS.get("mnist-rot", ())),
)


def cost_table(profiles: str | Sequence[str], *, records_root: str | Path | None = None):
    """Measured training cost per chapter, experiment and profile, from record provenance.

    One row per (profile, chapter, experiment) with at least one record: runs, failed runs, wall
    time (sum over runs, seconds), device(s) and data source(s); then one total row per profile.
    Reads whatever records exist for the profiles' seeds; trains nothing.
    """
    import pandas as pd

    profiles = [profiles] if isinstance(profiles, str) else list(profiles)
    columns = ["profile", "chapter", "experiment", "runs", "failed", "models", "wall time (s)",
               "device", "data"]
    rows = []
    for profile in profiles:
        seeds = get_profile(profile).seeds
        prof_rows = []
        for chapter, exp, models in _CHAPTER_RUNS:
            recs = [rec for model in models for seed in seeds
                    if (rec := _read_checked(exp, model, profile, seed, records_root)) is not None]
            if not recs:
                continue
            prov = [r["provenance"] for r in recs]
            prof_rows.append({
                "profile": profile, "chapter": chapter, "experiment": exp, "runs": len(recs),
                "failed": sum(r["status"] != "complete" for r in recs),
                "models": ", ".join(dict.fromkeys(_label(r["model"]) for r in recs)),
                "wall time (s)": round(sum(float(p.get("wall_time_s", 0.0)) for p in prov), 1),
                "device": "; ".join(sorted({str(p.get("device", "unknown")) for p in prov})),
                "data": "; ".join(sorted({str(p.get("data_source", "unknown")) for p in prov})),
            })
        if prof_rows:
            devices = sorted({d for r in prof_rows for d in r["device"].split("; ")})
            prof_rows.append({
                "profile": profile, "chapter": "all", "experiment": "total",
                "runs": sum(r["runs"] for r in prof_rows), "failed": sum(r["failed"] for r in prof_rows),
                "models": "", "wall time (s)": round(sum(r["wall time (s)"] for r in prof_rows), 1),
                "device": "; ".join(devices), "data": "",
            })
        rows.extend(prof_rows)
    return pd.DataFrame(rows, columns=columns)


#: Where GPU probes of the full profile are committed (``benchmarks/gpu_check.sh`` writes them).
GPU_RESULTS = benchmark_results_root()


def full_profile_estimate(results_root: str | Path | None = None):
    """What one run of the ``full`` profile costs on a GPU, from committed probe measurements.

    Reads every ``full_probe.jsonl`` under ``results_root`` (default :data:`GPU_RESULTS`): short
    runs of the full profile's settings (``benchmarks/calibrate.py --profile full``), each with its
    measured training throughput (img/s, evaluation excluded) and device. Returns one row per probe:
    device, experiment, model, the probe's length, its img/s, and the time 150k iterations of batch
    256 would take at that rate (training only; the full profile's periodic evaluations add a few
    percent). Empty when no probe was committed.
    """
    import pandas as pd

    from stnlib.profiles import settings_for
    from stnlib.runs import read_probes

    rows = []
    for path, probe in read_probes(results_root if results_root is not None else GPU_RESULTS):
        s = settings_for("full", probe["experiment"])
        ips = float(probe["train_images_per_s"])
        rows.append({
            "device": probe["device"], "experiment": probe["experiment"], "model": _label(probe["model"]),
            "probe (epochs)": probe["epochs"], "training img/s": round(ips),
            "est. minutes per full run": round(s.iterations * s.batch_size / ips / 60, 1),
            "source": f"{path.parent.name}/{path.name}",
        })
    return pd.DataFrame(rows, columns=["device", "experiment", "model", "probe (epochs)", "training img/s",
                                       "est. minutes per full run", "source"])
