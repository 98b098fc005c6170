"""Evaluation of a network on a task: the test error, the orientation statistics, the figure summaries.

The test error is the protocol's: for MNIST the mean over ``passes`` freshly transformed passes of the
test set, for SVHN the whole-sequence error (a house number counts as right only if all five
positions are). :func:`loss_and_errors` is the one definition of the loss and of an error.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from stnlib import measures, transforms
from stnlib.data import Task
from stnlib.hardware import autocast
from stnlib.nn import Network
from stnlib.records import encode_image
from stnlib.train.config import EXAMPLE_SEED, generator, mix_seed


def loss_and_errors(logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The training loss (batch mean; SVHN: the sum over the 5 positions) and a 0/1 error per example.

    SVHN: an example is wrong when any position (blanks included) is wrong: the sequence error.
    """
    logits = logits.float()
    if logits.dim() == 3:  # SVHN: [N, 5, 11]
        loss = sum(F.cross_entropy(logits[:, k], y[:, k]) for k in range(logits.shape[1]))
        wrong = (logits.argmax(-1) != y).any(dim=1)
    else:
        loss = F.cross_entropy(logits, y)
        wrong = logits.argmax(-1) != y
    return loss, wrong


def _labels(y: torch.Tensor) -> torch.Tensor:
    # SVHN orientation statistics are not computed; for MNIST the class is the label itself.
    return y if y.dim() == 1 else y[:, 0]


