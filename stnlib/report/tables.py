"""The book's tables as pandas DataFrames, built from result records; nothing here trains or plots.

Every table keeps numbers as numbers (errors in percent, angles in degrees, shifts in pixels) so
that chapters can compute their prose from it, and carries metadata in ``DataFrame.attrs``:
``attrs["table"]`` names the kind of table (it selects the display format) and ``attrs["profile"]``
the profile(s) that produced the records. :func:`render` turns any of them into a clean HTML table
(a pandas ``Styler``) for the book.

Input shapes (as :func:`stnlib.records.load_experiment` returns them):

* ``recs``: ``{model: [record per seed]}`` for one experiment;
* ``recs_by_experiment``: ``{experiment: {model: [records]}}``.

Records with ``status != "complete"`` (diverged runs) are left out of every statistic; the
``seeds`` columns count the complete records that went into a number.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from stnlib import measures, paper
from stnlib import nn as networks
from stnlib.nn.models import loc_head_name

Records = Mapping[str, Sequence[Mapping[str, Any]]]

#: Column titles of the experiments in rendered tables.
EXPERIMENT_TITLES = {
    "mnist-rot": "Rotation",
    "mnist-trans": "Translation",
    "mnist-rot-adam": "Rotation (Adam)",
    "svhn": "SVHN",
}
#: Depths X of the paper's Table 2 (X = 0 is STN-C0 for every family).
TABLE2_DEPTHS = (0, 3, 6, 8)
TABLE2_FAMILIES = {"CX": "c", "SLX": "sl", "DLX": "dl"}
#: Where :func:`misalignment_table` reads the curves by default (|angle| in degrees, |shift| in px).
MISALIGNMENT_AT = {"rotation": (15, 45, 90), "translation": (4, 8, 16)}
ORIENTATION_STATS = ("slope", "abs_r", "pooled_class_deviation")
#: Training settings shown by :func:`settings_table`, with their display names.
SETTING_ROWS = {
    "optimizer": "optimiser",
    "lr": "learning rate",
    "momentum": "momentum",
    "weight_decay": "weight decay",
    "batch_size": "batch size",
    "iterations": "iterations",
    "lr_milestones": "lr divided after iterations",
    "lr_divisor": "lr divisor",
    "loc_lr_multiplier": "loc-net lr multiplier",
    "eval_passes": "test passes (final error)",
    "train_subset": "training images used",
    "test_subset": "test images used",
    "precision": "precision",
}


# ---------------------------------------------------------------------------------------
# helpers


def _complete(rs: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [r for r in rs if r.get("status") == "complete"]


def _profiles(recs_by_experiment: Mapping[str, Records]) -> str:
    names = sorted({str(r.get("profile")) for recs in recs_by_experiment.values()
                    for rs in recs.values() for r in rs})
    return ", ".join(names)


def _check_records(recs: Any, what: str) -> None:
    if not isinstance(recs, Mapping) or not all(
            isinstance(rs, Sequence) and not isinstance(rs, (str, bytes)) for rs in recs.values()):
        raise ValueError(
            f"{what} expects {{model: [records]}} (as records.load_experiment returns), "
            f"got {type(recs).__name__}")


def _error_columns(rs: Sequence[Mapping[str, Any]], paper_value: float | None) -> dict[str, float]:
    mean, std, n = measures.mean_std([100.0 * r["metrics"]["test_error"] for r in _complete(rs)])
    p = math.nan if paper_value is None else float(paper_value)
    return {"ours": mean, "std": std, "seeds": n, "paper": p, "diff": mean - p}


# ---------------------------------------------------------------------------------------
# Table 1 and Table 2


def table1(recs_by_experiment: Mapping[str, Records]) -> pd.DataFrame:
    """The paper's Table 1 next to ours: test error (%) per model and dataset.

    Args:
        recs_by_experiment: ``{"mnist-rot": {model: [records]}, "mnist-trans": {...}}`` (any
            experiments; those without published numbers get NaN in ``paper``).

    Returns:
        One row per model (index: model name, in order of first appearance). Columns are a
        MultiIndex ``(experiment, stat)`` with stat in ``ours`` (mean error % over complete
        seeds), ``std`` (sample std over seeds, NaN with fewer than two), ``seeds``, ``paper``
        (the published %, :mod:`stnlib.paper`) and ``diff`` (ours − paper).
        ``attrs["profile"]``: the profile(s) of the records.
    """
    if not isinstance(recs_by_experiment, Mapping) or not recs_by_experiment:
        raise ValueError("table1 expects {experiment: {model: [records]}} with at least one experiment")
    models: list[str] = []
    for exp, recs in recs_by_experiment.items():
        _check_records(recs, f"table1[{exp!r}]")
        models.extend(m for m in recs if m not in models)
    rows: dict[str, dict[tuple[str, str], float]] = {m: {} for m in models}
    for exp, recs in recs_by_experiment.items():
        for m in models:
            cols = _error_columns(recs.get(m, []), paper.paper_error(exp, m))
            rows[m].update({(exp, k): v for k, v in cols.items()})
    df = pd.DataFrame.from_dict(rows, orient="index")
    df.columns = pd.MultiIndex.from_tuples(df.columns, names=["experiment", "stat"])
    df.index.name = "model"
    df.attrs.update(table="table1", profile=_profiles(recs_by_experiment))
    return df


def paper_table1() -> pd.DataFrame:
    """The paper's Table 1 alone (error %, rows = models, columns = experiments), for display."""
    df = pd.DataFrame(paper.TABLE1_ERROR_PERCENT)
    df.index.name = "model"
    df.attrs.update(table="paper", profile="paper", source=paper.SOURCE)
    return df


