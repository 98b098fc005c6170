"""Optional cross-check of stnlib.nn.equivariant against e2cnn (Weiler & Cesa 2019), an established
library for E(2)-equivariant convolutions. Skipped when e2cnn is not installed; it is never a
dependency of stnlib (``pip install e2cnn`` to run these tests).

What is compared, for the cyclic group C4 (``gspaces.Rot2dOnR2(N=4)``, regular representation):

* the group action: e2cnn's ``GeometricTensor.transform(k)`` on regular fields is exactly
  :func:`stnlib.nn.equivariant.rotate_fields` (``torch.rot90`` by k plus a cyclic shift of +k steps),
  i.e. both libraries use the same rotation direction and the same channel layout
  ``[field][orientation]``;
* the layers: e2cnn's ``R2Conv`` trivial -> regular (lifting) and regular -> regular (group
  convolution) expand their steerable basis into ordinary filters. Loading the orientation-0 slice of
  those filters into our :class:`LiftingConv2d` / :class:`GroupConv2d` reproduces e2cnn's whole
  expanded filter bank and its outputs bit for bit. The map goes one way only: e2cnn's filters are
  band-limited combinations of a steerable basis, ours are unconstrained 9×9 (7×7) arrays, so every
  e2cnn C4 layer is one of ours, not conversely.
"""

from __future__ import annotations

import pytest
import torch

e2cnn = pytest.importorskip("e2cnn")
from e2cnn import gspaces  # noqa: E402
from e2cnn import nn as enn  # noqa: E402

from stnlib.nn.equivariant import GroupConv2d, LiftingConv2d, rotate_fields  # noqa: E402

# e2cnn 0.2.3 indexes with a uint8 mask, which recent torch versions deprecate with a UserWarning.
pytestmark = pytest.mark.filterwarnings("ignore:indexing with dtype torch.uint8:UserWarning")

EXACT = 1e-5


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach(), b.detach()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _e2cnn_layers(in_channels: int, mid_fields: int, out_fields: int, n: int = 4):
    """e2cnn lifting (trivial -> regular, 9×9) and group conv (regular -> regular, 7×7), random
    basis coefficients, in eval mode (filters expanded once)."""
    gspace = gspaces.Rot2dOnR2(N=n)
    t_in = enn.FieldType(gspace, in_channels * [gspace.trivial_repr])
    t_mid = enn.FieldType(gspace, mid_fields * [gspace.regular_repr])
    t_out = enn.FieldType(gspace, out_fields * [gspace.regular_repr])
    lift = enn.R2Conv(t_in, t_mid, kernel_size=9)
    gconv = enn.R2Conv(t_mid, t_out, kernel_size=7)
    with torch.no_grad():
        for p in list(lift.parameters()) + list(gconv.parameters()):
            p.normal_()  # the default init leaves the biases at zero; make every part count
    return lift.eval(), gconv.eval(), t_in


@pytest.mark.parametrize("n", [4, 8])
def test_group_action_matches_e2cnn_regular_fields(n):
    """Same direction and layout: rotate_fields(x, k, n) is e2cnn's action of the element
    rotating by 90°·k, i.e. element k·n/4 of C_n."""
    gspace = gspaces.Rot2dOnR2(N=n)
    ftype = enn.FieldType(gspace, 3 * [gspace.regular_repr])
    x = torch.randn(2, 3 * n, 9, 9)
    geo = enn.GeometricTensor(x, ftype)
    for k in range(4):
        assert torch.equal(geo.transform(k * n // 4).tensor, rotate_fields(x, k, n)), k


def test_e2cnn_c4_layers_are_equivariant_with_our_action():
    """e2cnn's C4 lifting + group conv satisfy our identity Γ(rot90(f, k)) == rotate_fields(Γ f, k)."""
    lift, gconv, t_in = _e2cnn_layers(2, 3, 2)
    x = torch.randn(2, 2, 28, 28)
    with torch.no_grad():
        out = gconv(lift(enn.GeometricTensor(x, t_in))).tensor
        for k in range(4):
            rotated = torch.rot90(x, k, dims=(-2, -1))
            out_k = gconv(lift(enn.GeometricTensor(rotated, t_in))).tensor
            assert rel_err(out_k, rotate_fields(out, k)) < EXACT, k


def test_our_layers_reproduce_e2cnn_c4_filters_and_outputs():
    lift, gconv, t_in = _e2cnn_layers(2, 3, 2)
    f_lift, b_lift = lift.expand_parameters()
    f_g, b_g = gconv.expand_parameters()
    ours_lift = LiftingConv2d(2, 3, 9)
    ours_g = GroupConv2d(3, 2, 7)
    with torch.no_grad():
        # e2cnn lays channels out [field][orientation] like we do: keep orientation 0 of each
        # output field (and, for the group conv, every input orientation) as our learned weight.
        ours_lift.weight.copy_(f_lift.view(3, 4, 2, 9, 9)[:, 0])
        ours_lift.bias.copy_(b_lift.view(3, 4)[:, 0])
        ours_g.weight.copy_(f_g.view(2, 4, 3, 4, 7, 7)[:, 0])
        ours_g.bias.copy_(b_g.view(2, 4)[:, 0])
        # e2cnn's bias is one value per regular field, shared by its orientations, as ours
        assert torch.equal(b_lift.view(3, 4), b_lift.view(3, 4)[:, :1].expand(3, 4))
        # the other three orientations of e2cnn's filter bank are exactly our rotated copies
        assert rel_err(ours_lift.expanded_weight(), f_lift) < EXACT
        assert rel_err(ours_g.expanded_weight(), f_g) < EXACT
        x = torch.randn(2, 2, 28, 28)
        theirs_a = lift(enn.GeometricTensor(x, t_in))
        theirs_b = gconv(theirs_a).tensor
        ours_a = ours_lift(x)
        assert ours_a.shape == theirs_a.tensor.shape == (2, 12, 20, 20)
        assert rel_err(ours_a, theirs_a.tensor) < EXACT
        assert rel_err(ours_g(ours_a), theirs_b) < EXACT


def test_the_crosscheck_can_fail():
    """Guard against a vacuous comparison: a mismatched layout (orientation-major instead of
    field-major) or the opposite rotation direction is detected."""
    lift, _, t_in = _e2cnn_layers(1, 3, 1)
    x = torch.randn(1, 1, 28, 28)
    with torch.no_grad():
        a = lift(enn.GeometricTensor(x, t_in)).tensor
        transposed = a.view(1, 3, 4, 20, 20).transpose(1, 2).reshape(1, 12, 20, 20)
        assert rel_err(transposed, a) > 0.1
        turned = lift(enn.GeometricTensor(torch.rot90(x, 1, dims=(-2, -1)), t_in)).tensor
        assert rel_err(turned, rotate_fields(a, -1)) > 0.1
