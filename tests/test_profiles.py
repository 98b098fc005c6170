from dataclasses import replace

import pytest
import torch

from stnlib import profiles
from stnlib.nn import valid_models


def test_every_profile_covers_every_experiment():
    for p in profiles.PROFILES.values():
        assert set(p.settings) == set(profiles.EXPERIMENTS), p.name
        assert p.seeds


def test_full_profile_is_the_papers_protocol():
    s = profiles.settings_for("full", "mnist-rot")
    assert (s.iterations, s.batch_size, s.optimizer, s.lr, s.momentum) == (150_000, 256, "sgd", 0.01, 0.0)
    assert s.lr_milestones == (50_000, 100_000) and s.lr_divisor == 10
    assert s.eval_passes == 10
    assert profiles.get_profile("full").seeds == (0, 1, 2)


def test_every_non_full_profile_names_its_deviations():
    for name in ("smoke", "quick"):
        for exp in profiles.EXPERIMENTS:
            assert profiles.deviations_for(name, exp), (name, exp)


def test_quick_deviations_mention_what_differs():
    text = " ".join(profiles.deviations_for("quick", "mnist-rot"))
    assert "momentum" in text and "bf16" in text and "epochs" in text
    svhn = " ".join(profiles.deviations_for("quick", "svhn"))
    assert "width" in svhn and "synthetic" in svhn


def test_experiment_models_exist_in_the_factory():
    for exp in profiles.EXPERIMENTS.values():
        for m in exp["models"]:
            assert m in valid_models(exp["dataset"])


@pytest.mark.parametrize("call, bad", [
    (lambda: profiles.get_profile("medium"), "medium"),
    (lambda: profiles.get_experiment("mnist-scale"), "mnist-scale"),
    (lambda: profiles.get_sweep("table9"), "table9"),
])
def test_unknown_names_list_the_valid_choices(call, bad):
    with pytest.raises(ValueError) as e:
        call()
    assert bad in str(e.value) and "valid" in str(e.value)


def test_milestones_lie_inside_the_schedule():
    for p in profiles.PROFILES.values():
        for exp, s in p.settings.items():
            assert all(0 < m < s.iterations for m in s.lr_milestones), (p.name, exp)
            assert s.eval_every <= s.iterations


def test_dropout_enters_the_config_only_where_set():
    """A field added later must not change the hash of settings that leave it at its default."""
    from stnlib.profiles import settings_for

    assert "dropout" not in settings_for("quick", "mnist-rot").to_dict()
    assert "dropout" not in settings_for("full", "svhn").to_dict()
    assert settings_for("quick", "svhn").to_dict()["dropout"] == 0.0


def test_pinned_runs_keep_their_protocol_settings_wording_and_seeds():
    from stnlib import profiles
    from stnlib.train import build_config
    from stnlib.train.config import PROTOCOL_VERSION

    quick = profiles.get_profile("quick")
    assert quick.pinned, "the quick profile pins the runs it has not retrained"
    for exp, pins in quick.pinned.items():
        for pin in pins:
            model = pin.models[0] if pin.models else profiles.EXPERIMENTS[exp]["models"][0]
            cfg = build_config(exp, model, "quick", pin.seeds[-1])
            assert cfg["protocol_version"] == pin.protocol_version < PROTOCOL_VERSION
            assert cfg["settings"] == pin.settings.to_dict() and cfg["deviations"] == list(pin.deviations)
            assert profiles.seeds_for("quick", exp, model) == pin.seeds == (0, 1, 2)
            # Readers see the wording corrected; the config keeps the hashed one.
            shown = profiles.deviations_for("quick", exp, model)
            assert "one seed instead of three" in pin.deviations and "one seed instead of three" not in shown
            assert shown == pin.described_deviations and len(shown) == len(pin.deviations) - 1
    # A model the pin does not cover follows the profile: rotated MNIST pins only the extension models.
    cfg = build_config("mnist-rot", "stn-c1", "quick", 2)
    assert cfg["protocol_version"] == PROTOCOL_VERSION and profiles.seeds_for("quick", "mnist-rot", "stn-c1") == (0, 1, 2)
    assert profiles.seeds_for("quick", "mnist-rot", "ecnn") == (0, 1, 2)
    assert profiles.settings_for("quick", "mnist-rot", "ecnn") != profiles.settings_for("quick", "mnist-rot", "cnn")


