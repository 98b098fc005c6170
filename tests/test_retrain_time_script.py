"""benchmarks/retrain_time.py: which runs it times, what one measurement holds, and how the per-run estimates
and the wall clock of a whole retrain follow from the measured rates."""

from __future__ import annotations

import pytest

from stnlib import paths, runs
from stnlib.profiles import settings_for

from scripts import load_benchmark


def _script():
    return load_benchmark("retrain_time")


def test_it_times_every_model_the_chapters_train_once_in_submission_order():
    pairs = _script().pairs("quick")
    assert len(pairs) == len(set(pairs)) == 7 + 5 + 3 + 11
    assert pairs[0] == ("mnist-rot", "cnn") and pairs[-2:] == [("mnist-rot", "ecnn"), ("mnist-rot", "stn-ec1")]
    assert ("mnist-rot-adam", "stn-sl1") in pairs and ("svhn", "stn-dl8") in pairs
    assert _script().pairs("quick", ["mnist-trans"]) == [
        ("mnist-trans", m) for m in ("cnn", "stn-c0", "stn-c1", "stn-sl1", "stn-dl1")]


def test_a_measurement_is_a_probe_of_the_runs_own_settings(tiny):
    line = _script().measure("mnist-rot", "stn-c0", "smoke", 0.0)
    assert line["steps"] == 3 and line["train_images_per_s"] > 0 and line["profile"] == "smoke"
    assert line["settings_hash"] == runs.settings_hash(runs.RunSpec("mnist-rot", "stn-c0", "smoke", 0))
    assert line["precision"] == "fp32" and line["cpu_capability"] and line["device"].startswith("cpu: ")


def test_report_scales_each_rate_to_its_runs_and_packs_them_two_at_a_time(tmp_path):
    script = _script()
    s_cnn, s_c0 = settings_for("quick", "mnist-rot", "cnn"), settings_for("quick", "mnist-rot", "stn-c0")
    cpu = {"device": "cpu: Test (2 cores, 1 threads, AVX2)", "threads": 1, "precision": "fp32",
           "cpu_capability": "AVX2 (no bf16 instructions; bf16 emulated)"}
    # Rates that make one CNN run exactly 10 minutes and one STN-C0 run 20 (no records: no evaluation share).
    lines = [{**cpu, "experiment": "mnist-rot", "model": "cnn",
              "train_images_per_s": s_cnn.iterations * s_cnn.batch_size / 600},
             {**cpu, "experiment": "mnist-rot", "model": "stn-c0",
              "train_images_per_s": s_c0.iterations * s_c0.batch_size / 1200}]
    out = script.report(lines, "quick", 2, records_root=tmp_path)
    assert out[0] == ("CPU: cpu: Test (2 cores, 1 threads, AVX2); AVX2 (no bf16 instructions; bf16 emulated); "
                      "1 thread(s) per run")
    rows = {line.split()[1]: line.split() for line in out[2:4]}
    assert rows["cnn"][4] == "10.0" and rows["stn-c0"][4] == "20.0"
    assert rows["cnn"][5] == "—"  # no record on this kind of CPU: no baseline to compare with
    # Three seeds each, submitted CNN ×3 then STN-C0 ×3: slots end at 10+10+20 and 10+20+20 minutes.
    assert out[-1] == "whole retrain: 6 runs, 1 h 30 min in sum, about 50 min 00 s of wall clock with 2 at a time"
    assert out[-2] == "per experiment (all seeds, sum of runs): mnist-rot 1 h 30 min"
    # Twice as fast, half the time.
    faster = [{**m, "train_images_per_s": 2 * m["train_images_per_s"]} for m in lines]
    assert script.report(faster, "quick", 2, records_root=tmp_path)[-1].startswith(
        "whole retrain: 6 runs, 45 min 00 s in sum, about 25 min 00 s")


def test_jobs_must_be_positive(capsys):
    with pytest.raises(SystemExit):
        _script().main(["--jobs", "0", "--child"])
    assert "--jobs must be at least 1, not 0" in capsys.readouterr().err


@pytest.mark.skipif(paths.checkout_root() is None, reason="needs the committed records of a clone")
def test_the_other_pass_is_scaled_to_the_records_by_its_ratio_to_this_cpu_in_the_same_run():
    script = _script()
    native = {"device": "cpu: Intel(R) Xeon(R) Processor (2 cores, 1 threads, AVX512)", "threads": 1,
              "cpu_capability": "AVX512 (avx512_bf16+amx_bf16; bf16 native)", "precision": "bf16 autocast (auto)"}
    avx2 = {**native, "cpu_capability": "AVX2 (avx512_bf16+amx_bf16; bf16 emulated)", "precision": "fp32 (auto)"}
    pairs = [("mnist-rot", "cnn"), ("mnist-rot", "stn-c0")]
    fast = [{**native, "experiment": e, "model": m, "train_images_per_s": 2000.0} for e, m in pairs]
    slow = [{**avx2, "experiment": e, "model": m, "train_images_per_s": 500.0} for e, m in pairs]
    [cnn, c0] = runs.estimate_seconds([runs.RunSpec(e, m, "quick", 0) for e, m in pairs], native["device"],
                                      cpu_capability=native["cpu_capability"])
    text = script.scaled_to_records(fast, slow, "quick", 2)
    assert text.startswith("AVX2 (avx512_bf16+amx_bf16; bf16 emulated): 4.00× this CPU's step times")
    from stnlib.report.display import format_duration

    assert f"would take {format_duration(4 * 3 * (cnn.seconds + c0.seconds))} in sum" in text
    assert f"(the records: {format_duration(3 * (cnn.seconds + c0.seconds))}," in text
