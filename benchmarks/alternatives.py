"""Faster equivalents tried for the operators that dominate a quick step on the CPU, timed in the same run
against what stnlib uses.

``benchmarks/profile_step.py`` puts a quick step's CPU time mostly in convolutions (oneDNN), max-pooling
(12–25 % of a MNIST step) and, on SVHN, Adam's update (14–21 %). This script times the candidates for the
last two, each against the baseline, on one thread as ``make book FRESH=1`` trains:

* **max-pooling** (2×2, stride 2, bf16, channels_last, at the shapes of the MNIST networks' first block),
  forward and backward: ATen's ``max_pool2d`` (what ``nn.MaxPool2d`` runs) against the elementwise maximum
  of the four strided views (plain autograd: a tie splits its gradient between the tied inputs, so the
  gradient differs from ATen's where a window holds equal values, which bf16 makes common) and against the
  same forward with a backward that sends each gradient to the first maximal element in ATen's scan order
  (the same gradient as ATen's).
* **the optimiser**: ``torch.optim.Adam``'s for-loop implementation (the CPU default) against
  ``foreach=True`` and ``fused=True``: the update alone on the SVHN networks' parameters, whether it leaves
  bitwise the same parameters as the for-loop after some steps (a change that does not would make a retrain
  differ from the committed records), and the whole training step of the run with each.

    python benchmarks/alternatives.py
    python benchmarks/alternatives.py --seconds 2 --rounds 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))  # retrain_time: a run built as its training builds it

#: (what, input shape N×C×H×W) of the max-pools timed: each MNIST network's first block at batch 256.
POOL_SHAPES: tuple[tuple[str, tuple[int, int, int, int]], ...] = (
    ("rotated MNIST, block 1", (256, 64, 20, 20)),
    ("translated MNIST, block 1", (256, 64, 52, 52)),
)
#: The runs whose optimiser is timed (SVHN: Adam over about 2 M parameters at width ×0.25).
OPTIMISER_RUNS: tuple[tuple[str, str], ...] = (("svhn", "cnn"), ("svhn", "stn-sl3"))
ADAM_KINDS: tuple[str, ...] = ("for-loop", "foreach", "fused")


# ---------------------------------------------------------------------------------------
# max-pooling


def aten_pool(x: torch.Tensor) -> torch.Tensor:
    """What ``nn.MaxPool2d(2)`` computes (the baseline)."""
    return F.max_pool2d(x, 2)


def _views(x: torch.Tensor) -> list[torch.Tensor]:
    """The four 2×2-window positions as strided views, in ATen's scan order (row by row); odd edges dropped,
    as ATen's floor mode drops them."""
    h, w = x.shape[-2] // 2 * 2, x.shape[-1] // 2 * 2
    return [x[..., i:h:2, j:w:2] for i in (0, 1) for j in (0, 1)]


def maximum_pool(x: torch.Tensor) -> torch.Tensor:
    """The elementwise maximum of the four views, differentiated by autograd (ties share the gradient)."""
    a, b, c, d = _views(x)
    return torch.maximum(torch.maximum(a, b), torch.maximum(c, d))


class _FirstMaxPool(torch.autograd.Function):
    """The same forward; the backward sends each window's gradient to its first maximal element, as ATen's
    ``max_pool2d_with_indices_backward`` does."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        a, b, c, d = _views(x)
        out = torch.maximum(torch.maximum(a, b), torch.maximum(c, d))
        ctx.save_for_backward(x, out)
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor) -> torch.Tensor:
        x, out = ctx.saved_tensors
        grad = torch.zeros_like(x)
        taken = torch.zeros(out.shape, dtype=torch.bool, device=out.device)
        h, w = x.shape[-2] // 2 * 2, x.shape[-1] // 2 * 2
        for k, view in enumerate(_views(x)):
            hit = (view == out) & ~taken
            i, j = divmod(k, 2)
            grad[..., i:h:2, j:w:2] = torch.where(hit, grad_out, 0)
            taken |= hit
        return grad


def first_max_pool(x: torch.Tensor) -> torch.Tensor:
    """:class:`_FirstMaxPool` as a function."""
    return _FirstMaxPool.apply(x)


POOLS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "ATen max_pool2d": aten_pool,
    "maximum of 4 views": maximum_pool,
    "4 views, first-max backward": first_max_pool,
}


def pool_input(shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    """A bf16, channels_last input like a convolution's output under autocast."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g).to(torch.bfloat16).contiguous(memory_format=torch.channels_last)


