"""Runs: the cost estimate (records, then GPU probes, then unknown) and the out-of-memory message."""

import json

import pytest
import torch

from stnlib import paths, records, runs, train
from stnlib.profiles import settings_for
from stnlib.runs import RunSpec

QUICK_CNN = RunSpec("mnist-rot", "cnn", "quick", 0)
FULL_CNN = RunSpec("mnist-rot", "cnn", "full", 0)


@pytest.mark.parametrize("name, kind", [
    ("cuda: NVIDIA H200", "cuda: NVIDIA H200"),
    ("cpu: AMD EPYC (2 cores, 2 threads)", "cpu, 2 cores"),
    ("cpu: Intel(R) Xeon(R) Processor (2 cores, 2 threads, AVX512)", "cpu, 2 cores"),
    ("cpu: Apple M2", "cpu"),
])
def test_device_kind(name, kind):
    assert runs.device_kind(name) == kind


def _record_on(root, spec, device, wall, seed=0):
    """A committed quick record copied under ``root`` as if made on ``device`` in ``wall`` seconds."""
    src = paths.checkout_root() / "book" / "records" / spec.profile / spec.experiment / f"{spec.model}-seed0.json"
    rec = json.loads(src.read_text())
    rec["seed"] = rec["config"]["seed"] = seed
    rec["config_hash"] = records.config_hash(rec["config"])
    rec["provenance"].update(device=device, wall_time_s=wall)
    path = records.record_path(spec.experiment, spec.model, spec.profile, seed, root)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rec))


@pytest.mark.skipif(paths.checkout_root() is None, reason="needs the committed records of a clone")
def test_estimate_takes_the_median_of_records_on_the_same_kind_of_device(tmp_path):
    for seed, wall in enumerate((60.0, 80.0, 400.0)):
        _record_on(tmp_path, QUICK_CNN, "cpu: AMD EPYC (2 cores, 2 threads)", wall, seed)
    [est] = runs.estimate_seconds([QUICK_CNN], "cpu: Other (2 cores, 2 threads)", root=tmp_path,
                                  results_root=tmp_path / "no-probes")
    assert est.seconds == 80.0 and est.source == "3 record(s) on cpu: AMD EPYC (2 cores, 2 threads)"
    [other] = runs.estimate_seconds([QUICK_CNN], "cpu: Big (64 cores, 128 threads)", root=tmp_path,
                                    results_root=tmp_path / "no-probes")
    assert other.seconds is None and other.reference == (80.0, "cpu: AMD EPYC (2 cores, 2 threads)", "3 record(s)")


def test_estimate_scales_a_gpu_probe_then_says_unknown(tmp_path):
    probe = {"experiment": "mnist-rot", "model": "cnn", "train_images_per_s": 1000.0, "device": "cuda: Test GPU",
             "epochs": 1}
    (tmp_path / "gpu").mkdir()
    (tmp_path / "gpu" / "full_probe.jsonl").write_text(json.dumps(probe) + "\n\n")
    s = settings_for("full", "mnist-rot")
    [est] = runs.estimate_seconds([FULL_CNN], "cuda: Test GPU", root=tmp_path / "records", results_root=tmp_path)
    assert est.seconds == pytest.approx(s.iterations * s.batch_size / 1000.0)
    assert est.source == "GPU probe gpu/full_probe.jsonl"
    [cpu] = runs.estimate_seconds([FULL_CNN], "cpu: X (2 cores, 2 threads)", root=tmp_path / "records",
                                  results_root=tmp_path)
    assert cpu.seconds is None and cpu.source == "unknown" and cpu.reference[1] == "cuda: Test GPU"
    [none] = runs.estimate_seconds([RunSpec("mnist-rot", "stn-c1", "full", 0)], "cuda: Test GPU",
                                   root=tmp_path / "records", results_root=tmp_path)
    assert none == runs.Estimate(None, "unknown", None)


def test_cuda_out_of_memory_names_the_batch_size_to_lower(tmp_path, monkeypatch):
    def oom(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 MiB\nmore lines")

    monkeypatch.setattr(train, "train", oom)
    with pytest.raises(runs.RunOutOfMemory) as info:
        runs.train_or_load("svhn", "stn-c3", "smoke", 0, root=tmp_path)
    msg = str(info.value)
    assert msg.startswith("svhn/stn-c3 (smoke, seed 0): CUDA ran out of memory at batch size 32; lower batch_size")
    assert "'smoke' profile's settings for 'svhn'" in msg and msg.endswith("Tried to allocate 20.00 MiB")
    assert isinstance(info.value.__cause__, torch.cuda.OutOfMemoryError)
