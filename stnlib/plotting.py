"""Every figure of the book, in one style (opaque white backgrounds, readable in dark mode).

Plotting functions take records (or arrays decoded from them) and draw; they compute no
statistics beyond what :mod:`stnlib.measures` provides.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

from stnlib import measures, records
from stnlib.nn import display_name

PALETTE = dict(zip(["cnn", "stn-c0", "stn-c1", "stn-sl1", "stn-dl1", "stn-ec1", "ecnn"],
                   sns.color_palette("colorblind", 7)))
# SVHN's deeper placements: one hue per family (C blue, SL orange, DL green), darker with depth.
for _family, _cmap in (("c", "Blues"), ("sl", "Oranges"), ("dl", "Greens")):
    for _depth, _colour in zip((3, 6, 8), sns.color_palette(_cmap, 4)[1:]):
        PALETTE[f"stn-{_family}{_depth}"] = _colour


def label(model: str) -> str:
    return display_name(model)


def set_style() -> None:
    """One style for every figure: white, opaque figure and axes backgrounds (dark-mode safe)."""
    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind")
    plt.rcParams.update({
        "figure.facecolor": "white",
        "axes.facecolor": "white",
        "savefig.facecolor": "white",
        "savefig.transparent": False,
        "figure.dpi": 100,
        "savefig.dpi": 120,
        "image.cmap": "gray",
    })


def _deming_line(ax: Any, slope: float, intercept: float, lim: float) -> None:
    xs = np.array([-lim, lim])
    sign = "+" if intercept >= 0 else "−"
    ax.plot(xs, slope * xs + intercept, color="tab:red", lw=1.5,
            label=f"{slope:.2f}·x {sign} {abs(intercept):.1f}")


def angle_histograms(recs: Mapping[str, Mapping[str, Any]], *, title: str = "") -> plt.Figure:
    """Figure 3: predicted against applied rotation angle, one 2-D histogram per model.

    ``recs`` maps model name to one record (rotated MNIST). The red line is the Deming fit over
    the whole test pass; an ST that undoes the rotation lies on slope −1.
    """
    models = [m for m, r in recs.items() if "angle_hist" in r["summaries"]]
    fig, axes = plt.subplots(1, len(models), figsize=(3.3 * len(models), 3.5), squeeze=False)
    for ax, m in zip(axes[0], models):
        h = recs[m]["summaries"]["angle_hist"]
        lim = h["lim"]
        dense = measures.dense_histogram2d(h)
        ax.imshow(np.log1p(dense.T), origin="lower", extent=[-lim, lim, -lim, lim],
                  cmap="Greys", aspect="equal", interpolation="nearest")
        o = recs[m]["metrics"]["orientation"]
        _deming_line(ax, o["slope"], o["intercept"], 90)
        ax.plot([-90, 90], [90, -90], color="tab:blue", lw=0.8, ls="--", alpha=0.7,
                label="perfect (−x)")
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_xticks([-90, -45, 0, 45, 90])
        ax.set_yticks([-90, -45, 0, 45, 90])
        ax.set_xlabel("applied angle (°)")
        ax.set_title(f"{label(m)}\n|r| = {o['abs_r']:.2f}, dev = {o['pooled_class_deviation']:.0f}°",
                     fontsize=10)
        ax.legend(loc="upper right", fontsize=7, framealpha=0.9)
        ax.grid(False)
    axes[0][0].set_ylabel("predicted angle (°)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def shift_histograms(recs: Mapping[str, Mapping[str, Any]], *, title: str = "") -> plt.Figure:
    """Predicted against applied shift (x and y), one pair of 2-D histograms per model."""
    models = [m for m, r in recs.items() if "shift_hist_x" in r["summaries"]]
    fig, axes = plt.subplots(2, len(models), figsize=(3.0 * len(models), 6.0), squeeze=False)
    for j, m in enumerate(models):
        o = recs[m]["metrics"]["orientation"]
        for i, axis in enumerate(("x", "y")):
            ax = axes[i][j]
            h = recs[m]["summaries"][f"shift_hist_{axis}"]
            lim = h["lim"]
            ax.imshow(np.log1p(measures.dense_histogram2d(h).T), origin="lower",
                      extent=[-lim, lim, -lim, lim], cmap="Greys", aspect="equal",
                      interpolation="nearest")
            _deming_line(ax, o[axis]["slope"], o[axis]["intercept"], 16)
            ax.set_xlim(-lim, lim)
            ax.set_ylim(-lim, lim)
            ax.set_title(f"{label(m)}, {axis}: |r| = {o[axis]['abs_r']:.2f}", fontsize=9)
            ax.set_xlabel(f"applied {axis} shift (px)")
            ax.legend(loc="upper right", fontsize=7, framealpha=0.9)
            ax.grid(False)
        axes[0][0].set_ylabel("predicted x shift (px)")
        axes[1][0].set_ylabel("predicted y shift (px)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def examples(recs: Mapping[str, Mapping[str, Any]], *, n: int = 6, title: str = "") -> plt.Figure:
    """Figure 2: test inputs (top row) and what each STN makes of them (one row per model).

    For a feature-map ST (STN-C1, STN-CX) two rows: its predicted transform applied to the input
    image (what it "intends" to undo) and its transformed feature maps (channel 0, in grey).
    Image rows are drawn in colour when the images have three channels (SVHN).
    """
    rows: list[tuple[str, list[np.ndarray], bool]] = []  # (label, images, is_feature_map)
    first = next(iter(recs.values()))["summaries"]["examples"]
    rows.append(("input", [records.decode_image(d) for d in first["inputs"][:n]], False))
    for m, r in recs.items():
        ex = r["summaries"].get("examples", {})
        if "st_output" not in ex:
            continue
        if ex["st_output_kind"].startswith("feature"):
            rows.append((f"{label(m)}\nθ on input", [records.decode_image(d)
                                                    for d in ex["theta_on_input"][:n]], False))
            rows.append((f"{label(m)}\nfeature map", [records.decode_image(d)
                                                     for d in ex["st_output"][:n]], True))
        else:
            rows.append((label(m), [records.decode_image(d) for d in ex["st_output"][:n]], False))
    fig, axes = plt.subplots(len(rows), n, figsize=(1.35 * n + 1.2, 1.35 * len(rows)),
                             squeeze=False)
    for i, (name, ims, is_feature_map) in enumerate(rows):
        for j in range(n):
            ax = axes[i][j]
            im = ims[j]
            if im.ndim == 3 and im.shape[0] == 3 and not is_feature_map:
                ax.imshow(np.clip(np.transpose(im, (1, 2, 0)), 0, 1), interpolation="nearest")
            else:
                im = im[0] if im.ndim == 3 else im  # grey digit, or feature map 0
                ax.imshow(im, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
        axes[i][0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
    info = first.get("info", {})
    if "angle_deg" in info:
        for j in range(n):
            axes[0][j].set_title(f"{info['angle_deg'][j]:+.0f}°", fontsize=9)
    elif "shift_px" in info:
        for j in range(n):
            dx, dy = info["shift_px"][j]
            axes[0][j].set_title(f"({dx:+.0f}, {dy:+.0f})", fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def orientation_curves(runs: Mapping[str, Mapping[str, Any]], *, stat: str = "abs_r",
                       ylabel: str | None = None, ax: Any = None, title: str = "") -> Any:
    """An orientation statistic (``abs_r``, ``slope`` or ``pooled_class_deviation``) vs epoch.

    ``runs`` maps a legend label to a record.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(5.2, 3.4))
    for name, r in runs.items():
        c = r["curves"]
        pts = [(e, o[stat]) for e, o in zip(c["epoch"], c["orientation"]) if o is not None]
        if not pts:
            continue
        e, v = zip(*pts)
        ax.plot(e, v, marker="o", ms=3, label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel or stat)
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8)
    return ax


