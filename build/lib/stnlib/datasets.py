"""The three datasets as plain data: what a network sees and what it predicts.

The networks (:mod:`stnlib.nn`) and the data pipelines (:mod:`stnlib.data`) both read these, so a
shape or a class count is written down once.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset's interface to a network."""

    name: str
    #: ``(C, H, W)`` of one network input.
    input_shape: tuple[int, int, int]
    #: Classes per output head (SVHN: 10 digits + "no digit").
    classes: int
    #: Output heads: 1, or one per digit position of an SVHN house number.
    heads: int
    about: str


DATASETS: dict[str, DatasetSpec] = {
    "mnist-rot": DatasetSpec("mnist-rot", (1, 28, 28), 10, 1,
                             "MNIST digits rotated by an angle drawn from ±90°, on the 28×28 canvas"),
    "mnist-trans": DatasetSpec("mnist-trans", (1, 60, 60), 10, 1,
                               "MNIST digits shifted by up to ±16 px on a 60×60 canvas, with clutter"),
    "svhn": DatasetSpec("svhn", (3, 64, 64), 11, 5,
                        "SVHN format 1: house numbers cropped to 64×64, one 11-way head per digit position"),
}

#: SVHN: digit positions (house numbers with more digits are dropped) and the "no digit" label.
SVHN_POSITIONS = DATASETS["svhn"].heads
SVHN_BLANK = 10


def get_dataset(name: str) -> DatasetSpec:
    """The spec of dataset ``name``; a ``ValueError`` lists the valid names otherwise."""
    try:
        return DATASETS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown dataset {name!r}; valid datasets: {', '.join(DATASETS)}") from None
