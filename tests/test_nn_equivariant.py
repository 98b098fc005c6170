"""Tests for stnlib.nn.equivariant: C4 (and C8) equivariance identities at float precision, the
orientation-aware feature-map ST, and the equivariant classifiers' interface.

Exact cases use torch.rot90 on square maps; "exact" means a relative max error below 1e-5 (float32
round-off of reordered sums is ~1e-7). Where an identity must NOT hold (odd-size pooling, an
asymmetric stride, a purely spatial ST), the tests assert a large error, so they can fail both ways.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from stnlib.nn import equivariant as eq
from stnlib.nn.equivariant import (
    EquivariantFeatureST,
    GroupConv2d,
    LiftingConv2d,
    build_equivariant_model,
    orientation_pool,
    rotate_fields,
    rotate_fields_continuous,
    shift_orientations,
    split_fields,
)
from stnlib.nn.models import build_model
from stnlib.nn.stn import SpatialTransformer, cnnm_head
from stnlib.transforms import rotate, rotation_theta, theta_rotation_deg

EXACT = 1e-5


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """Max absolute difference relative to the reference's max magnitude."""
    a, b = a.detach(), b.detach()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))


def rot(x: torch.Tensor, k: int) -> torch.Tensor:
    return torch.rot90(x, k, dims=(-2, -1))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# ------------------------------------------------------------------------------------ group action


def test_rotate_fields_direction_on_a_tiny_example():
    # one field, orientation r holds the constant r; a quarter turn moves orientation r to r+1
    x = torch.arange(4.0).view(1, 4, 1, 1).expand(1, 4, 3, 3).clone()
    x[0, :, 0, 2] += 10  # a marker in the top-right corner
    y = rotate_fields(x, 1)
    assert split_fields(y)[0, 0, :, 1, 1].tolist() == [3.0, 0.0, 1.0, 2.0]
    # CCW as displayed: the top-right corner goes to the top-left, as rotate(x, 90) does
    assert torch.equal(y[0, :, 0, 0] - y[0, :, 1, 1], torch.full((4,), 10.0))
    assert torch.allclose(rot(x, 1), rotate(x, 90.0), atol=1e-6)


@pytest.mark.parametrize("n", [4, 8])
def test_rotate_fields_is_a_group_action_bit_for_bit(n):
    x = torch.randn(2, 3 * n, 7, 7)
    assert torch.equal(rotate_fields(rotate_fields(x, 1, n), 3, n), x)
    assert torch.equal(rotate_fields(x, 4, n), x)
    assert torch.equal(rotate_fields(rotate_fields(x, 1, n), 1, n), rotate_fields(x, 2, n))
    assert torch.equal(rotate_fields(x, -1, n), rotate_fields(x, 3, n))


def test_orientation_pool_turns_the_action_into_a_plain_rotation():
    x = torch.randn(2, 5 * 4, 9, 9)
    for k in range(4):
        assert torch.equal(orientation_pool(rotate_fields(x, k)), rot(orientation_pool(x), k))
    assert orientation_pool(x).shape == (2, 5, 9, 9)


def test_shift_orientations_integer_fractional_and_per_example():
    x = torch.randn(3, 2 * 4, 5, 5)
    for k in (-5, -1, 0, 1, 2, 7):
        expected = torch.roll(split_fields(x), k, dims=2).reshape(x.shape)
        assert torch.equal(shift_orientations(x, float(k)), expected)
    blend = shift_orientations(x, 1.25)
    expected = 0.75 * shift_orientations(x, 1.0) + 0.25 * shift_orientations(x, 2.0)
    assert rel_err(blend, expected) < EXACT
    steps = torch.tensor([0.0, 1.0, -1.5])
    per = shift_orientations(x, steps)
    for i, s in enumerate(steps.tolist()):
        assert rel_err(per[i : i + 1], shift_orientations(x[i : i + 1], s)) < EXACT


def test_shift_orientations_is_continuous_and_differentiable_in_steps():
    x = torch.randn(1, 4, 3, 3)
    for s in (0.0, 1.0, 2.0, -1.0):
        below, above = shift_orientations(x, s - 1e-4), shift_orientations(x, s + 1e-4)
        assert rel_err(below, shift_orientations(x, s)) < 1e-3
        assert rel_err(above, shift_orientations(x, s)) < 1e-3
    steps = torch.tensor([0.3], requires_grad=True)
    shift_orientations(x, steps).square().sum().backward()
    assert steps.grad is not None and steps.grad.abs().item() > 0


