"""The rules that decide the empirical claims from the evidence: each a short function a test can feed.

Every rule splits its claim into comparisons signed so that a positive difference is the paper's
direction (:mod:`stnlib.claims.stats`) and combines them (:func:`~stnlib.claims.verdicts.combine`): a
part that goes the wrong way beyond noise makes the claim "not reproduced". Rules about orientation
read the Deming slope of the predicted against the applied angle (−1: the ST undoes every rotation,
0: it ignores them) and |r|, so a flat predictor cannot pass as "partly learning".
"""

from __future__ import annotations

from stnlib.claims.evidence import Evidence
from stnlib.claims.regime import CANONICAL_SLOPE
from stnlib.claims.stats import HOLDS, REVERSED, Comparison, difference, threshold
from stnlib.claims.verdicts import INCONCLUSIVE, NOT_REPRODUCED, PARTLY, REPRODUCED, Judgement, combine
from stnlib.nn import display_name as name

#: An ST that undoes less than a fifth of each rotation has not learned the orientation.
FLAT_SLOPE = -0.2
#: The pooled per-class deviation of an ST that predicts nothing: the spread of U(−90°, 90°), 90/√3.
NO_LEARNING_DEV_DEG = 51.96
SVHN_DEPTHS = (3, 6, 8)
ROT_STNS = ("stn-c0", "stn-c1", "stn-sl1", "stn-dl1")


def _err(ev: Evidence, exp: str, model: str, peers: tuple[str, ...]):
    return ev.estimate(exp, model, "error", peers=peers)


def _pct(ev: Evidence, exp: str, models: tuple[str, ...]) -> str:
    return ", ".join(f"{name(m)} {_err(ev, exp, m, models).show(unit='%')}" for m in models)


def c1_worse(ev: Evidence, experiment: str = "mnist-rot") -> Judgement:
    """Under rotation STN-C1's test error is higher than STN-C0's and STN-SL1's."""
    e = {m: _err(ev, experiment, m, ROT_STNS) for m in ("stn-c0", "stn-c1", "stn-sl1")}
    comps = (difference("STN-C1 − STN-C0", [e["stn-c1"]], [e["stn-c0"]], "pp"),
             difference("STN-C1 − STN-SL1", [e["stn-c1"]], [e["stn-sl1"]], "pp"))
    return Judgement(combine(comps), _pct(ev, experiment, ("stn-c0", "stn-c1", "stn-sl1")), comps)


def gap_translation(ev: Evidence) -> Judgement:
    """The STN-C1 gap is smaller under translation, judged only once the rotation gap itself holds."""
    rot = c1_worse(ev, "mnist-rot")
    trans = {m: _err(ev, "mnist-trans", m, ROT_STNS) for m in ("stn-c0", "stn-c1", "stn-sl1")}
    rot_e = {m: _err(ev, "mnist-rot", m, ROT_STNS) for m in ("stn-c0", "stn-c1", "stn-sl1")}
    gaps = {(x, ref): (e["stn-c1"].mean - e[ref].mean) for x, e in (("rotation", rot_e), ("translation", trans))
            for ref in ("stn-c0", "stn-sl1")}
    ours = "; ".join(f"C1 − {name(ref)[4:]}: rotation {gaps['rotation', ref]:+.2f} pp, translation "
                     f"{gaps['translation', ref]:+.2f} pp" for ref in ("stn-c0", "stn-sl1"))
    outcomes = [c.outcome for c in rot.comparisons]
    if any(o != HOLDS for o in outcomes):
        why = ("the rotation gap goes the wrong way" if REVERSED in outcomes
               else "the rotation gap it is measured against is itself within noise")
        return Judgement(NOT_REPRODUCED if REVERSED in outcomes else INCONCLUSIVE, ours, rot.comparisons,
                         notes=(f"not judged: {why}",))
    comps = tuple(difference(f"(C1 − {name(ref)[4:]}) rotation − translation",
                             [rot_e["stn-c1"], trans[ref]], [rot_e[ref], trans["stn-c1"]], "pp")
                  for ref in ("stn-c0", "stn-sl1"))
    return Judgement(combine(comps), ours, rot.comparisons + comps)


def _orientation(ev: Evidence, exp: str, model: str, stat: str):
    return ev.estimate(exp, model, stat, peers=ROT_STNS)


def _slopes(ev: Evidence, exp: str, models: tuple[str, ...]) -> str:
    return "; ".join(f"{name(m)} slope {_orientation(ev, exp, m, 'slope').show()}, |r| "
                     f"{_orientation(ev, exp, m, 'abs_r').show()}" for m in models)


def c1_orientation(ev: Evidence, experiment: str = "mnist-rot") -> Judgement:
    """STN-C1 does not learn the orientation, while STN-C0 and STN-SL1 do.

    Parts: C1's slope stays above :data:`FLAT_SLOPE` (it undoes less than a fifth of each rotation), and
    C0's and SL1's slopes are steeper than C1's. A C1 that canonicalises fails the first part.
    """
    s = {m: _orientation(ev, experiment, m, "slope") for m in ("stn-c0", "stn-c1", "stn-sl1")}
    comps = (threshold("STN-C1 slope", s["stn-c1"], FLAT_SLOPE, below=False),
             difference("slope STN-C1 − STN-C0", [s["stn-c1"]], [s["stn-c0"]]),
             difference("slope STN-C1 − STN-SL1", [s["stn-c1"]], [s["stn-sl1"]]))
    return Judgement(combine(comps), _slopes(ev, experiment, ("stn-c0", "stn-c1", "stn-sl1")), comps,
                     values={"c1_slope": s["stn-c1"].mean})


