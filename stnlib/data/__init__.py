"""The data: verified MNIST, its rotated and translated tasks, and SVHN format 1 (or its stand-in).

* :mod:`~stnlib.data.base`: the :class:`Task` interface and the argument checks tasks share;
* :mod:`~stnlib.data.augment`: batched, on-device rotations and translations with clutter;
* :mod:`~stnlib.data.mnist`: the verified MNIST files and the two MNIST tasks;
* :mod:`~stnlib.data.svhn`: SVHN format 1 and the synthetic stand-in.

This module is the registry: :func:`get_task` builds any dataset's split, :func:`prepare` fetches or
builds a dataset for the command line (``python -m stnlib data NAME``).
"""

from __future__ import annotations

import os
from typing import Any

import torch

from stnlib.data.augment import rotate_batch, translate_clutter_batch
from stnlib.data.base import SPLITS, Task, check_choice
from stnlib.data.mnist import MNIST_OPTIONS, MNIST_TASKS, NORMALIZATION, MNISTTask, ensure_mnist, get_mnist_task, mnist_arrays, mnist_source
from stnlib.data.svhn import get_svhn_task
from stnlib.data.svhn import prepare as prepare_svhn
from stnlib.datasets import DATASETS
from stnlib.io import DataIntegrityError

__all__ = [
    "DATASETS", "SPLITS", "Task", "MNISTTask", "DataIntegrityError", "MNIST_OPTIONS", "NORMALIZATION",
    "rotate_batch", "translate_clutter_batch", "ensure_mnist", "mnist_arrays", "mnist_source", "get_task",
    "prepare", "PREPARE_CHOICES",
]

#: Names accepted by :func:`prepare` (the CLI's ``python -m stnlib data NAME``).
PREPARE_CHOICES: tuple[str, ...] = ("mnist", "mnist-rot", "mnist-trans", "svhn", "svhn-synthetic")


def get_task(dataset: str, split: str, *, root: str | os.PathLike | None = None,
             device: str | torch.device = "cpu", normalize: bool = True, subset: int | None = None,
             **options: Any) -> Task:
    """The ``split`` (``"train"``/``"test"``) of ``dataset`` as a :class:`Task` on ``device``.

    ``root`` is the data folder (default :func:`stnlib.paths.data_root`); ``subset`` keeps only the
    first examples (the smoke profile's deviation). ``options`` go to
    :func:`~stnlib.data.mnist.get_mnist_task` (``channels_last``, ``max_deg``, ``max_shift``, ...) or
    :func:`~stnlib.data.svhn.get_svhn_task` (``source``, ``n_train``, ``n_test``, ``channels_last``, ...).
    """
    check_choice(dataset, tuple(DATASETS), "dataset")
    check_choice(split, SPLITS, "split")
    if dataset in MNIST_TASKS:
        return get_mnist_task(dataset, split, root=root, device=device, normalize=normalize, subset=subset,
                              **options)
    return get_svhn_task(split, root=root, device=device, normalize=normalize, subset=subset, **options)


def prepare(dataset: str, root: str | os.PathLike | None = None, **options: Any) -> str:
    """Fetch or build ``dataset`` under ``root``, print where it came from, and return that line.

    ``mnist`` (or either MNIST task name) runs :func:`ensure_mnist`; ``svhn`` and ``svhn-synthetic``
    go to :func:`stnlib.data.svhn.prepare` (with ``options``).
    """
    check_choice(dataset, PREPARE_CHOICES, "dataset")
    if dataset.startswith("svhn"):
        line = prepare_svhn(dataset, root=root, **options)
    else:
        if options:
            raise ValueError(f"prepare({dataset!r}) takes no options, got {sorted(options)}")
        raw = ensure_mnist(root)
        line = f"MNIST ready in {raw}: {mnist_source(root)}"
    print(line)
    return line
