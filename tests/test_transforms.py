"""Geometry of stnlib.transforms: exact cases first (90° steps, integer shifts), then stated tolerances.

Float32 tolerances: grid_sample un-normalises ``((x + 1) W - 1) / 2`` in float32, which puts sampling points
up to ~W·2⁻²⁴ px off the pixel centres, so an "exact" float32 warp agrees with the reference to about 1e-7·W
for values in [0, 1]. Float64 cases check the same identities to 1e-12.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from stnlib.transforms import (
    PADDING_MODES,
    compose_theta,
    identity_theta,
    invert_theta,
    rotate,
    rotation_theta,
    scale_theta,
    theta_log2_scale,
    theta_rotation_deg,
    theta_translation_px,
    translate,
    translation_theta,
    warp,
)

QUARTER_TURNS = [(90, 1), (180, 2), (270, 3), (-90, -1), (0, 0), (360, 0)]


def f32_tol(size: int) -> float:
    return 2e-7 * size


def blob_centre(img: torch.Tensor) -> torch.Tensor:
    """Centre of mass (x right, y down) in pixels relative to the image centre."""
    h, w = img.shape[-2:]
    ys = torch.arange(h, dtype=img.dtype) - (h - 1) / 2
    xs = torch.arange(w, dtype=img.dtype) - (w - 1) / 2
    mass = img.sum()
    return torch.stack([(img.sum(-2) * xs).sum() / mass, (img.sum(-1) * ys).sum() / mass])


def gaussian_blob(size: int, cx: float, cy: float, sigma: float = 1.5) -> torch.Tensor:
    c = (size - 1) / 2
    ys = torch.arange(size, dtype=torch.float64).view(-1, 1) - c
    xs = torch.arange(size, dtype=torch.float64).view(1, -1) - c
    return torch.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma**2)).view(1, 1, size, size)


# --------------------------------------------------------------------------- rotation


@pytest.mark.parametrize("size", [28, 27])
@pytest.mark.parametrize("angle,k", QUARTER_TURNS)
def test_rotate_quarter_turns_equal_rot90(size, angle, k):
    g = torch.Generator().manual_seed(size + angle)
    x = torch.rand(3, 2, size, size, generator=g)
    expected = torch.rot90(x, k, dims=(-2, -1))
    for padding in PADDING_MODES:
        torch.testing.assert_close(rotate(x, angle, padding_mode=padding), expected, atol=f32_tol(size), rtol=0)
    x64 = x.double()
    torch.testing.assert_close(rotate(x64, angle), torch.rot90(x64, k, dims=(-2, -1)), atol=1e-12, rtol=0)


def test_rotate_per_sample_angles():
    x = torch.rand(3, 1, 28, 28)
    out = rotate(x, torch.tensor([90.0, 180.0, -90.0]))
    for i, k in enumerate((1, 2, -1)):
        torch.testing.assert_close(out[i], torch.rot90(x[i], k, dims=(-2, -1)), atol=f32_tol(28), rtol=0)


@pytest.mark.parametrize("angle", [30.0, -50.0, 135.0])
def test_rotate_arbitrary_angle_moves_blob_counter_clockwise(angle):
    # A blob 8 px right of centre; CCW as displayed (y down) takes (r, 0) to (r cos a, -r sin a).
    x = gaussian_blob(41, 8.0, 0.0)
    centre = blob_centre(rotate(x, angle)[0, 0])
    a = math.radians(angle)
    expected = torch.tensor([8 * math.cos(a), -8 * math.sin(a)], dtype=torch.float64)
    torch.testing.assert_close(centre, expected, atol=0.05, rtol=0)


def test_rotation_theta_shapes_and_dtypes():
    assert rotation_theta(30.0).shape == (1, 2, 3)
    assert rotation_theta(30.0, batch=4).shape == (4, 2, 3)
    assert rotation_theta(torch.tensor([1.0, 2.0])).shape == (2, 2, 3)
    assert rotation_theta(torch.tensor([1.0], dtype=torch.float64)).dtype == torch.float64
    assert rotation_theta(10, dtype=torch.float16).dtype == torch.float16
    torch.testing.assert_close(rotation_theta(90.0)[0], torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0]]))


def test_rotate_rejects_non_square():
    with pytest.raises(ValueError, match="square"):
        rotate(torch.zeros(1, 1, 28, 30), 90)


# --------------------------------------------------------------------------- translation


@pytest.mark.parametrize("dx,dy", [(3, 0), (0, -2), (-5, 4), (7, 7), (0, 0)])
def test_translate_integer_shift_is_roll_with_zero_fill(dx, dy):
    h, w = 20, 24  # non-square on purpose: shifts are per-axis
    x = torch.rand(2, 3, h, w)
    expected = torch.zeros_like(x)
    src_y = slice(max(0, -dy), h - max(0, dy))
    dst_y = slice(max(0, dy), h - max(0, -dy))
    src_x = slice(max(0, -dx), w - max(0, dx))
    dst_x = slice(max(0, dx), w - max(0, -dx))
    expected[..., dst_y, dst_x] = x[..., src_y, src_x]
    torch.testing.assert_close(translate(x, (dx, dy)), expected, atol=f32_tol(w), rtol=0)
    torch.testing.assert_close(
        translate(x.double(), torch.tensor([[dx, dy], [dx, dy]])), expected.double(), atol=1e-12, rtol=0
    )


def test_translate_border_padding_replicates_edge():
    x = torch.rand(1, 1, 10, 10)
    out = translate(x, (2, 0), padding_mode="border")
    torch.testing.assert_close(out[..., :, 2:], x[..., :, :8], atol=f32_tol(10), rtol=0)
    torch.testing.assert_close(out[..., :, 0], x[..., :, 0], atol=f32_tol(10), rtol=0)
    torch.testing.assert_close(out[..., :, 1], x[..., :, 0], atol=f32_tol(10), rtol=0)


def test_translate_per_sample_shifts():
    x = torch.rand(2, 1, 16, 16)
    out = translate(x, torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    torch.testing.assert_close(out[0, :, :, 1:], x[0, :, :, :-1], atol=f32_tol(16), rtol=0)
    torch.testing.assert_close(out[1, :, 1:, :], x[1, :, :-1, :], atol=f32_tol(16), rtol=0)


# --------------------------------------------------------------------------- scale and warp sizes


def test_scale_theta_magnifies_content():
    x = gaussian_blob(41, 5.0, -3.0)
    centre = blob_centre(warp(x, scale_theta(2.0, dtype=torch.float64))[0, 0])
    torch.testing.assert_close(centre, torch.tensor([10.0, -6.0], dtype=torch.float64), atol=0.05, rtol=0)
    with pytest.raises(ValueError, match="positive"):
        scale_theta(0.0)


def test_identity_warp_half_size_is_2x2_average():
    # Output centres of a 30-px grid fall exactly between input pixel centres 2j and 2j+1 (align_corners=False).
    x = torch.rand(2, 1, 60, 60, dtype=torch.float64)
    out = warp(x, identity_theta(2, dtype=torch.float64), out_size=(30, 30), padding_mode="border")
    torch.testing.assert_close(out, F.avg_pool2d(x, 2), atol=1e-12, rtol=0)


@pytest.mark.parametrize("padding", PADDING_MODES)
def test_identity_warp(padding):
    x = torch.rand(2, 3, 27, 27)
    torch.testing.assert_close(warp(x, identity_theta(1), padding_mode=padding), x, atol=f32_tol(27), rtol=0)


# --------------------------------------------------------------------------- compose / invert


def test_compose_of_rotations_is_rotation_of_sum():
    a = torch.tensor([10.0, -70.0, 135.0, 170.0], dtype=torch.float64)
    b = torch.tensor([25.0, 30.0, 100.0, -20.0], dtype=torch.float64)
    torch.testing.assert_close(compose_theta(rotation_theta(a), rotation_theta(b)), rotation_theta(a + b))


def test_compose_matches_sequential_warps():
    # Content kept away from the border so padding plays no role; 90° turns and integer shifts are exact.
    x = torch.zeros(1, 2, 24, 24, dtype=torch.float64)
    x[..., 6:18, 6:18] = torch.rand(1, 2, 12, 12, dtype=torch.float64)
    first = compose_theta(rotation_theta(90.0, dtype=torch.float64), translation_theta((2, -1), (24, 24)))
    second = translation_theta((-3, 2), (24, 24), dtype=torch.float64)
    sequential = warp(warp(x, first), second)
    torch.testing.assert_close(warp(x, compose_theta(first, second)), sequential, atol=1e-12, rtol=0)
    # and the order matters: the other order is a different warp
    assert not torch.allclose(warp(x, compose_theta(second, first)), sequential)


def test_invert_theta_gives_identity():
    g = torch.Generator().manual_seed(0)
    theta = torch.eye(2, 3, dtype=torch.float64).expand(5, 2, 3) + 0.3 * torch.randn(
        5, 2, 3, generator=g, dtype=torch.float64
    )
    eye = identity_theta(5, dtype=torch.float64)
    torch.testing.assert_close(compose_theta(theta, invert_theta(theta)), eye)
    torch.testing.assert_close(compose_theta(invert_theta(theta), theta), eye)
    torch.testing.assert_close(invert_theta(rotation_theta(40.0)), rotation_theta(-40.0))
    with pytest.raises(ValueError, match="singular"):
        invert_theta(torch.zeros(1, 2, 3))


# --------------------------------------------------------------------------- read-outs


def test_rotation_readout_round_trip_and_sign():
    angles = torch.linspace(-179, 179, 73, dtype=torch.float64)
    torch.testing.assert_close(theta_rotation_deg(rotation_theta(angles)), angles)
    # An ST that undoes an applied rotation a is rotation_theta(-a) and reads -a (paper's slope -1).
    torch.testing.assert_close(theta_rotation_deg(rotation_theta(-angles)), -angles)
    x = torch.rand(1, 1, 28, 28)
    undone = warp(rotate(x, 90), rotation_theta(-90.0))
    torch.testing.assert_close(undone, x, atol=2 * f32_tol(28), rtol=0)


def test_rotation_readout_robust_to_scale_translation_and_float32():
    angles = torch.linspace(-179, 179, 37)
    n = angles.numel()
    theta = compose_theta(rotation_theta(angles), scale_theta(1.3, batch=n))
    torch.testing.assert_close(theta_rotation_deg(theta), angles, atol=1e-4, rtol=0)
    theta = compose_theta(scale_theta(0.6, batch=n), rotation_theta(angles))
    theta = compose_theta(theta, translation_theta((3.0, -2.0), (28, 28), batch=n))
    torch.testing.assert_close(theta_rotation_deg(theta), angles, atol=1e-4, rtol=0)


def test_rotation_readout_small_shear_is_close():
    shear = torch.tensor([[[1.0, 0.05, 0.0], [0.0, 1.0, 0.0]]], dtype=torch.float64)
    theta = compose_theta(rotation_theta(30.0, dtype=torch.float64), shear)
    assert abs(theta_rotation_deg(theta).item() - 30.0) < 2.0


def test_translation_readout_round_trip():
    shift = torch.tensor([[3.0, -2.0], [-7.5, 11.0], [0.0, 0.0]], dtype=torch.float64)
    size = (40, 60)
    torch.testing.assert_close(theta_translation_px(translation_theta(shift, size), size), shift)
    # rotation about the centre does not read as a shift
    assert theta_translation_px(rotation_theta(45.0), (28, 28)).abs().max() == 0


def test_log2_scale_readout_round_trip():
    s = torch.tensor([0.5, 1.0, 1.3, 2.0], dtype=torch.float64)
    torch.testing.assert_close(theta_log2_scale(scale_theta(s)), torch.log2(s))
    torch.testing.assert_close(
        theta_log2_scale(compose_theta(rotation_theta(torch.full((4,), 33.0, dtype=torch.float64)), scale_theta(s))),
        torch.log2(s),
    )


# --------------------------------------------------------------------------- validation, dtypes, layouts


def test_bad_inputs_raise_value_error():
    x = torch.zeros(1, 1, 8, 8)
    with pytest.raises(ValueError, match=r"\[N, 2, 3\].*\[1, 3, 3\]"):
        warp(x, torch.zeros(1, 3, 3))
    with pytest.raises(ValueError, match=r"\[N, 2, 3\]"):
        theta_rotation_deg(torch.zeros(2, 6))
    with pytest.raises(ValueError, match="4-D"):
        warp(torch.zeros(1, 8, 8), identity_theta(1))
    with pytest.raises(ValueError, match="'edge'.*zeros, border, reflection"):
        warp(x, identity_theta(1), padding_mode="edge")
    with pytest.raises(ValueError, match="'edge'.*zeros, border, reflection"):
        rotate(x, 10, padding_mode="edge")
    with pytest.raises(ValueError, match="'area'"):
        warp(x, identity_theta(1), mode="area")
    with pytest.raises(ValueError, match="batch"):
        warp(torch.zeros(3, 1, 8, 8), identity_theta(2))
    with pytest.raises(ValueError, match=r"shift_px.*\[N, 2\]"):
        translation_theta(torch.zeros(2, 3), (8, 8))


def test_warp_under_autocast_and_channels_last_matches_float32():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, 3, 32, 32, generator=g)
    theta = compose_theta(rotation_theta(torch.tensor([17.0, -33.0])), scale_theta(1.1, batch=2))
    reference = warp(x, theta)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = warp(x, theta)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, reference)  # sampled in float32, not bfloat16
    out_cl = warp(x.contiguous(memory_format=torch.channels_last), theta)
    torch.testing.assert_close(out_cl, reference)
    out_bf16 = warp(x.bfloat16(), theta)
    assert out_bf16.dtype == torch.bfloat16


def test_warp_is_differentiable_in_theta():
    x = torch.rand(1, 1, 16, 16)
    theta = rotation_theta(10.0).requires_grad_(True)
    warp(x, theta).sum().backward()
    assert theta.grad is not None and torch.isfinite(theta.grad).all() and theta.grad.abs().sum() > 0
