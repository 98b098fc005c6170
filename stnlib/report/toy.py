"""The toy chapter's figures, sentences and first-layer measurements.

The constructions themselves (the W/M detector, the bar, the first layers and the misalignment measure)
are in :mod:`stnlib.toy` and :mod:`stnlib.measures`; this module turns their results into what the
chapter shows: figures drawn at display size (:mod:`stnlib.report.figures`) and sentences whose every
number and direction word comes from the results they are given (tested in ``tests/test_report_toy.py``).

The toy chapter shows no trained model of the paper, so none of its lines may look like one: layers and
constructions are drawn in black, greys and the two colours :mod:`stnlib.report.figures` reserves for
fits and references (:data:`LAYER_STYLES`), never in a colour of :mod:`stnlib.report.palette`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import Tensor, nn

from stnlib import toy, transforms
from stnlib.report.figures import COLUMN_IN, FIT_COLOR, MIN_FONT_PT, REFERENCE_COLOR, WIDE_IN
from stnlib.report.prose import small

#: Neutral colours for lines that are not models (the palette's colours mean models everywhere).
BLACK, GREY, LIGHT_GREY = "#000000", "#8C8C8C", "#BBBBBB"

#: How each first layer is drawn: black and grey for the random and trained conv1 (not models: the
#: palette's grey is the CNN's, so a lighter grey is used), the fit colour for the C4-invariant control
#: (the toy chapter draws no fits) and a dotted light grey for the interpolation floor.
LAYER_STYLES: dict[str, dict[str, Any]] = {
    "random conv1": {"color": GREY, "marker": "o", "ls": "-"},
    "trained conv1": {"color": BLACK, "marker": "s", "ls": "-"},
    "trained, made C4-invariant": {"color": FIT_COLOR, "marker": "^", "ls": "--"},
    "pointwise (interpolation only)": {"color": LIGHT_GREY, "marker": None, "ls": ":"},
}
#: The integer shifts (pixels) of the translation curves.
SHIFT_STEPS: tuple[int, ...] = tuple(range(-6, 7))
#: The angles (degrees) the first-layer text reads off the rotation curves.
TEXT_ANGLES: tuple[int, ...] = (45, 90, 180)


# ---------------------------------------------------------------------------------------
# the card


def card_data_sources(n_images: int, mnist_source: str) -> tuple[str, str]:
    """The card's data line: the drawn letters and bar, and the MNIST digits the first layers see."""
    return ("letters W and M and a bar drawn on a "
            f"{toy.CANVAS_SIZE}×{toy.CANVAS_SIZE} pixel grid (exact, no data)",
            f"{mnist_source}: the first {n_images} test digits, and training images for conv1")


def card_deviations(train_steps: int) -> list[str]:
    """How the chapter departs from the paper (it is not one of the paper's experiments)."""
    return [
        "not an experiment of the paper: the W/M detector is our exact version of the paper's Figure 1 "
        "(a drawing there)",
        f"the trained first layer is conv1 of the MNIST CNN after {train_steps} steps of SGD (momentum 0.9, "
        "batch 64) on upright MNIST, not a model from the paper's experiments",
        "first-layer feature maps are conv1 + ReLU before max-pooling (STN-C1 transforms them after pooling)",
    ]


# ---------------------------------------------------------------------------------------
# drawing helpers


def _image(ax: Any, img: Any, title: str = "", *, cmap: str = "gray", vmin: float = 0.0,
           vmax: float = 1.0) -> None:
    ax.imshow(np.asarray(img, dtype=float), cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    if title:
        ax.set_title(title, fontsize=MIN_FONT_PT)
    ax.set(xticks=[], yticks=[])
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)


def _maps(ax: Any, maps: Any, underlay: Any, title: str) -> None:
    """A feature map over a faint copy of the image it is aligned with; exact zeros stay transparent."""
    ax.imshow(np.asarray(underlay, dtype=float), cmap="gray", vmin=0, vmax=4, interpolation="nearest")
    active = np.ma.masked_equal(np.asarray(maps, dtype=float), 0.0)
    ax.imshow(active, cmap="plasma", vmin=-0.25, vmax=1.0, interpolation="nearest")
    ax.set_title(title, fontsize=MIN_FONT_PT)
    ax.set(xticks=[], yticks=[])
    ax.grid(False)


