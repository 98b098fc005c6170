"""Packed training (stnlib.train.packed) on the CPU: K runs in one step equal the K separate runs.

Tolerances: vmap runs grouped convolutions and batched matrix products, which may sum in another order
than a lone run's, so the parameters are compared with ``atol=1e-5`` (fp32; measured: about 1e-7
after the steps here), the optimiser state (momentum, Adam's moments: gradient-sized) with
``atol=rtol=1e-4``. What must be exactly equal is: the batches, the schedule, the parameter groups,
the config hashes, and a packed run resumed from its checkpoint against the uninterrupted packed run.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from stnlib import profiles, records, train
from stnlib.train import packed
from stnlib.train.config import make_network, mix_seed
from stnlib.train.loop import training_batch, train_step
from stnlib.train.state import TrainState

PARAM_ATOL = 1e-5
STATE_TOL = 1e-4
SEEDS = (0, 1)


def _separate(experiment: str, model: str, seed: int, steps: int, task, device: str = "cpu") -> TrainState:
    """A run trained as :func:`stnlib.train.train` trains it, without evaluation."""
    s = profiles.settings_for("smoke", experiment)
    dev = torch.device(device)
    torch.manual_seed(mix_seed(seed, 0))
    state = TrainState.start(make_network(model, "mnist-rot", s).to(dev), s)
    for i in range(steps):
        x, y = training_batch(task, s, seed, i, dev)
        torch.manual_seed(mix_seed(seed, 3, i))
        state.record_loss(train_step(state, x, y, device=dev, precision=s.precision))
    return state


def _max_diff(a: torch.nn.Module, b: torch.nn.Module) -> float:
    return max((p - q).abs().max().item() for p, q in zip(a.parameters(), b.parameters()))


def _assert_same_run(sep: TrainState, member: TrainState) -> float:
    diff = _max_diff(sep.net, member.net)
    assert diff <= PARAM_ATOL, diff
    a, b = sep.optimizer.state_dict(), member.optimizer.state_dict()
    assert a["param_groups"] == b["param_groups"]  # groups, learning rates after the milestone, momentum
    assert a["state"].keys() == b["state"].keys()
    for i in a["state"]:
        for key, v in a["state"][i].items():
            torch.testing.assert_close(b["state"][i][key], v, atol=STATE_TOL, rtol=STATE_TOL)
    assert sep.scheduler.state_dict() == member.scheduler.state_dict()
    return diff


def test_packed_batches_are_the_separate_runs_batches(roots, tiny):
    run = packed.PackedRun("mnist-rot", "stn-c0", "smoke", (3, 0, 7), device="cpu", progress=False)
    s = run.settings
    for i in (0, 5, run.per_epoch, 3 * run.per_epoch + 2):  # within and across epochs
        x, y = run.batches(i)
        for k, seed in enumerate(run.seeds):
            xs, ys = training_batch(run.train_task, s, seed, i, torch.device("cpu"))
            assert torch.equal(x[k], xs) and torch.equal(y[k], ys)


@pytest.mark.parametrize("experiment,model", [("mnist-rot", "stn-c0"), ("mnist-rot", "cnn"),
                                              ("mnist-rot-adam", "stn-sl1")])
def test_packed_run_equals_separate_runs_through_an_interruption(roots, tiny, experiment, model):
    """Interrupt the pack at iteration 3, resume it from its checkpoint, finish: each run's parameters and
    optimiser state match its separate run's (SGD with momentum, or Adam; two groups; a milestone)."""
    s = profiles.settings_for("smoke", experiment)
    with pytest.raises(RuntimeError, match="injected failure at iteration 3"):
        packed.PackedRun(experiment, model, "smoke", SEEDS, device="cpu", progress=False, fail_at=3).run()
    ckpt = packed.packed_checkpoint_path(experiment, model, "smoke", SEEDS)
    snap = torch.load(ckpt, weights_only=True)
    assert snap["iteration"] == 3 and [m["iteration"] for m in snap["members"]] == [3, 3]
    resumed = packed.PackedRun(experiment, model, "smoke", SEEDS, device="cpu", progress=False)
    assert resumed.resumed_from == str(ckpt) and resumed.state.iteration == 3
    assert resumed.run() is True and resumed.state.iteration == s.iterations

    if model == "cnn":  # resuming is exact: bitwise the uninterrupted pack (one model suffices)
        whole = packed.PackedRun(experiment, model, "smoke", SEEDS, device="cpu", progress=False, resume=False)
        whole.run()
        for name, p in resumed.state.params.items():
            assert torch.equal(p, whole.state.params[name]), name
    diffs = []
    for k, seed in enumerate(SEEDS):
        member = resumed.state.member_state(k)
        sep = _separate(experiment, model, seed, s.iterations, resumed.train_task)
        diffs.append(_assert_same_run(sep, member))
        assert member.lr == sep.lr == s.lr / s.lr_divisor
        assert member.curves["iteration"] == [0, s.iterations]
        assert member.last_finite == pytest.approx(sep.last_finite, abs=1e-5)
    print(f"{experiment}/{model}: max |packed - separate| parameter difference {max(diffs):.3g}")
    # The two runs of the pack are different runs.
    assert _max_diff(resumed.state.member_state(0).net, resumed.state.member_state(1).net) > 1e-3