@pytest.mark.parametrize("size", [10, 11])
def test_rotate_fields_continuous_exact_at_quarter_turns(size):
    x = torch.randn(2, 3 * 4, size, size)
    for k in (-2, -1, 0, 1, 2, 3):
        assert rel_err(rotate_fields_continuous(x, 90.0 * k), rotate_fields(x, k)) < EXACT
    per = rotate_fields_continuous(x, torch.tensor([90.0, -90.0]))
    assert rel_err(per[:1], rotate_fields(x[:1], 1)) < EXACT
    assert rel_err(per[1:], rotate_fields(x[1:], -1)) < EXACT


def test_rotate_fields_continuous_is_continuous_in_angle():
    x = torch.randn(1, 2 * 4, 12, 12)
    for a in (0.0, 30.0, 45.0, 90.0, 135.0):
        diff = rel_err(rotate_fields_continuous(x, a + 0.01), rotate_fields_continuous(x, a))
        assert diff < 1e-2, (a, diff)
    # off the grid it is a real blend, not a snap to the nearest quarter turn
    mid = rotate_fields_continuous(x, 45.0)
    assert rel_err(mid, rotate_fields_continuous(x, 0.0)) > 0.05
    assert rel_err(mid, rotate_fields_continuous(x, 90.0)) > 0.05


# ------------------------------------------------------------------------------------ layers


@pytest.mark.parametrize(
    "size,kernel,padding,stride",
    [(28, 9, 0, 1), (29, 9, 0, 1), (29, 8, 0, 1), (28, 4, 1, 1), (27, 5, 2, 1), (27, 5, 0, 2)],
)
def test_lifting_conv_equivariance(size, kernel, padding, stride):
    lift = LiftingConv2d(2, 3, kernel, padding=padding, stride=stride)
    x = torch.randn(2, 2, size, size)
    out = lift(x)
    assert out.shape[1] == 3 * 4
    for k in range(4):
        assert rel_err(lift(rot(x, k)), rotate_fields(out, k)) < EXACT


def test_lifting_conv_asymmetric_stride_is_not_equivariant():
    # (28 - 5) % 2 == 1: the stride-2 grid drops a different border after rotation
    lift = LiftingConv2d(1, 3, 5, stride=2)
    x = torch.randn(2, 1, 28, 28)
    assert rel_err(lift(rot(x, 1)), rotate_fields(lift(x), 1)) > 1e-2


def test_lifting_conv_orientation_r_uses_rotated_filters():
    lift = LiftingConv2d(1, 2, 5)
    w = lift.expanded_weight().view(2, 4, 1, 5, 5)
    for r in range(4):
        assert torch.equal(w[:, r], rot(lift.weight, r))


@pytest.mark.parametrize("size,kernel,padding", [(11, 7, 0), (12, 7, 0), (10, 3, 1), (9, 4, 0)])
def test_group_conv_equivariance(size, kernel, padding):
    g = GroupConv2d(3, 5, kernel, padding=padding)
    x = torch.randn(2, 3 * 4, size, size)
    out = g(x)
    assert out.shape[1] == 5 * 4
    for k in range(4):
        assert rel_err(g(rotate_fields(x, k)), rotate_fields(out, k)) < EXACT


def test_group_conv_without_orientation_shift_would_not_be_equivariant():
    # the filter's input-orientation axis must be shifted with the output orientation: check that
    # dropping that shift (a "rotate the spatial filter only" conv) breaks the identity
    g = GroupConv2d(2, 3, 5)
    x = torch.randn(1, 2 * 4, 11, 11)
    spatial_only = torch.stack([rot(g.weight, r) for r in range(4)], 1).reshape(12, 8, 5, 5)
    naive = lambda t: F.conv2d(t, spatial_only)  # noqa: E731
    assert rel_err(naive(rotate_fields(x, 1)), rotate_fields(naive(x), 1)) > 1e-2
    assert rel_err(g(rotate_fields(x, 1)), rotate_fields(g(x), 1)) < EXACT


@pytest.mark.parametrize("size", [10, 20])
def test_max_pool_and_relu_commute_on_even_sizes(size):
    x = torch.randn(2, 4 * 4, size, size)
    for k in range(4):
        assert torch.equal(F.max_pool2d(rotate_fields(x, k), 2), rotate_fields(F.max_pool2d(x, 2), k))
        assert torch.equal(F.relu(rotate_fields(x, k)), rotate_fields(F.relu(x), k))


