"""The sentences the chapters print, built from tables of records (and tested against them).

Every number and every direction word ("higher", "lower", "the same") in a chapter's computed prose
comes from a function here, so that a test can feed it tables and check what it says.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from stnlib import paper
from stnlib.nn import display_name as name
from stnlib.report.display import fmt_mean_std as f2


def direction(d: float, *, digits: int = 2) -> str:
    """``"higher"``, ``"lower"`` or ``"equal"`` for a difference, at the precision it is printed with."""
    if round(d, digits) == 0:
        return "equal"
    return "higher" if d > 0 else "lower"


def compared(d: float, other: str, *, unit: str = " points", digits: int = 2) -> str:
    """``"0.25 points higher than STN-C0's"``, or ``"the same as STN-C0's"``."""
    if direction(d, digits=digits) == "equal":
        return f"the same as {other}"
    return f"{abs(d):.{digits}f}{unit} {direction(d, digits=digits)} than {other}"


def span(lo: float, hi: float, digits: int = 2) -> str:
    """``"0.42–0.57"``, or one number when both ends print the same."""
    a, b = f2(lo, digits=digits), f2(hi, digits=digits)
    return a if a == b else f"{a}–{b}"


def small(x: float) -> str:
    """A number that may be at float precision: 3 decimals, or scientific below 0.001."""
    return f"{x:.3f}" if abs(x) >= 1e-3 else f"{x:.1e}"


def seeds_phrase(n: int) -> str:
    return f"{n} seed{'s' if n != 1 else ''}"


def seed_counts_phrase(counts: Mapping[str, int], what: str = "mean") -> str:
    """``"mean over 3 seeds"``, or where models have different numbers of seeds, which have how many:
    ``"means over 3 seeds; 1 seed for C4-CNN and STN-EC1"`` (the most common count first)."""
    by_n: dict[int, list[str]] = {}
    for m, n in counts.items():
        by_n.setdefault(int(n), []).append(m)
    order = sorted(by_n, key=lambda n: (-len(by_n[n]), -n))
    if len(order) == 1:
        return f"{what} over {seeds_phrase(order[0])}"
    rest = "; ".join(f"{seeds_phrase(n)} for {' and '.join(name(m) for m in by_n[n])}" for n in order[1:])
    return f"{what}s over {seeds_phrase(order[0])}; {rest}"


# ---------------------------------------------------------------------------------------
# MNIST


def table1_text(t1: pd.DataFrame, *, shorter_than_paper: bool, profile: str) -> str:
    """What Table 1 says: the C1 gaps on both datasets against the paper's, the ranking, ours vs paper."""
    out = []
    ours = {e: t1[e]["ours"] for e in ("mnist-rot", "mnist-trans")}
    pap = {e: pd.Series(paper.TABLE1_ERROR_PERCENT[e]) for e in ("mnist-rot", "mnist-trans")}
    for e, what in (("mnist-rot", "rotated"), ("mnist-trans", "translated")):
        g0 = ours[e]["stn-c1"] - ours[e]["stn-c0"]
        gs = ours[e]["stn-c1"] - ours[e]["stn-sl1"]
        p0 = pap[e]["stn-c1"] - pap[e]["stn-c0"]
        ps = pap[e]["stn-c1"] - pap[e]["stn-sl1"]
        c0s, sl1s = "STN-C0's", "STN-SL1's"
        out.append(f"On {what} digits STN-C1's mean error is {compared(g0, c0s)} and {compared(gs, sl1s)} "
                   f"(paper: {compared(p0, 'STN-C0')} and {compared(ps, 'STN-SL1')}).")
    models = list(pap["mnist-rot"].index)
    rank_ours = list(ours["mnist-rot"][models].sort_values().index)
    rank_paper = list(pap["mnist-rot"].sort_values().index)
    out.append("Under rotation our ranking of the paper's four models, best first, is "
               + ", ".join(name(m) for m in rank_ours)
               + (", the same as the paper's." if rank_ours == rank_paper
                  else "; the paper's is " + ", ".join(name(m) for m in rank_paper) + "."))
    diffs = pd.concat([t1[e]["diff"] for e in ours]).dropna()
    out.append(f"{int((diffs > 0).sum())} of our {len(diffs)} errors with a published counterpart are higher than the "
               f"paper's (differences from {diffs.min():+.2f} to {diffs.max():+.2f} points)"
               + (f"; the {profile} profile trains for a fraction of the paper's schedule, so absolute errors are "
                  "not expected to match, and the comparisons that matter are between models trained alike."
                  if shorter_than_paper else "."))
    return " ".join(out)


