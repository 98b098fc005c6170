"""Where one training step of a quick run spends its time on this CPU, by operator (``torch.profiler``).

Times ``--steps`` steps of each named run's own training step (``train.training_batch`` +
``train.train_step`` under its quick settings, pinned runs at their pinned settings) on one thread, as
``make book FRESH=1`` trains, and prints per run the img/s and the share of the step's CPU time per
operator group: convolutions (forward and backward), max-pooling (forward, backward, and the zero fill
of its gradient), matrix products, the optimiser step, the ST's sampling (``grid_sample``), the ReLUs,
the batch (augmentation), and the rest (casts, copies, losses).

``--packed K`` adds, in the same run, the img/s per run of K seeds trained as one pack
(``stnlib.train.pack.PackedState``: one ``torch.vmap`` forward over stacked parameters), the way the GPU
path trains, against the separate runs measured above.

    python benchmarks/profile_step.py mnist-trans:cnn mnist-rot:stn-sl1 svhn:stn-sl3
    python benchmarks/profile_step.py svhn:cnn --packed 3
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))  # retrain_time: a run built as its training builds it

from retrain_time import timed_run

#: Operator groups, by the first matching substring of the ATen operator's name (in this order).
GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("convolution", ("convolution", "conv2d", "_SingleChannelConv")),
    ("max-pool", ("max_pool",)),
    ("matmul", ("aten::mm", "aten::addmm", "aten::bmm")),
    ("optimiser", ("Optimizer.", "addcdiv", "aten::sqrt", "lerp", "_foreach")),
    ("grid_sample", ("grid_sampler", "affine_grid")),
    ("relu", ("threshold", "clamp_min", "relu")),
)


def group_of(name: str, parent: str | None = None) -> str:
    """The group of an operator (``parent``: the operator it ran inside, for fills and copies)."""
    for group, keys in GROUPS:
        if any(k in name for k in keys) or (parent is not None and any(k in parent for k in keys)):
            return group
    return "other"


def profile_run(experiment: str, model: str, steps: int) -> tuple[float, dict[str, float]]:
    """img/s over ``steps`` profiled steps (after two warm-up steps) and each group's share of CPU time."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    from stnlib.train import train_step, training_batch

    dev = torch.device("cpu")
    s, task, state = timed_run(experiment, model, "quick")
    for i in range(2):
        train_step(state, *training_batch(task, s, 0, i, dev), device=dev, precision=s.precision)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        for i in range(2, 2 + steps):
            with torch.profiler.record_function("batch"):
                x, y = training_batch(task, s, 0, i, dev)
            train_step(state, x, y, device=dev, precision=s.precision)
        elapsed = time.perf_counter() - start
    shares: dict[str, float] = {}
    events = prof.events()
    total = sum(e.self_cpu_time_total for e in events)
    for e in events:
        parent = e.cpu_parent.name if e.cpu_parent is not None else None
        group = "batch" if (e.name == "batch" or _inside(e, "batch")) else group_of(e.name, parent)
        shares[group] = shares.get(group, 0.0) + e.self_cpu_time_total / total
    return steps * s.batch_size / elapsed, shares


def _inside(event, name: str) -> bool:
    parent = event.cpu_parent
    while parent is not None:
        if parent.name == name:
            return True
        parent = parent.cpu_parent
    return False


def packed_rate(experiment: str, model: str, k: int, steps: int) -> float:
    """img/s per run of ``k`` seeds of the run trained as one pack (``stnlib.train.pack``)."""
    import torch

    from stnlib.train.pack import PackedBatches, PackedState

    dev = torch.device("cpu")
    members = [timed_run(experiment, model, "quick", seed=seed)[2].net for seed in range(k)]
    s, task, _ = timed_run(experiment, model, "quick")
    pack, batches = PackedState(members, s, dev), PackedBatches(task, s, list(range(k)), dev)
    for i in range(2):
        pack.zero_grad()
        pack.body(*batches(i))
    start = time.perf_counter()
    for i in range(2, 2 + steps):
        pack.zero_grad()
        pack.body(*batches(i))
    return steps * s.batch_size / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", metavar="EXPERIMENT:MODEL", help="e.g. mnist-trans:cnn")
    ap.add_argument("--steps", type=int, default=5, help="profiled steps per run (default 5)")
    ap.add_argument("--packed", type=int, default=None, metavar="K", help="also time K seeds as one pack")
    args = ap.parse_args(argv)
    pairs = []
    for text in args.runs:
        experiment, sep, model = text.partition(":")
        if not sep or not model:
            ap.error(f"expected EXPERIMENT:MODEL, got {text!r}")
        pairs.append((experiment, model))
    if args.steps < 1 or (args.packed is not None and args.packed < 2):
        ap.error("--steps must be at least 1 and --packed at least 2")
    import torch

    from stnlib.hardware import cpu_capability

    torch.set_num_threads(1)
    print(f"CPU: {cpu_capability().describe()}; 1 thread; torch {torch.__version__}")
    names = [g for g, _ in GROUPS] + ["batch", "other"]
    print(f"{'experiment':15s} {'model':8s} {'img/s':>7s} " + " ".join(f"{n:>11s}" for n in names)
          + ("   pack img/s per run (× separate)" if args.packed else ""))
    for experiment, model in pairs:
        rate, shares = profile_run(experiment, model, args.steps)
        line = f"{experiment:15s} {model:8s} {rate:7.0f} " + " ".join(f"{100 * shares.get(n, 0):10.1f}%" for n in names)
        if args.packed:
            per_run = packed_rate(experiment, model, args.packed, args.steps)
            line += f"   {per_run:7.0f} ({per_run / rate:.2f}×)"
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
