"""stnlib.nn.stn: identity start, theta plumbing, output size, and the loc heads' sizes (book/protocol.md, Networks)."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from stnlib.nn.stn import SpatialTransformer, cnnm_head, cnnt_head, svhn_l_head
from stnlib.transforms import PADDING_MODES, identity_theta, rotation_theta


def conv(cin: int, cout: int, k: int) -> int:
    return cin * cout * k * k + cout


def lin(i: int, o: int) -> int:
    return i * o + o


def svhn_l(cin: int, flat: int) -> int:
    """SVHN-l + Linear(→6): two 5×5 convs (32), FC 32, FC 32, FC 6."""
    return conv(cin, 32, 5) + conv(32, 32, 5) + lin(flat, 32) + lin(32, 32) + lin(32, 6)


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def st_params(builder, shape) -> int:
    body, n = builder(shape)
    return n_params(SpatialTransformer(body, n, padding_mode="zeros"))


# --------------------------------------------------------------------------- head sizes

HEAD_CASES = [
    # CNNm: 28 -conv5-> 24 (>20: pool) -> 12 -conv5-> 8: 20·8·8 = 1280 features; spec: 36,286
    (cnnm_head, (1, 28, 28), conv(1, 20, 5) + conv(20, 20, 5) + lin(1280, 20) + lin(20, 6), 36_286),
    # CNNm on 64×10×10: 10 -> 6 (no pool) -> 2: 20·2·2 = 80; spec: 43,786
    (cnnm_head, (64, 10, 10), conv(64, 20, 5) + conv(20, 20, 5) + lin(80, 20) + lin(20, 6), 43_786),
    # CNNt on 60: 56 -> pool 28 -> 24 (>20: pool) -> 12: 20·12·12 = 2880
    (cnnt_head, (1, 60, 60), conv(1, 20, 5) + conv(20, 20, 5) + lin(2880, 20) + lin(20, 6), 68_286),
    # CNNt on 64×26×26: 22 -> 11 -> 7 (no pool): 20·7·7 = 980
    (cnnt_head, (64, 26, 26), conv(64, 20, 5) + conv(20, 20, 5) + lin(980, 20) + lin(20, 6), 61_786),
    # SVHN-l: pad-2 convs keep the size, one pool halves it: 32·32·32 on 64×64; spec: 1.08 M / 195 k / 197 k / 185 k
    (svhn_l_head, (3, 64, 64), svhn_l(3, 32 * 32 * 32), 1_077_926),
    (svhn_l_head, (128, 16, 16), svhn_l(128, 32 * 8 * 8), 194_886),
    (svhn_l_head, (192, 8, 8), svhn_l(192, 32 * 4 * 4), 196_934),
    (svhn_l_head, (192, 4, 4), svhn_l(192, 32 * 2 * 2), 184_646),
]


@pytest.mark.parametrize("builder,shape,by_hand,literal", HEAD_CASES)
def test_head_parameter_counts(builder, shape, by_hand, literal):
    assert by_hand == literal
    assert st_params(builder, shape) == literal


@pytest.mark.parametrize(
    "builder,shape,pools",
    [
        (cnnm_head, (1, 28, 28), 1),
        (cnnm_head, (64, 10, 10), 0),
        (cnnt_head, (1, 60, 60), 2),
        (cnnt_head, (64, 26, 26), 1),
    ],
)
def test_conditional_max_pools(builder, shape, pools):
    body, _ = builder(shape)
    assert sum(isinstance(m, nn.MaxPool2d) for m in body.modules()) == pools


@pytest.mark.parametrize("builder,shape", [(b, s) for b, s, _, _ in HEAD_CASES])
def test_heads_end_with_relu_and_flat_features(builder, shape):
    body, n = builder(shape)
    assert isinstance(list(body.children())[-1], nn.ReLU)
    assert body(torch.rand(2, *shape)).shape == (2, n)


def test_head_rejects_too_small_input():
    with pytest.raises(ValueError, match="too small"):
        cnnm_head((1, 6, 6))
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        cnnt_head((60, 60))


# --------------------------------------------------------------------------- the transformer


def make_st(shape=(1, 28, 28), **kwargs) -> SpatialTransformer:
    body, n = cnnm_head(shape)
    kwargs.setdefault("padding_mode", "border")
    return SpatialTransformer(body, n, **kwargs)


def test_fresh_transformer_is_identity():
    st = make_st()
    assert torch.count_nonzero(st.fc_loc.weight) == 0 and torch.count_nonzero(st.fc_loc.bias) == 0
    assert st.identity.tolist() == [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    assert "identity" in dict(st.named_buffers()) and "identity" not in dict(st.named_parameters())
    x = torch.rand(4, 1, 28, 28)
    warped, theta = st(x)
    assert torch.equal(theta, identity_theta(4))
    torch.testing.assert_close(warped, x, atol=1e-6 * 28 / 5, rtol=0)  # float32 grid rounding, see test_transforms
    warped64, _ = st.double()(x.double())
    torch.testing.assert_close(warped64, x.double(), atol=1e-12, rtol=0)


@pytest.mark.parametrize("padding", PADDING_MODES)
def test_transformer_pads_as_told(padding):
    st = make_st(padding_mode=padding)
    with torch.no_grad():
        st.fc_loc.bias.copy_(torch.tensor([2.0, 0.0, 0.0, 0.0, 2.0, 0.0]) - st.identity)  # content shrunk ×2
    x = torch.ones(1, 1, 28, 28)
    corner = st(x)[0][0, 0, 0, 0].item()
    assert corner == pytest.approx(0.0 if padding == "zeros" else 1.0)


def test_transformer_rejects_bad_padding():
    with pytest.raises(ValueError, match="'edge'.*zeros, border, reflection"):
        make_st(padding_mode="edge")


def test_out_size_halves_like_translated_mnist():
    st = make_st((1, 60, 60), out_size=(30, 30))
    x = torch.rand(2, 1, 60, 60, dtype=torch.float64)
    warped, _ = st.double()(x)
    torch.testing.assert_close(warped, F.avg_pool2d(x, 2), atol=1e-12, rtol=0)


def test_theta_comes_from_loc_input_and_bias_sets_the_transform():
    st = make_st((1, 28, 28))
    with torch.no_grad():
        st.fc_loc.bias.copy_(rotation_theta(90.0).flatten() - st.identity)
    x = torch.rand(2, 1, 28, 28)
    warped, theta = st(x)
    torch.testing.assert_close(theta, rotation_theta(90.0, batch=2))
    torch.testing.assert_close(warped, torch.rot90(x, 1, dims=(-2, -1)), atol=1e-5, rtol=0)
    # with non-zero weights, theta depends on loc_input, not on the image being warped
    with torch.no_grad():
        st.fc_loc.weight.normal_(0, 0.1)
    loc = torch.rand(2, 1, 28, 28)
    _, theta_a = st(x, loc_input=loc)
    _, theta_b = st(torch.rand(2, 1, 28, 28), loc_input=loc)
    torch.testing.assert_close(theta_a, theta_b, rtol=0, atol=0)
    torch.testing.assert_close(theta_a, st.theta(loc), rtol=0, atol=0)


def test_theta_is_float32_under_autocast_and_gradients_reach_loc():
    st = make_st()
    with torch.no_grad():
        st.fc_loc.weight.normal_(0, 0.01)
    x = torch.rand(2, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        warped, theta = st(x)
    assert theta.dtype == torch.float32 and warped.dtype == torch.float32
    warped.sum().backward()
    assert st.fc_loc.weight.grad.abs().sum() > 0
    assert all(p.grad is not None for p in st.localization.parameters())