def test_a_member_state_is_an_ordinary_checkpoint_and_back(roots, tiny):
    """Unpacking a pack into ordinary run states and packing them again changes nothing; a pack
    resumes from the runs' own checkpoints when all are at one iteration."""
    run = packed.PackedRun("mnist-rot", "stn-c0", "smoke", SEEDS, device="cpu", progress=False, resume=False)
    for _ in range(3):
        run.step()
    for k, seed in enumerate(SEEDS):
        h = train.build_config("mnist-rot", "stn-c0", "smoke", seed)
        train.save_checkpoint(train.checkpoint_path("mnist-rot", "stn-c0", "smoke", seed),
                              run.state.member_state(k).snapshot(records.config_hash(h), 0.0))
    again = packed.PackedRun("mnist-rot", "stn-c0", "smoke", SEEDS, device="cpu", progress=False)
    assert again.state.iteration == 3 and "stn-c0-seed0.pt" in again.resumed_from
    for name, p in run.state.params.items():
        assert torch.equal(again.state.params[name], p), name
    a, b = run.state.optimizer.state_dict(), again.state.optimizer.state_dict()
    assert a["param_groups"] == b["param_groups"]
    for i in a["state"]:
        assert all(torch.equal(a["state"][i][key], b["state"][i][key]) for key in a["state"][i])


def test_packed_step_reads_nothing_back_between_reads(roots, tiny, monkeypatch):
    """The loss and the NaN flags live on the device and are read every ``read_every`` steps only."""
    run = packed.PackedRun("mnist-rot", "cnn", "smoke", SEEDS, device="cpu", progress=False, resume=False,
                           read_every=4)
    reads = []
    real = run.read
    monkeypatch.setattr(run, "read", lambda: (reads.append(run.state.iteration), real()))
    run.run()
    assert reads == [4, 5]  # every 4 steps, and at the last (a curve point)


def test_the_nan_guard_fails_each_diverged_run_at_the_next_read(roots, tiny, monkeypatch):
    smoke = profiles.PROFILES["smoke"]
    changed = dict(smoke.settings)
    changed["mnist-rot"] = dataclasses.replace(smoke.settings["mnist-rot"], lr=1e6)
    monkeypatch.setitem(profiles.PROFILES, "smoke", dataclasses.replace(smoke, settings=changed))
    with pytest.raises(train.TrainingDiverged, match=r"became (nan|inf) at iteration \d+ .*checked iterations"):
        packed.train_packed("mnist-rot", "cnn", "smoke", SEEDS, device="cpu", progress=False, read_every=2)
    for seed in SEEDS:
        rec = records.read_record(records.record_path("mnist-rot", "cnn", "smoke", seed))
        assert rec["status"] == "failed" and rec["provenance"]["packed"]["size"] == 2
        assert 0 <= rec["metrics"]["failed_at_iteration"] < 5
        assert "last finite loss" in rec["metrics"]["error_message"]


def test_bad_packs_are_refused(roots, tiny):
    with pytest.raises(ValueError, match="distinct seeds"):
        packed.PackedRun("mnist-rot", "cnn", "smoke", (1, 1), device="cpu")
    with pytest.raises(ValueError, match="CUDA graphs need a CUDA device"):
        packed.PackedRun("mnist-rot", "cnn", "smoke", (0,), device="cpu", graphs=True)
    with pytest.raises(ValueError, match="read_every must be a positive int"):
        packed.PackedRun("mnist-rot", "cnn", "smoke", (0,), device="cpu", read_every=0)


