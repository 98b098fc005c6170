import math

import pandas as pd
import pytest
import torch

from stnlib import paper, transforms
from stnlib.report import display, tables


def orient(slope, abs_r, dev, kind="rotation", x=None, y=None):
    o = {"kind": kind, "slope": slope, "intercept": 0.0, "r": -abs_r, "abs_r": abs_r,
         "pooled_class_deviation": dev}
    if kind == "translation":
        o["x"], o["y"] = x, y
    return o


def rec(model, seed, error, *, experiment="mnist-rot", profile="quick", status="complete",
        orientation=None, curves=None, misalignment=None, settings=None):
    metrics = {"test_error": error}
    if orientation is not None:
        metrics["orientation"] = orientation
    summaries = {}
    if misalignment is not None:
        summaries["misalignment"] = misalignment
    return {
        "experiment": experiment, "model": model, "profile": profile, "seed": seed,
        "status": status, "metrics": metrics if status == "complete" else {"error_message": "nan"},
        "curves": curves or {"iteration": [0, 100], "epoch": [0.0, 2.0], "test_error": [0.9, 0.1],
                             "orientation": [None, None]},
        "summaries": summaries,
        "config": {"settings": settings or {"optimizer": "sgd", "lr": 0.01, "momentum": 0.9,
                                            "iterations": 100, "batch_size": 64,
                                            "lr_milestones": [50, 80]}},
    }


# --------------------------------------------------------------------------- table1


def test_table1_means_stds_and_paper_differences():
    rot = {"cnn": [rec("cnn", 0, 0.02), rec("cnn", 1, 0.03)],
           "stn-c1": [rec("stn-c1", 0, 0.015)],
           "stn-dl1": [rec("stn-dl1", 0, 0.01)]}
    trans = {"cnn": [rec("cnn", 0, 0.018, experiment="mnist-trans")]}
    t = tables.table1({"mnist-rot": rot, "mnist-trans": trans})
    assert list(t.index) == ["cnn", "stn-c1", "stn-dl1"]
    r = t["mnist-rot"]
    assert r.loc["cnn", "ours"] == pytest.approx(2.5)
    assert r.loc["cnn", "std"] == pytest.approx(math.sqrt(0.5))  # sample std of 2 and 3
    assert r.loc["cnn", "seeds"] == 2
    assert r.loc["cnn", "paper"] == paper.TABLE1_ERROR_PERCENT["mnist-rot"]["cnn"]
    assert r.loc["cnn", "diff"] == pytest.approx(2.5 - 1.71)
    assert math.isnan(r.loc["stn-c1", "std"])  # one seed: no std
    assert r.loc["stn-c1", "diff"] == pytest.approx(1.5 - 1.32)
    assert math.isnan(r.loc["stn-dl1", "paper"])  # DL1 is not in the paper's Table 1
    tr = t["mnist-trans"]
    assert tr.loc["cnn", "ours"] == pytest.approx(1.8)
    assert tr.loc["stn-c1", "seeds"] == 0 and math.isnan(tr.loc["stn-c1", "ours"])
    assert t.attrs["profile"] == "quick" and t.attrs["table"] == "table1"


def test_table1_leaves_out_failed_runs():
    rot = {"stn-c0": [rec("stn-c0", 0, 0.01), rec("stn-c0", 1, None, status="failed")]}
    t = tables.table1({"mnist-rot": rot})
    assert t.loc["stn-c0", ("mnist-rot", "seeds")] == 1
    assert t.loc["stn-c0", ("mnist-rot", "ours")] == pytest.approx(1.0)


def test_table1_rejects_a_flat_record_dict():
    with pytest.raises(ValueError, match="experiment"):
        tables.table1({})
    with pytest.raises(ValueError, match="model: \\[records\\]"):
        tables.table1({"mnist-rot": [rec("cnn", 0, 0.01)]})


def test_table1_view_formats_mean_std_and_signed_difference():
    rot = {"cnn": [rec("cnn", 0, 0.02), rec("cnn", 1, 0.03)], "stn-sl1": [rec("stn-sl1", 0, 0.009)]}
    v = display.view(tables.table1({"mnist-rot": rot}))
    assert list(v.index) == ["CNN", "STN-SL1"]
    assert v.loc["CNN", ("Rotation", "ours (%)")] == "2.50 ± 0.71"
    assert v.loc["STN-SL1", ("Rotation", "ours (%)")] == "0.90"
    assert v.loc["STN-SL1", ("Rotation", "ours − paper")] == "-0.08"
    assert v.loc["CNN", ("Rotation", "ours − paper")] == "+0.79"
    assert v.loc["CNN", ("Rotation", "seeds")] == "2"


