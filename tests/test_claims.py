"""stnlib.claims: every empirical rule fed planted records (wrong way, unconverged, right way), the
statistics, the exact constructions, and the rendering."""

from __future__ import annotations

import math

import pytest

from stnlib import claims, records
from stnlib.claims import stats
from stnlib.claims.regime import CANONICAL_SLOPE
from stnlib.claims.verdicts import (HOLDS_EXACTLY, INCONCLUSIVE, INDICATED, NOT_REPRODUCED, NOT_RUN, PARTLY, REGIME,
                                    REPRODUCED, combine, with_seeds)

from planted import PROFILE, ROT, SEEDS, make_record, plant  # noqa: F401


@pytest.fixture
def rot(tmp_path):
    """Rotated MNIST in the paper's regime and direction: C1 worse than C0 and SL1, every STN below the CNN,
    converged, C0 and SL1 canonicalising, C1 flat."""
    plant(tmp_path, "mnist-rot", "cnn", 1.9)
    plant(tmp_path, "mnist-rot", "stn-c0", 1.1, slope=-0.9)
    plant(tmp_path, "mnist-rot", "stn-c1", 1.5, slope=-0.02)
    plant(tmp_path, "mnist-rot", "stn-sl1", 1.0, slope=-0.85)
    plant(tmp_path, "mnist-rot", "stn-dl1", 1.2, slope=-0.8)
    return tmp_path


def verdict(claim_id: str, root, profile: str = PROFILE) -> claims.Verdict:
    return claims.get_claim(claim_id).evaluate(profile, records_root=root)


# ----- statistics


def test_standard_errors_come_from_seeds_and_never_below_the_measured_floor():
    e = stats.estimate([1.0, 1.2, 1.4])
    assert e.se == pytest.approx(0.2 / math.sqrt(3)) and "seed spread" in e.se_source
    floored = stats.estimate([1.0, 1.0, 1.0], floor=0.3, floor_source="floor X")
    assert floored.se == pytest.approx(0.3 / math.sqrt(3)) and floored.se_source == "floor X"
    assert math.isnan(stats.estimate([1.0]).se)  # one seed and nothing measured: the noise is unknown


def test_comparisons_decide_beyond_two_standard_errors_and_never_without_noise():
    assert stats.Comparison("a", 1.0, 0.4).outcome == stats.HOLDS
    assert stats.Comparison("a", -1.0, 0.4).outcome == stats.REVERSED
    assert stats.Comparison("a", 0.7, 0.4).outcome == stats.NOISE
    assert stats.Comparison("a", 5.0, math.nan).outcome == stats.NOISE


def test_combination_and_the_seed_rule():
    holds, rev, noise = (stats.Comparison("x", d, 0.1) for d in (1.0, -1.0, 0.0))
    assert combine([holds, holds]) == REPRODUCED
    assert combine([holds, noise]) == PARTLY
    assert combine([holds, rev]) == NOT_REPRODUCED
    assert combine([noise, noise]) == INCONCLUSIVE
    assert with_seeds(REPRODUCED, 2) == INDICATED and with_seeds(PARTLY, 1) == INDICATED
    assert with_seeds(REPRODUCED, 3) == REPRODUCED and with_seeds(NOT_REPRODUCED, 1) == NOT_REPRODUCED


# ----- the rotation claims


def test_c1_worse_right_way_wrong_way_and_unconverged(rot, tmp_path_factory):
    assert verdict("mnist-c1-worse", rot).verdict == REPRODUCED
    wrong = tmp_path_factory.mktemp("wrong")
    for m, err in zip(ROT, (1.9, 1.4, 1.0, 1.4, 1.4)):
        plant(wrong, "mnist-rot", m, err, slope=None if m == "cnn" else -0.9)
    assert verdict("mnist-c1-worse", wrong).verdict == NOT_REPRODUCED
    late = tmp_path_factory.mktemp("late")
    for m, err in zip(ROT, (1.9, 1.1, 1.5, 1.0, 1.2)):
        plant(late, "mnist-rot", m, err, late_drop_pp=2.0, slope=None if m == "cnn" else -0.9)
    v = verdict("mnist-c1-worse", late)
    assert v.verdict == REGIME and "falls by less than" in v.evidence and "largest fall" in v.evidence


