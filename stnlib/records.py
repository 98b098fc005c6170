"""Result records: one small JSON file per (experiment, model, profile, seed).

A record holds the metrics, the learning curves, the summaries the figures need, the full
training config with its hash, and the provenance of the run (git commit, library versions,
device, wall time, date). Records are written atomically, and a stored record is reused only
when its config hash equals the hash of the config that would be trained now
(:func:`train_or_load`): a changed profile retrains, it is never silently mixed with old numbers.

Committed records live under ``book/records/<profile>/<experiment>/<model>-seed<k>.json``.
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import json
import os
import platform
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Iterable

import numpy as np

SCHEMA = "stnlib.record/1"
REPO_ROOT = Path(__file__).resolve().parent.parent
#: Where records live unless ``STNLIB_RECORDS`` says otherwise.
DEFAULT_ROOT = REPO_ROOT / "book" / "records"
_REQUIRED = ("schema", "experiment", "model", "profile", "seed", "status", "config",
             "config_hash", "metrics", "curves", "summaries", "provenance")


class RecordError(ValueError):
    """A record file is corrupt, malformed, or does not match the requested run."""


def records_root(root: str | os.PathLike | None = None) -> Path:
    """The records directory: ``root``, else ``$STNLIB_RECORDS``, else ``book/records``."""
    if root is not None:
        return Path(root)
    env = os.environ.get("STNLIB_RECORDS")
    return Path(env) if env else DEFAULT_ROOT


def record_path(experiment: str, model: str, profile: str, seed: int,
                root: str | os.PathLike | None = None) -> Path:
    return records_root(root) / profile / experiment / f"{model}-seed{seed}.json"


def config_hash(config: dict[str, Any]) -> str:
    """A stable 16-hex-digit hash of a JSON-serialisable config (key order does not matter)."""
    blob = json.dumps(config, sort_keys=True, separators=(",", ":"), default=_json_default)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (tuple, set)):
        return list(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as JSON to ``path`` atomically (temp file in the same folder + rename).

    A reader never sees a half-written file, even if the process is killed mid-write.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=1, sort_keys=True, default=_json_default)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; records are shared, readable files
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


# ---------------------------------------------------------------------------------------
# provenance


def git_commit() -> tuple[str, bool]:
    """The current git commit of the checkout and whether the tree has uncommitted changes."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True,
            check=True, timeout=10,
        ).stdout.strip()
        dirty = bool(subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", "stnlib"],
            cwd=REPO_ROOT, capture_output=True, text=True, timeout=10,
        ).stdout.strip())
        return commit, dirty
    except (OSError, subprocess.SubprocessError):
        return "unknown", False


def device_name(device: Any) -> str:
    """A human-readable name of the device a run used (GPU model or CPU model and cores)."""
    import torch

    dev = torch.device(device)
    if dev.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(dev)}"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"cpu: {cpu} ({os.cpu_count()} cores, {torch.get_num_threads()} threads)"


def provenance(device: Any, wall_time_s: float, data_source: str) -> dict[str, Any]:
    import torch

    from . import __version__

    commit, dirty = git_commit()
    return {
        "git_commit": commit,
        "git_dirty": dirty,
        "stnlib_version": __version__,
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "device": device_name(device),
        "wall_time_s": round(float(wall_time_s), 2),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "data_source": data_source,
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
    """The stored record for a run, or ``None`` when there is none or its config hash differs."""
    path = record_path(experiment, model, profile, seed, root)
    if not path.exists():
        return None
    rec = read_record(path)
    if expected_hash is not None and rec["config_hash"] != expected_hash:
        return None
    return rec


def train_or_load(experiment: str, model: str, profile: str, seed: int, *,
                  fresh: bool = False, root: str | os.PathLike | None = None,
                  **train_kwargs: Any) -> dict[str, Any]:
    """The record of a run: the stored one if its config hash matches, else a new training run.

    ``fresh=True`` always retrains. A stored record whose config differs from the one that would
    be trained now is retrained and overwritten (the change is printed), never reused.
    """
    from .train import build_config, train

    cfg = build_config(experiment, model, profile, seed)
    h = config_hash(cfg)
    if not fresh:
        path = record_path(experiment, model, profile, seed, root)
        if path.exists():
            rec = read_record(path)
            if rec["config_hash"] == h and rec["status"] == "complete":
                return rec
            reason = ("its config changed" if rec["config_hash"] != h
                      else f"its status is {rec['status']!r}")
            print(f"retraining {experiment}/{model} ({profile}, seed {seed}): {reason}")
    if os.environ.get("STNLIB_NO_TRAIN") and profile != "smoke":
        raise RecordError(
            f"no up-to-date {profile} record for {experiment}/{model} (seed {seed}) under "
            f"{records_root(root)} and STNLIB_NO_TRAIN is set; train it with "
            f"`python -m stnlib train {experiment} {model} --profile {profile} --seed {seed}`")
    return train(experiment, model, profile, seed, records_root=root, **train_kwargs)


def load_experiment(experiment: str, profile: str, *, models: Iterable[str] | None = None,
                    seeds: Iterable[int] | None = None, fresh: bool = False,
                    root: str | os.PathLike | None = None, **train_kwargs: Any
                    ) -> dict[str, list[dict[str, Any]]]:
    """Train-or-load every (model, seed) of an experiment in a profile: ``{model: [records]}``."""
    from .profiles import get_experiment, get_profile

    exp = get_experiment(experiment)
    prof = get_profile(profile)
    out: dict[str, list[dict[str, Any]]] = {}
    for model in models if models is not None else exp["models"]:
        out[model] = [
            train_or_load(experiment, model, profile, seed, fresh=fresh, root=root, **train_kwargs)
            for seed in (seeds if seeds is not None else prof.seeds)
        ]
    return out


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
