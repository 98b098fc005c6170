"""stnlib.report.conclusions, glance and costs: the sentences and tables the intro and the conclusions
build from records, fed planted records so that each can be seen to change with the data."""

from __future__ import annotations

import pytest

from stnlib import claims
from stnlib.claims.verdicts import REGIME, REPRODUCED
from stnlib.report import conclusions, costs, glance

from planted import PROFILE, ROT, plant


@pytest.fixture
def rot(tmp_path):
    """Rotated MNIST in the paper's regime and direction (three seeds)."""
    for m, err, slope in zip(ROT, (1.9, 1.1, 1.5, 1.0, 1.2), (None, -0.9, -0.02, -0.85, -0.8)):
        plant(tmp_path, "mnist-rot", m, err, slope=slope)
    return tmp_path


def test_what_this_means_names_reproduced_and_unjudged_claims(rot, tmp_path_factory):
    text = conclusions.what_this_means(claims.evaluate(PROFILE, records_root=rot), PROFILE)
    assert "3 of the 3 exact constructions hold" in text
    assert "reproduced on three or more seeds: *Under rotation, STN-C1 is worse" in text
    assert "**Not run in this profile.**" in text  # no SVHN records were planted
    assert "**Not judged.**" not in text
    # The same claims, unconverged: the sentence says which check failed, as a list item.
    late = tmp_path_factory.mktemp("late")
    for m, err, slope in zip(ROT, (1.9, 1.1, 1.5, 1.0, 1.2), (None, -0.9, -0.02, -0.85, -0.8)):
        plant(late, "mnist-rot", m, err, slope=slope, late_drop_pp=2.0)
    vs = claims.evaluate(PROFILE, records_root=late)
    assert {v.verdict for v in vs if v.claim_id == "mnist-c1-worse"} == {REGIME}
    text = conclusions.what_this_means(vs, PROFILE)
    assert "**Not judged.**" in text and "\n- mnist-rot: the test error of" in text
    assert "reproduced on three or more seeds" not in text


def test_records_read_are_the_ledgers(rot):
    recs = conclusions.records_read(PROFILE, rot)
    assert sorted({(r["experiment"], r["model"]) for r in recs}) == [("mnist-rot", m) for m in sorted(ROT)]
    assert len(recs) == 15
    assert conclusions.records_read(PROFILE, rot / "nowhere") == []


def test_glance_reads_trust_line_verdicts_and_table1_from_records(rot, tmp_path_factory):
    line = glance.trust_line(PROFILE, rot)
    assert line.startswith(f"Profile {PROFILE}: 15 training runs, seeds 0, 1, 2 (the profile has 3)")
    assert "cpu: planted" in line and "precision not recorded" in line and "no SVHN records" in line
    empty = tmp_path_factory.mktemp("empty")
    assert glance.trust_line(PROFILE, empty).startswith(f"No {PROFILE} records exist yet")
    block = glance.at_a_glance(PROFILE, rot)
    assert "Results at a glance" in block and "glance-table" in block
    assert f">{REPRODUCED}<" in block  # the C1-gap claim on the planted records
    assert "0.98%" in block  # the paper's Table 1 (STN-SL1, rotation) beside ours
    assert "1.00 ± 0.02%" in block


def test_profiles_table_is_read_from_the_profiles():
    from stnlib.profiles import get_profile, settings_for

    t = glance.profiles_table()
    assert list(t.index) == ["smoke", "quick", "full"]
    assert t.loc["full", "seeds"] == len(get_profile("full").seeds)
    s = settings_for("quick", "mnist-rot")
    assert t.loc["quick", "rotated MNIST"].startswith(f"{s.iterations:,} × batch {s.batch_size}")


def test_cost_sentences(rot):
    table = costs.cost_table([PROFILE], records_root=rot)
    assert costs.cost_sentence(table, PROFILE) == (
        f"In the `{PROFILE}` profile, 15 training runs took 2 min 30 s of training in total on cpu: planted "
        "(the sum of the records' wall times).")
    assert "nothing to cost" in costs.cost_sentence(table, "quick")
    est = costs.full_profile_estimate(rot / "no-probes")
    assert "no GPU probe of its settings is committed" in costs.full_estimate_sentence(est)


def test_full_estimate_says_what_the_probes_cover(tmp_path):
    import json

    (tmp_path / "gpu-x").mkdir()
    (tmp_path / "gpu-x" / "full_probe.jsonl").write_text(json.dumps(
        {"experiment": "mnist-rot", "model": "stn-c0", "epochs": 10, "train_images_per_s": 50_000.0,
         "device": "cuda: X"}) + "\n")
    est = costs.full_profile_estimate(tmp_path)
    assert list(est["est. minutes per full run"]) == [12.8]  # 150k iterations × 256 images at 50k img/s
    text = costs.full_estimate_sentence(est)
    assert "one run of mnist-rot at 12.8 minutes of GPU training on cuda: X" in text
    assert "No probe measured mnist-trans, mnist-rot-adam, svhn with the full settings" in text


def test_the_trust_line_names_the_runs_kept_from_the_earlier_protocol():
    from stnlib.report import glance

    text = glance.pinned_text("quick")
    assert text.startswith("Kept at the earlier quick protocol's settings, not retrained at the current schedules: ")
    for part in ("C4-CNN and STN-EC1 (equivariant) on rotated MNIST (protocol 1, seeds 0, 1, 2)",
                 "every translated MNIST run (protocol 1, seeds 0, 1, 2)"):
        assert part in text
    assert "SVHN" not in text  # retrained at the current protocol with three seeds
    assert glance.pinned_text("full") == ""
