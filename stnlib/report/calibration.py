"""Calibration runs: single runs with settings outside any profile, kept as records of their own.

They were trained to choose the quick profile's schedules (how long, which localisation learning rate),
and they show what the profile cannot: how the orientation an ST learns forms with longer training.
Each lives under ``<records>/calibration/<tag>/<profile>/<experiment>/<model>-seed<k>.json``: an
ordinary record, whose config says how it differs from the profile named in its path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stnlib import records
from stnlib.paths import records_root
from stnlib.profiles import settings_for

#: The calibration runs the MNIST chapter shows: (tag, experiment, model, the profile they started from).
ROTATION_RUNS = (
    ("c0_e30", "mnist-rot", "stn-c0", "quick"),
    ("c0_e30_loc3", "mnist-rot", "stn-c0", "quick"),
    ("c0_e20_loc10", "mnist-rot", "stn-c0", "quick"),
)


def calibration_root(root: str | Path | None = None) -> Path:
    return records_root(root) / "calibration"


def label(rec: dict[str, Any]) -> str:
    """``"30 epochs, loc. lr ×1"``: what sets the run apart, read from its config."""
    s = rec["config"]["settings"]
    per_epoch = 60_000 // s["batch_size"]
    return f"{s['iterations'] / per_epoch:g} epochs, loc. lr ×{s['loc_lr_multiplier']:g}"


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
