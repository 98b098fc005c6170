"""How the book's tables look: numbers as strings with units, mean ± std, the paper's labels.

:func:`view` turns a table from :mod:`stnlib.report.tables` (it knows which by ``attrs["table"]``)
into its display form and :func:`render` into a clean HTML table (a pandas ``Styler`` whose id is
derived from the content, so the same table renders to the same HTML).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping

import pandas as pd

from stnlib.nn import display_name
from stnlib.report.calibration import seeded_lengths
from stnlib.report.tables import EXPERIMENT_TITLES, ORIENTATION_STATS, TABLE2_FAMILIES

def fmt_mean_std(mean: float, std: float = math.nan, digits: int = 2, sign: bool = False) -> str:
    """``"1.23 ± 0.05"``; only the mean when ``std`` is NaN; ``"—"`` when ``mean`` is NaN."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "—"
    mean = round(float(mean), digits) + 0.0  # + 0.0 turns a rounded -0.0 into 0.0
    s = f"{mean:+.{digits}f}" if sign and mean != 0 else f"{mean:.{digits}f}"
    if std is not None and not (isinstance(std, float) and math.isnan(std)):
        s += f" ± {std:.{digits}f}"
    return s


def _label(model: str) -> str:
    return display_name(model)


def _error_view(df: pd.DataFrame, groups: Iterable[str], titles: Mapping[str, str],
                digits: int) -> pd.DataFrame:
    out = {}
    for g in groups:
        t = titles.get(g, g)
        sub = df[g]
        out[(t, "ours (%)")] = [fmt_mean_std(m, s, digits) for m, s in zip(sub["ours"], sub["std"])]
        out[(t, "paper (%)")] = [fmt_mean_std(p, digits=digits) for p in sub["paper"]]
        out[(t, "ours − paper")] = [fmt_mean_std(d, digits=digits, sign=True) for d in sub["diff"]]
        out[(t, "seeds")] = [str(int(n)) for n in sub["seeds"]]
    v = pd.DataFrame(out, index=df.index)
    v.columns = pd.MultiIndex.from_tuples(v.columns)
    return v


