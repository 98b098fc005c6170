"""The pack: K networks of one model as one set of stacked parameters, one vmapped loss and one optimiser,
and the K runs' batches drawn per run and transformed together.

:class:`PackedState` is to a pack what :class:`stnlib.train.TrainState` is to a run (its members can be
taken out as ordinary run states and put back); :mod:`stnlib.train.packed` drives it through training,
checkpoints and records. Why packing is exact up to float rounding is explained there.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Sequence
from typing import Any

import torch
from torch.func import functional_call

from stnlib.data import Task
from stnlib.hardware import uses_bf16
from stnlib.nn import Network
from stnlib.profiles import TrainSettings
from stnlib.train.config import generator, mix_seed
from stnlib.train.cuda import optimizer_tensors
from stnlib.train.evaluation import loss_and_errors
from stnlib.train.state import CURVE_KEYS, TrainState, make_optimizer, make_scheduler


def _has_dropout(net: torch.nn.Module) -> bool:
    return any(isinstance(m, torch.nn.Dropout) and m.p > 0 for m in net.modules())


# ---------------------------------------------------------------------------------------
# the batches


class PackedBatches:
    """The runs' batches, stacked: run k's part at iteration i is ``training_batch(task, s, seed_k, i, dev)``.

    Each run's epoch permutation is drawn as there (on the CPU, from ``mix_seed(seed, 1, epoch)``) but
    once per epoch, and moved to the device without waiting (pinned memory) instead of every step;
    the batch is then sliced on the device, so nothing is read back to the host.
    """

    def __init__(self, task: Task, settings: TrainSettings, seeds: Sequence[int], device: torch.device) -> None:
        self.task, self.settings, self.seeds, self.device = task, settings, tuple(seeds), device
        self.per_epoch = task.num_examples // settings.batch_size
        if self.per_epoch < 1:
            raise ValueError(f"batch size {settings.batch_size} exceeds the {task.num_examples} training examples")
        self._epoch: int | None = None
        self._perms: list[torch.Tensor] = []

    def _permutations(self, epoch: int) -> list[torch.Tensor]:
        if epoch != self._epoch:
            cpu = torch.device("cpu")
            perms = [torch.randperm(self.task.num_examples, generator=generator(cpu, mix_seed(seed, 1, epoch)))
                     for seed in self.seeds]
            if self.device.type == "cuda":
                perms = [p.pin_memory().to(self.device, non_blocking=True) for p in perms]
            self._perms, self._epoch = perms, epoch
        return self._perms

    def __call__(self, iteration: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x [K, N, C, H, W], y [K, N, ...])`` of ``iteration``."""
        epoch, b = divmod(iteration, self.per_epoch)
        n = self.settings.batch_size
        index = torch.cat([p[b * n:(b + 1) * n] for p in self._permutations(epoch)])
        gens = [generator(self.device, mix_seed(seed, 2, iteration)) for seed in self.seeds]
        # The permutations hold valid indices by construction; checking them would wait for the GPU.
        x, y, _ = self.task.raw_batches(index, gens, check=False)
        k = len(self.seeds)
        return x.unflatten(0, (k, n)), y.unflatten(0, (k, n))


# ---------------------------------------------------------------------------------------
# the state


