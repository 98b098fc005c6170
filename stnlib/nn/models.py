"""The paper's classifiers and the one factory :func:`build_model`.

Model names (book/protocol.md, Networks):

* ``cnn`` — the plain classifier.
* ``stn-c{X}`` — the ST sits after the first X blocks and transforms the FEATURE MAP there:
  ``a = pre(x); theta = loc(a); logits = head(post(ST(a)))``. ``stn-c0`` transforms the input.
* ``stn-sl{X}`` — "shared layers": theta comes from the classifier's OWN first X blocks, but the ST warps
  the INPUT image, and the whole classifier then runs on the warped image (``pre`` runs twice).
* ``stn-dl{X}`` — "deep localisation": the loc net starts with independently initialised copies of the
  first X blocks; the ST warps the input and the whole classifier runs on it.

Placement X counts blocks. MNIST (book/protocol.md, Networks) has two: ``[conv9×9(64), mp, ReLU]`` and
``[conv7×7(64), mp, ReLU]``, so X = 1 is the code's layer index p = 3 (a 64×10×10 map on 28×28 input).
SVHN (book/protocol.md, Networks) has eight conv blocks and X ∈ {0, 3, 6, 8}.
"""

from __future__ import annotations

import copy
import re

import torch
import torch.nn as nn
from torch import Tensor

from stnlib.datasets import DATASETS, SVHN_POSITIONS, get_dataset
from stnlib.nn.layers import SingleChannelConv2d
from stnlib.nn.network import Network
from stnlib.nn.stn import LOC_HEADS, SpatialTransformer

__all__ = ["valid_models", "build_model", "loc_head_name", "Classifier", "SequenceHead"]

_PLACEMENTS: dict[str, dict[str, tuple[int, ...]]] = {
    "mnist-rot": {"c": (0, 1), "sl": (1,), "dl": (1,)},
    "mnist-trans": {"c": (0, 1), "sl": (1,), "dl": (1,)},
    "svhn": {"c": (0, 3, 6, 8), "sl": (3, 6, 8), "dl": (3, 6, 8)},
}

_PADDING = {"mnist-rot": "border", "mnist-trans": "border", "svhn": "zeros"}
#: The authors' localisation head per dataset (keys of :data:`stnlib.nn.stn.LOC_HEADS`).
_LOC_HEAD = {"mnist-rot": "CNNm", "mnist-trans": "CNNt", "svhn": "SVHN-l"}

SVHN_CHANNELS = (48, 64, 128, 160, 192, 192, 192, 192)
SVHN_POOL_AFTER = (1, 3, 5, 7)
SVHN_HIDDEN = 3072
_NAME_RE = re.compile(r"^stn-(c|sl|dl)(\d+)$")


def _check_dataset(dataset: str) -> None:
    get_dataset(dataset)


def loc_head_name(dataset: str) -> str:
    """The authors' name of the localisation head used on ``dataset`` (``CNNm``, ``CNNt``, ``SVHN-l``)."""
    _check_dataset(dataset)
    return _LOC_HEAD[dataset]


def valid_models(dataset: str) -> tuple[str, ...]:
    """Model names that :func:`build_model` accepts for ``dataset``.

    ``mnist-rot``/``mnist-trans``: cnn, stn-c0, stn-c1, stn-sl1, stn-dl1.
    ``svhn``: cnn, stn-c0, stn-c3/6/8, stn-sl3/6/8, stn-dl3/6/8.
    """
    _check_dataset(dataset)
    names = ["cnn"]
    for kind in ("c", "sl", "dl"):
        names += [f"stn-{kind}{x}" for x in _PLACEMENTS[dataset][kind]]
    return tuple(names)


# --------------------------------------------------------------------------- building blocks


def _mnist_blocks(in_channels: int) -> nn.Sequential:
    return nn.Sequential(
        # The first conv's input gradient (needed by input-level STs) is slow in oneDNN for 1 channel.
        nn.Sequential(SingleChannelConv2d(in_channels, 64, 9), nn.MaxPool2d(2), nn.ReLU()),
        nn.Sequential(nn.Conv2d(64, 64, 7), nn.MaxPool2d(2), nn.ReLU()),
    )


def _scaled(n: int, width: float) -> int:
    return max(1, int(round(n * width)))


def _svhn_blocks(in_channels: int, width: float, dropout: float) -> nn.Sequential:
    blocks = []
    c_in = in_channels
    for index, channels in enumerate(SVHN_CHANNELS, start=1):
        c_out = _scaled(channels, width)
        layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 5, padding=2), nn.ReLU()]
        if index in SVHN_POOL_AFTER:
            layers.append(nn.MaxPool2d(2))
        if index > 1 and dropout > 0:
            layers.append(nn.Dropout(dropout))
        blocks.append(nn.Sequential(*layers))
        c_in = c_out
    return nn.Sequential(*blocks)


