"""The task interface every dataset implements, and the checks its arguments share.

A :class:`Task` is one dataset split held on a device as one tensor, streamed as augmented,
normalised ``(x, y, info)`` batches: every image gets a fresh random transform on every pass (the
test split too, as the paper's protocol has it), drawn from an explicit :class:`torch.Generator`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch

SPLITS: tuple[str, ...] = ("train", "test")


def check_choice(value: str, choices: Sequence[str], what: str) -> str:
    """``value`` if it is one of ``choices``; a ``ValueError`` naming it and the valid choices otherwise."""
    if value not in choices:
        raise ValueError(f"unknown {what} {value!r}; valid choices: {', '.join(map(repr, choices))}")
    return value


def check_count(name: str, value: int | None) -> int | None:
    """``None`` or a positive int (a subset size, an example count); ``ValueError`` otherwise."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"{name} must be None or a positive int, got {value!r}")
    return value


def generator_device(generator: torch.Generator) -> torch.device:
    """The device a generator draws on (random numbers are drawn there, then moved to the data)."""
    return torch.device(generator.device)


class Task:
    """One dataset split as an on-device stream of augmented, normalised batches.

    Attributes:
        name: dataset name (``"mnist-rot"``, ``"mnist-trans"``, ``"svhn"``).
        split: ``"train"`` or ``"test"``.
        num_examples: examples in one pass (after ``subset``).
        input_shape: ``(C, H, W)`` of ``x``.
        num_classes: classes per output head.
        source: where the data came from (recorded in every result's provenance).
        device: where the data and the batches live.
        mean, std: per-channel normalisation applied to ``x`` (pixels in [0, 1]) when
            ``normalize`` is on; :meth:`denormalize` undoes it for figures.
        channels_last: whether ``x`` is returned in ``torch.channels_last`` memory format.
        subset: ``None``, or ``n`` when only the first ``n`` examples are used (a deviation
            from the paper that only the smoke profile makes).

    Subclasses implement :meth:`raw_batch`; :meth:`batches` is generic.
    """

    name: str
    split: str
    num_examples: int
    input_shape: tuple[int, int, int]
    num_classes: int
    source: str
    device: torch.device
    mean: tuple[float, ...]
    std: tuple[float, ...]
    normalize: bool = True
    channels_last: bool = False
    subset: int | None = None

    def __len__(self) -> int:
        return self.num_examples

    def num_batches(self, batch_size: int, *, drop_last: bool = False) -> int:
        """Number of batches :meth:`batches` yields for one pass."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        return self.num_examples // batch_size if drop_last else math.ceil(self.num_examples / batch_size)

    def batches(
        self,
        batch_size: int,
        generator: torch.Generator,
        *,
        shuffle: bool | None = None,
        drop_last: bool = False,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]]:
        """Yield one pass over the split as ``(x, y, info)`` batches.

        ``shuffle`` defaults to ``True`` for the train split (a permutation drawn from
        ``generator``) and ``False`` for the test split (in order). Every image gets a fresh
        random transform from ``generator`` on every pass, the test split included. The same
        generator state gives bitwise identical batches.
        """
        count = self.num_batches(batch_size, drop_last=drop_last)
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
        if shuffle is None:
            shuffle = self.split == "train"
        if shuffle:
            order = torch.randperm(self.num_examples, generator=generator, device=generator_device(generator))
        else:
            order = torch.arange(self.num_examples)
        for k in range(count):
            yield self.raw_batch(order[k * batch_size : (k + 1) * batch_size], generator)

    def raw_batch(
        self, index: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """The ``(x, y, info)`` triple of :meth:`batches` for chosen example indices."""
        return self.raw_batches(index, [generator])

    def raw_batches(
        self, index: torch.Tensor, generators: Sequence[torch.Generator | None], *, check: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """Several runs' batches as one: ``index`` is their indices concatenated (equal shares, in the
        order of ``generators``), and run ``k``'s part of the result is exactly ``raw_batch`` of its
        share with ``generators[k]`` (packed training, :mod:`stnlib.train.packed`).

        ``check=False`` skips the range check of the indices: the caller vouches for them (indices
        sliced from a permutation of the split), because on a GPU the check reads a value back to the
        host and so waits for the queued work.
        """
        raise NotImplementedError

    def _index(self, index: torch.Tensor, runs: int, check: bool) -> torch.Tensor:
        """``index`` as a flat int64 tensor on the task's device, checked to be in range and to split
        into ``runs`` equal shares."""
        if runs < 1:
            raise ValueError(f"raw_batches needs at least one generator, got {runs}")
        index = torch.as_tensor(index, dtype=torch.int64).flatten()
        if index.numel() % runs:
            raise ValueError(f"{index.numel()} indices do not split into {runs} equal shares (one per generator)")
        if check and index.numel() and (index.min() < 0 or index.max() >= self.num_examples):
            raise ValueError(f"index out of range 0..{self.num_examples - 1}")
        return index.to(self.device)

    def _stats(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # Cached per dtype and device: building them anew copies from the host, which on a GPU waits
        # for the queued work at every batch.
        cache = self.__dict__.setdefault("_stats_cache", {})
        key = (x.dtype, x.device)
        if key not in cache:
            shape = (1, len(self.mean), 1, 1)
            cache[key] = (torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(shape),
                          torch.tensor(self.std, dtype=x.dtype, device=x.device).view(shape))
        return cache[key]

    def normalize_images(self, x: torch.Tensor) -> torch.Tensor:
        """Pixels in [0, 1] → network input (identity when ``normalize`` is off)."""
        if not self.normalize:
            return x
        mean, std = self._stats(x)
        return (x - mean) / std

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        """Network input → pixels in [0, 1] (for figures); inverse of :meth:`normalize_images`."""
        if not self.normalize:
            return x
        mean, std = self._stats(x)
        return x * std + mean

    def _finish(self, x: torch.Tensor) -> torch.Tensor:
        x = self.normalize_images(x)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x.contiguous()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, split={self.split!r}, num_examples={self.num_examples}, "
            f"input_shape={self.input_shape}, device={str(self.device)!r}, source={self.source!r})"
        )
