"""Rotation-equivariant feature maps and a spatial transformer that can align them.

The paper's argument (its Eq. 1 and the W/M example) is that rotating an image rotates a CNN's feature
maps *and* changes which channel fires, so a purely spatial warp of the feature maps cannot undo it.
This module shows the constructive side: in a group-equivariant CNN (Cohen & Welling 2016) the
"change of channel" is known in advance, a cyclic shift of an orientation axis, so a feature-map
spatial transformer that warps space *and* shifts that axis can align feature maps exactly (for
multiples of 90°) where STN-C1 cannot.

Contents

* group action: :func:`rotate_fields` (exact, multiples of 90°), :func:`shift_orientations` and
  :func:`rotate_fields_continuous` (any angle, the natural interpolated extension);
* layers: :class:`LiftingConv2d` (image -> C_n fields), :class:`GroupConv2d` (C_n -> C_n),
  :func:`orientation_pool` (C_n fields -> invariant maps);
* :class:`EquivariantFeatureST`: a feature-map ST for C_n feature maps;
* :class:`EquivariantClassifier` and :func:`build_equivariant_model` for the names ``"ecnn"`` and
  ``"stn-ec1"`` on rotated (and translated) MNIST, with the interface of :class:`stnlib.nn.models.Classifier`.

**Convention (feature-map layout, used by every function here).** A C_n feature map ("fields")
is an ordinary ``N×(F·n)×H×W`` tensor whose channels are laid out as ``[field][orientation]``:
channel ``c = f·n + r`` holds field ``f`` at orientation ``r``, i.e. the response of field ``f``'s
filter rotated by ``r·360/n`` degrees counter-clockwise *as displayed* (row 0 at the top). It can be
viewed as ``N×F×n×H×W`` with :func:`split_fields`. ``n`` (``n_orientations``) is 4 for C4 (exact)
and may be any positive multiple of 4 (8 gives C8 with interpolated 45° filters, approximate).
Angles are in degrees, positive = counter-clockwise as displayed, so ``rotate(x, 90) ==
torch.rot90(x, 1, dims=(-2, -1))`` as in :mod:`stnlib.transforms`.

**The group action.** Rotating the input image by ``k·360/n`` degrees acts on C_n fields as a spatial
rotation by the same angle together with a cyclic shift of the orientation axis by ``+k`` steps:
output orientation ``r`` takes what was at orientation ``r - k`` (``torch.roll(…, k)``)::

    Γ(rotate(f, k·360/n)) == rotate_fields(Γ f, k)          (exact for multiples of 90°)

**When the identity is exact (float precision).** Valid (unpadded) or symmetrically padded stride-1
convolution with the filter-rotation scheme below commutes with ``torch.rot90`` for every image and
kernel size, odd or even. A stride ``s`` keeps it exact only when ``(H + 2·padding - kernel) % s == 0``
(the sampled grid is then symmetric). 2×2 max-pooling with stride 2 is exact on **even** sizes and
not on odd ones (the dropped last row/column lands on a different side after rotation). ReLU and
orientation pooling are pointwise in space and commute always. Hence the MNIST block
``28 -(9×9)-> 20 -(pool)-> 10 -(7×7)-> 4 -(pool)-> 2`` is exactly C4-equivariant.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from stnlib.datasets import get_dataset
from stnlib.nn.network import Network
from stnlib.nn.stn import SpatialTransformer, cnnm_head, cnnt_head
from stnlib.transforms import rotate, theta_rotation_deg, warp

__all__ = [
    "DEFAULT_FIELDS",
    "EQUIVARIANT_DATASETS",
    "EQUIVARIANT_MODELS",
    "EquivariantClassifier",
    "EquivariantFeatureST",
    "GroupConv2d",
    "LiftingConv2d",
    "OrientationPool",
    "build_equivariant_model",
    "equivariant_parameter_count",
    "orientation_pool",
    "rotate_fields",
    "rotate_fields_continuous",
    "rotate_filters",
    "shift_orientations",
    "split_fields",
]

EQUIVARIANT_MODELS: tuple[str, ...] = ("ecnn", "stn-ec1")
EQUIVARIANT_DATASETS: tuple[str, ...] = ("mnist-rot", "mnist-trans")

# Field counts of the MNIST equivariant CNN. 16 lifted fields give the same 64 channels at placement 1
# as the plain CNN (so the ST's loc head is the very head of STN-C1), and 64 output fields give the
# group conv exactly the parameter count of the CNN's conv2 (64·16·4·7·7 == 64·64·7·7) and, after
# orientation pooling, the same 64×2×2 = 256 read-out features. The CNN has 208,586 parameters; the
# ECNN 204,650 (conv1 has 16 free filters instead of 64: the other 48 channels are their rotations).
DEFAULT_FIELDS: tuple[int, int] = (16, 64)


# --------------------------------------------------------------------------------------------------
# input checks


def _check_n_orientations(n_orientations: int) -> int:
    if not isinstance(n_orientations, int) or isinstance(n_orientations, bool) or n_orientations < 4 \
            or n_orientations % 4 != 0:
        raise ValueError(
            f"n_orientations must be a positive multiple of 4 (4 = C4, exact; 8 = C8, interpolated), "
            f"got {n_orientations!r}")
    return n_orientations


def split_fields(x: Tensor, n_orientations: int = 4) -> Tensor:
    """View a C_n feature map ``N×(F·n)×H×W`` as ``N×F×n×H×W`` (no copy).

    **Convention:** channel ``f·n + r`` is field ``f`` at orientation ``r`` (``r·360/n`` degrees CCW
    as displayed). Raises ValueError if ``x`` is not 4-D or its channels are not a multiple of ``n``.
    """
    _check_n_orientations(n_orientations)
    if not isinstance(x, Tensor) or x.dim() != 4:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"expected a C{n_orientations} feature map N×(F·{n_orientations})×H×W, got {shape}")
    n, c, h, w = x.shape
    if c % n_orientations != 0:
        raise ValueError(
            f"feature map has {c} channels, not a multiple of n_orientations={n_orientations}; "
            f"C{n_orientations} fields are laid out [field][orientation]")
    return x.view(n, c // n_orientations, n_orientations, h, w)


def _check_square(x: Tensor, what: str) -> None:
    if x.shape[-1] != x.shape[-2]:
        raise ValueError(f"{what} needs square feature maps (rotation by 90° must map the grid onto itself), "
                         f"got H×W = {x.shape[-2]}×{x.shape[-1]}")


# --------------------------------------------------------------------------------------------------
# the group action on feature maps


def rotate_fields(x: Tensor, k: int, n_orientations: int = 4) -> Tensor:
    """Rotate C_n feature maps by ``k`` quarter turns: the exact group action of a 90°·k input rotation.

    **Convention:** ``x`` is ``N×(F·n)×H×W`` laid out ``[field][orientation]`` (square H == W).
    ``k`` counts quarter turns counter-clockwise as displayed (k=1 is ``torch.rot90(·, 1, dims=(-2,-1))``,
    the same as ``stnlib.transforms.rotate(·, 90)``); negative ``k`` turns clockwise. The spatial part
    is ``torch.rot90`` (no interpolation, no padding); the orientation axis is cyclically shifted by
    ``k·n/4`` steps so that output orientation ``r`` holds input orientation ``r - k·n/4``.
    Exact: ``rotate_fields(rotate_fields(x, 1), 3) == x`` bit for bit.
    """
    if not isinstance(k, int) or isinstance(k, bool):
        raise ValueError(f"k must be an int number of quarter turns, got {k!r}; "
                         "use rotate_fields_continuous for arbitrary angles")
    fields = split_fields(x, n_orientations)
    _check_square(x, "rotate_fields")
    steps = k * (n_orientations // 4)
    out = torch.roll(torch.rot90(fields, k, dims=(-2, -1)), shifts=steps, dims=2)
    return out.reshape(x.shape)


def shift_orientations(x: Tensor, steps: Tensor | float, n_orientations: int = 4) -> Tensor:
    """Cyclically shift the orientation axis by a (fractional, per-example) number of steps.

    **Convention:** ``x`` is ``N×(F·n)×H×W`` laid out ``[field][orientation]``; ``steps`` is a float
    or a Tensor[N] in orientation steps (one step = ``360/n`` degrees; positive = the shift that
    accompanies a counter-clockwise rotation of the content): output orientation ``r`` takes input
    orientation ``r - steps``. A non-integer shift linearly interpolates the two nearest integer
    shifts: with ``k = floor(steps)``, ``a = steps - k``: ``out[r] = (1-a)·x[r-k] + a·x[r-k-1]``.
    This is exact (bit for bit) for integer steps, continuous and piecewise linear in ``steps``, and
    differentiable in ``steps`` (gradient reaches ``steps`` through ``a``). Space is not touched.
    """
    fields = split_fields(x, n_orientations)
    n, f, o, h, w = fields.shape
    steps_t = torch.as_tensor(steps, device=x.device)
    if not torch.is_floating_point(steps_t):
        steps_t = steps_t.to(torch.float32)
    if steps_t.dim() == 0:
        steps_t = steps_t.expand(n)
    if steps_t.shape != (n,):
        raise ValueError(f"steps must be a float or a Tensor[N] with N={n}, got shape {tuple(steps_t.shape)}")
    base = torch.floor(steps_t)
    frac = (steps_t - base).to(x.dtype).view(n, 1, 1, 1, 1)
    orient = torch.arange(o, device=x.device)
    idx0 = torch.remainder(orient.view(1, o) - base.to(torch.long).view(n, 1), o)  # N×n
    idx1 = torch.remainder(idx0 - 1, o)
    batch = torch.arange(n, device=x.device).view(n, 1)
    by_orient = fields.transpose(1, 2)  # N×n×F×H×W so advanced indexing picks orientations per example
    x0 = by_orient[batch, idx0].transpose(1, 2)
    x1 = by_orient[batch, idx1].transpose(1, 2)
    out = (1 - frac) * x0 + frac * x1
    return out.reshape(x.shape)


def rotate_fields_continuous(x: Tensor, angle_deg: Tensor | float, n_orientations: int = 4, *,
                             padding_mode: str = "zeros") -> Tensor:
    """Rotate C_n feature maps by an arbitrary angle: spatial warp plus interpolated orientation shift.

    **Convention:** ``x`` is ``N×(F·n)×H×W`` laid out ``[field][orientation]``; ``angle_deg`` is a
    float or Tensor[N] in degrees, positive = counter-clockwise as displayed. Space is rotated about
    the image centre with :func:`stnlib.transforms.rotate` (bilinear, normalised coords,
    ``align_corners=False``, ``padding_mode`` as given: "zeros", "border" or "reflection"); the
    orientation axis is shifted by ``angle_deg / (360/n)`` steps with :func:`shift_orientations`.

    This is the natural extension of the group action from the grid of ``360/n``-degree rotations to
    all angles, and it is only approximate off that grid: the true response of a lifted field to a
    rotation by an angle between two orientations is not the linear blend of its two neighbours, and
    bilinear resampling smooths. At multiples of 90° it equals :func:`rotate_fields` to float precision
    (the warp lands on pixel centres), and it is continuous in the angle.
    """
    split_fields(x, n_orientations)  # validates layout before warping
    angle = torch.as_tensor(angle_deg, dtype=torch.float32, device=x.device)
    if angle.dim() == 0:
        angle = angle.expand(x.shape[0])
    rotated = rotate(x, angle, padding_mode=padding_mode)
    return shift_orientations(rotated, angle / (360.0 / n_orientations), n_orientations)


def orientation_pool(x: Tensor, n_orientations: int = 4) -> Tensor:
    """Max over the orientation axis: ``N×(F·n)×H×W`` -> ``N×F×H×W`` rotation-invariant-in-channel maps.

    **Convention:** input laid out ``[field][orientation]``. The output's channels no longer change
    meaning under input rotations: ``orientation_pool(rotate_fields(x, k)) == rot90(orientation_pool(x), k)``
    exactly; only the spatial layout still rotates.
    """
    return split_fields(x, n_orientations).amax(dim=2)


# --------------------------------------------------------------------------------------------------
# layers


def rotate_filters(weight: Tensor, r: int, n_orientations: int = 4) -> Tensor:
    """Rotate filters over their last two (spatial) axes by ``r·360/n`` degrees counter-clockwise.

    **Convention:** ``weight`` is ``…×k×k`` (row 0 at the top, as displayed). Whole quarter turns use
    ``torch.rot90`` (exact). For n > 4 the remaining ``(r mod n/4)·360/n`` degrees are applied first by
    bilinear resampling (:func:`stnlib.transforms.rotate`, ``align_corners=False``, zero padding, so the
    corners of the kernel are cut and high frequencies damped); the quarter turns come after, so that
    ``rot90(rotate_filters(w, r)) == rotate_filters(w, r + n/4)`` exactly and the 90° subgroup of
    C8 stays exact.
    """
    quarter = n_orientations // 4
    turns, rest = divmod(int(r), quarter)
    if rest:
        k1, k2 = weight.shape[-2:]
        flat = weight.reshape(1, -1, k1, k2)
        weight = rotate(flat, rest * 360.0 / n_orientations, padding_mode="zeros").reshape(weight.shape)
    return torch.rot90(weight, turns, dims=(-2, -1))


def _kaiming_init_(weight: Tensor, bias: Tensor | None) -> None:
    # Same scheme as nn.Conv2d.reset_parameters; fan_in = size(1)·prod(size[2:]) counts input
    # orientations as input channels, exactly like a conv over F_in·n channels.
    nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        fan_in = weight[0].numel()
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
        nn.init.uniform_(bias, -bound, bound)


class _FieldConv(nn.Module):
    """Shared plumbing: shape checks, the expanded weight, and F.conv2d."""

    in_channels: int
    n_orientations: int

    def __init__(self, kernel_size: int, stride: int, padding: int, n_orientations: int) -> None:
        super().__init__()
        for label, value, low in (("kernel_size", kernel_size, 1), ("stride", stride, 1), ("padding", padding, 0)):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"{label} must be an int >= {low}, got {value!r}")
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        self.n_orientations = _check_n_orientations(n_orientations)

    def expanded_weight(self) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def expanded_bias(self) -> Tensor | None:
        if self.bias is None:
            return None
        # One bias per field, shared by its orientations: a per-orientation bias would break equivariance.
        return self.bias.repeat_interleave(self.n_orientations)

    def forward(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor) or x.dim() != 4 or x.shape[1] != self.in_channels:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"{type(self).__name__} expects N×{self.in_channels}×H×W input, got {shape}")
        return F.conv2d(x, self.expanded_weight(), self.expanded_bias(), stride=self.stride, padding=self.padding)


class LiftingConv2d(_FieldConv):
    """Lifting convolution: an image (plain channels) to C_n fields.

    One learned filter bank ``weight`` (``out_fields×in_channels×k×k``) is applied in its n rotated
    copies; output orientation ``r`` uses the filters rotated by ``r·360/n`` degrees
    (:func:`rotate_filters`; exact ``torch.rot90`` for C4). Bias: one per field.

    **Convention:** input ``N×in_channels×H×W``, output ``N×(out_fields·n)×H'×W'`` laid out
    ``[field][orientation]``, ``H' = (H + 2·padding - kernel_size) // stride + 1`` (cross-correlation,
    like ``nn.Conv2d``, zero padding). Equivariance
    ``lift(rot90(f, k)) == rotate_fields(lift(f), k)`` is exact for square inputs of any size and
    any kernel size when stride is 1, and for stride s when ``(H + 2·padding - kernel_size) % s == 0``.
    """

    def __init__(self, in_channels: int, out_fields: int, kernel_size: int, *, stride: int = 1,
                 padding: int = 0, bias: bool = True, n_orientations: int = 4) -> None:
        super().__init__(kernel_size, stride, padding, n_orientations)
        for label, value in (("in_channels", in_channels), ("out_fields", out_fields)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{label} must be a positive int, got {value!r}")
        self.in_channels = in_channels
        self.out_fields = out_fields
        self.out_channels = out_fields * n_orientations
        self.weight = nn.Parameter(torch.empty(out_fields, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.empty(out_fields)) if bias else None
        _kaiming_init_(self.weight, self.bias)

    def expanded_weight(self) -> Tensor:
        """The ``(out_fields·n)×in_channels×k×k`` weight of the equivalent ordinary convolution."""
        rotated = [rotate_filters(self.weight, r, self.n_orientations) for r in range(self.n_orientations)]
        return torch.stack(rotated, dim=1).reshape(self.out_channels, self.in_channels,
                                                   self.kernel_size, self.kernel_size)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_fields} fields × C{self.n_orientations}, "
                f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}")


class GroupConv2d(_FieldConv):
    """Group convolution C_n fields -> C_n fields (Cohen & Welling 2016, the p4 case for n=4).

    The learned filter ``weight`` is ``out_fields×in_fields×n×k×k`` (its third axis: input
    orientation, relative to the output orientation). Output orientation ``r`` uses it with the
    spatial axes rotated by ``r·360/n`` degrees AND the input-orientation axis cyclically shifted by
    ``r`` (entry ``s`` of the shifted filter is entry ``s - r`` of the learned one). Bias: one per field.

    **Convention:** input ``N×(in_fields·n)×H×W`` and output ``N×(out_fields·n)×H'×W'``, both laid out
    ``[field][orientation]``; cross-correlation with zero padding, sizes as in ``nn.Conv2d``.
    ``gconv(rotate_fields(x, k)) == rotate_fields(gconv(x), k)`` exactly under the same size
    conditions as :class:`LiftingConv2d`.
    """

    def __init__(self, in_fields: int, out_fields: int, kernel_size: int, *, stride: int = 1,
                 padding: int = 0, bias: bool = True, n_orientations: int = 4) -> None:
        super().__init__(kernel_size, stride, padding, n_orientations)
        for label, value in (("in_fields", in_fields), ("out_fields", out_fields)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{label} must be a positive int, got {value!r}")
        self.in_fields = in_fields
        self.out_fields = out_fields
        self.in_channels = in_fields * n_orientations
        self.out_channels = out_fields * n_orientations
        self.weight = nn.Parameter(torch.empty(out_fields, in_fields, n_orientations, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.empty(out_fields)) if bias else None
        _kaiming_init_(self.weight, self.bias)

    def expanded_weight(self) -> Tensor:
        """The ``(out_fields·n)×(in_fields·n)×k×k`` weight of the equivalent ordinary convolution."""
        n = self.n_orientations
        per_orientation = [rotate_filters(torch.roll(self.weight, shifts=r, dims=2), r, n) for r in range(n)]
        return torch.stack(per_orientation, dim=1).reshape(self.out_channels, self.in_channels,
                                                           self.kernel_size, self.kernel_size)

    def extra_repr(self) -> str:
        return (f"{self.in_fields} -> {self.out_fields} fields × C{self.n_orientations}, "
                f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}")


class OrientationPool(nn.Module):
    """Module form of :func:`orientation_pool` (for use inside ``nn.Sequential``)."""

    def __init__(self, n_orientations: int = 4) -> None:
        super().__init__()
        self.n_orientations = _check_n_orientations(n_orientations)

    def forward(self, x: Tensor) -> Tensor:
        return orientation_pool(x, self.n_orientations)

    def extra_repr(self) -> str:
        return f"n_orientations={self.n_orientations}"


# --------------------------------------------------------------------------------------------------
# the equivariant feature-map spatial transformer


class EquivariantFeatureST(SpatialTransformer):
    """A spatial transformer for C_n feature maps: warps space AND shifts the orientation axis.

    A :class:`stnlib.nn.stn.SpatialTransformer` (same ``localization``, zero-initialised ``fc_loc`` plus
    the ``identity`` buffer, so a fresh module is exactly the identity; same ``theta``) with the one
    thing a plain feature-map ST lacks: after warping the maps with ``theta``, it reads the content
    rotation of ``theta`` (:func:`stnlib.transforms.theta_rotation_deg`, degrees CCW applied to the
    content) and shifts the orientation axis by the same angle (:func:`shift_orientations`,
    ``angle/(360/n)`` steps, interpolated between neighbours off the grid). Translation and scale in
    ``theta`` act on space only, which is right for them: they do not change which orientation channel
    fires. A shear does, by different amounts for different orientations, which no cyclic shift can
    express; only the rotation that :func:`~stnlib.transforms.theta_rotation_deg` reads from it reaches
    the orientation axis.

    **Convention:** ``x`` is ``N×(F·n)×H×W`` laid out ``[field][orientation]``; theta is N×2×3 and maps
    output normalised coords to input sampling coords (``F.affine_grid``, ``align_corners=False``),
    ``padding_mode`` as given ("border" for MNIST). If ``theta`` is the rotation that undoes an input
    rotation by 90°·k (reads ``-90·k``), the output equals the feature maps of the unrotated input
    (float precision). ``pool_orientations=True`` feeds the loc head ``orientation_pool(x)`` instead of
    ``x`` (the loc head must then be built for ``F×H×W``).
    """

    def __init__(self, localization: nn.Module, loc_features: int, *, n_orientations: int = 4,
                 padding_mode: str = "border", out_size: tuple[int, int] | None = None,
                 pool_orientations: bool = False) -> None:
        super().__init__(localization, loc_features, padding_mode=padding_mode, out_size=out_size)
        self.n_orientations = _check_n_orientations(n_orientations)
        self.pool_orientations = bool(pool_orientations)

    def loc_input(self, x: Tensor) -> Tensor:
        """What the localisation head sees for feature maps ``x``."""
        return orientation_pool(x, self.n_orientations) if self.pool_orientations else x

    def align(self, x: Tensor, theta: Tensor) -> Tensor:
        """Apply a given theta to C_n feature maps: spatial warp plus the matching orientation shift."""
        split_fields(x, self.n_orientations)
        warped = warp(x, theta, out_size=self.out_size, padding_mode=self.padding_mode)
        steps = theta_rotation_deg(theta) / (360.0 / self.n_orientations)
        return shift_orientations(warped, steps, self.n_orientations)

    def forward(self, x: Tensor, loc_input: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``(aligned feature maps, theta)``; ``loc_input`` defaults to :meth:`loc_input` of ``x``."""
        split_fields(x, self.n_orientations)
        theta = self.theta(self.loc_input(x) if loc_input is None else loc_input)
        return self.align(x, theta), theta

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, C{self.n_orientations}, pool_orientations={self.pool_orientations}"


