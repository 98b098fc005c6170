"""Batched, on-device augmentation: the random rotations and translations of the MNIST tasks.

Both transform a whole batch at once on the batch's device (no per-sample PIL as in the authors'
data loaders), drawing every random number from an explicit :class:`torch.Generator`, so a batch
is a pure function of the generator's state. Rotations go through :mod:`stnlib.transforms`, the
geometry every other warp in stnlib uses.
"""

from __future__ import annotations

import torch

from stnlib.data.base import generator_device
from stnlib.transforms import rotation_theta, warp


def rotation_draws(n: int, generator: torch.Generator, max_deg: float = 90.0) -> torch.Tensor:
    """The ``n`` angles :func:`rotate_batch` draws from ``generator``: ``U(-max_deg, max_deg)`` in degrees.

    Separate from the warp so that several runs' batches (each from its own generator) can be drawn
    one run at a time and then rotated as one batch (:meth:`stnlib.data.MNISTTask.raw_batches`); the
    warp treats every image on its own, so the result is the same as rotating each run's batch alone.
    """
    if not max_deg >= 0:
        raise ValueError(f"max_deg must be >= 0, got {max_deg}")
    u = torch.rand(n, generator=generator, device=generator_device(generator))
    return (u * 2.0 - 1.0) * float(max_deg)


