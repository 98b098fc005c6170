"""Tests of stnlib.toy: the W/M counterexample, the bar, and the first-layer misalignment measures.

The numbers the toy chapter shows are asserted here at library level. Exact claims (180° rotation plus
channel swap, the bar's zero map, integer translations) are tested at float precision; the "no spatial
warp aligns" claims against the analytic lower bound of 1.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from stnlib import toy, transforms


def _blob_images(n: int = 8, size: int = 28, seed: int = 0) -> torch.Tensor:
    """Smooth random test images: a few Gaussian blobs well inside the inscribed disc."""
    g = torch.Generator().manual_seed(seed)
    c = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    yy, xx = torch.meshgrid(c, c, indexing="ij")
    out = torch.zeros(n, 1, size, size)
    for i in range(n):
        for _ in range(4):
            cx, cy = ((torch.rand(2, generator=g) - 0.5) * 12).tolist()
            sx, sy = (1.0 + 2.0 * torch.rand(2, generator=g)).tolist()
            out[i, 0] += torch.exp(-((xx - cx) ** 2 / (2 * sx**2) + (yy - cy) ** 2 / (2 * sy**2)))
    return out.clamp_max(1.0)


@pytest.fixture(scope="module")
def wm() -> toy.WMCounterexample:
    return toy.wm_counterexample()


# ----------------------------------------------------------------------------- letters and Γ


def test_letters_are_exact_rotations():
    w, m = toy.letter_bitmap("W"), toy.letter_bitmap("M")
    assert w.shape == (toy.LETTER_SIZE, toy.LETTER_SIZE)
    assert set(w.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(w, w.flip(1)), "the W must be left-right symmetric"
    assert torch.equal(m, torch.rot90(w, 2))
    assert not torch.equal(w, m)
    assert torch.equal(toy.rotated_w_image(2), toy.letter_image("M"))
    img = toy.letter_image("W")
    assert img.shape == (1, 1, toy.CANVAS_SIZE, toy.CANVAS_SIZE)
    assert img.sum() == w.sum()


def test_letter_bad_input():
    with pytest.raises(ValueError, match="unknown letter 'X'"):
        toy.letter_bitmap("X")
    with pytest.raises(ValueError, match="odd"):
        toy.letter_image("W", canvas=32)


def test_detector_fires_only_on_its_letter():
    gamma = toy.LetterDetector()
    c = toy.CANVAS_SIZE // 2
    for ch, letter in enumerate(toy.CHANNELS):
        maps = gamma(toy.letter_image(letter))
        assert maps[0, ch, c, c] == 1.0, "a perfectly placed letter gives exactly 1 at its centre"
        assert maps[0, ch].max() == 1.0
        assert torch.count_nonzero(maps[0, 1 - ch]) == 0, "the other channel must be silent"
        resp = gamma.response(toy.letter_image(letter))
        assert resp[0, ch, c, c] == pytest.approx(1.0, abs=1e-6)
        assert resp[0, 1 - ch].max() < toy.DETECTION_THRESHOLD - 0.05  # clear margin, about 0.43


def test_detector_is_translation_covariant():
    gamma = toy.LetterDetector()
    img = toy.letter_image("W")
    shifted = gamma(toy.shift_exact(img, 3, -2))
    assert torch.equal(shifted, toy.shift_exact(gamma(img), 3, -2))


# ----------------------------------------------------------------------------- alignment measures


def test_alignment_error_basics():
    b = torch.rand(2, 3, 5, 5) + 0.1
    assert toy.alignment_error(b, b) == 0
    assert toy.alignment_error(torch.zeros_like(b), b) == 1.0  # exactly: same norm computed twice
    assert torch.isfinite(toy.alignment_error(torch.zeros(3), torch.zeros(3)))
    per = toy.alignment_error(2 * b, b, dims=(1, 2, 3))
    assert per.shape == (2,) and torch.allclose(per, torch.ones(2))
    mask = torch.zeros(1, 1, 5, 5)
    mask[..., 2, 2] = 1
    a = b.clone()
    a[..., 0, 0] += 5  # outside the mask: ignored
    assert toy.alignment_error(a, b, mask=mask) == 0
    with pytest.raises(ValueError, match="same shape"):
        toy.alignment_error(torch.zeros(2), torch.zeros(3))


def test_rotate_maps_exact_quarter_turns():
    x = torch.rand(2, 3, 9, 9)
    for k in range(-1, 5):
        assert torch.equal(toy.rotate_maps(x, 90 * k), torch.rot90(x, k, dims=(-2, -1)))
    assert torch.allclose(toy.rotate_maps(x, 30.0), transforms.rotate(x, 30.0))


def test_shift_exact_matches_translate():
    x = torch.rand(2, 1, 12, 10)
    for dx, dy in [(0, 0), (3, -2), (-4, 5), (1, 0)]:
        out = toy.shift_exact(x, dx, dy)
        assert torch.allclose(out, transforms.translate(x, (dx, dy)), atol=1e-5)
        assert torch.equal(out[..., max(dy, 0):12 + min(dy, 0), max(dx, 0):10 + min(dx, 0)],
                           x[..., max(-dy, 0):12 + min(-dy, 0), max(-dx, 0):10 + min(-dx, 0)])
    assert torch.count_nonzero(toy.shift_exact(x, 10, 0)) == 0
    with pytest.raises(ValueError, match="integer"):
        toy.shift_exact(x, 0.5, 0)


def test_affine_search_aligns_when_alignment_is_possible():
    # Control for the counterexample: the same optimiser does find a warp when one exists.
    size = 33
    c = torch.arange(size, dtype=torch.float32) - 16
    yy, xx = torch.meshgrid(c, c, indexing="ij")
    blob = torch.exp(-((xx - 2) ** 2 + (yy + 1) ** 2) / (2 * 3.0**2))[None, None]
    target = torch.exp(-(xx**2 + yy**2) / (2 * 3.0**2))[None, None]
    fit = toy.affine_search(blob, target, steps=100, n_random=0)
    assert fit.start_errors[0] > 0.3
    assert fit.best_error < 0.02
    # theta samples the source at (x + 2, y - 1) px: content moved left 2, up 1
    assert transforms.theta_translation_px(fit.theta, (size, size))[0].tolist() == pytest.approx([-2, 1], abs=0.1)
    # and the true inverse of a 180° rotation is found at once (exact up to grid arithmetic)
    gamma = toy.LetterDetector()
    maps_w = gamma(toy.letter_image("W"))[:, :1]
    fit = toy.affine_search(torch.rot90(maps_w, 2, dims=(-2, -1)), maps_w, steps=0, n_random=0)
    assert fit.best_error < 1e-5


# ----------------------------------------------------------------------------- the W/M counterexample


def test_wm_feature_maps_move_channel(wm):
    assert wm.channel_sums["W"][0] > 0 and wm.channel_sums["W"][1] == 0
    assert wm.channel_sums["rotated W"][0] == 0 and wm.channel_sums["rotated W"][1] > 0
    # R⁻¹ Γ(R W): right place, wrong channel
    assert torch.equal(wm.back_rotated[:, 1], wm.maps[:, 0])
    assert wm.back_rotated_error == pytest.approx(math.sqrt(2), abs=1e-6)
    assert wm.cross_response < toy.DETECTION_THRESHOLD


def test_wm_no_spatial_warp_aligns(wm):
    assert wm.lower_bound == 1.0
    # every rotation (1° grid incl. the exact quarter turns) is worse than the all-zero map
    assert wm.rotation.angles.numel() == 360
    assert wm.rotation.best_error > 1.3
    assert float(wm.rotation.errors[180]) == pytest.approx(math.sqrt(2), abs=1e-6)
    # the optimised affine warp reaches the lower bound but not below it
    assert wm.affine.best_error > 0.5
    assert wm.affine.best_error >= 1.0 - 1e-6
    assert wm.affine.best_error < 1.01
    assert "true inverse" in wm.affine.start_names[2]
    assert float(wm.affine.start_errors[2]) == pytest.approx(math.sqrt(2), abs=1e-5)


def test_wm_rotation_plus_channel_swap_aligns(wm):
    assert wm.swap_error < 1e-6
    assert torch.equal(wm.swapped, wm.maps)  # bit for bit: integer conv weights on binary images
    with pytest.raises(ValueError, match="permutation"):
        toy.rotation_swap_error(wm.rotated_maps, wm.maps, permutation=(0, 0))


# ----------------------------------------------------------------------------- the bar


def test_bar_zero_versus_nonzero():
    bar = toy.bar_example(angles=range(0, 360, 15))
    assert bar.maps_sum > 0
    assert torch.count_nonzero(bar.maps) > 0
    assert torch.count_nonzero(bar.rotated_maps) == 0
    assert bar.rotated_maps_max == 0.0
    assert bar.back_rotated_error == 1.0
    assert bool((bar.rotation.errors == 1.0).all())
    assert bar.lower_bound == 1.0
    with pytest.raises(ValueError, match="odd"):
        toy.bar_image(length=20)


# ----------------------------------------------------------------------------- first-layer curves


def test_random_first_layer_is_seeded():
    state = torch.random.get_rng_state()
    a, b, c = toy.random_first_layer(0), toy.random_first_layer(0), toy.random_first_layer(1)
    assert torch.equal(torch.random.get_rng_state(), state), "the global RNG must be left untouched"
    assert isinstance(a, nn.Conv2d) and tuple(a.weight.shape) == (64, 1, 9, 9)
    assert torch.equal(a.weight, b.weight) and not torch.equal(a.weight, c.weight)


def test_random_first_layer_is_the_cnn_initialisation():
    init = toy.first_conv(_build_cnn(seed=3))
    conv = toy.random_first_layer(3)
    assert torch.equal(conv.weight, init.weight) and torch.equal(conv.bias, init.bias)


def test_translation_aligns_away_from_borders():
    images = _blob_images()
    conv = toy.random_first_layer(0)
    shifts = [(0, 0), (1, 0), (0, -1), (3, -2), (-4, 4)]
    err = toy.translation_misalignment_curve(conv, images, shifts, normalization=toy.MNIST_NORMALIZATION)
    assert err.shape == (5,)
    assert float(err.max()) < 1e-5
    # ... while the shifted feature maps themselves are far from the unshifted ones (the test can fail)
    f = toy.conv_features(conv, images)
    moved = toy.conv_features(conv, toy.shift_exact(images, 3, -2))
    assert float(toy.alignment_error(moved, f)) > 0.1
    with pytest.raises(ValueError, match="integer"):
        toy.translation_misalignment_curve(conv, images, [(0.5, 0)])


def test_rotation_misaligns_random_filters():
    images = _blob_images()
    conv = toy.random_first_layer(0)
    err = toy.rotation_misalignment_curve(conv, images, [0, 90, 180, 45], normalization=toy.MNIST_NORMALIZATION)
    assert float(err[0]) == 0.0
    assert float(err[1]) > 0.1 and float(err[2]) > 0.1
    # filters made invariant to quarter turns are aligned by the inverse quarter turn (the exception)
    sym = toy.rotation_misalignment_curve(toy.c4_symmetrized(conv), images, [90, 180, 270],
                                          normalization=toy.MNIST_NORMALIZATION)
    assert float(sym.max()) < 1e-5
    # and a pointwise feature only sees interpolation error, much smaller than the filters' at 45°
    floor = toy.rotation_misalignment_curve(toy.pointwise_layer(), images, [45.0])
    assert float(floor[0]) < float(err[3])


def test_profile_settings():
    from stnlib import profiles

    assert profiles.toy_settings("quick").train_steps > profiles.toy_settings("smoke").train_steps
    with pytest.raises(ValueError, match="unknown profile 'fast'"):
        profiles.toy_settings("fast")
    angles = toy.curve_angles(30)
    assert {-180, -135, -90, -45, 0, 45, 90, 135, 180} <= set(angles) and 30 in angles
    assert angles == sorted(angles)


def test_disc_mask():
    m = toy.disc_mask(20, margin=1.0)
    assert m.shape == (1, 1, 20, 20)
    assert m[0, 0, 0, 0] == 0 and m[0, 0, 9, 9] == 1 and m[0, 0, 10, 10] == 1
    assert torch.equal(m, torch.rot90(m, 1, dims=(-2, -1)))


def test_conv_bad_input():
    with pytest.raises(ValueError, match="nn.Conv2d or a 4-D weight"):
        toy.conv_features("conv1", torch.zeros(1, 1, 28, 28))
    with pytest.raises(ValueError, match="square"):
        toy.rotation_misalignment_curve(toy.random_first_layer(0), torch.zeros(1, 1, 28, 30), [90])


@pytest.mark.slow
def test_train_first_layer_smoke():
    conv = toy.train_first_layer(20, seed=0)
    init = toy.first_conv(_build_cnn(seed=0))
    assert isinstance(conv, nn.Conv2d) and tuple(conv.weight.shape) == (64, 1, 9, 9)
    assert not torch.equal(conv.weight, init.weight), "training must change conv1"
    again = toy.train_first_layer(20, seed=0)
    assert torch.equal(conv.weight, again.weight), "same seed, same layer"


def _build_cnn(seed: int) -> nn.Module:
    from stnlib import nn as networks

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return networks.build("cnn", "mnist-rot")
