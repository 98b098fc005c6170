"""A training step without per-step host overhead on CUDA: one captured CUDA graph, replayed.

A training step of the paper's MNIST networks is about ten GFLOP, microseconds of an H200's arithmetic,
but a few hundred kernel launches and, in the eager loop, a host read of the loss every step
(:func:`stnlib.train.loop.train_step`): the launches and the waits, not the arithmetic, set the pace
(53.5k img/s for STN-C0, ``benchmarks/results/h200-2026-11-26``). :class:`GraphedStep` records the
whole step (forward, backward, the optimiser's update and the device-side loss accumulators of
:mod:`stnlib.train.packed`) once as a CUDA graph and replays it with one launch per step.

Capturing needs a few steps run beforehand on a side stream (PyTorch's recipe: they allocate the
autograd and optimiser buffers outside the graph). Those steps would change the run, so every tensor
the step writes is saved before them and copied back after the capture: the run continues exactly as
if they had not happened. The optimiser state must exist before the save (:func:`prime_optimizer_state`);
zero state is what a fresh SGD or Adam state is, so a fresh run is unchanged by it.

A graph bakes in Python numbers such as the learning rate: :class:`GraphedStep` is captured again
whenever the learning rates change (twice in the paper's schedule).

Nothing here runs on a machine without CUDA; the step it captures is the one the CPU tests run eagerly.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch

#: Eager steps on a side stream before a capture (PyTorch's whole-network capture recipe uses 3).
WARMUP_STEPS = 3


def prime_optimizer_state(optimizer: torch.optim.Optimizer) -> None:
    """Create the optimiser state a first step would create, as zeros (the value a fresh state has).

    SGD with momentum: ``momentum_buffer`` (a zero buffer gives the first step's ``buf = grad``
    exactly); Adam: ``step`` and both moments at zero (``max_exp_avg_sq`` too with amsgrad). Existing
    state is left alone. The state must exist before a capture so that it can be saved and restored
    around the warm-up steps, and so that the graph reads and writes these very tensors.
    """
    for group in optimizer.param_groups:
        for p in group["params"]:
            state = optimizer.state[p]
            if isinstance(optimizer, torch.optim.SGD):
                if group["momentum"] != 0 and state.get("momentum_buffer") is None:
                    state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            elif isinstance(optimizer, torch.optim.Adam):
                if "step" not in state:
                    on_device = group.get("capturable") or group.get("fused")
                    state["step"] = torch.zeros((), dtype=torch.float32,
                                                device=p.device if on_device else "cpu")
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    if group.get("amsgrad"):
                        state["max_exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            else:
                raise ValueError(f"cannot prime the state of {type(optimizer).__name__}; valid optimisers: SGD, Adam")


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    """Every tensor in the optimiser's state, in a fixed order."""
    out = []
    for group in optimizer.param_groups:
        for p in group["params"]:
            out += [v for _, v in sorted(optimizer.state[p].items()) if torch.is_tensor(v)]
    return out


class GraphedStep:
    """``body()`` (one whole training step on fixed input tensors) captured once and replayed.

    Args:
        body: runs forward, backward and the optimiser step on the static inputs; it must not read
            anything back to the host (a capture fails on that).
        written: returns every tensor ``body`` changes in place (parameters, optimiser state,
            accumulators); they are saved before the warm-up and restored after the capture.
        zero_grad: sets the gradients to ``None`` (the graph then owns the gradient memory).
        lrs: returns the current learning rates; a change triggers a new capture at the next step.
    """

    def __init__(self, body: Callable[[], None], written: Callable[[], list[torch.Tensor]],
                 zero_grad: Callable[[], None], lrs: Callable[[], tuple[float, ...]]) -> None:
        self.body, self.written, self.zero_grad, self.lrs = body, written, zero_grad, lrs
        self.graph: torch.cuda.CUDAGraph | None = None
        self.captured_lrs: tuple[float, ...] | None = None
        self.captures = 0

    def capture(self) -> None:
        """Warm up on a side stream, capture ``body``, and put back what the warm-up changed."""
        self.graph = None  # free the previous graph's memory pool before allocating a new one
        saved = [t.detach().clone() for t in self.written()]
        try:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(WARMUP_STEPS):
                    self.zero_grad()
                    self.body()
            torch.cuda.current_stream().wait_stream(side)
            self.zero_grad()
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                self.body()
        finally:
            with torch.no_grad():
                for t, s in zip(self.written(), saved):
                    t.copy_(s)
        self.graph = graph
        self.captured_lrs = self.lrs()
        self.captures += 1

    def __call__(self) -> None:
        """One step: a replay (after a capture, on the first call and when the learning rates changed)."""
        if self.graph is None or self.lrs() != self.captured_lrs:
            self.capture()
        self.graph.replay()


@contextlib.contextmanager
def no_host_sync(enabled: bool = True) -> Iterator[None]:
    """Make any operation that waits for the GPU raise inside the block (``torch.cuda`` sync debug mode).

    The CUDA tests run the training loop between two reads under it: a hidden ``.item()``, a host
    tensor copied to the GPU or a check that reads a GPU value would otherwise only show as lost speed.
    """
    if not enabled or not torch.cuda.is_available():
        yield
        return
    old = torch.cuda.get_sync_debug_mode()
    torch.cuda.set_sync_debug_mode("error")
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode(old)
