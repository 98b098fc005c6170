import subprocess
import sys

import pytest

from stnlib import cli
from stnlib.profiles import EXPERIMENTS, PROFILES


def test_help_lists_every_experiment_model_and_profile():
    out = subprocess.run([sys.executable, "-m", "stnlib", "--help"], capture_output=True,
                         text=True, check=True).stdout
    for name in [*EXPERIMENTS, *PROFILES, "stn-sl1", "stn-dl8", "table1", "table2"]:
        assert name in out, name


@pytest.mark.parametrize("argv, bad", [
    (["train", "mnist-rot", "stn-c9", "--profile", "smoke"], "stn-c9"),
    (["train", "mnist-scale", "cnn", "--profile", "smoke"], "mnist-scale"),
    (["train", "mnist-rot", "cnn", "--profile", "medium"], "medium"),
    (["sweep", "table9", "--profile", "smoke"], "table9"),
])
def test_bad_names_exit_2_with_the_valid_choices(argv, bad, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert bad in err and "valid" in err


@pytest.fixture
def no_gpu(roots, monkeypatch):
    """This machine as one without a GPU (whatever it has), with empty record and checkpoint roots."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)


def _count_trainings(monkeypatch) -> list:
    from stnlib import launch

    calls = []

    def fake(*args, **kwargs):
        calls.append(args)
        raise RuntimeError("not trained in this test")

    monkeypatch.setattr(launch, "train_or_load", fake)
    return calls


def test_full_profile_on_a_cpu_is_refused_without_yes(no_gpu, monkeypatch, capsys):
    calls = _count_trainings(monkeypatch)
    assert cli.main(["sweep", "mnist-rot", "--profile", "full"]) == 2
    out, err = capsys.readouterr()
    assert calls == []
    assert "15 of 15 run(s) to train: mnist-rot 15" in out  # 5 models × 3 seeds
    assert "estimated cost on cpu" in out
    assert "refusing to train 15 run(s) of the full profile" in err and "--yes" in err


def test_full_profile_on_a_cpu_starts_with_yes(no_gpu, monkeypatch, capsys):
    calls = _count_trainings(monkeypatch)
    assert cli.main(["sweep", "mnist-rot", "--profile", "full", "--models", "cnn", "--yes"]) == 1
    assert len(calls) == 3  # every seed was started; the fake made each fail, so the sweep exits 1
    assert "3 of 3 run(s) failed" in capsys.readouterr().err


def test_a_quick_sweep_prints_its_plan_before_training(no_gpu, monkeypatch, capsys):
    calls = _count_trainings(monkeypatch)
    cli.main(["sweep", "table1", "--profile", "quick"])
    out = capsys.readouterr().out
    plan = out.index("30 of 30 run(s) to train: mnist-rot 15, mnist-trans 15")  # 5 models × 3 seeds each
    assert plan < out.index("FAILED") and len(calls) == 30


@pytest.mark.parametrize("command", [
    ["sweep", "mnist-rot", "--profile", "smoke", "--device", "cuda"],
    ["train", "mnist-rot", "cnn", "--profile", "smoke", "--device", "cuda"],
])
def test_cuda_without_a_gpu_is_one_line(no_gpu, monkeypatch, capsys, command):
    calls = _count_trainings(monkeypatch)
    assert cli.main(command) == 2
    err = capsys.readouterr().err
    assert err == "error: device 'cuda' is not available on this machine; available: cpu\n"
    assert calls == []


def test_an_unknown_launcher_exits_2_with_the_choices(no_gpu, capsys):
    assert cli.main(["sweep", "mnist-rot", "--profile", "smoke", "--launcher", "pbs"]) == 2
    assert "unknown launcher 'pbs'; valid launchers: inline, local, slurm" in capsys.readouterr().err


def test_cuda_out_of_memory_is_one_line_naming_the_batch_size(no_gpu, monkeypatch, capsys):
    import torch

    from stnlib import train

    def oom(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79 GiB total)")

    monkeypatch.setattr(train, "train", oom)
    assert cli.main(["train", "mnist-rot", "cnn", "--profile", "smoke"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: mnist-rot/cnn (smoke, seed 0): CUDA ran out of memory at batch size 64;")
    assert err.count("\n") == 1 and "Tried to allocate 2.00 GiB" in err