class PackedState:
    """K runs of one architecture as stacked parameters, one optimiser and device-side accumulators.

    Attributes:
        members: the K runs' own networks; their weights are brought up to date (:meth:`sync_members`)
            for evaluation, checkpoints and records; training never uses them.
        template: the architecture ``functional_call`` runs with the stacked tensors.
        params, buffers: name → stacked tensor ``[K, ...]`` (parameters are leaves that require grad).
        loss_sum (float64), last_finite, first_bad (int64, -1 while finite), bad_value: ``[K]`` on the device.
        step_counter: the iteration as a device scalar (graphs cannot read a Python number).
        failed: run index → the message of its failed record.
    """

    def __init__(self, members: list[Network], settings: TrainSettings, device: torch.device, *,
                 capturable: bool = False) -> None:
        if not members:
            raise ValueError("a pack needs at least one run")
        names = [n for n, _ in members[0].named_parameters()]
        for net in members[1:]:
            if [n for n, _ in net.named_parameters()] != names or type(net) is not type(members[0]):
                raise ValueError("packed runs must share one architecture (the same model)")
        for net in members:
            for m in net.modules():
                if hasattr(m, "fast_input_grad"):
                    m.fast_input_grad = False  # a custom autograd Function without a vmap rule
        self.members, self.settings, self.device, self.k = members, settings, device, len(members)
        self.template = copy.deepcopy(members[0])
        with torch.no_grad():
            self.params = {n: torch.stack([dict(m.named_parameters())[n].detach() for m in members]).requires_grad_()
                           for n in names}
            self.buffers = {n: torch.stack([dict(m.named_buffers())[n] for m in members])
                            for n, _ in members[0].named_buffers()}
        name_of = {id(p): n for n, p in members[0].named_parameters()}
        groups = [{**g, "params": [self.params[name_of[id(p)]] for p in g["params"]]}
                  for g in members[0].param_groups(settings.lr, settings.loc_lr_multiplier)]
        self.capturable = capturable
        self.optimizer = make_optimizer(groups, settings, capturable=capturable)
        self.scheduler = make_scheduler(self.optimizer, settings)
        self.dropout = _has_dropout(members[0])
        self.iteration = 0
        self.curves: list[dict[str, list]] = [{key: [] for key in CURVE_KEYS} for _ in members]
        self.elapsed = 0.0
        self.train_time = 0.0
        self.loss_count = 0
        self.failed: dict[int, str] = {}
        z = dict(device=device)
        self.loss_sum = torch.zeros(self.k, dtype=torch.float64, **z)
        self.last_finite = torch.full((self.k,), math.nan, **z)
        self.first_bad = torch.full((self.k,), -1, dtype=torch.int64, **z)
        self.bad_value = torch.zeros(self.k, **z)
        self.step_counter = torch.zeros((), dtype=torch.int64, **z)
        self.in_update = False

    # ----- one step (device work only: nothing is read back to the host)

    def _member_loss(self, params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor],
                     x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        # No autocast weight cache: PyTorch advises against it in captured CUDA graphs (same values).
        bf16 = uses_bf16(self.device, self.settings.precision)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=bf16, cache_enabled=False):
            logits = functional_call(self.template, (params, buffers), (x,))
        return loss_and_errors(logits, y)[0]

    def losses(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The K runs' training losses ``[K]`` on their batches ``x [K, N, ...]``, ``y [K, N, ...]``."""
        # "error" catches any randomness a network without dropout should not have.
        randomness = "different" if self.dropout and self.template.training else "error"
        with warnings.catch_warnings():
            # affine_grid has no vmap rule yet: PyTorch loops over the K runs there and warns about it.
            warnings.filterwarnings("ignore", message=".*batching rule for aten::affine_grid_generator")
            return torch.vmap(self._member_loss, randomness=randomness)(self.params, self.buffers, x, y)

    def body(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """Forward, backward, the update, and the accumulators (what a CUDA graph captures)."""
        losses = self.losses(x, y)
        losses.sum().backward()
        self.optimizer.step()
        with torch.no_grad():
            loss = losses.detach()
            finite = torch.isfinite(loss)
            self.loss_sum.add_(loss.double())
            self.last_finite.copy_(torch.where(finite, loss, self.last_finite))
            new_bad = ~finite & (self.first_bad < 0)
            self.first_bad.copy_(torch.where(new_bad, self.step_counter, self.first_bad))
            self.bad_value.copy_(torch.where(new_bad, loss, self.bad_value))
            self.step_counter.add_(1)

    def zero_grad(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)

    def written(self) -> list[torch.Tensor]:
        """Every tensor :meth:`body` changes in place (saved around a CUDA graph's warm-up)."""
        return [*self.params.values(), *optimizer_tensors(self.optimizer), self.loss_sum, self.last_finite,
                self.first_bad, self.bad_value, self.step_counter]

    def lrs(self) -> tuple[float, ...]:
        return tuple(float(g["lr"]) for g in self.optimizer.param_groups)

    @property
    def lr(self) -> float:
        """The classifier group's learning rate (what the curves record)."""
        return self.optimizer.param_groups[0]["lr"]

    # ----- the runs one at a time

    def sync_members(self, which: Sequence[int] | None = None) -> None:
        """Copy the stacked weights (and buffers) into the members' own networks."""
        with torch.no_grad():
            for k in range(self.k) if which is None else which:
                net = self.members[k]
                for n, p in net.named_parameters():
                    p.copy_(self.params[n][k])
                for n, b in net.named_buffers():
                    b.copy_(self.buffers[n][k])

    def _flat_params(self) -> list[torch.Tensor]:
        return [p for g in self.optimizer.param_groups for p in g["params"]]

    def member_optimizer_state(self, k: int) -> dict[str, Any]:
        """Run k's share of the optimiser state, as its own optimiser's ``state_dict`` would hold it.

        Per-parameter state (momentum, Adam's moments) is sliced; Adam's step count is shared.
        Stored in the non-capturable form (step on the CPU) so that any run can load it.
        """
        sd = self.optimizer.state_dict()
        flat = self._flat_params()
        state = {}
        for i, entry in sd["state"].items():
            state[i] = {}
            for key, v in entry.items():
                if torch.is_tensor(v) and v.shape == flat[i].shape:
                    v = v[k].clone()
                elif torch.is_tensor(v) and key == "step":
                    v = v.detach().to("cpu", torch.float32).clone()
                state[i][key] = v
        groups = [{**g, **({"capturable": False} if "capturable" in g else {})} for g in sd["param_groups"]]
        return {"state": state, "param_groups": groups}

    def member_state(self, k: int) -> TrainState:
        """Run k as an ordinary :class:`TrainState` (its network, optimiser, schedule and curves)."""
        self.sync_members([k])
        net = self.members[k]
        opt = make_optimizer(net.param_groups(self.settings.lr, self.settings.loc_lr_multiplier), self.settings)
        opt.load_state_dict(self.member_optimizer_state(k))
        sched = make_scheduler(opt, self.settings)
        sched.load_state_dict(self.scheduler.state_dict())
        return TrainState(net, opt, sched, curves=self.curves[k], iteration=self.iteration, elapsed=self.elapsed,
                          train_time=self.train_time, loss_sum=float(self.loss_sum[k]),
                          loss_count=self.loss_count, last_finite=float(self.last_finite[k]))

    def load_members(self, states: Sequence[TrainState]) -> None:
        """Continue from K ordinary run states (all at one iteration): the inverse of :meth:`member_state`."""
        if len(states) != self.k:
            raise ValueError(f"{len(states)} run states for a pack of {self.k}")
        its = {st.iteration for st in states}
        if len(its) != 1:
            raise ValueError(f"packed runs must be at one iteration, got iterations {sorted(its)}")
        with torch.no_grad():
            for n, p in self.params.items():
                p.copy_(torch.stack([dict(st.net.named_parameters())[n].detach() for st in states]))
            for n, b in self.buffers.items():
                b.copy_(torch.stack([dict(st.net.named_buffers())[n] for st in states]))
        dicts = [st.optimizer.state_dict() for st in states]
        member_flat = [p for g in states[0].optimizer.param_groups for p in g["params"]]
        state = {}
        for i, entry in dicts[0]["state"].items():
            state[i] = {}
            for key, v in entry.items():
                if torch.is_tensor(v) and v.shape == member_flat[i].shape:
                    v = torch.stack([d["state"][i][key] for d in dicts])
                state[i][key] = v
        self.optimizer.load_state_dict({"state": state, "param_groups": dicts[0]["param_groups"]})
        if self.capturable:
            for g in self.optimizer.param_groups:
                g["capturable"] = True
            for st in self.optimizer.state.values():
                if "step" in st:
                    st["step"] = st["step"].to(self.device)
        self.scheduler.load_state_dict(states[0].scheduler.state_dict())
        first = states[0]
        self.iteration, self.elapsed, self.train_time = first.iteration, first.elapsed, first.train_time
        self.loss_count = first.loss_count
        self.curves = [st.curves for st in states]
        with torch.no_grad():
            self.loss_sum.copy_(torch.tensor([st.loss_sum for st in states], dtype=torch.float64))
            self.last_finite.copy_(torch.tensor([st.last_finite for st in states]))
            self.step_counter.fill_(self.iteration)
