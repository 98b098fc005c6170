"""Layers with a faster gradient for the shapes the paper's networks use on a CPU.

:class:`SingleChannelConv2d` is an ``nn.Conv2d`` (same parameters, same state dict, same forward)
whose gradient with respect to its *input* is computed as one matrix product plus shifted adds
when the input has one channel. An input-level spatial transformer (STN-C0, SL1, DL1) needs that
gradient to reach ``theta`` through the classifier's first convolution (9×9, 1 → 64 channels);
oneDNN's transposed-convolution kernel for a single output channel took about 21 ms of a 70 ms
STN-C0 training step on the 2-core CPU, this formulation about 4 ms (``benchmarks/throughput.py``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _compute_dtype(x: Tensor) -> torch.dtype:
    if x.device.type in ("cpu", "cuda") and torch.is_autocast_enabled(x.device.type):
        return torch.get_autocast_dtype(x.device.type)
    return x.dtype


def _transformed(x: Tensor) -> bool:
    """Whether ``x`` is a ``torch.func`` (vmap, grad) wrapper rather than a plain tensor."""
    check = getattr(torch._C._functorch, "is_functorch_wrapped_tensor", None)
    return bool(check(x)) if check is not None else False


class _SingleChannelConv(torch.autograd.Function):
    """conv2d for ``C_in = 1``, stride 1, no padding/dilation/groups, with a matmul input gradient."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None, dtype: torch.dtype) -> Tensor:
        xc, wc = x.to(dtype), weight.to(dtype)
        bc = None if bias is None else bias.to(dtype)
        with torch.autocast(x.device.type, enabled=False):
            y = F.conv2d(xc, wc, bc)
        ctx.save_for_backward(xc, wc)
        ctx.has_bias = bias is not None
        ctx.dtypes = (x.dtype, weight.dtype)
        return y

    @staticmethod
    def backward(ctx, grad_y: Tensor):
        xc, wc = ctx.saved_tensors
        x_dtype, w_dtype = ctx.dtypes
        grad_y = grad_y.to(wc.dtype)
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[1] or ctx.needs_input_grad[2]:
            _, grad_w, grad_b = torch.ops.aten.convolution_backward(
                grad_y, xc, wc, [wc.shape[0]] if ctx.has_bias else None, [1, 1], [0, 0], [1, 1],
                False, [0, 0], 1, [False, ctx.needs_input_grad[1], ctx.has_bias and ctx.needs_input_grad[2]])
            grad_w = None if grad_w is None else grad_w.to(w_dtype)
            grad_b = None if grad_b is None else grad_b.to(w_dtype)
        if ctx.needs_input_grad[0]:
            n, _, h, w = xc.shape
            c_out, _, kh, kw = wc.shape
            oh, ow = grad_y.shape[-2:]
            # cols[k] = sum_c weight[c, k] * grad_y[:, c]: one (kh·kw × C_out) @ (C_out × N·oh·ow) product,
            # then each kernel offset's plane is added at its shift (the adjoint of the correlation).
            gy = grad_y.permute(1, 0, 2, 3).reshape(c_out, -1)
            cols = (wc.reshape(c_out, kh * kw).t() @ gy).view(kh * kw, n, oh, ow)
            acc = torch.zeros(n, h, w, dtype=torch.float32, device=xc.device)
            for k in range(kh * kw):
                dy, dx = divmod(k, kw)
                acc[:, dy:dy + oh, dx:dx + ow].add_(cols[k])
            grad_x = acc.unsqueeze(1).to(x_dtype)
        return grad_x, grad_w, grad_b, None


class SingleChannelConv2d(nn.Conv2d):
    """``nn.Conv2d`` whose input gradient is fast for one input channel (see the module docstring).

    Identical parameters, state dict and forward values; used where the conditions hold (one input
    channel, stride 1, no padding, dilation 1, one group, an input that needs its gradient) and
    plain ``nn.Conv2d`` otherwise. Set ``fast_input_grad = False`` on an instance to always use the
    plain path (the throughput benchmark does so for its paper-style baseline).

    The fast path runs on the CPU only: it is a CPU trick (a Python loop over the kernel offsets
    would cost one kernel launch each on a GPU, and cuDNN's own gradient is fast there), and not
    under ``torch.func`` transforms (packed training vmaps the network; this Function has no vmap
    rule), where the plain convolution gives the same gradient.
    """

    fast_input_grad: bool = True

    def _fast(self, x: Tensor) -> bool:
        return (self.fast_input_grad and x.device.type == "cpu" and not _transformed(x)
                and x.requires_grad and torch.is_grad_enabled()
                and self.in_channels == 1 and self.groups == 1 and self.stride == (1, 1)
                and self.padding == (0, 0) and self.dilation == (1, 1)
                and self.padding_mode == "zeros" and x.dim() == 4)

    def forward(self, x: Tensor) -> Tensor:
        if not self._fast(x):
            return super().forward(x)
        return _SingleChannelConv.apply(x, self.weight, self.bias, _compute_dtype(x))