def view(table: pd.DataFrame, digits: int = 2) -> pd.DataFrame:
    """The display form of a table from this module: strings, display labels, units in titles."""
    kind = table.attrs.get("table")
    if kind == "table1":
        groups = list(dict.fromkeys(table.columns.get_level_values(0)))
        v = _error_view(table, groups, EXPERIMENT_TITLES, digits)
        v.index = [_label(m) for m in table.index]
    elif kind == "table2":
        v = _error_view(table, TABLE2_FAMILIES, {f: f"STN-{f}" for f in TABLE2_FAMILIES}, digits)
        v.index = [f"X = {x}" for x in table.index]
    elif kind == "paper":
        v = table.rename(columns=EXPERIMENT_TITLES).map(lambda x: fmt_mean_std(x, digits=digits) + "%")
        v.index = [_label(m) for m in table.index]
    elif kind == "orientation":
        unit = "°" if table.attrs.get("kind") == "rotation" else "px"
        names = {"slope": "slope", "abs_r": "|r|", "pooled_class_deviation": f"pooled dev. ({unit})"}

        def col(c: str, stat: str) -> list[str]:
            d = 1 if stat == "pooled_class_deviation" else digits
            return [fmt_mean_std(x, digits=d) for x in table[c]]

        if "slope_x" in table.columns:  # translation: mean of the axes, then each axis
            out = {}
            for group, suffix in (("x and y (mean)", ""), ("x", "_x"), ("y", "_y")):
                for stat in ORIENTATION_STATS:
                    out[(group, names[stat])] = col(stat + suffix, stat)
            out[("", "seeds")] = [str(int(n)) for n in table["seeds"]]
            v = pd.DataFrame(out, index=[_label(m) for m in table.index])
            v.columns = pd.MultiIndex.from_tuples(v.columns)
        else:
            out = {names[stat]: col(stat, stat) for stat in ORIENTATION_STATS}
            out["seeds"] = [str(int(n)) for n in table["seeds"]]
            v = pd.DataFrame(out, index=[_label(m) for m in table.index])
    elif kind == "misalignment":
        u = "°" if table.attrs.get("kind") == "rotation" else " px"
        qn = {"feature_maps": "first-layer maps, inversely warped", "after_st": "ST outputs"}
        v = pd.DataFrame({(qn[q], f"±{a:g}{u}"): [fmt_mean_std(x, digits=digits) for x in table[(q, a)]]
                          for q, a in table.columns}, index=[_label(m) for m in table.index])
        v.columns = pd.MultiIndex.from_tuples(v.columns)
    elif kind == "optimizer":
        v = pd.DataFrame({
            "error (%)": [fmt_mean_std(m, s, digits) for m, s in zip(table["error"], table["error_std"])],
            "epochs": [fmt_mean_std(e, digits=1) for e in table["epochs"]],
            "slope": [fmt_mean_std(x, digits=digits) for x in table["slope"]],
            "|r|": [fmt_mean_std(x, digits=digits) for x in table["abs_r"]],
            "pooled deviation (°)": [fmt_mean_std(x, digits=1) for x in table["pooled_class_deviation"]],
            "seeds": [str(int(n)) for n in table["seeds"]],
        }, index=pd.MultiIndex.from_tuples([(_label(m), o) for m, o in table.index],
                                           names=["model", "optimiser"]))
    elif kind == "examples":
        rot = table.attrs.get("kind") == "rotation"
        whos = list(dict.fromkeys(w for w, _ in table.columns if w != "label"))
        out = {"digit": [str(int(x)) for x in table[("label", "")]]}
        for who in whos:
            name = who if who == "applied" else _label(who)
            if rot:
                out[f"{name} (°)"] = [fmt_mean_std(x, digits=0, sign=True) for x in table[(who, "angle")]]
            else:
                out[f"{name} (dx, dy) px"] = [
                    f"({fmt_mean_std(x, digits=1, sign=True)}, {fmt_mean_std(y, digits=1, sign=True)})"
                    for x, y in zip(table[(who, "dx")], table[(who, "dy")])]
        v = pd.DataFrame(out, index=[f"example {i + 1}" for i in table.index])
    elif kind == "length":
        short = f"{table['short_epochs'].iloc[0]:g} epochs"
        cols = {
            (short, "error (%), mean ± sd"): [f"{fmt_mean_std(m, sd, digits)} ({int(n)} seeds)" for m, sd, n in
                                              zip(table["short_mean"], table["short_sd"], table["short_seeds"])],
            (short, "seed 0 (%)"): [fmt_mean_std(x, digits=digits) for x in table["short_seed0"]],
            (short, "fall over last fifth (pp)"): [fmt_mean_std(x, digits=digits, sign=True) for x in table["short_fall"]],
        }
        seeded = seeded_lengths(table)
        for n in table.attrs["lengths"]:
            if n in seeded:
                cols[(f"{n:g} epochs", "error (%), mean ± sd")] = [
                    "—" if pd.isna(k) else f"{fmt_mean_std(m, sd, digits)} ({int(k)} seed{'s' if k > 1 else ''})"
                    for m, sd, k in zip(table[f"mean_e{n:g}"], table[f"sd_e{n:g}"], table[f"seeds_e{n:g}"])]
            missing = pd.Series(math.nan, index=table.index)  # no seed 0 of any model at this length
            cols[(f"{n:g} epochs", "seed 0 (%)")] = [
                fmt_mean_std(x, digits=digits) for x in table.get(f"seed0_e{n:g}", missing)]
            cols[(f"{n:g} epochs", "fall over last fifth (pp)")] = [
                fmt_mean_std(x, digits=digits, sign=True) for x in table.get(f"fall_e{n:g}", missing)]
        v = pd.DataFrame(cols, index=[_label(m) for m in table.index])
        v.columns = pd.MultiIndex.from_tuples(v.columns)
    elif kind in ("settings", "design"):
        v = table.copy()
        v.columns = [EXPERIMENT_TITLES.get(c, c) for c in v.columns]
        v.index.name = None  # the row labels say what they are; no extra header row
    else:
        v = table.copy()
    return v


def render(table: pd.DataFrame, *, caption: str | None = None, digits: int = 2,
           index: bool = True, wrap: bool = False):
    """A clean HTML table for the book: :func:`view` of ``table`` as a pandas ``Styler``.

    Any DataFrame can be rendered; those from this module get their display format (labels,
    units, mean ± std). ``index=False`` hides the row labels; ``wrap=True`` lets cells of text wrap
    (numbers stay on one line by default).

    The Styler's id is derived from the content, so the same table renders to the same HTML
    (the book's output checks compare it).
    """
    v = view(table, digits)
    uid = hashlib.sha1((repr(v.to_dict()) + str(caption)).encode()).hexdigest()[:10]
    st = v.style.set_uuid(uid)
    if caption:
        st = st.set_caption(caption)
    if not index:
        st = st.hide(axis="index")
    st = st.set_table_styles([
        {"selector": "", "props": "border-collapse: collapse; font-size: 0.9em; margin: 0.5em 0;"},
        {"selector": "caption", "props": "caption-side: top; text-align: left; padding: 0.3em 0;"},
        {"selector": "th", "props": "padding: 0.25em 0.7em; text-align: center;"},
        {"selector": "td", "props": "padding: 0.25em 0.7em; text-align: right; "
                                    + ("white-space: normal; vertical-align: top;" if wrap else "white-space: nowrap;")},
        {"selector": "th.row_heading", "props": "text-align: left; white-space: nowrap;"},
        {"selector": "thead tr:last-child th", "props": "border-bottom: 1px solid #888;"},
    ])
    return st


def format_duration(seconds: float) -> str:
    """``12.3 s``, ``4 min 05 s`` or ``2 h 03 min``."""
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        m, s = divmod(int(round(seconds)), 60)
        return f"{m} min {s:02d} s"
    h, m = divmod(int(round(seconds / 60)), 60)
    return f"{h} h {m:02d} min"