def test_max_pool_breaks_equivariance_on_odd_sizes():
    x = torch.randn(2, 4 * 4, 11, 11)
    assert rel_err(F.max_pool2d(rotate_fields(x, 1), 2), rotate_fields(F.max_pool2d(x, 2), 1)) > 1e-2


@pytest.mark.parametrize("size,k1,k2", [(28, 9, 7), (29, 8, 6)])  # 28→20→10→4→2 and 29→22→11→6→3
def test_composed_blocks_are_equivariant(size, k1, k2):
    block1 = torch.nn.Sequential(LiftingConv2d(1, 4, k1), torch.nn.MaxPool2d(2), torch.nn.ReLU())
    block2 = torch.nn.Sequential(GroupConv2d(4, 6, k2), torch.nn.MaxPool2d(2), torch.nn.ReLU())
    x = torch.randn(2, 1, size, size)
    a = block1(x)
    b = block2(a)
    for k in range(4):
        a_k = block1(rot(x, k))
        assert rel_err(a_k, rotate_fields(a, k)) < EXACT
        assert rel_err(block2(a_k), rotate_fields(b, k)) < EXACT
        assert rel_err(orientation_pool(block2(a_k)), rot(orientation_pool(b), k)) < EXACT


def test_c8_exact_for_quarter_turns():
    lift = LiftingConv2d(1, 3, 9, n_orientations=8)
    g = GroupConv2d(3, 2, 5, n_orientations=8)
    x = torch.randn(2, 1, 28, 28)
    out = g(lift(x))
    assert out.shape[1] == 2 * 8
    for k in range(4):
        assert rel_err(g(lift(rot(x, k))), rotate_fields(out, k, 8)) < EXACT


def _smooth_blobs(n: int, size: int = 28) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    c = torch.arange(size) - size / 2 + 0.5
    yy, xx = torch.meshgrid(c, c, indexing="ij")
    img = torch.zeros(n, 1, size, size)
    for i in range(n):
        for _ in range(5):
            cx, cy = (torch.rand(2, generator=g) * 12 - 6).tolist()
            s = 1.5 + 2 * torch.rand(1, generator=g).item()
            amp = 2 * torch.rand(1, generator=g).item() - 1
            img[i, 0] += amp * torch.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * s * s))
    return img


def _smooth_lifting(n_orientations: int) -> LiftingConv2d:
    # oriented Gaussian derivatives: smooth filters, so 45° filter interpolation is meaningful
    lift = LiftingConv2d(1, 4, 9, padding=4, n_orientations=n_orientations)
    c = torch.arange(9.0) - 4
    ky, kx = torch.meshgrid(c, c, indexing="ij")
    with torch.no_grad():
        for f in range(4):
            a = 0.3 + 0.7 * f
            lift.weight[f, 0] = (kx * math.cos(a) + ky * math.sin(a)) * torch.exp(-(kx**2 + ky**2) / 8)
    return lift


def test_c8_approximately_equivariant_at_45_degrees():
    """C8 with interpolated 45° filters: relative L2 error inside the inscribed disc below 0.15
    (measured 0.08), where C4 with the interpolated half-step shift is at about 0.42."""
    x = _smooth_blobs(4)
    c = torch.arange(28.0) - 13.5
    yy, xx = torch.meshgrid(c, c, indexing="ij")
    disc = ((xx**2 + yy**2) < 81).float()
    errors = {}
    for n in (4, 8):
        lift = _smooth_lifting(n)
        with torch.no_grad():
            a = lift(rotate(x, 45.0))
            b = rotate_fields_continuous(lift(x), 45.0, n)
        errors[n] = float(((a - b) * disc).norm() / (b * disc).norm())
    assert errors[8] < 0.15, errors
    assert errors[8] < 0.5 * errors[4], errors


# ------------------------------------------------------------------------------------ feature ST


def _feature_st(fields: int = 16, size: int = 10) -> EquivariantFeatureST:
    body, n = cnnm_head((fields * 4, size, size))
    return EquivariantFeatureST(body, n, padding_mode="border")


