"""Training engine: smoke runs end to end, determinism, resume, retraining, NaN guard."""

import dataclasses
import json
import math

import pytest
import torch

from stnlib import profiles, records, runs, train
from stnlib.profiles import EXPERIMENTS


def _strip(rec):
    rec = json.loads(json.dumps(rec))
    rec.pop("provenance")
    return rec


def test_unknown_names_are_rejected_with_choices():
    with pytest.raises(ValueError, match="stn-c9.*valid models"):
        train.build_config("mnist-rot", "stn-c9", "smoke", 0)
    with pytest.raises(ValueError, match="valid experiments"):
        train.build_config("mnist-scale", "cnn", "smoke", 0)
    with pytest.raises(ValueError, match="valid profiles"):
        train.build_config("mnist-rot", "cnn", "medium", 0)


@pytest.mark.parametrize("dataset,name", [("mnist-trans", "cnn"), ("mnist-rot", "stn-c0"), ("mnist-rot", "stn-dl1")])
def test_to_channels_last_keeps_one_channel_convs_nhwc(dataset, name):
    # A 1-input-channel weight is ambiguous (its NCHW and NHWC strides coincide); unless it gets explicit
    # NHWC strides the first conv, and the max-pool after it, run in NCHW.
    from stnlib.datasets import DATASETS

    net = train.make_network(name, dataset, profiles.settings_for("smoke", dataset))
    x = torch.rand(3, *DATASETS[dataset].input_shape)
    ref = net(x)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    train.to_channels_last(net)
    weights = [p for p in net.parameters() if p.dim() == 4]
    assert weights and all(p.stride(1) == 1 for p in weights)
    assert any(p.shape[1] == 1 for p in weights)
    for k, v in net.state_dict().items():
        assert torch.equal(v, state[k]), k  # values untouched
    first = net.features[0](x.contiguous(memory_format=torch.channels_last))
    assert first.stride(1) == 1 and first.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(net(x), ref, atol=1e-5, rtol=1e-5)
    # A checkpoint round trip keeps the layout and the values.
    net.load_state_dict(state)
    assert all(p.stride(1) == 1 for p in net.parameters() if p.dim() == 4)


@pytest.mark.slow
@pytest.mark.parametrize("experiment", list(EXPERIMENTS))
def test_smoke_trains_every_model_end_to_end(roots, experiment):
    for model in EXPERIMENTS[experiment]["models"]:
        rec = train.train(experiment, model, "smoke", 0, progress=False)
        assert rec["status"] == "complete"
        assert 0.0 <= rec["metrics"]["test_error"] <= 1.0
        assert rec["curves"]["iteration"][-1] == profiles.settings_for("smoke", experiment).iterations
        path = records.record_path(experiment, model, "smoke", 0)
        assert records.read_record(path)["config_hash"] == rec["config_hash"]
        prov = rec["provenance"]
        for key in ("git_commit", "torch_version", "device", "wall_time_s", "date", "data_source"):
            assert prov[key] not in (None, ""), key
        if model != "cnn" and experiment.startswith("mnist"):
            assert "orientation" in rec["metrics"]
            assert rec["summaries"]["examples"]["st_output"]


@pytest.mark.slow
def test_smoke_is_bitwise_repeatable_on_cpu(roots):
    a = train.train("mnist-rot", "stn-sl1", "smoke", 0, progress=False, resume=False)
    b = train.train("mnist-rot", "stn-sl1", "smoke", 0, progress=False, resume=False)
    assert _strip(a) == _strip(b)
    c = train.train("mnist-rot", "stn-sl1", "smoke", 1, progress=False, resume=False)
    assert c["metrics"]["test_error_passes"] != a["metrics"]["test_error_passes"] or \
        c["curves"]["train_loss"] != a["curves"]["train_loss"]


