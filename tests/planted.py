"""Planted result records: records written by hand with chosen errors and statistics, so that a rule
or a sentence can be fed data that shows the paper's effect, the opposite, or an unconverged run."""

from __future__ import annotations

from stnlib import records
from stnlib.train import build_config

PROFILE = "full"  # three seeds
SEEDS = (0, 1, 2)
ROT = ("cnn", "stn-c0", "stn-c1", "stn-sl1", "stn-dl1")


def make_record(experiment: str, model: str, error_pct: float, *, seed: int = 0, slope: float | None = None,
                abs_r: float | None = None, dev: float = 30.0, late_drop_pp: float = 0.0, n: int = 10_000,
                source: str = "MNIST (planted)", profile: str = PROFILE) -> dict:
    """A record with the given final test error (%), orientation statistics and late fall of the curve."""
    cfg = build_config(experiment, model, profile, seed)
    p = error_pct / 100.0
    metrics: dict = {"test_error": p, "test_error_passes": [p, p], "test_examples": n, "parameters": 1000}
    if slope is not None:
        r = abs_r if abs_r is not None else min(1.0, abs(slope) + 0.3)
        metrics["orientation"] = {"kind": "rotation", "slope": slope, "intercept": 0.0, "r": -r, "abs_r": r,
                                  "pooled_class_deviation": dev}
    iters = [0, 200, 400, 600, 800, 1000]
    errs = [0.9, 0.2, 0.1, 0.05, p + late_drop_pp / 100.0, p]
    return {
        "schema": records.SCHEMA, "experiment": experiment, "model": model, "profile": profile, "seed": seed,
        "status": "complete", "config": cfg, "config_hash": records.config_hash(cfg), "metrics": metrics,
        "curves": {"iteration": iters, "epoch": [i / 200 for i in iters], "test_error": errs,
                   "orientation": [None] * len(iters)},
        "summaries": {},
        "provenance": {"git_commit": "abc", "git_dirty": False, "device": "cpu: planted", "wall_time_s": 10.0,
                       "date": "2026-01-01T00:00:00+00:00", "data_source": source},
    }


def plant(root, experiment: str, model: str, error_pct: float, *, seeds=SEEDS, jitter: float = 0.02, **kw) -> None:
    """Records of ``seeds`` whose errors spread by ``jitter`` pp around ``error_pct`` (a measured seed spread)."""
    for i, seed in enumerate(seeds):
        records.write_record(make_record(experiment, model, error_pct + jitter * (i - 1), seed=seed, **kw), root)