def test_a_pins_corrections_replace_or_drop_hashed_wording_and_refuse_a_phrase_it_lacks():
    from stnlib.profiles import Pinned, get_profile

    base = get_profile("quick").pin("mnist-trans")
    pin = Pinned(protocol_version=1, settings=base.settings, deviations=("a", "b", "c"), seeds=(0,), why="w",
                 corrections=(("b", None), ("c", "c, as it holds")))
    assert pin.described_deviations == ("a", "c, as it holds")
    assert pin.deviations == ("a", "b", "c")
    bad = Pinned(protocol_version=1, settings=base.settings, deviations=("a",), seeds=(0,), why="w",
                 corrections=(("z", None),))
    with pytest.raises(ValueError, match=r"correction of a deviation the pin does not have: \['z'\]; its deviations: \['a'\]"):
        bad.described_deviations
    # Translated MNIST: the multiplier's source is named as the authors' code, as in the current protocol.
    text = " ".join(base.described_deviations)
    assert "the spec's default" in " ".join(base.deviations) and "the spec's default" not in text
    assert "the authors' code defaults to 1" in text


def test_pinned_runs_hash_the_bf16_they_were_trained_with_and_train_in_bf16_only_where_it_is_native(monkeypatch):
    from stnlib import hardware, profiles
    from stnlib.train import build_config

    for exp, model in (("mnist-trans", "stn-c0"), ("mnist-rot", "stn-ec1")):
        assert profiles.settings_for("quick", exp, model).precision == "bf16"  # what the records hash
        assert build_config(exp, model, "quick", 0)["settings"]["precision"] == "bf16"
        trains = profiles.training_settings("quick", exp, model)
        assert trains.precision == "auto" and trains == replace(profiles.settings_for("quick", exp, model),
                                                                precision="auto")
        shown = " ".join(profiles.deviations_for("quick", exp, model))
        assert "fp32 elsewhere" in shown and "bf16 autocast and channels_last on the CPU" not in shown
    # Runs that are not pinned train with exactly their hashed settings.
    assert profiles.training_settings("quick", "mnist-rot", "cnn") == profiles.settings_for("quick", "mnist-rot", "cnn")
    # "auto" is the bf16 the records were made with where it is native, fp32 where it would be emulated.
    cpu = torch.device("cpu")
    for native, expected in ((True, True), (False, False)):
        monkeypatch.setattr(hardware, "cpu_capability",
                            lambda n=native: hardware.CPUCapability("AVX512" if n else "AVX2", ("amx_bf16",) if n else ()))
        assert hardware.uses_bf16(cpu, "auto") is expected and hardware.uses_bf16(cpu, "bf16") is True
    bad = replace(profiles.get_profile("quick").pin("mnist-trans"), precision="fp16")
    monkeypatch.setitem(profiles.PROFILES, "quick", replace(profiles.get_profile("quick"),
                                                            pinned={"mnist-trans": (bad,)}))
    with pytest.raises(ValueError, match="unknown precision 'fp16'; valid choices: fp32, bf16, auto"):
        profiles.training_settings("quick", "mnist-trans", "cnn")


def test_every_committed_quick_record_matches_its_config_in_the_profile():
    # A schedule edited without retraining (or a pin edited) makes records stale: the book would then
    # refuse them under STNLIB_NO_TRAIN; this says which at once.
    from stnlib import records
    from stnlib.paths import records_root
    from stnlib.runs import experiment_runs

    from stnlib.profiles import EXPERIMENTS, EXTENSION_MODELS

    stale = []
    for exp, e in EXPERIMENTS.items():
        for spec in experiment_runs(exp, "quick", models=(*e["models"], *EXTENSION_MODELS.get(exp, ()))):
            rec = records.load_record(spec.experiment, spec.model, "quick", spec.seed, root=records_root())
            if rec is None or rec["config_hash"] != records.config_hash(spec.config()):
                stale.append(str(spec))
    assert stale == []