def table2(recs: Records, depths: Sequence[int] = TABLE2_DEPTHS) -> pd.DataFrame:
    """The paper's Table 2 next to ours: SVHN sequence error (%) against depth X per family.

    Args:
        recs: ``{model: [records]}`` of the SVHN experiment (``stn-c0``, ``stn-c3``,
            ``stn-sl3``, ``stn-dl3``, ...; missing models give NaN and ``seeds`` 0).
        depths: the X values (rows).

    Returns:
        Index ``X``; MultiIndex columns ``(family, stat)`` with family in ``CX``, ``SLX``,
        ``DLX`` and stat in ``ours``, ``std``, ``seeds``, ``paper``, ``diff`` (as in
        :func:`table1`). The X = 0 row is STN-C0 for every family (the same model).
    """
    _check_records(recs, "table2")
    rows: dict[int, dict[tuple[str, str], float]] = {}
    for x in depths:
        row: dict[tuple[str, str], float] = {}
        for fam, key in TABLE2_FAMILIES.items():
            model = "stn-c0" if x == 0 else f"stn-{key}{x}"
            cols = _error_columns(recs.get(model, []), paper.paper_error("svhn", model))
            row.update({(fam, k): v for k, v in cols.items()})
        rows[int(x)] = row
    df = pd.DataFrame.from_dict(rows, orient="index")
    df.columns = pd.MultiIndex.from_tuples(df.columns, names=["family", "stat"])
    df.index.name = "X"
    df.attrs.update(table="table2", profile=_profiles({"svhn": recs}))
    return df


# ---------------------------------------------------------------------------------------
# orientation statistics (Figure 3)


def orientation_table(recs: Records) -> pd.DataFrame:
    """How well each STN's predicted transform undoes the applied one (end of training).

    One row per model whose records carry ``metrics.orientation`` (the plain CNN has none).
    Columns: ``slope`` (Deming fit of predicted against applied; −1 is perfect compensation),
    ``abs_r`` (|Pearson r|), ``pooled_class_deviation`` (the authors' statistic: spread of
    applied + predicted around each class's mean; degrees for rotation, pixels for
    translation), each the mean over complete seeds, and ``seeds``. For translation these are
    the means of the x and y statistics, and ``slope_x``, ``abs_r_x``, ... ``_y`` give each axis.
    ``attrs["kind"]`` is ``"rotation"`` or ``"translation"``, ``attrs["units"]`` ``"deg"`` or ``"px"``.
    """
    _check_records(recs, "orientation_table")
    rows: dict[str, dict[str, float]] = {}
    kinds = set()
    for m, rs in recs.items():
        done = [r for r in _complete(rs) if r["metrics"].get("orientation")]
        if not done:
            continue
        row: dict[str, float] = {}
        orients = [r["metrics"]["orientation"] for r in done]
        kinds.update(o["kind"] for o in orients)
        for k in ORIENTATION_STATS:
            row[k] = measures.mean_std([o[k] for o in orients])[0]
        if all(o["kind"] == "translation" for o in orients):
            for axis in ("x", "y"):
                for k in ORIENTATION_STATS:
                    row[f"{k}_{axis}"] = measures.mean_std([o[axis][k] for o in orients])[0]
        row["seeds"] = len(done)
        rows[m] = row
    if len(kinds) > 1:
        raise ValueError(f"orientation_table: records mix orientation kinds {sorted(kinds)}; "
                         "pass one experiment at a time")
    kind = kinds.pop() if kinds else "rotation"
    df = pd.DataFrame.from_dict(rows, orient="index")
    df.index.name = "model"
    df.attrs.update(table="orientation", kind=kind, units="deg" if kind == "rotation" else "px",
                    profile=_profiles({"": recs}))
    return df


