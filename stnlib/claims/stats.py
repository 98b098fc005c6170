"""The statistics behind a verdict: estimates over seeds, signed comparisons, and how they combine.

A number a claim uses (a test error, an orientation statistic) is an :class:`Estimate`: the mean
over a model's seeds with a standard error. The standard error comes from measurement, never from
assumption:

* the seed spread of the model itself, ``sd / √k``, when it has at least two seeds;
* never below the **measured floor** of that statistic: the largest seed spread of any model of the
  same experiment in the same profile (or, where the profile has no repeated seeds at all, in the
  committed ``quick`` records, which then are cited); two trainings of one network differ at least
  that much;
* for a test error, never below its sampling error either (binomial on the test examples, or the
  spread over the resampled test passes).

A :class:`Comparison` is a difference signed so that a positive value is the paper's direction. It
*holds* beyond ``K_SIGMA`` combined standard errors, is *reversed* below minus that, and is *within
noise* in between; with no measured noise at all it cannot be decided (*within noise*).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

#: A comparison is decided beyond this many combined standard errors.
K_SIGMA = 2.0
#: Seeds needed before a trained claim can be "reproduced" (with fewer it is at most "indicated").
MIN_SEEDS = 3

HOLDS, REVERSED, NOISE = "holds", "reversed", "within noise"


@dataclass(frozen=True)
class Estimate:
    """One model's number over its seeds: mean, standard error, the values, and where the SE came from."""

    mean: float
    se: float
    values: tuple[float, ...]
    se_source: str

    @property
    def n_seeds(self) -> int:
        return len(self.values)

    @property
    def sd(self) -> float:
        return statistics.stdev(self.values) if len(self.values) > 1 else math.nan

    def show(self, digits: int = 2, unit: str = "") -> str:
        """``"1.62 ± 0.05%"`` (mean ± seed sd) or ``"1.62%"`` with one seed."""
        sd = self.sd
        body = f"{self.mean:.{digits}f}" + ("" if math.isnan(sd) else f" ± {sd:.{digits}f}")
        return body + unit


def estimate(values: Sequence[float], *, floor: float = 0.0, floor_source: str = "") -> Estimate:
    """The mean of ``values`` with the standard error ``max(sd, floor) / √k`` (``floor`` when k = 1).

    ``floor`` is a measured spread of one training run (see the module docstring); with no seed
    spread and no floor the standard error is NaN: the noise is unknown.
    """
    k = len(values)
    if k == 0:
        raise ValueError("no values to estimate from")
    mean = statistics.fmean(values)
    sd = statistics.stdev(values) if k > 1 else math.nan
    if k > 1 and not (sd < floor):
        return Estimate(mean, sd / math.sqrt(k), tuple(values), f"seed spread over {k} seeds")
    if floor > 0:
        return Estimate(mean, floor / math.sqrt(k), tuple(values), floor_source or "measured floor")
    return Estimate(mean, math.nan, tuple(values), "noise not measured")


@dataclass(frozen=True)
class Comparison:
    """A signed difference (``diff > 0`` = the paper's direction), its standard error and outcome."""

    label: str
    diff: float
    se: float
    unit: str = ""

    @property
    def margin(self) -> float:
        """The decision margin ``K_SIGMA · se`` (NaN when the noise is unknown)."""
        return K_SIGMA * self.se

    @property
    def outcome(self) -> str:
        if math.isnan(self.se):
            return NOISE
        if self.diff > self.margin:
            return HOLDS
        if self.diff < -self.margin:
            return REVERSED
        return NOISE

    def describe(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        margin = "noise not measured" if math.isnan(self.se) else f"margin ±{self.margin:.2f}"
        return f"{self.label}: {self.diff:+.2f}{unit} ({margin}) → {self.outcome}"


def difference(label: str, plus: Sequence[Estimate], minus: Sequence[Estimate], unit: str = "") -> Comparison:
    """``sum(plus) − sum(minus)`` with the combined standard error of every term."""
    d = sum(e.mean for e in plus) - sum(e.mean for e in minus)
    se = math.sqrt(sum(e.se ** 2 for e in (*plus, *minus)))
    return Comparison(label, d, se, unit)


def threshold(label: str, value: Estimate, bound: float, *, below: bool, unit: str = "") -> Comparison:
    """Whether ``value`` lies beyond ``bound`` (below it if ``below``), as a signed comparison."""
    diff = bound - value.mean if below else value.mean - bound
    return Comparison(f"{label} {'below' if below else 'above'} {bound:g}", diff, value.se, unit)


def sampling_floor_pct(error: float, n: int, passes: Sequence[float] = ()) -> float:
    """Sampling noise of one test error (in percent): binomial on ``n`` examples, or the pass spread."""
    if n <= 0:
        raise ValueError(f"a test error needs a positive number of test examples, got {n}")
    p = min(max(error, 1.0 / n), 1.0 - 1.0 / n)  # an error of exactly 0 still has sampling noise
    binomial = 100.0 * math.sqrt(p * (1.0 - p) / n)
    pass_sd = 100.0 * statistics.stdev(passes) if len(passes) >= 2 else 0.0
    return max(binomial, pass_sd)
