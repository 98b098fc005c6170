"""benchmarks/profile_step.py: operators fall in the groups the table names, and a profiled step adds up."""

from __future__ import annotations

import pytest

from scripts import load_benchmark


def _script():
    return load_benchmark("profile_step")


@pytest.mark.parametrize("name, parent, group", [
    ("aten::convolution_backward", None, "convolution"),
    ("aten::mkldnn_convolution", "aten::convolution", "convolution"),
    ("aten::max_pool2d_with_indices_backward", None, "max-pool"),
    ("aten::fill_", "aten::max_pool2d_with_indices_backward", "max-pool"),  # its gradient's zero fill
    ("aten::fill_", None, "other"),
    ("aten::mm", None, "matmul"),
    ("Optimizer.step#SGD.step", None, "optimiser"),
    ("aten::grid_sampler_2d_backward", None, "grid_sample"),
    ("aten::threshold_backward", None, "relu"),
    ("aten::copy_", None, "other"),
])
def test_operator_groups(name, parent, group):
    assert _script().group_of(name, parent) == group


def test_a_profiled_step_gives_a_rate_and_shares_that_add_up():
    rate, shares = _script().profile_run("mnist-rot", "cnn", 1)
    assert rate > 0 and sum(shares.values()) == pytest.approx(1.0)
    assert shares["convolution"] > 0.1 and shares["max-pool"] > 0 and shares["batch"] > 0


@pytest.mark.parametrize("argv, message", [
    (["mnist-rot"], "expected EXPERIMENT:MODEL, got 'mnist-rot'"),
    (["mnist-rot:cnn", "--packed", "1"], "--packed at least 2"),
])
def test_bad_arguments_are_named(argv, message, capsys):
    with pytest.raises(SystemExit):
        _script().main(argv)
    assert message in capsys.readouterr().err
