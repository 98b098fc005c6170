"""stnlib.report.calibration: single longer runs read from their own folder, labelled from their config,
and the sentence that says whether they reach the orientation regime (fed runs that do and runs that do not)."""

from __future__ import annotations

import pandas as pd
import pytest

from stnlib import records
from stnlib.report import calibration, display, figures

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


# ---------------------------------------------------------------------------------------
# translated MNIST: the longer runs against the profile's


def _trans(model: str, error_pct: float, *, seed: int = 0, epochs: int | None = None, late: float = 0.0):
    rec = make_record("mnist-trans", model, error_pct, seed=seed, late_drop_pp=late, profile="quick")
    if epochs is not None:
        rec["config"]["settings"]["iterations"] = epochs * 234
        rec["config_hash"] = records.config_hash(rec["config"])
    return rec


def _profile_runs(errors: dict[str, float]):
    return {m: [_trans(m, e + 0.1 * s, seed=s, late=1.5) for s in (0, 1, 2)] for m, e in errors.items()}


def test_the_length_table_puts_seed_0_of_both_lengths_side_by_side():
    short = _profile_runs({"cnn": 2.0, "stn-c0": 3.0})
    table = calibration.length_table(short, {"cnn": _trans("cnn", 1.5, epochs=12, late=0.1),
                                             "stn-c0": _trans("stn-c0", 1.2, epochs=12, late=0.3)})
    assert table.loc["stn-c0", "short_seed0"] == 3.0 and table.loc["stn-c0", "seed0_e12"] == 1.2
    assert abs(table.loc["stn-c0", "short_mean"] - 3.1) < 1e-9 and table.loc["stn-c0", "short_seeds"] == 3
    assert table.loc["cnn", "short_epochs"] == 8 and table.attrs["lengths"] == [12]
    assert abs(table.loc["cnn", "short_fall"] - 1.5) < 1e-9 and abs(table.loc["stn-c0", "fall_e12"] - 0.3) < 1e-9
    view = display.view(table)
    assert list(view.columns.get_level_values(0)) == ["8 epochs"] * 3 + ["12 epochs"] * 2
    assert view.loc["STN-C0", ("8 epochs", "error (%), mean ± sd")] == "3.10 ± 0.10 (3 seeds)"
    assert view.loc["STN-C0", ("12 epochs", "fall over last fifth (pp)")] == "+0.30"


def test_several_lengths_get_a_column_group_each_and_a_missing_run_shows_as_a_dash():
    short = _profile_runs({"cnn": 2.0, "stn-c0": 3.0})
    table = calibration.length_table(short, {
        "cnn": [_trans("cnn", 1.5, epochs=12), _trans("cnn", 1.4, epochs=20)],
        "stn-c0": [_trans("stn-c0", 2.5, epochs=12)]})
    assert table.attrs["lengths"] == [12, 20] and pd.isna(table.loc["stn-c0", "seed0_e20"])
    view = display.view(table)
    assert list(view.columns.get_level_values(0)) == ["8 epochs"] * 3 + ["12 epochs"] * 2 + ["20 epochs"] * 2
    assert view.loc["STN-C0", ("20 epochs", "seed 0 (%)")] == "—" and view.loc["CNN", ("20 epochs", "seed 0 (%)")] == "1.40"
    text = calibration.length_text(table)
    assert text.startswith("Seed 0 trained for 12 and 20 epochs instead of 8: CNN 2.00% → 1.50% → 1.40%; "
                           "STN-C0 3.00% → 2.50%.")
    assert "At 20 epochs only the CNN was trained (STN-C0 was not trained that long);" in text
    assert "Each STN's error minus the CNN's at 8 → 12 → 20 epochs: STN-C0 +1.00 → +1.00 pp (8 → 12 epochs)." in text
    both = calibration.length_table(short, {
        "cnn": [_trans("cnn", 1.5, epochs=12), _trans("cnn", 1.4, epochs=20)],
        "stn-c0": [_trans("stn-c0", 2.5, epochs=12), _trans("stn-c0", 1.3, epochs=20, late=0.7)]})
    text = calibration.length_text(both)
    assert "At 20 epochs every STN here is below the CNN, as in the paper;" in text
    assert "at 8 → 12 → 20 epochs: STN-C0 +1.00 → +1.00 → -0.10 pp. " in text
    assert "at 20 epochs is STN-C0's +0.70 pp (beyond the 0.5 pp" in text
    three = calibration.length_table(short, {"cnn": [_trans("cnn", 1.5, epochs=12), _trans("cnn", 1.4, epochs=20),
                                                     _trans("cnn", 1.3, epochs=30)]})
    assert calibration.length_text(three).startswith("Seed 0 trained for 12, 20 and 30 epochs instead of 8: ")


