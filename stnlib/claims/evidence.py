"""What the records of one profile say: the numbers claims are judged on, read once and never trained.

:class:`Evidence` reads the records of a profile (every seed of the profile, under a records root)
and turns them into :class:`~stnlib.claims.stats.Estimate` s: test errors in percent, orientation
statistics, how much the test error still fell over the last fifth of training. Standard errors use
the measured noise floors described in :mod:`stnlib.claims.stats`.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stnlib import records
from stnlib.claims.stats import Estimate, estimate, sampling_floor_pct
from stnlib.profiles import get_profile, seeds_for
from stnlib.train import build_config

#: Orientation statistics a claim may use (keys of ``metrics.orientation`` in a record).
ORIENTATION_STATS: tuple[str, ...] = ("slope", "abs_r", "r", "pooled_class_deviation")
#: The last part of training over which the test error must have stopped falling.
LAST_PART = 0.2


def metric(rec: Mapping[str, Any], *keys: str) -> Any:
    """``rec["metrics"][k1][k2]...``; a missing entry is a malformed record (:class:`RecordError`)."""
    value: Any = rec.get("metrics")
    for key in keys:
        if not isinstance(value, Mapping) or key not in value:
            where = f"{rec.get('experiment')}/{rec.get('model')} ({rec.get('profile')}, seed {rec.get('seed')})"
            raise records.RecordError(f"record {where} has no metrics.{'.'.join(keys)}; it is malformed or from "
                                      "an older stnlib: retrain it")
        value = value[key]
    return value


def late_drop_pct(rec: Mapping[str, Any], part: float = LAST_PART) -> float:
    """How far the learning curve's test error fell over the last ``part`` of training (percentage points).

    The curve point nearest to ``(1 − part)`` of the iterations against the last one; positive means the
    error was still falling.
    """
    its = rec["curves"].get("iteration") or []
    errs = rec["curves"].get("test_error") or []
    if len(its) < 2 or len(errs) != len(its):
        raise records.RecordError(f"record {rec.get('experiment')}/{rec.get('model')} has no learning curve")
    target = (1.0 - part) * its[-1]
    i = min(range(len(its)), key=lambda j: abs(its[j] - target))
    return 100.0 * (errs[i] - errs[-1])


@dataclass
class RunsOf:
    """The records of one (experiment, model) in a profile, by what state they are in."""

    complete: list[dict[str, Any]] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    stale: list[int] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)


class Evidence:
    """The records of one profile (read lazily, once) and the estimates claims are judged on."""

    def __init__(self, profile: str, root: str | Path | None = None) -> None:
        self.profile = profile
        self.seeds = get_profile(profile).seeds
        self.root = root
        self._runs: dict[tuple[str, str], RunsOf] = {}

    # ----- records

    def runs(self, experiment: str, model: str) -> RunsOf:
        key = (experiment, model)
        if key not in self._runs:
            out = RunsOf()
            for seed in seeds_for(self.profile, experiment, model):
                rec = records.load_record(experiment, model, self.profile, seed, root=self.root)
                if rec is None:
                    out.missing.append(seed)
                elif rec["status"] != "complete":
                    out.failed.append(seed)
                else:
                    metric(rec, "test_error")
                    out.complete.append(rec)
                    if rec["config_hash"] != records.config_hash(build_config(experiment, model, self.profile, seed)):
                        out.stale.append(seed)
            self._runs[key] = out
        return self._runs[key]

    def records(self, experiment: str, model: str) -> list[dict[str, Any]]:
        return self.runs(experiment, model).complete

    def n_seeds(self, needs: Sequence[tuple[str, str]]) -> int:
        """The fewest complete seeds of any (experiment, model) in ``needs``."""
        return min((len(self.records(e, m)) for e, m in needs), default=0)

    def data_source(self, experiment: str, model: str) -> str:
        return "; ".join(sorted({str(r["provenance"].get("data_source", "unknown"))
                                 for r in self.records(experiment, model)}))

    # ----- estimates

    def _values(self, experiment: str, model: str, stat: str) -> list[float]:
        recs = self.records(experiment, model)
        if stat == "error":
            return [100.0 * float(metric(r, "test_error")) for r in recs]
        if stat == "late_drop":
            return [late_drop_pct(r) for r in recs]
        return [float(metric(r, "orientation", stat)) for r in recs]

    def measured_floor(self, experiment: str, stat: str, models: Sequence[str]) -> tuple[float, str]:
        """The largest seed spread of ``stat`` among ``models`` of ``experiment`` (in this profile, else
        in the committed ``quick`` records), and a note saying where it was measured."""
        sources = [self] if self.profile == "quick" else [self, Evidence("quick", self.root)]
        for source in sources:
            spreads = [(statistics.stdev(source._values(experiment, m, stat)), m)
                       for m in models if len(source.records(experiment, m)) > 1]
            if spreads:
                sd, model = max(spreads)
                return sd, f"measured floor: {model} seed spread in {source.profile} ({sd:.3g})"
        return 0.0, ""

    def estimate(self, experiment: str, model: str, stat: str, *, peers: Sequence[str] = ()) -> Estimate:
        """``stat`` (``"error"`` in %, ``"late_drop"`` in pp, or an orientation statistic) of one model.

        The floor is the largest seed spread among ``peers`` (default: the model alone) of the same
        experiment; a test error's floor is also never below its sampling error.
        """
        values = self._values(experiment, model, stat)
        floor, source = self.measured_floor(experiment, stat, tuple(peers) or (model,))
        if stat == "error":
            recs = self.records(experiment, model)
            sampling = statistics.fmean(
                sampling_floor_pct(float(metric(r, "test_error")), int(r["metrics"].get("test_examples") or 0),
                                   [float(v) for v in r["metrics"].get("test_error_passes") or ()]) for r in recs)
            if sampling > floor:
                floor, source = sampling, f"sampling floor of the test error ({sampling:.3g} pp)"
        return estimate(values, floor=floor, floor_source=source)

    def caveats(self, needs: Sequence[tuple[str, str]]) -> list[str]:
        """What limits a verdict built on ``needs``: few seeds, stale records, the SVHN stand-in."""
        out = []
        if self.profile == "smoke":
            out.append("smoke profile: a few iterations on a subset, a code-path check; its numbers mean nothing")
        seeds = self.n_seeds(needs)
        wanted = min(len(seeds_for(self.profile, e, m)) for e, m in needs) if needs else len(self.seeds)
        if 0 < seeds < wanted:
            out.append(f"only {seeds} of the profile's {wanted} seeds are complete")
        pinned: dict[str, list[str]] = {}
        for e, m in needs:
            if pin := get_profile(self.profile).pin(e, m):
                pinned.setdefault(e, []).extend(["every model"] if pin.models is None else [m])
        if pinned:
            what = "; ".join(f"{e} ({', '.join(dict.fromkeys(ms))})" for e, ms in pinned.items())
            out.append(f"kept at the profile's earlier protocol, not retrained at its current schedules: {what}")
        stale = [f"{e}/{m}" for e, m in needs if self.runs(e, m).stale]
        if stale:
            out.append(f"stale record(s), config differs from the current {self.profile} profile: {', '.join(stale)}")
        if any(e == "svhn" for e, _ in needs):
            srcs = sorted({self.data_source(e, m) for e, m in needs if e == "svhn"})
            if any("synthetic" in s for s in srcs):
                out.append("SVHN data: the synthetic stand-in, not real SVHN; absolute errors are not comparable "
                           "with the paper's")
        return out
