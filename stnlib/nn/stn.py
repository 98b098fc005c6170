"""The spatial transformer module and the paper's localisation heads.

A :class:`SpatialTransformer` predicts a full 2×3 affine ``theta`` from its localisation input and
resamples its transform input with it. It starts as the exact identity: the last layer ``fc_loc`` has zero
weights and bias and a fixed identity buffer is added to its output (book/protocol.md, Networks). The module does not know
which dataset it serves; the padding mode and output size are given by the caller (``stnlib.nn.models``).

The heads (book/protocol.md, Networks) are returned as ``(body, n_features)``: ``body`` ends with a ReLU and a flat
``[N, n_features]`` output, and the ST adds ``fc_loc = Linear(n_features, 6)``. Layer sizes are found by a
dry run on the input shape, so one builder fits every placement.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torch import Tensor

from stnlib.transforms import _check_image, _check_padding, _float_dtype, _no_autocast, warp

__all__ = ["SpatialTransformer", "cnnm_head", "cnnt_head", "svhn_l_head", "LOC_HEADS"]


class SpatialTransformer(nn.Module):
    """Localisation network + affine grid sampler, the identity at initialisation.

    Args:
        localization: the loc body; maps the loc input to ``[N, loc_features]`` (ends with ReLU).
        loc_features: width of the body's output.
        padding_mode: one of :data:`stnlib.transforms.PADDING_MODES` (MNIST ``"border"``, SVHN ``"zeros"``).
        out_size: ``(H, W)`` of the warped output; ``None`` keeps the input size. Translated MNIST halves it
            (60→30 on the input, 26→13 on the feature map), a down-sampling ST as in Jaderberg et al.

    Attributes:
        localization: the body (for STN-DLX it also holds the re-initialised copies of the classifier layers).
        fc_loc: ``Linear(loc_features, 6)``, zero weight and bias at init.
        identity: buffer ``[1, 0, 0, 0, 1, 0]`` added to ``fc_loc``'s output.

    Convention:
        ``theta`` (``[N, 2, 3]``) maps OUTPUT normalised coordinates (``[-1, 1]``, ``align_corners=False``,
        x right, y down) to INPUT sampling coordinates, as ``F.affine_grid``; see :mod:`stnlib.transforms`.
    """

    def __init__(
        self,
        localization: nn.Module,
        loc_features: int,
        *,
        padding_mode: str,
        out_size: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        _check_padding(padding_mode)
        if out_size is not None:
            out_size = (int(out_size[0]), int(out_size[1]))
            if min(out_size) <= 0:
                raise ValueError(f"out_size must be a pair of positive integers, got {out_size}")
        self.localization = localization
        self.fc_loc = nn.Linear(loc_features, 6)
        self.padding_mode = padding_mode
        self.out_size = out_size
        self.register_buffer("identity", torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]))
        self.reset_fc_loc()

    def reset_fc_loc(self) -> None:
        """Zero ``fc_loc`` so that the transformer is exactly the identity again."""
        with torch.no_grad():
            self.fc_loc.weight.zero_()
            self.fc_loc.bias.zero_()

    def theta(self, loc_input: Tensor) -> Tensor:
        """Predict ``theta`` (``[N, 2, 3]``, output→input normalised coordinates) from ``loc_input``."""
        features = self.localization(loc_input).flatten(1)
        # The last layer is tiny (features × 6), so it runs in float32 even under autocast: in bfloat16
        # theta would carry ~3 significant digits, which blurs the warp and the angle read-outs.
        dtype = _float_dtype(features.dtype)
        with _no_autocast(features.device):
            params = self.fc_loc(features.to(dtype)) + self.identity.to(dtype)
        return params.view(-1, 2, 3)

    def forward(self, x: Tensor, loc_input: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Warp ``x`` with the ``theta`` predicted from ``loc_input`` (default ``x``).

        Returns:
            ``(warped, theta)``; ``warped`` has ``x``'s dtype and size ``out_size`` (or ``x``'s size).
        """
        _check_image(x)
        theta = self.theta(x if loc_input is None else loc_input)
        warped = warp(x, theta, out_size=self.out_size, padding_mode=self.padding_mode)
        return warped, theta

    def extra_repr(self) -> str:
        return f"padding_mode={self.padding_mode!r}, out_size={self.out_size}"


# --------------------------------------------------------------------------- localisation heads