def test_c1_worse_with_one_seed_is_at_most_indicated(tmp_path):
    for m, err in zip(ROT, (1.9, 1.1, 1.6, 1.0, 1.2)):
        plant(tmp_path, "mnist-rot", m, err, seeds=(0,), slope=None if m == "cnn" else -0.9)
    v = verdict("mnist-c1-worse", tmp_path)
    assert v.verdict == INDICATED and any("at most 'indicated'" in c for c in v.caveats)


def test_stns_worse_than_the_cnn_are_outside_the_regime(tmp_path):
    for m, err in zip(ROT, (1.0, 1.1, 1.5, 1.05, 1.2)):
        plant(tmp_path, "mnist-rot", m, err, slope=None if m == "cnn" else -0.9)
    v = verdict("mnist-c1-worse", tmp_path)
    assert v.verdict == REGIME and "lower mean test error than the CNN" in v.evidence


def test_c1_orientation_flat_c1_reproduces_and_a_canonicalising_c1_fails(rot, tmp_path_factory):
    assert verdict("mnist-c1-orientation", rot).verdict == REPRODUCED
    learns = tmp_path_factory.mktemp("learns")
    for m, err, s in zip(ROT, (1.9, 1.1, 1.5, 1.0, 1.2), (None, -0.9, -0.85, -0.85, -0.8)):
        plant(learns, "mnist-rot", m, err, slope=s)
    assert verdict("mnist-c1-orientation", learns).verdict == NOT_REPRODUCED


def test_orientation_claims_need_a_canonicalising_c0(tmp_path):
    for m, err, s in zip(ROT, (1.9, 1.1, 1.5, 1.0, 1.2), (None, -0.19, -0.02, -0.06, -0.13)):
        plant(tmp_path, "mnist-rot", m, err, slope=s)
    for cid in ("mnist-c1-orientation", "mnist-sl1-orientation"):
        v = verdict(cid, tmp_path)
        assert v.verdict == REGIME and f"≤ {CANONICAL_SLOPE:g}" in v.evidence and "slope -0.19" in v.evidence


@pytest.mark.parametrize("slope,abs_r,dev", [(0.0, 0.0, 52.0), (-0.02, 0.28, 51.4)])
def test_a_flat_predictor_or_today_s_c1_does_not_pass_as_learning(rot, slope, abs_r, dev):
    for i, seed in enumerate(SEEDS):
        records.write_record(make_record("mnist-rot", "stn-sl1", 1.0 + 0.02 * i, seed=seed, slope=slope,
                                         abs_r=abs_r, dev=dev), rot)
    assert verdict("mnist-sl1-orientation", rot).verdict == NOT_REPRODUCED


def test_sl1_orientation_right_way(rot):
    assert verdict("mnist-sl1-orientation", rot).verdict == REPRODUCED


def test_the_translation_gap_needs_the_rotation_gap_first(tmp_path):
    for m, err in zip(ROT, (1.9, 1.3, 1.32, 1.31, 1.2)):  # no rotation gap
        plant(tmp_path, "mnist-rot", m, err, slope=None if m == "cnn" else -0.9)
    for m, err in zip(ROT, (1.9, 1.0, 0.5, 1.1, 1.2)):  # a translation gap going "the right way"
        plant(tmp_path, "mnist-trans", m, err, slope=None if m == "cnn" else -0.95, abs_r=0.96)
    v = verdict("mnist-gap-translation", tmp_path)
    assert v.verdict == INCONCLUSIVE and "rotation gap it is measured against is itself within noise" in v.evidence


def test_the_translation_gap_right_way(rot):
    for m, err in zip(ROT, (1.9, 1.1, 1.15, 1.1, 1.2)):
        plant(rot, "mnist-trans", m, err, slope=None if m == "cnn" else -0.95, abs_r=0.96)
    assert verdict("mnist-gap-translation", rot).verdict == REPRODUCED


