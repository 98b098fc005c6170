"""The state of a training run, its optimiser and learning-rate schedule, and its checkpoints.

A :class:`TrainState` is everything a run needs to continue: the network, the optimiser and
scheduler, the learning curves so far, the iteration, the running loss and the time spent.
Checkpoints hold its snapshot and are written atomically with fsync (:func:`stnlib.io.atomic_save_torch`)
and read back with ``torch.load(weights_only=True)``, which cannot run code from a tampered file.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from stnlib.io import atomic_save_torch
from stnlib.nn import Network
from stnlib.paths import checkpoints_root
from stnlib.profiles import TrainSettings

OPTIMIZERS: tuple[str, ...] = ("sgd", "adam")
CURVE_KEYS: tuple[str, ...] = ("iteration", "epoch", "lr", "train_loss", "test_error", "orientation")


def build_optimizer(net: Network, settings: TrainSettings) -> torch.optim.Optimizer:
    """SGD or Adam over the network's parameter groups (the localisation net at its own rate)."""
    return make_optimizer(net.param_groups(settings.lr, settings.loc_lr_multiplier), settings)


def make_optimizer(groups: list[dict[str, Any]], settings: TrainSettings, *,
                   capturable: bool = False) -> torch.optim.Optimizer:
    """The settings' optimiser over ``groups`` (packed training passes groups of stacked parameters).

    ``capturable``: Adam keeps its step count on the device so that a CUDA graph can replay its update.
    """
    if settings.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=settings.lr, momentum=settings.momentum,
                               weight_decay=settings.weight_decay)
    if settings.optimizer == "adam":
        return torch.optim.Adam(groups, lr=settings.lr, weight_decay=settings.weight_decay,
                                capturable=capturable)
    raise ValueError(f"unknown optimizer {settings.optimizer!r}; valid choices: {', '.join(OPTIMIZERS)}")


def make_scheduler(optimizer: torch.optim.Optimizer, settings: TrainSettings) -> torch.optim.lr_scheduler.MultiStepLR:
    """The step schedule: the learning rate ÷ ``lr_divisor`` at each milestone (stepped every batch)."""
    return torch.optim.lr_scheduler.MultiStepLR(
        optimizer, milestones=list(settings.lr_milestones), gamma=1.0 / settings.lr_divisor)


@dataclass
class TrainState:
    """A run in progress; :meth:`snapshot` and :meth:`restore` move it through a checkpoint."""

    net: Network
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.MultiStepLR
    curves: dict[str, list] = field(default_factory=lambda: {k: [] for k in CURVE_KEYS})
    iteration: int = 0
    #: Wall seconds spent by earlier processes of this run (resumed runs), and inside training steps.
    elapsed: float = 0.0
    train_time: float = 0.0
    #: Training loss summed since the last curve point, and the last finite loss.
    loss_sum: float = 0.0
    loss_count: int = 0
    last_finite: float = math.nan
    #: True while parameters are being updated: an interrupt then must not be checkpointed.
    in_update: bool = field(default=False, repr=False)

    @classmethod
    def start(cls, net: Network, settings: TrainSettings) -> TrainState:
        """A fresh state: the optimiser and the step schedule (÷``lr_divisor`` at each milestone)."""
        opt = build_optimizer(net, settings)
        return cls(net, opt, make_scheduler(opt, settings))

    @property
    def lr(self) -> float:
        """The current learning rate of the classifier group."""
        return self.optimizer.param_groups[0]["lr"]

    def record_loss(self, value: float) -> None:
        self.last_finite = value
        self.loss_sum += value
        self.loss_count += 1

    def take_mean_loss(self) -> float | None:
        """The mean training loss since the last call (``None`` if no step was taken)."""
        mean = self.loss_sum / self.loss_count if self.loss_count else None
        self.loss_sum, self.loss_count = 0.0, 0
        return mean

    def snapshot(self, config_hash: str, elapsed_now: float) -> dict[str, Any]:
        """Plain data for a checkpoint (tensors, numbers, strings, lists and dicts only)."""
        sched = dict(self.scheduler.state_dict())
        sched["milestones"] = dict(sched["milestones"])  # a Counter is not loadable with weights_only
        return {"config_hash": config_hash, "iteration": self.iteration, "model": self.net.state_dict(),
                "optimizer": self.optimizer.state_dict(), "scheduler": sched, "curves": self.curves,
                "elapsed": self.elapsed + elapsed_now, "train_time": self.train_time,
                "loss_sum": self.loss_sum, "loss_count": self.loss_count, "last_finite": self.last_finite}

    def restore(self, snap: dict[str, Any]) -> None:
        """Continue from a :meth:`snapshot` (the caller checked that its config hash is this run's)."""
        self.net.load_state_dict(snap["model"])
        self.optimizer.load_state_dict(snap["optimizer"])
        sched = dict(snap["scheduler"])
        sched["milestones"] = Counter(sched["milestones"])
        self.scheduler.load_state_dict(sched)
        self.iteration = int(snap["iteration"])
        self.curves = snap["curves"]
        self.elapsed, self.train_time = float(snap["elapsed"]), float(snap["train_time"])
        self.loss_sum, self.loss_count = float(snap["loss_sum"]), int(snap["loss_count"])
        self.last_finite = float(snap["last_finite"])


# ---------------------------------------------------------------------------------------
# checkpoints


def checkpoint_path(experiment: str, model: str, profile: str, seed: int,
                    root: str | os.PathLike | None = None) -> Path:
    """Where a run's resumable checkpoint lives (:func:`stnlib.paths.checkpoints_root`)."""
    return checkpoints_root(root) / profile / experiment / f"{model}-seed{seed}.pt"


def final_weights_path(experiment: str, model: str, profile: str, seed: int,
                       root: str | os.PathLike | None = None) -> Path:
    """Where a finished run keeps its final weights (not in git; for exploration)."""
    path = checkpoint_path(experiment, model, profile, seed, root)
    return path.with_name(path.stem + "-final.pt")


def save_checkpoint(path: Path, snapshot: dict[str, Any]) -> Path:
    """Write a checkpoint atomically (a killed write leaves the previous checkpoint intact)."""
    return atomic_save_torch(path, snapshot)


def load_checkpoint(path: Path, device: torch.device | str) -> dict[str, Any]:
    """Read a checkpoint without executing anything from it (``weights_only=True``)."""
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # an unpickling error, a truncated file, a foreign object
        raise ValueError(f"checkpoint {path} is unreadable or not a stnlib checkpoint ({err}); "
                         "delete it to start the run afresh") from err