# ---------------------------------------------------------------------------------------
# the W and the M


def letters_text(wm: Any, ink_pixels: int | None = None) -> str:
    """The detector's sizes, the threshold and how far the wrong template stays below it."""
    ink_pixels = int(toy.letter_bitmap("W").sum()) if ink_pixels is None else ink_pixels
    below = wm.cross_response < toy.DETECTION_THRESHOLD
    w, m = wm.channel_sums["W"]
    return (f"The canvas is {toy.CANVAS_SIZE}×{toy.CANVAS_SIZE} pixels and the letters and filters "
            f"{toy.LETTER_SIZE}×{toy.LETTER_SIZE}; the W has {ink_pixels} ink pixels. The detection threshold is "
            f"{toy.DETECTION_THRESHOLD}; the strongest response of either template to the *other* letter, at any "
            f"position, is {wm.cross_response:.3f}, "
            + ("below the threshold, so the wrong channel stays exactly zero. " if below else
               "at or above the threshold, so the wrong channel fires too. ")
            + f"On the W, channel W has total activation {w:.3f} and channel M "
            + ("exactly 0." if m == 0 else f"{m:.3f}."))


def letters_figure(wm: Any, kernels: Tensor | None = None) -> plt.Figure:
    """The W, the W rotated by 180° (the M), and the two filters of Γ (red positive, blue negative), 2×2."""
    kernels = toy.LetterDetector().conv.weight.detach()[:, 0] if kernels is None else kernels
    fig, axes = plt.subplots(2, 2, figsize=(COLUMN_IN * 0.8, 4.4))
    lim = float(kernels.abs().max())
    _image(axes[0, 0], wm.image[0, 0], "image $f$: W")
    _image(axes[0, 1], wm.rotated[0, 0], "$R_{180°} f$")
    for ax, k, letter in zip(axes[1], kernels, toy.CHANNELS):
        _image(ax, k, f"filter of channel {letter}", cmap="RdBu_r", vmin=-lim, vmax=lim)
    fig.tight_layout()
    return fig


def wm_maps_figure(wm: Any) -> plt.Figure:
    """Four rows (f, Rf, rotated back, rotated back with channels swapped) × (image, channel W, channel M)."""
    rows = [("image $f$", wm.image, wm.maps, wm.image, "$\\Gamma f$: "),
            ("image $Rf$", wm.rotated, wm.rotated_maps, wm.rotated, "$\\Gamma(Rf)$: "),
            ("rotated back:\n$R^{-1}\\,\\Gamma(R f)$", None, wm.back_rotated, wm.image, ""),
            ("rotated back,\nchannels\nswapped", None, wm.swapped, wm.image, "")]
    fig, axes = plt.subplots(4, 3, figsize=(COLUMN_IN, 6.6))
    for r, (name, img, maps, underlay, what) in enumerate(rows):
        if img is None:
            axes[r, 0].axis("off")
            axes[r, 0].text(0.5, 0.5, name, ha="center", va="center", fontsize=MIN_FONT_PT,
                            transform=axes[r, 0].transAxes)
        else:
            _image(axes[r, 0], img[0, 0], name)
        for c, letter in enumerate(toy.CHANNELS):
            _maps(axes[r, 1 + c], maps[0, c], underlay[0, 0], f"{what}channel {letter}")
    fig.tight_layout(h_pad=0.6)
    return fig


def _lines(rows: Sequence[tuple[str, str]]) -> str:
    width = max(len(label) for label, _ in rows) + 1
    return "\n".join(f"{label + ':':<{width + 1}} {value}" for label, value in rows)


def _grid(search: Any) -> str:
    a = search.angles
    step = float(a[1] - a[0]) if len(a) > 1 else 0.0
    return f"{len(a)} angles, every {step:g}°"