def sl1_orientation(ev: Evidence) -> Judgement:
    """STN-SL1 correctly predicts the orientation: its slope reaches the canonicalising value and its
    pooled per-class deviation is clearly below that of an ST that predicts nothing."""
    slope = _orientation(ev, "mnist-rot", "stn-sl1", "slope")
    dev = _orientation(ev, "mnist-rot", "stn-sl1", "pooled_class_deviation")
    comps = (threshold("STN-SL1 slope", slope, CANONICAL_SLOPE, below=True),
             threshold("STN-SL1 pooled deviation", dev, NO_LEARNING_DEV_DEG, below=True, unit="°"))
    ours = _slopes(ev, "mnist-rot", ("stn-sl1",)) + f", pooled deviation {dev.show(1, '°')}"
    return Judgement(combine(comps), ours, comps)


def optimizer(ev: Evidence) -> Judgement:
    """Added question: the C1-orientation finding is the same under SGD (mnist-rot) and Adam.

    Same decided finding (C1 fails under both, or learns under both) → reproduced; opposite findings →
    not reproduced; same direction with different strength → partly; undecided under either → inconclusive.
    """
    per = {"SGD": c1_orientation(ev, "mnist-rot"), "Adam": c1_orientation(ev, "mnist-rot-adam")}
    finding = {REPRODUCED: "fails", PARTLY: "fails", NOT_REPRODUCED: "learns"}
    f = {o: finding.get(j.verdict) for o, j in per.items()}
    if None in f.values():
        verdict = INCONCLUSIVE
    elif f["SGD"] != f["Adam"]:
        verdict = NOT_REPRODUCED
    else:
        verdict = REPRODUCED if per["SGD"].verdict == per["Adam"].verdict else PARTLY
    ours = "; ".join(f"{o}: STN-C1 slope {_orientation(ev, exp, 'stn-c1', 'slope').show()} → {j.verdict}"
                     for (o, j), exp in zip(per.items(), ("mnist-rot", "mnist-rot-adam")))
    return Judgement(verdict, ours, per["SGD"].comparisons + per["Adam"].comparisons,
                     notes=(f"the C1-orientation rule gives '{per['SGD'].verdict}' under SGD and "
                            f"'{per['Adam'].verdict}' under Adam",),
                     values={f"{o} verdict": j.verdict for o, j in per.items()})


def svhn_cx(ev: Evidence) -> Judgement:
    """STN-CX does not improve with depth: CX − C0 > 0 (worse) at X = 3, 6, 8; a better CX is a reversal."""
    models = ("stn-c0", *(f"stn-c{x}" for x in SVHN_DEPTHS))
    e = {m: _err(ev, "svhn", m, models) for m in models}
    comps = tuple(difference(f"STN-C{x} − STN-C0", [e[f"stn-c{x}"]], [e["stn-c0"]], "pp") for x in SVHN_DEPTHS)
    return Judgement(combine(comps), _pct(ev, "svhn", models), comps)


def svhn_slx(ev: Evidence) -> Judgement:
    """STN-SLX improves with depth: SL8 better than C0 (= SL0), SLX better than CX at every X ≥ 3, and no
    step from one depth to the next worse beyond noise."""
    models = ("stn-c0", *(f"stn-{k}{x}" for k in ("c", "sl") for x in SVHN_DEPTHS))
    e = {m: _err(ev, "svhn", m, models) for m in models}
    comps = [difference("STN-C0 − STN-SL8", [e["stn-c0"]], [e["stn-sl8"]], "pp")]
    comps += [difference(f"STN-C{x} − STN-SL{x}", [e[f"stn-c{x}"]], [e[f"stn-sl{x}"]], "pp") for x in SVHN_DEPTHS]
    steps = [difference(f"STN-SL{a} − STN-SL{b}", [e[f"stn-sl{a}"]], [e[f"stn-sl{b}"]], "pp")
             for a, b in zip(SVHN_DEPTHS, SVHN_DEPTHS[1:])]
    verdict = combine(comps)
    if any(c.outcome == REVERSED for c in steps):
        verdict = NOT_REPRODUCED  # getting worse with depth is the opposite of the claim
    ours = _pct(ev, "svhn", ("stn-c0", *(f"stn-sl{x}" for x in SVHN_DEPTHS)))
    return Judgement(verdict, ours, tuple(comps) + tuple(steps),
                     notes=("the steps between depths may not go the wrong way (a reversal fails the claim)",))


def ec1_orientation(ev: Evidence) -> Judgement:
    """Added question: the equivariant STN-EC1 learns the orientation where STN-C1 does not."""
    peers = ("stn-c1", "stn-ec1")
    s = {m: ev.estimate("mnist-rot", m, "slope", peers=peers) for m in peers}
    r = {m: ev.estimate("mnist-rot", m, "abs_r", peers=peers) for m in peers}
    comps: tuple[Comparison, ...] = (
        difference("slope STN-C1 − STN-EC1", [s["stn-c1"]], [s["stn-ec1"]]),
        difference("|r| STN-EC1 − STN-C1", [r["stn-ec1"]], [r["stn-c1"]]),
    )
    ours = "; ".join(f"{name(m)} slope {s[m].show()}, |r| {r[m].show()}" for m in peers)
    return Judgement(combine(comps), ours, comps)
