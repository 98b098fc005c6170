"""The one interface every classifier in stnlib has: :class:`Network`.

Training, evaluation, the measures and the figures only use what is declared here, so a new kind
of network (the equivariant ones of :mod:`stnlib.nn.equivariant`, say) plugs in by subclassing it.

Attributes every network sets: ``name`` (``"cnn"``, ``"stn-c1"``, ...), ``dataset``, ``kind``
(``"cnn"`` without a spatial transformer, ``"c"`` when the ST warps feature maps or the input at
X = 0, ``"sl"``/``"dl"`` when it warps the input but its localisation net reads classifier layers
or copies of them), ``placement`` (X: the blocks before the ST), ``width`` (the SVHN channel
multiplier, 1.0 elsewhere), ``st`` (the spatial transformer or ``None``) and ``equivariant``
(whether feature maps carry an orientation axis; see :mod:`stnlib.nn.equivariant`).
"""

from __future__ import annotations

from collections.abc import Iterator

from torch import Tensor, nn

from stnlib.datasets import get_dataset


class Network(nn.Module):
    """Base class of the classifiers: input checks, parameter groups and the forward contract."""

    name: str
    dataset: str
    kind: str
    placement: int
    width: float = 1.0
    equivariant: bool = False
    st: nn.Module | None

    @property
    def has_st(self) -> bool:
        """Whether the network has a spatial transformer."""
        return self.st is not None

    @property
    def warps_feature_maps(self) -> bool:
        """Whether the ST warps feature maps (STN-CX with X > 0) rather than the input image."""
        return self.has_st and self.kind == "c" and self.placement > 0

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return get_dataset(self.dataset).input_shape

    def _check_input(self, x: Tensor) -> None:
        expected = self.input_shape
        if not isinstance(x, Tensor) or x.dim() != 4 or tuple(x.shape[1:]) != expected:
            got = list(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(
                f"{self.name} on {self.dataset} expects input [N, {', '.join(map(str, expected))}], got {got}")

    def _check_channels(self, x: Tensor, what: str) -> None:
        channels = self.input_shape[0]
        if not isinstance(x, Tensor) or x.dim() != 4 or x.shape[1] != channels:
            got = list(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"{what} expects [N, {channels}, H, W] for {self.dataset}, got {got}")

    def _require_st(self) -> None:
        if self.st is None:
            raise ValueError(f"model {self.name!r} has no spatial transformer; choose an stn-* model")

    # ----- the forward contract (subclasses implement the first three)

    def forward_with_theta(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        """Logits and the ST's ``theta`` (``[N, 2, 3]``; ``None`` without an ST)."""
        raise NotImplementedError

    def transform(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """What the ST hands on (the warped image, or the warped feature maps) and its ``theta``."""
        raise NotImplementedError

    def first_layer(self, x: Tensor) -> Tensor:
        """The feature maps after the first block (what STN-C1's transformer warps); any spatial size."""
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        """Logits: ``[N, classes]``, or ``[N, positions, classes]`` for SVHN."""
        return self.forward_with_theta(x)[0]

    # ----- parameter groups

    def localization_parameters(self) -> Iterator[nn.Parameter]:
        """The ST's parameters (its localisation net, DL's copied blocks included, and ``fc_loc``)."""
        return iter(()) if self.st is None else iter(list(self.st.parameters()))

    def classifier_parameters(self) -> Iterator[nn.Parameter]:
        """Every parameter not in :meth:`localization_parameters` (SL's shared blocks included)."""
        loc = {id(p) for p in self.localization_parameters()}
        return iter([p for p in self.parameters() if id(p) not in loc])

    def param_groups(self, lr: float, loc_lr_multiplier: float = 1.0) -> list[dict]:
        """Groups for ``torch.optim``: the classifier at ``lr``, the localisation net at ``lr × multiplier``.

        SL's shared blocks belong to the classifier group and receive the full gradient from the ST
        path too (the authors' default; no gradient scaling hook). Without an ST there is one group.
        """
        groups = [{"params": list(self.classifier_parameters()), "lr": lr, "name": "classifier"}]
        loc = list(self.localization_parameters())
        if loc:
            groups.append({"params": loc, "lr": lr * loc_lr_multiplier, "name": "localization"})
        return groups

    def extra_repr(self) -> str:
        return f"name={self.name!r}, dataset={self.dataset!r}, kind={self.kind!r}, placement={self.placement}"