def orientation_over_training(recs: Records) -> pd.DataFrame:
    """The orientation statistics at every evaluation point of training, in long form.

    Columns: ``model``, ``seed``, ``iteration``, ``epoch``, ``test_error`` (%, on the curve
    subset of the test set, one pass), ``slope``, ``abs_r``, ``pooled_class_deviation``.
    Points without orientation statistics (the plain CNN) are left out.
    """
    _check_records(recs, "orientation_over_training")
    rows = []
    for m, rs in recs.items():
        for r in _complete(rs):
            c = r["curves"]
            for i, o in enumerate(c.get("orientation", [])):
                if o is None:
                    continue
                rows.append({
                    "model": m, "seed": int(r["seed"]), "iteration": int(c["iteration"][i]),
                    "epoch": float(c["epoch"][i]), "test_error": 100.0 * c["test_error"][i],
                    **{k: float(o[k]) for k in ORIENTATION_STATS},
                })
    cols = ["model", "seed", "iteration", "epoch", "test_error", *ORIENTATION_STATS]
    df = pd.DataFrame(rows, columns=cols)
    df.attrs.update(table="orientation_curves", profile=_profiles({"": recs}))
    return df


def orientation_trend(curves: pd.DataFrame) -> pd.DataFrame:
    """Start, extreme and end of the orientation curves, per model (seeds averaged per point).

    ``curves`` is :func:`orientation_over_training`'s output (optionally with an extra key
    column such as ``optimizer``; every column other than the statistics and ``seed`` /
    ``iteration`` / ``test_error`` groups the rows). Returns per group: ``abs_r_start``,
    ``abs_r_peak``, ``abs_r_peak_epoch``, ``abs_r_end``, ``deviation_start``, ``deviation_min``,
    ``deviation_min_epoch``, ``deviation_end``, ``last_epoch``.
    """
    stats = ["abs_r", "pooled_class_deviation", "slope"]
    keys = [c for c in curves.columns if c not in (*stats, "seed", "iteration", "test_error", "epoch")]
    if curves.empty:
        return pd.DataFrame(columns=keys + ["abs_r_start"]).set_index(keys)
    mean = curves.groupby([*keys, "epoch"], sort=True)[stats].mean().reset_index()
    out = {}
    for key, g in mean.groupby(keys, sort=False):
        g = g.sort_values("epoch")
        ipk = int(np.argmax(g["abs_r"].to_numpy()))
        imn = int(np.argmin(g["pooled_class_deviation"].to_numpy()))
        out[key] = {
            "abs_r_start": g["abs_r"].iloc[0],
            "abs_r_peak": g["abs_r"].iloc[ipk],
            "abs_r_peak_epoch": g["epoch"].iloc[ipk],
            "abs_r_end": g["abs_r"].iloc[-1],
            "deviation_start": g["pooled_class_deviation"].iloc[0],
            "deviation_min": g["pooled_class_deviation"].iloc[imn],
            "deviation_min_epoch": g["epoch"].iloc[imn],
            "deviation_end": g["pooled_class_deviation"].iloc[-1],
            "last_epoch": g["epoch"].iloc[-1],
        }
    order = {k: i for i, k in enumerate(dict.fromkeys(
        curves[keys].itertuples(index=False, name=None)))}
    out = dict(sorted(out.items(), key=lambda kv: order.get(
        kv[0] if isinstance(kv[0], tuple) else (kv[0],), len(order))))
    df = pd.DataFrame.from_dict(out, orient="index")
    if len(keys) > 1:
        df.index = pd.MultiIndex.from_tuples(df.index, names=keys)
    else:
        df.index = pd.Index([k[0] if isinstance(k, tuple) else k for k in df.index], name=keys[0])
    df.attrs.update(table="orientation_trend", profile=curves.attrs.get("profile", ""))
    return df


