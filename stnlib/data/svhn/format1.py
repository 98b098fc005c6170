"""Real SVHN format 1: ``digitStruct.mat``, the crop protocol, and the uint8 cache training reads.

The crop follows Goodfellow et al. (2014) and Jaderberg et al. (2015), which the authors' unpublished
preprocessing most likely followed too (see the book's Protocol page): the union of the digit boxes,
enlarged by 30 % about its centre, clipped to the image, resized to 64×64. Numbers with more than five
digits are dropped and counted. ``train`` is the official train + extra sets (235,755 images before
dropping), ``test`` the official test set (13,068).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from stnlib.data.base import SPLITS, check_choice
from stnlib.data.svhn.archives import (
    ARCHIVE_SPLITS, SPLIT_SOURCES, SVHN_ARCHIVES, SVHN_PAGE, manual_instructions, archive_path, cache_dir,
    download_svhn, extract_svhn, raw_dir, svhn_dir,
)
from stnlib.data.svhn.cache import (
    CACHE_SCHEMA, IMAGE_SIZE, atomic_savez, channel_mean_std, channel_sums, check_arrays, load_npz,
    parallel_map,
)
from stnlib.datasets import SVHN_BLANK, SVHN_POSITIONS
from stnlib.io import DataIntegrityError, atomic_write_json

REAL_SOURCE = "real SVHN format 1"
CROP_ENLARGE = 0.30

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
    if not 1 <= len(d) <= SVHN_POSITIONS:
        raise ValueError(f"a sequence needs 1 to {SVHN_POSITIONS} digits, got {len(d)}")
    if any(not 0 <= v <= 10 for v in d):
        raise ValueError(f"digit labels must be 0-10 (10 = the digit 0), got {d}")
    out = np.full(SVHN_POSITIONS, SVHN_BLANK, dtype=np.int64)
    out[: len(d)] = [v % 10 for v in d]
    return out


# --------------------------------------------------------------------------- real cache


def _crop_real(job: tuple[str, np.ndarray]) -> tuple[np.ndarray | None, np.ndarray | None, str]:
    """Worker: one PNG + its boxes → (image, labels, "ok") or (None, None, reason)."""
    png, boxes = job
    if boxes.shape[0] > SVHN_POSITIONS:
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


def _ensure_raw(root: str | os.PathLike, split: str, *, download: bool, verify: bool) -> Path:
    dest = raw_dir(root, split)
    if (dest / "digitStruct.mat").is_file():
        return dest
    if not archive_path(root, split).is_file():
        if not download:
            raise FileNotFoundError(
                f"SVHN format 1 {split!r} is missing: neither {dest} nor {archive_path(root, split)} exists.\n"
                f"{manual_instructions(root)}"
            )
        download_svhn(root, (split,))
    return extract_svhn(root, split, verify=verify)


def build_svhn_cache(
    root: str | os.PathLike | None = None,
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
            f"(neither raw/<split>/digitStruct.mat nor <split>.tar.gz).\n{manual_instructions(root, missing)}"
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
        meta["splits"][out_split] = _crop_split(out_split, sources, folders, cdir, workers, progress)
    meta["mean"] = meta["splits"]["train"]["mean"]
    meta["std"] = meta["splits"]["train"]["std"]
    meta["normalization"] = "per-channel mean/std of the train cache, 0-255 units"
    meta["dropped_too_long"] = {k: v["dropped"]["too_long"] for k, v in meta["splits"].items()}
    meta["created"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    meta["build_seconds"] = round(time.time() - t0, 1)
    atomic_write_json(cdir / "metadata.json", meta, indent=2)
    return meta


def _crop_split(out_split: str, sources: Sequence[str], folders: dict[str, Path], cdir: Path,
                workers: int | None, progress: bool) -> dict[str, Any]:
    """Crop every image of ``sources`` into ``<cdir>/<out_split>.npz``; return the split's metadata."""
    per_source: dict[str, dict[str, Any]] = {}
    entries: list[tuple[str, np.ndarray, str]] = []
    for s in sources:
        parsed = read_digit_struct(folders[s] / "digitStruct.mat")
        entries += [(str(folders[s] / name), boxes, f"{s}/{name}") for name, boxes in parsed]
        per_source[s] = {"images": len(parsed)}
    images = np.empty((len(entries), 3, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    labels = np.empty((len(entries), SVHN_POSITIONS), dtype=np.int64)
    names: list[str] = []
    dropped = {"too_long": 0, "bad_label": 0, "bad_box": 0}
    dropped_by_source = {s: dict(dropped) for s in sources}
    jobs = [(png, boxes) for png, boxes, _ in entries]
    results = parallel_map(_crop_real, jobs, workers)
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
    sums, sqsums = channel_sums(images)
    atomic_savez(cdir / f"{out_split}.npz", images=images, labels=labels, names=np.array(names))
    mean, std = channel_mean_std(sums, sqsums, IMAGE_SIZE * IMAGE_SIZE)
    return {
        "sources": list(sources),
        "count": int(n),
        "dropped": dropped,
        "per_source": per_source,
        "expected_images": int(sum(SVHN_ARCHIVES[s].n_images for s in sources)),
        "mean": mean,
        "std": std,
    }


def load_svhn_cache(root: str | os.PathLike | None = None, split: str = "train") -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Load one split of the real SVHN cache: ``(images uint8 [N,3,64,64], labels int64 [N,5], metadata)``.

    Raises:
        FileNotFoundError: no complete cache (``metadata.json`` missing).
        ValueError: an unreadable, truncated or inconsistent file (never used).
    """
    check_choice(split, SPLITS, "SVHN split")
    cdir = cache_dir(root)
    fix = f"Delete {cdir} and rebuild it with stnlib.data.svhn.build_svhn_cache({str(root)!r})."
    meta_path = cdir / "metadata.json"
    if not meta_path.is_file():
        raise FileNotFoundError(f"no complete real SVHN cache: {meta_path} is missing. {fix}")
    try:
        meta = json.loads(meta_path.read_text())
        count = int(meta["splits"][split]["count"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise DataIntegrityError(f"cache metadata {meta_path} is corrupt ({err}); it is not used. {fix}") from err
    path = cdir / f"{split}.npz"
    arrays = load_npz(path, ("images", "labels"), fix)
    check_arrays(path, arrays["images"], arrays["labels"], count, fix)
    return arrays["images"], arrays["labels"].astype(np.int64, copy=False), meta


def real_svhn_available(root: str | os.PathLike | None = None) -> bool:
    """True when any real SVHN format-1 material is on disk: the cache, an extracted split or an archive.

    ``source="auto"`` then commits to the real data (and reports clearly if it is incomplete); a bare
    ``.part`` download does not count.
    """
    if (cache_dir(root) / "metadata.json").exists():
        return True
    return any(raw_dir(root, s).exists() or archive_path(root, s).exists() for s in ARCHIVE_SPLITS)
