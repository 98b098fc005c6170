"""One colour and one marker per model, everywhere in the book.

The input-level STs share the blue-green side of the Okabe–Ito colour-blind-safe palette and the
feature-map STs (the configuration the paper argues against) the warm side; within the SVHN families
one hue per family (CX, SLX, DLX) gets darker with depth. The paper's own numbers are drawn in the
model's colour with an open marker and a dashed line (:func:`paper_style`).
"""

from __future__ import annotations

from dataclasses import dataclass

# Okabe & Ito (2008), "Color Universal Design": distinguishable under the common colour deficiencies.
_BLACK, _ORANGE, _SKY, _GREEN, _YELLOW, _BLUE, _VERMILION, _PURPLE = (
    "#000000", "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7")


@dataclass(frozen=True)
class Style:
    color: str
    marker: str


STYLES: dict[str, Style] = {
    "cnn": Style("#555555", "o"),
    "stn-c0": Style(_BLUE, "s"),
    "stn-c1": Style(_VERMILION, "v"),
    "stn-sl1": Style(_GREEN, "D"),
    "stn-dl1": Style(_PURPLE, "^"),
    "ecnn": Style(_SKY, "P"),
    "stn-ec1": Style(_ORANGE, "X"),
    # SVHN depth families: CX warm, SLX green, DLX purple; darker with depth.
    "stn-c3": Style("#F4A582", "v"), "stn-c6": Style("#D6604D", "v"), "stn-c8": Style("#8E1F14", "v"),
    "stn-sl3": Style("#7FCDBB", "D"), "stn-sl6": Style("#1D9E73", "D"), "stn-sl8": Style("#00533A", "D"),
    "stn-dl3": Style("#D4B9DA", "^"), "stn-dl6": Style("#A866A0", "^"), "stn-dl8": Style("#5E2258", "^"),
}

#: SVHN families (CX, SLX, DLX) as lines: the colour of their deepest member.
FAMILY_STYLES: dict[str, Style] = {"c": STYLES["stn-c6"], "sl": STYLES["stn-sl6"], "dl": STYLES["stn-dl6"]}


def style(model: str) -> Style:
    """The colour and marker of ``model``; an unknown name raises ``ValueError`` with the valid ones."""
    try:
        return STYLES[model]
    except KeyError:
        raise ValueError(f"no colour for model {model!r}; models with one: {', '.join(STYLES)}") from None


def color(model: str) -> str:
    return style(model).color


def line_kwargs(model: str, *, paper: bool = False) -> dict[str, object]:
    """Keyword arguments for ``ax.plot`` of one model (ours solid, the paper's dashed with open markers)."""
    s = style(model)
    kw: dict[str, object] = {"color": s.color, "marker": s.marker, "gid": f"model:{model}"}
    if paper:
        kw.update(ls="--", markerfacecolor="white", gid=f"paper:{model}")
    return kw