def rotate_batch(
    images: torch.Tensor,
    generator: torch.Generator | None,
    max_deg: float = 90.0,
    *,
    angle_deg: torch.Tensor | float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate every image of a batch by its own random angle about the image centre.

    The angles are drawn as ``U(-max_deg, max_deg)`` from ``generator`` (on the generator's
    device, then moved to the images' device, so a CPU generator gives the same angles for
    CPU and GPU data), unless ``angle_deg`` fixes them.

    **Convention.** ``images`` is ``N×C×H×W`` float (pixels in [0, 1] for MNIST); the output has
    the same shape (same canvas: corners that leave it are cropped, corners that enter it are
    filled with 0, as the authors' ``RandomRotation(90)`` with fill 0). Angles are in degrees,
    positive = counter-clockwise as displayed (row 0 at the top), so ``angle_deg=90`` equals
    ``torch.rot90(images, 1, dims=(-2, -1))``. The sampling ``theta`` maps output to input
    normalised coordinates (x right, y down) as :func:`torch.nn.functional.affine_grid`;
    bilinear interpolation, ``align_corners=False``, ``padding_mode="zeros"``. The authors'
    ``RandomRotation`` hands its angle to PIL, where positive is also counter-clockwise, so an
    applied angle means the same here as there; their PIL rotation rounded to uint8 after
    interpolating, this keeps float values. Multiples of 90° reproduce ``torch.rot90`` up to
    float32 grid arithmetic (about 3e-6).

    Returns:
        ``(rotated, angle_deg)`` with ``angle_deg`` a float32 tensor ``[N]`` on the images' device.
    """
    if images.dim() != 4 or not images.is_floating_point():
        raise ValueError(f"images must be a float N×C×H×W tensor, got {images.dtype} {tuple(images.shape)}")
    n = images.shape[0]
    if angle_deg is None:
        if generator is None:
            raise ValueError("rotate_batch needs a torch.Generator unless angle_deg is given")
        angles = rotation_draws(n, generator, max_deg)
    else:
        angles = torch.as_tensor(angle_deg, dtype=torch.float32).flatten()
        if angles.numel() == 1:
            angles = angles.expand(n)
        if angles.shape != (n,):
            raise ValueError(f"angle_deg must be a scalar or have shape [{n}], got {tuple(angles.shape)}")
    angles = angles.to(device=images.device, dtype=torch.float32)
    theta = rotation_theta(angles, dtype=images.dtype)
    return warp(images, theta, padding_mode="zeros"), angles


def _check_clutter_args(images: torch.Tensor, clutter_pool: torch.Tensor, *, canvas: int, max_shift: int,
                        n_patches: int, patch: int) -> None:
    """Refuse arguments :func:`translate_clutter_batch` cannot honour, naming the bad value and the valid range."""
    if images.dim() != 4 or not images.is_floating_point():
        raise ValueError(f"images must be a float N×C×H×W tensor, got {images.dtype} {tuple(images.shape)}")
    _, _, h, w = images.shape
    offset_y, offset_x = (canvas - h) // 2, (canvas - w) // 2
    if max_shift < 0 or max_shift > min(offset_x, offset_y, canvas - h - offset_y, canvas - w - offset_x):
        raise ValueError(
            f"max_shift={max_shift} does not keep a {h}×{w} digit inside a {canvas}×{canvas} canvas "
            f"(valid: 0..{min(offset_x, offset_y)})"
        )
    if n_patches < 0:
        raise ValueError(f"n_patches must be >= 0, got {n_patches}")
    if n_patches > 0:
        if clutter_pool.dim() != 3 or clutter_pool.shape[0] == 0:
            raise ValueError(f"clutter_pool must be a non-empty M×H×W tensor, got {tuple(clutter_pool.shape)}")
        if not 1 <= patch <= min(clutter_pool.shape[1], clutter_pool.shape[2], canvas - 1):
            raise ValueError(f"patch={patch} must be in 1..{min(clutter_pool.shape[1:])}")


def translate_clutter_batch(
    images: torch.Tensor,
    clutter_pool: torch.Tensor,
    generator: torch.Generator | None,
    *,
    canvas: int = 60,
    max_shift: int = 16,
    n_patches: int = 6,
    patch: int = 6,
    shift_px: torch.Tensor | None = None,
    draws: dict[str, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Place each digit on a larger canvas with a random integer shift, then add clutter.

    Steps, all batched and exact (integer indexing, no interpolation):

    1. the ``H×W`` digit is centred on a ``canvas×canvas`` zero canvas (offset
       ``(canvas - H) // 2``, 16 for 28 → 60) and shifted by integers ``dx, dy`` drawn
       uniformly from ``{-max_shift, ..., max_shift}`` (inclusive, 33 values for 16);
    2. clutter: for every image, ``n_patches`` crops of ``patch×patch`` pixels are cut at uniformly
       random positions out of uniformly random images of ``clutter_pool`` (the *training* set,
       also for test images) and added at uniformly random top-left positions in
       ``[0, canvas - patch - 1]²`` (``[0, 53]²`` for the defaults, as in the authors' code);
       overlapping crops add up;
    3. the sum is clamped to ``≤ 1``; clutter only ever adds.

    The authors' torchvision 0.4.1 ``RandomAffine`` drew ``round(U(-16, 16))``, which gives the
    two extreme shifts half the probability of the others; here all 33 are equally likely.

    Random numbers are drawn from ``generator`` in a fixed order (shifts, pool indices, crop
    positions, placements) on the generator's device (:func:`clutter_draws`); ``draws`` passes
    them in instead (several runs' draws concatenated, each from its own generator).

    **Convention.** ``images`` is ``N×C×H×W`` float with pixels in [0, 1]; ``clutter_pool`` is
    ``M×H'×W'`` uint8 (divided by 255) or float in [0, 1]. Shifts are in pixels, ``(dx, dy)``:
    content moves ``dx`` to the right and ``dy`` down. Pixels outside the digit are 0 before
    clutter; no resampling is involved, so ``align_corners`` and padding modes do not apply.

    Returns:
        ``(canvas_images [N,C,canvas,canvas], shift_px [N,2] int64 (dx, dy))`` on the images' device.
    """
    _check_clutter_args(images, clutter_pool, canvas=canvas, max_shift=max_shift, n_patches=n_patches, patch=patch)
    n, c, h, w = images.shape
    offset_y, offset_x = (canvas - h) // 2, (canvas - w) // 2
    device = images.device
    if draws is None and (shift_px is None or n_patches > 0):
        if generator is None:
            raise ValueError("translate_clutter_batch needs a torch.Generator unless shift_px is given "
                             "and n_patches is 0 (or draws are passed in)")
        draws = clutter_draws(n, generator, pool_size=clutter_pool.shape if n_patches > 0 else None,
                              canvas=canvas, max_shift=max_shift, n_patches=n_patches, patch=patch,
                              shifts=shift_px is None)

    if shift_px is None:
        shifts = draws["shift"]
    else:
        shifts = torch.as_tensor(shift_px).to(torch.int64)
        if shifts.shape != (n, 2) or shifts.abs().max() > max_shift:
            raise ValueError(f"shift_px must be integers of shape [{n}, 2] within ±{max_shift}")
    shifts = shifts.to(device=device, dtype=torch.int64)

    # 1. Digit: scatter every pixel to its shifted flat position (indices are unique per image).
    top = offset_y + shifts[:, 1]
    left = offset_x + shifts[:, 0]
    rows = top[:, None] + torch.arange(h, device=device)
    cols = left[:, None] + torch.arange(w, device=device)
    flat = (rows[:, :, None] * canvas + cols[:, None, :]).reshape(n, 1, h * w).expand(n, c, h * w)
    out = images.new_zeros(n, c, canvas * canvas)
    out.scatter_(2, flat, images.reshape(n, c, h * w))

    # 2. Clutter (step 2 above).
    if n_patches > 0:
        _add_clutter(out, clutter_pool, draws, canvas=canvas, n_patches=n_patches, patch=patch)
    return out.reshape(n, c, canvas, canvas), shifts


def _add_clutter(out: torch.Tensor, clutter_pool: torch.Tensor, draws: dict[str, torch.Tensor], *,
                 canvas: int, n_patches: int, patch: int) -> None:
    """Step 2 of :func:`translate_clutter_batch`, in place on the flat canvases ``out`` [N, C, canvas²]."""
    n, c = out.shape[:2]
    device = out.device
    # Gather patches from the pool, then add them one patch index at a time so that no scatter ever
    # sees a duplicate index (keeps GPU results bitwise deterministic).
    pick, crop_r, crop_c, put_r, put_c = (draws[k] for k in ("pick", "crop_r", "crop_c", "put_r", "put_c"))
    pool_device = clutter_pool.device
    steps = torch.arange(patch, device=pool_device)
    crops = clutter_pool[
        pick.to(pool_device)[:, :, None, None],
        crop_r.to(pool_device)[:, :, None, None] + steps[:, None],
        crop_c.to(pool_device)[:, :, None, None] + steps[None, :],
    ].to(device)
    crops = crops.to(out.dtype) / 255.0 if not crops.is_floating_point() else crops.to(out.dtype)
    steps = torch.arange(patch, device=device)
    put_r, put_c = put_r.to(device), put_c.to(device)
    crops = crops.reshape(n, n_patches, 1, patch * patch).expand(n, n_patches, c, patch * patch)
    for k in range(n_patches):
        where = (put_r[:, k, None, None] + steps[:, None]) * canvas + (put_c[:, k, None, None] + steps[None, :])
        where = where.reshape(n, 1, patch * patch).expand(n, c, patch * patch)
        out.scatter_(2, where, out.gather(2, where) + crops[:, k])
    # One clamp at the end equals the authors' clamp after every patch: all additions are >= 0.
    out.clamp_(max=1.0)


def clutter_draws(
    n: int,
    generator: torch.Generator,
    *,
    pool_size: tuple[int, int, int] | torch.Size | None,
    canvas: int = 60,
    max_shift: int = 16,
    n_patches: int = 6,
    patch: int = 6,
    shifts: bool = True,
) -> dict[str, torch.Tensor]:
    """The random numbers :func:`translate_clutter_batch` draws for ``n`` images, in its fixed order.

    Keys: ``shift`` (``[n, 2]``, when ``shifts``), and with ``n_patches > 0`` ``pick``, ``crop_r``,
    ``crop_c``, ``put_r``, ``put_c`` (``[n, n_patches]`` each; ``pool_size`` is the clutter pool's
    ``(M, H, W)``). All on the generator's device. Every image's draws only affect that image, so
    several runs' draws concatenated along the first axis and passed as ``draws`` give each run the
    batch it would get alone.
    """
    gen_device = generator_device(generator)
    out: dict[str, torch.Tensor] = {}
    if shifts:
        out["shift"] = torch.randint(-max_shift, max_shift + 1, (n, 2), generator=generator, device=gen_device)
    if n_patches > 0:
        m, ph, pw = pool_size
        size = (n, n_patches)
        out["pick"] = torch.randint(0, m, size, generator=generator, device=gen_device)
        out["crop_r"] = torch.randint(0, ph - patch + 1, size, generator=generator, device=gen_device)
        out["crop_c"] = torch.randint(0, pw - patch + 1, size, generator=generator, device=gen_device)
        # Top-left corners in [0, canvas - patch - 1] (the authors' randint(0, 60 - 6) excludes 54),
        # so the last row and column of the canvas never receive clutter.
        out["put_r"] = torch.randint(0, canvas - patch, size, generator=generator, device=gen_device)
        out["put_c"] = torch.randint(0, canvas - patch, size, generator=generator, device=gen_device)
    return out
