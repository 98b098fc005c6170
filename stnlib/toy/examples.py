"""The two exact counterexamples of the theory chapter: the W/M example and the bar.

Both are constructions, not trained networks: they hold to float precision (or fail only through a
bug), and the book reports them apart from the trained results.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import Tensor

from stnlib.measures import alignment_error
from stnlib.toy.letters import HorizontalEdgeDetector, LetterDetector, bar_image, letter_image, rotated_w_image
from stnlib.toy.search import (AffineFit, RotationSearch, affine_search, one_thread, rotation_search,
                               rotation_swap_error, spatial_lower_bound)


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
    with one_thread():
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
    with one_thread():
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