def wm_numbers(wm: Any) -> str:
    """The exact W/M numbers, one per line, rounded so that the text is the same on every machine."""
    return _lines([
        ("error of R^-1 Γ(R f), the inverse rotation", f"{wm.back_rotated_error:.4f}"),
        (f"best rotation ({_grid(wm.rotation)})", f"{wm.rotation.best_error:.4f}"),
        (f"best affine warp ({len(wm.affine.start_names)} starts, {wm.affine.history.shape[0] - 1} Adam steps)",
         f"{wm.affine.best_error:.4f}"),
        ("lower bound for every spatial warp", f"{wm.lower_bound:.4f}"),
        ("rotation by 180° plus channel swap", f"{wm.swap_error:.1e}"),
    ])


def search_figure(wm: Any) -> plt.Figure:
    """Top: the error of every rotation of Γ(Rf), and the affine fit from every start, against the bound
    for any spatial warp; bottom: the two channels of the best affine warp of Γ(Rf)."""
    fig = plt.figure(figsize=(WIDE_IN, 4.6), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.5, 1.0])
    left, right = top.subplots(1, 2)
    # Not models: the rotation curve in black, the bound in the reference colour, the swap in the fit colour.
    left.plot(wm.rotation.angles.numpy(), wm.rotation.errors.numpy(), color=BLACK, lw=1.2, label="rotation $R_\\alpha$")
    left.axhline(wm.lower_bound, color=REFERENCE_COLOR, ls="--", lw=1.2, label="bound, any warp")
    left.axhline(wm.swap_error, color=FIT_COLOR, lw=1.6, label="rotation + swap")
    left.set(xlabel="rotation α (°)", ylabel="relative error", xticks=range(0, 361, 90), ylim=(-0.05, 1.6),
             title="rotating the maps")
    left.legend(loc="center right", bbox_to_anchor=(1.0, 0.36))
    hist = wm.affine.history.numpy()
    for j, name in enumerate(wm.affine.start_names):
        right.plot(np.arange(hist.shape[0]), hist[:, j], lw=1.0, color=LIGHT_GREY if "random" in name else BLACK)
    right.axhline(wm.lower_bound, color=REFERENCE_COLOR, ls="--", lw=1.2)
    right.plot([], [], color=BLACK, label="identity, quarter turns")
    right.plot([], [], color=LIGHT_GREY, label="random starts")
    right.set(xlabel="Adam step", title="fitting an affine warp", ylim=(0.9, 1.6))
    right.legend(loc="upper right")
    warped = transforms.warp(wm.rotated_maps, wm.affine.theta).detach()
    for ax, c in zip(bottom.subplots(1, 2), range(len(toy.CHANNELS))):
        _maps(ax, warped[0, c], wm.image[0, 0], f"channel {toy.CHANNELS[c]}")
    bottom.suptitle(f"the best affine warp of $\\Gamma(Rf)$: largest value left {float(warped.max()):.1e}",
                    fontsize=MIN_FONT_PT)
    return fig


def search_text(wm: Any, *, tol: float = 1e-3) -> str:
    """What the searches found: the inverse rotation, the best rotation and affine warp, the bound, the swap."""
    at_bound = wm.affine.best_error - wm.lower_bound < tol
    rot_above = wm.rotation.best_error > wm.lower_bound
    swap = ("exactly, because the detector's integer weights make both sides the same floating-point numbers"
            if wm.swap_error == 0 else "to float precision")
    return (f"Rotating the feature maps back by the true inverse gives an error of {wm.back_rotated_error:.4f} "
            + ("($\\sqrt 2$: the activation is in the wrong channel, so both the missing W activation and the "
               "surplus M activation count). " if abs(wm.back_rotated_error - 2 ** 0.5) < 1e-4 else ". ")
            + f"No rotation does better than {wm.rotation.best_error:.4f}"
            + ("; angles other than quarter turns smooth the misplaced activation with bilinear interpolation, "
               "which shrinks it a little, but never below the bound. " if rot_above else ". ")
            + f"The fitted affine warp gets to {wm.affine.best_error:.4f}, "
            + ("the bound itself" if at_bound else
               f"{wm.affine.best_error - wm.lower_bound:.4f} above the bound")
            + (", and it gets there by making the misplaced activation vanish (stretching the sampling grid so that "
               "it misses the activation): the best a spatial warp can do is to be as good as an all-zero map. "
               if at_bound else ". ")
            + "A rotation by 180° combined with a swap of the two channels, which is not a spatial transformation, "
            f"aligns the feature maps with error {wm.swap_error:.1e}, {swap}.")


