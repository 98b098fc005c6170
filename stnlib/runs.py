"""Runs: train-or-load, experiments and sweeps as lists of runs.

A *run* is one (experiment, model, profile, seed). :func:`train_or_load` returns its stored record
when the record's config hash matches the config that would be trained now, and trains it otherwise;
a changed profile therefore retrains and is never silently mixed with old numbers. Records live under
:func:`stnlib.paths.records_root`; setting ``STNLIB_NO_TRAIN`` turns a missing or stale record of a
real profile into an error instead of hours of training (CI builds the book that way).

Launchers that run many of these at once (a local pool, SLURM) live in :mod:`stnlib.launch`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from stnlib import records, train
from stnlib.paths import describe_records_root
from stnlib.profiles import get_experiment, get_profile, get_sweep

NO_TRAIN_ENV = "STNLIB_NO_TRAIN"


@dataclass(frozen=True, order=True)
class RunSpec:
    """One training run."""

    experiment: str
    model: str
    profile: str
    seed: int

    def __str__(self) -> str:
        return f"{self.experiment}/{self.model} ({self.profile}, seed {self.seed})"

    def config(self) -> dict[str, Any]:
        """Its config (validates every name)."""
        return train.build_config(self.experiment, self.model, self.profile, self.seed)

    def stored(self, root: str | os.PathLike | None = None) -> dict[str, Any] | None:
        """Its record if one is stored, complete and made with the current config; else ``None``."""
        rec = records.load_record(self.experiment, self.model, self.profile, self.seed,
                                  expected_hash=records.config_hash(self.config()), root=root)
        return rec if rec is not None and rec["status"] == "complete" else None


def train_or_load(experiment: str, model: str, profile: str, seed: int, *,
                  fresh: bool = False, root: str | os.PathLike | None = None,
                  **train_kwargs: Any) -> dict[str, Any]:
    """The record of a run: the stored one if its config hash matches, else a new training run.

    ``fresh=True`` always retrains. A stored record whose config differs from the one that would be
    trained now is retrained and overwritten (the reason is printed), never reused.
    """
    spec = RunSpec(experiment, model, profile, seed)
    cfg = spec.config()
    if not fresh:
        found = records.load_record(experiment, model, profile, seed, root=root)
        if found is not None:
            if found["config_hash"] == records.config_hash(cfg) and found["status"] == "complete":
                return found
            reason = ("its config changed" if found["config_hash"] != records.config_hash(cfg)
                      else f"its status is {found['status']!r}")
            print(f"retraining {spec}: {reason}")
    if os.environ.get(NO_TRAIN_ENV) and profile != "smoke":
        raise records.RecordError(
            f"no up-to-date {profile} record for {experiment}/{model} (seed {seed}) under "
            f"{records.record_path(experiment, model, profile, seed, root).parent} and {NO_TRAIN_ENV} is set; "
            f"train it with `python -m stnlib train {experiment} {model} --profile {profile} --seed {seed}` "
            f"(records are read from {describe_records_root() if root is None else root})")
    return train.train(experiment, model, profile, seed, records_root=root, **train_kwargs)


def experiment_runs(experiment: str, profile: str, *, models: Iterable[str] | None = None,
                    seeds: Iterable[int] | None = None) -> list[RunSpec]:
    """Every run of an experiment in a profile (its models × the profile's seeds), validated."""
    exp = get_experiment(experiment)
    prof = get_profile(profile)
    specs = [RunSpec(experiment, m, profile, int(s))
             for m in (models if models is not None else exp["models"])
             for s in (seeds if seeds is not None else prof.seeds)]
    for spec in specs:
        spec.config()  # fail fast on an unknown model or a bad seed, before any training
    return specs


def sweep_runs(sweep: str, profile: str, *, models: Iterable[str] | None = None,
               seeds: Iterable[int] | None = None) -> list[RunSpec]:
    """Every run of a sweep (a named list of experiments, or one experiment) in a profile."""
    wanted = None if models is None else list(models)
    out: list[RunSpec] = []
    for experiment, sweep_models in get_sweep(sweep):
        chosen = sweep_models if wanted is None else [m for m in wanted if m in sweep_models]
        if wanted is not None:
            unknown = [m for m in wanted if m not in sweep_models]
            if unknown and len(get_sweep(sweep)) == 1:
                raise ValueError(f"unknown model(s) {unknown} for sweep {sweep!r}; valid models: "
                                 f"{', '.join(sweep_models)}")
        out += experiment_runs(experiment, profile, models=chosen, seeds=seeds)
    return out


def load_experiment(experiment: str, profile: str, *, models: Iterable[str] | None = None,
                    seeds: Iterable[int] | None = None, fresh: bool = False,
                    root: str | os.PathLike | None = None, **train_kwargs: Any
                    ) -> dict[str, list[dict[str, Any]]]:
    """Train-or-load every (model, seed) of an experiment in a profile: ``{model: [records]}``."""
    out: dict[str, list[dict[str, Any]]] = {}
    for spec in experiment_runs(experiment, profile, models=models, seeds=seeds):
        out.setdefault(spec.model, []).append(
            train_or_load(spec.experiment, spec.model, spec.profile, spec.seed, fresh=fresh, root=root,
                          **train_kwargs))
    return out


def stored_records(specs: Iterable[RunSpec], root: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """The complete, up-to-date records of ``specs`` that exist (never trains)."""
    return [rec for spec in specs if (rec := spec.stored(root)) is not None]
