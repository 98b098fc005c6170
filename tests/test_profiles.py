import pytest

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
