"""SingleChannelConv2d: the same values and gradients as nn.Conv2d, from a faster input gradient."""

import pytest
import torch
from torch import nn

from stnlib.nn.layers import SingleChannelConv2d


def _pair(kernel=9, cout=64, bias=True):
    torch.manual_seed(0)
    ref = nn.Conv2d(1, cout, kernel, bias=bias)
    fast = SingleChannelConv2d(1, cout, kernel, bias=bias)
    fast.load_state_dict(ref.state_dict())
    return ref, fast


def _grads(conv, x, gy, autocast=False):
    x = x.clone().requires_grad_(True)
    conv.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        y = conv(x)
    y.backward(gy.to(y.dtype))
    grads = [x.grad, conv.weight.grad] + ([conv.bias.grad] if conv.bias is not None else [])
    return y, grads


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("kernel,size", [(9, 28), (9, 60), (3, 7)])
def test_fp32_values_and_gradients_match_conv2d(kernel, size, bias):
    ref, fast = _pair(kernel, 8, bias)
    x = torch.randn(5, 1, size, size)
    gy = torch.randn(5, 8, size - kernel + 1, size - kernel + 1)
    y_ref, g_ref = _grads(ref, x, gy)
    y_fast, g_fast = _grads(fast, x, gy)
    torch.testing.assert_close(y_fast, y_ref)
    for a, b in zip(g_fast, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_bf16_autocast_matches_conv2d_to_bf16_precision():
    ref, fast = _pair()
    x = torch.randn(16, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    gy = torch.randn(16, 64, 20, 20)
    y_ref, g_ref = _grads(ref, x, gy, autocast=True)
    y_fast, g_fast = _grads(fast, x, gy, autocast=True)
    assert y_fast.dtype == y_ref.dtype == torch.bfloat16
    torch.testing.assert_close(y_fast, y_ref)
    for a, b in zip(g_fast, g_ref):
        assert a.dtype == b.dtype
        torch.testing.assert_close(a, b, rtol=2e-2, atol=2e-2 * b.abs().max().item())


def test_falls_back_where_the_fast_path_does_not_apply():
    torch.manual_seed(0)
    padded = SingleChannelConv2d(1, 4, 3, padding=1)
    x = torch.randn(2, 1, 6, 6, requires_grad=True)
    assert not padded._fast(x) and padded(x).shape == (2, 4, 6, 6)
    plain = SingleChannelConv2d(1, 4, 3)
    assert plain._fast(x) and not plain._fast(x.detach())
    with torch.no_grad():
        assert not plain._fast(x)
    plain.fast_input_grad = False
    assert not plain._fast(x)