def pool_grads(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
               grad_seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """``(output, input gradient)`` of ``fn`` at ``x`` for a fixed random output gradient."""
    x = x.detach().requires_grad_(True)
    out = fn(x)
    g = torch.randn(out.shape, generator=torch.Generator().manual_seed(grad_seed)).to(out.dtype)
    out.backward(g)
    return out.detach(), x.grad


def same_as_aten(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> tuple[bool, bool]:
    """Whether ``fn``'s output and input gradient at ``x`` equal ATen's bit for bit."""
    out, grad = pool_grads(fn, x)
    ref_out, ref_grad = pool_grads(aten_pool, x)
    return torch.equal(out, ref_out), torch.equal(grad, ref_grad)


def time_call(step: Callable[[], object], seconds: float, min_calls: int = 3) -> float:
    """Seconds per call of ``step`` over at least ``seconds`` (and ``min_calls`` calls)."""
    calls, start = 0, time.perf_counter()
    while calls < min_calls or time.perf_counter() - start < seconds:
        step()
        calls += 1
    return (time.perf_counter() - start) / calls


def interleaved(steps: dict[str, Callable[[], object]], seconds: float, rounds: int) -> dict[str, float]:
    """Median seconds per call of each of ``steps``, timed in turn over ``rounds`` rounds after one warm-up
    call each, so that a drift of the machine's speed falls on every candidate alike."""
    for step in steps.values():
        step()
    times: dict[str, list[float]] = {k: [] for k in steps}
    for _ in range(rounds):
        for k, step in steps.items():
            times[k].append(time_call(step, seconds))
    return {k: statistics.median(v) for k, v in times.items()}


def pool_step(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> Callable[[], None]:
    """One forward and backward of ``fn`` at ``x`` (a gradient of ones, as the timing needs no other)."""
    x = x.detach().requires_grad_(True)

    def step() -> None:
        x.grad = None
        fn(x).sum().backward()
    return step


# ---------------------------------------------------------------------------------------
# the optimiser


def adam(params: list[torch.Tensor], kind: str, lr: float = 5e-4) -> torch.optim.Adam:
    """``torch.optim.Adam`` over ``params`` in one of :data:`ADAM_KINDS` (``"for-loop"``: the CPU default)."""
    if kind not in ADAM_KINDS:
        raise ValueError(f"unknown Adam implementation {kind!r}; valid choices: {', '.join(ADAM_KINDS)}")
    extra = {"for-loop": {"foreach": False}, "foreach": {"foreach": True}, "fused": {"fused": True}}[kind]
    return torch.optim.Adam(params, lr=lr, **extra)


def model_parameters(experiment: str, model: str) -> list[torch.Tensor]:
    """The run's network parameters as its quick training builds them (``retrain_time.timed_run``)."""
    from retrain_time import timed_run

    return [p.detach().clone() for p in timed_run(experiment, model, "quick")[2].net.parameters()]


def adam_after(params: list[torch.Tensor], kind: str, steps: int = 10, seed: int = 0) -> list[torch.Tensor]:
    """The parameters after ``steps`` Adam updates of ``kind`` with the same seeded random gradients."""
    ps = [p.clone().requires_grad_(True) for p in params]
    opt = adam(ps, kind)
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        for p in ps:
            p.grad = torch.randn(p.shape, generator=g, dtype=p.dtype)
        opt.step()
    return [p.detach() for p in ps]


def adam_step(params: list[torch.Tensor], kind: str) -> Callable[[], None]:
    """One update of ``kind`` over copies of ``params`` with fixed gradients."""
    ps = [p.clone().requires_grad_(True) for p in params]
    for p in ps:
        p.grad = torch.randn_like(p)
    opt = adam(ps, kind)
    return opt.step


def training_steps(experiment: str, model: str, kinds: tuple[str, ...], seconds: float,
                   rounds: int) -> dict[str, float]:
    """img/s of the run's whole training step with each Adam implementation (median over ``rounds``
    interleaved rounds, so a drift of the machine's speed falls on all alike)."""
    from retrain_time import timed_run

    from stnlib.train import train_step, training_batch
    from stnlib.train.state import make_scheduler

    dev = torch.device("cpu")
    s, task, state = timed_run(experiment, model, "quick")
    groups = [{"params": g["params"], "lr": g["lr"]} for g in state.optimizer.param_groups]
    # Fresh group dicts for each: an optimiser writes its defaults (foreach, fused) into the dicts it gets.
    optimisers = {k: adam([dict(g) for g in groups], k, lr=s.lr) for k in kinds}
    schedulers = {k: make_scheduler(opt, s) for k, opt in optimisers.items()}
    rates: dict[str, list[float]] = {k: [] for k in kinds}
    i = 0
    for k in kinds:  # warm-up: each optimiser's state allocated before any timing
        state.optimizer, state.scheduler = optimisers[k], schedulers[k]
        for _ in range(2):
            train_step(state, *training_batch(task, s, 0, i, dev), device=dev, precision=s.precision)
            i += 1
    for _ in range(rounds):
        for k in kinds:
            state.optimizer, state.scheduler = optimisers[k], schedulers[k]
            steps, start = 0, time.perf_counter()
            while steps < 2 or time.perf_counter() - start < seconds:
                train_step(state, *training_batch(task, s, 0, i, dev), device=dev, precision=s.precision)
                steps, i = steps + 1, i + 1
            rates[k].append(steps * s.batch_size / (time.perf_counter() - start))
    return {k: statistics.median(v) for k, v in rates.items()}


# ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=2.0, help="time each candidate at least this long (default 2)")
    ap.add_argument("--rounds", type=int, default=3,
                    help="interleaved rounds of every comparison, median taken (default 3)")
    args = ap.parse_args(argv)
    if args.seconds <= 0 or args.rounds < 1:
        ap.error(f"--seconds must be positive and --rounds at least 1 (got {args.seconds:g} and {args.rounds})")

    from stnlib.hardware import cpu_capability, reuse_freed_memory

    torch.set_num_threads(1)
    reuse_freed_memory()  # as training does: large tensors come from the heap, not from fresh pages
    began = time.perf_counter()
    print(f"CPU: {cpu_capability().describe()}; 1 thread; torch {torch.__version__}")

    print(f"\nmax-pooling 2×2, bf16, channels_last: forward + backward, ms per call (× ATen's time; median of "
          f"{args.rounds} interleaved rounds); output and input gradient bitwise equal to ATen's")
    for what, shape in POOL_SHAPES:
        x = pool_input(shape)
        secs = interleaved({name: pool_step(fn, x) for name, fn in POOLS.items()}, args.seconds, args.rounds)
        base = secs["ATen max_pool2d"]
        for name, fn in POOLS.items():
            out_same, grad_same = same_as_aten(fn, x)
            print(f"  {what:26s} {name:28s} {1e3 * secs[name]:8.2f} ms ({secs[name] / base:4.2f}×)   "
                  f"output {_yes(out_same)}, gradient {_yes(grad_same)}", flush=True)

    print(f"\nAdam: one update, ms (× the for-loop's; median of {args.rounds} interleaved rounds); parameters "
          "after 10 updates bitwise equal to the for-loop's")
    for experiment, model in OPTIMISER_RUNS:
        params = model_parameters(experiment, model)
        reference = adam_after(params, "for-loop")
        secs = interleaved({kind: adam_step(params, kind) for kind in ADAM_KINDS}, args.seconds, args.rounds)
        for kind in ADAM_KINDS:
            same = all(torch.equal(a, b) for a, b in zip(reference, adam_after(params, kind)))
            print(f"  {experiment}:{model:8s} {sum(p.numel() for p in params):>9,} parameters  {kind:9s} "
                  f"{1e3 * secs[kind]:7.2f} ms ({secs[kind] / secs['for-loop']:4.2f}×)   {_yes(same)}", flush=True)

    print(f"\nthe whole training step with each Adam, img/s (× the for-loop's), median of {args.rounds} "
          "interleaved rounds")
    for experiment, model in OPTIMISER_RUNS:
        rates = training_steps(experiment, model, ADAM_KINDS, args.seconds, args.rounds)
        base = rates["for-loop"]
        print(f"  {experiment}:{model:8s} " + "   ".join(f"{k} {r:6.0f} ({r / base:4.2f}×)" for k, r in rates.items()),
              flush=True)
    print(f"\nmeasured in {time.perf_counter() - began:.0f} s")
    return 0


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


if __name__ == "__main__":
    sys.exit(main())