def test_render_is_deterministic_html_with_caption():
    rot = {"cnn": [rec("cnn", 0, 0.02)]}
    a = display.render(tables.table1({"mnist-rot": rot}), caption="Table 1").to_html()
    b = display.render(tables.table1({"mnist-rot": rot}), caption="Table 1").to_html()
    assert a == b
    assert "<caption>Table 1</caption>" in a and "2.00" in a and "1.71" in a


def test_paper_table1_is_the_published_table():
    v = display.view(tables.paper_table1())
    assert v.loc["STN-SL1", "Rotation"] == "0.98%"
    assert v.loc["STN-C1", "Translation"] == "1.15%"


# --------------------------------------------------------------------------- table2


def test_table2_depth_rows_share_c0_at_x0():
    recs = {"stn-c0": [rec("stn-c0", 0, 0.04, experiment="svhn")],
            "stn-c3": [rec("stn-c3", 0, 0.05, experiment="svhn"), rec("stn-c3", 1, 0.07, experiment="svhn")],
            "stn-sl3": [rec("stn-sl3", 0, 0.03, experiment="svhn")],
            "stn-dl8": [rec("stn-dl8", 0, 0.06, experiment="svhn")]}
    t = tables.table2(recs)
    assert list(t.index) == [0, 3, 6, 8]
    for fam in ("CX", "SLX", "DLX"):
        assert t.loc[0, (fam, "ours")] == pytest.approx(4.0)
    assert t.loc[0, ("SLX", "paper")] == 3.81 and t.loc[0, ("DLX", "paper")] == 3.81  # same model
    assert math.isnan(t.loc[3, ("DLX", "paper")])  # the paper has no DLX column
    assert t.loc[3, ("CX", "ours")] == pytest.approx(6.0)
    assert t.loc[3, ("CX", "std")] == pytest.approx(math.sqrt(2.0))
    assert t.loc[3, ("SLX", "diff")] == pytest.approx(3.0 - 3.54)
    assert t.loc[8, ("DLX", "ours")] == pytest.approx(6.0)
    assert t.loc[6, ("CX", "seeds")] == 0
    v = display.view(t)
    assert v.loc["X = 3", ("STN-CX", "ours (%)")] == "6.00 ± 1.41"


# --------------------------------------------------------------------------- orientation


def test_orientation_table_rotation_means_over_seeds_and_skips_cnn():
    recs = {"cnn": [rec("cnn", 0, 0.02)],
            "stn-c1": [rec("stn-c1", 0, 0.01, orientation=orient(-0.1, 0.2, 50.0)),
                       rec("stn-c1", 1, 0.01, orientation=orient(-0.3, 0.4, 40.0))],
            "stn-sl1": [rec("stn-sl1", 0, 0.01, orientation=orient(-0.9, 0.8, 10.0))]}
    t = tables.orientation_table(recs)
    assert list(t.index) == ["stn-c1", "stn-sl1"]
    assert t.loc["stn-c1", "slope"] == pytest.approx(-0.2)
    assert t.loc["stn-c1", "abs_r"] == pytest.approx(0.3)
    assert t.loc["stn-c1", "pooled_class_deviation"] == pytest.approx(45.0)
    assert t.loc["stn-c1", "seeds"] == 2
    assert t.attrs["kind"] == "rotation" and t.attrs["units"] == "deg"
    v = display.view(t)
    assert v.loc["STN-SL1", "|r|"] == "0.80" and v.loc["STN-C1", "pooled dev. (°)"] == "45.0"


def test_orientation_table_translation_has_per_axis_columns():
    ax = orient(-1.0, 0.9, 2.0)
    ay = orient(-0.8, 0.7, 4.0)
    o = orient(-0.9, 0.8, 3.0, kind="translation", x=ax, y=ay)
    t = tables.orientation_table({"stn-c1": [rec("stn-c1", 0, 0.01, experiment="mnist-trans",
                                                 orientation=o)]})
    assert t.loc["stn-c1", "abs_r"] == pytest.approx(0.8)
    assert t.loc["stn-c1", "slope_x"] == pytest.approx(-1.0)
    assert t.loc["stn-c1", "pooled_class_deviation_y"] == pytest.approx(4.0)
    assert t.attrs["units"] == "px"
    v = display.view(t)
    assert v.loc["STN-C1", ("y", "|r|")] == "0.70"
    assert v.loc["STN-C1", ("x and y (mean)", "pooled dev. (px)")] == "3.0"


