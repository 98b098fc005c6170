"""The training protocol: loop, schedule, evaluation, checkpoints, resume, NaN guard.

One call of :func:`train` trains one (experiment, model, profile, seed) and writes its record.

Protocol (reproduction spec §5-6): cross-entropy (SVHN: the sum of the 5 position losses),
SGD or Adam over parameter groups (the localisation network at ``lr × loc_lr_multiplier``),
the learning rate divided by ``lr_divisor`` at fixed iteration counts (the scheduler steps every
batch), an iteration-based length. MNIST test error = mean over ``eval_passes`` freshly
transformed passes of the test set; SVHN error = whole-sequence error.

Determinism: everything random is a pure function of (seed, iteration): the epoch's
permutation, each batch's augmentation and the dropout masks. A run killed at any point and
resumed from its last checkpoint therefore ends with the same weights and metrics as an
uninterrupted run (bitwise on the CPU). The test transforms are seeded independently of the
model and seed, so all models are evaluated on the same transformed test images.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from . import analysis, records, transforms
from .profiles import TrainSettings, deviations_for, get_experiment, settings_for

PROTOCOL_VERSION = 1
#: Seeds of the test-set transforms: shared by every model so comparisons are paired.
_EVAL_SEED = 1_000_003
_CURVE_SEED = 2_000_003
_EXAMPLE_SEED = 3_000_017
DEFAULT_CHECKPOINTS = records.REPO_ROOT / "data" / "checkpoints"


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the run stopped and a record marked failed was written."""


def valid_models(dataset: str) -> tuple[str, ...]:
    """Every model name that can be trained on ``dataset`` (the paper's and the extensions)."""
    from .models import valid_models as _paper_models

    names = tuple(_paper_models(dataset))
    try:
        from .equivariant import EQUIVARIANT_MODELS
    except ImportError:  # the equivariant extension is optional
        return names
    return names + tuple(m for m in EQUIVARIANT_MODELS if dataset == "mnist-rot")


def make_model(model: str, dataset: str, settings: TrainSettings) -> torch.nn.Module:
    """Build a model by name for ``dataset`` (paper networks and the equivariant extension)."""
    from .models import build_model

    if model not in valid_models(dataset):
        raise ValueError(
            f"unknown model {model!r} for dataset {dataset!r}; valid models: "
            f"{', '.join(valid_models(dataset))}"
        )
    if dataset == "svhn":
        dropout = 0.5 if settings.dropout is None else settings.dropout
        return build_model(model, dataset, width=settings.width, dropout=dropout)
    try:
        return build_model(model, dataset)
    except ValueError:
        from .equivariant import build_equivariant_model

        return build_equivariant_model(model, dataset)


def to_channels_last(net: torch.nn.Module) -> None:
    """Store the 4-D (conv) weights channels_last, one-input-channel weights with explicit NHWC strides.

    Per parameter because ``Module.to(memory_format=...)`` refuses models with 5-D weights such as
    the group convolutions of :mod:`stnlib.equivariant`; values and the state dict are unchanged."""
    for p in net.parameters():
        if p.dim() == 4:
            # ``to``, not ``contiguous``: with one input channel the NCHW and NHWC strides coincide, and
            # only ``to`` restrides such a weight explicitly. Left ambiguous, PyTorch runs that conv, and
            # the max-pool after it, in NCHW: on the CPU 21 + 98 ms instead of 9 + 7 ms for a
            # 256×64×52×52 map.
            p.data = p.data.to(memory_format=torch.channels_last)


