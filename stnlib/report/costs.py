"""What the study cost: measured training time per chapter, and what the ``full`` profile would cost.

Everything here is read from records (their provenance holds wall time, device and data source) and
from committed GPU probes under ``benchmarks/results``; nothing is estimated from assumptions.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from stnlib import records
from stnlib.nn import display_name
from stnlib.paths import benchmark_results_root
from stnlib.profiles import EXPERIMENTS, EXTENSION_MODELS, get_profile, seeds_for

#: Which chapter trains which models of which experiment (for the cost table).
_CHAPTER_RUNS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("mnist", "mnist-rot", EXPERIMENTS["mnist-rot"]["models"]),
    ("mnist", "mnist-trans", EXPERIMENTS["mnist-trans"]["models"]),
    ("mnist", "mnist-rot-adam", EXPERIMENTS["mnist-rot-adam"]["models"]),
    ("svhn", "svhn", EXPERIMENTS["svhn"]["models"]),
    ("beyond", "mnist-rot", EXTENSION_MODELS.get("mnist-rot", ())),
)


def cost_table(profiles: str | Sequence[str], *, records_root: str | Path | None = None):
    """Measured training cost per chapter, experiment and profile, from record provenance.

    One row per (profile, chapter, experiment) with at least one record: runs, failed runs, wall
    time (sum over runs, seconds), device(s) and data source(s); then one total row per profile.
    Reads whatever records exist for the profiles' seeds; trains nothing.
    """
    import pandas as pd

    profiles = [profiles] if isinstance(profiles, str) else list(profiles)
    columns = ["profile", "chapter", "experiment", "runs", "failed", "models", "wall time (s)",
               "device", "data"]
    rows = []
    for profile in profiles:
        prof_rows = []
        for chapter, exp, models in _CHAPTER_RUNS:
            recs = [rec for model in models for seed in seeds_for(profile, exp, model)
                    if (rec := records.load_record(exp, model, profile, seed, root=records_root)) is not None]
            if not recs:
                continue
            prov = [r["provenance"] for r in recs]
            prof_rows.append({
                "profile": profile, "chapter": chapter, "experiment": exp, "runs": len(recs),
                "failed": sum(r["status"] != "complete" for r in recs),
                "models": ", ".join(dict.fromkeys(display_name(r["model"]) for r in recs)),
                "wall time (s)": round(sum(float(p.get("wall_time_s", 0.0)) for p in prov), 1),
                "device": "; ".join(sorted({str(p.get("device", "unknown")) for p in prov})),
                "data": "; ".join(sorted({str(p.get("data_source", "unknown")) for p in prov})),
            })
        if prof_rows:
            devices = sorted({d for r in prof_rows for d in r["device"].split("; ")})
            prof_rows.append({
                "profile": profile, "chapter": "all", "experiment": "total",
                "runs": sum(r["runs"] for r in prof_rows), "failed": sum(r["failed"] for r in prof_rows),
                "models": "", "wall time (s)": round(sum(r["wall time (s)"] for r in prof_rows), 1),
                "device": "; ".join(devices), "data": "",
            })
        rows.extend(prof_rows)
    return pd.DataFrame(rows, columns=columns)


#: Where GPU probes of the full profile are committed (``benchmarks/gpu_check.sh`` writes them).
GPU_RESULTS = benchmark_results_root()


def full_profile_estimate(results_root: str | Path | None = None):
    """What one run of the ``full`` profile costs on a GPU, from committed probe measurements.

    Reads every ``full_probe.jsonl`` under ``results_root`` (default :data:`GPU_RESULTS`): short
    runs of the full profile's settings (``benchmarks/calibrate.py --profile full``), each with its
    measured training throughput (img/s, evaluation excluded) and device. Returns one row per probe:
    device, experiment, model, the probe's length, its img/s, and the time 150k iterations of batch
    256 would take at that rate (training only; the full profile's periodic evaluations add a few
    percent). Empty when no probe was committed.
    """
    import pandas as pd

    from stnlib.profiles import settings_for
    from stnlib.runs import read_probes

    rows = []
    for path, probe in read_probes(results_root if results_root is not None else GPU_RESULTS):
        s = settings_for("full", probe["experiment"])
        ips = float(probe["train_images_per_s"])
        rows.append({
            "device": probe["device"], "experiment": probe["experiment"], "model": display_name(probe["model"]),
            "probe (epochs)": probe["epochs"], "training img/s": round(ips),
            "est. minutes per full run": round(s.iterations * s.batch_size / ips / 60, 1),
            "source": f"{path.parent.name}/{path.name}",
        })
    return pd.DataFrame(rows, columns=["device", "experiment", "model", "probe (epochs)", "training img/s",
                                       "est. minutes per full run", "source"])


def cost_sentence(costs, profile: str) -> str:
    """One sentence on what ``profile``'s training cost in total (from :func:`cost_table`'s total row)."""
    from stnlib.report.display import format_duration

    mine = costs[(costs["profile"] == profile) & (costs["experiment"] == "total")]
    if not len(mine):
        return f"No result records exist for the `{profile}` profile, so there is nothing to cost."
    row = mine.iloc[0]
    failed = f"; {row['failed']} of them failed" if row["failed"] else ""
    return (f"In the `{profile}` profile, {row['runs']} training runs took {format_duration(row['wall time (s)'])} "
            f"of training in total on {row['device']}{failed} (the sum of the records' wall times).")


def full_estimate_sentence(estimate) -> str:
    """What :func:`full_profile_estimate`'s rows say about the whole ``full`` profile, and which of its
    experiments no probe measured (so the estimate does not cover them)."""
    runs = {exp: len(e["models"]) * len(get_profile("full").seeds) for exp, e in EXPERIMENTS.items()}
    total = sum(runs.values())
    if not len(estimate):
        return (f"The `full` profile has {total} runs; no GPU probe of its settings is committed, so its cost "
                "is not estimated here.")
    probed = sorted(set(estimate["experiment"]))
    unprobed = [e for e in runs if e not in probed]
    low, high = estimate["est. minutes per full run"].min(), estimate["est. minutes per full run"].max()
    span = f"{low:g}" if low == high else f"{low:g} to {high:g}"
    text = (f"The `full` profile has {total} runs ({len(get_profile('full').seeds)} seeds of every model). The "
            f"probes put one run of {', '.join(probed)} at {span} minutes of GPU training on "
            f"{'; '.join(sorted(set(estimate['device'])))}.")
    if unprobed:
        text += (f" No probe measured {', '.join(unprobed)} with the full settings, so the table says nothing "
                 "about their cost.")
    return text