def test_orientation_table_refuses_mixed_kinds():
    o_t = orient(-1, 1, 0, kind="translation", x=orient(-1, 1, 0), y=orient(-1, 1, 0))
    recs = {"a": [rec("a", 0, 0.1, orientation=orient(-1, 1, 0))],
            "b": [rec("b", 0, 0.1, orientation=o_t)]}
    with pytest.raises(ValueError, match="one experiment"):
        tables.orientation_table(recs)


def curves(points):
    """points: [(epoch, abs_r, dev)] -> a curves dict with iteration = 10 × epoch."""
    return {"iteration": [int(10 * e) for e, _, _ in points], "epoch": [e for e, _, _ in points],
            "test_error": [0.5] * len(points),
            "orientation": [{"slope": -a, "abs_r": a, "r": -a, "pooled_class_deviation": d}
                            for _, a, d in points]}


def test_orientation_over_training_long_form_and_trend():
    recs = {
        "cnn": [rec("cnn", 0, 0.02)],
        "stn-sl1": [rec("stn-sl1", 0, 0.01, curves=curves([(0, 0.0, 50.0), (1, 0.6, 20.0), (2, 0.8, 10.0)])),
                    rec("stn-sl1", 1, 0.01, curves=curves([(0, 0.0, 50.0), (1, 0.4, 30.0), (2, 0.6, 12.0)]))],
        "stn-c1": [rec("stn-c1", 0, 0.01, curves=curves([(0, 0.0, 50.0), (1, 0.5, 40.0), (2, 0.1, 49.0)]))],
    }
    long = tables.orientation_over_training(recs)
    assert list(long.columns) == ["model", "seed", "iteration", "epoch", "test_error", "slope",
                                  "abs_r", "pooled_class_deviation"]
    assert len(long) == 9 and set(long["model"]) == {"stn-sl1", "stn-c1"}
    assert long.loc[(long.model == "stn-sl1") & (long.seed == 1) & (long.epoch == 1), "abs_r"].item() == 0.4
    assert long["test_error"].iloc[0] == pytest.approx(50.0)
    tr = tables.orientation_trend(long)
    assert list(tr.index) == ["stn-sl1", "stn-c1"]  # order of appearance
    assert tr.loc["stn-sl1", "abs_r_end"] == pytest.approx(0.7)
    assert tr.loc["stn-sl1", "deviation_end"] == pytest.approx(11.0)
    assert tr.loc["stn-c1", "abs_r_peak"] == pytest.approx(0.5)
    assert tr.loc["stn-c1", "abs_r_peak_epoch"] == 1.0
    assert tr.loc["stn-c1", "abs_r_end"] == pytest.approx(0.1)
    assert tr.loc["stn-c1", "deviation_min"] == pytest.approx(40.0)
    assert tr.loc["stn-c1", "last_epoch"] == 2.0


def test_orientation_trend_groups_by_extra_key_columns():
    a = tables.orientation_over_training(
        {"stn-c1": [rec("stn-c1", 0, 0.01, curves=curves([(0, 0.0, 50.0), (1, 0.2, 45.0)]))]})
    b = tables.orientation_over_training(
        {"stn-c1": [rec("stn-c1", 0, 0.01, curves=curves([(0, 0.0, 50.0), (1, 0.7, 15.0)]))]})
    both = pd.concat([a.assign(optimizer="SGD"), b.assign(optimizer="Adam")], ignore_index=True)
    tr = tables.orientation_trend(both)
    assert tr.index.names == ["model", "optimizer"]
    assert tr.loc[("stn-c1", "Adam"), "abs_r_end"] == pytest.approx(0.7)
    assert tr.loc[("stn-c1", "SGD"), "deviation_end"] == pytest.approx(45.0)


