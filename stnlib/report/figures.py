"""Every figure of the book, drawn at the size it is shown.

A figure is drawn at its display size (:data:`COLUMN_IN` wide for the text column, :data:`WIDE_IN` for
the multi-panel ones) with text no smaller than :data:`MIN_FONT_PT`, rendered at 2× for sharp
screens, and shown with that size declared (:func:`show`). The PNG carries two text chunks the
browser check reads (``stnlib:width_in``, ``stnlib:min_font_pt``) to verify that no text is smaller
than 9 px as the page renders it, on a wide screen and on a phone. Colours come from
:mod:`stnlib.report.palette`, one per model everywhere.

Plotting functions take records and draw; they compute no statistic beyond what
:mod:`stnlib.measures` provides.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # drawing happens here; notebooks display the PNG bytes :func:`show` makes
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.text import Text  # noqa: E402
from PIL import Image, PngImagePlugin  # noqa: E402

from stnlib import measures, records  # noqa: E402
from stnlib.nn import display_name  # noqa: E402
from stnlib.report.palette import line_kwargs  # noqa: E402

#: Display widths (inches at 96 CSS px per inch): the text column, and the widest figure. A 420 px phone
#: window shows an image at most 388 px wide; 9.5 pt text then stays at 9 px or more (``tools/check_html.py``)
#: for figures up to 388·9.5/(9·72) ≈ 5.69 in wide.
COLUMN_IN = 5.0
WIDE_IN = 5.6
#: The smallest font in any figure, and the base size.
MIN_FONT_PT = 9.5
BASE_FONT_PT = 10.5
#: Pixels per inch of the PNG: twice the 96 CSS px per inch it is shown at.
DPI = 192

WIDTH_KEY, FONT_KEY = "stnlib:width_in", "stnlib:min_font_pt"
#: Fits and reference lines: colours no model has (see :mod:`stnlib.report.palette`).
FIT_COLOR, REFERENCE_COLOR = "#EE3377", "#333333"


def set_style() -> None:
    """One style for every figure: opaque white backgrounds (readable in dark mode), fonts ≥ 9.5 pt."""
    plt.rcParams.update({
        "figure.facecolor": "white", "axes.facecolor": "white", "savefig.facecolor": "white",
        "savefig.transparent": False, "image.cmap": "gray", "font.size": BASE_FONT_PT,
        "axes.titlesize": BASE_FONT_PT, "axes.labelsize": BASE_FONT_PT, "xtick.labelsize": MIN_FONT_PT,
        "ytick.labelsize": MIN_FONT_PT, "legend.fontsize": MIN_FONT_PT, "legend.title_fontsize": MIN_FONT_PT,
        "figure.titlesize": BASE_FONT_PT + 0.5, "axes.grid": True, "grid.alpha": 0.3,
        "axes.spines.top": False, "axes.spines.right": False, "figure.dpi": 96,
    })


set_style()


def smallest_font_pt(fig: plt.Figure) -> float:
    """The smallest font size (points) of any visible, non-empty text in ``fig``."""
    sizes = [t.get_fontsize() for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
    return float(min(sizes)) if sizes else float("inf")


def png_bytes(fig: plt.Figure) -> bytes:
    """The figure as a PNG at :data:`DPI`, carrying its drawn width and smallest font as text chunks.

    Raises ``ValueError`` for a figure wider than :data:`WIDE_IN` or with text under :data:`MIN_FONT_PT`:
    the browser would shrink it below readable size on a phone, so it is a drawing bug, caught here
    rather than in the built book.
    """
    width, font = float(fig.get_figwidth()), smallest_font_pt(fig)
    if width > WIDE_IN + 1e-9 or font < MIN_FONT_PT:
        plt.close(fig)
        raise ValueError(f"figure {width:.2f} in wide with {font:g} pt text: figures must be at most "
                         f"WIDE_IN = {WIDE_IN} in wide with text of at least MIN_FONT_PT = {MIN_FONT_PT} pt")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    plt.close(fig)
    buf.seek(0)
    img = Image.open(buf).convert("RGB")  # the background is opaque: an alpha channel only adds bytes
    info = PngImagePlugin.PngInfo()
    info.add_text(WIDTH_KEY, repr(width))
    info.add_text(FONT_KEY, repr(font))
    out = io.BytesIO()
    img.save(out, format="png", pnginfo=info, optimize=True)
    return out.getvalue()


def show(fig: plt.Figure):
    """Display ``fig`` in a notebook at the size it was drawn (its width declared in CSS pixels)."""
    from IPython.display import Image as DisplayImage

    width_px = int(round(fig.get_figwidth() * 96))
    return DisplayImage(data=png_bytes(fig), format="png", width=width_px)


def _deming_line(ax: Any, slope: float, intercept: float, lim: float) -> None:
    xs = np.array([-lim, lim])
    sign = "+" if intercept >= 0 else "−"
    ax.plot(xs, slope * xs + intercept, color=FIT_COLOR, lw=1.6, label=f"fit {slope:.2f}x {sign} {abs(intercept):.0f}")


def angle_histograms(recs: Mapping[str, Mapping[str, Any]], *, expectation: Mapping[str, str] | None = None
                     ) -> plt.Figure:
    """The paper's Figure 3: predicted against applied rotation, one 2-D histogram per model (seed 0).

    ``expectation`` maps a model to what the paper's Figure 3 shows for it, written on its panel.
    The orange line is the Deming fit over the whole test pass; an ST that undoes the rotation lies on
    the dotted diagonal of slope −1.
    """
    models = [m for m, r in recs.items() if "angle_hist" in r["summaries"]]
    cols = 2 if len(models) > 1 else 1
    rows = -(-len(models) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(WIDE_IN if cols > 1 else COLUMN_IN, 2.9 * rows + 0.4),
                             squeeze=False, sharex=True, sharey=True)
    for ax, m in zip(axes.flat, models):
        h = recs[m]["summaries"]["angle_hist"]
        lim = h["lim"]
        ax.imshow(np.log1p(measures.dense_histogram2d(h).T), origin="lower", extent=[-lim, lim, -lim, lim],
                  cmap="Greys", aspect="equal", interpolation="nearest")
        o = recs[m]["metrics"]["orientation"]
        _deming_line(ax, o["slope"], o["intercept"], 90)
        ax.plot([-90, 90], [90, -90], color=REFERENCE_COLOR, lw=1.0, ls=":", label="slope −1: undoes it")
        ax.set(xlim=(-lim, lim), ylim=(-lim, lim), xticks=[-90, 0, 90], yticks=[-90, 0, 90])
        ax.set_title(display_name(m), color=line_kwargs(m)["color"], fontweight="bold")
        ax.text(0.97, 0.96, f"slope {o['slope']:.2f}\n|r| {o['abs_r']:.2f}", transform=ax.transAxes, ha="right",
                va="top", fontsize=MIN_FONT_PT)
        if expectation and m in expectation:
            ax.text(0.03, 0.04, expectation[m], transform=ax.transAxes, fontsize=MIN_FONT_PT, va="bottom",
                    bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "#999999", "alpha": 0.9})
        ax.grid(False)
    for ax in axes.flat[len(models):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("predicted (°)")
    for ax in axes[-1, :]:
        ax.set_xlabel("applied (°)")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, ["Deming fit", labels[-1]], loc="lower center", ncols=2, frameon=False)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig


def shift_histograms(recs: Mapping[str, Mapping[str, Any]]) -> plt.Figure:
    """Predicted against applied shift, x and y, one pair of 2-D histograms per model (seed 0)."""
    models = [m for m, r in recs.items() if "shift_hist_x" in r["summaries"]]
    fig, axes = plt.subplots(2, len(models), figsize=(WIDE_IN, 4.9), squeeze=False)
    for j, m in enumerate(models):
        o = recs[m]["metrics"]["orientation"]
        for i, axis in enumerate(("x", "y")):
            ax = axes[i][j]
            h = recs[m]["summaries"][f"shift_hist_{axis}"]
            lim = h["lim"]
            ax.imshow(np.log1p(measures.dense_histogram2d(h).T), origin="lower", extent=[-lim, lim, -lim, lim],
                      cmap="Greys", aspect="equal", interpolation="nearest")
            _deming_line(ax, o[axis]["slope"], o[axis]["intercept"], 16)
            ax.set(xlim=(-lim, lim), ylim=(-lim, lim), xticks=[-16, 0, 16], yticks=[-16, 0, 16])
            ax.set_title(f"{display_name(m)} {axis}: |r| {o[axis]['abs_r']:.2f}")
            ax.grid(False)
        axes[1][j].set_xlabel("applied (px)")
    axes[0][0].set_ylabel("predicted x (px)")
    axes[1][0].set_ylabel("predicted y (px)")
    fig.tight_layout()
    return fig


def _decode_rows(recs: Mapping[str, Mapping[str, Any]], n: int) -> list[tuple[str, list[np.ndarray], bool]]:
    first = next(iter(recs.values()))["summaries"]["examples"]
    rows = [("input", [records.decode_image(d) for d in first["inputs"][:n]], False)]
    for m, r in recs.items():
        ex = r["summaries"].get("examples", {})
        if "st_output" not in ex:
            continue
        if ex["st_output_kind"].startswith("feature"):
            rows.append((f"{display_name(m)}\nθ on input", [records.decode_image(d) for d in ex["theta_on_input"][:n]],
                         False))
            rows.append((f"{display_name(m)}\nmaps", [records.decode_image(d) for d in ex["st_output"][:n]], True))
        else:
            rows.append((display_name(m), [records.decode_image(d) for d in ex["st_output"][:n]], False))
    return rows


def examples(recs: Mapping[str, Mapping[str, Any]], *, n: int = 6) -> plt.Figure:
    """The paper's Figure 2: test inputs (top row) and what each ST makes of them (a row per model).

    A feature-map ST gets two rows: its predicted transform applied to the input image (what it "tries"
    to undo, as the authors draw it) and the feature maps it passes on (channel 0). Colour images (SVHN)
    are drawn in colour.
    """
    rows = _decode_rows(recs, n)
    side = (COLUMN_IN - 1.1) / n
    fig, axes = plt.subplots(len(rows), n, figsize=(COLUMN_IN, side * len(rows) + 0.35), squeeze=False)
    for i, (name, ims, is_map) in enumerate(rows):
        for j in range(n):
            ax, im = axes[i][j], ims[j]
            if im.ndim == 3 and im.shape[0] == 3 and not is_map:
                ax.imshow(np.clip(np.transpose(im, (1, 2, 0)), 0, 1), interpolation="nearest")
            else:
                ax.imshow(im[0] if im.ndim == 3 else im, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set(xticks=[], yticks=[])
            ax.grid(False)
        axes[i][0].set_ylabel(name, rotation=0, ha="right", va="center")
    info = next(iter(recs.values()))["summaries"]["examples"].get("info", {})
    for j in range(n):
        if "angle_deg" in info:
            axes[0][j].set_title(f"{info['angle_deg'][j]:+.0f}°")
        elif "shift_px" in info:
            axes[0][j].set_title(f"{info['shift_px'][j][0]:+.0f},{info['shift_px'][j][1]:+.0f}")
    fig.tight_layout(pad=0.3)
    return fig


def _seed_band(ax: Any, model: str, runs: Sequence[Mapping[str, Any]], stat: str, label: str | None = None) -> None:
    """One model's statistic against epoch: the mean over seeds as a line, the seeds' range as a band."""
    series = []
    for r in runs:
        pts = [(e, o[stat]) for e, o in zip(r["curves"]["epoch"], r["curves"]["orientation"]) if o is not None]
        series.append(pts)
    n = min(len(s) for s in series)
    epochs = np.array([p[0] for p in series[0][:n]])
    vals = np.array([[p[1] for p in s[:n]] for s in series])
    kw = line_kwargs(model)
    ax.plot(epochs, vals.mean(0), label=(label or display_name(model)) + (
        f" ({len(runs)} seeds)" if len(runs) > 1 else f" (seed {runs[0]['seed']})"), ms=4, **kw)
    if len(runs) > 1:
        ax.fill_between(epochs, vals.min(0), vals.max(0), color=kw["color"], alpha=0.18, lw=0)


def orientation_trend(by_model: Mapping[str, Sequence[Mapping[str, Any]]], *, title: str = "",
                      canonical_slope: float | None = None) -> plt.Figure:
    """How the orientation forms with training: the slope and |r| of each ST against epoch, mean over
    seeds with the seeds' range as a band. ``canonical_slope`` draws the regime threshold."""
    fig, axes = plt.subplots(1, 2, figsize=(WIDE_IN, 2.9))
    for m, runs in by_model.items():
        if runs and any(o is not None for o in runs[0]["curves"]["orientation"]):
            _seed_band(axes[0], m, runs, "slope")
            _seed_band(axes[1], m, runs, "abs_r")
    if canonical_slope is not None:
        axes[0].axhline(canonical_slope, color="#333333", ls=":", lw=1)
        axes[0].text(0.02, canonical_slope, f" canonicalises below {canonical_slope:g}", va="bottom",
                     transform=axes[0].get_yaxis_transform(), fontsize=MIN_FONT_PT)
    axes[0].set(xlabel="epoch", ylabel="slope (−1: undoes it)")
    axes[1].set(xlabel="epoch", ylabel="|r|", ylim=(0, 1))
    if title:
        fig.suptitle(title)
    axes[1].legend(loc="lower right")
    fig.tight_layout()
    return fig


