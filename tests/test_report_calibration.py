"""stnlib.report.calibration: single longer runs read from their own folder, labelled from their config,
and the sentence that says whether they reach the orientation regime (fed runs that do and runs that do not)."""

from __future__ import annotations

from stnlib import records
from stnlib.report import calibration, figures

from planted import make_record


def _run(root, tag: str, *, epochs: int, loc: float, slopes: list[float], abs_r: float = 0.7):
    rec = make_record("mnist-rot", "stn-c0", 1.2, slope=slopes[-1], abs_r=abs_r, profile="quick")
    s = rec["config"]["settings"]
    per_epoch = 60_000 // s["batch_size"]
    s.update(iterations=epochs * per_epoch, loc_lr_multiplier=loc)
    rec["config_hash"] = records.config_hash(rec["config"])
    n = len(slopes)
    rec["curves"] = {"epoch": [epochs * i / (n - 1) for i in range(n)], "iteration": list(range(n)),
                     "test_error": [0.9] * n, "orientation": [{"slope": v, "abs_r": abs_r} for v in slopes]}
    records.write_record(rec, calibration.calibration_root(root) / tag)
    return rec


def test_runs_are_found_labelled_and_judged_against_the_threshold(tmp_path, monkeypatch):
    monkeypatch.setattr(calibration, "ROTATION_RUNS", (("long", "mnist-rot", "stn-c0", "quick"),
                                                       ("fast", "mnist-rot", "stn-c0", "quick")))
    assert calibration.rotation_runs(tmp_path) == {}
    assert calibration.summary_text({}, -0.6) == "No calibration runs are stored with these records."
    _run(tmp_path, "long", epochs=30, loc=1.0, slopes=[0, -0.1, -0.2, -0.25, -0.26, -0.27])
    _run(tmp_path, "fast", epochs=20, loc=10.0, slopes=[0, 0, 0, 0], abs_r=0.0)
    runs = calibration.rotation_runs(tmp_path)
    assert list(runs) == ["30 epochs, loc. lr ×1", "20 epochs, loc. lr ×10"]
    assert calibration.longest_slope(runs) == ("30 epochs, loc. lr ×1", 30.0, -0.27)
    text = calibration.summary_text(runs, -0.6)
    assert "slope -0.27, |r| 0.70, test error 1.20% (stays short of the -0.6" in text
    assert "(has collapsed: its transform no longer depends on the digit)" in text
    assert "ends at -0.27 and changes by only -0.01 over its last third" in text
    fig = figures.slope_with_length("stn-c0", [], runs, canonical_slope=-0.6)
    assert fig.get_figwidth() <= figures.COLUMN_IN and figures.smallest_font_pt(fig) >= figures.MIN_FONT_PT


def test_a_run_that_canonicalises_is_called_so(tmp_path, monkeypatch):
    monkeypatch.setattr(calibration, "ROTATION_RUNS", (("long", "mnist-rot", "stn-c0", "quick"),))
    _run(tmp_path, "long", epochs=60, loc=1.0, slopes=[0, -0.3, -0.6, -0.8, -0.9])
    text = calibration.summary_text(calibration.rotation_runs(tmp_path), -0.6)
    assert "slope -0.90" in text and "(canonicalises)" in text and "does not reach" not in text


def test_the_committed_runs_load():
    runs = calibration.rotation_runs()
    assert len(runs) == len(calibration.ROTATION_RUNS)
    for rec in runs.values():
        assert rec["experiment"] == "mnist-rot" and rec["model"] == "stn-c0"
        assert rec["provenance"]["wall_time_s"] > 0 and len(rec["curves"]["orientation"]) > 10
