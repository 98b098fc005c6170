"""The SVHN task: real SVHN format 1 when it is on disk, else the labelled synthetic stand-in.

Both sources feed the same :class:`SVHNTask`: uint8 ``[N, 3, 64, 64]`` images and ``[N, 5]`` labels
(digits 0–9, blank = 10 after the last digit) held on the device, normalised per channel with the
train split's statistics. There is no augmentation (as in the authors' code).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from stnlib.data.base import SPLITS, Task, check_choice, check_count
from stnlib.data.svhn.archives import ARCHIVE_SPLITS, archive_path, cache_dir, svhn_dir
from stnlib.data.svhn.cache import IMAGE_SIZE, SPLIT_KEY
from stnlib.data.svhn.format1 import REAL_SOURCE, build_svhn_cache, load_svhn_cache, real_svhn_available
from stnlib.data.svhn.synthetic import SYNTHETIC_SOURCE, SyntheticSVHNConfig, synthetic_dir, synthetic_svhn_arrays
from stnlib.datasets import DATASETS, SVHN_POSITIONS

SOURCES: tuple[str, ...] = ("auto", "real", "synthetic")
#: Real SVHN format-1 sizes: train + extra, and test (the synthetic stand-in mirrors them by default).
REAL_TRAIN_IMAGES, REAL_TEST_IMAGES = 235_755, 13_068


class SyntheticDataWarning(UserWarning):
    """Raised (as a warning) when ``source="auto"`` falls back to the synthetic stand-in."""


class SVHNTask(Task):
    """One split of SVHN format 1 (real or the synthetic stand-in), held as one uint8 tensor on ``device``.

    ``batches`` (from :class:`stnlib.data.Task`) yields ``(x, y, {})``: ``x`` float32 ``[B,3,64,64]``
    normalised per channel with the mean/std of the TRAIN split, ``y`` int64 ``[B,5]`` (blank = 10).
    There is no augmentation (book/protocol.md, Data), so ``info`` is empty and ``generator`` only shuffles.
    ``mean``/``std`` are in pixel units of [0, 1] like every :class:`Task`; ``metadata["mean"]`` has
    them in 0–255 units as the cache stores them.
    """

    name = "svhn"
    input_shape = (3, IMAGE_SIZE, IMAGE_SIZE)
    num_classes = DATASETS["svhn"].classes

    def __init__(
        self,
        images: Tensor,
        labels: Tensor,
        *,
        split: str,
        source: str,
        mean_255: Sequence[float],
        std_255: Sequence[float],
        normalize: bool = True,
        channels_last: bool = False,
        subset: int | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4 or tuple(images.shape[1:]) != self.input_shape:
            raise ValueError(f"images must be uint8 [N,3,64,64], got {images.dtype} {list(images.shape)}")
        if tuple(labels.shape) != (images.shape[0], SVHN_POSITIONS):
            raise ValueError(f"labels must be [N,5] with N={images.shape[0]}, got {list(labels.shape)}")
        check_choice(split, SPLITS, "SVHN split")
        self.split, self.source = split, source
        self.images, self.labels = images, labels.to(torch.int64)
        self.device = images.device
        self.num_examples = int(images.shape[0])
        self.mean = tuple(float(v) / 255 for v in mean_255)
        self.std = tuple(float(v) / 255 for v in std_255)
        self.normalize, self.channels_last, self.subset = bool(normalize), bool(channels_last), subset
        self.metadata = dict(metadata or {})

    def raw_batch(
        self, index: Tensor | Sequence[int], generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        """The ``(x, y, {})`` triple for chosen examples (``generator`` unused: no augmentation)."""
        return self.raw_batches(index, [generator])

    def raw_batches(
        self, index: Tensor | Sequence[int], generators: Sequence[torch.Generator | None], *, check: bool = True
    ) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        index = self._index(index, len(generators), check)
        x = self.images[index].to(torch.float32) / 255.0
        return self._finish(x), self.labels[index], {}


def _resolve_source(source: str, root: str | os.PathLike) -> str:
    check_choice(source, SOURCES, "SVHN source")
    if source != "auto":
        return source
    if real_svhn_available(root):
        return "real"
    parts = [p for s in ARCHIVE_SPLITS if (p := archive_path(root, s).with_name(f"{s}.tar.gz.part")).exists()]
    hint = f" (unfinished downloads: {', '.join(map(str, parts))}; resume with stnlib.data.svhn.download_svhn)" if parts else ""
    warnings.warn(
        f"real SVHN format 1 not found under {svhn_dir(root)}{hint}; using the {SYNTHETIC_SOURCE}. "
        "Its numbers are not comparable with the paper's.",
        SyntheticDataWarning,
        stacklevel=3,
    )
    return "synthetic"


def get_svhn_task(
    split: str,
    *,
    root: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    source: str = "auto",
    n_train: int | None = None,
    n_test: int | None = None,
    normalize: bool = True,
    channels_last: bool = False,
    subset: int | None = None,
    seed: int = 0,
    config: SyntheticSVHNConfig | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> SVHNTask:
    """SVHN format-1 task for ``split`` (``"train"`` = official train+extra, ``"test"``).

    Args:
        source: ``"real"`` (the cache; built from extracted folders or verified archives when missing,
            never downloaded here), ``"synthetic"`` (the stand-in), or ``"auto"``: real when any real SVHN
            material is on disk (:func:`real_svhn_available`), else the stand-in with a
            :class:`SyntheticDataWarning`.
        n_train, n_test: examples per split. Synthetic: how many are generated (default: the real
            counts 235,755 and 13,068). Real: a random subset of that size, seeded by ``seed``, kept in
            file order (default: all). Normalisation uses the mean/std of the ``n_train`` train images
            (synthetic) or of the whole train cache (real, as the authors' csv did).
        subset: then keep only the first ``subset`` examples (the generic ``get_task`` option).
        seed: synthetic generator seed; also draws the real-data ``n_train``/``n_test`` subsets.
        config, workers, progress: renderer parameters, generation/cropping processes, progress bars.
    """
    check_choice(split, SPLITS, "SVHN split")
    n_train, n_test, subset = check_count("n_train", n_train), check_count("n_test", n_test), check_count("subset", subset)
    source = _resolve_source(source, root)
    wanted = n_train if split == "train" else n_test
    if source == "real":
        if not (cache_dir(root) / "metadata.json").is_file():
            build_svhn_cache(root, workers=workers, progress=progress)
        images, labels, meta = load_svhn_cache(root, split)
        mean, std, label = meta["mean"], meta["std"], REAL_SOURCE
        if wanted is not None and wanted < len(images):
            pick = np.sort(np.random.default_rng([seed, SPLIT_KEY[split]]).choice(len(images), wanted, replace=False))
            images, labels = images[pick], labels[pick]
        elif wanted is not None:
            raise ValueError(f"n_{split}={wanted} exceeds the {len(images)} real SVHN {split} examples")
    else:
        n_tr = REAL_TRAIN_IMAGES if n_train is None else n_train
        tr_images, tr_labels, tr_meta = synthetic_svhn_arrays(
            "train", n_tr, root=root, seed=seed, config=config, workers=workers, progress=progress)
        mean, std, label = tr_meta["mean"], tr_meta["std"], SYNTHETIC_SOURCE
        if split == "train":
            images, labels, meta = tr_images, tr_labels, tr_meta
        else:
            del tr_images, tr_labels
            images, labels, meta = synthetic_svhn_arrays(
                "test", REAL_TEST_IMAGES if n_test is None else n_test, root=root, seed=seed, config=config,
                workers=workers, progress=progress)
    if subset is not None:
        if subset > len(images):
            raise ValueError(f"subset={subset} exceeds the {len(images)} examples of svhn {split}")
        images, labels = images[:subset], labels[:subset]
    meta = dict(meta, task_count=int(len(images)), n_train=n_train, n_test=n_test, subset=subset)
    return SVHNTask(
        torch.from_numpy(np.ascontiguousarray(images)).to(device),
        torch.from_numpy(np.ascontiguousarray(labels)).to(device),
        split=split, source=label, mean_255=mean, std_255=std, normalize=normalize,
        channels_last=channels_last, subset=subset, metadata=meta,
    )


PREPARE_CHOICES: tuple[str, ...] = ("svhn", "svhn-synthetic")


def prepare(dataset: str = "svhn", root: str | os.PathLike | None = None, **options: Any) -> str:
    """Make SVHN ready under ``root`` (``python -m stnlib data svhn|svhn-synthetic``) and say how.

    ``"svhn"``: the real format-1 cache; builds it from archives/extracted folders on disk, downloading
    missing archives (a :class:`ConnectionError` with the by-hand instructions when offline).
    ``"svhn-synthetic"``: generates and caches the stand-in (``n_train``/``n_test``/``seed`` options,
    default the real sizes).
    """
    check_choice(dataset, PREPARE_CHOICES, "SVHN dataset")
    if dataset == "svhn":
        if (cache_dir(root) / "metadata.json").is_file():
            _, _, meta = load_svhn_cache(root, "test")
        else:
            meta = build_svhn_cache(root, download=True, **options)
        counts = {k: v["count"] for k, v in meta["splits"].items()}
        dropped = meta.get("dropped_too_long")
        return f"{REAL_SOURCE} ready in {cache_dir(root)}: {counts} images ({dropped} longer than 5 digits dropped)"
    seed = int(options.pop("seed", 0))
    n_train, n_test = options.pop("n_train", None) or REAL_TRAIN_IMAGES, options.pop("n_test", None) or REAL_TEST_IMAGES
    for split, n in (("train", n_train), ("test", n_test)):
        synthetic_svhn_arrays(split, n, root=root, seed=seed, **options)
    return f"{SYNTHETIC_SOURCE} ready in {synthetic_dir(root, seed, options.get('config'))}: train {n_train}, test {n_test} (seed {seed})"