# ---------------------------------------------------------------------------------------
# the bar


def bar_text(bar: Any, edge: nn.Conv2d | None = None) -> str:
    """The edge filter, its threshold, and why the upright bar's ends are too short to pass it."""
    edge = toy.HorizontalEdgeDetector().conv if edge is None else edge
    k_rows, k_cols = edge.weight.shape[-2:]
    need = int(-float(edge.bias)) + 1
    rows, cols = torch.nonzero(bar.image[0, 0]).unbind(1)
    h, w = int(rows.max() - rows.min()) + 1, int(cols.max() - cols.min()) + 1
    return (f"The filter is {k_rows}×{k_cols} (top row −1, middle 0, bottom row +1) with bias {float(edge.bias):.0f}, "
            f"so at least {need} of its {k_cols} columns must see the edge. The bar is {h}×{w} pixels. Turned "
            f"upright, its only horizontal edges are its ends, {h} pixels wide: "
            + ("too short to pass the threshold." if h < need else "wide enough to pass the threshold."))


def bar_numbers(bar: Any) -> str:
    """The exact bar numbers, one per line (the same on every machine)."""
    return _lines([
        ("sum of Γ f (horizontal bar)", f"{bar.maps_sum:.4f}"),
        ("max of |Γ(R f)| (vertical bar)", f"{bar.rotated_maps_max:.4f}"),
        ("error of R^-1 Γ(R f)", f"{bar.back_rotated_error:.4f}"),
        (f"best rotation ({_grid(bar.rotation)})", f"{bar.rotation.best_error:.4f}"),
        ("lower bound for every spatial warp", f"{bar.lower_bound:.4f}"),
    ])


def bar_figure(bar: Any) -> plt.Figure:
    """The bar and its feature map, upright and rotated by 90° (where the map is all zero), 2×2."""
    fig, axes = plt.subplots(2, 2, figsize=(COLUMN_IN * 0.8, 4.4))
    vmax = float(bar.maps.max())
    _image(axes[0, 0], bar.image[0, 0], "image $f$")
    _image(axes[0, 1], bar.maps[0, 0], "$\\Gamma f$", cmap="magma", vmax=vmax)
    _image(axes[1, 0], bar.rotated[0, 0], "$R_{90°} f$")
    zero = "all zero" if bar.rotated_maps_max == 0 else f"max {bar.rotated_maps_max:.2f}"
    _image(axes[1, 1], bar.rotated_maps[0, 0], f"$\\Gamma(R f)$: {zero}", cmap="magma", vmax=vmax)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------
# real first layers


def layer_text(conv: nn.Conv2d, images: Tensor, seed: int) -> str:
    """The first layer's size, its feature maps and the comparison disc."""
    n_filters, _, k, _ = conv.weight.shape
    size = images.shape[-1]
    maps = toy.conv_features(conv, images[:1]).shape[-1]
    return (f"The layer has {n_filters} filters of {k}×{k} pixels and no padding, so a {size}×{size} digit gives "
            f"{n_filters}×{maps}×{maps} feature maps; the comparison disc has a radius of {toy.disc_radius(maps):.1f} "
            f"pixels. The random layer uses seed {seed}; the measurements average over the first {images.shape[0]} "
            "MNIST test digits.")


def training_text(profile: str, losses: Sequence[float], seconds: float, *, tail: int = 50) -> str:
    """How long the CNN behind the trained layer trained, and where its loss went."""
    last = list(losses)[-min(tail, len(losses)):]
    end = float(np.mean(last))
    trend = "down from" if end < losses[0] else "not below"
    return (f"Profile `{profile}`: the CNN was trained for {len(losses)} SGD steps (batch 64, momentum 0.9) in "
            f"{seconds:.0f} s; its mean training loss over the last {len(last)} steps is {end:.3f}, {trend} "
            f"{losses[0]:.2f} at the first step.")