def build_config(experiment: str, model: str, profile: str, seed: int) -> dict[str, Any]:
    """The full config of a run; its hash decides whether a stored record can be reused."""
    exp = get_experiment(experiment)
    settings = settings_for(profile, experiment)
    if model not in valid_models(exp["dataset"]):
        raise ValueError(
            f"unknown model {model!r} for experiment {experiment!r}; valid models: "
            f"{', '.join(valid_models(exp['dataset']))}"
        )
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return {
        "protocol_version": PROTOCOL_VERSION,
        "experiment": experiment,
        "dataset": exp["dataset"],
        "model": model,
        "profile": profile,
        "seed": seed,
        "settings": settings.to_dict(),
        "deviations": list(deviations_for(profile, experiment)),
    }


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` if given, else CUDA when available, else the CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """The autocast context for a precision setting (``fp32``, ``bf16`` or ``auto``)."""
    if precision not in ("fp32", "bf16", "auto"):
        raise ValueError(f"unknown precision {precision!r}; valid: fp32, bf16, auto")
    if precision == "fp32" or (precision == "auto" and device.type != "cuda"):
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


#: glibc ``mallopt`` parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4


def reuse_freed_memory() -> bool:
    """Make this process keep freed memory for reuse instead of handing it back to the OS.

    Why: glibc serves every allocation above its mmap threshold (at most 32 MiB) with fresh pages
    and unmaps them on ``free``, so each training step page-faults its large activations in again.
    On the 2-core reference CPU a 256×64×52×52 bf16 activation (translated MNIST, 88 MB) costs
    24 ms to ``clone`` that way and 8 ms from the heap; a whole training step gets 1.3-1.8× faster
    (``benchmarks/throughput.py``). The results are bitwise the same: only where memory comes
    from changes. The cost: the process keeps its peak heap until it exits.

    Process-wide, idempotent; :func:`train` calls it for CPU runs. Returns ``False`` (and
    changes nothing) where the C library is not glibc.
    """
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    # mallopt returns 1 on success; no mmap'd chunks, and never trim the heap top.
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))


def _mix(*parts: int) -> int:
    """A deterministic 63-bit seed from integers (SplitMix-style), for per-iteration generators."""
    z = 0x9E3779B97F4A7C15
    for p in parts:
        z = (z ^ (int(p) + 0x9E3779B97F4A7C15 + (z << 6) + (z >> 2))) & 0xFFFFFFFFFFFFFFFF
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
        z ^= z >> 31
    return z & 0x7FFFFFFFFFFFFFFF


def _generator(device: torch.device, seed: int) -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(seed)
    return g


def loss_and_errors(logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Loss (batch mean; SVHN: sum over the 5 positions) and a 0/1 error per example."""
    logits = logits.float()
    if logits.dim() == 3:  # SVHN: [N, 5, 11]
        loss = sum(F.cross_entropy(logits[:, k], y[:, k]) for k in range(logits.shape[1]))
        wrong = (logits.argmax(-1) != y).any(dim=1)
    else:
        loss = F.cross_entropy(logits, y)
        wrong = logits.argmax(-1) != y
    return loss, wrong


def _make_tasks(dataset: str, settings: TrainSettings, device: torch.device, data_root: str):
    from .data import get_task

    opts: dict[str, Any] = {"channels_last": settings.channels_last}
    if dataset == "svhn":
        opts.update(source=settings.svhn_source, n_train=settings.svhn_n_train,
                    n_test=settings.svhn_n_test)
    train_task = get_task(dataset, "train", root=data_root, device=device,
                          subset=settings.train_subset, **opts)
    test_task = get_task(dataset, "test", root=data_root, device=device,
                         subset=settings.test_subset, **opts)
    return train_task, test_task


def _labels(y: torch.Tensor) -> torch.Tensor:
    # SVHN orientation statistics are not computed; for MNIST the class is the label itself.
    return y if y.dim() == 1 else y[:, 0]


@torch.no_grad()
def evaluate(model: torch.nn.Module, task: Any, *, passes: int, seed: int,
             precision: str, device: torch.device, batch_size: int = 500,
             limit: int | None = None, collect: bool = False) -> dict[str, Any]:
    """Test error over ``passes`` freshly transformed passes of ``task`` (first ``limit`` examples).

    With ``collect=True`` the first pass also returns the applied and predicted transforms
    (angles for rotated data, shifts for translated data) and the labels, per example.
    """
    was_training = model.training
    model.eval()
    n = task.num_examples if limit is None else min(limit, task.num_examples)
    errors: list[float] = []
    applied: list[np.ndarray] = []
    predicted: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    is_stn = getattr(model, "kind", "cnn") != "cnn"
    for p in range(passes):
        g = _generator(device, _mix(seed, p))
        wrong_total = 0
        for start in range(0, n, batch_size):
            idx = torch.arange(start, min(start + batch_size, n), device=device)
            x, y, info = task.raw_batch(idx, g)
            with autocast(device, precision):
                logits, theta = model.forward_with_theta(x)
            _, wrong = loss_and_errors(logits, y)
            wrong_total += int(wrong.sum())
            if collect and p == 0 and is_stn and theta is not None and info:
                theta = theta.float()
                if "angle_deg" in info:
                    applied.append(info["angle_deg"].float().cpu().numpy())
                    predicted.append(transforms.theta_rotation_deg(theta).cpu().numpy())
                elif "shift_px" in info:
                    applied.append(info["shift_px"].float().cpu().numpy())
                    predicted.append(
                        transforms.theta_translation_px(theta, tuple(x.shape[-2:])).cpu().numpy())
                labels.append(_labels(y).cpu().numpy())
        errors.append(wrong_total / n)
    model.train(was_training)
    out: dict[str, Any] = {"errors": errors, "error": float(np.mean(errors))}
    if applied:
        out["applied"] = np.concatenate(applied)
        out["predicted"] = np.concatenate(predicted)
        out["labels"] = np.concatenate(labels)
    return out


def _orientation_summary(ev: dict[str, Any]) -> dict[str, Any] | None:
    """Orientation statistics of collected (applied, predicted) transforms."""
    if "applied" not in ev:
        return None
    a, p, lab = ev["applied"], ev["predicted"], ev["labels"]
    if a.ndim == 1:  # rotation angles
        p = analysis.wrap_degrees(p)
        return {"kind": "rotation", **analysis.orientation_stats(a, p, lab)}
    # Translations: one set of statistics per axis (x right, y down), plus their mean.
    sx = analysis.orientation_stats(a[:, 0], p[:, 0], lab)
    sy = analysis.orientation_stats(a[:, 1], p[:, 1], lab)
    mean = {k: (sx[k] + sy[k]) / 2 for k in sx}
    return {"kind": "translation", **mean, "x": sx, "y": sy}


def _figure_summaries(model: torch.nn.Module, test_task: Any, ev: dict[str, Any],
                      dataset: str, device: torch.device, precision: str) -> dict[str, Any]:
    """Small arrays the chapters' figures need: histograms, examples, misalignment curves."""
    out: dict[str, Any] = {}
    if "applied" in ev:
        a, p = ev["applied"], ev["predicted"]
        if a.ndim == 1:
            out["angle_hist"] = analysis.sparse_histogram2d(a, analysis.wrap_degrees(p), 55, 110.0)
            rng = np.random.default_rng(0)
            pick = rng.choice(len(a), size=min(500, len(a)), replace=False)
            out["angle_pairs"] = [[round(float(a[i]), 2), round(float(p[i]), 2)] for i in pick]
        else:
            out["shift_hist_x"] = analysis.sparse_histogram2d(a[:, 0], p[:, 0], 33, 16.5)
            out["shift_hist_y"] = analysis.sparse_histogram2d(a[:, 1], p[:, 1], 33, 16.5)
    if dataset.startswith("mnist"):
        out["examples"] = _examples(model, test_task, device, precision)
        out["misalignment"] = _misalignment(model, dataset, test_task, device)
    elif dataset == "svhn" and getattr(model, "kind", "cnn") != "cnn":
        out["examples"] = _examples(model, test_task, device, precision)
    return out


@torch.no_grad()
def _examples(model: torch.nn.Module, task: Any, device: torch.device, precision: str,
              n: int = 6) -> dict[str, Any]:
    """A few test inputs with what the ST makes of them (Figure 2)."""
    model.eval()
    g = _generator(device, _EXAMPLE_SEED)
    idx = torch.arange(n, device=device)
    x, y, info = task.raw_batch(idx, g)
    shown = task.denormalize(x).float().clamp(0, 1)
    out: dict[str, Any] = {
        "labels": y.cpu().tolist(),
        "inputs": [records.encode_image(im) for im in shown.cpu().numpy()],
        "info": {k: v.float().cpu().tolist() for k, v in info.items()},
    }
    if getattr(model, "kind", "cnn") == "cnn":
        return out
    with autocast(device, precision):
        st_out, theta = model.transform(x)
    theta = theta.float()
    out["theta"] = theta.cpu().numpy().round(4).tolist()
    # The predicted transform applied to the input image (as the authors' figure does, also for CX).
    warped = transforms.warp(shown, theta, padding_mode="border" if x.shape[1] == 1 else "zeros")
    out["theta_on_input"] = [records.encode_image(im) for im in warped.clamp(0, 1).cpu().numpy()]
    st_out = st_out.float()
    if model.kind == "c" and model.placement > 0:
        # Feature maps: keep 4 channels, each scaled to [0, 1] per example for display.
        fm = st_out[:, :4]
        fm = fm / fm.flatten(2).amax(-1).clamp_min(1e-6)[..., None, None]
        out["st_output_kind"] = "feature maps (first 4 channels, scaled per map)"
        out["st_output"] = [records.encode_image(im) for im in fm.clamp(0, 1).cpu().numpy()]
    else:
        out["st_output_kind"] = "transformed input image"
        out["st_output"] = [records.encode_image(im) for im in
                            task.denormalize(st_out).clamp(0, 1).cpu().numpy()]
    return out


@torch.no_grad()
def _misalignment(model: torch.nn.Module, dataset: str, task: Any, device: torch.device,
                  n: int = 200) -> dict[str, Any]:
    """First-layer feature-map misalignment curves on ``n`` untransformed test digits."""
    model.eval()
    upright = task.untransformed(torch.arange(n, device=device)).float()
    if dataset == "mnist-rot":
        return {"kind": "rotation",
                **analysis.rotation_misalignment(model, upright, range(-90, 91, 15))}
    return {"kind": "translation",
            **analysis.translation_misalignment(model, upright, range(-16, 17, 4))}


# ---------------------------------------------------------------------------------------
# checkpoints


def checkpoint_path(experiment: str, model: str, profile: str, seed: int,
                    root: str | os.PathLike | None = None) -> Path:
    base = Path(root) if root is not None else Path(
        os.environ.get("STNLIB_CHECKPOINTS", DEFAULT_CHECKPOINTS))
    return base / profile / experiment / f"{model}-seed{seed}.pt"


def _save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------
# the loop


def train(experiment: str, model: str, profile: str, seed: int = 0, *,
          device: str | torch.device | None = None,
          records_root: str | os.PathLike | None = None,
          checkpoint_root: str | os.PathLike | None = None,
          data_root: str | os.PathLike = records.REPO_ROOT / "data",
          resume: bool = True, progress: bool = True,
          fail_at: int | None = None) -> dict[str, Any]:
    """Train one model under one profile and write its record; returns the record.

    A checkpoint (under ``data/checkpoints``) is written every ``checkpoint_every`` iterations
    and when the run is interrupted; with ``resume=True`` a run with the same config continues
    from it. ``fail_at`` raises a ``RuntimeError`` just before that iteration (used by tests to
    simulate a killed run). A NaN/inf loss writes a record with status ``"failed"`` and raises
    :class:`TrainingDiverged`.
    """
    cfg = build_config(experiment, model, profile, seed)
    h = records.config_hash(cfg)
    s = settings_for(profile, experiment)
    dataset = cfg["dataset"]
    dev = resolve_device(device)
    precision = s.precision
    if dev.type == "cpu":
        reuse_freed_memory()

    torch.manual_seed(_mix(seed, 0))
    net = make_model(model, dataset, s).to(dev)
    if s.channels_last:
        to_channels_last(net)
    train_task, test_task = _make_tasks(dataset, s, dev, str(data_root))
    groups = net.param_groups(s.lr, s.loc_lr_multiplier)
    if s.optimizer == "sgd":
        opt: torch.optim.Optimizer = torch.optim.SGD(
            groups, lr=s.lr, momentum=s.momentum, weight_decay=s.weight_decay)
    elif s.optimizer == "adam":
        opt = torch.optim.Adam(groups, lr=s.lr, weight_decay=s.weight_decay)
    else:
        raise ValueError(f"unknown optimizer {s.optimizer!r}; valid: sgd, adam")
    sched = torch.optim.lr_scheduler.MultiStepLR(
        opt, milestones=list(s.lr_milestones), gamma=1.0 / s.lr_divisor)

    n_train = train_task.num_examples
    per_epoch = n_train // s.batch_size
    if per_epoch < 1:
        raise ValueError(f"batch size {s.batch_size} exceeds the {n_train} training examples")
    curves: dict[str, Any] = {"iteration": [], "epoch": [], "lr": [], "train_loss": [],
                              "test_error": [], "orientation": []}
    start_it, elapsed, train_time = 0, 0.0, 0.0
    loss_sum, loss_count, last_finite = 0.0, 0, math.nan

    ckpt = checkpoint_path(experiment, model, profile, seed, checkpoint_root)
    if resume and ckpt.exists():
        state = torch.load(ckpt, map_location=dev, weights_only=False)
        if state.get("config_hash") == h and state["iteration"] < s.iterations:
            net.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            sched.load_state_dict(state["scheduler"])
            start_it = state["iteration"]
            curves = state["curves"]
            elapsed, train_time = state["elapsed"], state["train_time"]
            loss_sum, loss_count = state["loss_sum"], state["loss_count"]
            last_finite = state["last_finite"]
            if progress:
                print(f"resuming {experiment}/{model} ({profile}, seed {seed}) "
                      f"from iteration {start_it}")

    def snapshot(iteration: int) -> dict[str, Any]:
        return {"config_hash": h, "iteration": iteration, "model": net.state_dict(),
                "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                "curves": curves, "elapsed": elapsed + (time.perf_counter() - t0),
                "train_time": train_time, "loss_sum": loss_sum, "loss_count": loss_count,
                "last_finite": last_finite}

    def curve_point(iteration: int) -> None:
        nonlocal loss_sum, loss_count
        ev = evaluate(net, test_task, passes=1, seed=_CURVE_SEED, precision=precision,
                      device=dev, limit=s.curve_examples, collect=True)
        curves["iteration"].append(iteration)
        curves["epoch"].append(round(iteration / per_epoch, 3))
        curves["lr"].append(opt.param_groups[0]["lr"])
        curves["train_loss"].append(loss_sum / loss_count if loss_count else None)
        curves["test_error"].append(ev["error"])
        orient = _orientation_summary(ev)
        curves["orientation"].append(
            None if orient is None else {k: orient[k] for k in
                                         ("slope", "abs_r", "r", "pooled_class_deviation")})
        loss_sum, loss_count = 0.0, 0

    t0 = time.perf_counter()
    net.train()
    consistent = True
    bar = tqdm(total=s.iterations, initial=start_it, disable=not progress, mininterval=2.0,
               desc=f"{experiment} {model} [{profile}, seed {seed}]", unit="it",
               dynamic_ncols=False, ncols=110)
    it = start_it
    try:
        if start_it == 0 and not curves["iteration"]:
            curve_point(0)
        while it < s.iterations:
            if fail_at is not None and it == fail_at:
                raise RuntimeError(f"injected failure at iteration {it}")
            epoch, b = divmod(it, per_epoch)
            perm = torch.randperm(n_train, generator=_generator(torch.device("cpu"),
                                                                _mix(seed, 1, epoch)))
            idx = perm[b * s.batch_size:(b + 1) * s.batch_size].to(dev)
            t_step = time.perf_counter()
            x, y, _ = train_task.raw_batch(idx, _generator(dev, _mix(seed, 2, it)))
            torch.manual_seed(_mix(seed, 3, it))  # dropout masks: a function of the iteration
            with autocast(dev, precision):
                logits = net(x)
            loss, _ = loss_and_errors(logits, y)
            lv = float(loss.detach())
            if not math.isfinite(lv):
                raise TrainingDiverged(
                    f"{experiment}/{model} ({profile}, seed {seed}): the loss became {lv} at "
                    f"iteration {it}; last finite loss {last_finite:.4g}")
            consistent = False
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            it += 1
            consistent = True
            train_time += time.perf_counter() - t_step
            last_finite = lv
            loss_sum += lv
            loss_count += 1
            bar.update(1)
            if it % 10 == 0 or it == s.iterations:
                bar.set_postfix(loss=f"{lv:.3f}",
                                img_s=f"{it * s.batch_size / max(train_time, 1e-9):.0f}")
            if it % s.eval_every == 0 or it == s.iterations:
                curve_point(it)
            if it % s.checkpoint_every == 0 and it < s.iterations:
                _save_checkpoint(ckpt, snapshot(it))
    except TrainingDiverged as e:
        bar.close()
        wall = elapsed + time.perf_counter() - t0
        rec = _record(cfg, h, "failed", {"error_message": str(e), "failed_at_iteration": it},
                      curves, {}, dev, wall, train_task)
        records.atomic_write_json(
            records.record_path(experiment, model, profile, seed, records_root), rec)
        raise
    except BaseException:
        bar.close()
        # Leave a resumable checkpoint at the last consistent state (never mid-update).
        if consistent and it > start_it:
            _save_checkpoint(ckpt, snapshot(it))
        raise
    bar.close()

    ev = evaluate(net, test_task, passes=s.eval_passes, seed=_EVAL_SEED, precision=precision,
                  device=dev, collect=True)
    orient = _orientation_summary(ev)
    metrics: dict[str, Any] = {
        "test_error": ev["error"],
        "test_error_passes": ev["errors"],
        "test_examples": test_task.num_examples,
        "final_train_loss": last_finite,
        "parameters": sum(p.numel() for p in net.parameters()),
    }
    if orient is not None:
        metrics["orientation"] = orient
    summaries = _figure_summaries(net, test_task, ev, dataset, dev, precision)
    wall = elapsed + time.perf_counter() - t0
    rec = _record(cfg, h, "complete", metrics, curves, summaries, dev, wall, train_task)
    # Throughput describes the machine, not the result: it lives with the provenance.
    rec["provenance"]["train_images_per_s"] = round(
        s.iterations * s.batch_size / max(train_time, 1e-9), 1)
    path = records.record_path(experiment, model, profile, seed, records_root)
    records.atomic_write_json(path, rec)
    _save_checkpoint(ckpt.with_name(ckpt.stem + "-final.pt"),
                     {"config_hash": h, "model": net.state_dict()})
    ckpt.unlink(missing_ok=True)
    if progress:
        print(f"{experiment}/{model} [{profile}, seed {seed}]: test error "
              f"{100 * ev['error']:.2f}% ({s.eval_passes} pass(es)), {wall:.0f} s, "
              f"{rec['provenance']['train_images_per_s']:.0f} img/s -> {path}")
    return rec


def _record(cfg: dict[str, Any], h: str, status: str, metrics: dict[str, Any],
            curves: dict[str, Any], summaries: dict[str, Any], dev: torch.device,
            wall: float, task: Any) -> dict[str, Any]:
    return {
        "schema": records.SCHEMA,
        "experiment": cfg["experiment"],
        "model": cfg["model"],
        "profile": cfg["profile"],
        "seed": cfg["seed"],
        "status": status,
        "config": cfg,
        "config_hash": h,
        "metrics": metrics,
        "curves": curves,
        "summaries": summaries,
        "provenance": records.provenance(dev, wall, getattr(task, "source", "unknown")),
    }


def load_trained_model(experiment: str, model: str, profile: str, seed: int = 0, *,
                       device: str | torch.device = "cpu",
                       checkpoint_root: str | os.PathLike | None = None) -> torch.nn.Module:
    """The final weights of a finished run (kept under ``data/checkpoints``, not in git)."""
    cfg = build_config(experiment, model, profile, seed)
    path = checkpoint_path(experiment, model, profile, seed, checkpoint_root)
    path = path.with_name(path.stem + "-final.pt")
    if not path.exists():
        raise FileNotFoundError(
            f"no final checkpoint at {path}; train it with "
            f"`python -m stnlib train {experiment} {model} --profile {profile} --seed {seed}`")
    state = torch.load(path, map_location=device, weights_only=False)
    if state["config_hash"] != records.config_hash(cfg):
        raise records.RecordError(f"{path} was trained with another config; retrain it")
    net = make_model(model, cfg["dataset"], settings_for(profile, experiment)).to(device)
    net.load_state_dict(state["model"])
    return net.eval()
