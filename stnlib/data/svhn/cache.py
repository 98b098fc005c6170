"""Shared machinery of the two SVHN caches (real format 1, synthetic stand-in).

Both store uint8 ``[N, 3, 64, 64]`` images and ``[N, 5]`` labels in an ``.npz`` written atomically,
with per-image channel sums so that the mean and standard deviation of any prefix are exact, and
both are checked when read: a truncated or inconsistent file is never used.
"""

from __future__ import annotations

import os
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from stnlib.datasets import SVHN_BLANK, SVHN_POSITIONS
from stnlib.io import DataIntegrityError, atomic_write

IMAGE_SIZE = 64
CACHE_SCHEMA = "stnlib.svhn-cache/1"
#: Which random stream a split draws from (synthetic images, and the real-data subsets): never shared.
SPLIT_KEY = {"train": 0, "test": 1}


def atomic_savez(path: Path, **arrays: np.ndarray) -> Path:
    """``np.savez`` through :func:`stnlib.io.atomic_write`."""
    return atomic_write(path, lambda f: np.savez(f, **arrays))


def parallel_map(fn, jobs: Sequence, workers: int | None, chunksize: int = 64) -> Iterator:
    """``map`` in order; a process pool when ``workers`` > 1 (results do not depend on the worker count)."""
    workers = (os.cpu_count() or 1) if workers is None else int(workers)
    if workers <= 1 or len(jobs) < 2 * chunksize:
        yield from map(fn, jobs)
        return
    import multiprocessing

    with multiprocessing.get_context().Pool(workers) as pool:
        yield from pool.imap(fn, jobs, chunksize=chunksize)


def channel_sums(images: np.ndarray, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Per-image, per-channel sum and sum of squares (float64 ``[N, 3]`` each), in 0–255 units."""
    n = images.shape[0]
    s = np.zeros((n, images.shape[1]), dtype=np.float64)
    q = np.zeros_like(s)
    for i in range(0, n, chunk):
        x = images[i : i + chunk].reshape(min(chunk, n - i), images.shape[1], -1).astype(np.float64)
        s[i : i + chunk] = x.sum(-1)
        q[i : i + chunk] = np.square(x).sum(-1)
    return s, q


def channel_mean_std(sums: np.ndarray, sqsums: np.ndarray, pixels_per_image: int) -> tuple[list[float], list[float]]:
    count = sums.shape[0] * pixels_per_image
    mean = sums.sum(0) / count
    var = np.maximum(sqsums.sum(0) / count - mean**2, 0.0)
    return [float(v) for v in mean], [float(v) for v in np.sqrt(var)]



def load_npz(path: Path, keys: Sequence[str], fix: str) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise FileNotFoundError(f"cache file {path} is missing. {fix}")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in keys if k not in z.files]
            if missing:
                raise ValueError(f"has no array(s) {missing}")
            return {k: z[k] for k in keys}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError, zlib.error) as err:
        raise DataIntegrityError(f"cache file {path} is corrupt or truncated ({type(err).__name__}: {err}); it is not used. {fix}") from err


def check_arrays(path: Path, images: np.ndarray, labels: np.ndarray, count: int | None, fix: str) -> None:
    problems = []
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (3, IMAGE_SIZE, IMAGE_SIZE):
        problems.append(f"images {images.dtype} {list(images.shape)} (want uint8 [N,3,64,64])")
    if labels.ndim != 2 or labels.shape[1] != SVHN_POSITIONS or labels.shape[0] != images.shape[0]:
        problems.append(f"labels {list(labels.shape)} (want [N,5] with N = {images.shape[0]})")
    elif labels.size and (labels.min() < 0 or labels.max() > SVHN_BLANK):
        problems.append("labels outside 0-10")
    if count is not None and images.shape[0] != count:
        problems.append(f"{images.shape[0]} images but the metadata says {count}")
    if problems:
        raise DataIntegrityError(f"cache file {path} is inconsistent: {'; '.join(problems)}; it is not used. {fix}")