def test_the_optimizer_question_detects_opposite_findings(rot):
    for m, err, s in zip(("stn-c0", "stn-c1", "stn-sl1"), (1.1, 1.5, 1.0), (-0.9, -0.88, -0.85)):
        plant(rot, "mnist-rot-adam", m, err, slope=s)  # under Adam C1 learns the orientation
    v = verdict("mnist-optimizer", rot)
    assert v.verdict == NOT_REPRODUCED and "under SGD" in v.evidence


def _ec1(root, slope: float, abs_r: float, late: float = 0.0) -> None:
    for i, seed in enumerate(SEEDS):
        records.write_record(make_record("mnist-rot", "stn-ec1", 1.3 + 0.02 * i, seed=seed, slope=slope,
                                         abs_r=abs_r, late_drop_pp=late), root)


def test_the_equivariant_st_claim_right_way_wrong_way_and_unconverged(rot, tmp_path_factory):
    _ec1(rot, -0.85, 0.9)  # STN-EC1 undoes the rotation, STN-C1 (the rot fixture) is flat
    assert verdict("beyond-ec1-orientation", rot).verdict == REPRODUCED
    flat = tmp_path_factory.mktemp("flat")
    for m, err, sl in zip(ROT, (1.9, 1.1, 1.5, 1.0, 1.2), (None, -0.9, -0.3, -0.85, -0.8)):
        plant(flat, "mnist-rot", m, err, slope=sl, abs_r=None if sl is None else 0.6)
    _ec1(flat, -0.01, 0.05)  # EC1 flatter than a C1 that follows a little: the wrong way
    assert verdict("beyond-ec1-orientation", flat).verdict == NOT_REPRODUCED
    _ec1(rot, -0.85, 0.9, late=2.0)  # still falling 2 pp over the last fifth: not converged
    v = verdict("beyond-ec1-orientation", rot)
    assert v.verdict == REGIME and "last fifth of training" in v.evidence


@pytest.mark.parametrize("claim_id", ["mnist-c1-worse", "mnist-c1-orientation", "mnist-sl1-orientation",
                                      "mnist-gap-translation", "mnist-optimizer"])
def test_every_mnist_claim_is_not_judged_on_unconverged_runs(claim_id, tmp_path):
    # The paper's direction everywhere, but the test error still falls 2 pp over the last fifth of training.
    for exp in ("mnist-rot", "mnist-trans"):
        for m, err, sl in zip(ROT, (1.9, 1.1, 1.5, 1.0, 1.2), (None, -0.9, -0.02, -0.85, -0.8)):
            plant(tmp_path, exp, m, err, slope=sl, late_drop_pp=2.0)
    for m, err, sl in zip(("stn-c0", "stn-c1", "stn-sl1"), (1.1, 1.5, 1.0), (-0.9, -0.02, -0.85)):
        plant(tmp_path, "mnist-rot-adam", m, err, slope=sl, late_drop_pp=2.0)
    v = verdict(claim_id, tmp_path)
    assert v.verdict == REGIME and "falls by less than 0.5 pp over the last fifth" in v.evidence


# ----- SVHN


def _svhn(root, errors: dict[str, float], cnn: float = 15.0, late: float = 0.0) -> None:
    plant(root, "svhn", "cnn", cnn, jitter=0.1, source="synthetic SVHN-like stand-in (not real SVHN)", n=4000,
          late_drop_pp=late)
    for m, e in errors.items():
        plant(root, "svhn", m, e, jitter=0.1, source="synthetic SVHN-like stand-in (not real SVHN)", n=4000,
              late_drop_pp=late)


PAPER_LIKE = {"stn-c0": 12.0, "stn-c3": 13.0, "stn-c6": 14.0, "stn-c8": 15.0, "stn-sl3": 11.0, "stn-sl6": 10.0,
              "stn-sl8": 9.5}


