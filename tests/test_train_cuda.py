"""The CUDA path of packed training: CUDA graphs, no host synchronisation, on-GPU batches.

Every test here needs a CUDA GPU and skips without one. What the CUDA path shares with the CPU path
(the packed step, the batches, checkpoints, the NaN guard, the GPU script's plumbing) is tested on the
CPU in ``test_train_packed.py``; these tests check what only a GPU can show. TF32 is switched off
where a CUDA run is compared with another, so that fp32 tolerances apply.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from stnlib import profiles, records
from stnlib.train import packed
from stnlib.train.cuda import no_host_sync
from test_train_packed import PARAM_ATOL, SEEDS, _assert_same_run, _gpu_full, _separate

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason="needs a CUDA GPU (the logic shared with the CPU path is tested in test_train_packed.py)")


@pytest.fixture
def exact_fp32():
    """No TF32 in convolutions and matrix products while comparing two CUDA runs."""
    old = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = old


@pytest.mark.parametrize("experiment,model", [("mnist-rot", "stn-c0"), ("mnist-rot-adam", "stn-sl1")])
def test_graphed_pack_equals_the_separate_cuda_runs(roots, tiny, exact_fp32, experiment, model):
    """A pack replayed from CUDA graphs (captured again after the milestone) ends where the separate,
    eager CUDA runs end: same batches (CUDA generators), same optimiser (capturable Adam too)."""
    run = packed.PackedRun(experiment, model, "smoke", SEEDS, device="cuda", progress=False, resume=False)
    assert run.run() and run.engine == "cuda-graphs"
    assert run._graphed.captures == 2  # before and after the learning-rate milestone
    for k, seed in enumerate(SEEDS):
        sep = _separate(experiment, model, seed, run.settings.iterations, run.train_task, device="cuda")
        _assert_same_run(sep, run.state.member_state(k))


def test_graphed_and_eager_packs_agree_and_resume_across_engines(roots, tiny, exact_fp32):
    eager = packed.PackedRun("mnist-rot", "stn-c0", "smoke", SEEDS, device="cuda", graphs=False,
                             progress=False, resume=False)
    eager.run()
    with pytest.raises(RuntimeError, match="injected failure at iteration 2"):
        packed.PackedRun("mnist-rot", "stn-c0", "smoke", SEEDS, device="cuda", progress=False, fail_at=2).run()
    graphed = packed.PackedRun("mnist-rot", "stn-c0", "smoke", SEEDS, device="cuda", progress=False)
    assert graphed.state.iteration == 2
    graphed.run()
    for name, p in eager.state.params.items():
        torch.testing.assert_close(graphed.state.params[name], p, atol=PARAM_ATOL, rtol=0)


def test_no_host_sync_between_reads(roots, monkeypatch):
    """Steps between two reads, across an epoch boundary, never wait for the GPU."""
    smoke = profiles.PROFILES["smoke"]
    changed = dict(smoke.settings)
    changed["mnist-rot"] = dataclasses.replace(
        smoke.settings["mnist-rot"], iterations=40, batch_size=8, train_subset=32, eval_every=1000,
        checkpoint_every=1000, curve_examples=16, lr_milestones=(30,))
    monkeypatch.setitem(profiles.PROFILES, "smoke", dataclasses.replace(smoke, settings=changed))
    run = packed.PackedRun("mnist-rot", "stn-c0", "smoke", SEEDS, device="cuda", progress=False, resume=False,
                           read_every=1000)
    for _ in range(3):  # the first curve point, the capture, the first epoch's permutations
        run.step()
    with no_host_sync():
        for _ in range(10):  # 4 steps an epoch: crosses two epoch boundaries
            run.step()
    run.read()
    assert run.state.iteration == 13 and not run.state.failed


def test_the_nan_guard_on_cuda(roots, tiny, monkeypatch):
    smoke = profiles.PROFILES["smoke"]
    changed = dict(profiles.PROFILES["smoke"].settings)
    changed["mnist-rot"] = dataclasses.replace(changed["mnist-rot"], lr=1e6)
    monkeypatch.setitem(profiles.PROFILES, "smoke", dataclasses.replace(smoke, settings=changed))
    with pytest.raises(packed.TrainingDiverged, match=r"at iteration \d+ .*checked iterations"):
        packed.train_packed("mnist-rot", "cnn", "smoke", SEEDS, device="cuda", progress=False, read_every=3)
    rec = records.read_record(records.record_path("mnist-rot", "cnn", "smoke", 0))
    assert rec["status"] == "failed" and rec["provenance"]["packed"]["engine"] == "cuda-graphs"


def test_train_packed_on_cuda_writes_records(roots, tiny):
    recs = packed.train_packed("mnist-rot", "stn-c1", "smoke", SEEDS, device="cuda", progress=False)
    assert [r["status"] for r in recs] == ["complete", "complete"]
    assert all(r["provenance"]["packed"]["engine"] == "cuda-graphs" for r in recs)
    assert all(r["provenance"]["device"].startswith("cuda") for r in recs)


def test_single_channel_conv_fast_path_is_cpu_only():
    from stnlib.nn.layers import SingleChannelConv2d

    conv = SingleChannelConv2d(1, 4, 3).cuda()
    x = torch.randn(2, 1, 8, 8, device="cuda", requires_grad=True)
    assert not conv._fast(x)
    assert conv.cpu()._fast(x.detach().cpu().requires_grad_(True))


def test_gpu_script_on_cuda(roots, tiny, tmp_path, monkeypatch):
    from stnlib.train import loop

    monkeypatch.setattr(loop, "figure_summaries", lambda *a, **k: {})
    gpu_full = _gpu_full()
    out = tmp_path / "out"
    assert gpu_full.main(["--profile", "smoke", "--device", "cuda", "--out", str(out), "--experiments",
                          "mnist-rot", "--models", "cnn", "stn-c0", "--seeds", "0", "1", "--timing-steps", "2",
                          "--timing-warmup", "1", "--timing-pack", "2", "--budget", "90"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert not summary["errors"], summary["errors"]
    assert [t["what"] for t in summary["timing"]] == [
        "separate, eager loop (stnlib.train.train)", "one run, CUDA graph", "pack of 2, CUDA graph", "pack of 2, eager"]
    assert all(r.get("done") for r in summary["runs"])