def _filter_grid(ax: Any, weight: Tensor, title: str, n: int = 16) -> None:
    w = weight.detach()[:n, 0]
    w = w / w.flatten(1).abs().amax(1).clamp_min(1e-12)[:, None, None]
    k, side = w.shape[-1], int(np.ceil(np.sqrt(n)))
    tiles = torch.full((side * (k + 1) - 1, side * (k + 1) - 1), float("nan"))
    for i in range(n):
        r, c = divmod(i, side)
        tiles[r * (k + 1):r * (k + 1) + k, c * (k + 1):c * (k + 1) + k] = w[i]
    cmap = plt.get_cmap("RdBu_r").with_extremes(bad="white")
    ax.imshow(tiles.numpy(), cmap=cmap, vmin=-1, vmax=1, interpolation="nearest")
    ax.set_title(title, fontsize=MIN_FONT_PT)
    ax.axis("off")


def filters_figure(random_conv: nn.Conv2d, trained_conv: nn.Conv2d, steps: int) -> plt.Figure:
    """The first 16 filters: random, trained, and the change training made (each scaled to its maximum)."""
    fig, axes = plt.subplots(1, 3, figsize=(WIDE_IN, 2.3))
    _filter_grid(axes[0], random_conv.weight, "random (initialisation)")
    _filter_grid(axes[1], trained_conv.weight, f"trained, {steps} steps")
    _filter_grid(axes[2], trained_conv.weight - random_conv.weight, "change in training")
    fig.tight_layout()
    return fig


@dataclass
class FirstLayerStudy:
    """Misalignment curves of several first layers (see :func:`first_layer_study`)."""

    angles: list[int]
    rotation: dict[str, Tensor]               # layer -> error per angle
    shifts: tuple[int, ...]
    translation: dict[str, dict[str, Tensor]]  # layer -> axis ("x", "y") -> error per shift

    def at(self, layer: str, angle: float) -> float:
        return float(self.rotation[layer][self.angles.index(angle)])

    @property
    def max_translation(self) -> float:
        return max(float(c.max()) for curves in self.translation.values() for c in curves.values())


def first_layer_study(random_conv: nn.Conv2d, trained_conv: nn.Conv2d, images: Tensor, angle_step: int, *,
                      shifts: Sequence[int] = SHIFT_STEPS) -> FirstLayerStudy:
    """The one misalignment measure on four first layers (rotation) and on the two conv1s (integer shifts).

    The layers are :data:`LAYER_STYLES`' four: the random and the trained conv1, the trained one made
    C4-invariant (:func:`stnlib.toy.c4_symmetrized`) and the pointwise control (interpolation only).
    """
    norm = toy.MNIST_NORMALIZATION
    layers = dict(zip(LAYER_STYLES, (random_conv, trained_conv, toy.c4_symmetrized(trained_conv),
                                     toy.pointwise_layer())))
    angles = toy.curve_angles(angle_step)
    rotation = {n: toy.rotation_misalignment_curve(layer, images, angles, normalization=norm)
                for n, layer in layers.items()}
    translation = {n: {axis: toy.translation_misalignment_curve(
        layer, images, [(d, 0) if axis == "x" else (0, d) for d in shifts], normalization=norm)
        for axis in ("x", "y")} for n, layer in list(layers.items())[:2]}
    return FirstLayerStudy(angles, rotation, tuple(shifts), translation)


def curves_figure(study: FirstLayerStudy) -> plt.Figure:
    """Misalignment against the rotation angle (left, four layers) and the integer shift (right, two)."""
    fig, axes = plt.subplots(1, 2, figsize=(WIDE_IN, 4.1), sharey=True, gridspec_kw={"width_ratios": [1.6, 1.0]})
    for name, curve in study.rotation.items():
        axes[0].plot(study.angles, curve.numpy(), ms=3, lw=1.2, label=name, **LAYER_STYLES[name])
    axes[0].set(xlabel="rotation α of the digit (°)", ylabel="relative error", xticks=range(-180, 181, 90),
                title="rotation")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncols=2, frameon=False)
    for name, curves in study.translation.items():
        for axis, curve in curves.items():
            style = {**LAYER_STYLES[name], "ls": "-" if axis == "x" else "--", "marker": "o" if axis == "x" else "s"}
            axes[1].plot(study.shifts, curve.numpy(), ms=4, lw=1.0, label=f"{name.split()[0]}, {axis}", **style)
    axes[1].set(xlabel="integer shift (px)", title=f"translation (max {small(study.max_translation)})")
    axes[1].legend(loc="upper left", fontsize=MIN_FONT_PT, framealpha=0.9)
    fig.tight_layout(rect=(0, 0.14, 1, 1))
    return fig