def test_optimizer_table():
    sgd = {"stn-c1": [rec("stn-c1", 0, 0.015, orientation=orient(-0.05, 0.2, 50.0))],
           "stn-sl1": [rec("stn-sl1", 0, 0.014, orientation=orient(-0.8, 0.6, 20.0))],
           "cnn": [rec("cnn", 0, 0.02)]}
    adam = {"stn-c1": [rec("stn-c1", 0, 0.018, orientation=orient(-0.7, 0.7, 25.0))],
            "stn-sl1": [rec("stn-sl1", 0, 0.015, orientation=orient(-0.9, 0.7, 18.0))]}
    t = tables.optimizer_table({"SGD": sgd, "Adam": adam})
    assert list(t.index) == [("stn-c1", "SGD"), ("stn-c1", "Adam"), ("stn-sl1", "SGD"), ("stn-sl1", "Adam")]
    assert t.loc[("stn-c1", "Adam"), "abs_r"] == pytest.approx(0.7)
    assert t.loc[("stn-c1", "SGD"), "error"] == pytest.approx(1.5)
    assert t.loc[("stn-sl1", "Adam"), "epochs"] == 2.0
    with pytest.raises(ValueError, match="missing under 'Adam'"):
        tables.optimizer_table({"SGD": sgd, "Adam": adam}, models=["cnn"])


# --------------------------------------------------------------------------- misalignment


def mis_rot(fm, st=None):
    out = {"kind": "rotation", "angle_deg": [-90, -45, 0, 45, 90], "feature_maps": fm}
    if st is not None:
        out["after_st"] = st
    return out


def test_misalignment_table_averages_both_signs_and_seeds():
    recs = {
        "cnn": [rec("cnn", 0, 0.02, misalignment=mis_rot([0.9, 0.6, 0.0, 0.8, 1.0]))],
        "stn-c1": [rec("stn-c1", 0, 0.01, misalignment=mis_rot([0.9, 0.6, 0.0, 0.8, 1.0],
                                                              [0.5, 0.3, 0.0, 0.5, 0.7])),
                   rec("stn-c1", 1, 0.01, misalignment=mis_rot([0.7, 0.4, 0.0, 0.6, 0.8],
                                                              [0.3, 0.1, 0.0, 0.3, 0.5]))],
    }
    t = tables.misalignment_table(recs, at=(45, 90))
    assert t.loc["cnn", ("feature_maps", 45)] == pytest.approx(0.7)
    assert t.loc["cnn", ("feature_maps", 90)] == pytest.approx(0.95)
    assert math.isnan(t.loc["cnn", ("after_st", 90)])
    assert t.loc["stn-c1", ("feature_maps", 45)] == pytest.approx((0.7 + 0.5) / 2)
    assert t.loc["stn-c1", ("after_st", 90)] == pytest.approx((0.6 + 0.4) / 2)
    assert t.attrs["kind"] == "rotation"
    v = display.view(t)
    assert v.loc["STN-C1", ("ST outputs", "±90°")] == "0.50"
    with pytest.raises(ValueError, match="no point at ±30"):
        tables.misalignment_table(recs, at=(30,))


def test_misalignment_table_translation_defaults():
    m = {"kind": "translation", "shift_px": [-16, -8, -4, 0, 4, 8, 16],
         "feature_maps": [0.02, 0.01, 0.0, 0.0, 0.0, 0.01, 0.04], "after_st": [0.3] * 7}
    t = tables.misalignment_table({"stn-sl1": [rec("stn-sl1", 0, 0.01, misalignment=m)]})
    assert [a for _, a in t.columns[:3]] == list(tables.MISALIGNMENT_AT["translation"])
    assert t.loc["stn-sl1", ("feature_maps", 16)] == pytest.approx(0.03)
    assert t.attrs["units"] == "px"


# --------------------------------------------------------------------------- setup tables


def test_settings_table_reads_the_records_and_the_paper_protocol():
    rot = {"cnn": [rec("cnn", 0, 0.02)], "stn-c1": [rec("stn-c1", 0, 0.02)]}
    t = tables.settings_table({"mnist-rot": rot})
    assert t.loc["momentum", "mnist-rot"] == "0.9"
    assert t.loc["lr divided after iterations", "mnist-rot"] == "50, 80"
    assert t.loc["epochs", "mnist-rot"] == "2"
    assert t.loc["momentum", "paper protocol"] == "0.0"
    assert t.loc["iterations", "paper protocol"] == "150000"
    assert t.loc["epochs", "paper protocol"] == "640"
    assert t.loc["seeds", "paper protocol"] == "0, 1, 2"
    bad = {"cnn": [rec("cnn", 0, 0.02)],
           "stn-c1": [rec("stn-c1", 0, 0.02, settings={"optimizer": "adam"})]}
    with pytest.raises(ValueError, match="disagree on 'optimizer'"):
        tables.settings_table({"mnist-rot": bad})