def test_the_length_sentence_says_whether_the_stns_overtake_the_cnn_and_whether_runs_converged():
    short = _profile_runs({"cnn": 2.0, "stn-c0": 3.0, "stn-sl1": 3.5})
    ahead = calibration.length_table(short, {"cnn": _trans("cnn", 1.5, epochs=12), "stn-c0": _trans(
        "stn-c0", 1.2, epochs=12), "stn-sl1": _trans("stn-sl1", 1.3, epochs=12, late=0.2)})
    text = calibration.length_text(ahead)
    assert text.startswith("Seed 0 trained for 12 epochs instead of 8: CNN 2.00% → 1.50%; STN-C0 3.00% → 1.20%;")
    assert "every STN here is below the CNN, as in the paper" in text
    assert ("the largest fall over the last fifth of training at 12 epochs is STN-SL1's +0.20 pp (within the 0.5 pp "
            "of the convergence check; at 8 epochs CNN's fell +1.50 pp)") in text  # ties: the first
    assert text.endswith("One seed: a trend with training length, not a verdict.")
    behind = calibration.length_table(short, {"cnn": _trans("cnn", 1.5, epochs=12), "stn-c0": _trans(
        "stn-c0", 2.2, epochs=12, late=0.9), "stn-sl1": _trans("stn-sl1", 1.5, epochs=12)})
    text = calibration.length_text(behind)
    assert "At 12 epochs no STN here is below the CNN;" in text  # STN-SL1 ties it: a tie is not "below"
    assert "STN-C0's +0.90 pp (beyond the 0.5 pp" in text
    flat = calibration.length_table(short, {"cnn": _trans("cnn", 1.5, epochs=12, late=-0.1),
                                            "stn-c0": _trans("stn-c0", 1.4, epochs=12, late=-0.2)})
    assert "no learning curve falls over the last fifth of training at 12 epochs (within the 0.5 pp" in (
        calibration.length_text(flat))
    mixed = calibration.length_table(short, {"cnn": _trans("cnn", 1.5, epochs=12), "stn-c0": _trans(
        "stn-c0", 1.4, epochs=12), "stn-sl1": _trans("stn-sl1", 1.6, epochs=12)})
    assert "At 12 epochs STN-C0 is below the CNN and STN-SL1 is not;" in calibration.length_text(mixed)


def test_the_length_table_and_sentence_refuse_what_they_cannot_compare(tmp_path):
    short = _profile_runs({"cnn": 2.0})
    with pytest.raises(ValueError, match="no seed-0 record of 'stn-c0' among the profile's runs; models there: cnn"):
        calibration.length_table(short, {"stn-c0": _trans("stn-c0", 1.2, epochs=12)})
    no_cnn = calibration.length_table({"stn-c0": [_trans("stn-c0", 3.0)]}, {"stn-c0": _trans("stn-c0", 1.2, epochs=12)})
    with pytest.raises(ValueError, match="no CNN row to compare with; rows: stn-c0"):
        calibration.length_text(no_cnn)
    assert calibration.length_text(no_cnn.iloc[0:0]) == ("No longer calibration runs of translated MNIST are stored "
                                                         "with these records.")
    assert calibration.translation_runs(tmp_path) == {}
    records.write_record(_trans("cnn", 1.5, epochs=20), calibration.calibration_root(tmp_path) / "trans_e20")
    records.write_record(_trans("cnn", 1.6, epochs=12), calibration.calibration_root(tmp_path) / "trans_e12")
    runs = calibration.translation_runs(tmp_path)
    assert list(runs) == ["cnn"] and [calibration.epochs(r) for r in runs["cnn"]] == [12, 20]
    only_cnn_short = calibration.length_table({"cnn": [_trans("cnn", 2.0)], "stn-c0": [_trans("stn-c0", 3.0)]},
                                              {"stn-c0": _trans("stn-c0", 1.2, epochs=12), "cnn": []})
    with pytest.raises(ValueError, match="no longer run of the CNN"):
        calibration.length_text(only_cnn_short)


