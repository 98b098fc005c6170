"""How long a whole retrain of a profile takes on this CPU, from every run's own training step, timed.

``make book FRESH=1`` retrains every run the chapters train (``stnlib.report.card.CHAPTER_RUNS``), one run
per CPU core with one thread each. This script times each (experiment, model)'s training step under its own
settings (``train.training_batch`` + ``train.train_step``: its batch size, precision, channels_last; pinned
runs at their pinned settings) on one thread, for at least ``--seconds`` after two warm-up steps. It prints
per (experiment, model):

* the measured img/s and the precision that ran;
* the estimated wall time of one run (``stnlib.runs.probe_seconds``: iterations × batch size at that rate,
  times the evaluation share of the run's committed records);
* the baseline, measured on whole runs: the median wall time of the committed records made on this kind of
  CPU (``stnlib.runs.device_kind``: core count and whether bf16 is native), and estimate / records.

Then the sum per experiment and the whole retrain's wall clock with ``--jobs`` runs side by side, in the
order ``make book FRESH=1`` submits them (``stnlib.launch.wall_clock``). How fast a shared machine steps
varies from hour to hour; with ``--emulate-avx2`` the last line therefore scales the AVX2 pass to the records'
timescale by its ratio to the native pass measured in the same run (``scaled_to_records``).

``--emulate-avx2`` measures everything again as an AVX2-only CPU would run it (``stnlib.hardware.
AVX2_EMULATION``): fp32 where the profile says ``auto``, emulated bf16 for runs that ask for bf16. ``--write
DIR`` appends every measurement to ``DIR/quick_probe.jsonl`` (``stnlib.runs.read_probes``), which the cost
estimates of ``python -m stnlib sweep`` and ``make book FRESH=1`` use on a CPU of that kind with no records.

    python benchmarks/retrain_time.py                  # about 3 minutes on 2 idle cores
    python benchmarks/retrain_time.py --emulate-avx2 --write benchmarks/results/<machine-date>
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

#: Chapters in the order ``make book`` runs them (its runs are submitted in this order).
CHAPTERS = ("mnist", "svhn", "beyond")


def pairs(profile: str, experiments: list[str] | None = None) -> list[tuple[str, str]]:
    """The (experiment, model) pairs the chapters train in ``profile``, each once, in submission order."""
    from stnlib.report.card import chapter_runs

    out: list[tuple[str, str]] = []
    for spec in chapter_runs(CHAPTERS, profile):
        if (spec.experiment, spec.model) not in out and (not experiments or spec.experiment in experiments):
            out.append((spec.experiment, spec.model))
    return out


def timed_run(experiment: str, model: str, profile: str, *, seed: int = 0, data_root: str | None = None):
    """A run as its training builds it, on the CPU: ``(settings, task, state)``.

    Its training settings (``stnlib.profiles.training_settings``), its network under its seed, channels_last
    where set, and its training task; SVHN's on a small synthetic stand-in (a step's cost does not depend on
    the data set's size).
    """
    import dataclasses

    import torch

    from stnlib.hardware import reuse_freed_memory
    from stnlib.profiles import get_experiment, training_settings
    from stnlib.train import TrainState, make_network, to_channels_last
    from stnlib.train.config import make_tasks, mix_seed

    reuse_freed_memory()  # as stnlib.train does
    s = training_settings(profile, experiment, model)
    dataset = get_experiment(experiment)["dataset"]
    data = (dataclasses.replace(s, svhn_source="synthetic", svhn_n_train=2048, svhn_n_test=64)
            if dataset == "svhn" else s)
    torch.manual_seed(mix_seed(seed, 0))
    net = make_network(model, dataset, s)
    if s.channels_last:
        to_channels_last(net)
    task, _ = make_tasks(dataset, data, torch.device("cpu"), data_root or os.environ.get("STNLIB_DATA", str(ROOT / "data")))
    return s, task, TrainState.start(net, s)


def measure(experiment: str, model: str, profile: str, seconds: float, *, data_root: str | None = None,
            warmup: int = 2, min_steps: int = 3) -> dict:
    """Time ``model``'s training step under its settings in ``profile`` on this process's threads
    (:func:`timed_run`). Returns one probe line (``stnlib.runs.read_probes``)."""
    import torch

    from stnlib.hardware import cpu_capability, describe_precision, device_name
    from stnlib.runs import RunSpec, settings_hash
    from stnlib.train import train_step, training_batch

    dev = torch.device("cpu")
    s, task, state = timed_run(experiment, model, profile, data_root=data_root)
    for i in range(warmup):
        train_step(state, *training_batch(task, s, 0, i, dev), device=dev, precision=s.precision)
    steps, start = 0, time.perf_counter()
    while steps < min_steps or time.perf_counter() - start < seconds:
        x, y = training_batch(task, s, 0, warmup + steps, dev)
        train_step(state, x, y, device=dev, precision=s.precision)
        steps += 1
    elapsed = time.perf_counter() - start
    return {
        "experiment": experiment, "model": model, "profile": profile,
        "train_images_per_s": round(steps * s.batch_size / elapsed, 1), "steps": steps,
        "precision": describe_precision(dev, s.precision), "threads": torch.get_num_threads(),
        "device": device_name(dev), "cpu_capability": cpu_capability().describe(),
        "settings_hash": settings_hash(RunSpec(experiment, model, profile, 0)),
        "date": time.strftime("%Y-%m-%d"),
    }


def _measure_all(args: argparse.Namespace, env: dict[str, str]) -> list[dict]:
    """Every pair measured in one child process started with ``env`` (read at its start) on one thread."""
    child = [sys.executable, __file__, "--child", "--profile", args.profile, "--seconds", str(args.seconds),
             *(["--experiments", *args.experiments] if args.experiments else [])]
    one_thread = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    out = subprocess.run(child, env={**os.environ, **one_thread, **env}, cwd=ROOT, stdout=subprocess.PIPE,
                         text=True, check=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def report(lines: list[dict], profile: str, jobs: int, *, records_root=None) -> list[str]:
    """The table and totals for one pass of measurements (see the module docstring)."""
    from stnlib.launch import wall_clock
    from stnlib.report.card import chapter_runs
    from stnlib.report.display import format_duration
    from stnlib.runs import estimate_seconds, probe_seconds

    first = lines[0]
    rate = {(m["experiment"], m["model"]): m for m in lines}
    specs = [s for s in chapter_runs(CHAPTERS, profile) if (s.experiment, s.model) in rate]
    out = [f"CPU: {first['device']}; {first['cpu_capability']}; {first['threads']} thread(s) per run",
           (f"{'experiment':15s} {'model':8s} {'precision':21s} {'img/s':>7s} {'est. min':>9s} "
            f"{'records min':>12s} {'est./rec.':>9s}   (per run; records: median wall time on this kind of CPU)")]
    recorded = estimate_seconds(specs, first["device"], cpu_capability=first["cpu_capability"], root=records_root,
                                results_root=Path(os.devnull))
    per_run, seen = [], set()
    by_exp: dict[str, float] = {}
    for spec, rec in zip(specs, recorded):
        m = rate[(spec.experiment, spec.model)]
        est = probe_seconds(spec, m["train_images_per_s"], records_root)
        per_run.append(est)
        by_exp[spec.experiment] = by_exp.get(spec.experiment, 0.0) + est
        if (spec.experiment, spec.model) in seen:
            continue
        seen.add((spec.experiment, spec.model))
        base = (f"{rec.seconds / 60:12.1f} {est / rec.seconds:9.2f}" if rec.seconds is not None
                else f"{'—':>12s} {'—':>9s}")
        out.append(f"{spec.experiment:15s} {spec.model:8s} {m['precision']:21s} {m['train_images_per_s']:7.0f} "
                   f"{est / 60:9.1f} {base}")
    out.append("per experiment (all seeds, sum of runs): " + "; ".join(
        f"{exp} {format_duration(sec)}" for exp, sec in by_exp.items()))
    out.append(f"whole retrain: {len(per_run)} runs, {format_duration(sum(per_run))} in sum, about "
               f"{format_duration(wall_clock(per_run, jobs))} of wall clock with {jobs} at a time")
    return out


def scaled_to_records(native: list[dict], other: list[dict], profile: str, jobs: int, *,
                      records_root=None) -> str:
    """The other kind's retrain on the records' timescale: its sum over the native pass's sum, both measured
    in this run (so what slows this machine today cancels), times the records' wall times of the native
    kind (runs without records on this kind of CPU are left out of both sums)."""
    from stnlib.launch import wall_clock
    from stnlib.report.card import chapter_runs
    from stnlib.report.display import format_duration
    from stnlib.runs import estimate_seconds, probe_seconds

    first = native[0]
    fast = {(m["experiment"], m["model"]): m["train_images_per_s"] for m in native}
    slow = {(m["experiment"], m["model"]): m["train_images_per_s"] for m in other}
    specs = [s for s in chapter_runs(CHAPTERS, profile) if (s.experiment, s.model) in fast.keys() & slow.keys()]
    recorded = estimate_seconds(specs, first["device"], cpu_capability=first["cpu_capability"], root=records_root,
                                results_root=Path(os.devnull))
    kept = [(spec, rec.seconds) for spec, rec in zip(specs, recorded) if rec.seconds is not None]
    if not kept:
        return "no records on this kind of CPU to scale the other pass to"
    ratio = (sum(probe_seconds(spec, slow[(spec.experiment, spec.model)], records_root) for spec, _ in kept)
             / sum(probe_seconds(spec, fast[(spec.experiment, spec.model)], records_root) for spec, _ in kept))
    walls = [seconds * ratio for _, seconds in kept]
    return (f"{other[0]['cpu_capability']}: {ratio:.2f}× this CPU's step times, measured in this run; on the "
            f"records' timescale the {len(kept)} runs with records here would take {format_duration(sum(walls))} "
            f"in sum, about {format_duration(wall_clock(walls, jobs))} of wall clock with {jobs} at a time "
            f"(the records: {format_duration(sum(s for _, s in kept))}, "
            f"{format_duration(wall_clock([s for _, s in kept], jobs))})")


def main(argv: list[str] | None = None) -> int:
    from stnlib.hardware import AVX2_EMULATION

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="quick", choices=("smoke", "quick"))
    ap.add_argument("--seconds", type=float, default=3.0, help="time each step at least this long (default 3)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                    help="runs side by side in the wall-clock estimate (default: one per core)")
    ap.add_argument("--experiments", nargs="+", default=None, help="only these experiments")
    ap.add_argument("--emulate-avx2", action="store_true",
                    help="measure again as an AVX2-only CPU (" + ", ".join(
                        f"{k}={v}" for k, v in AVX2_EMULATION.items()) + ")")
    ap.add_argument("--write", metavar="DIR", default=None,
                    help="append the measurements to DIR/quick_probe.jsonl (read by the cost estimates)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.jobs < 1:
        ap.error(f"--jobs must be at least 1, not {args.jobs}")
    if args.child:  # one measuring process: one JSON line per pair on stdout, progress on stderr
        for experiment, model in pairs(args.profile, args.experiments):
            print(f"  {experiment} {model} ...", file=sys.stderr, flush=True)
            print(json.dumps(measure(experiment, model, args.profile, args.seconds,
                                     data_root=os.environ.get("STNLIB_DATA", str(ROOT / "data")))), flush=True)
        return 0

    start = time.perf_counter()
    passes = [("as this CPU runs", {})] + ([("as an AVX2-only CPU", AVX2_EMULATION)] if args.emulate_avx2 else [])
    measured: list[list[dict]] = []
    for title, env in passes:
        print(f"\nmeasuring {title}" + (" (" + ", ".join(f"{k}={v}" for k, v in env.items()) + ")" if env else ""),
              flush=True)
        lines = _measure_all(args, env)
        for line in report(lines, args.profile, args.jobs):
            print(line, flush=True)
        measured.append(lines)
    if len(measured) == 2:
        print("\n" + scaled_to_records(*measured, args.profile, args.jobs), flush=True)
    measured = [m for lines in measured for m in lines]
    if args.write:
        from stnlib.io import atomic_write_text
        from stnlib.runs import PROBE_FILE

        target = Path(args.write) / PROBE_FILE.format(profile=args.profile)
        before = target.read_text() if target.exists() else ""
        # Appended (a probe file collects measurements, one a line), but written whole: never a half line.
        atomic_write_text(target, before + "".join(json.dumps(m) + "\n" for m in measured))
        print(f"\nappended {len(measured)} measurement(s) to {target}")
    print(f"\nmeasured in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
