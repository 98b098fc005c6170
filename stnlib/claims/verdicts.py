"""The words a verdict can be, and what one verdict carries.

**Empirical claims** (about trained networks) get one of :data:`EMPIRICAL`:

* ``reproduced``: every part of the claim holds beyond noise, on at least three seeds, in the regime
  the claim is about;
* ``indicated``: the same, or some parts, with fewer than three seeds: a direction, not a verdict;
* ``partly reproduced``: some parts hold and none goes the wrong way (three seeds or more);
* ``not reproduced``: a part goes the wrong way beyond noise;
* ``inconclusive (within noise)``: nothing is decided either way;
* ``regime not reached``: a regime check failed (it is named); the data are shown, not judged;
* ``not run in this profile``: a record the claim needs does not exist.

**Exact claims** (constructions checked to float precision) hold or fail (:data:`EXACT`); they are
reported apart and never counted with the empirical ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from stnlib.claims.stats import HOLDS, MIN_SEEDS, NOISE, REVERSED, Comparison

REPRODUCED = "reproduced"
INDICATED = "indicated"
PARTLY = "partly reproduced"
NOT_REPRODUCED = "not reproduced"
INCONCLUSIVE = "inconclusive (within noise)"
REGIME = "regime not reached"
NOT_RUN = "not run in this profile"
EMPIRICAL: tuple[str, ...] = (REPRODUCED, INDICATED, PARTLY, NOT_REPRODUCED, INCONCLUSIVE, REGIME, NOT_RUN)

HOLDS_EXACTLY = "holds exactly"
FAILS_EXACTLY = "fails"
EXACT: tuple[str, ...] = (HOLDS_EXACTLY, FAILS_EXACTLY, NOT_RUN)


def combine(comparisons: tuple[Comparison, ...] | list[Comparison]) -> str:
    """All hold → reproduced; any reversed → not reproduced; some hold → partly; all noise → inconclusive.

    (Before the seed count is applied: see :func:`with_seeds`.)
    """
    outcomes = [c.outcome for c in comparisons]
    if not outcomes:
        raise ValueError("a claim needs at least one comparison")
    if REVERSED in outcomes:
        return NOT_REPRODUCED
    if all(o == HOLDS for o in outcomes):
        return REPRODUCED
    if HOLDS in outcomes:
        return PARTLY
    assert all(o == NOISE for o in outcomes)
    return INCONCLUSIVE


def with_seeds(verdict: str, seeds: int) -> str:
    """With fewer than :data:`MIN_SEEDS` seeds a positive verdict is at most "indicated"."""
    if seeds < MIN_SEEDS and verdict in (REPRODUCED, PARTLY):
        return INDICATED
    return verdict


@dataclass(frozen=True)
class Judgement:
    """What a claim's rule concludes from the evidence, before regime and seed count are applied."""

    verdict: str
    ours: str
    comparisons: tuple[Comparison, ...] = ()
    notes: tuple[str, ...] = ()
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def evidence(self) -> str:
        return "; ".join([c.describe() for c in self.comparisons] + list(self.notes))


@dataclass(frozen=True)
class Verdict:
    """The verdict on one claim in one profile, with everything behind it."""

    claim_id: str
    profile: str
    verdict: str
    ours: str
    evidence: str
    seeds: int = 0
    regime: tuple[Any, ...] = ()  # RegimeResult, checked in order
    caveats: tuple[str, ...] = ()
    values: dict[str, Any] = field(default_factory=dict)
    comparisons: tuple[Comparison, ...] = ()

    def __post_init__(self) -> None:
        if self.verdict not in EMPIRICAL + EXACT:
            raise ValueError(f"unknown verdict {self.verdict!r}; valid verdicts: {', '.join(EMPIRICAL + EXACT)}")

    @property
    def failed_checks(self) -> tuple[Any, ...]:
        return tuple(r for r in self.regime if not r.passed)
