"""The training protocol: one run from its config to its record.

Protocol: cross-entropy (SVHN: the sum of the 5 position losses), SGD or Adam over parameter groups
(the localisation network at ``lr × loc_lr_multiplier``), the learning rate divided by
``lr_divisor`` at fixed iteration counts (the scheduler steps every batch), an iteration-based
length. The book's Protocol page lists what the paper fixes and what was chosen where it is silent.

:func:`train_step` is one optimisation step (the benchmarks time it); :func:`train` runs a whole
(experiment, model, profile, seed): learning curves, resumable checkpoints, a NaN guard, the final
evaluation and the record.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any

import torch
from tqdm import tqdm

from stnlib import records
from stnlib.data import Task
from stnlib.hardware import (autocast, cpu_capability, describe_precision, device_name, resolve_device,
                             reuse_freed_memory)
from stnlib.profiles import TrainSettings, settings_for, training_settings
from stnlib.train.config import (CURVE_SEED, EVAL_SEED, build_config, generator, make_network, make_tasks,
                                 mix_seed, to_channels_last)
from stnlib.train.evaluation import evaluate, figure_summaries, loss_and_errors, orientation
from stnlib.train.state import TrainState, checkpoint_path, final_weights_path, load_checkpoint, save_checkpoint


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the run stopped and a record marked failed was written."""


