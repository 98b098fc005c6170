"""benchmarks/calibrate.py: a variant schedule replaces the experiment's own, pins included, and
``--keep`` stores the run where the chapters read calibration records."""

from __future__ import annotations

import dataclasses
import json

import pytest

from stnlib import profiles, records
from stnlib.report.calibration import calibration_root

from scripts import load_benchmark


def _calibrate():
    return load_benchmark("calibrate")


def test_a_variant_replaces_a_pinned_schedule_for_every_model(monkeypatch):
    monkeypatch.setitem(profiles.PROFILES, "quick", profiles.PROFILES["quick"])  # restored afterwards
    assert profiles.get_profile("quick").pin("mnist-trans", "cnn") is not None
    variant = dataclasses.replace(profiles.get_profile("quick").settings["mnist-trans"], iterations=16 * 234)
    _calibrate().install_variant("quick", "mnist-trans", variant)
    for model in ("cnn", "stn-c0"):
        assert profiles.settings_for("quick", "mnist-trans", model) == variant
    # Other experiments keep their pins.
    assert profiles.get_profile("quick").pin("mnist-rot", "ecnn") is not None


def test_keep_stores_the_record_under_its_tag(roots, tiny, monkeypatch, capsys):
    from stnlib.train import loop

    monkeypatch.setitem(profiles.PROFILES, "smoke", profiles.PROFILES["smoke"])
    monkeypatch.setattr(loop, "figure_summaries", lambda *a, **k: {})
    calibrate = _calibrate()
    assert calibrate.main(["mnist-trans", "cnn", "--epochs", "0.01", "--profile", "smoke", "--device", "cpu",
                           "--keep", "trans_tiny"]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    rec = records.load_record("mnist-trans", "cnn", "smoke", 0, root=calibration_root() / "trans_tiny")
    assert rec is not None and round(100 * rec["metrics"]["test_error"], 3) == line["test_error_pct"]
    assert rec["config"]["settings"]["iterations"] == 75  # 0.01 of an epoch of 7,500 batches of 8
    with pytest.raises(SystemExit):
        calibrate.main(["mnist-trans", "cnn", "--epochs", "1", "--keep", "../out"])
    assert "--keep '../out': a tag is letters, digits, '_' and '-'" in capsys.readouterr().err