class SequenceHead(nn.Module):
    """SVHN head: flatten → 3 × (FC → ReLU → Dropout 0.5) → 5 parallel ``Linear(→11)``.

    Returns logits ``[N, 5, 11]``: one 11-way prediction per digit position.
    """

    def __init__(
        self, in_features: int, hidden: int, digits: int = SVHN_POSITIONS, classes: int = 11, dropout: float = 0.5
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for _ in range(3):
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = hidden
        self.hidden = nn.Sequential(*layers)
        self.outputs = nn.ModuleList(nn.Linear(hidden, classes) for _ in range(digits))

    def forward(self, a: Tensor) -> Tensor:
        h = self.hidden(a)
        return torch.stack([out(h) for out in self.outputs], dim=1)


def _reset_all(module: nn.Module) -> nn.Module:
    """Re-draw every parameter with its layer's own initialisation."""
    for sub in module.modules():
        if hasattr(sub, "reset_parameters"):
            sub.reset_parameters()
    return module


def _run(blocks: nn.Sequential, start: int, stop: int, a: Tensor) -> Tensor:
    for index in range(start, stop):
        a = blocks[index](a)
    return a


# --------------------------------------------------------------------------- the classifier


class Classifier(Network):
    """One of the paper's networks: a CNN with an optional spatial transformer.

    Built by :func:`build_model`; do not call the constructor directly.

    Attributes:
        name: the model name (``"cnn"``, ``"stn-c1"``, ...), dataset: ``"mnist-rot"``/``"mnist-trans"``/``"svhn"``.
        kind: ``"cnn"``, ``"c"``, ``"sl"`` or ``"dl"``; placement: X (blocks before the ST; 0 for ``cnn``).
        width: the SVHN channel multiplier (1.0 for MNIST).
        features: ``nn.Sequential`` of conv blocks (MNIST 2, SVHN 8).
        head: maps the last feature map to logits.
        st: the :class:`~stnlib.nn.stn.SpatialTransformer`, or ``None`` for ``cnn``.
    """

    def __init__(
        self,
        *,
        name: str,
        dataset: str,
        kind: str,
        placement: int,
        width: float,
        features: nn.Sequential,
        head: nn.Module,
        st: SpatialTransformer | None,
    ) -> None:
        super().__init__()
        self.name = name
        self.dataset = dataset
        self.kind = kind
        self.placement = placement
        self.width = width
        self.features = features
        self.head = head
        self.st = st

    # ----- forward passes

    def forward_with_theta(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        """Logits and the ST's ``theta`` (``[N, 2, 3]``, ``None`` for ``cnn``)."""
        self._check_input(x)
        n_blocks = len(self.features)
        if self.st is None:
            return self.head(self.features(x)), None
        if self.kind == "c":
            a = _run(self.features, 0, self.placement, x)
            a, theta = self.st(a)
            return self.head(_run(self.features, self.placement, n_blocks, a)), theta
        x_warped, theta = self._warp_input(x)
        return self.head(self.features(x_warped)), theta

    def _warp_input(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if self.kind == "sl":
            # The classifier's own first X blocks feed the loc head; they run again on the warped image.
            return self.st(x, loc_input=_run(self.features, 0, self.placement, x))
        return self.st(x)  # "dl": the copies live inside st.localization

    def transform(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The ST's output and ``theta``.

        C-kinds: the transformed feature map after block X (the input itself for ``stn-c0``).
        SL/DL: the warped input image. Raises ``ValueError`` for ``cnn``, which has no ST.
        """
        self._check_input(x)
        self._require_st()
        if self.kind == "c":
            return self.st(_run(self.features, 0, self.placement, x))
        return self._warp_input(x)

    def first_layer(self, x: Tensor) -> Tensor:
        """Feature map after the first conv block (MNIST conv1 + mp + ReLU: 64×10×10 on 28×28 input;
        SVHN conv1 + ReLU + mp). Accepts any spatial size (e.g. a warped, half-size image)."""
        self._check_channels(x, "first_layer")
        return self.features[0](x)


# --------------------------------------------------------------------------- factory


def _parse(name: str, dataset: str) -> tuple[str, int]:
    choices = valid_models(dataset)
    if isinstance(name, str) and name in choices:
        if name == "cnn":
            return "cnn", 0
        match = _NAME_RE.match(name)
        return match.group(1), int(match.group(2))
    hint = ""
    match = _NAME_RE.match(name) if isinstance(name, str) else None
    if match and match.group(1) in ("sl", "dl") and int(match.group(2)) == 0:
        hint = " (with X=0 shared or deep localisation layers are empty: X=0 is stn-c0)"
    elif match:
        hint = f" (placement X={int(match.group(2))} is not used for {dataset})"
    raise ValueError(f"unknown model {name!r} for {dataset}{hint}; valid models: {', '.join(choices)}")


def build_model(name: str, dataset: str, *, width: float = 1.0, dropout: float = 0.5) -> Classifier:
    """Build model ``name`` (see :func:`valid_models`) for ``dataset``.

    Args:
        name: ``"cnn"``, ``"stn-c{X}"``, ``"stn-sl{X}"`` or ``"stn-dl{X}"``.
        dataset: ``"mnist-rot"``, ``"mnist-trans"`` or ``"svhn"`` (input shapes in :data:`stnlib.datasets.DATASETS`).
        width: SVHN only: multiplies every conv channel count and the 3072-wide FC layers (rounded, at least
            1). A named deviation used by the quick profile to fit CPU budgets; ``1.0`` is the paper's network
            (32,820,951 parameters without an ST). The loc head is not scaled.
        dropout: SVHN only: the dropout probability after conv blocks 2-8 and the FC layers (the paper's
            0.5; ``0`` removes the layers). A named deviation of the quick profile. MNIST has no dropout.

    Architecture choices (book/protocol.md, Networks):
        MNIST: blocks ``[conv9×9(64), mp, ReLU]``, ``[conv7×7(64), mp, ReLU]`` → flatten → ``Linear(→10)``;
        208,586 parameters on rotated MNIST. Rotated MNIST uses the ``CNNm`` loc head, translated MNIST
        ``CNNt``; both pad with ``"border"``. On translated MNIST every ST halves its output (60→30 on the
        input, 26→13 after block 1) and the final ``Linear`` is sized for what reaches it (256, or 576 for
        ``stn-c1``; the plain CNN sees 60×60 and has 6,400 inputs). ``stn-dl1`` on translated MNIST works
        here directly (the official code needed the equivalent ``-l CNNCNN -p 0``).
        SVHN: eight conv5×5 pad 2 blocks with channels 48, 64, 128, 160, 192, 192, 192, 192, ReLU, max-pool
        after blocks 1, 3, 5, 7, dropout 0.5 after every block but the first; 3 × FC 3072 (ReLU, dropout) and
        5 parallel ``Linear(→11)``. ``SVHN-l`` loc head, ``"zeros"`` padding.
        DL copies are ``copy.deepcopy`` of the first X blocks with every parameter re-initialised.

    Raises:
        ValueError: unknown dataset, unknown model or placement for the dataset, or ``width != 1`` on MNIST.
    """
    _check_dataset(dataset)
    kind, placement = _parse(name, dataset)
    width = float(width)
    if dataset == "svhn":
        if not width > 0:
            raise ValueError(f"width must be positive, got {width}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    elif width != 1.0:
        raise ValueError(f"width={width} applies to svhn only; {dataset} models have width 1.0")
    elif dropout != 0.5:
        raise ValueError(f"dropout={dropout} applies to svhn only; {dataset} models have no dropout")

    in_shape = DATASETS[dataset].input_shape
    features = _mnist_blocks(in_shape[0]) if dataset.startswith("mnist") else _svhn_blocks(in_shape[0], width, dropout)

    st = None
    probe = torch.zeros(1, *in_shape)
    with torch.no_grad():
        if kind == "cnn":
            head_input = features(probe)
        else:
            pre_out = _run(features, 0, placement, probe)  # what the loc net (or its copies) sees
            loc_shape = tuple(pre_out.shape[1:])
            warp_input = pre_out if kind == "c" else probe  # what the ST resamples
            out_size = None
            if dataset == "mnist-trans":
                out_size = (warp_input.shape[-2] // 2, warp_input.shape[-1] // 2)
            body, n_loc = LOC_HEADS[_LOC_HEAD[dataset]](loc_shape)
            if kind == "dl":
                copies = _reset_all(copy.deepcopy(nn.Sequential(*features[:placement])))
                body = nn.Sequential(copies, body)
            st = SpatialTransformer(body, n_loc, padding_mode=_PADDING[dataset], out_size=out_size)
            warped = st(warp_input, loc_input=pre_out if kind != "dl" else probe)[0]
            head_input = _run(features, placement, len(features), warped) if kind == "c" else features(warped)
    n_flat = head_input[0].numel()
    if dataset == "svhn":
        head: nn.Module = SequenceHead(n_flat, _scaled(SVHN_HIDDEN, width), dropout=dropout)
    else:
        head = nn.Sequential(nn.Flatten(), nn.Linear(n_flat, DATASETS[dataset].classes))
    return Classifier(
        name=name,
        dataset=dataset,
        kind=kind,
        placement=placement,
        width=width,
        features=features,
        head=head,
        st=st,
    )
