"""Files that are never half written, and files that are what they claim to be.

* :func:`atomic_write` (and its ``_bytes``/``_text``/``_json`` forms): the one way stnlib writes a
  file. The content goes to a temporary file in the target's folder, is flushed and fsynced, may be
  checked (``check``), and only then renamed over the target. A reader never sees a partial file,
  and a process killed mid-write leaves the old file (or none) in place.
* :func:`file_digest` and :func:`check_digest`: the one checksum check (MD5 for the published
  dataset files, SHA-256 for pinned packages). A mismatch raises :class:`DataIntegrityError`
  naming the file, both digests and the fix.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

DIGESTS: tuple[str, ...] = ("md5", "sha256")


class DataIntegrityError(ValueError):
    """A file exists but is not what it should be (wrong checksum, size, shape or format)."""


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], Any], *,
                 check: Callable[[Path], Any] | None = None) -> Path:
    """Write a file atomically: ``write(f)`` fills a temporary file that replaces ``path`` at the end.

    Args:
        path: the target; its folder is created if needed.
        write: called with the temporary file opened for binary writing.
        check: called with the temporary file's path after it is complete and synced; raising
            aborts the write (the temporary file is deleted, the target untouched).

    Returns:
        ``path`` as a :class:`~pathlib.Path`. Files are created world-readable (0644): records and
        caches are shared, readable artefacts.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if check is not None:
            check(Path(tmp))
        os.chmod(tmp, 0o644)  # mkstemp creates 0600
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def atomic_write_bytes(path: str | os.PathLike, payload: bytes, *,
                       check: Callable[[Path], Any] | None = None) -> Path:
    """:func:`atomic_write` of a bytes payload."""
    return atomic_write(path, lambda f: f.write(payload), check=check)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """:func:`atomic_write` of UTF-8 text."""
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def json_default(obj: Any) -> Any:
    """JSON for the values records hold besides plain Python: numpy scalars and arrays, tuples, paths."""
    import numpy as np

    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (tuple, set)):
        return list(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def dumps_json(obj: Any, *, indent: int | None = 1) -> str:
    """The project's JSON text: sorted keys, a final newline, numpy values allowed."""
    return json.dumps(obj, indent=indent, sort_keys=True, default=json_default) + "\n"


def atomic_write_json(path: str | os.PathLike, obj: Any, *, indent: int | None = 1) -> Path:
    """:func:`atomic_write` of ``obj`` as JSON (see :func:`dumps_json`). Serialisation happens first,
    so an object that cannot be written leaves the old file untouched."""
    text = dumps_json(obj, indent=indent)
    return atomic_write_text(path, text)


def atomic_save_torch(path: str | os.PathLike, obj: Any) -> Path:
    """:func:`atomic_write` of a ``torch.save`` payload (checkpoints: tensors, numbers, lists, dicts)."""
    import torch

    return atomic_write(path, lambda f: torch.save(obj, f))


def file_digest(path: str | os.PathLike, algorithm: str = "md5", *, chunk: int = 8 << 20) -> str:
    """Hex digest of a file's bytes (``md5`` or ``sha256``), read in chunks."""
    if algorithm not in DIGESTS:
        raise ValueError(f"unknown digest {algorithm!r}; valid choices: {', '.join(DIGESTS)}")
    # usedforsecurity=False: an integrity check against published checksums, not a security control.
    h = hashlib.new(algorithm, usedforsecurity=False)
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def check_digest(path: str | os.PathLike, expected: str, algorithm: str = "md5", *,
                 what: str | None = None, fix: str = "") -> Path:
    """Return ``path`` if its digest is ``expected``; raise :class:`DataIntegrityError` otherwise.

    The message names the file (``what`` describes it, e.g. "SVHN archive test.tar.gz"), the
    actual and expected digests, and ``fix`` (what to do about it).
    """
    path = Path(path)
    actual = file_digest(path, algorithm)
    if actual != expected:
        label = what or str(path)
        raise DataIntegrityError(
            f"{label} ({path}) has {algorithm} {actual}, expected {expected}: it is corrupt, partial or "
            f"a different file, so it is not used. {fix}".rstrip()
        )
    return path
