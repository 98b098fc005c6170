"""benchmarks/alternatives.py: its exactness checks tell an exact replacement from one that is not."""

from __future__ import annotations

import pytest
import torch
from scripts import load_benchmark


@pytest.fixture(scope="module")
def alt():
    return load_benchmark("alternatives")


def _with_ties(shape, memory_format=torch.channels_last):
    """bf16 values on a coarse grid, so that most 2×2 windows hold equal values."""
    x = torch.randint(-2, 3, shape, generator=torch.Generator().manual_seed(0)).to(torch.bfloat16)
    return x.contiguous(memory_format=memory_format)


@pytest.mark.parametrize("shape", [(2, 4, 6, 6), (1, 3, 7, 9)])  # the odd edges ATen drops, too
@pytest.mark.parametrize("memory_format", [torch.channels_last, torch.contiguous_format])
def test_the_first_max_backward_gives_atens_gradient_even_on_ties(alt, shape, memory_format):
    assert alt.same_as_aten(alt.first_max_pool, _with_ties(shape, memory_format)) == (True, True)


def test_plain_autograd_through_the_maximum_is_seen_to_split_a_ties_gradient(alt):
    x = _with_ties((2, 4, 6, 6))
    assert alt.same_as_aten(alt.maximum_pool, x) == (True, False)
    _, grad = alt.pool_grads(alt.maximum_pool, torch.zeros(1, 1, 2, 2, dtype=torch.bfloat16))
    _, aten = alt.pool_grads(alt.aten_pool, torch.zeros(1, 1, 2, 2, dtype=torch.bfloat16))
    assert (aten != 0).sum() == 1 and (grad != 0).sum() > 1  # ATen: the first element takes it all


def test_the_parameter_check_sees_a_different_update(alt):
    params = [torch.randn(5, 3, generator=torch.Generator().manual_seed(1))]
    ref = alt.adam_after(params, "for-loop")
    assert all(torch.equal(a, b) for a, b in zip(ref, alt.adam_after(params, "for-loop")))
    assert not all(torch.equal(a, b) for a, b in zip(ref, alt.adam_after(params, "for-loop", seed=1)))
    assert not torch.equal(ref[0], params[0])


def test_an_unknown_adam_implementation_is_named(alt):
    with pytest.raises(ValueError, match="'sparse'.*valid choices: for-loop, foreach, fused"):
        alt.adam([torch.zeros(1, requires_grad=True)], "sparse")


@pytest.mark.parametrize("argv", [["--seconds", "0"], ["--rounds", "0"]])
def test_bad_arguments_are_named(alt, argv, capsys):
    with pytest.raises(SystemExit):
        alt.main(argv)
    assert "--seconds must be positive and --rounds at least 1" in capsys.readouterr().err
