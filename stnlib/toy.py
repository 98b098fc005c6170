"""The W/M counterexample and alignment-error measures for first-layer feature maps.

Equation (1) of the paper says that warping the feature maps of a transformed image back with the
inverse transformation does not, in general, give the feature maps of the original image:
``T⁻¹ Γ(T f) ≠ Γ f``. This module makes that statement exact and measurable:

* :func:`wm_counterexample`: a two-channel feature extractor Γ (channel 0 detects the letter "W",
  channel 1 the letter "M") and a "W" rotated by 180°. No spatial warp of the feature maps (a search
  over rotations, and the best affine warp found by gradient descent) aligns them; a rotation plus a
  swap of the two channels aligns them to float precision.
* :func:`bar_example`: a single horizontal-edge channel is all zero on a vertical bar, so no spatial warp
  can turn the feature map of the rotated bar into the (non-zero) map of the horizontal one.
* :func:`rotation_misalignment_curve` and :func:`translation_misalignment_curve`: the same measure for a
  real first conv layer (random or trained, see :func:`random_first_layer` and
  :func:`train_first_layer`) as a function of the rotation angle or the integer shift. Rotations
  misalign; integer translations align to float precision away from the borders, because convolution
  commutes with translation.

Everything geometric follows the project conventions (``N×C×H×W``; angles in degrees, positive =
counter-clockwise as displayed, ``rotate(x, 90) == torch.rot90(x, 1, dims=(-2, -1))``; shifts ``(dx, dy)``
in pixels, right and down; ``align_corners=False``). Exact cases (90° steps, integer shifts) use
``torch.rot90`` and integer shifts by slicing (:func:`shift_exact`) rather than ``grid_sample``, whose
float32 grid arithmetic is accurate to about 1e-6 but not bit-exact; so the claims that hold exactly
are shown exactly.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from stnlib import data, models, transforms

__all__ = [
    "CHANNELS",
    "LETTER_SIZE",
    "CANVAS_SIZE",
    "DETECTION_THRESHOLD",
    "TRAIN_STEPS",
    "MNIST_NORMALIZATION",
    "ToySettings",
    "PROFILE_SETTINGS",
    "settings_for",
    "curve_angles",
    "letter_bitmap",
    "letter_image",
    "rotated_w_image",
    "LetterDetector",
    "alignment_error",
    "rotate_maps",
    "RotationSearch",
    "rotation_search",
    "AffineFit",
    "affine_search",
    "rotation_swap_error",
    "spatial_lower_bound",
    "WMCounterexample",
    "wm_counterexample",
    "bar_image",
    "HorizontalEdgeDetector",
    "BarExample",
    "bar_example",
    "conv_features",
    "disc_mask",
    "disc_radius",
    "shift_exact",
    "rotation_misalignment_curve",
    "translation_misalignment_curve",
    "random_first_layer",
    "c4_symmetrized",
    "pointwise_layer",
    "first_conv",
    "mnist_test_images",
    "train_mnist_cnn",
    "train_first_layer",
]

#: Channel order of :class:`LetterDetector`: channel 0 detects "W", channel 1 detects "M".
CHANNELS: tuple[str, str] = ("W", "M")
#: Side of the letter bitmaps (odd, so a letter has a centre pixel).
LETTER_SIZE = 15
#: Side of the canvas the letters are placed on (odd, so torch.rot90 rotates about the centre pixel).
CANVAS_SIZE = 33
#: A letter channel fires where its normalised template response exceeds this (1 = perfect match).
DETECTION_THRESHOLD = 0.5
#: Centre line of the "W" as a polyline of integer (column, row) vertices in the 15×15 bitmap.
W_POLYLINE: tuple[tuple[int, int], ...] = ((1, 0), (4, 14), (7, 4), (10, 14), (13, 0))
#: A pixel is ink if its centre lies within this squared distance (pixels²) of the centre line.
STROKE_RADIUS_SQ = 1
#: MNIST normalisation (mean, std) of the rotated-MNIST experiment; the trained layer expects it.
MNIST_NORMALIZATION: tuple[float, float] = data.NORMALIZATION["mnist-rot"]


@dataclass(frozen=True)
class ToySettings:
    """How much work the first-layer part of the toy chapter does in one profile.

    The W/M and bar examples do not depend on the profile; only these numbers do.
    """

    #: SGD steps of :func:`train_mnist_cnn` (batch 64).
    train_steps: int
    #: MNIST test digits the misalignment curves average over.
    n_images: int
    #: Spacing of the rotation angles (degrees); :func:`curve_angles` adds the multiples of 45°.
    angle_step: int


#: Toy-chapter settings per profile (the chapter's only profile-dependent part).
PROFILE_SETTINGS: dict[str, ToySettings] = {
    "smoke": ToySettings(train_steps=30, n_images=64, angle_step=30),
    "quick": ToySettings(train_steps=600, n_images=256, angle_step=10),
    "full": ToySettings(train_steps=3000, n_images=1000, angle_step=5),
}
#: Training steps of :func:`train_first_layer` per profile.
TRAIN_STEPS: dict[str, int] = {name: s.train_steps for name, s in PROFILE_SETTINGS.items()}


def settings_for(profile: str) -> ToySettings:
    """The :class:`ToySettings` of ``profile`` (``smoke``, ``quick`` or ``full``)."""
    if profile not in PROFILE_SETTINGS:
        raise ValueError(f"unknown profile {profile!r}; valid choices: {', '.join(PROFILE_SETTINGS)}")
    return PROFILE_SETTINGS[profile]


def curve_angles(step: int) -> list[int]:
    """Angles in degrees from -180 to 180 every ``step``, plus every multiple of 45° (always shown)."""
    if step <= 0:
        raise ValueError(f"step must be a positive number of degrees, got {step}")
    return sorted(set(range(-180, 181, step)) | set(range(-180, 181, 45)))


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Run tiny-tensor work (33×33 maps) on one intra-op thread, restoring the setting afterwards.

    On such small tensors a second thread only adds OpenMP synchronisation, and on a shared, busy CPU
    that synchronisation collapses: :func:`wm_counterexample` took 2.4 s on one thread and 82 s on two
    when the 2-core reference machine was oversubscribed.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# =========================================================================== letters


def _near_segment(n: int, p0: tuple[int, int], p1: tuple[int, int], r2: int) -> Tensor:
    """Boolean ``n×n`` mask: pixel centres within ``sqrt(r2)`` of segment ``p0–p1`` (integer arithmetic).

    Points are ``(column, row)``. Squared distances are compared as exact integer ratios, so a shape
    that is symmetric in its vertices is symmetric pixel for pixel (no rounding can break the symmetry).
    """
    (x0, y0), (x1, y1) = p0, p1
    dx, dy = x1 - x0, y1 - y0
    length2 = dx * dx + dy * dy
    out = torch.zeros(n, n, dtype=torch.bool)
    for y in range(n):
        for x in range(n):
            qx, qy = x - x0, y - y0
            dot = qx * dx + qy * dy
            if dot <= 0:
                inside = qx * qx + qy * qy <= r2
            elif dot >= length2:
                inside = (x - x1) ** 2 + (y - y1) ** 2 <= r2
            else:
                cross = qx * dy - qy * dx
                inside = cross * cross <= r2 * length2
            out[y, x] = inside
    return out


def letter_bitmap(letter: str, *, dtype: torch.dtype = torch.float32) -> Tensor:
    """The ``15×15`` binary bitmap (ink 1, background 0) of ``"W"`` or ``"M"``.

    The "W" is the stroke of :data:`W_POLYLINE` drawn with exact integer geometry; it is mirror-symmetric
    left to right. The "M" is the "W" turned upside down (rows reversed), which for a left-right symmetric
    letter is the same as the "W" rotated by 180°: ``letter_bitmap("M") == torch.rot90(letter_bitmap("W"), 2)``
    exactly.

    Convention:
        Row 0 is the top row (as displayed), column 0 the left column.
    """
    if letter not in CHANNELS:
        raise ValueError(f"unknown letter {letter!r}; valid choices: {', '.join(CHANNELS)}")
    ink = torch.zeros(LETTER_SIZE, LETTER_SIZE, dtype=torch.bool)
    for p0, p1 in zip(W_POLYLINE[:-1], W_POLYLINE[1:]):
        ink |= _near_segment(LETTER_SIZE, p0, p1, STROKE_RADIUS_SQ)
    w = ink.to(dtype)
    return w if letter == "W" else w.flip(0)


def letter_image(letter: str, *, canvas: int = CANVAS_SIZE, dtype: torch.dtype = torch.float32) -> Tensor:
    """A ``1×1×canvas×canvas`` image of ``letter`` centred on a black canvas.

    Convention:
        ``N×C×H×W``; ``canvas`` must be odd and at least :data:`LETTER_SIZE`, so the letter's centre pixel is
        the canvas's centre pixel and ``torch.rot90`` rotates the letter about its own centre.
    """
    if canvas < LETTER_SIZE or canvas % 2 == 0:
        raise ValueError(f"canvas must be odd and >= {LETTER_SIZE}, got {canvas}")
    img = torch.zeros(1, 1, canvas, canvas, dtype=dtype)
    o = (canvas - LETTER_SIZE) // 2
    img[0, 0, o:o + LETTER_SIZE, o:o + LETTER_SIZE] = letter_bitmap(letter, dtype=dtype)
    return img


def rotated_w_image(k: int = 2, *, canvas: int = CANVAS_SIZE, dtype: torch.dtype = torch.float32) -> Tensor:
    """The "W" image rotated by ``90·k`` degrees (exact, ``torch.rot90``); ``k = 2`` gives the "M" image.

    Convention:
        ``N×C×H×W``; positive ``k`` = counter-clockwise as displayed, like ``transforms.rotate(x, 90 * k)``.
    """
    return torch.rot90(letter_image("W", canvas=canvas, dtype=dtype), k, dims=(-2, -1))


class LetterDetector(nn.Module):
    """Γ: a fixed two-channel conv layer + ReLU; channel 0 fires on a "W", channel 1 on an "M".

    Each channel correlates the image with its letter's zero-mean template. With ``s`` ink pixels in the
    ``15×15 = 225``-pixel bitmap ``t``, the kernel is the integer array ``225·t - s`` (zero mean), whose
    correlation with a perfectly placed letter is ``s·(225 - s)``; dividing by that gives the normalised
    *response* (1 = perfect match, 0 on a blank patch). The channel outputs
    ``ReLU(response - τ) / (1 - τ)`` with ``τ =`` :data:`DETECTION_THRESHOLD`, so the peak is exactly 1 and a
    channel stays silent unless its own letter is there (the strongest response of a template to the
    *other* letter is about 0.43, see :func:`wm_counterexample`). As a layer: ``nn.Conv2d(1, 2, 15,
    padding=7)`` with integer weights and bias ``-τ·s·(225 - s)``, ReLU, then the positive constant
    ``1 / ((1 - τ)·s·(225 - s))``. Integer weights on binary images make every conv output an exactly
    representable integer, whatever order the sum is taken in, so the 180° symmetry below holds bit for bit.
    Like any conv layer it is translation covariant.

    Convention:
        Input ``N×1×H×W``, output ``N×2×H×W`` ("same" zero padding, odd kernel, so ``rot90`` of the input
        rotates the output about the same centre). Channel order :data:`CHANNELS`.
    """

    def __init__(self, threshold: float = DETECTION_THRESHOLD, *, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must lie in (0, 1), got {threshold}")
        self.threshold = float(threshold)
        area = LETTER_SIZE * LETTER_SIZE
        ink = int(letter_bitmap("W").sum())  # the same for "M"
        #: Template correlation of a perfectly placed letter (the normaliser of the response).
        self.match = float(ink * (area - ink))
        self.conv = nn.Conv2d(1, 2, LETTER_SIZE, padding=LETTER_SIZE // 2, bias=True, dtype=dtype)
        weight = torch.stack([area * letter_bitmap(letter, dtype=torch.float64) - ink for letter in CHANNELS])
        with torch.no_grad():
            self.conv.weight.copy_(weight[:, None].to(dtype))
            self.conv.bias.fill_(-threshold * self.match)
        self.conv.requires_grad_(False)
        self.scale = 1.0 / ((1.0 - threshold) * self.match)

    def response(self, x: Tensor) -> Tensor:
        """The normalised template response before the threshold (1 = perfect match), ``N×2×H×W``."""
        return (self.conv(x) - self.conv.bias[None, :, None, None]) / self.match

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.conv(x)) * self.scale


# =========================================================================== alignment measures


def alignment_error(
    a: Tensor,
    b: Tensor,
    *,
    mask: Tensor | None = None,
    dims: Sequence[int] | None = None,
    eps: float = 1e-12,
) -> Tensor:
    """Relative L2 error ``||a - b|| / ||b||`` of ``a`` against the reference ``b``.

    Args:
        a, b: tensors of the same shape (``b`` is the reference, e.g. the feature maps of the original image).
        mask: optional weights broadcastable to ``a`` (1 = compared, 0 = ignored), applied to both.
        dims: dimensions to reduce; ``None`` reduces all (a scalar), ``(1, 2, 3)`` gives one error per example.
        eps: the denominator is ``max(||b||, eps)``, so an all-zero reference does not divide by zero and a
            non-zero reference keeps the ratio exact (``alignment_error(0, b) == 1`` exactly).

    Returns:
        0 means perfect alignment; the all-zero map scores exactly 1, a map orthogonal to ``b`` more.
    """
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {list(a.shape)} and {list(b.shape)}")
    if mask is not None:
        a = a * mask
        b = b * mask
    d = tuple(range(a.dim())) if dims is None else tuple(dims)
    num = torch.linalg.vector_norm(a - b, dim=d)
    den = torch.linalg.vector_norm(b, dim=d).clamp_min(eps)
    return num / den


def _is_quarter_turn(angle: float) -> bool:
    return float(angle) % 90.0 == 0.0


def rotate_maps(x: Tensor, angle_deg: float, *, padding_mode: str = "zeros") -> Tensor:
    """Rotate images or feature maps by ``angle_deg``, exactly (``torch.rot90``) for multiples of 90°.

    Every channel is rotated in the same way (a purely spatial transformation).

    Convention:
        ``N×C×S×S`` square maps; degrees, positive = counter-clockwise as displayed, about the centre;
        other angles use :func:`stnlib.transforms.rotate` (bilinear, ``align_corners=False``,
        ``padding_mode`` fills the corners).
    """
    if _is_quarter_turn(angle_deg):
        return torch.rot90(x, int(round(float(angle_deg) / 90.0)) % 4, dims=(-2, -1))
    return transforms.rotate(x, float(angle_deg), padding_mode=padding_mode)


@dataclass
class RotationSearch:
    """Result of :func:`rotation_search`: the error of every tried angle and the best one."""

    angles: Tensor
    errors: Tensor
    best_angle: float
    best_error: float


@torch.no_grad()
def rotation_search(
    source: Tensor,
    target: Tensor,
    angles: Iterable[float] | None = None,
    *,
    padding_mode: str = "zeros",
) -> RotationSearch:
    """Rotate ``source`` by every angle (the same rotation for every channel) and compare with ``target``.

    Args:
        source: ``1×C×S×S`` feature maps to be aligned (e.g. those of the transformed image).
        target: ``1×C×S×S`` reference feature maps (those of the original image).
        angles: degrees; default every 1° in ``[0, 360)`` (which includes the exact quarter turns).

    Returns:
        :class:`RotationSearch` with :func:`alignment_error` per angle and the minimum.

    Convention:
        Degrees, positive = counter-clockwise as displayed; multiples of 90° via ``torch.rot90`` (exact),
        others via :func:`stnlib.transforms.rotate` (bilinear, ``align_corners=False``, ``padding_mode``).
    """
    ang = torch.arange(0.0, 360.0, 1.0, dtype=torch.float64) if angles is None else torch.as_tensor(
        list(angles), dtype=torch.float64)
    if ang.numel() == 0:
        raise ValueError("angles is empty; give at least one angle in degrees")
    if source.shape != target.shape or source.shape[0] != 1:
        raise ValueError(f"source and target must both be 1×C×S×S, got {list(source.shape)} and {list(target.shape)}")
    # All angles in one batched warp; the quarter turns are then replaced by their exact rot90 versions.
    rotated = transforms.rotate(source.expand(ang.numel(), *source.shape[1:]), ang.to(source.dtype),
                                padding_mode=padding_mode)
    for i, a in enumerate(ang.tolist()):
        if _is_quarter_turn(a):
            rotated[i] = rotate_maps(source, a)[0]
    errors = alignment_error(rotated, target.expand_as(rotated), dims=(1, 2, 3)).to(torch.float64)
    i = int(torch.argmin(errors))
    return RotationSearch(angles=ang, errors=errors, best_angle=float(ang[i]), best_error=float(errors[i]))


@dataclass
class AffineFit:
    """Result of :func:`affine_search`.

    ``theta`` is the best warp found (``1×2×3``), ``best_error`` its error, ``start_names``/``start_errors``
    /``final_errors`` describe every start, and ``history`` (``steps×starts``) the error during descent.
    """

    theta: Tensor
    best_error: float
    start_names: tuple[str, ...]
    start_errors: Tensor
    final_errors: Tensor
    history: Tensor


def affine_search(
    source: Tensor,
    target: Tensor,
    *,
    steps: int = 200,
    lr: float = 0.03,
    n_random: int = 6,
    seed: int = 0,
    padding_mode: str = "zeros",
) -> AffineFit:
    """The best general affine warp of ``source`` onto ``target``, fitted by gradient descent.

    Adam optimises the six numbers of ``theta`` from several starts at once (each start is independent:
    the loss is a sum of per-start errors and Adam's update is per parameter): the identity, the
    rotations by 90°, 180° (the true inverse of the 180° image rotation) and 270°, and ``n_random``
    random similarity transforms (angle uniform in [0°, 360°), log2-scale uniform in [-1, 1], shift
    uniform in ±0.25 normalised units, an eighth of the map) drawn from
    ``torch.Generator().manual_seed(seed)``. The returned error is the
    smallest :func:`alignment_error` actually evaluated along all trajectories, so it is an achieved value
    (an upper bound on the infimum over affine warps), never an extrapolation.

    Args:
        source, target: ``1×C×H×W`` feature maps; the same warp is applied to every channel of ``source``.
        steps, lr: Adam steps and learning rate (on theta's entries, normalised units).

    Convention:
        ``theta`` maps OUTPUT normalised coordinates (``[-1, 1]``, ``align_corners=False``, x right, y down)
        to INPUT sampling coordinates of ``source``, as ``F.affine_grid``; bilinear sampling,
        ``padding_mode`` outside. Angles of the starts in degrees, counter-clockwise as displayed.
    """
    if source.shape != target.shape or source.shape[0] != 1:
        raise ValueError(f"source and target must both be 1×C×H×W, got {list(source.shape)} and {list(target.shape)}")
    g = torch.Generator().manual_seed(seed)
    names = ["identity", "rotation 90°", "rotation 180° (true inverse)", "rotation 270°"]
    thetas = [transforms.rotation_theta(float(a), dtype=torch.float64) for a in (0.0, 90.0, 180.0, 270.0)]
    for i in range(n_random):
        angle = float(torch.rand((), generator=g, dtype=torch.float64) * 360.0)
        log2s = float(torch.rand((), generator=g, dtype=torch.float64) * 2.0 - 1.0)
        shift = (torch.rand(2, generator=g, dtype=torch.float64) - 0.5) * 0.5
        th = transforms.compose_theta(transforms.rotation_theta(angle, dtype=torch.float64),
                                      transforms.scale_theta(2.0 ** log2s, dtype=torch.float64))
        th[:, :, 2] = shift
        thetas.append(th)
        names.append(f"random {i} ({angle:.0f}°, scale {2.0 ** log2s:.2f})")
    theta = nn.Parameter(torch.cat(thetas).to(source.dtype))
    n = theta.shape[0]
    src = source.expand(n, *source.shape[1:])
    tgt = target.expand(n, *target.shape[1:])
    opt = torch.optim.Adam([theta], lr=lr)
    history = []
    best_error, best_theta = math.inf, theta.detach()[:1].clone()
    start_errors = None
    for step in range(steps + 1):
        err = alignment_error(transforms.warp(src, theta, padding_mode=padding_mode), tgt, dims=(1, 2, 3))
        e = err.detach().to(torch.float64)
        if start_errors is None:
            start_errors = e.clone()
        history.append(e)
        i = int(torch.argmin(e))
        if float(e[i]) < best_error:
            best_error, best_theta = float(e[i]), theta.detach()[i:i + 1].clone()
        if step == steps:
            break
        opt.zero_grad()
        err.sum().backward()
        opt.step()
    return AffineFit(theta=best_theta, best_error=best_error, start_names=tuple(names),
                     start_errors=start_errors, final_errors=history[-1], history=torch.stack(history))


def rotation_swap_error(source: Tensor, target: Tensor, *, k: int = 2,
                        permutation: Sequence[int] = (1, 0)) -> Tensor:
    """Error after rotating ``source`` by ``90·k`` degrees (exact) AND permuting its channels.

    ``out[:, c] = rot90(source, k)[:, permutation[c]]``. For the W/M example, ``k = 2`` and the swap
    ``(1, 0)`` is the transformation in feature space that a 180° image rotation induces.

    Convention:
        ``N×C×S×S``; positive ``k`` = counter-clockwise as displayed (``torch.rot90`` on dims ``(-2, -1)``).
    """
    perm = list(permutation)
    if sorted(perm) != list(range(source.shape[1])):
        raise ValueError(f"permutation must reorder the {source.shape[1]} channels, got {perm}")
    return alignment_error(torch.rot90(source, k, dims=(-2, -1))[:, perm], target)


def spatial_lower_bound(source: Tensor, target: Tensor) -> float:
    """A lower bound on the error of ANY purely spatial warp of ``source`` against ``target``.

    A spatial warp that maps zero to zero (any ``grid_sample`` with zero padding, or any permutation or
    interpolation of pixels within a channel) leaves an all-zero channel all zero. The error of every such
    warp is therefore at least ``||target restricted to the channels where source is identically 0|| /
    ||target||``. For the W/M example this bound is exactly 1.
    """
    silent = (source != 0).flatten(2).any(-1).logical_not()  # N×C: channels that are identically zero
    b = target * silent[:, :, None, None]
    return float(torch.linalg.vector_norm(b) / torch.linalg.vector_norm(target).clamp_min(1e-12))


@dataclass
class WMCounterexample:
    """Everything the toy chapter shows about the W/M example (see :func:`wm_counterexample`)."""

    image: Tensor                 # 1×1×S×S, the "W"
    rotated: Tensor               # 1×1×S×S, the "W" rotated by 180° (looks like an "M")
    maps: Tensor                  # 1×2×S×S, Γ(W)
    rotated_maps: Tensor          # 1×2×S×S, Γ(R W)
    back_rotated: Tensor          # 1×2×S×S, R⁻¹ Γ(R W): right place, wrong channel
    swapped: Tensor               # 1×2×S×S, R⁻¹ Γ(R W) with channels swapped
    rotation: RotationSearch      # every rotation of Γ(R W) against Γ(W)
    affine: AffineFit             # best affine warp of Γ(R W) against Γ(W)
    back_rotated_error: float     # error of R⁻¹ Γ(R W)
    swap_error: float             # error of rotation + channel swap
    lower_bound: float            # spatial_lower_bound(Γ(R W), Γ(W))
    cross_response: float         # strongest template response of a letter to the other letter
    channel_sums: dict[str, tuple[float, float]]  # per image: total activation of channels (W, M)


def wm_counterexample(
    *,
    angles: Iterable[float] | None = None,
    affine_steps: int = 200,
    affine_lr: float = 0.03,
    seed: int = 0,
) -> WMCounterexample:
    """The paper's Figure 1 made exact: Γ = :class:`LetterDetector`, T = rotation by 180°.

    Computes Γ(W), Γ(R W) with R the exact 180° rotation, the inverse warp R⁻¹ Γ(R W) (activation back in
    place but in the M channel), the error of every rotation of Γ(R W) (:func:`rotation_search`, every 1°),
    the best affine warp (:func:`affine_search`), the analytic lower bound for all spatial warps
    (:func:`spatial_lower_bound`) and the error of a rotation plus a channel swap.

    Convention:
        ``N×C×H×W`` on a :data:`CANVAS_SIZE` canvas; degrees, counter-clockwise as displayed; quarter turns
        exact via ``torch.rot90``; other warps bilinear with zero padding, ``align_corners=False``.
    """
    with _one_thread():
        return _wm_counterexample(angles, affine_steps, affine_lr, seed)


def _wm_counterexample(angles: Iterable[float] | None, affine_steps: int, affine_lr: float,
                       seed: int) -> WMCounterexample:
    gamma = LetterDetector()
    image = letter_image("W")
    rotated = rotated_w_image(2)
    with torch.no_grad():
        maps = gamma(image)
        rotated_maps = gamma(rotated)
        resp = gamma.response(torch.cat([image, rotated]))
    back = torch.rot90(rotated_maps, -2, dims=(-2, -1))
    swapped = back[:, [1, 0]]
    # W template on the M image and M template on the W image: how close the wrong letter comes.
    cross = float(torch.maximum(resp[0, 1].max(), resp[1, 0].max()))
    rot = rotation_search(rotated_maps, maps, angles)
    aff = affine_search(rotated_maps, maps, steps=affine_steps, lr=affine_lr, seed=seed)
    sums = {
        "W": tuple(float(v) for v in maps.sum(dim=(0, 2, 3))),
        "rotated W": tuple(float(v) for v in rotated_maps.sum(dim=(0, 2, 3))),
    }
    return WMCounterexample(
        image=image, rotated=rotated, maps=maps, rotated_maps=rotated_maps, back_rotated=back,
        swapped=swapped, rotation=rot, affine=aff,
        back_rotated_error=float(alignment_error(back, maps)),
        swap_error=float(rotation_swap_error(rotated_maps, maps)),
        lower_bound=spatial_lower_bound(rotated_maps, maps),
        cross_response=cross, channel_sums=sums,
    )


# =========================================================================== the bar


def bar_image(*, canvas: int = CANVAS_SIZE, length: int = 21, width: int = 3,
              dtype: torch.dtype = torch.float32) -> Tensor:
    """A ``1×1×canvas×canvas`` image of a centred horizontal bar (``width`` rows × ``length`` columns, ink 1).

    Convention:
        ``N×C×H×W``; ``canvas``, ``length`` and ``width`` odd so the bar is centred on the centre pixel and
        ``torch.rot90(bar_image(), 1)`` is the same bar standing upright.
    """
    if any(v % 2 == 0 for v in (canvas, length, width)) or not width <= length <= canvas:
        raise ValueError(f"need odd width <= length <= canvas, got width={width}, length={length}, canvas={canvas}")
    img = torch.zeros(1, 1, canvas, canvas, dtype=dtype)
    r0, c0 = (canvas - width) // 2, (canvas - length) // 2
    img[0, 0, r0:r0 + width, c0:c0 + length] = 1
    return img


class HorizontalEdgeDetector(nn.Module):
    """One channel: fires on long horizontal edges that are dark above and bright below.

    A ``3×7`` kernel (top row -1, middle row 0, bottom row +1) sums the vertical intensity step over 7
    columns; the output is ``ReLU(response - 4)``, so at least 5 of the 7 columns must see the step. A
    horizontal bar's top edge gives 7 - 4 = 3; a vertical bar 3 pixels wide gives at most 3 anywhere (its
    end) and hence exactly 0: the detector is silent on the rotated bar. Integer weights, so all values
    are exact.

    Convention:
        ``N×1×H×W`` in, ``N×1×H×W`` out ("same" zero padding); row 0 at the top, so "below" = larger row.
    """

    def __init__(self, *, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 1, (3, 7), padding=(1, 3), bias=True, dtype=dtype)
        kernel = torch.zeros(1, 1, 3, 7, dtype=dtype)
        kernel[0, 0, 0, :] = -1
        kernel[0, 0, 2, :] = 1
        with torch.no_grad():
            self.conv.weight.copy_(kernel)
            self.conv.bias.fill_(-4.0)
        self.conv.requires_grad_(False)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.conv(x))


@dataclass
class BarExample:
    """Everything the toy chapter shows about the bar (see :func:`bar_example`)."""

    image: Tensor             # 1×1×S×S horizontal bar
    rotated: Tensor           # the bar rotated by 90° (exact)
    maps: Tensor              # Γ(bar), non-zero
    rotated_maps: Tensor      # Γ(R bar), identically zero
    back_rotated: Tensor      # R⁻¹ Γ(R bar), identically zero
    maps_sum: float
    rotated_maps_max: float
    back_rotated_error: float  # exactly 1
    rotation: RotationSearch   # all errors exactly 1
    lower_bound: float         # exactly 1


def bar_example(*, angles: Iterable[float] | None = None) -> BarExample:
    """The zero-versus-non-zero argument: Γ = :class:`HorizontalEdgeDetector`, T = rotation by 90°.

    Γ(bar) is non-zero, Γ(R bar) is identically zero, and every spatial warp of an all-zero map is
    all-zero; so no warp aligns them and every one has error exactly 1.

    Convention:
        ``N×C×H×W``; degrees, counter-clockwise as displayed; quarter turns exact (``torch.rot90``).
    """
    with _one_thread():
        return _bar_example(angles)


def _bar_example(angles: Iterable[float] | None) -> BarExample:
    gamma = HorizontalEdgeDetector()
    image = bar_image()
    rotated = torch.rot90(image, 1, dims=(-2, -1))
    with torch.no_grad():
        maps = gamma(image)
        rotated_maps = gamma(rotated)
    back = torch.rot90(rotated_maps, -1, dims=(-2, -1))
    return BarExample(
        image=image, rotated=rotated, maps=maps, rotated_maps=rotated_maps, back_rotated=back,
        maps_sum=float(maps.sum()), rotated_maps_max=float(rotated_maps.abs().max()),
        back_rotated_error=float(alignment_error(back, maps)),
        rotation=rotation_search(rotated_maps, maps, angles),
        lower_bound=spatial_lower_bound(rotated_maps, maps),
    )


# =========================================================================== real first layers


ConvLike = nn.Conv2d | Tensor


def _as_conv_params(conv: ConvLike) -> tuple[Tensor, Tensor | None, int | tuple[int, int]]:
    if isinstance(conv, nn.Conv2d):
        if conv.groups != 1 or conv.dilation != (1, 1) or conv.stride != (1, 1):
            raise ValueError("conv must have stride 1, dilation 1 and groups 1 (a plain first conv layer)")
        if isinstance(conv.padding, str):
            raise ValueError(f"conv.padding must be numeric, got {conv.padding!r}")
        return conv.weight, conv.bias, conv.padding
    if isinstance(conv, Tensor) and conv.dim() == 4:
        return conv, None, 0
    raise ValueError(f"conv must be an nn.Conv2d or a 4-D weight tensor [C_out, C_in, k, k], got {type(conv).__name__}")


def conv_features(conv: ConvLike, images: Tensor,
                  normalization: tuple[float, float] | None = None) -> Tensor:
    """First-layer feature maps ``ReLU(conv((images - mean) / std))`` (conv + ReLU, before any pooling).

    Args:
        conv: an ``nn.Conv2d`` (stride 1) or a weight tensor (then no bias and no padding).
        images: ``N×C×H×W`` raw images (MNIST: in ``[0, 1]``).
        normalization: ``(mean, std)`` applied after any transformation of the raw image, as in training.
    """
    weight, bias, padding = _as_conv_params(conv)
    x = images if normalization is None else (images - normalization[0]) / normalization[1]
    with torch.no_grad():
        return F.relu(F.conv2d(x.to(weight.dtype), weight, bias, padding=padding))


def disc_mask(size: int, *, margin: float = 1.0, device: torch.device | str | None = None) -> Tensor:
    """``1×1×size×size`` mask of the pixels whose centre is within ``(size - 1)/2 - margin`` px of the centre.

    Rotating a square about its centre moves its corners out of the frame; inside this disc a rotation
    (and its inverse) only ever samples inside the map, and ``margin = 1`` keeps the bilinear neighbours
    inside as well. So corner clipping does not enter the rotation measure.

    Convention:
        Pixel centres at integer row/column indices; the centre is ``((size-1)/2, (size-1)/2)``.
    """
    c = torch.arange(size, dtype=torch.float64, device=device) - (size - 1) / 2.0
    r2 = c[:, None] ** 2 + c[None, :] ** 2
    radius = disc_radius(size, margin=margin)
    return (r2 <= radius * radius).to(torch.float32)[None, None]


def disc_radius(size: int, *, margin: float = 1.0) -> float:
    """Radius in pixels of :func:`disc_mask`: ``(size - 1)/2 - margin``."""
    radius = (size - 1) / 2.0 - margin
    if radius < 0:
        raise ValueError(f"margin {margin} leaves no disc on a {size}×{size} map")
    return radius


def shift_exact(x: Tensor, dx: int, dy: int) -> Tensor:
    """Move the content of ``x`` by integer ``(dx, dy)`` pixels (right, down), filling with zeros. Exact.

    Equals ``transforms.translate(x, (dx, dy))`` for integer shifts, without any interpolation arithmetic.

    Convention:
        ``N×C×H×W``; ``out[..., i, j] = x[..., i - dy, j - dx]`` where that index exists, else 0.
    """
    if int(dx) != dx or int(dy) != dy:
        raise ValueError(f"shift_exact needs integer shifts, got (dx, dy) = ({dx}, {dy})")
    dx, dy = int(dx), int(dy)
    h, w = x.shape[-2:]
    out = torch.zeros_like(x)
    if abs(dx) >= w or abs(dy) >= h:
        return out
    out[..., max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        x[..., max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


def _check_images(images: Tensor) -> None:
    if not isinstance(images, Tensor) or images.dim() != 4 or images.shape[-1] != images.shape[-2]:
        shape = list(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise ValueError(f"images must be a square batch N×C×S×S, got {shape}")


def rotation_misalignment_curve(
    conv: ConvLike,
    images: Tensor,
    angles: Iterable[float],
    *,
    normalization: tuple[float, float] | None = None,
    margin: float = 1.0,
    batch_size: int = 256,
) -> Tensor:
    """Mean over ``images`` of ``||R_{-a} Γ(R_a f) - Γ f|| / ||Γ f||`` for every angle ``a``.

    Γ is :func:`conv_features` (conv + ReLU, before pooling). The feature maps are compared inside
    :func:`disc_mask` (radius ``(S' - 1)/2 - margin`` pixels on the ``S'×S'`` feature map), so the corners
    that a rotation moves out of the frame do not count. 0 would mean that the inverse rotation aligns the
    feature maps (equation (1) of the paper with "=").

    Args:
        conv: ``nn.Conv2d`` or weight tensor (see :func:`conv_features`).
        images: ``N×C×S×S`` raw images (MNIST: ``[0, 1]``, zero background).
        angles: degrees.
        normalization: ``(mean, std)`` applied after rotating the raw image, as during training.

    Returns:
        ``[len(angles)]`` float64 tensor of mean relative errors.

    Convention:
        Degrees, positive = counter-clockwise as displayed. Quarter turns via ``torch.rot90`` (exact), other
        angles via :func:`stnlib.transforms.rotate` (bilinear, zero padding, ``align_corners=False``) for
        both the image and the inverse rotation of the feature maps. Rotation about the centre of the
        image; a stride-1 unpadded conv maps it to the centre of the feature map.
    """
    _check_images(images)
    angle_list = [float(a) for a in angles]
    if not angle_list:
        return torch.zeros(0, dtype=torch.float64)
    errs: list[list[Tensor]] = [[] for _ in angle_list]
    for start in range(0, images.shape[0], batch_size):
        f = images[start:start + batch_size]
        ref = conv_features(conv, f, normalization)
        mask = disc_mask(ref.shape[-1], margin=margin, device=ref.device)
        ref = ref * mask  # masked once here instead of inside every comparison
        for i, a in enumerate(angle_list):
            back = rotate_maps(conv_features(conv, rotate_maps(f, a), normalization), -a)
            errs[i].append(alignment_error(back * mask, ref, dims=(1, 2, 3)))
    return torch.stack([torch.cat(e).to(torch.float64).mean() for e in errs])


def translation_misalignment_curve(
    conv: ConvLike,
    images: Tensor,
    shifts: Iterable[tuple[int, int]],
    *,
    normalization: tuple[float, float] | None = None,
    batch_size: int = 256,
) -> Tensor:
    """Mean over ``images`` of ``||T_{-s} Γ(T_s f) - Γ f|| / ||Γ f||`` for integer shifts ``s = (dx, dy)``.

    Γ is :func:`conv_features` (conv + ReLU, before pooling). The comparison is restricted to the central
    region that lies at least ``m = max(|dx|, |dy|)`` (over all ``shifts``) feature-map pixels away from
    every border: there, convolution commuting with translation makes the error 0 up to float rounding.
    Near the borders the shifted image has lost (zero-filled) the strip that moved out, so it is excluded.

    Returns:
        ``[len(shifts)]`` float64 tensor of mean relative errors (≈ 1e-7 in float32).

    Convention:
        Shifts in pixels, ``(dx, dy)`` = content moves right / down; integer shifts by :func:`shift_exact`
        (zero fill) for the image, and the inverse shift of the feature maps likewise (stride-1 conv, so
        one image pixel is one feature-map pixel).
    """
    _check_images(images)
    shift_list = [(int(dx), int(dy)) for dx, dy in shifts]
    for (dx, dy), raw in zip(shift_list, shifts):
        if (dx, dy) != tuple(raw):
            raise ValueError(f"translation_misalignment_curve needs integer shifts, got {tuple(raw)}")
    if not shift_list:
        return torch.zeros(0, dtype=torch.float64)
    m = max(max(abs(dx), abs(dy)) for dx, dy in shift_list)
    errs: list[list[Tensor]] = [[] for _ in shift_list]
    for start in range(0, images.shape[0], batch_size):
        f = images[start:start + batch_size]
        ref = conv_features(conv, f, normalization)
        h, w = ref.shape[-2:]
        if 2 * m >= min(h, w):
            raise ValueError(f"shifts up to {m} px leave no interior on a {h}×{w} feature map")
        # The interior, identical for every shift: the curve compares the same pixels throughout.
        ref = ref[..., m:h - m, m:w - m]
        for i, (dx, dy) in enumerate(shift_list):
            back = shift_exact(conv_features(conv, shift_exact(f, dx, dy), normalization), -dx, -dy)
            errs[i].append(alignment_error(back[..., m:h - m, m:w - m], ref, dims=(1, 2, 3)))
    return torch.stack([torch.cat(e).to(torch.float64).mean() for e in errs])


def random_first_layer(seed: int = 0, *, out_channels: int = 64, kernel_size: int = 9) -> nn.Conv2d:
    """A randomly initialised first conv layer like the MNIST CNN's: ``Conv2d(1, 64, 9)``, no padding.

    PyTorch's default (Kaiming-uniform) initialisation, drawn from ``torch.manual_seed(seed)`` inside a
    forked RNG, so the global random state is left untouched and the layer is the same on every run.
    With the default sizes it equals conv1 of ``build_model("cnn", "mnist-rot")`` built under the same
    seed, i.e. the layer that :func:`train_mnist_cnn` starts from.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Conv2d(1, out_channels, kernel_size).requires_grad_(False)


def c4_symmetrized(conv: nn.Conv2d) -> nn.Conv2d:
    """A copy of ``conv`` whose filters are averaged over their four quarter-turn rotations.

    Each filter is then invariant to 90° rotations, so for this layer a 90° rotation of the image IS
    aligned by rotating the feature maps back (the exception the theory allows: invariant features).

    Convention:
        Rotations by ``torch.rot90`` on the kernel's last two dims (square kernels only).
    """
    if conv.kernel_size[0] != conv.kernel_size[1]:
        raise ValueError(f"c4_symmetrized needs a square kernel, got {conv.kernel_size}")
    sym = copy.deepcopy(conv)
    with torch.no_grad():
        w = conv.weight
        sym.weight.copy_(sum(torch.rot90(w, k, dims=(-2, -1)) for k in range(4)) / 4)
    return sym.requires_grad_(False)


def pointwise_layer(channels: int = 1) -> Tensor:
    """Weights of the identity ``1×1`` conv: Γf = ReLU(f) is trivially rotation invariant per pixel.

    Its rotation misalignment is pure interpolation error (bilinear rotation there and back), the floor
    against which the other curves are read.
    """
    return torch.eye(channels)[:, :, None, None]


def first_conv(model: nn.Module) -> nn.Conv2d:
    """The first ``nn.Conv2d`` of ``model`` (for the plain CNN: conv1)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            return m
    raise ValueError(f"{type(model).__name__} has no nn.Conv2d layer")


def train_mnist_cnn(
    steps: int,
    seed: int = 0,
    device: str | torch.device = "cpu",
    *,
    batch_size: int = 64,
    lr: float = 0.01,
    momentum: float = 0.9,
    root: str | os.PathLike | None = None,
) -> tuple[nn.Module, list[float]]:
    """Train the plain MNIST CNN (``build_model("cnn", "mnist-rot")``) on UPRIGHT real MNIST.

    SGD with momentum for ``steps`` steps of ``batch_size`` random training images (normalised with
    :data:`MNIST_NORMALIZATION`), cross-entropy loss. Initialisation and batches come from ``seed``
    (the global RNG is left untouched). ``root`` is the data folder (default: ``data/`` of the checkout,
    as for training). Returns the model (in eval mode, on CPU) and the loss per step.
    """
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    images, labels = data.mnist_arrays(train=True, root=_data_root(root))
    x_all = images.to(torch.float32).div_(255.0).unsqueeze(1)
    mean, std = MNIST_NORMALIZATION
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = models.build_model("cnn", "mnist-rot")
    model = model.to(device).train()
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    g = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(steps):
        idx = torch.randint(0, x_all.shape[0], (batch_size,), generator=g)
        x = ((x_all[idx] - mean) / std).to(device)
        y = labels[idx].to(device)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return model.cpu().eval(), losses


def _data_root(root: str | os.PathLike | None) -> Path:
    if root is not None:
        return Path(root)
    from stnlib.records import REPO_ROOT

    return REPO_ROOT / "data"


def mnist_test_images(n: int = 256, *, root: str | os.PathLike | None = None) -> Tensor:
    """The first ``n`` MNIST test images as float ``n×1×28×28`` in ``[0, 1]`` (zero background).

    ``root`` is the data folder (default: ``data/`` of the checkout); see :func:`stnlib.data.ensure_mnist`.
    """
    images, _ = data.mnist_arrays(train=False, root=_data_root(root))
    if not 0 < n <= images.shape[0]:
        raise ValueError(f"n must be in 1..{images.shape[0]}, got {n}")
    return images[:n].to(torch.float32).div_(255.0).unsqueeze(1)


def train_first_layer(
    steps: int,
    seed: int = 0,
    device: str | torch.device = "cpu",
    **kwargs,
) -> nn.Conv2d:
    """conv1 of the MNIST CNN after ``steps`` SGD-momentum steps on upright MNIST (see :func:`train_mnist_cnn`).

    The returned layer expects inputs normalised with :data:`MNIST_NORMALIZATION`; its feature maps in
    the toy chapter are conv1 + ReLU, before the max-pooling that follows it in the CNN.
    """
    model, _ = train_mnist_cnn(steps, seed, device, **kwargs)
    return copy.deepcopy(first_conv(model)).requires_grad_(False)