def learning_curves(recs: Mapping[str, Mapping[str, Any]], *, ax: Any = None,
                    title: str = "") -> Any:
    """Test error (on the curve subset, one pass) against epoch, one line per model."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5.2, 3.4))
    for m, r in recs.items():
        c = r["curves"]
        ax.plot(c["epoch"], [100 * e for e in c["test_error"]], marker="o", ms=3,
                label=label(m), color=PALETTE.get(m))
    ax.set_xlabel("epoch")
    ax.set_ylabel("test error (%)")
    ax.set_yscale("log")
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8)
    return ax


def misalignment(recs: Mapping[str, Mapping[str, Any]], *, title: str = "") -> plt.Figure:
    """Feature-map misalignment against angle (or shift): the measured version of equation (1)."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for m, r in recs.items():
        mis = r["summaries"].get("misalignment")
        if not mis:
            continue
        xs = mis.get("angle_deg", mis.get("shift_px"))
        axes[0].plot(xs, mis["feature_maps"], marker="o", ms=3, label=label(m),
                     color=PALETTE.get(m))
        if "after_st" in mis:
            axes[1].plot(xs, mis["after_st"], marker="o", ms=3, label=label(m),
                         color=PALETTE.get(m))
    kind = next(iter(recs.values()))["summaries"]["misalignment"]["kind"]
    xl = "applied angle (°)" if kind == "rotation" else "applied shift (px, both axes)"
    axes[0].set_title("first-layer maps, inversely warped", fontsize=10)
    axes[0].set_ylabel("relative distance")
    axes[1].set_title("ST output vs. ST output of the original", fontsize=10)
    for ax in axes:
        ax.set_xlabel(xl)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def error_vs_depth(ours: Mapping[str, Sequence[float]], paper: Mapping[str, float] | None,
                   depths: Sequence[int], *, title: str = "", ylabel: str = "sequence error (%)"
                   ) -> plt.Figure:
    """Table 2 as a figure: error against placement depth X, one line per family (CX, SLX, DLX).

    ``ours`` maps model name (``stn-c0``, ``stn-sl3``, ...) to the error (%) per seed.
    """
    fig, ax = plt.subplots(figsize=(5.6, 3.6))
    for fam, name in (("c", "STN-CX"), ("sl", "STN-SLX"), ("dl", "STN-DLX")):
        xs, ys, es = [], [], []
        for d in depths:
            key = "stn-c0" if d == 0 else f"stn-{fam}{d}"
            if key in ours:
                mu, sd, _ = measures.mean_std(ours[key])
                xs.append(d)
                ys.append(mu)
                es.append(0.0 if np.isnan(sd) else sd)
        if xs:
            ax.errorbar(xs, ys, yerr=es, marker="o", capsize=3, label=f"{name} (ours)")
        if paper:
            px = [d for d in depths if ("stn-c0" if d == 0 else f"stn-{fam}{d}") in paper]
            if px:
                ax.plot(px, [paper["stn-c0" if d == 0 else f"stn-{fam}{d}"] for d in px],
                        ls="--", marker="x", color="grey", alpha=0.8,
                        label=f"{name} (paper)")
    ax.set_xlabel("depth X (conv blocks before the ST)")
    ax.set_ylabel(ylabel)
    ax.set_xticks(list(depths))
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