def optimizer_table(by_optimizer: Mapping[str, Records],
                    models: Sequence[str] | None = None) -> pd.DataFrame:
    """The same models trained with different optimisers: final error and orientation statistics.

    Args:
        by_optimizer: ``{optimiser label: {model: [records]}}``, e.g.
            ``{"SGD": mnist_rot, "Adam": mnist_rot_adam}``.
        models: which models (default: those present under every optimiser, in order).

    Returns:
        Index ``(model, optimizer)``; columns ``error`` (mean %), ``error_std``, ``seeds``,
        ``epochs`` (length of training, from the curves), ``slope``, ``abs_r``,
        ``pooled_class_deviation`` (means over seeds).
    """
    if not by_optimizer:
        raise ValueError("optimizer_table expects {optimiser: {model: [records]}}, got nothing")
    for name, recs in by_optimizer.items():
        _check_records(recs, f"optimizer_table[{name!r}]")
    if models is None:
        first = next(iter(by_optimizer.values()))
        models = [m for m in first if all(m in recs for recs in by_optimizer.values())]
    rows = {}
    for m in models:
        for opt, recs in by_optimizer.items():
            if m not in recs:
                raise ValueError(f"optimizer_table: model {m!r} missing under {opt!r}; "
                                 f"it has {', '.join(recs)}")
            done = _complete(recs[m])
            err, err_sd, n = measures.mean_std([100.0 * r["metrics"]["test_error"] for r in done])
            orients = [r["metrics"]["orientation"] for r in done if r["metrics"].get("orientation")]
            row = {"error": err, "error_std": err_sd, "seeds": n,
                   "epochs": measures.mean_std([r["curves"]["epoch"][-1] for r in done])[0]}
            for k in ORIENTATION_STATS:
                row[k] = measures.mean_std([o[k] for o in orients])[0]
            rows[(m, opt)] = row
    df = pd.DataFrame.from_dict(rows, orient="index")
    df.index = pd.MultiIndex.from_tuples(df.index, names=["model", "optimizer"])
    df.attrs.update(table="optimizer", profile=_profiles(dict(by_optimizer)))
    return df


def examples_table(recs: Records) -> pd.DataFrame:
    """The transform applied to each example digit of Figure 2 and what each STN predicts for it.

    Reads ``summaries.examples`` of the first complete record of every model (all models see
    the same example digits). Rotation: columns ``(who, "angle")`` in degrees; translation:
    ``(who, "dx")`` and ``(who, "dy")`` in input pixels; ``who`` is ``"applied"`` or a model
    name; plus ``("label", "")``. A perfect canonicaliser predicts minus the applied transform
    (plus a per-class constant). Models without an ST are left out.
    """
    import torch

    from stnlib import transforms

    _check_records(recs, "examples_table")
    firsts = {m: _complete(rs)[0] for m, rs in recs.items()
              if _complete(rs) and _complete(rs)[0].get("summaries", {}).get("examples")}
    if not firsts:
        raise ValueError("examples_table: no complete record with summaries.examples")
    ex0 = next(iter(firsts.values()))["summaries"]["examples"]
    info = ex0["info"]
    cols: dict[tuple[str, str], list[float]] = {("label", ""): list(ex0["labels"])}
    if "angle_deg" in info:
        kind = "rotation"
        cols[("applied", "angle")] = [float(a) for a in info["angle_deg"]]
    elif "shift_px" in info:
        kind = "translation"
        cols[("applied", "dx")] = [float(s[0]) for s in info["shift_px"]]
        cols[("applied", "dy")] = [float(s[1]) for s in info["shift_px"]]
    else:
        raise ValueError(f"examples_table: the examples record no transform (info keys {list(info)})")
    n = len(ex0["labels"])
    for m, r in firsts.items():
        ex = r["summaries"]["examples"]
        if "theta" not in ex:
            continue
        if list(ex["labels"]) != list(ex0["labels"]):
            raise ValueError(f"examples_table: {m} shows other example digits than the first model")
        theta = torch.tensor(ex["theta"], dtype=torch.float64)
        if kind == "rotation":
            cols[(m, "angle")] = transforms.theta_rotation_deg(theta).tolist()
        else:
            # Shifts in input pixels, also for a feature-map ST (same relative displacement),
            # as the records' orientation statistics count them.
            size = tuple(ex["inputs"][0]["shape"][-2:])
            px = transforms.theta_translation_px(theta, size)
            cols[(m, "dx")], cols[(m, "dy")] = px[:, 0].tolist(), px[:, 1].tolist()
    df = pd.DataFrame(cols, index=pd.RangeIndex(n, name="example"))
    df.columns = pd.MultiIndex.from_tuples(df.columns)
    df.attrs.update(table="examples", kind=kind, profile=_profiles({"": recs}))
    return df