def _set_constant_theta(st, theta: torch.Tensor) -> None:
    with torch.no_grad():
        st.fc_loc.weight.zero_()
        st.fc_loc.bias.copy_(theta.reshape(6) - st.identity)


def test_feature_st_starts_as_identity():
    st = _feature_st()
    x = torch.randn(3, 64, 10, 10)
    out, theta = st(x)
    assert torch.equal(theta, rotation_theta(0.0, batch=3))
    assert rel_err(out, x) < EXACT
    assert torch.count_nonzero(st.fc_loc.weight) == 0 and torch.count_nonzero(st.fc_loc.bias) == 0


@pytest.mark.parametrize("k", [1, 2, 3, -1])
def test_feature_st_exactly_undoes_quarter_turns(k):
    """Input rotated by 90°·k; the ST outputs the undoing transform (reads -90°·k): the aligned maps
    equal the unrotated input's maps. A purely spatial ST with the same theta does not align them."""
    block1 = torch.nn.Sequential(LiftingConv2d(1, 16, 9), torch.nn.MaxPool2d(2), torch.nn.ReLU())
    x = torch.randn(4, 1, 28, 28)
    reference = block1(x)
    rotated_maps = block1(rot(x, k))
    st = _feature_st()
    _set_constant_theta(st, rotation_theta(-90.0 * k))
    aligned, theta = st(rotated_maps)
    wrapped = torch.remainder(theta_rotation_deg(theta) + 90.0 * k + 180.0, 360.0) - 180.0
    assert torch.allclose(wrapped, torch.zeros(4), atol=1e-4)  # reads -90°·k (mod 360)
    assert rel_err(aligned, reference) < EXACT

    plain = SpatialTransformer(*cnnm_head((64, 10, 10)), padding_mode="border")
    _set_constant_theta(plain, rotation_theta(-90.0 * k))
    spatial_only, _ = plain(rotated_maps)
    assert rel_err(spatial_only, reference) > 0.1  # the paper's Eq. 1: space alone cannot align them


def test_feature_st_off_grid_matches_continuous_action_and_gradients_reach_fc_loc():
    st = _feature_st()
    x = torch.randn(2, 64, 10, 10)
    _set_constant_theta(st, rotation_theta(30.0))
    out, _ = st(x)
    assert rel_err(out, rotate_fields_continuous(x, 30.0, padding_mode="border")) < EXACT
    st.reset_fc_loc()
    out, _ = st(x)
    out.square().sum().backward()
    assert st.fc_loc.weight.grad is not None and st.fc_loc.weight.grad.abs().sum() > 0


def test_feature_st_pooled_loc_input():
    body, n = cnnm_head((16, 10, 10))
    st = EquivariantFeatureST(body, n, pool_orientations=True)
    assert st.loc_input(torch.randn(2, 64, 10, 10)).shape == (2, 16, 10, 10)
    out, theta = st(torch.randn(2, 64, 10, 10))
    assert out.shape == (2, 64, 10, 10) and theta.shape == (2, 2, 3)


# ------------------------------------------------------------------------------------ classifiers

# Parameter counts worked out by hand (see eq.equivariant_parameter_count):
#   lifting 16·81 + 16 = 1,312; group conv 64·16·4·49 + 64 = 200,768; read-out 256·10 + 10 = 2,570;
#   cnnm head on 64×10×10 + fc_loc = 43,786. Translated MNIST: read-out 6,400·10 + 10 (ecnn) or
#   576·10 + 10 (stn-ec1, ST output 13×13), cnnt head on 64×26×26 + fc_loc = 61,786.
EXPECTED_PARAMS = {
    ("ecnn", "mnist-rot"): 204_650,
    ("stn-ec1", "mnist-rot"): 248_436,
    ("ecnn", "mnist-trans"): 266_090,
    ("stn-ec1", "mnist-trans"): 269_636,
}