def _read_out(theta: torch.Tensor, info: dict[str, torch.Tensor], size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Applied and predicted transform of a batch: angles, or shifts in input pixels."""
    theta = theta.float()
    if "angle_deg" in info:
        return info["angle_deg"].float().cpu().numpy(), transforms.theta_rotation_deg(theta).cpu().numpy()
    return (info["shift_px"].float().cpu().numpy(),
            transforms.theta_translation_px(theta, size).cpu().numpy())


#: Evaluation batch size per device type: on a GPU a batch of 500 leaves it idle between launches, and
#: 5000 MNIST images of the largest network's activations take about 2 GB there.
EVAL_BATCH = {"cpu": 500, "cuda": 5000}


@torch.no_grad()
def evaluate(model: Network, task: Task, *, passes: int, seed: int, precision: str,
             device: torch.device, batch_size: int | None = None, limit: int | None = None,
             collect: bool = False) -> dict[str, Any]:
    """Test error over ``passes`` freshly transformed passes of ``task`` (first ``limit`` examples).

    With ``collect=True`` the first pass also returns the applied and predicted transforms
    (angles for rotated data, shifts for translated data) and the labels, per example.
    ``batch_size`` defaults to :data:`EVAL_BATCH` of the device type. The errors are counted on the
    device and read once per pass (reading each batch's count would wait for the GPU every batch).
    """
    if batch_size is None:
        batch_size = EVAL_BATCH.get(torch.device(device).type, EVAL_BATCH["cpu"])
    was_training = model.training
    model.eval()
    n = task.num_examples if limit is None else min(limit, task.num_examples)
    errors: list[float] = []
    applied: list[np.ndarray] = []
    predicted: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    for p in range(passes):
        g = generator(device, mix_seed(seed, p))
        wrong_total = torch.zeros((), dtype=torch.int64, device=device)
        for start in range(0, n, batch_size):
            idx = torch.arange(start, min(start + batch_size, n), device=device)
            x, y, info = task.raw_batch(idx, g)
            with autocast(device, precision):
                logits, theta = model.forward_with_theta(x)
            _, wrong = loss_and_errors(logits, y)
            wrong_total += wrong.sum()
            if collect and p == 0 and theta is not None and info:
                a, pr = _read_out(theta, info, tuple(x.shape[-2:]))
                applied.append(a)
                predicted.append(pr)
                labels.append(_labels(y).cpu().numpy())
        errors.append(int(wrong_total) / n)
    model.train(was_training)
    out: dict[str, Any] = {"errors": errors, "error": float(np.mean(errors))}
    if applied:
        out["applied"] = np.concatenate(applied)
        out["predicted"] = np.concatenate(predicted)
        out["labels"] = np.concatenate(labels)
    return out


def orientation(ev: dict[str, Any]) -> dict[str, Any] | None:
    """Orientation statistics of an evaluation that collected transforms (``None`` without an ST)."""
    if "applied" not in ev:
        return None
    return measures.orientation_summary(ev["applied"], ev["predicted"], ev["labels"])


def figure_summaries(model: Network, test_task: Task, ev: dict[str, Any], dataset: str,
                     device: torch.device, precision: str) -> dict[str, Any]:
    """Small arrays the chapters' figures need: histograms, examples, misalignment curves."""
    out: dict[str, Any] = {}
    if "applied" in ev:
        a, p = ev["applied"], ev["predicted"]
        if a.ndim == 1:
            out["angle_hist"] = measures.sparse_histogram2d(a, measures.wrap_degrees(p), 55, 110.0)
            rng = np.random.default_rng(0)
            pick = rng.choice(len(a), size=min(500, len(a)), replace=False)
            out["angle_pairs"] = [[round(float(a[i]), 2), round(float(p[i]), 2)] for i in pick]
        else:
            out["shift_hist_x"] = measures.sparse_histogram2d(a[:, 0], p[:, 0], 33, 16.5)
            out["shift_hist_y"] = measures.sparse_histogram2d(a[:, 1], p[:, 1], 33, 16.5)
    if dataset.startswith("mnist"):
        out["examples"] = examples(model, test_task, device, precision)
        upright = test_task.untransformed(torch.arange(200, device=device), normalize=False).float()
        kind = "rotation" if dataset == "mnist-rot" else "translation"
        out["misalignment"] = measures.network_misalignment(model, upright, kind,
                                                            prepare=test_task.normalize_images)
    elif dataset == "svhn" and model.has_st:
        out["examples"] = examples(model, test_task, device, precision)
    return out


@torch.no_grad()
def examples(model: Network, task: Task, device: torch.device, precision: str, n: int = 6) -> dict[str, Any]:
    """A few test inputs with what the ST makes of them (the paper's Figure 2)."""
    model.eval()
    g = generator(device, EXAMPLE_SEED)
    idx = torch.arange(n, device=device)
    x, y, info = task.raw_batch(idx, g)
    shown = task.denormalize(x).float().clamp(0, 1)
    out: dict[str, Any] = {
        "labels": y.cpu().tolist(),
        "inputs": [encode_image(im) for im in shown.cpu().numpy()],
        "info": {k: v.float().cpu().tolist() for k, v in info.items()},
    }
    if not model.has_st:
        return out
    with autocast(device, precision):
        st_out, theta = model.transform(x)
    theta = theta.float()
    out["theta"] = theta.cpu().numpy().round(4).tolist()
    # The predicted transform applied to the input image (as the authors' figure does, also for CX).
    warped = transforms.warp(shown, theta, padding_mode="border" if x.shape[1] == 1 else "zeros")
    out["theta_on_input"] = [encode_image(im) for im in warped.clamp(0, 1).cpu().numpy()]
    st_out = st_out.float()
    if model.warps_feature_maps:
        # Feature maps: keep 4 channels, each scaled to [0, 1] per example for display.
        fm = st_out[:, :4]
        fm = fm / fm.flatten(2).amax(-1).clamp_min(1e-6)[..., None, None]
        out["st_output_kind"] = "feature maps (first 4 channels, scaled per map)"
        out["st_output"] = [encode_image(im) for im in fm.clamp(0, 1).cpu().numpy()]
    else:
        out["st_output_kind"] = "transformed input image"
        out["st_output"] = [encode_image(im) for im in task.denormalize(st_out).clamp(0, 1).cpu().numpy()]
    return out