# ---------------------------------------------------------------------------------------
# feature-map misalignment (equation (1) as a number)


def misalignment_table(recs: Records, at: Sequence[float] | None = None) -> pd.DataFrame:
    """Feature-map misalignment read off each model's curves at a few angles (or shifts).

    The value at ``a`` is the mean of the curve's points at ``+a`` and ``−a`` (both signs of
    the rotation or diagonal shift), then the mean over complete seeds.

    Args:
        recs: ``{model: [records]}`` of one MNIST experiment (records with
            ``summaries.misalignment``).
        at: absolute angles (degrees) or shifts (pixels); default :data:`MISALIGNMENT_AT`.

    Returns:
        One row per model; MultiIndex columns ``(quantity, at)`` with quantity
        ``feature_maps`` (relative distance between the first-layer maps of the original and
        the inversely warped maps of the transformed digit) and ``after_st`` (relative
        distance between the ST outputs of the transformed and of the original digit; NaN for
        the CNN). ``attrs["kind"]``: ``"rotation"`` or ``"translation"``.
    """
    _check_records(recs, "misalignment_table")
    curves = {m: [r["summaries"]["misalignment"] for r in _complete(rs)
                  if r.get("summaries", {}).get("misalignment")] for m, rs in recs.items()}
    curves = {m: c for m, c in curves.items() if c}
    kinds = {c["kind"] for cs in curves.values() for c in cs}
    if len(kinds) > 1:
        raise ValueError(f"misalignment_table: records mix kinds {sorted(kinds)}; "
                         "pass one experiment at a time")
    kind = kinds.pop() if kinds else "rotation"
    xkey = "angle_deg" if kind == "rotation" else "shift_px"
    at = tuple(MISALIGNMENT_AT[kind] if at is None else at)
    rows: dict[str, dict[tuple[str, float], float]] = {}
    for m, cs in curves.items():
        row: dict[tuple[str, float], float] = {}
        for q in ("feature_maps", "after_st"):
            for a in at:
                per_seed = []
                for c in cs:
                    if q not in c:
                        continue
                    xs = np.abs(np.asarray(c[xkey], dtype=np.float64))
                    hit = np.isclose(xs, abs(float(a)))
                    if not hit.any():
                        raise ValueError(
                            f"misalignment_table: {m} has no point at ±{a} ({xkey}); "
                            f"available: {sorted(set(xs.tolist()))}")
                    per_seed.append(float(np.mean(np.asarray(c[q], dtype=np.float64)[hit])))
                row[(q, a)] = measures.mean_std(per_seed)[0]
        rows[m] = row
    df = pd.DataFrame.from_dict(rows, orient="index")
    if len(df.columns):
        df.columns = pd.MultiIndex.from_tuples(df.columns, names=["quantity", "at"])
    df.index.name = "model"
    df.attrs.update(table="misalignment", kind=kind, units="deg" if kind == "rotation" else "px",
                    profile=_profiles({"": recs}))
    return df


# ---------------------------------------------------------------------------------------
# the training setup