def test_single_channel_conv_uses_plain_conv_under_vmap():
    from stnlib.nn.layers import SingleChannelConv2d

    torch.manual_seed(0)
    conv = SingleChannelConv2d(1, 4, 3)
    x = torch.randn(2, 3, 1, 8, 8, requires_grad=True)
    seen = []
    real = conv._fast
    conv._fast = lambda t: seen.append(real(t)) or seen[-1]
    out = torch.vmap(conv)(x)
    out.square().sum().backward()
    plain = torch.nn.Conv2d(1, 4, 3)
    plain.load_state_dict(conv.state_dict())
    x2 = x.detach().clone().requires_grad_(True)
    torch.vmap(plain)(x2).square().sum().backward()
    assert seen == [False]
    torch.testing.assert_close(x.grad, x2.grad)


@pytest.mark.slow
def test_train_packed_writes_the_separate_runs_records(roots, tiny):
    """One record per run with the separate run's schema and config hash; the provenance says packed."""
    recs = packed.train_packed("mnist-rot", "stn-c0", "smoke", SEEDS, device="cpu", progress=False)
    assert not packed.packed_checkpoint_path("mnist-rot", "stn-c0", "smoke", SEEDS).exists()
    for seed, rec in zip(SEEDS, recs):
        sep = train.train("mnist-rot", "stn-c0", "smoke", seed, progress=False, resume=False,
                          records_root=roots / "separate")
        assert rec["config_hash"] == sep["config_hash"] and rec["status"] == "complete"
        assert set(rec) == set(sep) and set(rec["metrics"]) == set(sep["metrics"])
        assert set(rec["summaries"]) == set(sep["summaries"])
        assert rec["provenance"]["packed"] == {"size": 2, "seeds": list(SEEDS), "engine": "eager",
                                               "read_every": 1}
        assert rec["curves"]["iteration"] == sep["curves"]["iteration"]
        # Same weights up to rounding: the same predictions on the same test images, near enough.
        assert abs(rec["metrics"]["test_error"] - sep["metrics"]["test_error"]) <= 2 / 256
        stored = records.read_record(records.record_path("mnist-rot", "stn-c0", "smoke", seed))
        assert json.dumps(stored["config"], sort_keys=True) == json.dumps(sep["config"], sort_keys=True)
        assert train.load_trained_model("mnist-rot", "stn-c0", "smoke", seed) is not None


def _gpu_full():
    from scripts import load_benchmark

    return load_benchmark("gpu_full")


def _tar_names(path):
    import tarfile

    with tarfile.open(path) as tar:
        return sorted(tar.getnames())


def test_gpu_script_dry_run_checkpoints_and_resumes(roots, tiny, tmp_path, monkeypatch):
    """benchmarks/gpu_full.py on the CPU (smoke): a window stopped early leaves checkpoints and a timing
    summary in at most 8 flat files; the next window takes them and finishes with one record per run."""
    from stnlib.train import loop

    # The figures' misalignment curves take most of a smoke record's time; the records test has them.
    monkeypatch.setattr(loop, "figure_summaries", lambda *a, **k: {})
    gpu_full = _gpu_full()
    out1, out2 = tmp_path / "out1", tmp_path / "out2"
    common = ["--dry-run", "--experiments", "mnist-rot", "--models", "cnn", "stn-c0", "--seeds", "0", "1",
              "--timing-model", "cnn"]
    assert gpu_full.main([*common, "--out", str(out1), "--max-rounds", "3"]) == 0
    summary = json.loads((out1 / "summary.json").read_text())
    assert not summary["errors"], summary["errors"]
    assert [t["what"] for t in summary["timing"]] == ["separate, eager loop (stnlib.train.train)", "pack of 2, eager"]
    assert all(t["img_s_total"] > 0 for t in summary["timing"])
    assert [(r["model"], r["start_iteration"], r["end_iteration"]) for r in summary["runs"]] == [
        ("cnn", 0, 3), ("stn-c0", 0, 3)]
    files = sorted(p.name for p in out1.iterdir())
    assert files == ["checkpoints-0.tar", "records.tar", "summary.json", "summary.txt"]
    assert _tar_names(out1 / "checkpoints-0.tar") == [
        "checkpoints/smoke/mnist-rot/cnn-packed-seeds0-1.pt", "checkpoints/smoke/mnist-rot/stn-c0-packed-seeds0-1.pt"]
    assert _tar_names(out1 / "records.tar") == []
    assert "img/s" in (out1 / "summary.txt").read_text()

    assert gpu_full.main([*common, "--out", str(out2), "--prev", str(out1), "--no-timing"]) == 0
    summary = json.loads((out2 / "summary.json").read_text())
    assert not summary["errors"], summary["errors"]
    assert summary["imported"] == ["checkpoints-0.tar", "records.tar"]
    assert [(r["model"], r["start_iteration"], r["end_iteration"], r["done"]) for r in summary["runs"]] == [
        ("cnn", 3, 5, True), ("stn-c0", 3, 5, True)]
    names = _tar_names(out2 / "records.tar")
    assert names == [f"records/smoke/mnist-rot/{m}-seed{s}.json" for m in ("cnn", "stn-c0") for s in (0, 1)]
    assert not (out2 / "checkpoints-0.tar").exists()

    # A third window finds every record and trains nothing.
    out3 = tmp_path / "out3"
    assert gpu_full.main([*common, "--out", str(out3), "--prev", str(out2), "--no-timing"]) == 0
    summary = json.loads((out3 / "summary.json").read_text())
    assert summary["runs"] == [] and summary["planned"] == []
    assert _tar_names(out3 / "records.tar") == names