def orientation_text(o_rot: pd.DataFrame, o_trans: pd.DataFrame, start_dev: float) -> str:
    """Figure 3's numbers: each ST's slope and |r| under rotation, and C1 against SL1 on both datasets."""
    o = o_rot
    parts = [
        "Under rotation the predicted angle has slope "
        + ", ".join(f"{f2(o.loc[m, 'slope'])} ({name(m)})" for m in o.index)
        + " against the applied one, and |r| = "
        + ", ".join(f"{f2(o.loc[m, 'abs_r'])} ({name(m)})" for m in o.index) + ".",
        f"A slope of −1 would undo every rotation; the steepest here is {name(o['slope'].idxmin())}'s.",
        f"The pooled per-class deviation is {o.loc['stn-c1', 'pooled_class_deviation']:.1f}° for STN-C1 and "
        f"{o.loc['stn-sl1', 'pooled_class_deviation']:.1f}° for STN-SL1; at initialisation, when every ST is the "
        f"identity, it is {start_dev:.1f}° (the spread of the applied angles).",
    ]
    sl1s = "STN-SL1's"
    d_rot = o_rot.loc["stn-c1", "abs_r"] - o_rot.loc["stn-sl1", "abs_r"]
    d_trans = o_trans.loc["stn-c1", "abs_r"] - o_trans.loc["stn-sl1", "abs_r"]
    parts.append("Under translation the correlations are "
                 + ", ".join(f"{name(m)} {o_trans.loc[m, 'abs_r']:.2f}" for m in o_trans.index)
                 + f"; STN-C1's is {compared(d_trans, sl1s, unit='')} there, and "
                   f"{compared(d_rot, sl1s, unit='')} under rotation.")
    return " ".join(parts)


def trend_text(trend: pd.DataFrame, unit: str, what: str) -> str:
    """How each ST's orientation developed over training (from :func:`stnlib.report.tables.orientation_trend`)."""
    def one(m: str) -> str:
        x = trend.loc[m]
        s = f"{name(m)} ends at |r| = {x.abs_r_end:.2f}"
        if x.abs_r_peak - x.abs_r_end > 0.05 and x.abs_r_peak_epoch < x.last_epoch:
            s += f" after a peak of {x.abs_r_peak:.2f} at epoch {x.abs_r_peak_epoch:g}"
        return s + f", its pooled deviation going from {x.deviation_start:.1f}{unit} to {x.deviation_end:.1f}{unit}"

    return f"Over {trend.last_epoch.max():g} epochs of {what}: " + "; ".join(one(m) for m in trend.index) + "."


def misalignment_text(m_rot: pd.DataFrame, m_trans: pd.DataFrame, at_rot: Sequence[float],
                      at_trans: Sequence[float]) -> str:
    """The measured equation (1): how far the inverse warp leaves the maps, rotation against translation."""
    a_lo, a_hi, s_hi = min(at_rot), max(at_rot), max(at_trans)
    fm_rot, fm_trans = m_rot["feature_maps"], m_trans["feature_maps"]
    trans_max, rot_min = fm_trans[s_hi].max(), fm_rot[a_hi].min()
    orders = int(np.floor(np.log10(rot_min / max(trans_max, 1e-12))))
    out = [f"After the feature maps of a rotated digit are rotated back, their relative distance to the maps of the "
           f"upright digit is {span(fm_rot[a_lo].min(), fm_rot[a_lo].max())} at ±{a_lo:g}° across the networks, "
           f"and {span(fm_rot[a_hi].min(), fm_rot[a_hi].max())} at ±{a_hi:g}°.",
           f"Shifting a digit by ±{s_hi:g} pixels in x and y and shifting its maps back leaves at most "
           f"{small(trans_max)}" + (f", {orders} orders of magnitude below the smallest value at ±{a_hi:g}°: "
                                    "convolution, ReLU and aligned pooling commute with such shifts, the exception "
                                    "to equation (1) that the paper points out." if orders >= 2 else
                                    f", against at least {rot_min:.2f} at ±{a_hi:g}°.")]
    if ("after_st", a_hi) in m_rot.columns and "stn-c1" in m_rot.index:
        c1_st, c1_back = m_rot.loc["stn-c1", ("after_st", a_hi)], fm_rot.loc["stn-c1", a_hi]
        inputs = [m for m in m_rot.index if m not in ("cnn", "stn-c1") and not math.isnan(m_rot.loc[m, ("after_st", a_hi)])]
        best = min(inputs, key=lambda m: m_rot.loc[m, ("after_st", a_hi)])
        out.append(f"STN-C1's own ST output at ±{a_hi:g}° differs from that of the upright digit by {f2(c1_st)}, "
                   + ("more than" if c1_st > c1_back else "less than" if c1_st < c1_back else "as much as")
                   + f" the {f2(c1_back)} left by the exact inverse rotation of its maps. Among the STs that warp the "
                   f"input, {name(best)}'s output is the least sensitive to a ±{a_hi:g}° rotation "
                   f"({f2(m_rot.loc[best, ('after_st', a_hi)])}).")
    return " ".join(out)


