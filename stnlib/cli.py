"""Command line: ``python -m stnlib {list,data,train,sweep,book}``.

Thin by design: every command calls the library (``train``, ``records``, ``data``, ``book``).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Sequence

from stnlib.nn import valid_models
from stnlib.profiles import EXPERIMENTS, PROFILES, SWEEPS, get_profile


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
    s.add_argument("--device", default=None)
    s.add_argument("--fresh", action="store_true")

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
    except (ValueError, FileNotFoundError, ConnectionError) as e:
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
    from stnlib.runs import sweep_runs, train_or_load
    from stnlib.train import TrainingDiverged

    jobs = [(s.experiment, s.model, s.seed) for s in
            sweep_runs(args.sweep, args.profile, models=args.models or None, seeds=args.seeds)]
    failed = []
    t0 = time.perf_counter()
    for exp, m, seed in jobs:
        try:
            rec = train_or_load(exp, m, args.profile, seed, fresh=args.fresh, device=args.device)
            print(f"  {exp:15s} {m:8s} seed {seed}: {100 * rec['metrics']['test_error']:.2f}%"
                  f"  ({rec['provenance']['wall_time_s']:.0f} s)")
        except TrainingDiverged as e:
            failed.append(str(e))
            print(f"  FAILED: {e}", file=sys.stderr)
    print(f"sweep {args.sweep} [{args.profile}]: {len(jobs)} runs, "
          f"{time.perf_counter() - t0:.0f} s in this call")
    if failed:
        print(f"{len(failed)} run(s) diverged", file=sys.stderr)
        return 1
    return 0