def test_several_seeds_at_a_length_give_a_mean_and_a_gap_judged_against_their_spread(tmp_path):
    short = _profile_runs({"cnn": 2.0, "stn-c0": 3.0, "stn-sl1": 3.5})
    longer = {"cnn": [_trans("cnn", 1.5, epochs=20), _trans("cnn", 1.4, epochs=30),
                      _trans("cnn", 1.6, epochs=30, seed=1)],
              "stn-c0": [_trans("stn-c0", 2.0, epochs=20), _trans("stn-c0", 1.6, epochs=30),
                         _trans("stn-c0", 1.8, epochs=30, seed=1)],
              "stn-sl1": [_trans("stn-sl1", 2.2, epochs=20), _trans("stn-sl1", 1.9, epochs=30)]}
    table = calibration.length_table(short, longer)
    assert table.loc["cnn", "mean_e30"] == pytest.approx(1.5) and table.loc["cnn", "seeds_e30"] == 2
    assert table.loc["stn-sl1", "seeds_e30"] == 1 and pd.isna(table.loc["stn-sl1", "sd_e30"])
    assert calibration.seeded_lengths(table) == [30]
    view = display.view(table)
    assert ("20 epochs", "error (%), mean ± sd") not in view.columns  # one seed there: seed 0 says it all
    assert view.loc["CNN", ("30 epochs", "error (%), mean ± sd")] == "1.50 ± 0.14 (2 seeds)"
    assert view.loc["STN-SL1", ("30 epochs", "error (%), mean ± sd")] == "1.90 (1 seed)"
    text = calibration.length_text(table)
    assert ("Over the seeds trained for 30 epochs: CNN 1.50 ± 0.14% (2 seeds), STN-C0 1.70 ± 0.14% (2 seeds); "
            "the mean gap to the CNN: STN-C0 +0.20 pp (beyond the larger standard deviation over seeds, 0.14 pp). ") in text
    assert text.endswith("At most 2 seeds: a trend with training length, not a verdict.")
    close = dict(longer, **{"stn-c0": [_trans("stn-c0", 1.45, epochs=30), _trans("stn-c0", 1.65, epochs=30, seed=1)]})
    assert "STN-C0 +0.05 pp (within the larger standard deviation over seeds, 0.14 pp)" in calibration.length_text(
        calibration.length_table(short, close))
    only_cnn = dict(longer, **{"stn-c0": longer["stn-c0"][:2]})
    text = calibration.length_text(calibration.length_table(short, only_cnn))
    assert "Over the seeds" not in text and "At most 2 seeds" in text  # no STN with seeds to compare with

    root = calibration.calibration_root(tmp_path)
    records.write_record(_trans("cnn", 1.6, epochs=30, seed=1), root / "trans_e30")
    records.write_record(_trans("cnn", 1.4, epochs=30), root / "trans_e30")
    records.write_record(_trans("cnn", 1.5, epochs=20), root / "trans_e20")
    runs = calibration.translation_runs(tmp_path)
    assert [(calibration.epochs(r), r["seed"]) for r in runs["cnn"]] == [(20, 0), (30, 0), (30, 1)]


def test_a_length_with_no_seed_0_shows_dashes_for_seed_0():
    short = _profile_runs({"cnn": 2.0})
    table = calibration.length_table(short, {"cnn": [_trans("cnn", 1.5, epochs=12, seed=1),
                                                     _trans("cnn", 1.7, epochs=12, seed=2)]})
    view = display.view(table)
    assert view.loc["CNN", ("12 epochs", "seed 0 (%)")] == "—"
    assert view.loc["CNN", ("12 epochs", "error (%), mean ± sd")] == "1.60 ± 0.14 (2 seeds)"
