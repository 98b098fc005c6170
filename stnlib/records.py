"""Result records: one small JSON file per (experiment, model, profile, seed).

A record holds the metrics, the learning curves, the summaries the figures need, the full
training config with its hash, and the provenance of the run (git commit, library versions,
device, precision, wall time, date). Records are written atomically (:mod:`stnlib.io`), and a stored
record is reused only when its config hash equals the hash of the config that would be trained now
(:func:`stnlib.runs.train_or_load`): a changed profile retrains, it is never silently mixed with
old numbers. This module only stores and checks records; it never trains.

Committed records live under ``book/records/<profile>/<experiment>/<model>-seed<k>.json``
(:func:`stnlib.paths.records_root`).
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from stnlib.io import atomic_write_json, json_default
from stnlib.paths import checkout_root, records_root

SCHEMA = "stnlib.record/1"
_REQUIRED = ("schema", "experiment", "model", "profile", "seed", "status", "config",
             "config_hash", "metrics", "curves", "summaries", "provenance")


class RecordError(ValueError):
    """A record file is corrupt, malformed, or does not match the requested run."""


def record_path(experiment: str, model: str, profile: str, seed: int,
                root: str | os.PathLike | None = None) -> Path:
    return records_root(root) / profile / experiment / f"{model}-seed{seed}.json"


#: Config keys that document a run without changing what it computes, left out of the hash from
#: protocol version 2 on: rewording a deviation must not make every record stale.
UNHASHED_KEYS = ("deviations",)


def config_hash(config: dict[str, Any]) -> str:
    """A stable 16-hex-digit hash of a JSON-serialisable config (key order does not matter).

    Everything that decides what a run computes enters it; :data:`UNHASHED_KEYS` (documentation)
    do not, for configs of protocol version 2 or later (version 1 records hashed them too).
    """
    if int(config.get("protocol_version", 1)) >= 2:
        config = {k: v for k, v in config.items() if k not in UNHASHED_KEYS}
    blob = json.dumps(config, sort_keys=True, separators=(",", ":"), default=json_default)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------------------
# provenance


def git_commit() -> tuple[str, bool]:
    """The git commit of the checkout stnlib runs from and whether ``stnlib/`` has uncommitted changes.

    ``("unknown", False)`` for an installed copy (no checkout) or where git is not available.
    """
    root = checkout_root()
    if root is None:
        return "unknown", False
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
            check=True, timeout=10,
        ).stdout.strip()
        dirty = bool(subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", "stnlib"],
            cwd=root, capture_output=True, text=True, timeout=10,
        ).stdout.strip())
        return commit, dirty
    except (OSError, subprocess.SubprocessError):
        return "unknown", False


def provenance(*, device: str, precision: str, wall_time_s: float, data_source: str,
               **extra: Any) -> dict[str, Any]:
    """Where and how a run happened: code (git commit, versions), machine (device, precision), time, data.

    ``device`` and ``precision`` describe what actually ran (:func:`stnlib.hardware.device_name`,
    :func:`stnlib.hardware.describe_precision`); ``extra`` adds further machine facts (throughput, the
    CPU capability), which describe the machine, not the result.
    """
    import torch

    from stnlib import __version__

    commit, dirty = git_commit()
    return {
        "git_commit": commit,
        "git_dirty": dirty,
        "stnlib_version": __version__,
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "device": device,
        "precision": precision,
        "wall_time_s": round(float(wall_time_s), 2),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "data_source": data_source,
        **extra,
    }


# ---------------------------------------------------------------------------------------
# reading


def validate_record(rec: Any, path: str | os.PathLike = "<record>") -> dict[str, Any]:
    """Check that ``rec`` has the record schema; raise :class:`RecordError` naming what is wrong."""
    if not isinstance(rec, dict):
        raise RecordError(f"{path}: a record must be a JSON object, got {type(rec).__name__}")
    missing = [k for k in _REQUIRED if k not in rec]
    if missing:
        raise RecordError(f"{path}: malformed record, missing keys {missing}")
    if rec["schema"] != SCHEMA:
        raise RecordError(f"{path}: unknown schema {rec['schema']!r}, expected {SCHEMA!r}")
    if rec["status"] not in ("complete", "failed"):
        raise RecordError(f"{path}: status {rec['status']!r} is not 'complete' or 'failed'")
    if config_hash(rec["config"]) != rec["config_hash"]:
        raise RecordError(f"{path}: config_hash does not match the stored config (edited by hand?)")
    return rec


def read_record(path: str | os.PathLike) -> dict[str, Any]:
    """Load and validate one record; a corrupt file raises :class:`RecordError` with the fix."""
    path = Path(path)
    try:
        with open(path) as f:
            rec = json.load(f)
    except json.JSONDecodeError as e:
        raise RecordError(
            f"{path}: corrupt record ({e}); delete it to retrain, or restore it from git"
        ) from e
    return validate_record(rec, path)


def load_record(experiment: str, model: str, profile: str, seed: int, *,
                expected_hash: str | None = None,
                root: str | os.PathLike | None = None) -> dict[str, Any] | None:
    """The stored record of a run, or ``None`` when there is none (or its config hash is not ``expected_hash``).

    A file that holds another run's record (copied to the wrong place) raises :class:`RecordError`.
    """
    path = record_path(experiment, model, profile, seed, root)
    if not path.exists():
        return None
    rec = read_record(path)
    found = (rec["experiment"], rec["model"], rec["profile"], rec["seed"])
    if found != (experiment, model, profile, seed):
        raise RecordError(
            f"{path}: the record is for {found[0]}/{found[1]} ({found[2]}, seed {found[3]}), not for "
            f"{experiment}/{model} ({profile}, seed {seed}); it was copied to the wrong place"
        )
    if expected_hash is not None and rec["config_hash"] != expected_hash:
        return None
    return rec


def new_record(config: dict[str, Any], *, status: str, metrics: dict[str, Any], curves: dict[str, Any],
               summaries: dict[str, Any], provenance: dict[str, Any]) -> dict[str, Any]:
    """A record in the schema (:data:`SCHEMA`): identity and config from ``config``, its hash computed."""
    rec = {
        "schema": SCHEMA,
        "experiment": config["experiment"],
        "model": config["model"],
        "profile": config["profile"],
        "seed": config["seed"],
        "status": status,
        "config": config,
        "config_hash": config_hash(config),
        "metrics": metrics,
        "curves": curves,
        "summaries": summaries,
        "provenance": provenance,
    }
    return validate_record(rec)


def write_record(rec: dict[str, Any], root: str | os.PathLike | None = None) -> Path:
    """Validate ``rec`` and write it atomically to its place under ``root``; return the path."""
    validate_record(rec)
    path = record_path(rec["experiment"], rec["model"], rec["profile"], rec["seed"], root)
    return atomic_write_json(path, rec)


# ---------------------------------------------------------------------------------------
# compact arrays inside JSON


def encode_image(x: Any) -> dict[str, Any]:
    """Encode a float image/array with values in [0, 1] as base64 uint8 (about 1 byte a pixel)."""
    arr = np.asarray(x, dtype=np.float32)
    q = np.clip(np.rint(arr * 255.0), 0, 255).astype(np.uint8)
    return {"shape": list(arr.shape), "uint8_b64": base64.b64encode(q.tobytes()).decode()}


def decode_image(d: dict[str, Any]) -> np.ndarray:
    """Inverse of :func:`encode_image`: a float32 array in [0, 1]."""
    q = np.frombuffer(base64.b64decode(d["uint8_b64"]), dtype=np.uint8)
    return q.reshape(d["shape"]).astype(np.float32) / 255.0