# --------------------------------------------------------------------------------------------------
# the classifier


_DATASET_CHOICES = ", ".join(EQUIVARIANT_DATASETS)
_MODEL_CHOICES = ", ".join(EQUIVARIANT_MODELS)


def _check_name_dataset(name: str, dataset: str) -> None:
    if dataset not in EQUIVARIANT_DATASETS:
        raise ValueError(f"unknown dataset {dataset!r} for the equivariant models; valid: {_DATASET_CHOICES}")
    if name not in EQUIVARIANT_MODELS:
        raise ValueError(f"unknown equivariant model {name!r}; valid: {_MODEL_CHOICES}")


class EquivariantClassifier(Network):
    """C4-equivariant counterpart of the MNIST CNN, optionally with an equivariant feature-map ST.

    Layers (rotated MNIST, 1×28×28): lifting conv 9×9 (16 fields = 64 channels) -> max-pool 2 -> ReLU
    -> [EquivariantFeatureST, "stn-ec1" only, 64×10×10 -> 64×10×10] -> group conv 7×7 (64 fields =
    256 channels) -> max-pool 2 -> ReLU -> orientation pool (64×2×2) -> flatten (256) -> Linear(→10).
    Without the ST the network is exactly equivariant up to its read-out for 90° steps: the
    orientation-pooled 64×2×2 features of ``rot90(x)`` are those of ``x`` turned by 90° in space. The
    Linear read-out over the 2×2 positions is not invariant (as in the CNN), so a "6" and a "9" stay
    distinguishable, and aligning the maps before layer 2 is still useful.

    The loc head is ``stnlib.nn.stn.cnnm_head`` (rotated MNIST) or ``cnnt_head`` (translated MNIST,
    ST output halved like STN-C1 there) on the *full* 64-channel fields: it is then the very head of
    STN-C1 (same input shape, same 43,786 parameters on rotated MNIST), so the comparison with STN-C1
    changes only the features and the orientation shift, and the head sees which orientation channel
    fires, the direct evidence of how the digit is turned, which orientation pooling would discard.

    Same interface as :class:`stnlib.nn.models.Classifier`: ``name``, ``dataset``, ``kind`` ("c" for
    "stn-ec1", a feature-map ST after layer 1; "cnn" for "ecnn"), ``placement`` (1 / 0),
    ``forward``, ``forward_with_theta``, ``transform``, ``first_layer``, ``localization_parameters``,
    ``classifier_parameters``, ``param_groups``, ``width`` (1.0), ``st``. Extra: ``equivariant = True``,
    ``n_orientations``, ``input_shape``. Note for measures written for plain CNNs: rotating these feature
    maps back needs :func:`rotate_fields_continuous` (space and orientation), not a spatial rotation.
    """

    equivariant = True

    def __init__(self, name: str, dataset: str, *, fields: tuple[int, int] = DEFAULT_FIELDS,
                 n_orientations: int = 4, pool_orientations_for_loc: bool = False) -> None:
        super().__init__()
        _check_name_dataset(name, dataset)
        self.name = name
        self.dataset = dataset
        with_st = name == "stn-ec1"
        self.kind = "c" if with_st else "cnn"
        self.placement = 1 if with_st else 0
        self.n_orientations = _check_n_orientations(n_orientations)
        self.num_classes = get_dataset(dataset).classes
        n = n_orientations
        f1, f2 = fields
        channels, height, width = self.input_shape

        self.block1 = nn.Sequential(LiftingConv2d(channels, f1, 9, n_orientations=n), nn.MaxPool2d(2), nn.ReLU())
        with torch.no_grad():
            shape1 = tuple(self.block1(torch.zeros(1, channels, height, width)).shape[1:])
        self.st: EquivariantFeatureST | None = None
        st_size = shape1[1:]
        if with_st:
            translated = dataset == "mnist-trans"
            # Like STN-C1 on translated MNIST, the ST output is spatially halved (13×13 from 26×26).
            out_size = (shape1[1] // 2, shape1[2] // 2) if translated else None
            loc_shape = (f1,) + shape1[1:] if pool_orientations_for_loc else shape1
            body, loc_features = (cnnt_head if translated else cnnm_head)(loc_shape)
            self.st = EquivariantFeatureST(body, loc_features, n_orientations=n, padding_mode="border",
                                           out_size=out_size, pool_orientations=pool_orientations_for_loc)
            st_size = out_size or st_size
        self.block2 = nn.Sequential(GroupConv2d(f1, f2, 7, n_orientations=n), nn.MaxPool2d(2), nn.ReLU(),
                                    OrientationPool(n))
        with torch.no_grad():
            feats = self.block2(torch.zeros((1, shape1[0]) + tuple(st_size))).numel()
        self.fc = nn.Linear(feats, self.num_classes)

    @property
    def conv1(self) -> LiftingConv2d:
        """The lifting convolution (first module of ``block1``)."""
        return self.block1[0]

    @property
    def conv2(self) -> GroupConv2d:
        """The group convolution (first module of ``block2``)."""
        return self.block2[0]

    # -- forward passes -----------------------------------------------------------------------------
    def first_layer(self, x: Tensor) -> Tensor:
        """C4 fields after the first block (lifting conv + pool + ReLU): N×64×10×10 on 28×28 input,
        laid out ``[field][orientation]``. Like ``Classifier.first_layer`` it accepts any spatial size."""
        self._check_channels(x, "first_layer")
        return self.block1(x)

    def transform(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(ST output, theta)``: the aligned (warped + orientation-shifted) fields after layer 1.

        Raises ValueError for "ecnn", which has no ST (as ``Classifier.transform`` does for "cnn").
        """
        self._check_input(x)
        self._require_st()
        return self.st(self.block1(x))

    def forward_with_theta(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        """``(logits [N,10], theta N×2×3 or None for "ecnn")``."""
        self._check_input(x)
        a = self.block1(x)
        theta = None
        if self.st is not None:
            a, theta = self.st(a)
        return self.fc(self.block2(a).flatten(1)), theta

    def extra_repr(self) -> str:
        return f"name={self.name!r}, dataset={self.dataset!r}, C{self.n_orientations}"


def build_equivariant_model(name: str, dataset: str, **options) -> EquivariantClassifier:
    """Build "ecnn" (C4-equivariant CNN) or "stn-ec1" (the same with an equivariant feature-map ST
    after layer 1) for "mnist-rot" or "mnist-trans". ``options`` go to :class:`EquivariantClassifier`.

    Raises ValueError naming the valid choices for an unknown name or dataset.
    """
    if not isinstance(name, str) or not isinstance(dataset, str):
        raise ValueError(f"name and dataset must be strings, got {name!r}, {dataset!r}; "
                         f"valid names: {_MODEL_CHOICES}; datasets: {_DATASET_CHOICES}")
    _check_name_dataset(name, dataset)
    return EquivariantClassifier(name, dataset, **options)


def equivariant_parameter_count(fields: tuple[int, int] = DEFAULT_FIELDS, *, in_channels: int = 1,
                                read_out_positions: int = 4, loc_parameters: int = 0) -> int:
    """Closed-form parameter count of :class:`EquivariantClassifier` (C4; for cross-checks and prose).

    lifting ``F1·C·81 + F1`` + group conv ``F2·F1·4·49 + F2`` + read-out ``(F2·positions)·10 + 10`` +
    the ST's loc parameters (43,786 for the cnnm head on 64×10×10). Rotated MNIST: 204,650 / 248,436.
    """
    f1, f2 = fields
    return (f1 * in_channels * 81 + f1) + (f2 * f1 * 4 * 49 + f2) + (f2 * read_out_positions * 10 + 10) \
        + loc_parameters

