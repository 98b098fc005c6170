"""What a run is: its config (whose hash identifies it), its network, its data, its random streams.

Determinism: everything random in a run is a pure function of (seed, iteration): the epoch's
permutation, each batch's augmentation and the dropout masks draw from generators seeded by
:func:`mix_seed`. A run killed at any point and resumed from its last checkpoint therefore ends
with the same weights and metrics as an uninterrupted one (bitwise on the CPU). The test
transforms are seeded independently of the model and seed, so all models are evaluated on the
same transformed test images.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from stnlib import nn as networks
from stnlib.data import Task, get_task
from stnlib.data.svhn.synthetic import difficulty
from stnlib.profiles import TrainSettings, deviations_for, get_experiment, get_profile, settings_for

#: Bump when the training protocol changes in a way the settings do not show: it enters every config.
#: 2: ``precision="auto"`` resolves by the CPU's capability, the misalignment summaries use the one
#: measure of :mod:`stnlib.measures`, and the deviations' wording no longer enters the hash.
PROTOCOL_VERSION = 2
#: Seeds of the test-set transforms: shared by every model so comparisons are paired.
EVAL_SEED = 1_000_003
CURVE_SEED = 2_000_003
EXAMPLE_SEED = 3_000_017


def valid_models(experiment: str) -> tuple[str, ...]:
    """Every model that can be trained under ``experiment`` (its dataset's paper and extension models)."""
    return networks.valid_models(get_experiment(experiment)["dataset"])


def build_config(experiment: str, model: str, profile: str, seed: int) -> dict[str, Any]:
    """The full config of a run; its hash decides whether a stored record can be reused."""
    exp = get_experiment(experiment)
    settings = settings_for(profile, experiment, model)
    pin = get_profile(profile).pin(experiment, model)
    if model not in valid_models(experiment):
        raise ValueError(
            f"unknown model {model!r} for experiment {experiment!r}; valid models: "
            f"{', '.join(valid_models(experiment))}"
        )
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return {
        "protocol_version": pin.protocol_version if pin else PROTOCOL_VERSION,
        "experiment": experiment,
        "dataset": exp["dataset"],
        "model": model,
        "profile": profile,
        "seed": seed,
        "settings": settings.to_dict(),
        # A pinned run hashes its version's wording verbatim, so that its records stay valid.
        "deviations": list(pin.deviations if pin else deviations_for(profile, experiment, model)),
    }


def make_network(model: str, dataset: str, settings: TrainSettings) -> networks.Network:
    """The network of a run, with the settings' SVHN width and dropout."""
    return networks.build(model, dataset, width=settings.width, dropout=settings.dropout)


def make_tasks(dataset: str, settings: TrainSettings, device: torch.device,
               data_root: str | os.PathLike | None) -> tuple[Task, Task]:
    """The training and test tasks of a run, on ``device``."""
    opts: dict[str, Any] = {"channels_last": settings.channels_last}
    if dataset == "svhn":
        opts.update(source=settings.svhn_source, n_train=settings.svhn_n_train, n_test=settings.svhn_n_test,
                    config=difficulty(settings.svhn_difficulty or "paper-like"))
    train_task = get_task(dataset, "train", root=data_root, device=device, subset=settings.train_subset, **opts)
    test_task = get_task(dataset, "test", root=data_root, device=device, subset=settings.test_subset, **opts)
    return train_task, test_task


def to_channels_last(net: torch.nn.Module) -> None:
    """Store the 4-D (conv) weights channels_last, one-input-channel weights with explicit NHWC strides.

    Per parameter because ``Module.to(memory_format=...)`` refuses models with 5-D weights such as
    the group convolutions of :mod:`stnlib.nn.equivariant`; values and the state dict are unchanged."""
    for p in net.parameters():
        if p.dim() == 4:
            # ``to``, not ``contiguous``: with one input channel the NCHW and NHWC strides coincide, and
            # only ``to`` restrides such a weight explicitly. Left ambiguous, PyTorch runs that conv, and
            # the max-pool after it, in NCHW: on the CPU 21 + 98 ms instead of 9 + 7 ms for a
            # 256×64×52×52 map.
            p.data = p.data.to(memory_format=torch.channels_last)


def mix_seed(*parts: int) -> int:
    """A deterministic 63-bit seed from integers (SplitMix-style), for per-iteration generators."""
    z = 0x9E3779B97F4A7C15
    for p in parts:
        z = (z ^ (int(p) + 0x9E3779B97F4A7C15 + (z << 6) + (z >> 2))) & 0xFFFFFFFFFFFFFFFF
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
        z ^= z >> 31
    return z & 0x7FFFFFFFFFFFFFFF


def generator(device: torch.device, seed: int) -> torch.Generator:
    """A fresh generator on ``device`` seeded with ``seed``."""
    g = torch.Generator(device=device)
    g.manual_seed(seed)
    return g
