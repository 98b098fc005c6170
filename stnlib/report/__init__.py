"""What the book shows: tables, figures, sentences and cards built from records.

* :mod:`~stnlib.report.palette`: one colour and marker per model;
* :mod:`~stnlib.report.figures`: every figure, drawn at the size it is shown;
* :mod:`~stnlib.report.tables` and :mod:`~stnlib.report.display`: tables from records, and how they look;
* :mod:`~stnlib.report.prose`: the computed sentences of the chapters;
* :mod:`~stnlib.report.card`: the reproducibility card and the "Rerun this chapter" box;
* :mod:`~stnlib.report.costs`: what the study cost;
* :mod:`~stnlib.report.glance`: results at a glance.

:func:`load` is how a chapter gets its records: the stored ones when they are up to date, otherwise it
says which are missing, where it looked and that it will train them, and then trains them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from stnlib import runs
from stnlib.paths import describe_records_root
from stnlib.report.display import format_duration

__all__ = ["load", "missing_runs"]


def missing_runs(experiments: Sequence[str], profile: str, models: dict[str, Sequence[str]] | None = None
                 ) -> list[runs.RunSpec]:
    """The runs of ``experiments`` whose records are missing or stale in ``profile``."""
    models = models or {}
    return [s for e in experiments for s in runs.experiment_runs(e, profile, models=models.get(e))
            if s.stored() is None]


def load(experiments: Sequence[str], profile: str, *, fresh: bool = False,
         models: dict[str, Sequence[str]] | None = None, announce=print) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """``{experiment: {model: [record per seed]}}`` for a chapter: train-or-load every run.

    Before training anything it announces what is missing and where records were looked for, so a
    chapter never trains silently (e.g. a pip-installed stnlib without ``STNLIB_RECORDS``).
    """
    models = models or {}
    todo = (sum(len(runs.experiment_runs(e, profile, models=models.get(e))) for e in experiments) if fresh
            else len(missing_runs(experiments, profile, models)))
    if todo:
        why = "fresh=True retrains everything" if fresh else "their records are missing or were made with another config"
        announce(f"Training {todo} run(s) of {', '.join(experiments)} in the {profile} profile now ({why}); "
                 f"records are read from and written to {describe_records_root()}. Each run prints its progress; "
                 f"the chapter's 'Rerun this chapter' box says how long the stored runs took.")
    return {e: runs.load_experiment(e, profile, models=models.get(e), fresh=fresh) for e in experiments}


def duration(seconds: float) -> str:
    """``format_duration`` under the name the chapters use."""
    return format_duration(seconds)