def slope_with_length(model: str, runs: Sequence[Mapping[str, Any]], longer: Mapping[str, Mapping[str, Any]], *,
                      canonical_slope: float | None = None) -> plt.Figure:
    """Does longer training make ``model`` canonicalise? Its slope against epoch in the profile's runs
    (mean over seeds, range as a band) and in single longer calibration runs (``{label: record}``),
    each in the model's colour with its own line style."""
    fig, ax = plt.subplots(figsize=(COLUMN_IN, 3.1))
    if runs:
        _seed_band(ax, model, runs, "slope", label=f"{runs[0]['profile']} profile")
    kw = line_kwargs(model)
    for (lab, rec), ls in zip(longer.items(), ("--", ":", "-.", (0, (5, 1)))):
        pts = [(e, o["slope"]) for e, o in zip(rec["curves"]["epoch"], rec["curves"]["orientation"]) if o is not None]
        ax.plot(*zip(*pts), color=kw["color"], ls=ls, lw=1.4, gid=kw["gid"], label=f"{lab} (seed {rec['seed']})")
    if canonical_slope is not None:
        ax.axhline(canonical_slope, color=REFERENCE_COLOR, ls=":", lw=1)
        ax.text(0.98, canonical_slope, f"canonicalises below {canonical_slope:g}", va="bottom", ha="right",
                transform=ax.get_yaxis_transform(), fontsize=MIN_FONT_PT)
    ax.set(xlabel="epoch", ylabel=f"{display_name(model)} slope", ylim=(min(-1.0, ax.get_ylim()[0]), 0.1))
    ax.legend(loc="lower left", fontsize=MIN_FONT_PT)
    fig.tight_layout()
    return fig


