"""The official SVHN format-1 archives: where they live, how they are downloaded, verified and extracted.

``train``, ``test`` and ``extra`` come as ``<split>.tar.gz`` from the SVHN page. A download goes to
``<split>.tar.gz.part``, resumes with an HTTP ``Range`` request, and is renamed to its final name only
once its size and MD5 match, so a final name always holds a verified archive. Extraction unpacks into a
temporary folder and renames it into ``<root>/svhn/raw/<split>/`` only when the layout is right.
"""

from __future__ import annotations

import gzip
import http.client
import os
import shutil
import socket
import tarfile
import tempfile
import urllib.error
import urllib.request
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from stnlib.data.base import check_choice
from stnlib.io import DataIntegrityError, file_digest
from stnlib.paths import data_root

#: The three official format-1 archives.
ARCHIVE_SPLITS: tuple[str, ...] = ("train", "test", "extra")
SVHN_URL = "http://ufldl.stanford.edu/housenumbers/{split}.tar.gz"
SVHN_PAGE = "http://ufldl.stanford.edu/housenumbers/"


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


# --------------------------------------------------------------------------- where the files live


def svhn_dir(root: str | os.PathLike | None = None) -> Path:
    """``<root>/svhn`` (default root: :func:`stnlib.paths.data_root`): archives, ``raw/`` and ``cache/``."""
    return data_root(root) / "svhn"


def archive_path(root: str | os.PathLike, split: str) -> Path:
    """Where the official ``<split>.tar.gz`` is expected (download target, or place it by hand)."""
    return svhn_dir(root) / f"{split}.tar.gz"


def raw_dir(root: str | os.PathLike, split: str) -> Path:
    """``<root>/svhn/raw/<split>``: the extracted ``digitStruct.mat`` and ``N.png`` files."""
    return svhn_dir(root) / "raw" / split


def cache_dir(root: str | os.PathLike | None = None) -> Path:
    """``<root>/svhn/cache``: the preprocessed 64×64 uint8 arrays."""
    return svhn_dir(root) / "cache"


def manual_instructions(root: str | os.PathLike, splits: Sequence[str] = ARCHIVE_SPLITS) -> str:
    lines = [
        f"To use real SVHN format 1, download the archives on a machine with internet access from {SVHN_PAGE}",
        "and place them here (sizes and MD5s are checked):",
    ]
    for s in splits:
        info = SVHN_ARCHIVES[s]
        lines.append(f"  {archive_path(root, s)}  ({info.size:,} bytes, md5 {info.md5})")
    lines.append(
        "then run `python -m stnlib data svhn` (or stnlib.data.svhn.build_svhn_cache(root)) once: a one-off crop of "
        "about 250k PNGs into the cache, on all CPU cores. Without real SVHN, "
        "source='synthetic' uses the synthetic SVHN-like stand-in."
    )
    return "\n".join(lines)


# --------------------------------------------------------------------------- download


def _open_url(request: urllib.request.Request, timeout: float):
    """Indirection so that tests can replace the network."""
    return urllib.request.urlopen(request, timeout=timeout)


def verify_archive(path: str | os.PathLike, split: str, *, check_md5: bool = True) -> Path:
    """Check that ``path`` is the complete official ``<split>.tar.gz`` (size, then MD5).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: wrong size (truncated or a different file) or wrong MD5 (corrupt).
    """
    check_choice(split, ARCHIVE_SPLITS, "SVHN archive split")
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
            f"Delete it and run stnlib.data.svhn.download_svhn(root, splits=({split!r},)) again, or replace it "
            f"with the official {split}.tar.gz from {SVHN_PAGE}."
        )
    if check_md5:
        digest = file_digest(path, "md5")
        if digest != info.md5:
            raise DataIntegrityError(
                f"SVHN archive {path} has md5 {digest}, expected {info.md5}: the file is corrupt. It is not "
                f"used. Delete it and download {split}.tar.gz again from {SVHN_PAGE}."
            )
    return path


def download_svhn(
    root: str | os.PathLike | None = None,
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
        check_choice(s, ARCHIVE_SPLITS, "SVHN archive split")
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
        digest = file_digest(part, "md5")
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
            f"{manual_instructions(root)}"
        ) from err
    except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError, socket.timeout) as err:
        raise ConnectionError(
            f"could not download SVHN {split!r} from {url}: {err}. This machine seems to have no internet "
            f"access (or the server is unreachable); anything received so far is kept in {part} and resumed "
            f"on the next call.\n{manual_instructions(root)}"
        ) from err


# --------------------------------------------------------------------------- extraction and parsing


def extract_svhn(root: str | os.PathLike | None = None, split: str = "train", *, verify: bool = True) -> Path:
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
    check_choice(split, ARCHIVE_SPLITS, "SVHN archive split")
    dest = raw_dir(root, split)
    if (dest / "digitStruct.mat").is_file():
        return dest
    if dest.exists():
        raise ValueError(f"{dest} exists but has no digitStruct.mat (an incomplete copy?); delete it and extract again.")
    archive = archive_path(root, split)
    if not archive.is_file():
        raise FileNotFoundError(f"SVHN format 1 {split!r} is missing: neither {dest} nor {archive} exists.\n"
                                f"{manual_instructions(root)}")
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