def test_svhn_right_way_wrong_way_and_plateau(tmp_path_factory):
    good = tmp_path_factory.mktemp("good")
    _svhn(good, PAPER_LIKE)
    assert verdict("svhn-cx-depth", good).verdict == REPRODUCED
    assert verdict("svhn-slx-depth", good).verdict == REPRODUCED
    worse = tmp_path_factory.mktemp("worse")  # SLX gets worse with depth, as the old quick records did
    _svhn(worse, dict(PAPER_LIKE, **{"stn-sl3": 11.0, "stn-sl6": 12.5, "stn-sl8": 16.0}))
    assert verdict("svhn-slx-depth", worse).verdict == NOT_REPRODUCED
    better_cx = tmp_path_factory.mktemp("cx")
    _svhn(better_cx, dict(PAPER_LIKE, **{"stn-c8": 9.0}))
    assert verdict("svhn-cx-depth", better_cx).verdict == NOT_REPRODUCED
    plateau = tmp_path_factory.mktemp("plateau")
    _svhn(plateau, PAPER_LIKE, cnn=68.0)
    v = verdict("svhn-cx-depth", plateau)
    assert v.verdict == REGIME and "all-blank plateau" in v.evidence
    moving = tmp_path_factory.mktemp("moving")
    _svhn(moving, PAPER_LIKE, late=8.0)
    assert verdict("svhn-slx-depth", moving).verdict == REGIME


# ----- exact constructions, missing records, rendering


def test_exact_constructions_hold_and_are_kept_apart():
    for cid in ("theory-rotation", "theory-translation", "toy-wm"):
        v = verdict(cid, None)
        assert v.verdict == HOLDS_EXACTLY and claims.get_claim(cid).exact
    assert "Exact constructions, reported apart: 3 holds exactly" in claims.headline(
        [verdict(c, None) for c in ("theory-rotation", "theory-translation", "toy-wm")])


def test_missing_records_are_not_run(tmp_path):
    v = verdict("mnist-c1-worse", tmp_path)
    assert v.verdict == NOT_RUN and "no complete full record" in v.evidence


def test_every_verdict_shows_its_evidence_and_one_sentence(rot):
    vs = [verdict(c, rot) for c in ("mnist-c1-worse", "mnist-c1-orientation", "mnist-sl1-orientation")]
    html = claims.ledger_html(vs)
    for v in vs:
        assert claims.get_claim(v.claim_id).title in html
        assert v.verdict in html
    assert html.count("<details>") == len(vs) and "Regime:" in html and "margin ±" in html
    assert claims.sentence(vs[0]).startswith("**Under rotation, STN-C1 is worse than STN-C0 and STN-SL1**")
    assert "*reproduced*" in claims.sentence(vs[0])
    assert claims.headline(vs).startswith("Of the 3 claims about trained networks (3 the paper's, 0 added questions): "
                                          "3 reproduced.")


def test_ledger_reports_exact_constructions_apart_and_after_the_trained_claims(rot):
    vs = [verdict("toy-wm", None), verdict("mnist-c1-worse", rot)]
    html = claims.ledger_html(vs)
    trained, exact = html.index("Claims about trained networks"), html.index("Exact constructions")
    assert trained < html.index(claims.get_claim("mnist-c1-worse").title) < exact
    assert exact < html.index(claims.get_claim("toy-wm").title)
    assert "Exact constructions" not in claims.ledger_html(vs[1:])


def test_unknown_names_are_rejected_with_the_choices():
    with pytest.raises(ValueError, match="unknown claim 'nope'; valid claims: theory-rotation"):
        claims.get_claim("nope")
    with pytest.raises(ValueError, match="unknown chapter 'x'; valid chapters: theory, toy"):
        claims.claims_for("x")


def test_a_verdict_on_pinned_runs_says_they_were_kept_from_the_earlier_protocol(tmp_path):
    from stnlib.claims.evidence import Evidence

    ev = Evidence("quick", tmp_path)
    caveats = " ".join(ev.caveats([("mnist-trans", "cnn"), ("mnist-trans", "stn-c0"), ("mnist-rot", "ecnn")]))
    assert ("earlier protocol, not retrained at its current schedules: mnist-trans (every model); mnist-rot (ecnn)"
            in caveats)
    assert not any("earlier protocol" in c for c in ev.caveats([("mnist-rot", "stn-c1"), ("svhn", "cnn")]))
