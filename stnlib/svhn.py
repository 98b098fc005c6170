"""SVHN format 1 (multi-digit house numbers) for the depth sweep, and an honest synthetic stand-in.

Two sources feed the same :class:`SVHNTask`:

* **Real SVHN format 1** (``source == "real SVHN format 1"``): the official ``train``/``test``/``extra``
  archives are downloaded (resumable, size- and MD5-checked, atomic), extracted to
  ``<root>/svhn/raw/<split>/``, their ``digitStruct.mat`` (MATLAB v7.3, i.e. HDF5) is parsed with h5py,
  and every image is cropped with the Goodfellow et al. / Jaderberg et al. protocol of the spec §3.4
  (union of the digit boxes, enlarged by 30 %, clipped to the image, resized to 64×64). The result is a
  uint8 cache ``<root>/svhn/cache/{train,test}.npz`` plus ``metadata.json``; training reads only the
  cache. ``train`` is the official train + extra sets (235,755 images before dropping), ``test`` the
  official test set (13,068), as the spec infers from the authors' code.
* **Synthetic stand-in** (``source == "synthetic SVHN-like stand-in (not real SVHN)"``), used only when
  real SVHN is absent (no copy exists offline on the project's machines): 1–5 printed digits in the
  TrueType fonts that matplotlib ships, on textured backgrounds, with neighbouring distractor digits,
  rotation, shear, perspective, blur, noise and JPEG artefacts, cut out with the SAME crop function
  from boxes known at rendering time. It is deterministic from a seed and cached under
  ``<root>/svhn-synthetic/<hash>/``. Numbers measured on it are not comparable with the paper's.

Labels are 5 positions × 11 classes: digits 0–9 (SVHN's label 10 means the digit 0) and the blank
class 10 after the last digit. Numbers with more than 5 digits are dropped and counted.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.client
import io
import json
import math
import os
import shutil
import socket
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import warnings
import zipfile
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFilter, ImageFont
from torch import Tensor

from stnlib.data import DataIntegrityError, Task

__all__ = [
    "REAL_SOURCE",
    "SYNTHETIC_SOURCE",
    "SOURCES",
    "SPLITS",
    "ARCHIVE_SPLITS",
    "IMAGE_SIZE",
    "MAX_DIGITS",
    "NUM_CLASSES",
    "BLANK",
    "CROP_ENLARGE",
    "SVHN_URL",
    "SVHN_ARCHIVES",
    "ArchiveInfo",
    "SyntheticDataWarning",
    "SyntheticSVHNConfig",
    "SVHNTask",
    "DEFAULT_FONTS",
    "GENERATOR_VERSION",
    "svhn_dir",
    "archive_path",
    "raw_dir",
    "cache_dir",
    "synthetic_dir",
    "font_dir",
    "download_svhn",
    "verify_archive",
    "extract_svhn",
    "read_digit_struct",
    "union_box",
    "format1_crop_box",
    "crop_and_resize",
    "encode_labels",
    "build_svhn_cache",
    "load_svhn_cache",
    "real_svhn_available",
    "make_synthetic_svhn",
    "synthetic_svhn_arrays",
    "get_svhn_task",
    "prepare",
    "sequence_error",
    "sequence_loss",
]

# --------------------------------------------------------------------------- constants

REAL_SOURCE = "real SVHN format 1"
SYNTHETIC_SOURCE = "synthetic SVHN-like stand-in (not real SVHN)"
SOURCES: tuple[str, ...] = ("auto", "real", "synthetic")
#: Task splits. ``train`` = official train + extra, ``test`` = official test (spec §3.4).
SPLITS: tuple[str, ...] = ("train", "test")
#: The three official format-1 archives.
ARCHIVE_SPLITS: tuple[str, ...] = ("train", "test", "extra")
IMAGE_SIZE = 64
MAX_DIGITS = 5
NUM_CLASSES = 11
BLANK = 10
CROP_ENLARGE = 0.30
SVHN_URL = "http://ufldl.stanford.edu/housenumbers/{split}.tar.gz"
SVHN_PAGE = "http://ufldl.stanford.edu/housenumbers/"
CACHE_SCHEMA = "stnlib.svhn-cache/1"


@dataclass(frozen=True)
class ArchiveInfo:
    """What an official format-1 archive must look like."""

    size: int  #: bytes
    md5: str
    n_images: int  #: PNGs (and digitStruct entries) inside


#: Exact sizes and MD5s from the git-annex keys of a public mirror (datasets-mila/datasets--svhn, whose
#: format-2 MD5s match torchvision's); image counts from the SVHN page / Goodfellow et al.
SVHN_ARCHIVES: dict[str, ArchiveInfo] = {
    "train": ArchiveInfo(404_141_560, "a649f4cb15c35520e8a8c342d4c0005a", 33_402),
    "test": ArchiveInfo(276_555_967, "790d9c8d42f1fcbd219b59956c853a81", 13_068),
    "extra": ArchiveInfo(1_955_489_752, "606f41243d71ca4d5fe66dbaf1f02bee", 202_353),
}

#: Which archives make up each task split.
SPLIT_SOURCES: dict[str, tuple[str, ...]] = {"train": ("train", "extra"), "test": ("test",)}


class SyntheticDataWarning(UserWarning):
    """Raised (as a warning) when ``source="auto"`` falls back to the synthetic stand-in."""


def _check_choice(value: str, choices: Sequence[str], what: str) -> None:
    if value not in choices:
        raise ValueError(f"unknown {what} {value!r}; valid choices: {', '.join(map(repr, choices))}")


# --------------------------------------------------------------------------- paths


def svhn_dir(root: str | os.PathLike = "data") -> Path:
    """``<root>/svhn``: archives, ``raw/`` and ``cache/`` of real SVHN format 1."""
    return Path(root) / "svhn"


def archive_path(root: str | os.PathLike, split: str) -> Path:
    """Where the official ``<split>.tar.gz`` is expected (download target, or place it by hand)."""
    return svhn_dir(root) / f"{split}.tar.gz"


def raw_dir(root: str | os.PathLike, split: str) -> Path:
    """``<root>/svhn/raw/<split>``: the extracted ``digitStruct.mat`` and ``N.png`` files."""
    return svhn_dir(root) / "raw" / split


def cache_dir(root: str | os.PathLike = "data") -> Path:
    """``<root>/svhn/cache``: the preprocessed 64×64 uint8 arrays."""
    return svhn_dir(root) / "cache"


def _manual_instructions(root: str | os.PathLike, splits: Sequence[str] = ARCHIVE_SPLITS) -> str:
    lines = [
        f"To use real SVHN format 1, download the archives on a machine with internet access from {SVHN_PAGE}",
        "and place them here (sizes and MD5s are checked):",
    ]
    for s in splits:
        info = SVHN_ARCHIVES[s]
        lines.append(f"  {archive_path(root, s)}  ({info.size:,} bytes, md5 {info.md5})")
    lines.append(
        "then run `python -m stnlib data svhn` (or stnlib.svhn.build_svhn_cache(root)) once: a one-off crop of "
        "about 250k PNGs into the cache, on all CPU cores. Without real SVHN, "
        f"source='synthetic' uses the {SYNTHETIC_SOURCE}."
    )
    return "\n".join(lines)


# --------------------------------------------------------------------------- download


def _open_url(request: urllib.request.Request, timeout: float):
    """Indirection so that tests can replace the network."""
    return urllib.request.urlopen(request, timeout=timeout)


def _md5(path: Path, chunk: int = 8 << 20) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def verify_archive(path: str | os.PathLike, split: str, *, check_md5: bool = True) -> Path:
    """Check that ``path`` is the complete official ``<split>.tar.gz`` (size, then MD5).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: wrong size (truncated or a different file) or wrong MD5 (corrupt).
    """
    _check_choice(split, ARCHIVE_SPLITS, "SVHN archive split")
    path = Path(path)
    info = SVHN_ARCHIVES[split]
    if not path.is_file():
        raise FileNotFoundError(
            f"SVHN archive {path} does not exist; the official one is {SVHN_URL.format(split=split)} "
            f"({info.size:,} bytes, md5 {info.md5})."
        )
    size = path.stat().st_size
    if size != info.size:
        kind = "truncated (partial download?)" if size < info.size else "larger than the official file"
        raise DataIntegrityError(
            f"SVHN archive {path} has {size:,} bytes, expected {info.size:,}: {kind}. It is not used. "
            f"Delete it and run stnlib.svhn.download_svhn(root, splits=({split!r},)) again, or replace it "
            f"with the official {split}.tar.gz from {SVHN_PAGE}."
        )
    if check_md5:
        digest = _md5(path)
        if digest != info.md5:
            raise DataIntegrityError(
                f"SVHN archive {path} has md5 {digest}, expected {info.md5}: the file is corrupt. It is not "
                f"used. Delete it and download {split}.tar.gz again from {SVHN_PAGE}."
            )
    return path


def download_svhn(
    root: str | os.PathLike = "data",
    splits: Sequence[str] = ARCHIVE_SPLITS,
    *,
    timeout: float = 60.0,
    chunk_size: int = 1 << 20,
    progress: bool = True,
) -> dict[str, Path]:
    """Download the official SVHN format-1 archives to ``<root>/svhn/<split>.tar.gz``.

    The download goes to ``<split>.tar.gz.part`` and resumes from its length with an HTTP ``Range``
    request. Only once the full size and the MD5 match is the file renamed to its final name, so a
    final name always holds a verified archive. An existing final file is verified and not fetched again.

    Returns:
        ``{split: path}`` of the verified archives.

    Raises:
        ConnectionError: the server could not be reached (the message explains how to place the
            archives by hand; the ``.part`` file is kept for resuming).
        ValueError: unknown split; an existing archive or the finished download fails its checks.
    """
    for s in splits:
        _check_choice(s, ARCHIVE_SPLITS, "SVHN archive split")
    out: dict[str, Path] = {}
    for split in splits:
        info = SVHN_ARCHIVES[split]
        final = archive_path(root, split)
        if final.exists():
            out[split] = verify_archive(final, split)
            continue
        final.parent.mkdir(parents=True, exist_ok=True)
        part = final.with_name(final.name + ".part")
        url = SVHN_URL.format(split=split)
        offset = part.stat().st_size if part.exists() else 0
        if offset > info.size:  # our own leftover, and certainly wrong
            part.unlink()
            offset = 0
        if offset < info.size:
            _fetch(url, part, offset, info.size, timeout, chunk_size, progress, root, split)
        size = part.stat().st_size
        if size != info.size:
            raise ConnectionError(
                f"download of {url} stopped at {size:,} of {info.size:,} bytes; run download_svhn again to "
                f"resume from {part}."
            )
        digest = _md5(part)
        if digest != info.md5:
            part.unlink()
            raise DataIntegrityError(
                f"downloaded {url} has md5 {digest}, expected {info.md5}; the corrupt file was deleted. "
                "Run download_svhn again."
            )
        os.replace(part, final)
        out[split] = final
    return out


def _fetch(
    url: str, part: Path, offset: int, total: int, timeout: float, chunk_size: int, progress: bool,
    root: str | os.PathLike, split: str,
) -> None:
    """Append ``url``'s bytes from ``offset`` to ``part``; restart from 0 if the server ignores Range."""
    request = urllib.request.Request(url, headers={"User-Agent": "stnlib"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = _open_url(request, timeout)
        with response:
            status = getattr(response, "status", None) or response.getcode()
            if offset and status != 206:
                offset = 0  # server sent the whole file
            length = response.headers.get("Content-Length") if response.headers is not None else None
            if length is not None and int(length) != total - offset:
                raise ValueError(
                    f"{url} announces {int(length) + offset:,} bytes, expected {total:,}: the server's file "
                    "is not the archive this code knows; nothing was written."
                )
            bar = None
            if progress:
                from tqdm import tqdm

                bar = tqdm(total=total, initial=offset, unit="B", unit_scale=True, desc=f"SVHN {split}")
            with open(part, "ab" if offset else "wb") as f:
                while block := response.read(chunk_size):
                    f.write(block)
                    if bar is not None:
                        bar.update(len(block))
            if bar is not None:
                bar.close()
    except urllib.error.HTTPError as err:
        raise ConnectionError(
            f"could not download SVHN {split!r} from {url}: the server answered HTTP {err.code} ({err.reason}).\n"
            f"{_manual_instructions(root)}"
        ) from err
    except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError, socket.timeout) as err:
        raise ConnectionError(
            f"could not download SVHN {split!r} from {url}: {err}. This machine seems to have no internet "
            f"access (or the server is unreachable); anything received so far is kept in {part} and resumed "
            f"on the next call.\n{_manual_instructions(root)}"
        ) from err


# --------------------------------------------------------------------------- extraction and parsing


def extract_svhn(root: str | os.PathLike = "data", split: str = "train", *, verify: bool = True) -> Path:
    """Extract ``<root>/svhn/<split>.tar.gz`` to ``<root>/svhn/raw/<split>/`` (atomically).

    The archive is unpacked into a temporary folder next to the target, checked for the official layout
    (top folder ``<split>/`` holding ``digitStruct.mat``), and only then renamed into place, so a
    truncated or corrupt archive never leaves a half-filled ``raw/<split>``.

    Args:
        verify: check the archive's size and MD5 against :data:`SVHN_ARCHIVES` first. Tests of the
            file layout pass ``False``; tar/gzip errors are still reported.

    Raises:
        FileNotFoundError: no archive and no extracted folder.
        ValueError: corrupt/truncated archive, wrong layout, or a leftover incomplete folder.
    """
    _check_choice(split, ARCHIVE_SPLITS, "SVHN archive split")
    dest = raw_dir(root, split)
    if (dest / "digitStruct.mat").is_file():
        return dest
    if dest.exists():
        raise ValueError(f"{dest} exists but has no digitStruct.mat (an incomplete copy?); delete it and extract again.")
    archive = archive_path(root, split)
    if not archive.is_file():
        raise FileNotFoundError(f"SVHN format 1 {split!r} is missing: neither {dest} nor {archive} exists.\n"
                                f"{_manual_instructions(root)}")
    if verify:
        verify_archive(archive, split)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{split}-extract-", dir=dest.parent))
    try:
        try:
            with tarfile.open(archive, "r:gz") as tar:
                if hasattr(tarfile, "data_filter"):
                    tar.extractall(tmp, filter="data")
                else:  # Python < 3.11.4: refuse anything but plain files/folders inside the target
                    for member in tar.getmembers():
                        if not (member.isfile() or member.isdir()) or Path(member.name).is_absolute() or ".." in Path(member.name).parts:
                            raise tarfile.TarError(f"unsafe member {member.name!r}")
                    tar.extractall(tmp)
        except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as err:
            raise DataIntegrityError(
                f"SVHN archive {archive} is truncated or corrupt ({type(err).__name__}: {err}); nothing was "
                f"extracted and it is not used. Delete it and download {split}.tar.gz again."
            ) from err
        src = tmp / split
        if not (src / "digitStruct.mat").is_file():
            raise DataIntegrityError(
                f"SVHN archive {archive} does not have the official layout (a top folder {split + '/'!r} "
                "holding digitStruct.mat and N.png); it is not used."
            )
        os.replace(src, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def read_digit_struct(path: str | os.PathLike) -> list[tuple[str, np.ndarray]]:
    """Parse an SVHN format-1 ``digitStruct.mat`` (MATLAB v7.3 = HDF5).

    The file holds ``digitStruct/name`` and ``digitStruct/bbox``, each an ``N×1`` (or ``1×N``) array of
    object references. A name is a uint16 character array. A bbox is a struct (HDF5 group) with the
    fields ``label``, ``left``, ``top``, ``width``, ``height``; with ONE digit each field stores its value
    directly (a 1×1 float array), with several digits each field is a ``k×1`` array of references to 1×1
    arrays. Both encodings are read.

    Returns:
        ``[(name, boxes)]`` in file order; ``boxes`` is float64 ``[k, 5]`` with the columns
        ``(label, left, top, width, height)``, the label exactly as stored (10 means the digit 0).
    """
    import h5py

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise ValueError(f"{path} is not a readable MATLAB v7.3 (HDF5) file: {err}") from err
    out: list[tuple[str, np.ndarray]] = []
    with f:
        if "digitStruct" not in f or "name" not in f["digitStruct"] or "bbox" not in f["digitStruct"]:
            raise ValueError(f"{path} has no digitStruct/name and digitStruct/bbox: not an SVHN format-1 file")
        names = f["digitStruct/name"][()].ravel()
        bboxes = f["digitStruct/bbox"][()].ravel()
        if len(names) != len(bboxes):
            raise ValueError(f"{path}: {len(names)} names but {len(bboxes)} bboxes")

        def values(dataset) -> list[float]:
            data = dataset[()]
            flat = np.asarray(data).ravel()
            if h5py.check_dtype(ref=dataset.dtype) is not None:  # several digits: references
                return [float(np.asarray(f[r][()]).ravel()[0]) for r in flat]
            return [float(v) for v in flat]  # one digit: the value itself

        for name_ref, box_ref in zip(names, bboxes):
            chars = np.asarray(f[name_ref][()]).ravel()
            name = "".join(chr(int(c)) for c in chars)
            group = f[box_ref]
            cols = [values(group[key]) for key in ("label", "left", "top", "width", "height")]
            k = len(cols[0])
            if any(len(c) != k for c in cols):
                raise ValueError(f"{path}: entry {name!r} has fields of different lengths")
            out.append((name, np.array(cols, dtype=np.float64).T.reshape(k, 5)))
    return out


# --------------------------------------------------------------------------- crop protocol


def union_box(boxes: np.ndarray) -> tuple[float, float, float, float]:
    """Union of digit boxes ``[k, >=4]`` given as ``(…, left, top, width, height)`` in the LAST 4 columns.

    Convention:
        Pixel coordinates, continuous: x to the right, y DOWN; pixel ``(row i, col j)`` covers
        ``[j, j+1) × [i, i+1)``. Returns ``(left, top, right, bottom)``.
    """
    b = np.asarray(boxes, dtype=np.float64)
    if b.ndim != 2 or b.shape[0] == 0 or b.shape[1] < 4:
        raise ValueError(f"boxes must have shape [k>=1, >=4], got {list(b.shape)}")
    left, top, width, height = b[:, -4], b[:, -3], b[:, -2], b[:, -1]
    return float(left.min()), float(top.min()), float((left + width).max()), float((top + height).max())


def format1_crop_box(
    boxes: np.ndarray, image_size: tuple[int, int], *, enlarge: float = CROP_ENLARGE
) -> tuple[float, float, float, float]:
    """The Goodfellow/Jaderberg crop region: union box, enlarged about its centre, clipped to the image.

    Convention:
        Pixel coordinates, continuous: x to the right, y DOWN; pixel ``(row i, col j)`` covers
        ``[j, j+1) × [i, i+1)``, as SVHN's ``left``/``top``/``width``/``height`` are read. ``image_size``
        is ``(W, H)`` (PIL order). ``enlarge=0.3`` makes the box 1.3× wider and 1.3× taller (15 % added on
        each side). Returns float ``(x0, y0, x1, y1)``; the box keeps its (possibly non-square) aspect,
        the later resize to 64×64 stretches it.

    Raises:
        ValueError: the clipped region is empty (a box entirely outside the image).
    """
    left, top, right, bottom = union_box(boxes)
    width, height = image_size
    cx, cy = (left + right) / 2, (top + bottom) / 2
    half_w, half_h = (right - left) * (1 + enlarge) / 2, (bottom - top) * (1 + enlarge) / 2
    x0, y0 = max(0.0, cx - half_w), max(0.0, cy - half_h)
    x1, y1 = min(float(width), cx + half_w), min(float(height), cy + half_h)
    if x1 - x0 < 1e-6 or y1 - y0 < 1e-6:
        raise ValueError(f"crop region {(x0, y0, x1, y1)} of boxes {union_box(boxes)} is empty in a {width}×{height} image")
    return x0, y0, x1, y1


def crop_and_resize(
    image: Image.Image, boxes: np.ndarray, *, size: int = IMAGE_SIZE, enlarge: float = CROP_ENLARGE
) -> np.ndarray:
    """Format-1 crop of one photo: :func:`format1_crop_box`, then a bilinear resize to ``size×size``.

    The crop and the resize happen in one PIL call with a float ``box``, so there is no rounding of the
    crop to whole pixels; PIL's bilinear filter widens its support when shrinking (antialiasing).

    Convention:
        As :func:`format1_crop_box`. Returns RGB uint8 ``[3, size, size]`` (channels first).
    """
    box = format1_crop_box(boxes, image.size, enlarge=enlarge)
    out = image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR, box=box)
    return np.ascontiguousarray(np.asarray(out, dtype=np.uint8).transpose(2, 0, 1))


def encode_labels(digits: Sequence[int]) -> np.ndarray:
    """Digits (0–9; SVHN's 10 is read as 0) → int64 ``[5]`` padded with the blank class 10.

    Raises:
        ValueError: more than 5 digits, none, or a label outside 0–10.
    """
    d = [int(v) for v in digits]
    if not 1 <= len(d) <= MAX_DIGITS:
        raise ValueError(f"a sequence needs 1 to {MAX_DIGITS} digits, got {len(d)}")
    if any(not 0 <= v <= 10 for v in d):
        raise ValueError(f"digit labels must be 0-10 (10 = the digit 0), got {d}")
    out = np.full(MAX_DIGITS, BLANK, dtype=np.int64)
    out[: len(d)] = [v % 10 for v in d]
    return out


# --------------------------------------------------------------------------- real cache


def _crop_real(job: tuple[str, np.ndarray]) -> tuple[np.ndarray | None, np.ndarray | None, str]:
    """Worker: one PNG + its boxes → (image, labels, "ok") or (None, None, reason)."""
    png, boxes = job
    if boxes.shape[0] > MAX_DIGITS:
        return None, None, "too_long"
    labels = boxes[:, 0]
    if np.any((labels < 1) | (labels > 10)) or np.any(labels != np.round(labels)):
        return None, None, "bad_label"
    try:
        with Image.open(png) as img:
            img.load()
            image = crop_and_resize(img, boxes[:, 1:])
    except ValueError:
        return None, None, "bad_box"
    except (OSError, SyntaxError) as err:
        raise DataIntegrityError(f"cannot read SVHN image {png}: {err}; the extracted folder is corrupt, delete it and extract again") from err
    return image, encode_labels(labels.astype(int)), "ok"


def _map(fn, jobs: Sequence, workers: int | None, chunksize: int = 64) -> Iterator:
    """``map`` in order; a process pool when ``workers`` > 1 (results do not depend on the worker count)."""
    workers = (os.cpu_count() or 1) if workers is None else int(workers)
    if workers <= 1 or len(jobs) < 2 * chunksize:
        yield from map(fn, jobs)
        return
    import multiprocessing

    with multiprocessing.get_context().Pool(workers) as pool:
        yield from pool.imap(fn, jobs, chunksize=chunksize)


def _channel_sums(images: np.ndarray, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Per-image, per-channel sum and sum of squares (float64 ``[N, 3]`` each), in 0–255 units."""
    n = images.shape[0]
    s = np.zeros((n, images.shape[1]), dtype=np.float64)
    q = np.zeros_like(s)
    for i in range(0, n, chunk):
        x = images[i : i + chunk].reshape(min(chunk, n - i), images.shape[1], -1).astype(np.float64)
        s[i : i + chunk] = x.sum(-1)
        q[i : i + chunk] = np.square(x).sum(-1)
    return s, q


def _mean_std(sums: np.ndarray, sqsums: np.ndarray, pixels_per_image: int) -> tuple[list[float], list[float]]:
    count = sums.shape[0] * pixels_per_image
    mean = sums.sum(0) / count
    var = np.maximum(sqsums.sum(0) / count - mean**2, 0.0)
    return [float(v) for v in mean], [float(v) for v in np.sqrt(var)]


def _atomic_write_bytes(path: Path, writer) -> None:
    """Write via ``writer(fileobj)`` into a temporary file in the same folder, then ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            writer(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _atomic_savez(path: Path, **arrays: np.ndarray) -> None:
    _atomic_write_bytes(path, lambda f: np.savez(f, **arrays))


def _atomic_write_json(path: Path, obj: Any) -> None:
    _atomic_write_bytes(path, lambda f: f.write((json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()))


def _ensure_raw(root: str | os.PathLike, split: str, *, download: bool, verify: bool) -> Path:
    dest = raw_dir(root, split)
    if (dest / "digitStruct.mat").is_file():
        return dest
    if not archive_path(root, split).is_file():
        if not download:
            raise FileNotFoundError(
                f"SVHN format 1 {split!r} is missing: neither {dest} nor {archive_path(root, split)} exists.\n"
                f"{_manual_instructions(root)}"
            )
        download_svhn(root, (split,))
    return extract_svhn(root, split, verify=verify)


def build_svhn_cache(
    root: str | os.PathLike = "data",
    *,
    include_extra: bool = True,
    download: bool = False,
    verify: bool = True,
    workers: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Preprocess real SVHN format 1 into ``<root>/svhn/cache/{train,test}.npz`` + ``metadata.json``.

    Each split is extracted if needed (from a verified archive; ``download=True`` fetches missing
    archives), its ``digitStruct.mat`` parsed, and every image cropped with :func:`crop_and_resize`.
    Numbers with more than 5 digits are dropped and counted, as are (never seen in the official data)
    labels outside 1–10 and boxes entirely outside the image. ``train`` is train + extra (in that order,
    each in ``digitStruct`` order) unless ``include_extra=False``.

    The npz files hold ``images`` (uint8 ``[N,3,64,64]``), ``labels`` (int64 ``[N,5]``, blank = 10) and
    ``names`` (``"<split>/<file>.png"``). ``metadata.json`` (written last, so its presence marks a
    complete cache) has the counts, the dropped counts and the per-channel mean/std of ``train`` in
    0–255 units. Every file is written atomically.

    Returns:
        The metadata dict.
    """
    t0 = time.time()
    train_sources = SPLIT_SOURCES["train"] if include_extra else ("train",)
    plan = {"train": train_sources, "test": SPLIT_SOURCES["test"]}
    needed = (*train_sources, "test")
    missing = [s for s in needed if not (raw_dir(root, s) / "digitStruct.mat").is_file() and not archive_path(root, s).is_file()]
    if missing and not download:
        raise FileNotFoundError(
            f"real SVHN format 1 is incomplete under {svhn_dir(root)}: {', '.join(map(repr, missing))} missing "
            f"(neither raw/<split>/digitStruct.mat nor <split>.tar.gz).\n{_manual_instructions(root, missing)}"
        )
    folders = {s: _ensure_raw(root, s, download=download, verify=verify) for s in needed}
    meta: dict[str, Any] = {
        "schema": CACHE_SCHEMA,
        "source": REAL_SOURCE,
        "url": SVHN_PAGE,
        "image_size": IMAGE_SIZE,
        "crop": "union of the digit boxes, enlarged 30% in x and y about its centre, clipped to the image, "
        "bilinear resize (PIL) to 64x64, RGB",
        "labels": "5 positions; digits 0-9 (SVHN label 10 = digit 0), blank = 10; numbers longer than 5 dropped",
        "splits": {},
    }
    cdir = cache_dir(root)
    cdir.mkdir(parents=True, exist_ok=True)
    stale = cdir / "metadata.json"
    if stale.exists():
        stale.unlink()  # the old cache is no longer complete once we start overwriting it
    for out_split, sources in (("test", plan["test"]), ("train", plan["train"])):
        per_source: dict[str, dict[str, int]] = {}
        entries: list[tuple[str, np.ndarray, str]] = []
        for s in sources:
            parsed = read_digit_struct(folders[s] / "digitStruct.mat")
            entries += [(str(folders[s] / name), boxes, f"{s}/{name}") for name, boxes in parsed]
            per_source[s] = {"images": len(parsed)}
        images = np.empty((len(entries), 3, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
        labels = np.empty((len(entries), MAX_DIGITS), dtype=np.int64)
        names: list[str] = []
        dropped = {"too_long": 0, "bad_label": 0, "bad_box": 0}
        dropped_by_source = {s: dict(dropped) for s in sources}
        jobs = [(png, boxes) for png, boxes, _ in entries]
        results = _map(_crop_real, jobs, workers)
        if progress:
            from tqdm import tqdm

            results = tqdm(results, total=len(jobs), desc=f"SVHN {out_split} crops")
        n = 0
        for (_, _, name), (image, label, reason) in zip(entries, results):
            if image is None:
                dropped[reason] += 1
                dropped_by_source[name.split("/", 1)[0]][reason] += 1
                continue
            images[n], labels[n] = image, label
            names.append(name)
            n += 1
        images, labels = images[:n], labels[:n]
        for s in sources:
            per_source[s].update(kept=per_source[s]["images"] - sum(dropped_by_source[s].values()),
                                 dropped=dropped_by_source[s])
        sums, sqsums = _channel_sums(images)
        _atomic_savez(cdir / f"{out_split}.npz", images=images, labels=labels, names=np.array(names))
        mean, std = _mean_std(sums, sqsums, IMAGE_SIZE * IMAGE_SIZE)
        meta["splits"][out_split] = {
            "sources": list(sources),
            "count": int(n),
            "dropped": dropped,
            "per_source": per_source,
            "expected_images": int(sum(SVHN_ARCHIVES[s].n_images for s in sources)),
            "mean": mean,
            "std": std,
        }
        del images, labels
    meta["mean"] = meta["splits"]["train"]["mean"]
    meta["std"] = meta["splits"]["train"]["std"]
    meta["normalization"] = "per-channel mean/std of the train cache, 0-255 units"
    meta["dropped_too_long"] = {k: v["dropped"]["too_long"] for k, v in meta["splits"].items()}
    meta["created"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    meta["build_seconds"] = round(time.time() - t0, 1)
    _atomic_write_json(cdir / "metadata.json", meta)
    return meta


def _load_npz(path: Path, keys: Sequence[str], fix: str) -> dict[str, np.ndarray]:
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


def _check_arrays(path: Path, images: np.ndarray, labels: np.ndarray, count: int | None, fix: str) -> None:
    problems = []
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (3, IMAGE_SIZE, IMAGE_SIZE):
        problems.append(f"images {images.dtype} {list(images.shape)} (want uint8 [N,3,64,64])")
    if labels.ndim != 2 or labels.shape[1] != MAX_DIGITS or labels.shape[0] != images.shape[0]:
        problems.append(f"labels {list(labels.shape)} (want [N,5] with N = {images.shape[0]})")
    elif labels.size and (labels.min() < 0 or labels.max() > BLANK):
        problems.append("labels outside 0-10")
    if count is not None and images.shape[0] != count:
        problems.append(f"{images.shape[0]} images but the metadata says {count}")
    if problems:
        raise DataIntegrityError(f"cache file {path} is inconsistent: {'; '.join(problems)}; it is not used. {fix}")


def load_svhn_cache(root: str | os.PathLike = "data", split: str = "train") -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Load one split of the real SVHN cache: ``(images uint8 [N,3,64,64], labels int64 [N,5], metadata)``.

    Raises:
        FileNotFoundError: no complete cache (``metadata.json`` missing).
        ValueError: an unreadable, truncated or inconsistent file (never used).
    """
    _check_choice(split, SPLITS, "SVHN split")
    cdir = cache_dir(root)
    fix = f"Delete {cdir} and rebuild it with stnlib.svhn.build_svhn_cache({str(root)!r})."
    meta_path = cdir / "metadata.json"
    if not meta_path.is_file():
        raise FileNotFoundError(f"no complete real SVHN cache: {meta_path} is missing. {fix}")
    try:
        meta = json.loads(meta_path.read_text())
        count = int(meta["splits"][split]["count"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise DataIntegrityError(f"cache metadata {meta_path} is corrupt ({err}); it is not used. {fix}") from err
    path = cdir / f"{split}.npz"
    arrays = _load_npz(path, ("images", "labels"), fix)
    _check_arrays(path, arrays["images"], arrays["labels"], count, fix)
    return arrays["images"], arrays["labels"].astype(np.int64, copy=False), meta


def real_svhn_available(root: str | os.PathLike = "data") -> bool:
    """True when any real SVHN format-1 material is on disk: the cache, an extracted split or an archive.

    ``source="auto"`` then commits to the real data (and reports clearly if it is incomplete); a bare
    ``.part`` download does not count.
    """
    if (cache_dir(root) / "metadata.json").exists():
        return True
    return any(raw_dir(root, s).exists() or archive_path(root, s).exists() for s in ARCHIVE_SPLITS)


# --------------------------------------------------------------------------- synthetic stand-in

#: Fonts from matplotlib's ``mpl-data/fonts/ttf``: sans, serif, mono, bold, oblique, and TeX faces.
DEFAULT_FONTS: tuple[str, ...] = (
    "DejaVuSans.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSans-Oblique.ttf",
    "DejaVuSansMono.ttf",
    "DejaVuSansMono-Bold.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSerif-Bold.ttf",
    "DejaVuSerif-Italic.ttf",
    "STIXGeneral.ttf",
    "STIXGeneralBol.ttf",
    "cmr10.ttf",
    "cmb10.ttf",
    "cmss10.ttf",
    "cmtt10.ttf",
)

#: Bump when the renderer changes in a way that changes pixels: it is part of the cache key.
GENERATOR_VERSION = 1


@dataclass(frozen=True)
class SyntheticSVHNConfig:
    """Parameters of the synthetic SVHN-like renderer (all of them enter the cache key).

    Lengths follow ``length_probs`` (1..5 digits). Geometry of the rendered "photo": rotation uniform in
    ±``max_rotation_deg`` (positive = counter-clockwise as displayed), horizontal shear uniform in
    ±``max_shear``, aspect ``2**U(±max_log2_aspect)``, perspective tilt up to ``perspective`` per font
    size. Each digit box gets annotation noise (``box_jitter`` × digit height per edge, s.d.), and the
    union box a shift up to ``crop_shift`` of its size and a scale ``2**U(±crop_log2_scale)`` before
    the format-1 crop, so that position and scale vary in the 64×64 crops as they do in real SVHN.
    """

    fonts: tuple[str, ...] = DEFAULT_FONTS
    length_probs: tuple[float, ...] = (0.15, 0.35, 0.30, 0.14, 0.06)
    font_size: tuple[int, int] = (14, 44)
    max_rotation_deg: float = 30.0
    max_shear: float = 0.3
    max_log2_aspect: float = 0.3
    perspective: float = 0.06
    tracking: tuple[float, float] = (-0.06, 0.3)
    box_jitter: float = 0.05
    crop_shift: float = 0.08
    crop_log2_scale: float = 0.2
    distractor_prob: float = 0.75
    plaque_prob: float = 0.35
    lines_prob: float = 0.35
    shadow_prob: float = 0.3
    min_contrast: float = 55.0
    max_saturation: float = 0.45
    blur_prob: float = 0.6
    max_blur: float = 1.3
    max_noise: float = 14.0
    jpeg_prob: float = 0.35

    def __post_init__(self) -> None:
        if len(self.length_probs) != MAX_DIGITS or abs(sum(self.length_probs) - 1) > 1e-6:
            raise ValueError(f"length_probs must be {MAX_DIGITS} probabilities summing to 1, got {self.length_probs}")
        if not self.fonts:
            raise ValueError("fonts must name at least one .ttf file")

    def to_json(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def font_dir() -> Path:
    """matplotlib's bundled TrueType folder (``mpl-data/fonts/ttf``)."""
    try:
        import matplotlib
    except ImportError as err:
        raise ImportError(
            f"the {SYNTHETIC_SOURCE} renders digits with the TrueType fonts that matplotlib ships, but "
            "matplotlib is not installed: pip install matplotlib (or pip install 'stnlib[book]')."
        ) from err
    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


@lru_cache(maxsize=1024)
def _font(name: str, size: int) -> ImageFont.FreeTypeFont:
    path = font_dir() / name
    if not path.is_file():
        raise FileNotFoundError(f"font {name!r} not found in {path.parent}; valid names are the .ttf files there")
    return ImageFont.truetype(str(path), size)


@lru_cache(maxsize=32768)
def _glyph(name: str, size: int, ch: str) -> tuple[Image.Image, int, int, float]:
    """Ink mask of one character: (mask "L" cropped to the ink, ink x offset, ink y offset from the
    baseline (negative = above), advance width)."""
    font = _font(name, size)
    l, t, r, b = font.getbbox(ch, anchor="ls")
    pad = 2
    canvas = Image.new("L", (r - l + 2 * pad, b - t + 2 * pad), 0)
    ImageDraw.Draw(canvas).text((pad - l, pad - t), ch, font=font, fill=255, anchor="ls")
    ink = canvas.getbbox()
    if ink is None:
        raise ValueError(f"font {name!r} renders no ink for {ch!r}")
    mask = canvas.crop(ink)
    return mask, ink[0] - pad + l, ink[1] - pad + t, float(font.getlength(ch))


def _luma(rgb: np.ndarray) -> float:
    return float(rgb @ np.array([0.299, 0.587, 0.114]))


def _colour(rng: np.random.Generator, luma: float, max_sat: float) -> np.ndarray:
    """A de-saturated RGB colour (0–255 floats) with approximately the requested luminance."""
    h, s = rng.random(), rng.uniform(0, max_sat)
    k = (np.array([5.0, 3.0, 1.0]) + 6 * h) % 6
    rgb = 1 - s * np.clip(np.minimum(k, 4 - k), 0, 1)  # HSV → RGB at value 1
    return np.clip(rgb * (luma / max(_luma(rgb), 1e-3)), 0, 255)


def _palette(rng: np.random.Generator, cfg: SyntheticSVHNConfig) -> tuple[np.ndarray, np.ndarray]:
    """Background and foreground colours whose luminances differ by at least ``min_contrast``."""
    for _ in range(20):
        bg_l = rng.uniform(15, 240)
        lo, hi = bg_l - cfg.min_contrast, bg_l + cfg.min_contrast
        options = [(0.0, lo)] if lo > 0 else []
        options += [(hi, 255.0)] if hi < 255 else []
        widths = np.array([b - a for a, b in options])
        pick = options[int(rng.choice(len(options), p=widths / widths.sum()))]
        fg_l = rng.uniform(*pick)
        bg, fg = _colour(rng, bg_l, cfg.max_saturation), _colour(rng, fg_l, cfg.max_saturation)
        if abs(_luma(bg) - _luma(fg)) >= cfg.min_contrast:
            return bg, fg
    return np.full(3, 220.0), np.full(3, 30.0)


def _background(rng: np.random.Generator, w: int, h: int, base: np.ndarray) -> Image.Image:
    """RGB ``w×h``: base colour + tinted gradient + low-frequency blotches + grain (+ stripes)."""
    x = (np.arange(w, dtype=np.float32) - w / 2) / max(w, h)
    y = (np.arange(h, dtype=np.float32) - h / 2) / max(w, h)
    ang = rng.uniform(0, 2 * np.pi)
    field = np.cos(ang) * x[None, :] + np.sin(ang) * y[:, None]  # gradient, [h, w]
    gh, gw = int(rng.integers(2, 7)), int(rng.integers(2, 9))
    blot = rng.normal(0, 1, (gh, gw)).astype(np.float32)
    field = field * rng.uniform(0, 50) + np.asarray(
        Image.fromarray(blot, mode="F").resize((w, h), Image.Resampling.BICUBIC)) * rng.uniform(0, 22)
    if rng.random() < 0.3:  # bricks / siding / wood: periodic stripes
        period = rng.uniform(4, 14)
        along = y * max(w, h) if rng.random() < 0.75 else x * max(w, h)
        stripe = (np.abs(np.sin(np.pi * along / period)) < 0.25).astype(np.float32) * rng.uniform(-35, 35)
        field = field + (stripe[:, None] if along.shape[0] == h else stripe[None, :])
    field += rng.standard_normal((h, w), dtype=np.float32) * np.float32(rng.uniform(0, 6))
    tint = 1 + rng.normal(0, 0.25, 3).astype(np.float32)  # the texture is not exactly grey
    img = base.astype(np.float32) + field[..., None] * tint
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")


def _homography(rng: np.random.Generator, cfg: SyntheticSVHNConfig, centre: tuple[float, float], size: float) -> tuple[np.ndarray, float]:
    """Forward map scene → photo (3×3) about ``centre``, and the rotation angle in degrees (CCW displayed)."""
    angle = rng.uniform(-cfg.max_rotation_deg, cfg.max_rotation_deg)
    a = math.radians(angle)
    # y points down, so a counter-clockwise turn as displayed is [[cos, sin], [-sin, cos]]
    rot = np.array([[math.cos(a), math.sin(a), 0], [-math.sin(a), math.cos(a), 0], [0, 0, 1]])
    shear = np.array([[1, rng.uniform(-cfg.max_shear, cfg.max_shear), 0], [0, 1, 0], [0, 0, 1]])
    asp = 2 ** rng.uniform(-cfg.max_log2_aspect, cfg.max_log2_aspect)
    aspect = np.diag([math.sqrt(asp), 1 / math.sqrt(asp), 1])
    tilt = np.eye(3)
    tilt[2, :2] = rng.uniform(-cfg.perspective, cfg.perspective, 2) / size
    to_centre = np.array([[1, 0, -centre[0]], [0, 1, -centre[1]], [0, 0, 1]])
    return tilt @ rot @ shear @ aspect @ to_centre, angle


def _apply_h(hom: np.ndarray, pts: np.ndarray) -> np.ndarray:
    p = pts @ hom[:, :2].T + hom[:, 2]
    return p[:, :2] / p[:, 2:3]


def _render(rng: np.random.Generator, cfg: SyntheticSVHNConfig) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """One synthetic house number: (uint8 [3,64,64], labels int64 [5], pose parameters)."""
    n = int(rng.choice(MAX_DIGITS, p=np.asarray(cfg.length_probs))) + 1
    digits = rng.integers(0, 10, n)
    if n > 1 and digits[0] == 0 and rng.random() < 0.95:  # house numbers rarely start with 0
        digits[0] = rng.integers(1, 10)
    font_idx = int(rng.integers(len(cfg.fonts)))
    font = cfg.fonts[font_idx]
    size = int(rng.integers(cfg.font_size[0], cfg.font_size[1] + 1))

    # layout on the baseline y = 0: glyph pieces; digit boxes (l, t, r, b) with a little slack
    pieces: list[tuple[Image.Image, int, int, int]] = []  # (mask, x, y, layer)
    boxes = []
    x = 0.0
    for d in digits:
        mask, ox, oy, adv = _glyph(font, size, str(int(d)))
        gx, gy = round(x + ox), round(rng.normal(0, 0.02 * size) + oy)  # whole pixels: boxes match the ink
        pieces.append((mask, gx, gy, 0))
        slack = rng.uniform(0, 0.08, 4) * size
        boxes.append([gx - slack[0], gy - slack[1], gx + mask.width + slack[2], gy + mask.height + slack[3]])
        x += adv * (1 + rng.uniform(*cfg.tracking))
    boxes = np.array(boxes)
    d_left, d_top = boxes[:, 0].min(), boxes[:, 1].min()
    d_right, d_bottom = boxes[:, 2].max(), boxes[:, 3].max()

    # distractors just outside the number: neighbouring digits, letters, dashes
    for side in (-1, 1):
        if rng.random() >= cfg.distractor_prob:
            continue
        dsize = max(8, int(size * rng.uniform(0.55, 1.15)))
        dfont = cfg.fonts[int(rng.integers(len(cfg.fonts)))] if rng.random() < 0.4 else font
        chars = [str(int(c)) if rng.random() < 0.75 else "AB-/"[int(rng.integers(4))] for c in rng.integers(0, 10, int(rng.integers(1, 3)))]
        gap = rng.uniform(0.15, 0.9) * size
        y = rng.uniform(-0.35, 0.35) * size
        if side < 0:
            cx = d_left - gap
            for ch in reversed(chars):
                try:
                    mask, ox, oy, adv = _glyph(dfont, dsize, ch)
                except ValueError:
                    continue
                pieces.append((mask, round(cx - mask.width), round(y + oy), 1))
                cx -= mask.width + 0.1 * dsize
        else:
            cx = d_right + gap
            for ch in chars:
                try:
                    mask, ox, oy, adv = _glyph(dfont, dsize, ch)
                except ValueError:
                    continue
                pieces.append((mask, round(cx), round(y + oy), 1))
                cx += mask.width + 0.1 * dsize

    # scene canvas: everything plus random margins
    xs = [p[1] for p in pieces] + [p[1] + p[0].width for p in pieces] + [d_left, d_right]
    ys = [p[2] for p in pieces] + [p[2] + p[0].height for p in pieces] + [d_top, d_bottom]
    mx, my = rng.uniform(0.4, 1.4, 2) * size
    ox0, oy0 = math.floor(min(xs) - mx), math.floor(min(ys) - my)
    sw, sh = int(math.ceil(max(xs) + mx - ox0)), int(math.ceil(max(ys) + my - oy0))
    boxes = boxes - [ox0, oy0, ox0, oy0]

    def rgb(c: np.ndarray) -> tuple[int, int, int]:
        return tuple(int(v) for v in np.clip(np.round(c), 0, 255))

    bg_col, fg_col = _palette(rng, cfg)
    scene = _background(rng, sw, sh, bg_col)
    draw = ImageDraw.Draw(scene)
    if rng.random() < cfg.plaque_prob:  # a plate behind the number, its edges visible in the crop
        m = rng.uniform(0.1, 0.5, 4) * size
        plate_l = rng.uniform(15, 240)
        if abs(plate_l - _luma(fg_col)) >= cfg.min_contrast:
            draw.rounded_rectangle(
                [d_left - ox0 - m[0], d_top - oy0 - m[1], d_right - ox0 + m[2], d_bottom - oy0 + m[3]],
                radius=rng.uniform(0, 0.3) * size, fill=rgb(_colour(rng, plate_l, cfg.max_saturation)))
    if rng.random() < cfg.lines_prob:  # door frames, window edges, cables
        for _ in range(int(rng.integers(1, 4))):
            pts = rng.uniform(0, 1, 4) * [sw, sh, sw, sh]
            if rng.random() < 0.7:  # mostly near-horizontal/vertical
                if rng.random() < 0.5:
                    pts[3] = pts[1] + rng.normal(0, 0.05) * sh
                else:
                    pts[2] = pts[0] + rng.normal(0, 0.05) * sw
            draw.line(list(pts), fill=rgb(_colour(rng, rng.uniform(0, 255), cfg.max_saturation)),
                      width=int(rng.integers(1, max(2, size // 6))))
    placed = [(mask, (px - ox0, py - oy0), layer) for mask, px, py, layer in pieces]
    if rng.random() < cfg.shadow_prob:  # embossed / shadowed digits
        dx, dy = (int(v) for v in rng.integers(-3, 4, 2))
        shade = bg_col * rng.uniform(0.2, 0.6) if _luma(bg_col) > 80 else bg_col + 60
        for mask, (px, py), _ in placed:
            scene.paste(rgb(shade), (px + dx, py + dy), mask)
    fg = rgb(fg_col + rng.normal(0, 8, 3))
    other = fg if rng.random() < 0.7 else rgb(_colour(rng, _luma(fg_col) + rng.normal(0, 25), cfg.max_saturation))
    for mask, pos, layer in placed:
        scene.paste(other if layer else fg, pos, mask)

    # pose: the photo is the warped scene; only the window around the crop is rendered
    hom, angle = _homography(rng, cfg, ((boxes[:, 0].min() + boxes[:, 2].max()) / 2, (boxes[:, 1].min() + boxes[:, 3].max()) / 2), size)
    corners = _apply_h(hom, np.array([[0, 0], [sw, 0], [0, sh], [sw, sh]], dtype=np.float64))
    lo = np.floor(corners.min(0))
    hom = np.array([[1, 0, -lo[0]], [0, 1, -lo[1]], [0, 0, 1]]) @ hom
    pw, ph = (int(v) for v in np.ceil(corners.max(0)) - lo)

    # annotated boxes: axis-aligned boxes around the warped digit boxes, with annotator noise
    ann = []
    for l, t, r, b in boxes:
        q = _apply_h(hom, np.array([[l, t], [r, t], [l, b], [r, b]]))
        ql, qt = q.min(0)
        qr, qb = q.max(0)
        jit = rng.normal(0, cfg.box_jitter * (qb - qt), 4)
        ann.append([ql + jit[0], qt + jit[1], qr + jit[2], qb + jit[3]])
    ann = np.array(ann)
    # shift/scale the whole annotation about its union centre (annotators draw loosely)
    ul, ut, ur, ub = ann[:, 0].min(), ann[:, 1].min(), ann[:, 2].max(), ann[:, 3].max()
    ucx, ucy = (ul + ur) / 2, (ut + ub) / 2
    scale = 2 ** rng.uniform(-cfg.crop_log2_scale, cfg.crop_log2_scale)
    shift = rng.uniform(-cfg.crop_shift, cfg.crop_shift, 2) * [ur - ul, ub - ut]
    ann[:, [0, 2]] = (ann[:, [0, 2]] - ucx) * scale + ucx + shift[0]
    ann[:, [1, 3]] = (ann[:, [1, 3]] - ucy) * scale + ucy + shift[1]
    ltwh = np.concatenate([ann[:, :2], ann[:, 2:] - ann[:, :2]], axis=1)
    # Rendering only a window that contains the clipped crop region gives the same pixels as
    # rendering the whole photo: crop_and_resize clips to the photo, and the window covers the clip.
    x0, y0, x1, y1 = format1_crop_box(ltwh, (pw, ph))
    wx, wy = math.floor(x0), math.floor(y0)
    window = (math.ceil(x1) - wx, math.ceil(y1) - wy)
    inv = np.linalg.inv(np.array([[1, 0, -wx], [0, 1, -wy], [0, 0, 1]]) @ hom)
    inv /= inv[2, 2]
    photo = scene.transform(window, Image.Transform.PERSPECTIVE, tuple(inv.ravel()[:8]),
                            resample=Image.Resampling.BILINEAR, fillcolor=rgb(bg_col))
    crop = crop_and_resize(photo, ltwh - [wx, wy, 0, 0])  # the real-data protocol, unchanged

    # camera: blur, lighting, noise, compression
    out = Image.fromarray(crop.transpose(1, 2, 0))
    if rng.random() < cfg.blur_prob:
        out = out.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, cfg.max_blur)))
    arr = np.asarray(out, dtype=np.float32)
    if rng.random() < 0.4:
        ramp = (np.arange(IMAGE_SIZE, dtype=np.float32) + 0.5) / IMAGE_SIZE - 0.5
        g = rng.uniform(-1, 1) * ramp[None, :] + rng.uniform(-1, 1) * ramp[:, None]
        arr = arr * (1 + rng.uniform(0.2, 0.7) * g[..., None])
    arr = (arr - 128) * rng.uniform(0.75, 1.15) + 128 + rng.uniform(-20, 20)
    arr += rng.standard_normal(arr.shape, dtype=np.float32) * np.float32(rng.uniform(0, cfg.max_noise))
    arr = np.clip(arr, 0, 255).astype(np.uint8)
    if rng.random() < cfg.jpeg_prob:
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format="JPEG", quality=int(rng.integers(20, 80)))
        buf.seek(0)
        arr = np.asarray(Image.open(buf).convert("RGB"))
    pose = {"angle_deg": angle, "n_digits": n, "font": font_idx, "font_size": size, "crop_scale": scale}
    return np.ascontiguousarray(arr.transpose(2, 0, 1)), encode_labels(digits), pose


_SPLIT_KEY = {"train": 0, "test": 1}
#: Images per job of the generation pool (the output does not depend on it).
_SYNTHETIC_CHUNK = 256


def _synthetic_chunk(job: tuple[int, str, int, int, SyntheticSVHNConfig]) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    seed, split, start, stop, cfg = job
    images = np.empty((stop - start, 3, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    labels = np.empty((stop - start, MAX_DIGITS), dtype=np.int64)
    poses: dict[str, list] = {}
    for i in range(start, stop):
        # one independent stream per image: results do not depend on chunking or worker count
        rng = np.random.default_rng([seed, _SPLIT_KEY[split], i])
        images[i - start], labels[i - start], pose = _render(rng, cfg)
        for k, v in pose.items():
            poses.setdefault(k, []).append(v)
    return images, labels, {k: np.asarray(v) for k, v in poses.items()}


def make_synthetic_svhn(
    n: int,
    seed: int = 0,
    *,
    split: str = "train",
    start: int = 0,
    config: SyntheticSVHNConfig | None = None,
    workers: int | None = 1,
    return_pose: bool = False,
    progress: bool = False,
):
    """Render ``n`` synthetic SVHN-like house numbers (a stand-in, NOT real SVHN).

    Image ``i`` of a split is drawn from its own generator ``default_rng([seed, split_key, i])``, so the
    result is byte-identical for the same ``(seed, split, start, n, config)`` whatever ``workers`` is,
    ``train`` and ``test`` never share an image stream, and the first ``m`` images of a larger set are the
    set of size ``m``.

    Returns:
        ``(images uint8 [n,3,64,64], labels int64 [n,5])``, plus a dict of per-image pose arrays
        (``angle_deg``, ``n_digits``, ``font``, ``font_size``, ``crop_scale``) when ``return_pose``.
    """
    _check_choice(split, SPLITS, "SVHN split")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    cfg = config or SyntheticSVHNConfig()
    font_dir()  # clear error before any work if matplotlib is missing
    chunk = _SYNTHETIC_CHUNK
    jobs = [(int(seed), split, a, min(a + chunk, start + n), cfg) for a in range(start, start + n, chunk)]
    images = np.empty((n, 3, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    labels = np.empty((n, MAX_DIGITS), dtype=np.int64)
    poses: dict[str, list[np.ndarray]] = {}
    results = _map(_synthetic_chunk, jobs, workers, chunksize=1) if len(jobs) > 1 else map(_synthetic_chunk, jobs)
    if progress:
        from tqdm import tqdm

        results = tqdm(results, total=len(jobs), desc=f"synthetic SVHN {split}", unit="chunk")
    for (_, _, a, b, _), (im, lab, pose) in zip(jobs, results):
        images[a - start : b - start], labels[a - start : b - start] = im, lab
        for k, v in pose.items():
            poses.setdefault(k, []).append(v)
    if return_pose:
        return images, labels, {k: np.concatenate(v) if v else np.zeros(0) for k, v in poses.items()}
    return images, labels


def _synthetic_key(seed: int, cfg: SyntheticSVHNConfig) -> str:
    blob = json.dumps({"generator": GENERATOR_VERSION, "seed": int(seed), "config": cfg.to_json()}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def synthetic_dir(root: str | os.PathLike, seed: int, config: SyntheticSVHNConfig | None = None) -> Path:
    """``<root>/svhn-synthetic/<hash of generator version, seed and config>``."""
    return Path(root) / "svhn-synthetic" / _synthetic_key(seed, config or SyntheticSVHNConfig())


def synthetic_svhn_arrays(
    split: str,
    n: int,
    *,
    root: str | os.PathLike = "data",
    seed: int = 0,
    config: SyntheticSVHNConfig | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """The first ``n`` synthetic images of ``split``, from the cache (generated and cached if needed).

    The cache ``<root>/svhn-synthetic/<hash>/<split>.npz`` (+ ``<split>.json``) holds the longest prefix
    generated so far, with per-image channel sums, so the mean/std of any prefix is exact.

    Returns:
        ``(images, labels, meta)``; ``meta["mean"]``/``meta["std"]`` are for these ``n`` images.
    """
    _check_choice(split, SPLITS, "SVHN split")
    cfg = config or SyntheticSVHNConfig()
    folder = synthetic_dir(root, seed, cfg)
    path, meta_path = folder / f"{split}.npz", folder / f"{split}.json"
    fix = f"Delete {folder} to regenerate it."
    have: dict[str, np.ndarray] | None = None
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text())
            count = int(meta["count"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
            raise DataIntegrityError(f"synthetic cache metadata {meta_path} is corrupt ({err}); it is not used. {fix}") from err
        have = _load_npz(path, ("images", "labels", "channel_sum", "channel_sqsum"), fix)
        _check_arrays(path, have["images"], have["labels"], count, fix)
    if have is None or have["images"].shape[0] < n:
        start = 0 if have is None else have["images"].shape[0]
        t0 = time.time()
        images, labels = make_synthetic_svhn(n - start, seed, split=split, start=start, config=cfg,
                                             workers=workers, progress=progress)
        sums, sqsums = _channel_sums(images)
        if have is not None:
            images = np.concatenate([have["images"], images])
            labels = np.concatenate([have["labels"], labels])
            sums = np.concatenate([have["channel_sum"], sums])
            sqsums = np.concatenate([have["channel_sqsum"], sqsums])
        have = {"images": images, "labels": labels, "channel_sum": sums, "channel_sqsum": sqsums}
        _atomic_savez(path, **have)
        import matplotlib

        meta = {
            "schema": CACHE_SCHEMA,
            "source": SYNTHETIC_SOURCE,
            "split": split,
            "count": int(images.shape[0]),
            "seed": int(seed),
            "generator_version": GENERATOR_VERSION,
            "config": cfg.to_json(),
            "matplotlib_version": matplotlib.__version__,
            "pillow_version": Image.__version__,
            "numpy_version": np.__version__,
            "crop": "format-1 protocol of the real data (stnlib.svhn.crop_and_resize) on rendered boxes",
            "last_generation_seconds": round(time.time() - t0, 2),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        _atomic_write_json(meta_path, meta)
    mean, std = _mean_std(have["channel_sum"][:n], have["channel_sqsum"][:n], IMAGE_SIZE * IMAGE_SIZE)
    out_meta = dict(meta, count=n, cached_count=int(have["images"].shape[0]), mean=mean, std=std)
    return have["images"][:n], have["labels"][:n], out_meta


# --------------------------------------------------------------------------- task


class SVHNTask(Task):
    """One split of SVHN format 1 (real or the synthetic stand-in), held as one uint8 tensor on ``device``.

    ``batches`` (from :class:`stnlib.data.Task`) yields ``(x, y, {})``: ``x`` float32 ``[B,3,64,64]``
    normalised per channel with the mean/std of the TRAIN split, ``y`` int64 ``[B,5]`` (blank = 10).
    There is no augmentation (spec §3.4), so ``info`` is empty and ``generator`` only shuffles.
    ``mean``/``std`` are in pixel units of [0, 1] like every :class:`Task`; ``metadata["mean"]`` has
    them in 0–255 units as the cache stores them.
    """

    name = "svhn"
    input_shape = (3, IMAGE_SIZE, IMAGE_SIZE)
    num_classes = NUM_CLASSES

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
        if tuple(labels.shape) != (images.shape[0], MAX_DIGITS):
            raise ValueError(f"labels must be [N,5] with N={images.shape[0]}, got {list(labels.shape)}")
        _check_choice(split, SPLITS, "SVHN split")
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
        index = torch.as_tensor(index, dtype=torch.int64).flatten()
        if index.numel() and (index.min() < 0 or index.max() >= self.num_examples):
            raise ValueError(f"index out of range 0..{self.num_examples - 1}")
        index = index.to(self.device)
        x = self.images[index].to(torch.float32) / 255.0
        return self._finish(x), self.labels[index], {}


def _resolve_source(source: str, root: str | os.PathLike) -> str:
    _check_choice(source, SOURCES, "SVHN source")
    if source != "auto":
        return source
    if real_svhn_available(root):
        return "real"
    parts = [p for s in ARCHIVE_SPLITS if (p := archive_path(root, s).with_name(f"{s}.tar.gz.part")).exists()]
    hint = f" (unfinished downloads: {', '.join(map(str, parts))}; resume with stnlib.svhn.download_svhn)" if parts else ""
    warnings.warn(
        f"real SVHN format 1 not found under {svhn_dir(root)}{hint}; using the {SYNTHETIC_SOURCE}. "
        "Its numbers are not comparable with the paper's.",
        SyntheticDataWarning,
        stacklevel=3,
    )
    return "synthetic"


def _positive(name: str, value: int | None) -> int | None:
    if value is not None and (isinstance(value, bool) or int(value) != value or value < 1):
        raise ValueError(f"{name} must be None or a positive int, got {value!r}")
    return None if value is None else int(value)


def get_svhn_task(
    split: str,
    *,
    root: str | os.PathLike = "data",
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
    _check_choice(split, SPLITS, "SVHN split")
    n_train, n_test, subset = _positive("n_train", n_train), _positive("n_test", n_test), _positive("subset", subset)
    source = _resolve_source(source, root)
    wanted = n_train if split == "train" else n_test
    if source == "real":
        if not (cache_dir(root) / "metadata.json").is_file():
            build_svhn_cache(root, workers=workers, progress=progress)
        images, labels, meta = load_svhn_cache(root, split)
        mean, std, label = meta["mean"], meta["std"], REAL_SOURCE
        if wanted is not None and wanted < len(images):
            pick = np.sort(np.random.default_rng([seed, _SPLIT_KEY[split]]).choice(len(images), wanted, replace=False))
            images, labels = images[pick], labels[pick]
        elif wanted is not None:
            raise ValueError(f"n_{split}={wanted} exceeds the {len(images)} real SVHN {split} examples")
    else:
        n_tr = 235_755 if n_train is None else n_train
        tr_images, tr_labels, tr_meta = synthetic_svhn_arrays(
            "train", n_tr, root=root, seed=seed, config=config, workers=workers, progress=progress)
        mean, std, label = tr_meta["mean"], tr_meta["std"], SYNTHETIC_SOURCE
        if split == "train":
            images, labels, meta = tr_images, tr_labels, tr_meta
        else:
            del tr_images, tr_labels
            images, labels, meta = synthetic_svhn_arrays(
                "test", 13_068 if n_test is None else n_test, root=root, seed=seed, config=config,
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


def prepare(dataset: str = "svhn", root: str | os.PathLike = "data", **options: Any) -> str:
    """Make SVHN ready under ``root`` (``python -m stnlib data svhn|svhn-synthetic``) and say how.

    ``"svhn"``: the real format-1 cache; builds it from archives/extracted folders on disk, downloading
    missing archives (a :class:`ConnectionError` with the by-hand instructions when offline).
    ``"svhn-synthetic"``: generates and caches the stand-in (``n_train``/``n_test``/``seed`` options,
    default the real sizes).
    """
    _check_choice(dataset, PREPARE_CHOICES, "SVHN dataset")
    if dataset == "svhn":
        if (cache_dir(root) / "metadata.json").is_file():
            _, _, meta = load_svhn_cache(root, "test")
        else:
            meta = build_svhn_cache(root, download=True, **options)
        counts = {k: v["count"] for k, v in meta["splits"].items()}
        dropped = meta.get("dropped_too_long")
        return f"{REAL_SOURCE} ready in {cache_dir(root)}: {counts} images ({dropped} longer than 5 digits dropped)"
    seed = int(options.pop("seed", 0))
    n_train, n_test = options.pop("n_train", None) or 235_755, options.pop("n_test", None) or 13_068
    for split, n in (("train", n_train), ("test", n_test)):
        synthetic_svhn_arrays(split, n, root=root, seed=seed, **options)
    return f"{SYNTHETIC_SOURCE} ready in {synthetic_dir(root, seed, options.get('config'))}: train {n_train}, test {n_test} (seed {seed})"


# --------------------------------------------------------------------------- loss and error


def _check_logits(logits: Tensor, y: Tensor) -> None:
    if logits.dim() != 3 or logits.shape[1:] != (MAX_DIGITS, NUM_CLASSES):
        raise ValueError(f"logits must be [N,5,11], got {list(logits.shape)}")
    if y.shape != logits.shape[:2]:
        raise ValueError(f"y must be [N,5] matching logits {list(logits.shape)}, got {list(y.shape)}")


def sequence_loss(logits: Tensor, y: Tensor) -> Tensor:
    """Sum over the 5 positions of the batch-mean cross-entropy (spec §4.3, pitfall 8)."""
    _check_logits(logits, y)
    per = F.cross_entropy(logits.transpose(1, 2), y.long(), reduction="none")  # [N, 5]
    return per.mean(0).sum()


def sequence_error(logits: Tensor, y: Tensor) -> float:
    """Fraction of sequences with at least one wrong position (blanks included): whole-number error."""
    _check_logits(logits, y)
    if logits.shape[0] == 0:
        raise ValueError("sequence_error of an empty batch is undefined")
    wrong = (logits.argmax(-1) != y.to(logits.device)).any(1)
    return float(wrong.float().mean().item())