def learning_curves(by_model: Mapping[str, Sequence[Mapping[str, Any]]], *, ylabel: str = "test error (%)"
                    ) -> plt.Figure:
    """Test error (curve subset, one pass) against epoch: the mean over seeds per model, log scale."""
    fig, ax = plt.subplots(figsize=(COLUMN_IN, 3.0))
    for m, runs in by_model.items():
        n = min(len(r["curves"]["epoch"]) for r in runs)
        epochs = np.array(runs[0]["curves"]["epoch"][:n])
        err = 100 * np.array([r["curves"]["test_error"][:n] for r in runs]).mean(0)
        ax.plot(epochs[1:], err[1:], ms=3, label=display_name(m), **line_kwargs(m))
    ax.set(xlabel="epoch", ylabel=ylabel, yscale="log")
    ax.legend(ncols=2)
    fig.tight_layout()
    return fig


def misalignment(by_model: Mapping[str, Mapping[str, Any]]) -> plt.Figure:
    """The measured equation (1): first-layer maps inversely warped (left), ST outputs compared (right)."""
    fig, axes = plt.subplots(1, 2, figsize=(WIDE_IN, 2.9))
    kind = "rotation"
    for m, r in by_model.items():
        mis = r["summaries"].get("misalignment")
        if not mis:
            continue
        kind = mis["kind"]
        xs = mis.get("angle_deg", mis.get("shift_px"))
        axes[0].plot(xs, mis["feature_maps"], ms=3, label=display_name(m), **line_kwargs(m))
        if "after_st" in mis:
            axes[1].plot(xs, mis["after_st"], ms=3, label=display_name(m), **line_kwargs(m))
    xl = "applied angle (°)" if kind == "rotation" else "shift (px, both axes)"
    axes[0].set(title="maps, inversely warped", ylabel="relative distance", xlabel=xl)
    axes[1].set(title="ST output vs. upright", xlabel=xl)
    # One legend for both panels, below them: models without an ST appear on the left panel only.
    entries = {lab: h for ax in axes for h, lab in zip(*ax.get_legend_handles_labels())}
    rows = -(-len(entries) // 4) if entries else 0
    if entries:
        fig.legend(list(entries.values()), list(entries), loc="lower center", ncols=min(len(entries), 4),
                   frameon=False)
    fig.tight_layout(rect=(0, 0.09 * rows, 1, 1))
    return fig


def error_vs_depth(ours: Mapping[str, Sequence[float]], paper: Mapping[str, float], depths: Sequence[int], *,
                   ours_label: str, paper_label: str = "paper, real SVHN") -> plt.Figure:
    """The paper's Table 2 as a figure: error against placement depth X, one line per family.

    ``ours`` maps a model to its error (%) per seed (mean, with the seeds' range as error bars), ``paper``
    to the published error (dashed, open markers). On the same axes when the two scales are within a
    factor 4 of each other, else side by side. A family the paper does not report (DLX) gets no paper line.
    """
    fams = {"c": "STN-CX", "sl": "STN-SLX", "dl": "STN-DLX"}
    key = (lambda f, d: "stn-c0" if d == 0 else f"stn-{f}{d}")
    same_axes = max(float(np.mean(v)) for v in ours.values()) <= 4 * max(paper.values())
    fig, axes = plt.subplots(1, 1 if same_axes else 2, figsize=(COLUMN_IN if same_axes else WIDE_IN, 3.3),
                             squeeze=False)
    ax_ours, ax_paper = axes[0][0], axes[0][0 if same_axes else 1]
    for f, name in fams.items():
        ds = [d for d in depths if key(f, d) in ours]
        if len(ds) > 1:
            vals = [ours[key(f, d)] for d in ds]
            mean = [float(np.mean(v)) for v in vals]
            ax_ours.errorbar(ds, mean, yerr=[[m - min(v) for m, v in zip(mean, vals)],
                                             [max(v) - m for m, v in zip(mean, vals)]],
                             capsize=3, label=f"{name}" + (", ours" if same_axes else ""), **line_kwargs(key(f, ds[-1])))
        pd = [d for d in depths if key(f, d) in paper]
        if len(pd) > 1:  # X = 0 alone is STN-C0, shared by every family: no line of its own
            ax_paper.plot(pd, [paper[key(f, d)] for d in pd], label=f"{name}" + (", paper" if same_axes else ""),
                          **line_kwargs(key(f, pd[-1]), paper=True))
    for ax, title in ((ax_ours, ours_label), (ax_paper, paper_label)):
        ax.set(xlabel="X (blocks before the ST)", xticks=list(depths))
        if not same_axes:
            ax.set_title(title)
    ax_ours.set_ylabel("sequence error (%)")
    handles, labels = ax_ours.get_legend_handles_labels()
    if same_axes:
        ax_ours.legend()
    else:
        fig.legend(handles, labels, loc="lower center", ncols=len(labels), frameon=False)
    fig.tight_layout(rect=(0, 0 if same_axes else 0.1, 1, 1))
    return fig
