"""Where stnlib reads and writes: result records, data, checkpoints and the checkout itself.

Every location has an environment override, so the same code works from a clone of the
repository and from a ``pip install``:

=============  ======================  ==========================  ================================
what           environment variable    default in a clone          default in a pip install
=============  ======================  ==========================  ================================
records        ``STNLIB_RECORDS``      ``<clone>/book/records``    ``<user data>/stnlib/records``
data           ``STNLIB_DATA``         ``<clone>/data``            ``<user data>/stnlib/data``
checkpoints    ``STNLIB_CHECKPOINTS``  ``<data>/checkpoints``      ``<data>/checkpoints``
=============  ======================  ==========================  ================================

``<user data>`` is ``$XDG_DATA_HOME`` or ``~/.local/share``. A pip-installed stnlib does not
carry the committed records: point ``STNLIB_RECORDS`` at a clone's ``book/records`` to render
the book from them instead of retraining.

A *clone* is recognised by the files around the package: ``stnlib/`` sits next to a
``pyproject.toml`` and a ``book/_toc.yml``. An installed copy in ``site-packages`` has neither.
"""

from __future__ import annotations

import os
from pathlib import Path

RECORDS_ENV = "STNLIB_RECORDS"
DATA_ENV = "STNLIB_DATA"
CHECKPOINTS_ENV = "STNLIB_CHECKPOINTS"

_PACKAGE_DIR = Path(__file__).resolve().parent


def checkout_root() -> Path | None:
    """The root of the git clone this package was imported from, or ``None`` for an installed copy."""
    root = _PACKAGE_DIR.parent
    if (root / "pyproject.toml").is_file() and (root / "book" / "_toc.yml").is_file():
        return root
    return None


def user_data_dir() -> Path:
    """``$XDG_DATA_HOME/stnlib`` (default ``~/.local/share/stnlib``): where an installed copy keeps things."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "stnlib"


def _resolve(root: str | os.PathLike | None, env: str, in_clone: str, installed: str) -> Path:
    if root is not None:
        return Path(root)
    value = os.environ.get(env)
    if value:
        return Path(value).expanduser()
    clone = checkout_root()
    return clone / in_clone if clone is not None else user_data_dir() / installed


def records_root(root: str | os.PathLike | None = None) -> Path:
    """Result records: ``root``, else ``$STNLIB_RECORDS``, else the clone's ``book/records``."""
    return _resolve(root, RECORDS_ENV, "book/records", "records")


def data_root(root: str | os.PathLike | None = None) -> Path:
    """Datasets and caches: ``root``, else ``$STNLIB_DATA``, else the clone's ``data/``."""
    return _resolve(root, DATA_ENV, "data", "data")


def checkpoints_root(root: str | os.PathLike | None = None) -> Path:
    """Resumable training checkpoints: ``root``, else ``$STNLIB_CHECKPOINTS``, else ``<data>/checkpoints``."""
    if root is not None:
        return Path(root)
    value = os.environ.get(CHECKPOINTS_ENV)
    return Path(value).expanduser() if value else data_root() / "checkpoints"


def benchmark_results_root() -> Path | None:
    """The clone's ``benchmarks/results`` (measured throughput, GPU probes), ``None`` outside a clone."""
    clone = checkout_root()
    return clone / "benchmarks" / "results" if clone is not None else None


def describe_records_root() -> str:
    """One line saying where records are read from and why (for chapters and error messages)."""
    path = records_root()
    if os.environ.get(RECORDS_ENV):
        return f"{path} (from ${RECORDS_ENV})"
    if checkout_root() is not None:
        return f"{path} (the committed records of this clone)"
    return (f"{path} (stnlib is installed without a clone: set ${RECORDS_ENV} to a clone's book/records "
            "to use the committed records)")
