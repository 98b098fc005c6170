"""Fixtures shared by several test modules."""

import dataclasses

import pytest

from stnlib import profiles


@pytest.fixture
def roots(tmp_path, monkeypatch):
    """Empty record and checkpoint roots under ``tmp_path`` (the data root stays: MNIST is there)."""
    monkeypatch.setenv("STNLIB_RECORDS", str(tmp_path / "records"))
    monkeypatch.setenv("STNLIB_CHECKPOINTS", str(tmp_path / "ckpt"))
    return tmp_path


@pytest.fixture
def tiny(monkeypatch):
    """The smoke profile cut to seconds: batch 8 on 256 images, 5 steps, the learning rate ÷10 after 3,
    the localisation net at half the rate (so both parameter groups and the schedule are exercised)."""
    smoke = profiles.PROFILES["smoke"]
    changed = {}
    for exp, s in smoke.settings.items():
        changed[exp] = dataclasses.replace(
            s, iterations=5, batch_size=8, lr_milestones=(3,), loc_lr_multiplier=0.5, eval_every=100,
            curve_examples=16, train_subset=256, test_subset=256, eval_passes=1, checkpoint_every=100)
    monkeypatch.setitem(profiles.PROFILES, "smoke", dataclasses.replace(smoke, settings=changed))
    return changed
