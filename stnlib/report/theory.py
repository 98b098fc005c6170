"""The theory chapter's one figure: the four ways to place a spatial transformer in a classifier.

A schematic, drawn at display size (:mod:`stnlib.report.figures`): one panel per architecture, one
above the other, the classification path on top and the localisation path below. Box fills say what a
box is (a layer of the classifier, a layer used only for localisation, the transformer); they are
greys and a pale yellow, not colours of :mod:`stnlib.report.palette`, which mean models. Each panel's
title is drawn in the palette colour of the architecture's member with X = 1 (STN-C0, STN-C1, STN-DL1,
STN-SL1), the colours the MNIST chapter draws them in.
"""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
from matplotlib.patches import FancyBboxPatch

from stnlib.report.figures import MIN_FONT_PT, REFERENCE_COLOR
from stnlib.report.palette import line_kwargs
from stnlib.report.figures import WIDE_IN

#: Box fills: what a box is, never which model (the palette's colours mean models).
CLASSIFIER, LOCALISATION, WARP = "#DDDDDD", "#FFF1A8", "#FFFFFF"

#: The panels: (title, palette model of its X = 1 member, the ST warps the input?, what the loc net reads).
ARCHITECTURES: tuple[tuple[str, str, bool, str], ...] = (
    ("STN-C0", "stn-c0", True, "image"),
    ("STN-CX", "stn-c1", False, "features"),
    ("STN-DLX", "stn-dl1", True, "copy"),
    ("STN-SLX", "stn-sl1", True, "shared"),
)
_TOP, _LOW, _HALF = 2.35, 0.95, 0.8


def card_data_source(mnist_source: str, n_digits: int | None = None) -> str:
    """The card's data line: the MNIST test digits the two exact claims are computed on."""
    if n_digits is None:
        from stnlib.claims import exact

        n_digits = exact.first_layer_numbers()["n_images"]
    return (f"{mnist_source}: the first {n_digits} test digits, for the two claims at the end; the figure is a "
            "schematic drawn in code")


def _box(ax: Any, x: float, y: float, text: str, color: str, *, w: float = 1.55, h: float = 0.85,
         hatch: str | None = None, bold: bool = False) -> tuple[float, float]:
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.05", facecolor=color,
                                edgecolor="black", lw=2.0 if bold else 1.0, hatch=hatch))
    ax.text(x, y, text, ha="center", va="center", fontsize=MIN_FONT_PT, fontweight="bold" if bold else "normal",
            bbox={"boxstyle": "round,pad=0.15", "facecolor": color, "edgecolor": "none"} if hatch else None)
    return x, y


def _arrow(ax: Any, start: tuple[float, float], end: tuple[float, float], text: str = "") -> None:
    ax.annotate("", xy=end, xytext=start, arrowprops={"arrowstyle": "-|>", "lw": 1.2, "color": "black",
                                                      "shrinkA": 0, "shrinkB": 0})
    if text:
        ax.text((start[0] + end[0]) / 2 + 0.08, (start[1] + end[1]) / 2, text, fontsize=MIN_FONT_PT,
                ha="left", va="center")


def architecture(ax: Any, title: str, model: str, warp_input: bool, loc_source: str) -> None:
    """One panel: the classification path on top, the localisation path below, θ going up into the ST."""
    ax.set_title(title, loc="left", fontweight="bold", color=line_kwargs(model)["color"], gid=f"model:{model}")
    image = _box(ax, 0.8, _TOP, "image $f$", "white", w=1.2)
    if warp_input:
        st = _box(ax, 2.6, _TOP, "ST: warp\nthe image", WARP, bold=True)
        lay1 = _box(ax, 4.5, _TOP, "layers 1…$X$", CLASSIFIER)
        chain = [image, st, lay1]
    else:
        lay1 = _box(ax, 2.6, _TOP, "layers 1…$X$", CLASSIFIER)
        st = _box(ax, 4.5, _TOP, "ST: warp\nthe maps", WARP, bold=True)
        chain = [image, lay1, st]
    chain += [_box(ax, 6.4, _TOP, "layers\n$X$+1…$L$", CLASSIFIER), _box(ax, 8.3, _TOP, "class\nscores", "white", w=1.2)]
    for a, b in zip(chain[:-1], chain[1:]):
        _arrow(ax, (a[0] + (0.65 if a is image else _HALF), _TOP), (b[0] - _HALF, _TOP))
    if loc_source == "image":
        head = _box(ax, st[0], _LOW, "localisation\nnetwork", LOCALISATION)
        _arrow(ax, (image[0], _TOP - 0.45), (head[0] - _HALF, _LOW))
    elif loc_source == "features":
        head = _box(ax, st[0], _LOW, "localisation\nhead", LOCALISATION)
        _arrow(ax, (lay1[0] + 0.5, _TOP - 0.45), (head[0] - _HALF, _LOW + 0.2))
    else:  # "copy" or "shared": layers 1..X run on the image inside the localisation path
        shared = loc_source == "shared"
        first = _box(ax, image[0], _LOW, "layers 1…$X$\n" + ("(shared)" if shared else "(own copy)"),
                     CLASSIFIER if shared else LOCALISATION, w=1.5, hatch=None if shared else "///")
        head = _box(ax, st[0], _LOW, "localisation\nhead", LOCALISATION)
        _arrow(ax, (image[0], _TOP - 0.45), (image[0], _LOW + 0.45))
        _arrow(ax, (first[0] + 0.75, _LOW), (head[0] - _HALF, _LOW))
        if shared:  # the two boxes are one set of weights
            x0, x1, y = first[0], lay1[0], 0.08
            ax.plot([x0, x0, x1, x1], [_LOW - 0.45, y, y, _TOP - 0.45], ls="--", lw=1.2, color=REFERENCE_COLOR)
            ax.text((x0 + x1) / 2 + 0.5, y + 0.08, "same weights", fontsize=MIN_FONT_PT, ha="center", va="bottom")
    _arrow(ax, (st[0], _LOW + 0.45), (st[0], _TOP - 0.45), r"$\theta$")
    ax.set(xlim=(-0.05, 9.1), ylim=(-0.02, 2.85), aspect="equal")
    ax.axis("off")


def architectures_figure() -> plt.Figure:
    """The four architectures, one panel per row (a diagram needs the full width to keep its text legible)."""
    fig, axes = plt.subplots(len(ARCHITECTURES), 1, figsize=(WIDE_IN, 7.6))
    for ax, spec in zip(axes, ARCHITECTURES):
        architecture(ax, *spec)
    fig.tight_layout(h_pad=0.4)
    return fig