def _check_shape(in_shape: tuple[int, int, int]) -> tuple[int, int, int]:
    try:
        c, h, w = (int(v) for v in in_shape)
    except (TypeError, ValueError):
        raise ValueError(f"in_shape must be (C, H, W), got {in_shape!r}") from None
    if min(c, h, w) <= 0:
        raise ValueError(f"in_shape must be (C, H, W) with positive sizes, got {in_shape!r}")
    return c, h, w


def _dry_run(layers: list[nn.Module], in_shape: tuple[int, int, int], what: str) -> tuple[int, ...]:
    """Shape (without batch) after running ``layers`` on a dummy input: sizes by dry run, not by hand."""
    try:
        with torch.no_grad():
            out = nn.Sequential(*layers)(torch.zeros(1, *in_shape))
    except RuntimeError as err:  # a kernel larger than the map
        raise ValueError(f"{what}: input shape {tuple(in_shape)} is too small for this head ({err})") from None
    return tuple(out.shape[1:])


def cnnm_head(in_shape: tuple[int, int, int], width: int = 20) -> tuple[nn.Module, int]:
    """``CNNm`` head (book/protocol.md, Networks): conv5×5(20) → [mp if the conv output side > 20] → ReLU → conv5×5(20) →
    ReLU → flatten → FC 20 → ReLU.

    Fits the 1×28×28 input (20×8×8 before the FC) and the 64×10×10 map after MNIST's first block
    (20×2×2); rotated MNIST's head for C0, C1, SL1 and DL1. Returns ``(body, 20)``.
    """
    c, h, w = _check_shape(in_shape)
    conv1 = nn.Conv2d(c, width, 5)
    side = _dry_run([conv1], (c, h, w), "cnnm_head")[-1]
    layers: list[nn.Module] = [conv1]
    if side > 20:
        layers.append(nn.MaxPool2d(2))
    layers += [nn.ReLU(), nn.Conv2d(width, width, 5), nn.ReLU(), nn.Flatten()]
    flat = _dry_run(layers, (c, h, w), "cnnm_head")[0]
    layers += [nn.Linear(flat, width), nn.ReLU()]
    return nn.Sequential(*layers), width


def cnnt_head(in_shape: tuple[int, int, int], width: int = 20) -> tuple[nn.Module, int]:
    """``CNNt`` head (book/protocol.md, Networks): conv5×5(20) → mp → ReLU → conv5×5(20) → ReLU → [mp if side > 20] →
    flatten → FC 20 → ReLU.

    Fits the 1×60×60 input (20×12×12 before the FC) and the 64×26×26 map after MNIST's first block
    (20×7×7); translated MNIST's head. Returns ``(body, 20)``.
    """
    c, h, w = _check_shape(in_shape)
    layers: list[nn.Module] = [
        nn.Conv2d(c, width, 5),
        nn.MaxPool2d(2),
        nn.ReLU(),
        nn.Conv2d(width, width, 5),
        nn.ReLU(),
    ]
    side = _dry_run(layers, (c, h, w), "cnnt_head")[-1]
    if side > 20:
        layers.append(nn.MaxPool2d(2))
    layers.append(nn.Flatten())
    flat = _dry_run(layers, (c, h, w), "cnnt_head")[0]
    layers += [nn.Linear(flat, width), nn.ReLU()]
    return nn.Sequential(*layers), width


def svhn_l_head(in_shape: tuple[int, int, int], width: int = 32) -> tuple[nn.Module, int]:
    """``SVHN-l`` head (book/protocol.md, Networks, Jaderberg's "ST-CNN Single" loc net): conv5×5 pad 2 (32) → ReLU → mp →
    conv5×5 pad 2 (32) → ReLU → flatten → FC 32 → ReLU → FC 32 → ReLU.

    With the final ``Linear(32→6)``: 1,077,926 parameters on 3×64×64, about 195 k / 197 k / 185 k on the
    maps at X = 3 / 6 / 8. Returns ``(body, 32)``.
    """
    c, h, w = _check_shape(in_shape)
    layers: list[nn.Module] = [
        nn.Conv2d(c, width, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(width, width, 5, padding=2),
        nn.ReLU(),
        nn.Flatten(),
    ]
    flat = _dry_run(layers, (c, h, w), "svhn_l_head")[0]
    layers += [nn.Linear(flat, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU()]
    return nn.Sequential(*layers), width


LOC_HEADS = {"CNNm": cnnm_head, "CNNt": cnnt_head, "SVHN-l": svhn_l_head}
"""Head builders by the names the authors' code gives them (``-l CNNm`` etc.)."""
