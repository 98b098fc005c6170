"""Packed training: K runs of one model (K seeds) in one process, one forward pass and one optimiser step.

The paper's networks are far too small for a GPU: a 150k-iteration run is ~1.5 PFLOP, seconds of an
H200's arithmetic, and took 12-15 minutes because every step pays for hundreds of kernel launches
and a host read. Packing K runs makes each launch do K runs' work, and :mod:`stnlib.train.cuda`
removes the launches themselves.

**How.** The K networks' parameters are stacked along a new leading axis and one forward pass runs
all of them: ``torch.vmap`` over ``torch.func.functional_call`` (convolutions become grouped
convolutions, matrix products batched ones). The loss is the sum of the K runs' losses; since the
runs share no parameter, the gradient of each stacked slice is exactly its run's gradient. One
torch optimiser over the stacked tensors, with the same parameter groups as a run's own optimiser
(classifier at ``lr``, localisation net at ``lr × loc_lr_multiplier``), updates every slice as the
run's optimiser would: SGD (momentum, weight decay) and Adam are elementwise, so a slice's update
reads only that slice and its own state; their per-parameter step count is shared, which is right
because the K runs always step together. The MultiStepLR schedule is the same for every run.

**What is the same as K separate runs** (:func:`stnlib.train.train`): the initial weights (run k is
built under ``torch.manual_seed(mix_seed(seed_k, 0))``); the batches (run k's batch at iteration i
is ``training_batch(task, settings, seed_k, i, device)``: its epoch permutation and its augmentation
from its own generators, drawn per run and transformed together, :meth:`stnlib.data.Task.raw_batches`);
the optimiser and schedule; the curves, the final evaluation and the record (the same config and
config hash; the provenance says ``packed``). Each run can be unpacked into an ordinary checkpoint
(:meth:`PackedRun.member_states`), which :func:`stnlib.train.train` resumes, and runs checkpointed
separately at one iteration are packed on resume.

**What is not bitwise the same.** vmap's grouped and batched kernels may sum in another order than a
lone run's: the parameters agree to float32 rounding (``tests/test_train_packed.py``: ``atol=1e-5``
after a dozen steps). Dropout (SVHN only; the MNIST networks have none): under vmap the K runs' masks
are drawn together (``randomness="different"``) from the global generator seeded per (pack,
iteration), so no run gets the masks its separate run would draw; they are as random and
deterministic for the same pack, and the record's provenance says so. On CUDA, graphs
(:mod:`stnlib.train.cuda`) and the larger evaluation batches change nothing but kernel order.

**No host synchronisation inside the loop.** The loss of every step is summed on the device, and
the NaN guard is a device flag (the first non-finite iteration per run); both are read every
``read_every`` steps (on CUDA 500, on the CPU every step). A run whose loss became NaN or infinite is
reported at the next read with the exact iteration and the range searched, gets a failed record and
stops counting; the others go on. :class:`TrainingDiverged` is raised once no run is left, or at
the end of :func:`train_packed` naming the failed ones.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from stnlib import records
from stnlib.data import Task
from stnlib.hardware import resolve_device, reuse_freed_memory
from stnlib.paths import checkpoints_root
from stnlib.profiles import training_settings
from stnlib.train.config import build_config, make_network, make_tasks, mix_seed
from stnlib.train.cuda import GraphedStep, prime_optimizer_state
from stnlib.train.loop import TrainingDiverged, _curve_point, _finish, _write_failed_record
from stnlib.train.pack import PackedBatches, PackedState
from stnlib.train.state import TrainState, checkpoint_path, load_checkpoint, save_checkpoint

PACKED_SCHEMA = "stnlib.packed-checkpoint/1"
#: Steps between two reads of the device-side loss and NaN flags, per device type.
READ_EVERY = {"cuda": 500, "cpu": 1}
ENGINES: tuple[str, ...] = ("eager", "cuda-graphs")


def packed_checkpoint_path(experiment: str, model: str, profile: str, seeds: Sequence[int],
                           root: str | os.PathLike | None = None) -> Path:
    """Where a pack's resumable checkpoint lives (beside the runs' own, :func:`checkpoint_path`)."""
    tag = "-".join(str(s) for s in seeds)
    return checkpoints_root(root) / profile / experiment / f"{model}-packed-seeds{tag}.pt"


# ---------------------------------------------------------------------------------------
# a packed run


class PackedRun:
    """K runs of ``model`` (one per seed) trained together; :func:`train_packed` drives one to the end.

    :meth:`step` does one iteration of all K runs (and the curve points, reads and checkpoints that
    fall on it); :meth:`finish` evaluates and writes the K records. A driver may interleave several
    packs (``benchmarks/gpu_full.py``), each on its own CUDA stream.

    Args:
        graphs: capture the step as a CUDA graph (default: on CUDA). If the capture fails the run
            continues eagerly, and ``engine`` says why.
        read_every: steps between reads of the device-side losses and NaN flags (:data:`READ_EVERY`).
        tasks: the (train, test) tasks, to share them between packs of one experiment.
    """

    def __init__(self, experiment: str, model: str, profile: str, seeds: Sequence[int], *,
                 device: str | torch.device | None = None,
                 records_root: str | os.PathLike | None = None,
                 checkpoint_root: str | os.PathLike | None = None,
                 data_root: str | os.PathLike | None = None,
                 resume: bool = True, progress: bool = True, graphs: bool | None = None,
                 read_every: int | None = None, tasks: tuple[Task, Task] | None = None,
                 fail_at: int | None = None) -> None:
        seeds = tuple(seeds)
        if not seeds or len(set(seeds)) != len(seeds):
            raise ValueError(f"a pack needs one or more distinct seeds, got {list(seeds)}")
        self.configs = [build_config(experiment, model, profile, seed) for seed in seeds]
        self.hashes = [records.config_hash(c) for c in self.configs]
        self.experiment, self.model, self.profile, self.seeds = experiment, model, profile, seeds
        self.settings = s = training_settings(profile, experiment, model)
        self.device = dev = resolve_device(device)
        if graphs and dev.type != "cuda":
            raise ValueError(f"CUDA graphs need a CUDA device, got {str(dev)!r}; use graphs=False or None")
        self.graphs = dev.type == "cuda" if graphs is None else bool(graphs)
        if read_every is not None and (isinstance(read_every, bool) or not isinstance(read_every, int)
                                       or read_every < 1):
            raise ValueError(f"read_every must be a positive int, got {read_every!r}")
        self.read_every = read_every or READ_EVERY.get(dev.type, 1)
        self.records_root, self.checkpoint_root, self.progress, self.fail_at = (
            records_root, checkpoint_root, progress, fail_at)
        if dev.type == "cpu":
            reuse_freed_memory()
        dataset = self.configs[0]["dataset"]
        nets = []
        for seed in seeds:
            torch.manual_seed(mix_seed(seed, 0))  # each run's initial weights, as its separate run draws them
            nets.append(make_network(model, dataset, s).to(dev))
        self.train_task, self.test_task = tasks or make_tasks(dataset, s, dev, data_root)
        self.batches = PackedBatches(self.train_task, s, seeds, dev)
        self.per_epoch = self.batches.per_epoch
        self.state = PackedState(nets, s, dev, capturable=self.graphs)
        self.ckpt = packed_checkpoint_path(experiment, model, profile, seeds, checkpoint_root)
        self.resumed_from: str | None = None
        #: A larger pack's checkpoint this pack continued; removed when this pack finishes.
        self._superseded: Path | None = None
        if resume:
            self._resume()
        self.engine = "cuda-graphs" if self.graphs else "eager"
        self._graphed: GraphedStep | None = None
        self._static: tuple[torch.Tensor, torch.Tensor] | None = None
        self.stream = torch.cuda.Stream(dev) if dev.type == "cuda" else None
        #: Added to the records' ``provenance["packed"]`` (a driver notes e.g. how many packs shared the GPU).
        self.provenance_extra: dict[str, Any] = {}
        self.start_iteration = self.state.iteration
        self._t0 = time.perf_counter()
        self._t_mark = self._t0
        self._bar = None

    # ----- identity

    def label(self, k: int) -> str:
        return f"{self.experiment}/{self.model} ({self.profile}, seed {self.seeds[k]})"

    @property
    def done(self) -> bool:
        return self.state.iteration >= self.settings.iterations

    @property
    def healthy(self) -> list[int]:
        return [k for k in range(self.state.k) if k not in self.state.failed]

    def provenance(self) -> dict[str, Any]:
        """What the records say about the packing (their ``provenance["packed"]``)."""
        out: dict[str, Any] = {"size": self.state.k, "seeds": list(self.seeds), "engine": self.engine,
                               "read_every": self.read_every, **self.provenance_extra}
        if self.state.dropout:
            out["dropout_masks"] = ("drawn for the whole pack under vmap (randomness='different') from "
                                    "mix_seed(pack seeds, 3, iteration): not the masks a separate run draws")
        return out

    # ----- checkpoints

    def _snapshot(self) -> dict[str, Any]:
        st = self.state
        elapsed_now = time.perf_counter() - self._t0
        members = [st.member_state(k).snapshot(self.hashes[k], elapsed_now) for k in range(st.k)]
        return {"schema": PACKED_SCHEMA, "config_hashes": self.hashes, "seeds": list(self.seeds),
                "iteration": st.iteration, "members": members,
                "failed": {str(k): [msg, int(st.first_bad[k])] for k, msg in st.failed.items()}}

    def _wait(self) -> None:
        """Let the host wait for this pack's queued steps (its own stream only; other packs run on)."""
        if self.stream is not None:
            self.stream.synchronize()

    def checkpoint(self) -> Path:
        """Write the pack's checkpoint atomically: K ordinary run snapshots in one file."""
        self._wait()
        path = save_checkpoint(self.ckpt, self._snapshot())
        self._t_mark = time.perf_counter()
        return path

    def member_states(self) -> list[TrainState]:
        """The K runs as ordinary train states (for checkpoints a separate run can resume)."""
        return [self.state.member_state(k) for k in range(self.state.k)]

    def _restore_members(self, snaps: Sequence[dict[str, Any]]) -> None:
        states = []
        for k, snap in enumerate(snaps):
            st = TrainState.start(self.state.members[k], self.settings)
            st.restore(snap)
            states.append(st)
        self.state.load_members(states)

    def _resume(self) -> None:
        """Continue from the pack's checkpoint; else from a larger pack's that holds all these runs (its
        other runs finished or failed); else pack the runs' own checkpoints if all are at one iteration."""
        s, st = self.settings, self.state
        if self.ckpt.exists():
            snap = load_checkpoint(self.ckpt, self.device)
            if (snap.get("schema") == PACKED_SCHEMA and snap.get("config_hashes") == self.hashes
                    and snap["iteration"] < s.iterations):
                self._restore_members(snap["members"])
                for key, (msg, bad) in snap.get("failed", {}).items():
                    st.failed[int(key)] = msg
                    st.first_bad[int(key)] = bad
                self.resumed_from = str(self.ckpt)
                return
        for other in sorted(self.ckpt.parent.glob(f"{self.model}-packed-seeds*.pt")):
            if other == self.ckpt:
                continue
            snap = load_checkpoint(other, self.device)
            if snap.get("schema") != PACKED_SCHEMA or snap["iteration"] >= s.iterations:
                continue
            failed = snap.get("failed", {})
            by_hash = {h: snap["members"][k] for k, h in enumerate(snap["config_hashes"]) if str(k) not in failed}
            if all(h in by_hash for h in self.hashes):
                self._restore_members([by_hash[h] for h in self.hashes])
                self.resumed_from = str(other)
                # Once this pack finishes, the old file holds nothing more unless it has other healthy runs.
                if len(by_hash) == len(self.hashes):
                    self._superseded = other
                return
        paths = [checkpoint_path(self.experiment, self.model, self.profile, seed, self.checkpoint_root)
                 for seed in self.seeds]
        if all(p.exists() for p in paths):
            snaps = [load_checkpoint(p, self.device) for p in paths]
            if (all(sn.get("config_hash") == h for sn, h in zip(snaps, self.hashes))
                    and len({sn["iteration"] for sn in snaps}) == 1 and snaps[0]["iteration"] < s.iterations):
                self._restore_members(snaps)
                self.resumed_from = ", ".join(map(str, paths))

    # ----- the loop

    def _run_step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        st = self.state
        if not self.graphs:
            st.zero_grad()
            st.body(x, y)
            return
        if self._graphed is None:
            prime_optimizer_state(st.optimizer)
            self._static = (x.clone(), y.clone())
            self._graphed = GraphedStep(lambda: st.body(*self._static), st.written, st.zero_grad, st.lrs)
        self._static[0].copy_(x)
        self._static[1].copy_(y)
        try:
            self._graphed()
        except Exception as err:  # noqa: BLE001 - any capture failure: go on eagerly, and say so
            if self._graphed.captures:
                raise
            self.graphs, self._graphed = False, None
            self.engine = f"eager (CUDA graph capture failed: {type(err).__name__}: {str(err)[:200]})"
            print(f"{self.label(0)} ...: {self.engine}", flush=True)
            self._run_step(x, y)

    def step(self) -> None:
        """One iteration of all K runs, with the curve points, reads and checkpoints that fall on it."""
        st, s = self.state, self.settings
        if self.done:
            raise RuntimeError(f"{self.label(0)}: the pack already ran its {s.iterations} iterations")
        if st.iteration == 0 and not st.curves[0]["iteration"]:
            self._curve_points()
        if self.fail_at is not None and st.iteration == self.fail_at:
            raise RuntimeError(f"injected failure at iteration {st.iteration}")
        with torch.cuda.stream(self.stream) if self.stream is not None else contextlib.nullcontext():
            if self.stream is not None:
                # Work queued on the default stream since the last step (evaluation, a reset of the
                # accumulators, a restored checkpoint) comes first; an event, not a host wait.
                self.stream.wait_stream(torch.cuda.default_stream(self.device))
            x, y = self.batches(st.iteration)
            if st.dropout:
                torch.manual_seed(mix_seed(*self.seeds, 3, st.iteration))
            st.in_update = True
            self._run_step(x, y)
            st.scheduler.step()
            st.iteration += 1
            st.loss_count += 1
            st.in_update = False
        it = st.iteration
        curve = it % s.eval_every == 0 or it == s.iterations
        ckpt = it % s.checkpoint_every == 0 and it < s.iterations
        if it % self.read_every == 0 or curve or ckpt or it == s.iterations:
            self.read()
        if curve:
            self._curve_points()
        if ckpt:
            self.checkpoint()

    def read(self) -> None:
        """Wait for the queued steps, count their time, and act on the NaN flags."""
        st = self.state
        self._wait()
        first_bad = st.first_bad.tolist()  # the one host read
        now = time.perf_counter()
        st.train_time += now - self._t_mark
        self._t_mark = now
        if self._bar is not None:
            self._bar.update(st.iteration - self._bar.n)
        for k, bad in enumerate(first_bad):
            if bad >= 0 and k not in st.failed:
                self._fail(k, bad)
        if not self.healthy:
            raise TrainingDiverged("; ".join(st.failed[k] for k in sorted(st.failed)))

    def _fail(self, k: int, bad: int) -> None:
        st = self.state
        value = float(st.bad_value[k])
        since = max(self.start_iteration, st.iteration - self.read_every)
        msg = (f"{self.label(k)}: the loss became {value} at iteration {bad} (found by the read after "
               f"iteration {st.iteration}, which checked iterations {since}..{st.iteration - 1}); "
               f"last finite loss {float(st.last_finite[k]):.4g}")
        st.failed[k] = msg
        _write_failed_record(self.configs[k], msg, bad, st.curves[k], self.device, self.settings,
                             st.elapsed + time.perf_counter() - self._t0, self.train_task, self.records_root,
                             packed=self.provenance())
        if self.progress:
            print(msg, flush=True)

    def _view(self, k: int) -> TrainState:
        """Run k for the loop's helpers: its network (brought up to date) and curves, the pack's schedule."""
        st = self.state
        st.sync_members([k])
        return TrainState(st.members[k], st.optimizer, st.scheduler, curves=st.curves[k], iteration=st.iteration,
                          elapsed=st.elapsed, train_time=st.train_time, loss_sum=float(st.loss_sum[k]),
                          loss_count=st.loss_count, last_finite=float(st.last_finite[k]))

    def _curve_points(self) -> None:
        st = self.state
        for k in self.healthy:
            _curve_point(self._view(k), self.test_task, self.settings, self.per_epoch, self.device)
        st.loss_sum.zero_()
        st.loss_count = 0
        self._t_mark = time.perf_counter()

    def run(self, deadline: float | None = None) -> bool:
        """Step until the end or until ``time.monotonic()`` passes ``deadline``; ``True`` when done.

        An interruption (an exception, Ctrl-C) leaves a checkpoint at the last consistent state.
        """
        s = self.settings
        self._bar = tqdm(total=s.iterations, initial=self.state.iteration, disable=not self.progress,
                         mininterval=2.0, desc=f"{self.experiment} {self.model} [{self.profile}, seeds "
                         f"{','.join(map(str, self.seeds))}]", unit="it", ncols=110)
        try:
            while not self.done:
                if deadline is not None and time.monotonic() >= deadline:
                    self.read()
                    self.checkpoint()
                    return False
                self.step()
        except TrainingDiverged:
            raise
        except BaseException:
            if self.state.iteration > self.start_iteration and not self.state.in_update:
                self.checkpoint()
            raise
        finally:
            self._bar.close()
            self._bar = None
        return True

    def finish(self) -> list[dict[str, Any]]:
        """Evaluate the healthy runs, write their records and final weights, drop the pack's checkpoint."""
        if not self.done:
            raise RuntimeError(f"{self.label(0)}: finish() before the last iteration "
                               f"({self.state.iteration} of {self.settings.iterations})")
        self._wait()
        out = []
        for k in self.healthy:
            out.append(_finish(self._view(k), self.configs[k], self.settings, self.train_task, self.test_task,
                               self.device, self._t0, self.label(k), records_root=self.records_root,
                               checkpoint_root=self.checkpoint_root, progress=self.progress,
                               packed=self.provenance()))
        self.ckpt.unlink(missing_ok=True)
        if self._superseded is not None:
            self._superseded.unlink(missing_ok=True)
        return out


def train_packed(experiment: str, model: str, profile: str, seeds: Sequence[int], **kwargs: Any) -> list[dict[str, Any]]:
    """Train ``model`` for every seed in ``seeds`` as one pack and write one record per run.

    Keyword arguments are :class:`PackedRun`'s (``device``, the roots, ``resume``, ``progress``,
    ``graphs``, ``read_every``, ``fail_at``). Returns the complete runs' records; raises
    :class:`TrainingDiverged` after writing them if any run's loss became NaN or infinite.
    """
    run = PackedRun(experiment, model, profile, seeds, **kwargs)
    if run.resumed_from and run.progress:
        print(f"resuming {experiment}/{model} ({profile}, seeds {list(seeds)}) from iteration "
              f"{run.state.iteration} ({run.resumed_from})")
    run.run()
    recs = run.finish()
    if run.state.failed:
        raise TrainingDiverged("; ".join(run.state.failed[k] for k in sorted(run.state.failed)))
    return recs