def settings_table(recs_by_experiment: Mapping[str, Records],
                   reference: tuple[str, str] | None = ("full", "mnist-rot")) -> pd.DataFrame:
    """The training settings the records were produced with, one column per experiment.

    Values come from the records' stored configs (``config["settings"]``), so the table shows
    what was actually trained; every model of an experiment must agree. Extra rows: ``seeds``
    and ``epochs`` (from the curves). ``reference`` = ``(profile, experiment)`` adds a column
    with that profile's settings (default: the ``full`` profile, which follows the paper's
    protocol), labelled ``"paper protocol"``.
    """
    from stnlib.profiles import get_experiment, settings_for

    def svhn_rows(exp: str, s: Mapping[str, Any]) -> dict[str, str]:
        if get_experiment(exp)["dataset"] != "svhn":
            return {}
        dropout = s.get("dropout")
        return {"network width": f"×{s['width']:g}",
                "dropout": _show_setting(0.5 if dropout is None else dropout)}

    def n_train(exp: str, s: Mapping[str, Any]) -> int:
        if get_experiment(exp)["dataset"] != "svhn":
            return s.get("train_subset") or 60_000
        from stnlib.data.svhn import SPLIT_SOURCES, SVHN_ARCHIVES

        return s.get("svhn_n_train") or sum(SVHN_ARCHIVES[a].n_images for a in SPLIT_SOURCES["train"])

    cols: dict[str, dict[str, Any]] = {}
    for exp, recs in recs_by_experiment.items():
        _check_records(recs, f"settings_table[{exp!r}]")
        done = [r for rs in recs.values() for r in _complete(rs)]
        if not done:
            continue
        settings = [r["config"]["settings"] for r in done]
        for k in SETTING_ROWS:
            vals = {repr(s.get(k)) for s in settings}
            if len(vals) > 1:
                raise ValueError(f"settings_table: the {exp} records disagree on {k!r}: {sorted(vals)}")
        col = {SETTING_ROWS[k]: _show_setting(settings[0].get(k)) for k in SETTING_ROWS}
        col["seeds"] = ", ".join(str(s) for s in sorted({int(r["seed"]) for r in done}))
        col["epochs"] = _show_setting(round(float(np.mean([r["curves"]["epoch"][-1] for r in done])), 2))
        col.update(svhn_rows(exp, settings[0]))
        cols[exp] = col
    if reference is not None:
        prof, exp = reference
        s = settings_for(prof, exp).to_dict()
        col = {SETTING_ROWS[k]: _show_setting(s.get(k)) for k in SETTING_ROWS}
        from stnlib.profiles import seeds_for

        col["seeds"] = ", ".join(str(x) for x in seeds_for(prof, exp))
        col["epochs"] = _show_setting(round(s["iterations"] * s["batch_size"] / n_train(exp, s), 1))
        col.update(svhn_rows(exp, s))
        cols["paper protocol"] = col
    df = pd.DataFrame(cols)
    df.index.name = "setting"
    df.attrs.update(table="settings", profile=_profiles(recs_by_experiment))
    return df


def design_table(experiments: Sequence[str] = ("mnist-rot", "mnist-trans")) -> pd.DataFrame:
    """The choices the paper leaves open, as this library makes them, per dataset.

    Rows: input normalisation (mean, std), localisation head, ST padding mode, ST output size,
    and the parameter count of every model. Read from the code (:mod:`stnlib.data`,
    :func:`stnlib.nn.build`), not typed in.
    """
    from stnlib import data
    from stnlib.datasets import DATASETS
    from stnlib.profiles import get_experiment

    cols: dict[str, dict[str, str]] = {}
    for exp in experiments:
        ds = get_experiment(exp)["dataset"]
        col: dict[str, str] = {}
        mean, std = data.NORMALIZATION[ds]
        col["input normalisation (mean, std)"] = f"{mean}, {std}"
        c0 = networks.build("stn-c0", ds)
        col["localisation head"] = loc_head_name(ds)
        col["ST padding"] = str(c0.st.padding_mode)
        col["input (C×H×W)"] = "×".join(map(str, DATASETS[ds].input_shape))
        col["ST output of C0, SL1, DL1 / of C1"] = (
            f"{_st_output_shape(c0, ds)} / {_st_output_shape(networks.build('stn-c1', ds), ds)}")
        for m in get_experiment(exp)["models"]:
            n = sum(p.numel() for p in networks.build(m, ds).parameters())
            col[f"parameters, {m}"] = f"{n:,}"
        cols[EXPERIMENT_TITLES.get(exp, exp)] = col
    df = pd.DataFrame(cols)
    df.index.name = "choice"
    df.attrs.update(table="design", profile="")
    return df


def _st_output_shape(model: Any, dataset: str) -> str:
    # What the ST hands on (C×H×W), from a dry run: the warped image or the warped feature maps.
    import torch

    from stnlib.datasets import DATASETS

    with torch.no_grad():
        out, _ = model.transform(torch.zeros(1, *DATASETS[dataset].input_shape))
    return "×".join(str(n) for n in out.shape[1:])


def _show_setting(v: Any) -> str:
    if v is None:  # the subset fields: None means the whole split
        return "all"
    if isinstance(v, (list, tuple)):
        return ", ".join(str(x) for x in v) if v else "none"
    if isinstance(v, float) and v.is_integer() and abs(v) >= 1:
        return str(int(v))
    return str(v)
