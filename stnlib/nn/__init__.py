"""The networks: spatial transformers, the paper's classifiers and the equivariant extension.

Modules, from the bottom up:

* :mod:`stnlib.nn.layers`: a first convolution with a fast input gradient on the CPU;
* :mod:`stnlib.nn.stn`: :class:`~stnlib.nn.stn.SpatialTransformer` and the localisation heads;
* :mod:`stnlib.nn.network`: :class:`~stnlib.nn.network.Network`, the interface every classifier has;
* :mod:`stnlib.nn.models`: the paper's CNN, STN-CX, STN-SLX and STN-DLX;
* :mod:`stnlib.nn.equivariant`: C4-equivariant feature maps and a feature-map ST that can align them.

This module is the registry: :func:`valid_models` names every model per dataset, :func:`build`
builds any of them and :func:`display_name` gives the name the paper prints.
"""

from __future__ import annotations

from stnlib.datasets import get_dataset
from stnlib.nn.equivariant import EQUIVARIANT_MODELS, build_equivariant_model
from stnlib.nn.models import build_model
from stnlib.nn.models import valid_models as paper_models
from stnlib.nn.network import Network

__all__ = ["Network", "valid_models", "paper_models", "build", "display_name", "DISPLAY_NAMES"]

#: Names as the paper (or, for the extension, this book) prints them.
DISPLAY_NAMES: dict[str, str] = {"cnn": "CNN", "ecnn": "C4-CNN", "stn-ec1": "STN-EC1 (equivariant)"}


def valid_models(dataset: str) -> tuple[str, ...]:
    """Every model name :func:`build` accepts for ``dataset``: the paper's, then the equivariant ones."""
    names = paper_models(dataset)
    # The equivariant models are trained under the rotated-MNIST experiment only (chapter "Beyond").
    return names + EQUIVARIANT_MODELS if dataset == "mnist-rot" else names


def build(model: str, dataset: str, *, width: float = 1.0, dropout: float | None = None) -> Network:
    """Build model ``model`` for ``dataset`` (see :func:`valid_models`).

    ``width`` and ``dropout`` apply to SVHN only (``dropout=None`` is the paper's 0.5); an unknown
    name raises ``ValueError`` listing the valid ones.
    """
    get_dataset(dataset)
    if model not in valid_models(dataset):
        raise ValueError(
            f"unknown model {model!r} for dataset {dataset!r}; valid models: {', '.join(valid_models(dataset))}")
    if model in EQUIVARIANT_MODELS:
        return build_equivariant_model(model, dataset)
    if dataset == "svhn":
        return build_model(model, dataset, width=width, dropout=0.5 if dropout is None else dropout)
    return build_model(model, dataset)


def display_name(model: str) -> str:
    """``"stn-sl1"`` → ``"STN-SL1"``, ``"cnn"`` → ``"CNN"``: the names the paper prints."""
    return DISPLAY_NAMES.get(model, model.upper())
