"""Affine ``theta`` matrices: building them, warping with them, reading them back.

Every function here shares one geometry, written out once in this docstring and repeated as a
**Convention** block in each function:

* Tensors are ``N×C×H×W``.
* Coordinates are normalised to ``[-1, 1]`` with ``align_corners=False`` (the corners of the outer
  pixels are at ±1, pixel centres at ``(2j + 1) / W - 1``); ``x`` points right (column index grows),
  ``y`` points DOWN (row index grows).
* ``theta`` (``N×2×3``) maps OUTPUT normalised coordinates to INPUT sampling coordinates, exactly as
  :func:`torch.nn.functional.affine_grid`: ``out(p) = in(theta @ [p; 1])``.
* Angles are in degrees; a positive angle turns the CONTENT counter-clockwise as displayed (row 0 at the
  top), so ``rotate(x, 90)`` equals ``torch.rot90(x, 1, dims=(-2, -1))``.
* Shifts are in pixels ``(dx, dy)``: the content moves ``dx`` to the right and ``dy`` down.
* Read-outs (``theta_rotation_deg`` etc.) describe what a ``theta`` does to the content.

Because ``x`` is scaled by ``2/W`` and ``y`` by ``2/H``, a rotation in normalised coordinates is a true
(angle-preserving) rotation in pixels only for square images; :func:`rotate` refuses non-square ones.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "PADDING_MODES",
    "SAMPLING_MODES",
    "rotation_theta",
    "translation_theta",
    "scale_theta",
    "identity_theta",
    "compose_theta",
    "invert_theta",
    "warp",
    "rotate",
    "rotate_maps",
    "translate",
    "shift_exact",
    "theta_rotation_deg",
    "theta_translation_px",
    "theta_log2_scale",
]

PADDING_MODES: tuple[str, ...] = ("zeros", "border", "reflection")
SAMPLING_MODES: tuple[str, ...] = ("bilinear", "nearest", "bicubic")

AngleLike = Tensor | float | int
ShiftLike = Tensor | Sequence[float]


# --------------------------------------------------------------------------- validation helpers


def _check_padding(padding_mode: str) -> None:
    if padding_mode not in PADDING_MODES:
        raise ValueError(
            f"unknown padding_mode {padding_mode!r}; valid choices: {', '.join(PADDING_MODES)}"
        )


def _check_theta(theta: Tensor) -> None:
    if not isinstance(theta, Tensor):
        raise ValueError(f"theta must be a torch.Tensor of shape [N, 2, 3], got {type(theta).__name__}")
    if theta.dim() != 3 or tuple(theta.shape[1:]) != (2, 3):
        raise ValueError(f"theta must have shape [N, 2, 3], got {list(theta.shape)}")


def _check_image(x: Tensor, name: str = "x") -> None:
    if not isinstance(x, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape [N, C, H, W], got {type(x).__name__}")
    if x.dim() != 4:
        raise ValueError(f"{name} must be 4-D [N, C, H, W], got shape {list(x.shape)}")


def _float_dtype(dtype: torch.dtype) -> torch.dtype:
    """float64 stays float64; everything else (float16, bfloat16, ints) computes in float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _batch_vector(value: AngleLike, batch: int | None, device: torch.device | str | None, name: str) -> Tensor:
    """Turn a scalar or a 1-D tensor into a vector of length ``batch``."""
    if isinstance(value, Tensor):
        vec = value.to(device=device) if device is not None else value
        if vec.dim() == 0:
            vec = vec.reshape(1)
        if vec.dim() != 1:
            raise ValueError(f"{name} must be a scalar or a 1-D tensor [N], got shape {list(vec.shape)}")
    else:
        vec = torch.tensor([float(value)], device=device)
    if batch is not None:
        if vec.shape[0] == 1:
            vec = vec.expand(batch)
        elif vec.shape[0] != batch:
            raise ValueError(f"{name} has {vec.shape[0]} entries but batch={batch}")
    return vec


def _out_dtype(value: AngleLike, dtype: torch.dtype | None) -> torch.dtype:
    if dtype is not None:
        return dtype
    if isinstance(value, Tensor) and value.is_floating_point():
        return value.dtype
    return torch.get_default_dtype()


