"""Calibration runs: single runs with settings outside any profile, kept as records of their own.

They were trained to choose the quick profile's schedules (how long, which localisation learning rate),
and they show what the profile cannot: how the orientation an ST learns forms with longer training, and
whether the input-level STs overtake the CNN on translated MNIST when trained for longer.
Each lives under ``<records>/calibration/<tag>/<profile>/<experiment>/<model>-seed<k>.json``: an
ordinary record, whose config says how it differs from the profile named in its path.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from stnlib import records
from stnlib.claims.evidence import late_drop_pct
from stnlib.claims.regime import CONVERGED_PP
from stnlib.nn import display_name
from stnlib.paths import records_root
from stnlib.profiles import settings_for

#: The calibration runs the MNIST chapter shows: (tag, experiment, model, the profile they started from).
ROTATION_RUNS = (
    ("c0_e30", "mnist-rot", "stn-c0", "quick"),
    ("c0_e30_loc3", "mnist-rot", "stn-c0", "quick"),
    ("c0_e20_loc10", "mnist-rot", "stn-c0", "quick"),
)


#: The translated-MNIST calibration runs (seed 0; seed 1 too at 30 epochs), one folder per length: the quick
#: profile's translated-MNIST settings (localisation learning rate ×0.1) on longer schedules, for the CNN and
#: the two input-level STs that the 8-epoch quick runs leave behind it. 12 epochs: rotated MNIST's schedule (÷10 after epochs 7
#: and 9); 20 epochs: ÷10 after epochs 12 and 15; 30 epochs: ÷10 after epochs 18 and 22 (every drop before
#: the last fifth).
TRANSLATION_TAGS = ("trans_e12", "trans_e20", "trans_e30")
TRANSLATION_MODELS = ("cnn", "stn-c0", "stn-sl1")
#: The seeds looked for at each length: seed 0 everywhere, further seeds where they were trained.
TRANSLATION_SEEDS = (0, 1, 2)


def calibration_root(root: str | Path | None = None) -> Path:
    return records_root(root) / "calibration"


def epochs(rec: Mapping[str, Any]) -> float:
    """The length of a MNIST run in epochs, read from its config."""
    s = rec["config"]["settings"]
    return s["iterations"] / (60_000 // s["batch_size"])


def label(rec: dict[str, Any]) -> str:
    """``"30 epochs, loc. lr ×1"``: what sets the run apart, read from its config."""
    return f"{epochs(rec):g} epochs, loc. lr ×{rec['config']['settings']['loc_lr_multiplier']:g}"


def rotation_runs(root: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """``{label: record}`` of the rotated-MNIST calibration runs that exist (none outside a clone)."""
    out = {}
    for tag, exp, model, profile in ROTATION_RUNS:
        rec = records.load_record(exp, model, profile, 0, root=calibration_root(root) / tag)
        if rec is not None:
            out[label(rec)] = rec
    return out


def longest_slope(runs: dict[str, dict[str, Any]]) -> tuple[str, float, float] | None:
    """``(label, epochs, final slope)`` of the longest run with loc. lr ×1 (the paper's), if any."""
    best = None
    for lab, rec in runs.items():
        s = rec["config"]["settings"]
        if s["loc_lr_multiplier"] != settings_for("full", rec["experiment"]).loc_lr_multiplier:
            continue
        epochs = rec["curves"]["epoch"][-1]
        if best is None or epochs > best[1]:
            best = (lab, epochs, float(rec["metrics"]["orientation"]["slope"]))
    return best


def summary_text(runs: dict[str, dict[str, Any]], canonical_slope: float) -> str:
    """What the calibration runs say about the orientation regime (Markdown), from their records."""
    if not runs:
        return "No calibration runs are stored with these records."
    parts = []
    for lab, rec in runs.items():
        o = rec["metrics"]["orientation"]
        slope, r = float(o["slope"]), float(o["abs_r"])
        where = ("canonicalises" if slope <= canonical_slope else
                 "has collapsed: its transform no longer depends on the digit" if abs(slope) < 0.02 and r < 0.05 else
                 f"stays short of the {canonical_slope:g} the orientation claims need")
        parts.append(f"{lab}: slope {slope:.2f}, |r| {r:.2f}, test error {100 * rec['metrics']['test_error']:.2f}% "
                     f"({where})")
    best = longest_slope(runs)
    text = "Single calibration runs of STN-C0 (seed 0) with longer schedules: " + "; ".join(parts) + "."
    if best is not None and best[2] > canonical_slope:
        change = late_change(runs[best[0]])
        how = (f"changes by only {change:+.2f} over its last third" if abs(change) < 0.05 else
               f"is still moving ({change:+.2f} over its last third)")
        text += (f" The longest run at the paper's localisation learning rate ({best[0]}) ends at {best[2]:.2f} and "
                 f"{how}: within a CPU budget STN-C0 does not reach the regime the paper's Figure 3 is about, "
                 "which the `full` profile's 150k iterations would have to show.")
    return text


def late_change(rec: dict[str, Any], part: float = 1 / 3) -> float:
    """How much the slope changed over the last ``part`` of a run's epochs (end minus start of that part)."""
    pts = [(e, o["slope"]) for e, o in zip(rec["curves"]["epoch"], rec["curves"]["orientation"]) if o is not None]
    start = pts[-1][0] * (1 - part)
    late = [v for e, v in pts if e >= start]
    return float(late[-1] - late[0])


# ---------------------------------------------------------------------------------------
# translated MNIST: does a longer schedule put the input-level STs ahead of the CNN?


def translation_runs(root: str | Path | None = None) -> dict[str, list[dict[str, Any]]]:
    """``{model: [record per longer run, by length, then seed]}`` of the translated-MNIST calibration runs
    that exist (none outside a clone)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for tag in TRANSLATION_TAGS:
        for model in TRANSLATION_MODELS:
            for seed in TRANSLATION_SEEDS:
                rec = records.load_record("mnist-trans", model, "quick", seed, root=calibration_root(root) / tag)
                if rec is not None:
                    out.setdefault(model, []).append(rec)
    return {model: sorted(recs, key=lambda r: (epochs(r), r["seed"])) for model, recs in out.items()}


def length_table(profile_runs: Mapping[str, Sequence[Mapping[str, Any]]],
                 longer: Mapping[str, Mapping[str, Any] | Sequence[Mapping[str, Any]]]) -> pd.DataFrame:
    """Test error (%) and the fall over the last fifth (pp) of the profile's runs and of the longer ones.

    One row per model that has a longer run; seed 0 on both sides, and the mean over the profile's seeds
    beside it. ``longer`` maps a model to its longer run or runs; each length gets the columns
    ``seed0_e<epochs>`` and ``fall_e<epochs>`` (seed 0; NaN where a model has no such run) and
    ``mean_e<epochs>``, ``sd_e<epochs>`` and ``seeds_e<epochs>`` over every seed trained that long.
    ``table.attrs["lengths"]`` lists the longer lengths, shortest first.
    """
    rows, lengths = [], set()
    for model, recs in longer.items():
        recs = [recs] if isinstance(recs, Mapping) else list(recs)
        runs = list(profile_runs.get(model) or ())
        seed0 = next((r for r in runs if r["seed"] == 0), None)
        if seed0 is None:
            raise ValueError(f"no seed-0 record of {model!r} among the profile's runs; models there: "
                             f"{', '.join(profile_runs) or 'none'}")
        errs = [100 * float(r["metrics"]["test_error"]) for r in runs]
        row = {
            "model": model, "short_epochs": epochs(seed0),
            "short_mean": statistics.fmean(errs), "short_sd": statistics.stdev(errs) if len(errs) > 1 else float("nan"),
            "short_seeds": len(errs),
            "short_seed0": 100 * float(seed0["metrics"]["test_error"]), "short_fall": late_drop_pct(seed0),
        }
        by_length: dict[float, list[Mapping[str, Any]]] = {}
        for rec in recs:
            by_length.setdefault(epochs(rec), []).append(rec)
        for n, same in by_length.items():
            lengths.add(n)
            first = next((r for r in same if r["seed"] == 0), None)
            if first is not None:
                row[f"seed0_e{n:g}"] = 100 * float(first["metrics"]["test_error"])
                row[f"fall_e{n:g}"] = late_drop_pct(first)
            errs = [100 * float(r["metrics"]["test_error"]) for r in same]
            row[f"mean_e{n:g}"] = statistics.fmean(errs)
            row[f"sd_e{n:g}"] = statistics.stdev(errs) if len(errs) > 1 else float("nan")
            row[f"seeds_e{n:g}"] = len(errs)
        rows.append(row)
    table = pd.DataFrame(rows).set_index("model") if rows else pd.DataFrame()
    table.attrs["table"] = "length"
    table.attrs["lengths"] = sorted(lengths)
    return table


def seeded_lengths(table: pd.DataFrame) -> list[float]:
    """The longer lengths at which some model was trained with more than one seed."""
    return [n for n in table.attrs.get("lengths", []) if f"seeds_e{n:g}" in table.columns
            and (table[f"seeds_e{n:g}"].fillna(0) > 1).any()]


def _has(table: pd.DataFrame, column: str, model: str) -> bool:
    return column in table.columns and not pd.isna(table.loc[model, column])


def length_text(table: pd.DataFrame, experiment: str = "mnist-trans") -> str:
    """What the longer runs say about the 'every STN beats the CNN' and convergence checks (Markdown).

    The moves of each model's seed-0 error with length, then the comparison with the CNN and the
    convergence check at the longest length the CNN was trained for, and there, where the CNN and an STN
    have several seeds, each STN's mean gap to the CNN against the seeds' spread.
    """
    if table.empty:
        return "No longer calibration runs of translated MNIST are stored with these records."
    if "cnn" not in table.index:
        raise ValueError(f"the length table has no CNN row to compare with; rows: {', '.join(table.index)}")
    short, lengths = table["short_epochs"].iloc[0], table.attrs["lengths"]
    cnn_lengths = [n for n in lengths if _has(table, f"seed0_e{n:g}", "cnn")]
    if not cnn_lengths:
        raise ValueError("the length table has no longer run of the CNN")
    moves = "; ".join(
        display_name(m) + " " + " → ".join(f"{x:.2f}%" for x in [r.short_seed0] + [
            r[f"seed0_e{n:g}"] for n in lengths if _has(table, f"seed0_e{n:g}", m)])
        for m, r in table.iterrows())
    long_ = cnn_lengths[-1]
    at, fall_col = f"seed0_e{long_:g}", f"fall_e{long_:g}"
    cnn = table.loc["cnn", at]
    stns = [m for m in table.index if m != "cnn"]
    missing = [display_name(m) for m in stns if not _has(table, at, m)]
    present = [m for m in stns if _has(table, at, m)]
    behind = [display_name(m) for m in present if table.loc[m, at] >= cnn]
    ahead = [display_name(m) for m in present if table.loc[m, at] < cnn]
    limit = CONVERGED_PP[experiment]
    falls = table.loc[["cnn", *present], fall_col]
    worst, short_worst = falls.idxmax(), table["short_fall"].idxmax()
    fall, short_fall = falls[worst], table.loc[short_worst, "short_fall"]
    spelled = " and ".join(filter(None, [", ".join(f"{n:g}" for n in lengths[:-1]), f"{lengths[-1]:g}"]))
    text = f"Seed 0 trained for {spelled} epochs instead of {short:g}: {moves}. "
    gaps = []
    for m in stns:
        both = [(short, table.loc[m, "short_seed0"] - table.loc["cnn", "short_seed0"])] + [
            (n, table.loc[m, f"seed0_e{n:g}"] - table.loc["cnn", f"seed0_e{n:g}"])
            for n in lengths if _has(table, f"seed0_e{n:g}", m) and _has(table, f"seed0_e{n:g}", "cnn")]
        if len(both) > 1:
            where = "" if len(both) == len(lengths) + 1 else f" ({' → '.join(f'{n:g}' for n, _ in both)} epochs)"
            gaps.append(f"{display_name(m)} {' → '.join(f'{g:+.2f}' for _, g in both)} pp{where}")
    if gaps:
        text += (f"Each STN's error minus the CNN's at {' → '.join(f'{n:g}' for n in [short, *lengths])} epochs: "
                 f"{'; '.join(gaps)}. ")
    if not present:
        text += f"At {long_:g} epochs only the CNN was trained"
    elif not behind:
        text += f"At {long_:g} epochs every STN here is below the CNN, as in the paper"
    elif not ahead:
        text += f"At {long_:g} epochs no STN here is below the CNN"
    else:
        text += (f"At {long_:g} epochs {', '.join(ahead)} {'is' if len(ahead) == 1 else 'are'} below the CNN and "
                 f"{', '.join(behind)} {'is' if len(behind) == 1 else 'are'} not")
    if missing:
        text += f" ({', '.join(missing)} {'was' if len(missing) == 1 else 'were'} not trained that long)"
    text += ("; " + (f"no learning curve falls over the last fifth of training at {long_:g} epochs" if fall <= 0 else
                     f"the largest fall over the last fifth of training at {long_:g} epochs is {display_name(worst)}'s "
                     f"{fall:+.2f} pp")
             + f" ({'within' if fall < limit else 'beyond'} the {limit:g} pp of the convergence check; at {short:g} "
             f"epochs {display_name(short_worst)}'s fell {short_fall:+.2f} pp). ")
    text += _seeds_text(table, long_, ["cnn", *present])
    most = max([1, *(int(table[f"seeds_e{n:g}"].max()) for n in seeded_lengths(table))])
    return text + (f"{'One seed' if most == 1 else f'At most {most} seeds'}: a trend with training length, "
                   "not a verdict.")


def _seeds_text(table: pd.DataFrame, n: float, models: Sequence[str]) -> str:
    """The mean over seeds at ``n`` epochs, and each STN's mean gap to the CNN against the seeds' spread,
    where the CNN and an STN were trained with more than one seed (else "")."""
    col = f"seeds_e{n:g}"
    seeded = [m for m in models if col in table.columns and table.loc[m, col] > 1]
    if "cnn" not in seeded or len(seeded) < 2:
        return ""
    means = ", ".join(f"{display_name(m)} {table.loc[m, f'mean_e{n:g}']:.2f} ± {table.loc[m, f'sd_e{n:g}']:.2f}% "
                      f"({int(table.loc[m, col])} seeds)" for m in seeded)
    gaps = []
    for m in seeded[1:]:
        gap = table.loc[m, f"mean_e{n:g}"] - table.loc["cnn", f"mean_e{n:g}"]
        spread = max(table.loc[m, f"sd_e{n:g}"], table.loc["cnn", f"sd_e{n:g}"])
        gaps.append(f"{display_name(m)} {gap:+.2f} pp ({'within' if abs(gap) < spread else 'beyond'} the larger "
                    f"standard deviation over seeds, {spread:.2f} pp)")
    return f"Over the seeds trained for {n:g} epochs: {means}; the mean gap to the CNN: {'; '.join(gaps)}. "
