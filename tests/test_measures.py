import math

import numpy as np
import pytest

from stnlib import measures


def test_deming_recovers_an_exact_line():
    x = np.linspace(-90, 90, 50)
    slope, intercept = measures.deming_fit(x, -x + 3.0)
    assert slope == pytest.approx(-1.0, abs=1e-12)
    assert intercept == pytest.approx(3.0, abs=1e-9)


def test_deming_is_symmetric_unlike_least_squares():
    rng = np.random.default_rng(0)
    x = rng.normal(size=4000)
    y = 2 * x + rng.normal(scale=0.5, size=4000)
    s_xy, _ = measures.deming_fit(x, y)
    s_yx, _ = measures.deming_fit(y, x)
    # Orthogonal regression: swapping the axes inverts the slope exactly.
    assert s_xy * s_yx == pytest.approx(1.0, rel=1e-9)


def test_pooled_class_deviation_zero_for_perfect_canonicalisation():
    applied = np.array([10.0, -20.0, 30.0, 5.0])
    labels = np.array([0, 0, 1, 1])
    consts = np.array([7.0, 7.0, -3.0, -3.0])
    assert measures.pooled_class_deviation(applied, consts - applied, labels) == pytest.approx(0.0)


def test_pooled_class_deviation_of_an_st_that_does_nothing():
    rng = np.random.default_rng(1)
    applied = rng.uniform(-90, 90, size=20000)
    labels = rng.integers(0, 10, size=20000)
    dev = measures.pooled_class_deviation(applied, np.zeros_like(applied), labels)
    assert dev == pytest.approx(90 / math.sqrt(3), rel=0.02)


def test_orientation_stats_of_a_perfect_st():
    applied = np.linspace(-90, 90, 101)
    st = measures.orientation_stats(applied, -applied, np.zeros(101, dtype=int))
    assert st["slope"] == pytest.approx(-1)
    assert st["r"] == pytest.approx(-1)
    assert st["abs_r"] == pytest.approx(1)


def test_sparse_histogram_roundtrip_keeps_every_example():
    rng = np.random.default_rng(2)
    x = rng.uniform(-150, 150, 1000)  # some outside the range: clipped into edge bins
    y = rng.uniform(-100, 100, 1000)
    h = measures.sparse_histogram2d(x, y, 55, 110.0)
    dense = measures.dense_histogram2d(h)
    assert dense.shape == (55, 55)
    assert dense.sum() == 1000
    assert dense[0].sum() == np.sum(x < -110 + 4)  # leftmost bin [-110, -106) plus clipped


def test_wrap_degrees():
    np.testing.assert_allclose(measures.wrap_degrees([190, -190, 180, 0]), [-170, 170, -180, 0])


def test_mean_std():
    m1, s1, n1 = measures.mean_std([1.0])
    assert (m1, n1) == (1.0, 1) and math.isnan(s1)  # one value: no spread measured
    m, s, n = measures.mean_std([1.0, 3.0, None, math.nan])  # missing values are skipped
    assert n == 2
    assert m == 2.0 and s == pytest.approx(math.sqrt(2))
