"""Searches for a spatial warp that aligns two feature maps, and the bound on what any warp can do.

:func:`rotation_search` tries rotations, :func:`affine_search` fits a full affine warp by gradient
descent from several starts, :func:`spatial_lower_bound` bounds the error of every purely spatial warp
from below, and :func:`rotation_swap_error` shows what a rotation plus a change of channels achieves.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from stnlib import transforms
from stnlib.measures import alignment_error
from stnlib.transforms import rotate_maps


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
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
        if float(a) % 90.0 == 0.0:
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
