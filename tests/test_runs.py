"""Runs: the cost estimate (records, then GPU probes, then unknown) and the out-of-memory message."""

import json

import pytest
import torch

from stnlib import paths, records, runs, train
from stnlib.profiles import settings_for
from stnlib.runs import RunSpec

QUICK_CNN = RunSpec("mnist-rot", "cnn", "quick", 0)
FULL_CNN = RunSpec("mnist-rot", "cnn", "full", 0)


NATIVE = "AVX512 (avx512_bf16+amx_bf16; bf16 native)"
AVX2 = "AVX2 (no bf16 instructions; bf16 emulated)"


@pytest.mark.parametrize("name, capability, kind", [
    ("cuda: NVIDIA H200", None, "cuda: NVIDIA H200"),
    ("cuda: NVIDIA H200", NATIVE, "cuda: NVIDIA H200"),
    ("cpu: AMD EPYC (2 cores, 2 threads)", None, "cpu, 2 cores"),
    ("cpu: AMD EPYC (2 cores, 2 threads, AVX2)", AVX2, "cpu, 2 cores, no native bf16"),
    ("cpu: Intel(R) Xeon(R) Processor (2 cores, 2 threads, AVX512)", NATIVE, "cpu, 2 cores, native bf16"),
    # AVX512 kernels without the bf16 instructions: bf16 is emulated there too.
    ("cpu: Intel(R) Xeon(R) Gold (8 cores, 8 threads, AVX512)", "AVX512 (no bf16 instructions; bf16 emulated)",
     "cpu, 8 cores, no native bf16"),
    ("cpu: Apple M2", None, "cpu"),
])
def test_device_kind(name, capability, kind):
    assert runs.device_kind(name, capability) == kind


def _record_on(root, spec, device, wall, seed=0, capability=NATIVE):
    """A committed quick record copied under ``root`` as if made on ``device`` in ``wall`` seconds."""
    src = paths.checkout_root() / "book" / "records" / spec.profile / spec.experiment / f"{spec.model}-seed0.json"
    rec = json.loads(src.read_text())
    rec["seed"] = rec["config"]["seed"] = seed
    rec["config_hash"] = records.config_hash(rec["config"])
    rec["provenance"].update(device=device, wall_time_s=wall, cpu_capability=capability)
    path = records.record_path(spec.experiment, spec.model, spec.profile, seed, root)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rec))


@pytest.mark.skipif(paths.checkout_root() is None, reason="needs the committed records of a clone")
def test_estimate_takes_the_median_of_records_on_the_same_kind_of_device(tmp_path):
    for seed, wall in enumerate((60.0, 80.0, 400.0)):
        _record_on(tmp_path, QUICK_CNN, "cpu: Intel Xeon (2 cores, 2 threads)", wall, seed)
    [est] = runs.estimate_seconds([QUICK_CNN], "cpu: Other (2 cores, 2 threads)", cpu_capability=NATIVE,
                                  root=tmp_path, results_root=tmp_path / "no-probes")
    assert est.seconds == 80.0 and est.source == "3 record(s) on cpu: Intel Xeon (2 cores, 2 threads)"
    [other] = runs.estimate_seconds([QUICK_CNN], "cpu: Big (64 cores, 128 threads)", cpu_capability=NATIVE,
                                    root=tmp_path, results_root=tmp_path / "no-probes")
    assert other.seconds is None and other.reference == (80.0, "cpu: Intel Xeon (2 cores, 2 threads)", "3 record(s)")
    # Records made in bf16 on a CPU that has it natively say nothing about one that trains in fp32.
    [avx2] = runs.estimate_seconds([QUICK_CNN], "cpu: Laptop (2 cores, 2 threads, AVX2)", cpu_capability=AVX2,
                                   root=tmp_path, results_root=tmp_path / "no-probes")
    assert avx2.seconds is None and avx2.reference[0] == 80.0


def _cpu_probe(results, spec, images_per_s, capability, settings_hash=None):
    line = {"experiment": spec.experiment, "model": spec.model, "profile": spec.profile,
            "train_images_per_s": images_per_s, "device": "cpu: Xeon (2 cores, 1 threads, AVX2)",
            "cpu_capability": capability, "settings_hash": settings_hash or runs.settings_hash(spec)}
    results.mkdir(parents=True, exist_ok=True)
    with open(results / "quick_probe.jsonl", "a") as f:
        f.write(json.dumps(line) + "\n")


@pytest.mark.skipif(paths.checkout_root() is None, reason="needs the committed records of a clone")
def test_estimate_uses_a_cpu_probe_of_the_same_kind_scaled_by_the_records_evaluation_share(tmp_path):
    records_dir = tmp_path / "records"
    _record_on(records_dir, QUICK_CNN, "cpu: Intel Xeon (2 cores, 2 threads)", 100.0)
    rec = json.loads(next((records_dir / "quick" / "mnist-rot").glob("cnn-seed0.json")).read_text())
    s = settings_for("quick", "mnist-rot", "cnn")
    train_s = s.iterations * s.batch_size / rec["provenance"]["train_images_per_s"]
    assert runs.evaluation_factor(QUICK_CNN, records_dir) == pytest.approx(100.0 / train_s)
    assert runs.evaluation_factor(RunSpec("mnist-rot", "stn-c1", "quick", 0), records_dir) == 1.0

    results = tmp_path / "results"
    _cpu_probe(results / "m", QUICK_CNN, 500.0, AVX2)
    _cpu_probe(results / "m", QUICK_CNN, 1.0, NATIVE, settings_hash="0" * 16)  # stale: other settings
    [est] = runs.estimate_seconds([QUICK_CNN], "cpu: Laptop (2 cores, 2 threads, AVX2)", cpu_capability=AVX2,
                                  root=records_dir, results_root=results)
    assert est.seconds == pytest.approx(s.iterations * s.batch_size / 500.0 * 100.0 / train_s)
    assert est.source == "CPU probe m/quick_probe.jsonl"
    # The native kind has a record (it wins); the stale probe is never used.
    [native] = runs.estimate_seconds([QUICK_CNN], "cpu: Other (2 cores, 2 threads)", cpu_capability=NATIVE,
                                     root=records_dir, results_root=results)
    assert native.seconds == 100.0
    [empty] = runs.estimate_seconds([QUICK_CNN], "cpu: Other (2 cores, 2 threads)", cpu_capability=NATIVE,
                                    root=tmp_path / "none", results_root=results)
    assert empty.seconds is None and empty.reference[2] == "CPU probe m/quick_probe.jsonl"


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