@pytest.mark.parametrize("name,dataset", sorted(EXPECTED_PARAMS))
def test_classifier_shapes_params_and_interface(name, dataset):
    model = build_equivariant_model(name, dataset)
    total = _n_params(model)
    loc = sum(p.numel() for p in model.localization_parameters())
    cls = sum(p.numel() for p in model.classifier_parameters())
    print(f"{name} on {dataset}: {total:,} parameters ({loc:,} in the loc net)")
    assert total == EXPECTED_PARAMS[(name, dataset)]
    assert loc + cls == total
    side = 28 if dataset == "mnist-rot" else 60
    x = torch.randn(2, 1, side, side)
    logits, theta = model.forward_with_theta(x)
    assert logits.shape == (2, 10) and model(x).shape == (2, 10)
    first = model.first_layer(x)
    assert first.shape == (2, 64, side // 2 - 4, side // 2 - 4)
    if name == "stn-ec1":
        assert model.kind == "c" and model.placement == 1
        assert theta.shape == (2, 2, 3)
        st_out, _ = model.transform(x)
        assert st_out.shape == ((2, 64, 10, 10) if dataset == "mnist-rot" else (2, 64, 13, 13))
        # the loc net is the very head of STN-C1 on the same dataset
        c1 = build_model("stn-c1", dataset)
        assert loc == sum(p.numel() for p in c1.localization_parameters())
        assert isinstance(model.st, SpatialTransformer)
        st_keys = lambda m: {k for k in m.state_dict() if k.startswith("st.")}  # noqa: E731
        assert st_keys(model) == st_keys(c1)
        groups = model.param_groups(0.01, 0.1)
        assert [g["lr"] for g in groups] == [0.01, pytest.approx(0.001)]
        assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    else:
        assert model.kind == "cnn" and model.placement == 0 and theta is None
        assert len(model.param_groups(0.01, 0.1)) == 1
        with pytest.raises(ValueError, match="no spatial transformer"):
            model.transform(x)


def test_parameter_count_formula_and_cnn_comparison():
    assert eq.equivariant_parameter_count() == 204_650
    assert eq.equivariant_parameter_count(loc_parameters=43_786) == 248_436
    cnn = _n_params(build_model("cnn", "mnist-rot"))
    assert cnn == 208_586
    assert abs(204_650 - cnn) / cnn < 0.02  # within 2% of the paper's MNIST CNN


def test_ecnn_features_rotate_exactly_with_the_input():
    model = build_equivariant_model("ecnn", "mnist-rot")
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        feats = model.block2(model.first_layer(x))  # 64×2×2 after orientation pooling
        for k in range(4):
            assert rel_err(model.block2(model.first_layer(rot(x, k))), rot(feats, k)) < EXACT


def test_stn_ec1_with_undoing_theta_classifies_rotated_input_like_the_upright_one():
    model = build_equivariant_model("stn-ec1", "mnist-rot")
    x = torch.randn(3, 1, 28, 28)
    with torch.no_grad():
        upright = model(x)  # fresh ST = identity
        _set_constant_theta(model.st, rotation_theta(-90.0))
        turned = model(rot(x, 1))
    assert rel_err(turned, upright) < EXACT


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="ecnn, stn-ec1"):
        build_equivariant_model("stn-c1", "mnist-rot")
    with pytest.raises(ValueError, match="mnist-rot, mnist-trans"):
        build_equivariant_model("stn-ec1", "svhn")
    model = build_equivariant_model("ecnn", "mnist-rot")
    with pytest.raises(ValueError, match=r"\[N, 1, 28, 28\]"):
        model(torch.randn(2, 1, 60, 60))
    with pytest.raises(ValueError, match="not a multiple"):
        rotate_fields(torch.randn(1, 6, 5, 5), 1)
    with pytest.raises(ValueError, match="square"):
        rotate_fields(torch.randn(1, 8, 5, 6), 1)
    with pytest.raises(ValueError, match="int number of quarter turns"):
        rotate_fields(torch.randn(1, 8, 5, 5), 0.5)
    with pytest.raises(ValueError, match="multiple of 4"):
        LiftingConv2d(1, 2, 3, n_orientations=6)
    with pytest.raises(ValueError, match="expects N×8×H×W"):
        GroupConv2d(2, 2, 3)(torch.randn(1, 4, 9, 9))
    with pytest.raises(ValueError, match="Tensor\\[N\\]"):
        shift_orientations(torch.randn(2, 4, 3, 3), torch.zeros(3))


def test_forward_under_bfloat16_autocast():
    model = build_equivariant_model("stn-ec1", "mnist-rot").eval()
    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        ref = model(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits, theta = model.forward_with_theta(x)
            st_out, _ = model.transform(x)
    assert logits.shape == (4, 10) and torch.isfinite(logits).all()
    assert theta.dtype == torch.float32 and st_out.shape == (4, 64, 10, 10)
    assert rel_err(logits.float(), ref) < 0.1
