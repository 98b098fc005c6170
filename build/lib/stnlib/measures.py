"""What the book measures on networks and records; nothing here trains.

* **Orientation statistics**: how well the transform an ST predicts compensates the applied one:
  the orthogonal (Deming) fit, the correlation, and the authors' pooled per-class deviation.
* **The misalignment measure** (the paper's equation (1) as a number), one definition for every use:
  for a feature extractor Γ, images ``f`` and a transformation ``T``, the mean over images of
  ``||T⁻¹ Γ(T f) − Γ f|| / ||Γ f||``, compared only where ``T`` keeps the maps inside the frame.
  The toy chapter applies it to fixed first layers (Γ = conv + ReLU), the records to each trained
  network's first block (Γ = conv + max-pool + ReLU, what STN-C1 warps).
* Histograms stored sparsely in records, and the mean and spread of a number over seeds.

Geometry follows :mod:`stnlib.transforms`: angles in degrees, positive = counter-clockwise as
displayed; shifts ``(dx, dy)`` in pixels, right and down. Quarter turns and integer shifts are exact
(``torch.rot90``, slicing), so what holds exactly is shown exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from stnlib.nn.equivariant import rotate_fields_continuous
from stnlib.transforms import rotate_maps, shift_exact

Features = Callable[[Tensor], Tensor]

# ---------------------------------------------------------------------------------------
# orientation statistics


def deming_fit(x: Sequence[float], y: Sequence[float], delta: float = 1.0) -> tuple[float, float]:
    """Orthogonal (Deming) regression ``y ≈ slope · x + intercept``.

    ``delta`` is the ratio of the error variances of ``y`` and ``x`` (1: orthogonal regression,
    as the authors' figure uses). Returns ``(slope, intercept)``; ``nan`` for degenerate input.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.size < 2:
        return math.nan, math.nan
    mx, my = x.mean(), y.mean()
    sxx = np.mean((x - mx) ** 2)
    syy = np.mean((y - my) ** 2)
    sxy = np.mean((x - mx) * (y - my))
    if sxy == 0:
        return (0.0 if sxx >= syy else math.inf), float(my)
    d = syy - delta * sxx
    slope = (d + math.sqrt(d * d + 4 * delta * sxy * sxy)) / (2 * sxy)
    return float(slope), float(my - slope * mx)


def pooled_class_deviation(applied: Sequence[float], predicted: Sequence[float],
                           labels: Sequence[int]) -> float:
    """The authors' "standard deviation" statistic, in the units of the inputs.

    For a perfect canonicaliser the predicted transform undoes the applied one up to a
    class-specific constant: ``applied + predicted = const_c``. The statistic pools the squared
    deviations of ``applied + predicted`` from their class means over all classes:
    ``sqrt(sum_c sum_i (s_i - mean_c)^2 / N)``. Low means every instance of a class is brought
    to one pose; an ST that predicts nothing gives the spread of the applied transform
    (90/sqrt(3) ≈ 52° for rotations in ±90°).
    """
    s = np.asarray(applied, dtype=np.float64) + np.asarray(predicted, dtype=np.float64)
    labels = np.asarray(labels)
    total = 0.0
    for c in np.unique(labels):
        sc = s[labels == c]
        total += float(np.sum((sc - sc.mean()) ** 2))
    return math.sqrt(total / max(len(s), 1))


def wrap_degrees(a: np.ndarray) -> np.ndarray:
    """Wrap angles in degrees to [-180, 180)."""
    return (np.asarray(a, dtype=np.float64) + 180.0) % 360.0 - 180.0


def orientation_stats(applied: Sequence[float], predicted: Sequence[float],
                      labels: Sequence[int]) -> dict[str, float]:
    """Slope and intercept of the Deming fit, Pearson r, |r| and the pooled class deviation.

    An ST that perfectly undoes the applied transform has slope -1 and |r| = 1.
    """
    applied = np.asarray(applied, dtype=np.float64)
    predicted = np.asarray(predicted, dtype=np.float64)
    slope, intercept = deming_fit(applied, predicted)
    if np.std(applied) > 0 and np.std(predicted) > 0:
        r = float(np.corrcoef(applied, predicted)[0, 1])
    else:
        r = 0.0
    return {
        "slope": slope,
        "intercept": intercept,
        "r": r,
        "abs_r": abs(r),
        "pooled_class_deviation": pooled_class_deviation(applied, predicted, labels),
    }


def orientation_summary(applied: np.ndarray, predicted: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """Orientation statistics of one evaluation pass: angles (``[N]``) or shifts (``[N, 2]``).

    Rotations: :func:`orientation_stats` of the wrapped angles. Translations: the statistics of each
    axis (``x`` right, ``y`` down) and their mean.
    """
    if applied.ndim == 1:
        return {"kind": "rotation", **orientation_stats(applied, wrap_degrees(predicted), labels)}
    sx = orientation_stats(applied[:, 0], predicted[:, 0], labels)
    sy = orientation_stats(applied[:, 1], predicted[:, 1], labels)
    return {"kind": "translation", **{k: (sx[k] + sy[k]) / 2 for k in sx}, "x": sx, "y": sy}


# ---------------------------------------------------------------------------------------
# histograms and seed statistics


def sparse_histogram2d(x: Sequence[float], y: Sequence[float], bins: int,
                       lim: float) -> dict[str, Any]:
    """A 2-D histogram over ``[-lim, lim]²`` stored sparsely (``[i, j, count]`` for non-empty cells).

    Values outside the range are clipped into the edge bins so no example is lost.
    """
    edges = np.linspace(-lim, lim, bins + 1)
    xc = np.clip(np.asarray(x, dtype=np.float64), -lim, lim - 1e-9)
    yc = np.clip(np.asarray(y, dtype=np.float64), -lim, lim - 1e-9)
    h, _, _ = np.histogram2d(xc, yc, bins=[edges, edges])
    ii, jj = np.nonzero(h)
    return {"bins": bins, "lim": lim,
            "cells": [[int(i), int(j), int(h[i, j])] for i, j in zip(ii, jj)]}


def dense_histogram2d(h: dict[str, Any]) -> np.ndarray:
    """Inverse of :func:`sparse_histogram2d`: a ``bins × bins`` array indexed ``[x_bin, y_bin]``."""
    out = np.zeros((h["bins"], h["bins"]), dtype=np.int64)
    for i, j, c in h["cells"]:
        out[i, j] = c
    return out


def mean_std(values: Iterable[float | None]) -> tuple[float, float, int]:
    """Mean, sample standard deviation and count of the finite values (std NaN with fewer than two)."""
    v = np.asarray([x for x in values if x is not None and not math.isnan(x)], dtype=np.float64)
    if v.size == 0:
        return math.nan, math.nan, 0
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else math.nan, int(v.size)


# ---------------------------------------------------------------------------------------
# the misalignment measure


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


def disc_radius(size: int, *, margin: float = 1.0) -> float:
    """Radius in pixels of :func:`disc_mask`: ``(size - 1)/2 - margin``."""
    radius = (size - 1) / 2.0 - margin
    if radius < 0:
        raise ValueError(f"margin {margin} leaves no disc on a {size}×{size} map")
    return radius


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


def _check_images(images: Tensor) -> None:
    if not isinstance(images, Tensor) or images.dim() != 4 or images.shape[-1] != images.shape[-2]:
        shape = list(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise ValueError(f"images must be a square batch N×C×S×S, got {shape}")


def spatial_rotation(maps: Tensor, angle_deg: float) -> Tensor:
    """The purely spatial inverse warp: every channel rotated by ``angle_deg`` (what an ST can do)."""
    return rotate_maps(maps, angle_deg)


def rotation_misalignment(
    features: Features,
    images: Tensor,
    angles: Iterable[float],
    *,
    rotate_back: Callable[[Tensor, float], Tensor] = spatial_rotation,
    margin: float = 1.0,
    batch_size: int = 256,
) -> Tensor:
    """Mean over ``images`` of ``||R⁻¹ Γ(R_a f) − Γ f|| / ||Γ f||`` for every angle ``a``.

    Args:
        features: Γ, mapping ``N×C×S×S`` images to square feature maps (e.g. a first conv layer + ReLU,
            or a trained network's first block).
        images: ``N×C×S×S`` inputs as Γ expects them (the rotation is applied to them directly).
        angles: degrees.
        rotate_back: the inverse warp of the maps, ``rotate_back(maps, -a)``: a spatial rotation by
            default; the group action (space and orientation channels) for equivariant maps.
        margin: the maps are compared inside :func:`disc_mask` with this margin, so the corners that a
            rotation moves out of the frame do not count.

    Returns:
        ``[len(angles)]`` float64 tensor; 0 would mean the inverse warp aligns the feature maps
        (equation (1) of the paper with "=").

    Convention:
        Degrees, positive = counter-clockwise as displayed, about the image centre; quarter turns via
        ``torch.rot90`` (exact), other angles bilinear with zero padding (``align_corners=False``).
    """
    _check_images(images)
    angle_list = [float(a) for a in angles]
    if not angle_list:
        return torch.zeros(0, dtype=torch.float64)
    errs: list[list[Tensor]] = [[] for _ in angle_list]
    with torch.no_grad():
        for start in range(0, images.shape[0], batch_size):
            f = images[start:start + batch_size]
            ref = features(f).float()
            mask = disc_mask(ref.shape[-1], margin=margin, device=ref.device)
            ref = ref * mask  # masked once here instead of inside every comparison
            for i, a in enumerate(angle_list):
                back = rotate_back(features(rotate_maps(f, a)).float(), -a)
                errs[i].append(alignment_error(back * mask, ref, dims=(1, 2, 3)))
    return torch.stack([torch.cat(e).to(torch.float64).mean() for e in errs])


def translation_misalignment(
    features: Features,
    images: Tensor,
    shifts: Iterable[tuple[int, int]],
    *,
    stride: int = 1,
    batch_size: int = 256,
) -> Tensor:
    """Mean over ``images`` of ``||T⁻¹ Γ(T_s f) − Γ f|| / ||Γ f||`` for integer shifts ``s = (dx, dy)``.

    ``stride`` is Γ's total stride (2 for a block that max-pools by 2): the maps are shifted back by
    ``s / stride`` feature-map pixels, so every shift must be a multiple of ``stride``. The comparison is
    restricted to the interior at least ``max |s| / stride`` feature-map pixels from every border (the
    shifted image has lost the strip that moved out); there convolution, ReLU and aligned pooling commute
    with the shift and the error is 0 up to float rounding: the exception to equation (1).

    Returns:
        ``[len(shifts)]`` float64 tensor of mean relative errors.

    Convention:
        Shifts in pixels, ``(dx, dy)`` = content moves right / down, by :func:`~stnlib.transforms.shift_exact`
        (zero fill) for the image and the maps.
    """
    _check_images(images)
    shift_list = [(int(dx), int(dy)) for dx, dy in shifts]
    for (dx, dy), raw in zip(shift_list, shifts):
        if (dx, dy) != tuple(raw) or dx % stride or dy % stride:
            raise ValueError(f"translation_misalignment needs integer shifts that are multiples of the stride "
                             f"{stride}, got {tuple(raw)}")
    if not shift_list:
        return torch.zeros(0, dtype=torch.float64)
    m = max(max(abs(dx), abs(dy)) for dx, dy in shift_list) // stride
    errs: list[list[Tensor]] = [[] for _ in shift_list]
    with torch.no_grad():
        for start in range(0, images.shape[0], batch_size):
            f = images[start:start + batch_size]
            ref = features(f).float()
            h, w = ref.shape[-2:]
            if 2 * m >= min(h, w):
                raise ValueError(f"shifts up to {m * stride} px leave no interior on a {h}×{w} feature map")
            ref = ref[..., m:h - m, m:w - m]  # the same interior for every shift
            for i, (dx, dy) in enumerate(shift_list):
                back = shift_exact(features(shift_exact(f, dx, dy)).float(), -dx // stride, -dy // stride)
                errs[i].append(alignment_error(back[..., m:h - m, m:w - m], ref, dims=(1, 2, 3)))
    return torch.stack([torch.cat(e).to(torch.float64).mean() for e in errs])


# ---------------------------------------------------------------------------------------
# the measure on trained networks


#: Where the records' misalignment curves are sampled (degrees; diagonal shifts in pixels).
CURVE_ANGLES: tuple[int, ...] = tuple(range(-90, 91, 15))
CURVE_SHIFTS: tuple[int, ...] = tuple(range(-16, 17, 4))


def network_misalignment(model: Any, images: Tensor, kind: str, *,
                         prepare: Callable[[Tensor], Tensor] = lambda x: x) -> dict[str, Any]:
    """The misalignment of a trained network's first block, and of its ST's output, on upright ``images``.

    ``images`` are raw (MNIST: pixels in [0, 1], zero background), transformed as the data pipeline
    transforms them; ``prepare`` turns them into network inputs (the task's normalisation), so a
    rotated image is normalised after rotating, as in training.

    ``kind`` is ``"rotation"`` (angles :data:`CURVE_ANGLES`) or ``"translation"`` (diagonal shifts
    ``(s, s)`` for the even ``s`` of :data:`CURVE_SHIFTS`; the block pools by 2). ``feature_maps`` is
    :func:`rotation_misalignment` / :func:`translation_misalignment` with Γ = ``model.first_layer``:
    the best a perfect STN-C1 could do, since the inverse warp is exactly what it would have to learn.
    For equivariant networks the inverse warp is the group action (space and orientation channels).
    With an ST, ``after_st`` compares the ST's outputs for the transformed and the upright input
    (the same measure with Γ = the ST's output and no inverse warp): 0 means the ST's output does not
    depend on the transformation at all.
    """
    model.eval()
    out: dict[str, Any] = {"kind": kind}
    no_warp = (lambda maps, _a: maps)

    def first(x: Tensor) -> Tensor:
        return model.first_layer(prepare(x))

    def st_output(x: Tensor) -> Tensor:
        return model.transform(prepare(x))[0].float()

    if kind == "rotation":
        back = spatial_rotation
        if model.equivariant:
            n = model.n_orientations
            back = (lambda maps, a: rotate_fields_continuous(maps, a, n, padding_mode="zeros"))
        out["angle_deg"] = list(CURVE_ANGLES)
        out["feature_maps"] = rotation_misalignment(first, images, CURVE_ANGLES, rotate_back=back).tolist()
        if model.has_st:
            out["after_st"] = rotation_misalignment(st_output, images, CURVE_ANGLES, rotate_back=no_warp).tolist()
    elif kind == "translation":
        shifts = [s for s in CURVE_SHIFTS if s % 2 == 0]
        out["shift_px"] = shifts
        out["feature_maps"] = translation_misalignment(first, images, [(s, s) for s in shifts], stride=2).tolist()
        if model.has_st:
            with torch.no_grad():
                base = st_output(images)
                out["after_st"] = [float(alignment_error(st_output(shift_exact(images, s, s)), base,
                                                         dims=(1, 2, 3)).mean()) for s in shifts]
    else:
        raise ValueError(f"unknown misalignment kind {kind!r}; valid choices: rotation, translation")
    return out
