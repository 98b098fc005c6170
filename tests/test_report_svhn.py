"""SVHN chapter builders: what the chapter shows from records (planted records, synthetic images)."""

from __future__ import annotations

from planted import make_record

from stnlib.report import figures
from stnlib.report import svhn as sv


def _recs(source: str = "synthetic stand-in (planted)"):
    return {"cnn": [make_record("svhn", "cnn", 40.0, source=source)]}


def test_the_training_images_fit_the_page_and_show_their_labels():
    fig = sv.training_images(_recs(), n=16)
    assert fig.get_figwidth() <= figures.WIDE_IN and figures.smallest_font_pt(fig) >= figures.MIN_FONT_PT
    titles = [ax.get_title() for ax in fig.axes]
    assert len(titles) == 16 and all(t.isdigit() for t in titles)
    figures.png_bytes(fig)  # accepted by the guard every shown figure passes


def test_the_data_source_decides_whether_the_papers_numbers_compare():
    assert sv.data_source(_recs()) == ("synthetic stand-in (planted)", False)
    assert sv.data_source(_recs(sv.svhn.REAL_SOURCE))[1] is True
    assert "not real data" in sv.data_text(_recs())