def training_batch(task: Task, settings: TrainSettings, seed: int, iteration: int,
                   device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The batch of ``iteration``: a slice of the epoch's permutation, augmented from its own generator.

    Both are pure functions of ``(seed, iteration)``, so a resumed run sees the same batches.
    """
    per_epoch = task.num_examples // settings.batch_size
    epoch, b = divmod(iteration, per_epoch)
    perm = torch.randperm(task.num_examples, generator=generator(torch.device("cpu"), mix_seed(seed, 1, epoch)))
    idx = perm[b * settings.batch_size:(b + 1) * settings.batch_size].to(device)
    x, y, _ = task.raw_batch(idx, generator(device, mix_seed(seed, 2, iteration)))
    return x, y


def train_step(state: TrainState, x: torch.Tensor, y: torch.Tensor, *, device: torch.device,
               precision: str) -> float:
    """One optimisation step on ``(x, y)``; returns the loss. A non-finite loss raises before any update."""
    with autocast(device, precision):
        logits = state.net(x)
    loss, _ = loss_and_errors(logits, y)
    value = float(loss.detach())
    if not math.isfinite(value):
        raise FloatingPointError(value)
    state.in_update = True
    state.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    state.optimizer.step()
    state.scheduler.step()
    state.iteration += 1
    state.in_update = False
    return value


def _curve_point(state: TrainState, test_task: Task, settings: TrainSettings, per_epoch: int,
                 device: torch.device) -> None:
    """Append one evaluation to the learning curves (a fixed subset of the test set, one pass)."""
    ev = evaluate(state.net, test_task, passes=1, seed=CURVE_SEED, precision=settings.precision,
                  device=device, limit=settings.curve_examples, collect=True)
    orient = orientation(ev)
    c = state.curves
    c["iteration"].append(state.iteration)
    c["epoch"].append(round(state.iteration / per_epoch, 3))
    c["lr"].append(state.lr)
    c["train_loss"].append(state.take_mean_loss())
    c["test_error"].append(ev["error"])
    c["orientation"].append(None if orient is None else
                            {k: orient[k] for k in ("slope", "abs_r", "r", "pooled_class_deviation")})


def _provenance(device: torch.device, settings: TrainSettings, wall: float, task: Task,
                **extra: Any) -> dict[str, Any]:
    cap = {"cpu_capability": cpu_capability().describe()} if device.type == "cpu" else {}
    return records.provenance(device=device_name(device), precision=describe_precision(device, settings.precision),
                              wall_time_s=wall, data_source=task.source, **cap, **extra)


def train(experiment: str, model: str, profile: str, seed: int = 0, *,
          device: str | torch.device | None = None,
          records_root: str | os.PathLike | None = None,
          checkpoint_root: str | os.PathLike | None = None,
          data_root: str | os.PathLike | None = None,
          resume: bool = True, progress: bool = True,
          fail_at: int | None = None) -> dict[str, Any]:
    """Train one model under one profile and write its record; returns the record.

    A checkpoint is written every ``checkpoint_every`` iterations and when the run is interrupted;
    with ``resume=True`` a run with the same config continues from it. ``fail_at`` raises a
    ``RuntimeError`` just before that iteration (tests use it to simulate a killed run). A NaN/inf loss
    writes a record with status ``"failed"`` and raises :class:`TrainingDiverged`.
    """
    cfg = build_config(experiment, model, profile, seed)
    h = records.config_hash(cfg)
    s = training_settings(profile, experiment, model)  # the config above hashes settings_for's
    dev = resolve_device(device)
    if dev.type == "cpu":
        reuse_freed_memory()
    torch.manual_seed(mix_seed(seed, 0))
    net = make_network(model, cfg["dataset"], s).to(dev)
    if s.channels_last:
        to_channels_last(net)
    train_task, test_task = make_tasks(cfg["dataset"], s, dev, data_root)
    per_epoch = train_task.num_examples // s.batch_size
    if per_epoch < 1:
        raise ValueError(f"batch size {s.batch_size} exceeds the {train_task.num_examples} training examples")
    state = TrainState.start(net, s)
    ckpt = checkpoint_path(experiment, model, profile, seed, checkpoint_root)
    if resume and ckpt.exists():
        snap = load_checkpoint(ckpt, dev)
        if snap.get("config_hash") == h and snap["iteration"] < s.iterations:
            state.restore(snap)
            if progress:
                print(f"resuming {experiment}/{model} ({profile}, seed {seed}) from iteration {state.iteration}")
    label = f"{experiment}/{model} ({profile}, seed {seed})"
    t0 = _run_iterations(state, cfg, s, train_task, test_task, per_epoch, dev, ckpt, label,
                         records_root=records_root, progress=progress, fail_at=fail_at)
    return _finish(state, cfg, s, train_task, test_task, dev, t0, label,
                   records_root=records_root, checkpoint_root=checkpoint_root, progress=progress)


def _run_iterations(state: TrainState, cfg: dict[str, Any], s: TrainSettings, train_task: Task,
                    test_task: Task, per_epoch: int, dev: torch.device, ckpt: os.PathLike, label: str, *,
                    records_root: str | os.PathLike | None, progress: bool, fail_at: int | None) -> float:
    """The loop from ``state.iteration`` to the end; returns the wall-clock start of this process's part."""
    h, seed = records.config_hash(cfg), cfg["seed"]
    t0 = time.perf_counter()
    start_it = state.iteration
    state.net.train()
    bar = tqdm(total=s.iterations, initial=start_it, disable=not progress, mininterval=2.0,
               desc=f"{cfg['experiment']} {cfg['model']} [{cfg['profile']}, seed {seed}]", unit="it",
               dynamic_ncols=False, ncols=110)
    try:
        if start_it == 0 and not state.curves["iteration"]:
            _curve_point(state, test_task, s, per_epoch, dev)
        while state.iteration < s.iterations:
            if fail_at is not None and state.iteration == fail_at:
                raise RuntimeError(f"injected failure at iteration {state.iteration}")
            t_step = time.perf_counter()
            x, y = training_batch(train_task, s, seed, state.iteration, dev)
            torch.manual_seed(mix_seed(seed, 3, state.iteration))  # dropout masks: a function of the iteration
            try:
                value = train_step(state, x, y, device=dev, precision=s.precision)
            except FloatingPointError as err:
                raise TrainingDiverged(f"{label}: the loss became {err.args[0]} at iteration {state.iteration}; "
                                       f"last finite loss {state.last_finite:.4g}") from None
            state.train_time += time.perf_counter() - t_step
            state.record_loss(value)
            it = state.iteration
            bar.update(1)
            if it % 10 == 0 or it == s.iterations:
                bar.set_postfix(loss=f"{value:.3f}", img_s=f"{it * s.batch_size / max(state.train_time, 1e-9):.0f}")
            if it % s.eval_every == 0 or it == s.iterations:
                _curve_point(state, test_task, s, per_epoch, dev)
            if it % s.checkpoint_every == 0 and it < s.iterations:
                save_checkpoint(ckpt, state.snapshot(h, time.perf_counter() - t0))
    except TrainingDiverged as e:
        bar.close()
        _write_failed_record(cfg, str(e), state.iteration, state.curves, dev, s,
                             state.elapsed + time.perf_counter() - t0, train_task, records_root)
        raise
    except BaseException:
        bar.close()
        # Leave a resumable checkpoint at the last consistent state, never one caught mid-update.
        if state.iteration > start_it and not state.in_update:
            save_checkpoint(ckpt, state.snapshot(h, time.perf_counter() - t0))
        raise
    bar.close()
    return t0


def _write_failed_record(cfg: dict[str, Any], message: str, iteration: int, curves: dict[str, list],
                         dev: torch.device, s: TrainSettings, wall: float, train_task: Task,
                         records_root: str | os.PathLike | None, **extra: Any) -> dict[str, Any]:
    """The record of a run whose loss became NaN or infinite (status ``"failed"``), written atomically."""
    rec = records.new_record(cfg, status="failed", metrics={"error_message": message,
                             "failed_at_iteration": iteration}, curves=curves, summaries={},
                             provenance=_provenance(dev, s, wall, train_task, **extra))
    records.write_record(rec, records_root)
    return rec


def _finish(state: TrainState, cfg: dict[str, Any], s: TrainSettings, train_task: Task, test_task: Task,
            dev: torch.device, t0: float, label: str, *, records_root: str | os.PathLike | None,
            checkpoint_root: str | os.PathLike | None, progress: bool, **extra: Any) -> dict[str, Any]:
    """The final evaluation, the record (written atomically), the final weights.

    ``extra`` goes to the record's provenance (packed training says so there)."""
    ev = evaluate(state.net, test_task, passes=s.eval_passes, seed=EVAL_SEED, precision=s.precision,
                  device=dev, collect=True)
    metrics: dict[str, Any] = {
        "test_error": ev["error"],
        "test_error_passes": ev["errors"],
        "test_examples": test_task.num_examples,
        "final_train_loss": state.last_finite,
        "parameters": sum(p.numel() for p in state.net.parameters()),
    }
    orient = orientation(ev)
    if orient is not None:
        metrics["orientation"] = orient
    summaries = figure_summaries(state.net, test_task, ev, cfg["dataset"], dev, s.precision)
    wall = state.elapsed + time.perf_counter() - t0
    # Throughput describes the machine, not the result: it lives with the provenance.
    ips = round(s.iterations * s.batch_size / max(state.train_time, 1e-9), 1)
    rec = records.new_record(cfg, status="complete", metrics=metrics, curves=state.curves, summaries=summaries,
                             provenance=_provenance(dev, s, wall, train_task, train_images_per_s=ips, **extra))
    path = records.write_record(rec, records_root)
    e, m, p, seed = cfg["experiment"], cfg["model"], cfg["profile"], cfg["seed"]
    save_checkpoint(final_weights_path(e, m, p, seed, checkpoint_root),
                    {"config_hash": rec["config_hash"], "model": state.net.state_dict()})
    checkpoint_path(e, m, p, seed, checkpoint_root).unlink(missing_ok=True)
    if progress:
        print(f"{label}: test error {100 * ev['error']:.2f}% ({s.eval_passes} pass(es)), {wall:.0f} s, "
              f"{ips:.0f} img/s -> {path}")
    return rec


def load_trained_model(experiment: str, model: str, profile: str, seed: int = 0, *,
                       device: str | torch.device = "cpu",
                       checkpoint_root: str | os.PathLike | None = None) -> torch.nn.Module:
    """The final weights of a finished run (kept under the checkpoints root, not in git)."""
    cfg = build_config(experiment, model, profile, seed)
    path = final_weights_path(experiment, model, profile, seed, checkpoint_root)
    if not path.exists():
        raise FileNotFoundError(
            f"no final weights at {path}; train it with "
            f"`python -m stnlib train {experiment} {model} --profile {profile} --seed {seed}`")
    state = load_checkpoint(path, device)
    if state["config_hash"] != records.config_hash(cfg):
        raise records.RecordError(f"{path} was trained with another config; retrain it")
    net = make_network(model, cfg["dataset"], settings_for(profile, experiment, model)).to(device)
    net.load_state_dict(state["model"])
    return net.eval()
