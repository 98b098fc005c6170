"""Runs: train-or-load, experiments and sweeps as lists of runs.

A *run* is one (experiment, model, profile, seed). :func:`train_or_load` returns its stored record
when the record's config hash matches the config that would be trained now, and trains it otherwise;
a changed profile therefore retrains and is never silently mixed with old numbers. Records live under
:func:`stnlib.paths.records_root`; setting ``STNLIB_NO_TRAIN`` turns a missing or stale record of a
real profile into an error instead of hours of training (CI builds the book that way).

Launchers that run many of these at once (a local pool, SLURM) live in :mod:`stnlib.launch`;
:func:`estimate_seconds` says what a list of runs will cost on a device before any of it starts.
"""

from __future__ import annotations

import json
import os
import re
import statistics
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from stnlib import records, train
from stnlib.hardware import described_native_bf16
from stnlib.paths import benchmark_results_root, describe_records_root, records_root
from stnlib.profiles import get_experiment, get_profile, get_sweep, seeds_for, settings_for, training_settings

NO_TRAIN_ENV = "STNLIB_NO_TRAIN"


class RunOutOfMemory(RuntimeError):
    """A run did not fit in the GPU's memory; the message names the batch size to lower."""


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
    try:
        return train.train(experiment, model, profile, seed, records_root=root, **train_kwargs)
    except torch.cuda.OutOfMemoryError as e:
        # PyTorch's message is pages of allocator statistics; the fix is one setting of the profile.
        s = settings_for(profile, experiment, model)
        raise RunOutOfMemory(
            f"{spec}: CUDA ran out of memory at batch size {s.batch_size}; lower batch_size in the "
            f"{profile!r} profile's settings for {experiment!r} (stnlib/profiles.py; this changes the config "
            f"and so retrains), or use a GPU with more free memory. PyTorch said: "
            f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from e


def experiment_runs(experiment: str, profile: str, *, models: Iterable[str] | None = None,
                    seeds: Iterable[int] | None = None) -> list[RunSpec]:
    """Every run of an experiment in a profile (its models × their seeds in the profile), validated."""
    exp = get_experiment(experiment)
    get_profile(profile)
    specs = [RunSpec(experiment, m, profile, int(s))
             for m in (models if models is not None else exp["models"])
             for s in (seeds if seeds is not None else seeds_for(profile, experiment, m))]
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


# ---------------------------------------------------------------------------------------
# cost estimates

def device_kind(name: str, cpu_capability: str | None = None) -> str:
    """What makes two devices comparable for wall time: the GPU model, or a CPU's core count and bf16.

    ``name`` is a record's ``provenance["device"]`` or :func:`stnlib.hardware.device_name`:
    ``"cuda: NVIDIA H200"`` stays as it is, ``"cpu: AMD EPYC (2 cores, 2 threads)"`` becomes
    ``"cpu, 2 cores"``: CPU models vary too much in name to match on, and a 2-core machine's records
    say more about another 2-core machine than about a 64-core one. ``cpu_capability`` (a record's
    ``provenance["cpu_capability"]``, :meth:`stnlib.hardware.CPUCapability.describe`) adds whether the
    CPU computes bf16 natively, ``"cpu, 2 cores, native bf16"`` or ``"cpu, 2 cores, no native bf16"``:
    the quick profile trains in bf16 on the one and in fp32 on the other, two to ten times apart. Without
    it (records older than the field) the kind matches neither.
    """
    if name.startswith("cpu"):
        cores = re.search(r"\((\d+) cores", name)
        kind = f"cpu, {cores.group(1)} cores" if cores else "cpu"
        if cpu_capability:
            kind += ", native bf16" if described_native_bf16(cpu_capability) else ", no native bf16"
        return kind
    return name.split(" (")[0]


#: A probe file per profile: ``<results>/<machine-date>/<profile>_probe.jsonl``.
PROBE_FILE = "{profile}_probe.jsonl"


def read_probes(results_root: str | os.PathLike | None = None, profile: str = "full"
                ) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Every committed probe of ``profile`` (``<results>/*/<profile>_probe.jsonl``, one JSON object a
    line) with its file.

    A probe is a short measurement of one (experiment, model) under the profile's settings: its training
    throughput (``train_images_per_s``, evaluation excluded) and ``device``. GPU probes of the full profile
    come from ``benchmarks/calibrate.py --profile full``; CPU probes of the quick profile, with their
    ``cpu_capability`` and the hash of the settings they timed (``settings_hash``), from
    ``benchmarks/retrain_time.py --write``. ``results_root`` defaults to the clone's ``benchmarks/results``;
    outside a clone there are none.
    """
    root = Path(results_root) if results_root is not None else benchmark_results_root()
    for path in (sorted(root.glob("*/" + PROBE_FILE.format(profile=profile))) if root is not None else []):
        for line in path.read_text().splitlines():
            if line.strip():
                yield path, json.loads(line)


def settings_hash(spec: RunSpec) -> str:
    """The hash of the settings ``spec`` trains with (:func:`stnlib.profiles.training_settings`): a CPU
    probe is valid for them only."""
    return records.config_hash(asdict(training_settings(spec.profile, spec.experiment, spec.model)))


@dataclass(frozen=True)
class Estimate:
    """The expected wall time of one run on one kind of device, and where the number comes from.

    ``seconds`` is ``None`` when nothing measured on that kind of device covers the run;
    ``reference`` is then the best number from another device, ``(seconds, device, source)``, if any.
    """

    seconds: float | None
    source: str
    reference: tuple[float, str, str] | None = None


def _record_times(spec: RunSpec, root: str | os.PathLike | None) -> dict[str, list[tuple[float, str]]]:
    """Wall times of the complete records of ``spec``'s (experiment, model, profile), any seed, by device kind."""
    out: dict[str, list[tuple[float, str]]] = {}
    for rec in _complete_records(spec, root):
        prov = rec["provenance"]
        kind = device_kind(prov["device"], prov.get("cpu_capability"))
        out.setdefault(kind, []).append((float(prov["wall_time_s"]), prov["device"]))
    return out


def _complete_records(spec: RunSpec, root: str | os.PathLike | None) -> list[dict[str, Any]]:
    folder = records_root(root) / spec.profile / spec.experiment
    out = []
    for path in sorted(folder.glob(f"{spec.model}-seed*.json")):
        try:
            rec = records.read_record(path)
        except records.RecordError:
            continue  # a corrupt record says nothing about cost; training it reports the problem
        if rec["model"] == spec.model and rec["status"] == "complete":
            out.append(rec)
    return out


def evaluation_factor(spec: RunSpec, root: str | os.PathLike | None = None) -> float:
    """Wall time over training time in ``spec``'s complete records (median; 1 without records).

    A run's wall time is its training (iterations × batch size at its training img/s) plus its periodic
    and final evaluations; this is the factor a probe's training time is scaled by.
    """
    ratios = []
    for rec in _complete_records(spec, root):
        s, prov = rec["config"]["settings"], rec["provenance"]
        ips = prov.get("train_images_per_s")
        if ips:
            ratios.append(float(prov["wall_time_s"]) / (s["iterations"] * s["batch_size"] / float(ips)))
    return statistics.median(ratios) if ratios else 1.0


def probe_seconds(spec: RunSpec, images_per_s: float, root: str | os.PathLike | None = None) -> float:
    """The wall time of ``spec`` at a measured training rate: its training at ``images_per_s`` times the
    evaluation share its records show (:func:`evaluation_factor`)."""
    s = settings_for(spec.profile, spec.experiment, spec.model)
    return s.iterations * s.batch_size / images_per_s * evaluation_factor(spec, root)


def _probe_times(spec: RunSpec, probes: list[tuple[Path, dict[str, Any]]],
                 root: str | os.PathLike | None) -> dict[str, tuple[float, str]]:
    """Wall time of ``spec`` at each probed device's throughput (:func:`probe_seconds`)."""
    out: dict[str, tuple[float, str]] = {}
    for path, probe in probes:
        if (probe["experiment"], probe["model"]) != (spec.experiment, spec.model):
            continue
        if "settings_hash" in probe and probe["settings_hash"] != settings_hash(spec):
            continue  # timed under settings the profile no longer has
        what = "GPU" if probe["device"].startswith("cuda") else "CPU"
        out[device_kind(probe["device"], probe.get("cpu_capability"))] = (
            probe_seconds(spec, float(probe["train_images_per_s"]), root),
            f"{what} probe {path.parent.name}/{path.name}")
    return out


def estimate_seconds(specs: Iterable[RunSpec], device: str | None, *, cpu_capability: str | None = None,
                     root: str | os.PathLike | None = None,
                     results_root: str | os.PathLike | None = None) -> list[Estimate]:
    """The expected wall time of each run of ``specs`` on ``device`` (a device name, or ``None``: unknown).

    ``cpu_capability`` (:meth:`stnlib.hardware.CPUCapability.describe`) says, for a CPU, whether it
    computes bf16 natively; it is part of the kind of device (:func:`device_kind`). In order: (a) the median
    wall time of existing complete records of the same (experiment, model, profile), any seed, made on the
    same kind of device; (b) a committed probe of the same (experiment, model) on that kind of device
    (:func:`read_probes`), scaled to the run's iterations × batch size and its records' evaluation share
    (:func:`probe_seconds`); (c) otherwise unknown, with the number from another device as a reference where
    one exists.
    """
    kind = device_kind(device, cpu_capability) if device is not None else None
    probes: dict[str, list[tuple[Path, dict[str, Any]]]] = {}
    out = []
    for spec in specs:
        if spec.profile not in probes:
            probes[spec.profile] = list(read_probes(results_root, spec.profile))
        times = _record_times(spec, root)
        probed = _probe_times(spec, probes[spec.profile], root)
        if kind in times:
            walls = times[kind]
            out.append(Estimate(statistics.median(w for w, _ in walls),
                                f"{len(walls)} record(s) on {walls[0][1]}"))
        elif kind in probed:
            out.append(Estimate(*probed[kind]))
        else:
            ref = None
            if times:
                other, walls = next(iter(times.items()))
                ref = (statistics.median(w for w, _ in walls), walls[0][1], f"{len(walls)} record(s)")
            elif probed:
                other, (seconds, source) = next(iter(probed.items()))
                ref = (seconds, other, source)
            out.append(Estimate(None, "unknown", ref))
    return out