@pytest.mark.slow
def test_a_killed_run_resumes_to_the_same_record(roots):
    ref = train.train("mnist-rot", "stn-c1", "smoke", 0, progress=False, resume=False)
    ckpt = train.checkpoint_path("mnist-rot", "stn-c1", "smoke", 0)
    with pytest.raises(RuntimeError, match="injected failure at iteration 9"):
        train.train("mnist-rot", "stn-c1", "smoke", 0, progress=False, resume=False, fail_at=9)
    assert ckpt.exists()
    state = torch.load(ckpt, weights_only=False)
    assert state["iteration"] == 9  # saved at the last consistent state, not the last periodic one
    resumed = train.train("mnist-rot", "stn-c1", "smoke", 0, progress=False, resume=True)
    assert _strip(resumed) == _strip(ref)
    assert not ckpt.exists()


@pytest.mark.slow
def test_changed_config_triggers_retraining(roots, monkeypatch):
    first = runs.train_or_load("mnist-rot", "cnn", "smoke", 0, progress=False)
    calls = []
    real_train = train.train

    def spy(*a, **k):
        calls.append(a)
        return real_train(*a, **k)

    monkeypatch.setattr(train, "train", spy)
    again = runs.train_or_load("mnist-rot", "cnn", "smoke", 0, progress=False)
    assert calls == [] and again["config_hash"] == first["config_hash"]
    smoke = profiles.PROFILES["smoke"]
    changed = dict(smoke.settings)
    changed["mnist-rot"] = dataclasses.replace(smoke.settings["mnist-rot"], lr=0.02)
    monkeypatch.setitem(profiles.PROFILES, "smoke", dataclasses.replace(smoke, settings=changed))
    new = runs.train_or_load("mnist-rot", "cnn", "smoke", 0, progress=False)
    assert len(calls) == 1
    assert new["config_hash"] != first["config_hash"]
    assert new["config"]["settings"]["lr"] == 0.02


def test_no_train_guard_refuses_to_train_a_quick_record(roots, monkeypatch):
    monkeypatch.setenv("STNLIB_NO_TRAIN", "1")
    with pytest.raises(records.RecordError, match="STNLIB_NO_TRAIN"):
        runs.train_or_load("mnist-rot", "cnn", "quick", 0)


@pytest.mark.slow
def test_nan_loss_stops_with_a_failed_record(roots, monkeypatch):
    smoke = profiles.PROFILES["smoke"]
    changed = dict(smoke.settings)
    changed["mnist-rot"] = dataclasses.replace(smoke.settings["mnist-rot"], lr=1e6)
    monkeypatch.setitem(profiles.PROFILES, "smoke", dataclasses.replace(smoke, settings=changed))
    with pytest.raises(train.TrainingDiverged, match=r"iteration \d+; last finite loss"):
        train.train("mnist-rot", "cnn", "smoke", 0, progress=False, resume=False)
    rec = records.read_record(records.record_path("mnist-rot", "cnn", "smoke", 0))
    assert rec["status"] == "failed"
    assert "became" in rec["metrics"]["error_message"]
    assert not math.isnan(rec["metrics"]["failed_at_iteration"])


def test_svhn_error_is_the_whole_sequence():
    y = torch.tensor([[1, 2, 10, 10, 10], [3, 10, 10, 10, 10], [0, 0, 0, 0, 0], [5, 6, 7, 10, 10]])
    logits = torch.nn.functional.one_hot(y, 11).float() * 5
    assert train.loss_and_errors(logits, y)[1].float().mean() == 0.0
    logits[1, 3, 4] = 9.0  # a digit predicted where a blank is: the whole sequence is wrong
    logits[2, 0, 1] = 9.0
    assert train.loss_and_errors(logits, y)[1].tolist() == [False, True, True, False]


def test_svhn_loss_is_the_sum_of_the_position_batch_means():
    loss, _ = train.loss_and_errors(torch.zeros(3, 5, 11), torch.zeros(3, 5, dtype=torch.long))
    assert loss.item() == pytest.approx(5 * math.log(11))
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 5, 11, generator=g, dtype=torch.float64)
    y = torch.randint(0, 11, (6, 5), generator=g)
    expected = sum(torch.nn.functional.cross_entropy(logits[:, i].float(), y[:, i]) for i in range(5))
    torch.testing.assert_close(train.loss_and_errors(logits, y)[0], expected)