def test_gpu_script_refuses_unsafe_tar_members(tmp_path):
    import tarfile

    gpu_full = _gpu_full()
    evil = tmp_path / "prev"
    evil.mkdir()
    (tmp_path / "x.json").write_text("{}")
    with tarfile.open(evil / "records.tar", "w") as tar:
        tar.add(tmp_path / "x.json", arcname="../escape.json")
    with pytest.raises(ValueError, match="unexpected member '../escape.json'"):
        gpu_full.import_previous(evil, tmp_path / "work")


@pytest.mark.parametrize("dataset", ["mnist-rot", "mnist-trans"])
def test_raw_batches_are_each_runs_raw_batch(dataset):
    """Several runs' batches drawn at once (each from its own generator) equal the runs' own batches."""
    from stnlib.data import get_task

    task = get_task(dataset, "train", subset=300)
    index = [torch.randperm(300, generator=torch.Generator().manual_seed(k))[:16] for k in range(3)]
    alone = [task.raw_batch(i, torch.Generator().manual_seed(10 + k)) for k, i in enumerate(index)]
    x, y, info = task.raw_batches(torch.cat(index), [torch.Generator().manual_seed(10 + k) for k in range(3)])
    assert torch.equal(x, torch.cat([a[0] for a in alone])) and torch.equal(y, torch.cat([a[1] for a in alone]))
    for key in info:
        assert torch.equal(info[key], torch.cat([a[2][key] for a in alone]))
    with pytest.raises(ValueError, match="do not split into 3 equal shares"):
        task.raw_batches(torch.arange(10), [torch.Generator()] * 3)
    with pytest.raises(ValueError, match="needs a torch.Generator"):
        task.raw_batches(torch.arange(3), [None, torch.Generator(), torch.Generator()])


def test_a_smaller_pack_continues_the_healthy_runs_of_a_larger_one(roots, tiny):
    """After a run of a pack failed (its failed record written), the next window packs only the others:
    they continue from the larger pack's checkpoint, which is removed once they finish."""
    with pytest.raises(RuntimeError, match="injected failure"):
        packed.PackedRun("mnist-rot", "cnn", "smoke", SEEDS, device="cpu", progress=False, fail_at=3).run()
    big = packed.packed_checkpoint_path("mnist-rot", "cnn", "smoke", SEEDS)
    snap = torch.load(big, weights_only=True)
    snap["failed"] = {"1": ["seed 1 diverged (edited in by the test)", 2]}
    train.save_checkpoint(big, snap)
    small = packed.PackedRun("mnist-rot", "cnn", "smoke", (0,), device="cpu", progress=False)
    assert small.resumed_from == str(big) and small.state.iteration == 3
    member = snap["members"][0]["model"]
    for name, p in small.state.params.items():
        assert torch.equal(p[0], member[name]), name
    small.run()
    small.finish()
    assert not big.exists()
