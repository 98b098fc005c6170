"""Statistics computed from trained models and records; nothing here trains.

* orientation statistics: how well the transform an ST predicts compensates the applied one
  (Deming fit, correlation, and the authors' pooled per-class deviation, spec §6.2);
* the feature-map misalignment measure (equation (1) of the paper, made quantitative);
* small helpers that summarise records across seeds.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import numpy as np
import torch

from . import transforms


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
    """The authors' "standard deviation" statistic (spec §6.2), in the units of the inputs.

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


# ---------------------------------------------------------------------------------------
# predicted transforms of a model


@torch.no_grad()
def predicted_transform(model: torch.nn.Module, x: torch.Tensor, dataset: str
                        ) -> dict[str, np.ndarray] | None:
    """What the model's (first) ST does to the content, read from its ``theta``.

    Returns ``{"angle_deg": [N]}`` plus ``{"shift_px": [N, 2]}`` in pixels of the input image
    (for a feature-map ST the normalised shift is scaled by the input size, the same relative
    displacement; the authors rescale by 25/29.5 for the same reason). ``None`` for a plain CNN.
    """
    out = model.forward_with_theta(x)
    theta = out[1]
    if theta is None:
        return None
    theta = theta.float()
    size = x.shape[-2:]
    return {
        "angle_deg": transforms.theta_rotation_deg(theta).cpu().numpy(),
        "shift_px": transforms.theta_translation_px(theta, tuple(size)).cpu().numpy(),
    }


# ---------------------------------------------------------------------------------------
# feature-map misalignment (equation (1) made quantitative)


def _relative_distance(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is not None:
        a = a * mask
        b = b * mask
    num = (a - b).flatten(1).norm(dim=1)
    den = b.flatten(1).norm(dim=1).clamp_min(1e-8)
    return num / den


def _disc_mask(size: int, device: Any) -> torch.Tensor:
    # Rotation moves the corners of a square out of the frame; inside the inscribed disc the
    # inverse warp is exact up to interpolation, so the measure compares only that region.
    c = (torch.arange(size, device=device, dtype=torch.float32) + 0.5) / size * 2 - 1
    yy, xx = torch.meshgrid(c, c, indexing="ij")
    return ((xx ** 2 + yy ** 2) <= 1.0).float()[None, None]


@torch.no_grad()
def rotation_misalignment(model: torch.nn.Module, images: torch.Tensor,
                          angles_deg: Iterable[float]) -> dict[str, list[float]]:
    """Misalignment of first-layer feature maps under rotation, per angle.

    For each angle a: ``|| R_{-a} Γ(R_a f) - Γ f || / || Γ f ||`` averaged over ``images``
    (normalised digits, N×1×H×W), with Γ the model's first conv block (conv + pool + ReLU)
    and both maps compared inside the inscribed disc. This is equation (1) of the paper as a
    number: 0 would mean the inverse spatial warp aligns the feature maps.

    For rotation-equivariant models (``model.equivariant``) the inverse warp is the group
    action (spatial rotation plus orientation-channel shift), see :mod:`stnlib.equivariant`.

    For a model with a feature-map ST after layer 1 (STN-C1), also returns ``after_st``:
    ``|| ST(Γ(R_a f)) - ST(Γ f) ||/|| ST(Γ f) ||``, i.e. how far the ST's own output is from
    invariant; and for input-level STs (C0/SL1/DL1), ``after_st`` compares the ST outputs of
    the input image, ``|| ST(R_a f) - ST(f) || / || ST(f) ||``.

    Convention: angles in degrees, positive = counter-clockwise as displayed; rotations by
    :func:`stnlib.transforms.rotate` with zero padding, align_corners=False.
    """
    angles = list(angles_deg)
    base = model.first_layer(images).float()
    mask = _disc_mask(base.shape[-1], base.device)
    st_base = _st_output(model, images)
    out: dict[str, list[float]] = {"angle_deg": angles, "feature_maps": [], "after_st": []}
    for a in angles:
        rot = transforms.rotate(images, float(a), padding_mode="zeros")
        feats = model.first_layer(rot).float()
        back = _rotate_back(model, feats, float(a))
        out["feature_maps"].append(float(_relative_distance(back, base, mask).mean()))
        if st_base is not None:
            st_rot = _st_output(model, rot)
            m = _disc_mask(st_base.shape[-1], st_base.device)
            out["after_st"].append(float(_relative_distance(st_rot, st_base, m).mean()))
    if st_base is None:
        del out["after_st"]
    return out


@torch.no_grad()
def translation_misalignment(model: torch.nn.Module, images: torch.Tensor,
                             shifts_px: Iterable[int]) -> dict[str, list[float]]:
    """Misalignment of first-layer feature maps under translation, per (diagonal) shift.

    For each even integer shift s, the image is translated by (s, s) pixels and its
    first-layer maps are translated back by (-s/2, -s/2) (the block pools by 2). Away from the
    borders this is exact, because convolution, ReLU and an aligned 2×2 pooling commute with
    translations by even pixel counts: the curve is ~0, the exception equation (1) allows.
    Odd shifts are skipped (a 2×2 pooling grid cannot be realigned by whole feature pixels).
    ``after_st`` compares the ST outputs of the shifted and unshifted inputs, as in
    :func:`rotation_misalignment`.

    Convention: shifts in pixels, (dx, dy) = content moves right and down; zero padding.
    """
    shifts = [int(s) for s in shifts_px if int(s) % 2 == 0]
    base = model.first_layer(images).float()
    size = base.shape[-1]
    margin = max(abs(s) for s in shifts) // 2 + 1 if shifts else 0
    mask = torch.zeros(1, 1, size, size, device=base.device)
    mask[..., margin:size - margin, margin:size - margin] = 1.0
    st_base = _st_output(model, images)
    out: dict[str, list[float]] = {"shift_px": shifts, "feature_maps": [], "after_st": []}
    for s in shifts:
        sh = torch.tensor([[float(s), float(s)]], device=images.device).expand(len(images), 2)
        moved = transforms.translate(images, sh, padding_mode="zeros")
        feats = model.first_layer(moved).float()
        back = transforms.translate(feats, -sh / 2, padding_mode="zeros")
        out["feature_maps"].append(float(_relative_distance(back, base, mask).mean()))
        if st_base is not None:
            st_moved = _st_output(model, moved)
            out["after_st"].append(float(_relative_distance(st_moved, st_base, None).mean()))
    if st_base is None:
        del out["after_st"]
    return out


def _rotate_back(model: torch.nn.Module, feats: torch.Tensor, angle: float) -> torch.Tensor:
    # Plain CNN maps can only be warped in space. Rotation-equivariant (C4) maps are warped
    # with the group action, which also shifts the orientation channels: the alignment that
    # the paper's argument says a purely spatial warp lacks.
    if getattr(model, "equivariant", False):
        from .equivariant import rotate_fields_continuous

        return rotate_fields_continuous(feats, -angle, model.n_orientations,
                                        padding_mode="zeros")
    return transforms.rotate(feats, -angle, padding_mode="zeros")


def _st_output(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor | None:
    if getattr(model, "kind", "cnn") == "cnn":
        return None
    st_out, _ = model.transform(x)
    return st_out.float()


# ---------------------------------------------------------------------------------------
# summaries across seeds


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return math.nan, math.nan
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0