def test_settings_table_svhn_rows_and_epochs():
    """SVHN: epochs over its own training-set size, plus width and dropout rows (0.5 when unset)."""
    settings = {"optimizer": "adam", "lr": 3e-4, "momentum": 0.0, "iterations": 4000, "batch_size": 32,
                "lr_milestones": [3400], "width": 0.25, "dropout": 0.0, "svhn_n_train": 40_000}
    recs = {"cnn": [rec("cnn", 0, 0.6, experiment="svhn", settings=settings)]}
    t = tables.settings_table({"svhn": recs}, reference=("full", "svhn"))
    assert t.loc["network width", "svhn"] == "×0.25" and t.loc["dropout", "svhn"] == "0.0"
    assert t.loc["network width", "paper protocol"] == "×1" and t.loc["dropout", "paper protocol"] == "0.5"
    assert t.loc["epochs", "paper protocol"] == "162.9"  # 150k × 256 / 235,755 (train + extra)
    assert "dropout" not in tables.settings_table({"mnist-rot": {"cnn": [rec("cnn", 0, 0.02)]}}).index


def test_design_table_reads_the_code():
    t = tables.design_table()
    assert t.loc["localisation head", "Rotation"] == "CNNm"
    assert t.loc["localisation head", "Translation"] == "CNNt"
    assert t.loc["ST padding", "Translation"] == "border"
    assert t.loc["parameters, cnn", "Rotation"] == "208,586"  # book/protocol.md, Networks
    assert t.loc["ST output of C0, SL1, DL1 / of C1", "Translation"] == "1×30×30 / 64×13×13"  # book/protocol.md, Networks
    assert t.loc["ST output of C0, SL1, DL1 / of C1", "Rotation"] == "1×28×28 / 64×10×10"


def test_fmt_mean_std():
    assert display.fmt_mean_std(1.234, 0.05) == "1.23 ± 0.05"
    assert display.fmt_mean_std(1.234) == "1.23"
    assert display.fmt_mean_std(float("nan"), 0.1) == "—"
    assert display.fmt_mean_std(0.5, digits=1, sign=True) == "+0.5"
    assert display.fmt_mean_std(-0.2, digits=0, sign=True) == "0"  # no "-0"


def examples_summary(info, thetas, shape):
    return {"labels": [3, 8], "inputs": [{"shape": shape}] * 2, "info": info, "theta": thetas}


def test_examples_table_reads_theta_as_the_records_do():
    a = torch.tensor([30.0, -60.0])
    undo = transforms.rotation_theta(-a).tolist()  # a perfect canonicaliser
    same = transforms.rotation_theta(torch.zeros(2)).tolist()
    info = {"angle_deg": a.tolist()}
    recs = {"cnn": [{**rec("cnn", 0, 0.1), "summaries": {"examples": {
                "labels": [3, 8], "inputs": [{"shape": [1, 28, 28]}] * 2, "info": info}}}],
            "stn-sl1": [{**rec("stn-sl1", 0, 0.1), "summaries": {
                "examples": examples_summary(info, undo, [1, 28, 28])}}],
            "stn-c1": [{**rec("stn-c1", 0, 0.1), "summaries": {
                "examples": examples_summary(info, same, [1, 28, 28])}}]}
    t = tables.examples_table(recs)
    assert list(t[("label", "")]) == [3, 8]
    assert t[("stn-sl1", "angle")].tolist() == pytest.approx([-30.0, 60.0], abs=1e-4)
    assert t[("stn-c1", "angle")].tolist() == pytest.approx([0.0, 0.0], abs=1e-9)
    assert ("cnn", "angle") not in t.columns
    v = display.view(t)
    assert v.loc["example 2", "STN-SL1 (°)"] == "+60"
    assert v.loc["example 1", "applied (°)"] == "+30"


def test_examples_table_translation_in_input_pixels():
    d = torch.tensor([[4.0, -6.0], [-10.0, 2.0]])
    theta = transforms.translation_theta(-d, (60, 60)).tolist()
    recs = {"stn-c0": [{**rec("stn-c0", 0, 0.1, experiment="mnist-trans"), "summaries": {
        "examples": examples_summary({"shift_px": d.tolist()}, theta, [1, 60, 60])}}]}
    t = tables.examples_table(recs)
    assert t[("applied", "dy")].tolist() == [-6.0, 2.0]
    assert t[("stn-c0", "dx")].tolist() == pytest.approx([-4.0, 10.0], abs=1e-5)
    assert t.attrs["kind"] == "translation"
    assert display.view(t).loc["example 2", "STN-C0 (dx, dy) px"] == "(+10.0, -2.0)"