def first_layer_text(study: FirstLayerStudy) -> str:
    """Rotation against translation for real first layers, read off the curves at 45°, 90° and 180°."""
    r, t, s, p = ({a: study.at(n, a) for a in TEXT_ANGLES} for n in LAYER_STYLES)
    worse = min(r[90], t[90]) > 1.0
    c4_exact = max(s[90], s[180]) <= 1e-5
    shift_max = study.max_translation
    return (
        "At the exact quarter turn of 90°, where no interpolation is involved, undoing the rotation of the feature "
        f"maps leaves a relative error of {r[90]:.2f} for the random layer and {t[90]:.2f} for the trained one"
        + (", more than an all-zero map would have (1)" if worse else "")
        + ": the rotated digit excites other channels, and other parts of each channel, than the upright one. The "
        f"C4-invariant version of the trained layer gets {s[90]:.1e} at 90° and {s[180]:.1e} at 180°"
        + (", as the theory says it must: invariant filters are the exception. " if c4_exact else ". ")
        + f"At 45°, where interpolation alone costs {p[45]:.2f} (pointwise control), the random and trained layers "
        f"are at {r[45]:.2f} and {t[45]:.2f}, and the C4-invariant layer at {s[45]:.2f}"
        + (", higher than the interpolation floor, since it is invariant to quarter turns only. "
           if s[45] > p[45] else ". ")
        + f"For integer translations of up to {max(study.shifts)} pixels the largest error over both layers, both "
        f"axes and all shifts is {small(shift_max)}"
        + (": exactly zero, because convolution commutes with translation, so the spatial inverse aligns the "
           "feature maps exactly." if shift_max == 0 else
           ", float rounding: convolution commutes with translation." if shift_max <= 1e-5 else "."))


def digit_figure(conv: nn.Conv2d, digit: Tensor, *, angle: int = 90, n_channels: int = 4) -> plt.Figure:
    """One digit and the ``n_channels`` channels of ``conv`` with the largest error: Γf (top) against
    R⁻¹Γ(Rf) (bottom)."""
    norm = toy.MNIST_NORMALIZATION
    ref = toy.conv_features(conv, digit, norm)
    back = toy.rotate_maps(toy.conv_features(conv, toy.rotate_maps(digit, angle), norm), -angle)
    per_channel = toy.alignment_error(back[0], ref[0], dims=(1, 2))
    active = ref[0].flatten(1).norm(dim=1) > 0
    order = torch.argsort(torch.where(active, per_channel, torch.tensor(-1.0)), descending=True)[:n_channels]
    fig, axes = plt.subplots(2, n_channels + 1, figsize=(WIDE_IN, 3.3))
    _image(axes[0, 0], digit[0, 0], "digit $f$")
    _image(axes[1, 0], toy.rotate_maps(digit, angle)[0, 0], f"$R_{{{angle}°}} f$")
    for j, ch in enumerate(int(c) for c in order):
        vmax = float(torch.maximum(ref[0, ch].max(), back[0, ch].max()))
        _image(axes[0, j + 1], ref[0, ch], f"channel {ch}", cmap="magma", vmax=vmax)
        _image(axes[1, j + 1], back[0, ch], f"error {float(per_channel[ch]):.2f}", cmap="magma", vmax=vmax)
    axes[0, 1].set_ylabel("$\\Gamma f$", fontsize=MIN_FONT_PT)
    axes[1, 1].set_ylabel(f"$R_{{-{angle}°}}\\Gamma(R f)$", fontsize=MIN_FONT_PT)
    fig.tight_layout()
    return fig