def optimizer_text(opt_table: pd.DataFrame, optimizers: Sequence[str]) -> str:
    """SGD against Adam for STN-C1 (and STN-SL1): schedule length, slope, |r|, deviation and error."""
    ep = opt_table["epochs"].unique()
    c1 = {o: opt_table.loc[("stn-c1", o)] for o in optimizers}
    sl1 = {o: opt_table.loc[("stn-sl1", o)] for o in optimizers}
    first = (f"Both optimisers trained for the same number of epochs ({ep[0]:g})." if len(ep) == 1 else
             "The schedules differ in length (" + ", ".join(
                 f"{o}: {opt_table.xs(o, level='optimizer')['epochs'].iloc[0]:g}" for o in optimizers) + " epochs).")
    a, b = optimizers[0], optimizers[1]
    return (f"{first} With {a} STN-C1 ends at slope {c1[a].slope:.2f} and |r| = {c1[a].abs_r:.2f} (STN-SL1: "
            f"{sl1[a].slope:.2f}, {sl1[a].abs_r:.2f}); with {b} at slope {c1[b].slope:.2f} and |r| = "
            f"{c1[b].abs_r:.2f} (STN-SL1: {sl1[b].slope:.2f}, {sl1[b].abs_r:.2f}). Its pooled deviation is "
            f"{c1[a].pooled_class_deviation:.1f}° with {a} and {c1[b].pooled_class_deviation:.1f}° with {b}, and its "
            f"test error {c1[a].error:.2f}% and {c1[b].error:.2f}%.")


# ---------------------------------------------------------------------------------------
# SVHN


def depth_text(ours: pd.DataFrame, pap: pd.DataFrame, cnn_err: float, means: Mapping[str, float],
               depths: Sequence[int], *, comparable: bool) -> str:
    """Table 2's trends: how each family's error changes from X = 0, ours against the paper's."""
    def trend(col: str, frame: pd.DataFrame) -> str:
        return ", ".join(f"X = {x}: {f2(frame.loc[x, col] - frame.loc[0, col], sign=True)}" for x in depths[1:])

    c0 = ours.loc[0, "CX"]
    gap = c0 - cnn_err
    cnn_s = "the CNN's"
    best = min(means, key=means.get)
    out = [f"STN-C0 reaches {c0:.2f}% sequence error and the plain CNN {cnn_err:.2f}%"
           + f" (STN-C0's is {compared(gap, cnn_s)}).",
           f"Relative to STN-C0, our error changes by {trend('CX', ours)} points for CX, {trend('SLX', ours)} for SLX "
           f"and {trend('DLX', ours)} for DLX; in the paper by {trend('CX', pap)} for CX and {trend('SLX', pap)} "
           "for SLX.",
           f"The lowest mean error of the {len(means)} models is {name(best)}'s ({means[best]:.2f}%)."]
    if not comparable:
        out.append("The paper's errors are for real SVHN and a network trained far longer; only the direction and "
                   "relative size of the changes with depth can be compared.")
    return " ".join(out)


# ---------------------------------------------------------------------------------------
# exact constructions (theory, toy) and live chapters


def exact_rule_text(aligned_tol: float | None = None, misaligned: float | None = None) -> str:
    """How the verdict on an exact construction is decided (default: the thresholds of :mod:`stnlib.claims.exact`)."""
    from stnlib.claims import exact

    tol = exact.ALIGNED_TOL if aligned_tol is None else aligned_tol
    far = exact.MISALIGNED if misaligned is None else misaligned
    return (f"An exact construction *holds exactly* when every error that it says vanishes is at most {tol:g} "
            f"(float32 rounding) and every error that it says cannot vanish is at least {far:g} (more than half "
            "of the reference left over); otherwise it *fails exactly*, which only a bug can cause. No seeds, "
            "no noise margin and no regime check enter: it is computed live, the same in every profile.")


def ran_in(seconds: float, profile: str) -> str:
    """``"This chapter ran in 2 min 39 s (profile `quick`)."``"""
    from stnlib.report.display import format_duration

    return f"This chapter ran in {format_duration(seconds)} (profile `{profile}`)."
