"""Command line: ``python -m stnlib {list,data,train,sweep,book}``.

Thin by design: every command calls the library (``train``, ``records``, ``data``, ``book``).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Sequence

from stnlib.hardware import DeviceUnavailable
from stnlib.launch import LaunchError
from stnlib.nn import valid_models
from stnlib.profiles import EXPERIMENTS, PROFILES, SWEEPS, get_profile
from stnlib.runs import RunOutOfMemory


def _catalogue() -> str:
    lines = ["experiments (dataset: models):"]
    for name, exp in EXPERIMENTS.items():
        lines.append(f"  {name:15s} {exp['dataset']}: {', '.join(exp['models'])}")
        lines.append(f"  {'':15s} {exp['about']}")
    lines.append("all trainable models per dataset:")
    for ds in ("mnist-rot", "mnist-trans", "svhn"):
        lines.append(f"  {ds:15s} {', '.join(valid_models(ds))}")
    lines.append("sweeps:")
    for k, pairs in SWEEPS.items():
        lines.append(f"  {k:15s} " + "; ".join(
            f"{exp}" + (f" ({', '.join(models)})" if models else "") for exp, models in pairs))
    lines.append("profiles:")
    for p in PROFILES.values():
        lines.append(f"  {p.name:7s} seeds {list(p.seeds)}: {p.about}")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    p = argparse.ArgumentParser(
        prog="python -m stnlib", formatter_class=fmt,
        description="Train, sweep and publish the STN feature-map alignment reproduction.",
        epilog=_catalogue())
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("list", help="list experiments, models, sweeps and profiles")

    d = sub.add_parser("data", help="prepare a dataset (verified MNIST, SVHN cache)")
    d.add_argument("dataset", choices=("mnist", "svhn", "svhn-synthetic"))
    d.add_argument("--root", default=None, help="data folder (default: the repo's data/)")

    t = sub.add_parser("train", help="train one model (train-or-load its record)",
                       formatter_class=fmt, epilog=_catalogue())
    t.add_argument("experiment", help=f"one of: {', '.join(EXPERIMENTS)}")
    t.add_argument("model", help="e.g. cnn, stn-c0, stn-c1, stn-sl1, stn-dl1 (see list)")
    t.add_argument("--profile", default="quick", help=f"one of: {', '.join(PROFILES)}")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda if available)")
    t.add_argument("--fresh", action="store_true", help="retrain even if a matching record exists")
    t.add_argument("--no-resume", action="store_true", help="ignore an existing checkpoint")

    s = sub.add_parser("sweep", help="train-or-load every model of a sweep",
                       formatter_class=fmt, epilog=_catalogue())
    s.add_argument("sweep", help=f"one of: {', '.join(SWEEPS)}, or an experiment name")
    s.add_argument("--profile", default="quick", help=f"one of: {', '.join(PROFILES)}")
    s.add_argument("--seeds", type=int, nargs="*", default=None,
                   help="seeds (default: the profile's)")
    s.add_argument("--models", nargs="*", default=None, help="only these models")
    s.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda if available where it runs)")
    s.add_argument("--fresh", action="store_true")
    s.add_argument("--launcher", default="inline",
                   help="inline (one after the other here), local (parallel processes here), "
                        "slurm (a SLURM job array)")
    s.add_argument("--jobs", type=int, default=None,
                   help="local: runs at once (default: all); slurm: array tasks running at once")
    s.add_argument("--partition", default=None, help="slurm: the partition (default: the cluster's)")
    s.add_argument("--timeout-min", type=int, default=24 * 60,
                   help="local, slurm: time limit per task in minutes; a task that reaches it is requeued "
                        "and resumes from its checkpoint (default: %(default)s)")
    s.add_argument("--gpus-per-task", type=int, default=None,
                   help="local, slurm: GPUs per run (default: slurm none; local all of this machine's, shared)")
    s.add_argument("--cpus-per-task", type=int, default=None,
                   help="local, slurm: CPUs per run; also PyTorch's thread count in the task")
    s.add_argument("--mem-gb", type=float, default=None, help="slurm: memory per run in GB")
    s.add_argument("--log-dir", default=None,
                   help="local, slurm: where each sweep makes its folder of job scripts and logs "
                        "(default: <checkpoints>/submitit; on a cluster it must be on a shared file system)")
    s.add_argument("--yes", action="store_true",
                   help="start even when the plan is refused (the full profile without a GPU)")

    b = sub.add_parser("book", help="execute every chapter with papermill for a profile")
    b.add_argument("rest", nargs=argparse.REMAINDER, help="arguments for stnlib.book")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "book":
        from stnlib.book import main as book_main

        return int(book_main(argv[1:]) or 0)
    args = _parser().parse_args(argv)
    try:
        if args.command == "list":
            print(_catalogue())
            return 0
        if args.command == "data":
            return _data(args)
        if args.command == "train":
            return _train(args)
        if args.command == "sweep":
            return _sweep(args)
    except (ValueError, FileNotFoundError, ConnectionError, DeviceUnavailable, RunOutOfMemory, LaunchError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def _data(args: argparse.Namespace) -> int:
    from stnlib.data import prepare

    prepare(args.dataset, **({"root": args.root} if args.root else {}))
    return 0


def _train(args: argparse.Namespace) -> int:
    from stnlib.runs import RunSpec, train_or_load

    get_profile(args.profile)
    RunSpec(args.experiment, args.model, args.profile, args.seed).config()  # validates names
    rec = train_or_load(args.experiment, args.model, args.profile, args.seed, fresh=args.fresh,
                        device=args.device, resume=not args.no_resume)
    m = rec["metrics"]
    print(f"{args.experiment}/{args.model} [{args.profile}, seed {args.seed}]: "
          f"test error {100 * m['test_error']:.2f}%  "
          f"(wall {rec['provenance']['wall_time_s']:.0f} s, {rec['provenance']['device']})")
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from stnlib import launch
    from stnlib.hardware import cpu_capability, device_name, resolve_device
    from stnlib.runs import estimate_seconds, sweep_runs

    launcher = launch.check_launcher(args.launcher)
    resources = launch.Resources(timeout_min=args.timeout_min, gpus_per_task=args.gpus_per_task,
                                 cpus_per_task=args.cpus_per_task, mem_gb=args.mem_gb,
                                 partition=args.partition, jobs=args.jobs)
    specs = sweep_runs(args.sweep, args.profile, models=args.models or None, seeds=args.seeds)
    # Runs here (inline, local) use this machine's device: resolve it now, so a missing GPU is one
    # line before anything starts. On SLURM the nodes decide; this machine may have no GPU at all.
    here = launcher != "slurm"
    device = device_name(resolve_device(args.device)) if here else None
    if args.profile != "smoke":
        to_run, stored = launch.pending(specs, fresh=args.fresh)
        print(f"sweep {args.sweep} [{args.profile}] with launcher {launcher}:")
        cap = cpu_capability().describe() if device is not None and device.startswith("cpu") else None
        jobs = (resources.jobs or len(to_run)) if launcher == "local" else None
        for line in launch.describe_plan(to_run, stored, estimate_seconds(to_run, device, cpu_capability=cap),
                                         device, jobs=jobs):
            print("  " + line)
        if args.profile == "full" and here and to_run and not device.startswith("cuda") and not args.yes:
            print(f"error: refusing to train {len(to_run)} run(s) of the full profile (the paper's 150k iterations) "
                  f"on {device}: it is meant for a GPU. Use a machine with one, or --launcher slurm "
                  "--gpus-per-task 1; pass --yes to start here anyway.", file=sys.stderr)
            return 2
    t0 = time.perf_counter()
    result = launch.launch(specs, launcher, resources=resources, fresh=args.fresh, device=args.device,
                           log_root=args.log_dir, log=lambda line: print("  " + line))
    print(f"sweep {args.sweep} [{args.profile}]: {len(specs)} runs, {result.submitted} run here or submitted, "
          f"{time.perf_counter() - t0:.0f} s in this call")
    for failure in result.failures:
        print(f"FAILED: {failure.error}", file=sys.stderr)
    if result.failures:
        print(f"{len(result.failures)} of {len(specs)} run(s) failed", file=sys.stderr)
        return 1
    return 0
