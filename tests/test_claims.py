"""Tests of stnlib.claims: every verdict branch on hand-built records, and the committed records."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from stnlib import claims, paths, records
from stnlib.claims import INCONCLUSIVE, NOT_REPRODUCED, NOT_RUN, PARTLY, REPRODUCED
from stnlib.train import build_config

MNIST_SOURCE = "MNIST (test stand-in string)"
SVHN_SYNTH = "synthetic SVHN-like stand-in (not real SVHN)"


def make_record(experiment: str, model: str, error_pct: float, *, profile: str = "quick", seed: int = 0,
                n: int = 10_000, passes: list[float] | None = None, orient: tuple[float, float] | None = None,
                r_sign: float = -1.0, source: str | None = None, status: str = "complete",
                wall: float = 10.0) -> dict:
    """A record in the stnlib.record/1 schema with the given test error (%) and orientation (|r|, dev°)."""
    cfg = build_config(experiment, model, profile, seed)
    p = error_pct / 100.0
    metrics: dict = {
        "test_error": p,
        # a spread far below the binomial SE, so the binomial floor decides
        "test_error_passes": passes if passes is not None else [p - 1e-5, p + 1e-5],
        "test_examples": n,
        "parameters": 1000,
    }
    if orient is not None:
        abs_r, dev = orient
        metrics["orientation"] = {"kind": "rotation", "slope": r_sign * abs_r, "intercept": 0.0,
                                  "r": r_sign * abs_r, "abs_r": abs_r, "pooled_class_deviation": dev}
    if source is None:
        source = SVHN_SYNTH if experiment == "svhn" else MNIST_SOURCE
    return {
        "schema": records.SCHEMA, "experiment": experiment, "model": model, "profile": profile,
        "seed": seed, "status": status, "config": cfg, "config_hash": records.config_hash(cfg),
        "metrics": metrics if status == "complete" else {"error_message": "diverged"},
        "curves": {}, "summaries": {},
        "provenance": {"git_commit": "abc", "git_dirty": False, "stnlib_version": "0", "torch_version": "0",
                       "python_version": "3.11", "device": "cpu: test", "wall_time_s": wall,
                       "date": "2026-01-01T00:00:00+00:00", "data_source": source},
    }


def put(root: Path, *args, **kwargs) -> dict:
    rec = make_record(*args, **kwargs)
    records.atomic_write_json(
        records.record_path(rec["experiment"], rec["model"], rec["profile"], rec["seed"], root=root), rec)
    return rec


def verdict(claim_id: str, root: Path, profile: str = "quick") -> claims.Verdict:
    return claims.get_claim(claim_id).evaluate(profile, records_root=root)


# --------------------------------------------------------------------------- noise model


def test_error_floor_is_the_binomial_standard_error():
    rec = make_record("mnist-rot", "stn-c0", 2.0)
    assert claims._error_floor(rec) == pytest.approx(100 * math.sqrt(0.02 * 0.98 / 10_000), rel=1e-12)


def test_error_floor_uses_the_pass_spread_when_larger():
    rec = make_record("mnist-rot", "stn-c0", 2.0, passes=[0.01, 0.03])
    assert claims._error_floor(rec) == pytest.approx(100 * math.sqrt(2) * 0.01, rel=1e-12)


def test_several_seeds_use_the_standard_error_of_the_mean():
    est = claims._estimate([1.0, 1.2, 1.4], [0.01, 0.01, 0.01])
    assert est.mean == pytest.approx(1.2)
    assert est.se == pytest.approx(0.2 / math.sqrt(3))
    assert est.se_source == "seeds"
    # a seed spread below the floor is replaced by the floor
    low = claims._estimate([1.0, 1.0], [0.5, 0.5])
    assert low.se == pytest.approx(0.5 / math.sqrt(2)) and low.se_source == "floor"
    one = claims._estimate([1.0], [0.3])
    assert one.se == 0.3 and one.n_seeds == 1


@pytest.mark.parametrize("diff, se, outcome", [(1.0, 0.4, "holds"), (0.8, 0.4, "within noise"),
                                               (-0.81, 0.4, "reversed"), (0.0, 0.0, "within noise")])
def test_comparison_outcome(diff, se, outcome):
    assert claims.Comparison("x", diff, se).outcome == outcome


# --------------------------------------------------------------------------- MNIST error claims


@pytest.mark.parametrize("c1, c0, sl1, expected", [
    (2.0, 1.0, 1.0, REPRODUCED),
    (1.0, 1.0, 1.0, INCONCLUSIVE),
    (1.0, 2.0, 2.0, NOT_REPRODUCED),
    (2.0, 1.0, 2.0, PARTLY),
])
def test_c1_worse_under_rotation(tmp_path, c1, c0, sl1, expected):
    for model, err in (("stn-c0", c0), ("stn-c1", c1), ("stn-sl1", sl1)):
        put(tmp_path, "mnist-rot", model, err)
    v = verdict("mnist-c1-worse", tmp_path)
    assert v.verdict == expected
    assert v.values["stn-c1 error %"] == pytest.approx(c1)
    assert any("one seed" in c for c in v.caveats)
    assert any("quick profile" in c for c in v.caveats)


def test_missing_record_is_not_run(tmp_path):
    put(tmp_path, "mnist-rot", "stn-c0", 1.0)
    put(tmp_path, "mnist-rot", "stn-c1", 2.0)
    v = verdict("mnist-c1-worse", tmp_path)
    assert v.verdict == NOT_RUN
    assert "mnist-rot/stn-sl1" in v.evidence


def test_failed_run_is_not_run_and_named(tmp_path):
    put(tmp_path, "mnist-rot", "stn-c0", 1.0)
    put(tmp_path, "mnist-rot", "stn-c1", 2.0)
    put(tmp_path, "mnist-rot", "stn-sl1", 1.0, status="failed")
    v = verdict("mnist-c1-worse", tmp_path)
    assert v.verdict == NOT_RUN
    assert "training failed" in v.evidence


def test_three_seeds_decide_with_the_seed_spread(tmp_path):
    # full profile: 3 seeds; C1 − C0 = 0.30 pp. The one-seed rule would call this noise (margin ≈ 0.31),
    # with 3 seeds the margin is 2·sqrt(2)·0.114/sqrt(3) ≈ 0.19.
    for seed in (0, 1, 2):
        put(tmp_path, "mnist-rot", "stn-c0", 1.0, profile="full", seed=seed)
        put(tmp_path, "mnist-rot", "stn-c1", 1.3, profile="full", seed=seed)
        put(tmp_path, "mnist-rot", "stn-sl1", 1.0, profile="full", seed=seed)
    v = verdict("mnist-c1-worse", tmp_path, profile="full")
    assert v.verdict == REPRODUCED
    assert not any("one seed" in c for c in v.caveats)
    assert v.values["stn-c1 error % seeds"] == 3
    # the same numbers with one seed (quick) are within noise
    for model, err in (("stn-c0", 1.0), ("stn-c1", 1.3), ("stn-sl1", 1.0)):
        put(tmp_path, "mnist-rot", model, err)
    assert verdict("mnist-c1-worse", tmp_path).verdict == INCONCLUSIVE


def test_missing_seeds_are_a_caveat(tmp_path):
    for seed in (0, 1):
        for model, err in (("stn-c0", 1.0), ("stn-c1", 2.0), ("stn-sl1", 1.0)):
            put(tmp_path, "mnist-rot", model, err, profile="full", seed=seed)
    v = verdict("mnist-c1-worse", tmp_path, profile="full")
    assert v.verdict == REPRODUCED
    assert "only mnist-rot/stn-c1: 2 of 3 seeds" in v.caveats


def test_noisy_seeds_make_a_difference_inconclusive(tmp_path):
    for seed, (c0, c1) in enumerate(((1.0, 2.5), (2.0, 1.2), (1.1, 1.9))):
        put(tmp_path, "mnist-rot", "stn-c0", c0, profile="full", seed=seed)
        put(tmp_path, "mnist-rot", "stn-c1", c1, profile="full", seed=seed)
        put(tmp_path, "mnist-rot", "stn-sl1", c0, profile="full", seed=seed)
    v = verdict("mnist-c1-worse", tmp_path, profile="full")
    assert v.verdict == INCONCLUSIVE
    assert v.values["stn-c1 error % se from"] == "seeds"


@pytest.mark.parametrize("trans_c1, expected", [(1.1, REPRODUCED), (2.0, INCONCLUSIVE), (3.5, NOT_REPRODUCED)])
def test_gap_smaller_under_translation(tmp_path, trans_c1, expected):
    for model, err in (("stn-c0", 1.0), ("stn-c1", 2.0), ("stn-sl1", 1.0)):
        put(tmp_path, "mnist-rot", model, err)
    for model, err in (("stn-c0", 1.0), ("stn-c1", trans_c1), ("stn-sl1", 1.0)):
        put(tmp_path, "mnist-trans", model, err)
    v = verdict("mnist-gap-translation", tmp_path)
    assert v.verdict == expected
    assert v.values["mnist-rot C1 − C0"] == pytest.approx(1.0)
    assert v.values["mnist-trans C1 − C0"] == pytest.approx(trans_c1 - 1.0)


# --------------------------------------------------------------------------- orientation claims


def put_orientation(root: Path, experiment: str, c0, c1, sl1) -> None:
    for model, orient in (("stn-c0", c0), ("stn-c1", c1), ("stn-sl1", sl1)):
        put(root, experiment, model, 1.0, orient=orient)


@pytest.mark.parametrize("others, c1, expected", [
    ((0.8, 20.0), (0.1, 50.0), REPRODUCED),        # C1 flat, C0 and SL1 learn
    ((0.8, 20.0), (0.8, 20.0), NOT_REPRODUCED),    # C1 like the others, and it learns
    ((0.2, 48.0), (0.2, 48.0), INCONCLUSIVE),      # nobody learns: no difference, nothing decided
    ((0.8, 20.0), (0.95, 5.0), NOT_REPRODUCED),    # C1 better than both
    ((0.8, 20.0), (0.1, 20.0), PARTLY),            # |r| lower, deviation the same
])
def test_c1_orientation(tmp_path, others, c1, expected):
    put_orientation(tmp_path, "mnist-rot", others, c1, others)
    v = verdict("mnist-c1-orientation", tmp_path)
    assert v.verdict == expected
    assert len(v.comparisons) == 4


def test_orientation_margin_is_the_stated_floor(tmp_path):
    # |r| floor 0.05 per model: a difference of 0.15 holds (margin 2·sqrt(2)·0.05 ≈ 0.141), 0.13 does not.
    put_orientation(tmp_path, "mnist-rot", (0.65, 30.0), (0.5, 30.0), (0.63, 30.0))
    v = verdict("mnist-c1-orientation", tmp_path)
    outcomes = [c.outcome for c in v.comparisons]
    assert outcomes == ["holds", "within noise", "within noise", "within noise"]
    assert v.verdict == PARTLY


@pytest.mark.parametrize("sl1, expected", [
    ((0.8, 20.0), REPRODUCED),
    ((0.3, 40.0), PARTLY),             # detectable correlation, weaker than the threshold
    ((0.05, 51.0), NOT_REPRODUCED),    # nothing learned
])
def test_sl1_orientation(tmp_path, sl1, expected):
    put(tmp_path, "mnist-rot", "stn-sl1", 1.0, orient=sl1)
    assert verdict("mnist-sl1-orientation", tmp_path).verdict == expected


def test_sl1_positive_correlation_is_flagged(tmp_path):
    put(tmp_path, "mnist-rot", "stn-sl1", 1.0, orient=(0.8, 20.0), r_sign=1.0)
    v = verdict("mnist-sl1-orientation", tmp_path)
    assert any("r is positive" in c for c in v.caveats)


@pytest.mark.parametrize("adam_others, adam_c1, expected", [
    ((0.8, 20.0), (0.1, 50.0), REPRODUCED),       # C1 fails under both optimisers
    ((0.8, 20.0), (0.1, 20.0), PARTLY),           # fails under both, less clearly under Adam
    ((0.8, 20.0), (0.95, 5.0), NOT_REPRODUCED),   # fails under SGD, beats the others under Adam
    ((0.66, 25.0), (0.68, 24.0), NOT_REPRODUCED),  # under Adam C1 learns like the others (calibration)
    ((0.2, 48.0), (0.2, 48.0), INCONCLUSIVE),     # undecided under Adam
])
def test_optimizer_question(tmp_path, adam_others, adam_c1, expected):
    put_orientation(tmp_path, "mnist-rot", (0.8, 20.0), (0.1, 50.0), (0.8, 20.0))
    put_orientation(tmp_path, "mnist-rot-adam", adam_others, adam_c1, adam_others)
    v = verdict("mnist-optimizer", tmp_path)
    assert v.verdict == expected
    assert v.claim.source == "added"
    assert v.values["C1 |r| Adam"] == pytest.approx(adam_c1[0])


def test_missing_orientation_statistics_are_malformed(tmp_path):
    put_orientation(tmp_path, "mnist-rot", (0.8, 20.0), (0.1, 50.0), (0.8, 20.0))
    put(tmp_path, "mnist-rot", "stn-c1", 1.0)  # no metrics.orientation
    with pytest.raises(records.RecordError, match="orientation"):
        verdict("mnist-c1-orientation", tmp_path)


@pytest.mark.parametrize("ec1, expected", [((0.8, 20.0), REPRODUCED), ((0.1, 50.0), INCONCLUSIVE),
                                           ((0.0, 60.0), NOT_REPRODUCED)])
def test_beyond_equivariant_st(tmp_path, ec1, expected):
    put(tmp_path, "mnist-rot", "stn-c1", 1.5, orient=(0.15, 48.0))
    put(tmp_path, "mnist-rot", "stn-ec1", 1.2, orient=ec1)
    v = verdict("beyond-ec1-orientation", tmp_path)
    assert v.verdict == expected
    assert v.claim.source == "added"


# --------------------------------------------------------------------------- SVHN


def put_svhn(root: Path, cx: dict[int, float], slx: dict[int, float] | None = None, source: str = SVHN_SYNTH):
    for x, err in cx.items():
        put(root, "svhn", f"stn-c{x}", err, n=4000, source=source)
    for x, err in (slx or {}).items():
        put(root, "svhn", f"stn-sl{x}", err, n=4000, source=source)


@pytest.mark.parametrize("cx, expected", [
    ({0: 10.0, 3: 10.0, 6: 11.0, 8: 12.5}, REPRODUCED),       # deepest worse, none better
    ({0: 10.0, 3: 7.0, 6: 10.0, 8: 12.5}, PARTLY),            # better at 3, worse at 8
    ({0: 10.0, 3: 7.0, 6: 7.0, 8: 7.5}, NOT_REPRODUCED),      # deeper helps
    ({0: 10.0, 3: 10.2, 6: 9.9, 8: 10.1}, INCONCLUSIVE),      # all within noise
])
def test_svhn_cx_depth(tmp_path, cx, expected):
    put_svhn(tmp_path, cx)
    v = verdict("svhn-cx-depth", tmp_path)
    assert v.verdict == expected
    assert "synthetic stand-in" in v.ours
    assert SVHN_SYNTH in v.evidence
    assert any(c == f"SVHN data: {SVHN_SYNTH}" for c in v.caveats)


def test_svhn_real_data_is_named(tmp_path):
    put_svhn(tmp_path, {0: 10.0, 3: 10.0, 6: 11.0, 8: 12.5}, source="real SVHN format 1")
    v = verdict("svhn-cx-depth", tmp_path)
    assert "real SVHN format 1" in v.ours and "synthetic" not in v.ours


@pytest.mark.parametrize("slx, expected", [
    ({3: 7.0, 6: 7.0, 8: 7.0}, REPRODUCED),
    ({3: 7.0, 6: 11.0, 8: 12.0}, PARTLY),
    ({3: 13.0, 6: 14.0, 8: 15.0}, NOT_REPRODUCED),
    ({3: 10.0, 6: 10.0, 8: 10.0}, INCONCLUSIVE),
])
def test_svhn_slx_depth(tmp_path, slx, expected):
    put_svhn(tmp_path, {0: 10.0, 3: 10.0, 6: 10.0, 8: 10.0} if expected == INCONCLUSIVE
             else {0: 10.0, 3: 10.0, 6: 11.0, 8: 12.0}, slx)
    assert verdict("svhn-slx-depth", tmp_path).verdict == expected


# --------------------------------------------------------------------------- records the ledger needs


def test_required_records_cover_every_record_claim():
    req = claims.required_records("full")
    assert ("svhn", "stn-sl8", 2) in req and ("mnist-rot", "stn-ec1", 0) in req
    assert ("mnist-rot", "cnn", 0) not in req  # no claim reads the CNN
    assert len(req) == len(set(req)) == 3 * len({(e, m) for e, m, _ in req})


def fill(root: Path, profile: str = "quick") -> None:
    for exp, model, seed in claims.required_records(profile):
        orient = (0.5, 30.0) if exp.startswith("mnist") else None
        put(root, exp, model, 5.0, profile=profile, seed=seed, orient=orient,
            n=4000 if exp == "svhn" else 10_000)


def test_check_records_passes_on_a_complete_set(tmp_path):
    fill(tmp_path)
    paths = claims.check_records("quick", records_root=tmp_path)
    assert len(paths) == len(claims.required_records("quick"))


def test_check_records_lists_every_missing_record(tmp_path):
    fill(tmp_path)
    for model in ("stn-c3", "stn-sl6"):
        records.record_path("svhn", model, "quick", 0, tmp_path).unlink()
    with pytest.raises(records.RecordError, match="2 of 17") as err:
        claims.check_records("quick", records_root=tmp_path)
    assert "stn-c3-seed0.json: missing" in str(err.value) and "stn-sl6" in str(err.value)


@pytest.mark.parametrize("damage", ["corrupt", "missing-key", "wrong-identity", "failed", "stale",
                                    "no-test-error"])
def test_malformed_records_raise(tmp_path, damage):
    fill(tmp_path)
    path = records.record_path("mnist-rot", "stn-c1", "quick", 0, tmp_path)
    rec = json.loads(path.read_text())
    if damage == "corrupt":
        path.write_text('{"schema": "stnlib.record/1", "experi')
    else:
        if damage == "missing-key":
            del rec["curves"]
        elif damage == "wrong-identity":
            rec = make_record("mnist-rot", "stn-sl1", 1.0, orient=(0.5, 30.0))
        elif damage == "failed":
            rec = make_record("mnist-rot", "stn-c1", 1.0, status="failed")
        elif damage == "stale":
            rec["config"]["settings"]["iterations"] += 1
            rec["config_hash"] = records.config_hash(rec["config"])
        elif damage == "no-test-error":
            del rec["metrics"]["test_error"]
        path.write_text(json.dumps(rec))
    with pytest.raises(records.RecordError, match="stn-c1"):
        claims.check_records("quick", records_root=tmp_path)
    if damage in ("corrupt", "missing-key", "wrong-identity", "no-test-error"):
        # the ledger itself refuses malformed records (a failed or stale run is reported instead)
        with pytest.raises(records.RecordError):
            claims.evaluate("quick", chapter="mnist", records_root=tmp_path)


def test_stale_record_is_a_caveat_not_an_error_in_the_ledger(tmp_path):
    fill(tmp_path)
    path = records.record_path("mnist-rot", "stn-c1", "quick", 0, tmp_path)
    rec = json.loads(path.read_text())
    rec["config"]["settings"]["iterations"] += 1
    rec["config_hash"] = records.config_hash(rec["config"])
    path.write_text(json.dumps(rec))
    v = verdict("mnist-c1-worse", tmp_path)
    assert any("stale" in c and "mnist-rot/stn-c1" in c for c in v.caveats)


# --------------------------------------------------------------------------- presentation


def test_ledger_table_prose_and_costs(tmp_path):
    fill(tmp_path)
    put(tmp_path, "mnist-rot", "cnn", 3.0, wall=5.0)  # not read by any claim, but a cost
    verdicts = claims.evaluate("quick", chapter="mnist", records_root=tmp_path)
    table = claims.ledger_table("quick", verdicts=verdicts)
    assert list(table["id"]) == [c.id for c in claims.claims_for("mnist")]
    assert {"claim", "paper", "ours", "verdict", "evidence"} <= set(table.columns)
    assert table.loc[table["id"] == "mnist-c1-worse", "paper"].item() == \
        "rotation: STN-C1 1.32%, STN-C0 1.08%, STN-SL1 0.98%"
    assert table.loc[table["id"] == "mnist-optimizer", "claim"].item().endswith("[ours]")
    html_text = claims.ledger_html(table)
    assert html_text.count("<tr>") == len(table) + 1
    assert claims.VERDICT_COLORS[table["verdict"][0]] in html_text
    text = claims.conclusions_markdown(verdicts, "quick")
    assert f"holds {len(verdicts)} claims" in text
    for v in verdicts:
        assert v.claim.title in text
    assert "one seed" in text
    costs = claims.cost_table("quick", records_root=tmp_path)
    total = costs[costs["experiment"] == "total"].iloc[0]
    assert total["runs"] == len(claims.required_records("quick")) + 1
    assert total["wall time (s)"] == pytest.approx(10.0 * len(claims.required_records("quick")) + 5.0)
    beyond = costs[costs["chapter"] == "beyond"].iloc[0]
    assert beyond["runs"] == 1 and beyond["models"] == "STN-EC1"


def test_unknown_names_raise():
    with pytest.raises(ValueError, match="valid claims"):
        claims.get_claim("nope")
    with pytest.raises(ValueError, match="valid chapters"):
        claims.claims_for("nope")
    with pytest.raises(ValueError, match="valid profiles"):
        claims.evaluate("nope")


def test_claims_are_complete_data():
    assert {c.chapter for c in claims.CLAIMS} == set(claims.CHAPTERS)
    for c in claims.CLAIMS:
        assert c.statement and c.reference and c.paper and c.rule
    # the paper's numbers come from stnlib.paper
    assert claims.get_claim("svhn-cx-depth").paper_values["stn-c8 %"] == 4.00
    assert claims.DECISION_RULE in claims.__doc__


@pytest.mark.slow
def test_live_claims_are_reproduced():
    """Theory and toy: exact statements about fixed feature extractors (a few seconds, no training)."""
    vs = claims.evaluate("smoke", chapter="theory") + claims.evaluate("smoke", chapter="toy")
    assert [v.verdict for v in vs] == [REPRODUCED] * 3
    wm = vs[2].values
    assert wm["swap"] <= claims.ALIGNED_TOL and wm["lower_bound"] == 1.0
    assert min(wm["best_rotation"], wm["best_affine"]) >= 1.0 - 1e-3


# --------------------------------------------------------------------------- the committed records

COMMITTED = paths.checkout_root() / "book" / "records" / "quick"


def _published_needs() -> list[tuple[str, str, int]]:
    """Records the ledger needs for the chapters the book publishes (listed in book/_toc.yml).

    A chapter enters the table of contents only with all its quick records; the conclusions
    chapter renders the whole ledger, so publishing it requires every record.
    """
    from stnlib.book import toc_documents

    published = {p.stem for p in toc_documents(paths.checkout_root() / "book")}
    chapters = claims.CHAPTERS if "conclusions" in published else \
        [c for c in claims.CHAPTERS if c in published]
    return list(dict.fromkeys(r for c in chapters for r in claims.required_records("quick", c)))


@pytest.mark.parametrize("experiment, model, seed", _published_needs(), ids=lambda v: str(v))
def test_committed_quick_record_the_ledger_needs(experiment, model, seed):
    claims.check_record(experiment, model, "quick", seed, records_root=paths.checkout_root() / "book" / "records")


@pytest.mark.parametrize("path", sorted(COMMITTED.glob("*/*.json")) if COMMITTED.is_dir() else [],
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_committed_quick_record_is_well_formed(path):
    records.read_record(path)


def test_full_profile_estimate_reads_committed_probes(tmp_path):
    probe = {"experiment": "mnist-rot", "model": "stn-c0", "epochs": 10.0,
             "train_images_per_s": 64_000.0, "device": "cuda: test GPU"}
    (tmp_path / "gpu-a").mkdir()
    (tmp_path / "gpu-a" / "full_probe.jsonl").write_text(json.dumps(probe) + "\n\n")
    t = claims.full_profile_estimate(tmp_path)
    assert len(t) == 1
    row = t.iloc[0]
    assert row["model"] == "STN-C0" and row["device"] == "cuda: test GPU"
    assert row["est. minutes per full run"] == 10.0  # 150,000 × 256 / 64,000 s = 600 s
    assert claims.full_profile_estimate(tmp_path / "none").empty