def _no_autocast(device: torch.device):
    """Context that switches autocast off on ``device`` (a no-op where autocast does not exist)."""
    if torch.amp.is_autocast_available(device.type):
        return torch.autocast(device_type=device.type, enabled=False)
    return contextlib.nullcontext()


def _to3x3(theta: Tensor) -> Tensor:
    last = torch.zeros(theta.shape[0], 1, 3, dtype=theta.dtype, device=theta.device)
    last[:, 0, 2] = 1
    return torch.cat([theta, last], dim=1)


# --------------------------------------------------------------------------- builders


def rotation_theta(
    angle_deg: AngleLike,
    *,
    batch: int | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """``theta`` that rotates the content counter-clockwise (as displayed) by ``angle_deg`` about the centre.

    Args:
        angle_deg: a number (one angle for the whole batch) or a tensor ``[N]`` of angles in degrees.
        batch: batch size to broadcast a single angle to (default: the number of angles).
        dtype, device: of the result (default: the angle tensor's floating dtype, else the default dtype).

    Returns:
        ``[N, 2, 3]`` tensor ``[[cos a, -sin a, 0], [sin a, cos a, 0]]``.

    Convention:
        ``theta`` maps OUTPUT normalised coordinates (``[-1, 1]``, ``align_corners=False``, x right, y down)
        to INPUT sampling coordinates, as ``F.affine_grid``. Angles in degrees, positive = content turns
        counter-clockwise as displayed with row 0 at the top; hence ``warp(x, rotation_theta(90))`` equals
        ``torch.rot90(x, 1, dims=(-2, -1))``. With y pointing down, the content map ``theta⁻¹`` sends the
        right-pointing axis ``(1, 0)`` to ``(0, -1)``, i.e. up: counter-clockwise on screen. A true rotation
        in pixels only for square images (normalised x and y have different pixel scales otherwise).
    """
    out_dtype = _out_dtype(angle_deg, dtype)
    angle = _batch_vector(angle_deg, batch, device, "angle_deg")
    # Trigonometry in float64 (MPS has none) so that 90° steps give cos = 6e-17, not float32's -4e-8,
    # and values that small snapped to 0: quarter turns are then exactly torch.rot90.
    work = torch.float32 if angle.device.type == "mps" else torch.float64
    rad = torch.deg2rad(angle.to(work))
    cos, sin = torch.cos(rad), torch.sin(rad)
    cos = torch.where(cos.abs() < 1e-12, torch.zeros_like(cos), cos)
    sin = torch.where(sin.abs() < 1e-12, torch.zeros_like(sin), sin)
    zero = torch.zeros_like(cos)
    theta = torch.stack([torch.stack([cos, -sin, zero], -1), torch.stack([sin, cos, zero], -1)], -2)
    return theta.to(out_dtype)


def translation_theta(
    shift_px: ShiftLike,
    size: tuple[int, int],
    *,
    batch: int | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """``theta`` that moves the content by ``shift_px = (dx, dy)`` pixels (right, down).

    Args:
        shift_px: tensor ``[N, 2]`` (or ``[2]``, or a pair of numbers) of ``(dx, dy)`` in pixels.
        size: ``(H, W)`` of the image being warped (the input of the warp).
        batch: batch size to broadcast a single shift to.

    Returns:
        ``[N, 2, 3]`` tensor ``[[1, 0, -2 dx / W], [0, 1, -2 dy / H]]``.

    Convention:
        ``theta`` maps OUTPUT normalised coordinates (``[-1, 1]``, ``align_corners=False``, x right, y down)
        to INPUT sampling coordinates, as ``F.affine_grid``: output pixel ``(i, j)`` samples input pixel
        ``(i - dy, j - dx)``, so integer shifts equal an exact integer roll with the uncovered strip filled
        by the padding. One pixel is ``2 / W`` (x) or ``2 / H`` (y) normalised units.
    """
    h, w = _check_size(size, "size")
    if isinstance(shift_px, Tensor):
        shift = shift_px if device is None else shift_px.to(device)
        out_dtype = dtype or (shift.dtype if shift.is_floating_point() else torch.get_default_dtype())
    else:
        shift = torch.tensor([list(shift_px)], dtype=torch.float64, device=device)
        out_dtype = dtype or torch.get_default_dtype()
    if shift.dim() == 1:
        shift = shift.unsqueeze(0)
    if shift.dim() != 2 or shift.shape[1] != 2:
        raise ValueError(f"shift_px must have shape [N, 2] holding (dx, dy), got {list(shift.shape)}")
    if batch is not None:
        if shift.shape[0] == 1:
            shift = shift.expand(batch, 2)
        elif shift.shape[0] != batch:
            raise ValueError(f"shift_px has {shift.shape[0]} rows but batch={batch}")
    shift = shift.to(torch.float64)
    n = shift.shape[0]
    theta = torch.zeros(n, 2, 3, dtype=torch.float64, device=shift.device)
    theta[:, 0, 0] = 1
    theta[:, 1, 1] = 1
    theta[:, 0, 2] = -2 * shift[:, 0] / w
    theta[:, 1, 2] = -2 * shift[:, 1] / h
    return theta.to(out_dtype)


def scale_theta(
    scale: AngleLike,
    *,
    batch: int | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """``theta`` that magnifies the content by ``scale`` about the centre (``scale > 1`` = bigger).

    Returns:
        ``[N, 2, 3]`` tensor ``[[1/s, 0, 0], [0, 1/s, 0]]``.

    Convention:
        ``theta`` maps OUTPUT normalised coordinates (``[-1, 1]``, ``align_corners=False``, x right, y down)
        to INPUT sampling coordinates, as ``F.affine_grid``; magnifying the content therefore samples a
        smaller input region, hence ``1/s``. Padding fills what comes into view when ``s < 1``.
    """
    out_dtype = _out_dtype(scale, dtype)
    s = _batch_vector(scale, batch, device, "scale").to(torch.float64)
    if bool((s <= 0).any()):
        raise ValueError(f"scale must be positive, got {s.tolist()}")
    inv = 1.0 / s
    zero = torch.zeros_like(inv)
    theta = torch.stack([torch.stack([inv, zero, zero], -1), torch.stack([zero, inv, zero], -1)], -2)
    return theta.to(out_dtype)


def identity_theta(
    batch: int = 1, *, dtype: torch.dtype | None = None, device: torch.device | str | None = None
) -> Tensor:
    """``[batch, 2, 3]`` identity ``theta`` ``[[1, 0, 0], [0, 1, 0]]``.

    Convention:
        ``theta`` maps OUTPUT normalised coordinates (``[-1, 1]``, ``align_corners=False``) to INPUT
        sampling coordinates, as ``F.affine_grid``; the identity samples every output pixel at its own
        position (an exact copy when input and output sizes match).
    """
    eye = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=dtype, device=device)
    return eye.expand(batch, 2, 3).clone()


def compose_theta(first: Tensor, second: Tensor) -> Tensor:
    """One ``theta`` for "warp with ``first``, then warp the result with ``second``".

    ``warp(warp(x, first), second) == warp(x, compose_theta(first, second))`` up to interpolation and
    padding effects (exact for 90° rotations and integer shifts that stay inside the image).

    Returns:
        ``first ∘ second`` as 3×3 matrices, i.e. ``[first; 0 0 1] @ [second; 0 0 1]`` cut back to ``[N, 2, 3]``.
        This is the iterative-STN rule θ_tot = θ₁·θ₂ (multiplied on the right).

    Convention:
        Both ``theta`` map OUTPUT normalised coordinates (``[-1, 1]``, ``align_corners=False``, x right,
        y down) to INPUT sampling coordinates, as ``F.affine_grid``. Since the second warp samples the
        first warp's output at ``second @ p``, which itself samples ``x`` at ``first @ (second @ p)``, the
        product is ``first @ second``. A batch of 1 broadcasts against a batch of N; dtypes are promoted.
    """
    _check_theta(first)
    _check_theta(second)
    if first.shape[0] != second.shape[0] and 1 not in (first.shape[0], second.shape[0]):
        raise ValueError(f"batch sizes differ: first has {first.shape[0]}, second has {second.shape[0]}")
    dtype = torch.promote_types(first.dtype, second.dtype)
    return (_to3x3(first.to(dtype)) @ _to3x3(second.to(dtype)))[:, :2, :]


def invert_theta(theta: Tensor) -> Tensor:
    """Inverse affine map: ``compose_theta(theta, invert_theta(theta))`` is the identity.

    Convention:
        ``theta`` maps OUTPUT normalised coordinates (``[-1, 1]``, ``align_corners=False``, x right, y down)
        to INPUT sampling coordinates, as ``F.affine_grid``; the inverse maps input to output, i.e. it is the
        ``theta`` of the opposite transformation of the content (a rotation by ``-a``, a shift by ``-d``).
        Raises for a singular ``theta`` (the inverse does not exist).
    """
    _check_theta(theta)
    a = theta[:, :, :2]
    t = theta[:, :, 2:]
    det = a[:, 0, 0] * a[:, 1, 1] - a[:, 0, 1] * a[:, 1, 0]
    if bool((det == 0).any()):
        raise ValueError("theta is singular (determinant 0); it has no inverse")
    a_inv = torch.linalg.inv(a)
    return torch.cat([a_inv, -a_inv @ t], dim=2)


# --------------------------------------------------------------------------- warping


def _check_size(size: tuple[int, int] | Sequence[int], name: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (H, W) of positive integers, got {size!r}") from None
    if h <= 0 or w <= 0:
        raise ValueError(f"{name} must be a pair (H, W) of positive integers, got {size!r}")
    return h, w


def warp(
    x: Tensor,
    theta: Tensor,
    *,
    out_size: tuple[int, int] | None = None,
    padding_mode: str = "zeros",
    mode: str = "bilinear",
) -> Tensor:
    """Resample ``x`` with the affine map ``theta`` (``F.affine_grid`` + ``F.grid_sample``).

    Args:
        x: ``[N, C, H, W]`` images or feature maps (any float dtype, any memory format).
        theta: ``[N, 2, 3]`` (or ``[1, 2, 3]``, broadcast over the batch).
        out_size: ``(H_out, W_out)`` of the result; default ``(H, W)``. A smaller output with the identity
            ``theta`` is a down-sampled view of the whole input (the half-size ST of translated MNIST).
        padding_mode: one of :data:`PADDING_MODES`, what is sampled outside the input.
        mode: one of :data:`SAMPLING_MODES`.

    Returns:
        ``[N, C, H_out, W_out]`` in ``x``'s dtype.

    Convention:
        ``N×C×H×W``; ``theta`` maps OUTPUT normalised coordinates (``[-1, 1]``, ``align_corners=False``
        passed explicitly, x right, y down) to INPUT sampling coordinates: ``out(p) = x(theta @ [p; 1])``.
        Normalised coordinates are relative to each tensor's own size, so the same ``theta`` means the same
        geometry at every resolution. ``padding_mode`` fills samples that fall outside ``[-1, 1]``.
    """
    _check_image(x)
    _check_theta(theta)
    _check_padding(padding_mode)
    if mode not in SAMPLING_MODES:
        raise ValueError(f"unknown sampling mode {mode!r}; valid choices: {', '.join(SAMPLING_MODES)}")
    n, c, h, w = x.shape
    if theta.shape[0] != n:
        if theta.shape[0] != 1:
            raise ValueError(f"theta has batch {theta.shape[0]} but x has batch {n}")
        theta = theta.expand(n, 2, 3)
    h_out, w_out = (h, w) if out_size is None else _check_size(out_size, "out_size")
    compute = _float_dtype(x.dtype)
    # The grid and the sampling run in float32 even under autocast: CPU autocast would run affine_grid's
    # bmm in bfloat16 (about 3 significant digits, i.e. ~0.1 px error on a 60 px image), and CUDA autocast
    # already promotes grid_sample to float32, so doing it explicitly costs nothing there and keeps
    # read-outs and gradients of theta precise everywhere. The result goes back to x's dtype.
    with _no_autocast(x.device):
        grid = F.affine_grid(theta.to(compute), [n, c, h_out, w_out], align_corners=False)
        out = F.grid_sample(x.to(compute), grid, mode=mode, padding_mode=padding_mode, align_corners=False)
    return out.to(x.dtype)


def rotate(x: Tensor, angle_deg: AngleLike, *, padding_mode: str = "zeros") -> Tensor:
    """Rotate the content of square images counter-clockwise (as displayed) by ``angle_deg`` about the centre.

    Args:
        x: ``[N, C, S, S]`` square images.
        angle_deg: one angle for the batch, or a tensor ``[N]``, in degrees.
        padding_mode: one of :data:`PADDING_MODES` (data augmentation uses ``"zeros"``).

    Convention:
        ``N×C×H×W`` with ``H == W``; normalised coordinates (``[-1, 1]``, ``align_corners=False``, x right,
        y down); ``theta = rotation_theta(angle_deg)`` maps output to input coordinates. Degrees, positive =
        counter-clockwise as displayed: ``rotate(x, 90) == torch.rot90(x, 1, dims=(-2, -1))`` to float
        precision, for even and odd sizes (the centre of rotation is the image centre, a pixel centre for odd
        sizes and a pixel corner for even ones). Bilinear sampling; ``padding_mode`` fills the corners.
        Non-square images raise: normalised coordinates scale x by ``2/W`` and y by ``2/H``, so there a
        normalised-coordinate rotation would also shear/stretch the content.
    """
    _check_image(x)
    _check_padding(padding_mode)
    h, w = x.shape[-2:]
    if h != w:
        raise ValueError(
            f"rotate() needs square images (H == W), got H={h}, W={w}: in normalised coordinates a rotation "
            "of a non-square image is not a rotation in pixels; pad or crop to a square first"
        )
    compute = _float_dtype(x.dtype)
    theta = rotation_theta(angle_deg, batch=x.shape[0], dtype=compute, device=x.device)
    return warp(x, theta, padding_mode=padding_mode)


def translate(x: Tensor, shift_px: ShiftLike, *, padding_mode: str = "zeros") -> Tensor:
    """Move the content of ``x`` by ``shift_px = (dx, dy)`` pixels (right, down).

    Args:
        x: ``[N, C, H, W]``.
        shift_px: ``[N, 2]`` tensor, a ``[2]`` tensor or a pair of numbers, in pixels.
        padding_mode: one of :data:`PADDING_MODES`, fills the strip the content leaves behind.

    Convention:
        ``N×C×H×W``; normalised coordinates (``[-1, 1]``, ``align_corners=False``, x right, y down);
        ``theta = translation_theta(shift_px, (H, W))`` maps output to input coordinates. Integer shifts give
        ``out[..., i, j] = x[..., i - dy, j - dx]`` to float precision (an integer roll without wrap-around,
        the uncovered strip filled by ``padding_mode``); fractional shifts interpolate bilinearly.
    """
    _check_image(x)
    _check_padding(padding_mode)
    compute = _float_dtype(x.dtype)
    theta = translation_theta(shift_px, tuple(x.shape[-2:]), batch=x.shape[0], dtype=compute, device=x.device)
    return warp(x, theta, padding_mode=padding_mode)


def rotate_maps(x: Tensor, angle_deg: float, *, padding_mode: str = "zeros") -> Tensor:
    """Rotate images or feature maps by one angle, exactly (``torch.rot90``) for multiples of 90°.

    Every channel is rotated in the same way (a purely spatial transformation).

    Convention:
        ``N×C×S×S`` square maps; degrees, positive = counter-clockwise as displayed, about the centre;
        other angles use :func:`rotate` (bilinear, ``align_corners=False``, ``padding_mode`` fills the
        corners).
    """
    if float(angle_deg) % 90.0 == 0.0:
        return torch.rot90(x, int(round(float(angle_deg) / 90.0)) % 4, dims=(-2, -1))
    return rotate(x, float(angle_deg), padding_mode=padding_mode)


def shift_exact(x: Tensor, dx: int, dy: int) -> Tensor:
    """Move the content of ``x`` by integer ``(dx, dy)`` pixels (right, down), filling with zeros. Exact.

    Equals ``translate(x, (dx, dy))`` for integer shifts, without any interpolation arithmetic.

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


# --------------------------------------------------------------------------- read-outs


def theta_rotation_deg(theta: Tensor) -> Tensor:
    """Counter-clockwise rotation (degrees, in ``(-180, 180]``) that ``theta`` applies to the content.

    Reads the rotation of the similarity transform closest (Frobenius norm) to the 2×2 part
    ``A = [[a, b], [c, d]]``: ``atan2(c - b, a + d)``, i.e. the antisymmetric part against the trace.
    Scaling and translation do not change the reading; a shear changes it only through the rotation it
    contains. ``theta_rotation_deg(rotation_theta(a)) == a``; an ST that undoes an applied rotation ``a``
    (``theta = rotation_theta(-a)``) reads ``-a``.

    Convention:
        ``theta`` (``[N, 2, 3]``) maps OUTPUT normalised coordinates (``[-1, 1]``, ``align_corners=False``,
        x right, y down) to INPUT sampling coordinates, as ``F.affine_grid``. Degrees, positive = the
        content turns counter-clockwise as displayed (the same sign as :func:`rotation_theta`). Meaningful
        as a pixel rotation for square inputs.
    """
    _check_theta(theta)
    a = theta[:, :, :2].to(_float_dtype(theta.dtype))
    anti = a[:, 1, 0] - a[:, 0, 1]
    trace = a[:, 0, 0] + a[:, 1, 1]
    return torch.rad2deg(torch.atan2(anti, trace))


def theta_translation_px(theta: Tensor, size: tuple[int, int]) -> Tensor:
    """Content shift ``(dx, dy)`` in input pixels (right, down) that ``theta`` applies: ``-t · (W, H) / 2``.

    ``t = theta[:, :, 2]`` is the input point sampled at the output centre; the content found there ends up
    at the centre, i.e. it moves by ``-t``. This ignores the 2×2 part, so a rotation or zoom about the
    centre reads as no shift. ``theta_translation_px(translation_theta(d, size), size) == d``.

    Args:
        theta: ``[N, 2, 3]``.
        size: ``(H, W)`` of the warp's INPUT; shifts are counted in its pixels.

    Returns:
        ``[N, 2]`` tensor of ``(dx, dy)``.

    Convention:
        ``theta`` maps OUTPUT normalised coordinates (``[-1, 1]``, ``align_corners=False``, x right, y down)
        to INPUT sampling coordinates, as ``F.affine_grid``; one input pixel is ``2 / W`` (x) or ``2 / H``
        (y) normalised units; dx > 0 = content moves right, dy > 0 = content moves down.
    """
    _check_theta(theta)
    h, w = _check_size(size, "size")
    t = theta[:, :, 2].to(_float_dtype(theta.dtype))
    scale = torch.tensor([w / 2.0, h / 2.0], dtype=t.dtype, device=t.device)
    return -t * scale


def theta_log2_scale(theta: Tensor) -> Tensor:
    """log2 of the content magnification ``theta`` applies: ``-½ log2 |det A|`` for the 2×2 part ``A``.

    The magnification is the geometric mean of the two axis scales (area scale per axis), so a rotation
    or a shear with determinant 1 reads 0. ``theta_log2_scale(scale_theta(s)) == log2(s)``.

    Convention:
        ``theta`` (``[N, 2, 3]``) maps OUTPUT normalised coordinates (``[-1, 1]``, ``align_corners=False``,
        x right, y down) to INPUT sampling coordinates, as ``F.affine_grid``; ``theta = diag(1/s)`` shows the
        content ``s`` times larger, so positive values mean magnified content.
    """
    _check_theta(theta)
    a = theta[:, :, :2].to(_float_dtype(theta.dtype))
    det = a[:, 0, 0] * a[:, 1, 1] - a[:, 0, 1] * a[:, 1, 0]
    return -0.5 * torch.log2(det.abs())

