"""The beyond chapter's computation, figures and sentences: the C4 identities on a digit, and every number
and direction word of the text taken from the tables it is given."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402

from stnlib.report import beyond, figures, palette, tables  # noqa: E402


@pytest.fixture(scope="module")
def demo():
    g = torch.Generator().manual_seed(3)
    digit = torch.rand(1, 1, 28, 28, generator=g) * 2 - 0.4
    return beyond.c4_demo(digit, label=5)


def rec(model, seed, error, *, slope=None, abs_r=None, dev=50.0, mis=None):
    metrics = {"test_error": error}
    if slope is not None:
        metrics["orientation"] = {"kind": "rotation", "slope": slope, "intercept": 0.0, "r": -abs_r,
                                  "abs_r": abs_r, "pooled_class_deviation": dev}
    return {"experiment": "mnist-rot", "model": model, "profile": "quick", "seed": seed, "status": "complete",
            "metrics": metrics, "summaries": {"misalignment": mis} if mis else {},
            "curves": {"iteration": [0, 100], "epoch": [0.0, 2.0], "test_error": [0.9, 0.1],
                       "orientation": [None, None]}}


def _mis(fm90, fm45, after90=None, after45=None):
    m = {"kind": "rotation", "angle_deg": [-90, -45, -15, 0, 15, 45, 90],
         "feature_maps": [fm90, fm45, 0.4, 0.0, 0.4, fm45, fm90]}
    if after90 is not None:
        m["after_st"] = [after90, after45, 0.5, 0.0, 0.5, after45, after90]
    return m


# --------------------------------------------------------------------------- the identities


def test_c4_identities_hold_and_the_counterexamples_do_not(demo):
    e = demo.errors
    assert list(e.columns) == ["k = 1", "k = 2", "k = 3"]
    assert e.loc[demo.identities].to_numpy().max() < beyond.EXACT
    assert e.loc[demo.counterexamples].to_numpy().min() > 0.5
    assert beyond.identity_table(demo).index.name == "relative error (digit 5, random weights)"


def test_identity_lines_and_text_follow_the_numbers(demo):
    lines = beyond.identity_lines(demo).splitlines()
    assert len(lines) == len(demo.errors)
    assert all(line.endswith("equal to float precision (all < 1e-05)") for line in lines[:5])
    assert all("NOT aligned: " in line for line in lines[5:])
    text = beyond.identity_text(demo)
    assert text.startswith("Every identity holds to a relative error of at most")
    broken = beyond.C4Demo(demo.digit, 5, demo.net, demo.errors.copy(), demo.identities, demo.counterexamples)
    broken.errors.loc["group convolution", "k = 2"] = 0.3
    broken.errors.loc[demo.counterexamples] = [[0.5, 0.6, 0.7]] * 3
    assert "group convolution" in beyond.identity_lines(broken).splitlines()[1]
    assert "NOT aligned: 0.00 to 0.30" in beyond.identity_lines(broken).splitlines()[1]
    text = beyond.identity_text(broken)
    assert "do **not** all hold: the largest error is 3.0e-01" in text
    assert "0.50 to 0.70 for the C4-CNN" in text and "against 1 for an all-zero map" in text
    assert "about what an all-zero map scores" not in text


def test_fields_figure_keeps_the_contract(demo):
    fig = beyond.fields_figure(demo)
    assert fig.get_figwidth() <= figures.WIDE_IN and figures.smallest_font_pt(fig) >= figures.MIN_FONT_PT
    plt.close(fig)


# --------------------------------------------------------------------------- sentences


def test_architecture_text_compares_parameter_counts():
    text = beyond.architecture_text({"cnn": 208_586, "ecnn": 204_650, "stn-ec1": 248_436, "stn-c1": 252_372,
                                     "loc": 43_786}, fields=(16, 64))
    assert "16 fields (64 channels)" in text and "with 64 fields" in text
    assert "With 204,650 parameters it has fewer parameters than the CNN (208,586)" in text
    assert "248,436 in all, fewer parameters than STN-C1 (252,372)" in text
    more = beyond.architecture_text({"cnn": 10, "ecnn": 12, "stn-ec1": 20, "stn-c1": 20, "loc": 5})
    assert "more parameters than the CNN" in more and "as many parameters as STN-C1" in more


def test_parameter_counts_are_read_from_the_networks():
    counts = beyond.parameter_counts()
    assert counts["stn-ec1"] == counts["ecnn"] + counts["loc"]
    assert counts["loc"] == 43_786


def test_error_text_ranks_and_compares_means_over_seeds():
    rot = {"stn-c1": [rec("stn-c1", s, e) for s, e in enumerate((0.020, 0.018, 0.019))],
           "ecnn": [rec("ecnn", s, 0.017) for s in range(3)],
           "stn-ec1": [rec("stn-ec1", s, e) for s, e in enumerate((0.013, 0.014, 0.015))]}
    text = beyond.error_text(tables.table1({"mnist-rot": rot}))
    assert text.startswith("Test error, lowest first: STN-EC1 (equivariant) 1.40%, C4-CNN 1.70%, STN-C1 1.90%")
    assert "(mean over 3 seeds)" in text
    assert "has 1.70%, 0.20 points lower than STN-C1's 1.90%" in text
    assert "STN-EC1 has 1.40%, 0.30 points lower than the C4-CNN's" in text
    rot["stn-ec1"] = [rec("stn-ec1", 0, 0.017)]
    assert "STN-EC1 has 1.70%, the same as the C4-CNN's" in beyond.error_text(tables.table1({"mnist-rot": rot}))


def _orientation(c0=-0.8, c1=-0.02, ec1=-0.3, r_c1=0.28, r_ec1=0.6, seeds=1):
    recs = {m: [rec(m, s, 0.02, slope=sl, abs_r=r) for s in range(seeds)]
            for m, sl, r in (("stn-c0", c0, 0.9), ("stn-c1", c1, r_c1), ("stn-ec1", ec1, r_ec1))}
    return tables.orientation_table(recs)


def test_orientation_text_direction_words():
    text = beyond.orientation_text(_orientation(), -0.6)
    assert "-0.80 for STN-C0, -0.02 for STN-C1, -0.30 for STN-EC1 (equivariant)" in text
    assert "(mean over 1 seed;" in text
    assert "STN-EC1's |r| is 0.32 higher than STN-C1's, and its slope is steeper than STN-C1's." in text
    assert "reaches a slope of -0.80, steep enough for the -0.6 the ledger requires" in text
    other = beyond.orientation_text(_orientation(c0=-0.19, ec1=0.01, r_ec1=0.2, seeds=3), -0.6)
    assert "0.08 lower than STN-C1's" in other and "less steep than STN-C1's" in other
    assert "(mean over 3 seeds;" in other and "-0.19, not as steep as the -0.6" in other
    same = beyond.orientation_text(_orientation(ec1=-0.021, r_ec1=0.28), -0.6)
    assert "|r| is the same as STN-C1's" in same and "as steep as STN-C1's" in same


def _mis_table(c4_90=4e-7, c4_45=0.72, c1_after90=1.0):
    recs = {"stn-c1": [rec("stn-c1", 0, 0.02, mis=_mis(1.14, 0.81, c1_after90, 0.88))],
            "stn-sl1": [rec("stn-sl1", 0, 0.02, mis=_mis(1.14, 0.81, 1.21, 1.09))],
            "ecnn": [rec("ecnn", 0, 0.02, mis=_mis(c4_90, c4_45))],
            "stn-ec1": [rec("stn-ec1", 0, 0.02, mis=_mis(c4_90, c4_45, 1.05, 0.92))]}
    return tables.misalignment_table(recs)


def test_misalignment_text_reads_the_table():
    text = beyond.misalignment_text(_mis_table())
    assert "aligned to 4.0e-07 for C4-CNN and 4.0e-07 for STN-EC1 (equivariant)" in text
    assert "STN-C1's first layer, inversely rotated in space, is at 1.14" in text
    assert "leaves 0.72 for C4-CNN" in text and ": C4 gives exact alignment on its own grid only." in text
    assert "1.05 at ±90° and 0.92 at ±45° for STN-EC1 (equivariant)" in text
    assert "the smallest at ±90° is STN-C1's" in text
    broken = beyond.misalignment_text(_mis_table(c4_90=0.3, c1_after90=1.3))
    assert "not aligned at float precision" in broken and "own grid only" not in broken
    assert "the smallest at ±90° is STN-EC1 (equivariant)'s" in broken


def test_card_deviations_name_the_profile_and_the_extension():
    d = beyond.card_deviations("smoke")
    assert list(d) == ["mnist-rot", "C4 models"]
    assert d["mnist-rot"] == ["a few iterations on a small subset: a code-path check, not a result"]


# --------------------------------------------------------------------------- colours


def test_the_chapters_figures_draw_the_c4_models_in_their_palette_colours():
    rng_recs = {m: rec(m, 0, 0.02, mis=_mis(0.5, 0.3, 0.4, 0.2)) for m in beyond.MODELS}
    fig = figures.misalignment(rng_recs)
    drawn: dict[str, set[str]] = {}
    for artist in fig.findobj(lambda a: isinstance(a.get_gid(), str) and a.get_gid().startswith("model:")):
        drawn.setdefault(artist.get_gid().split(":", 1)[1], set()).add(to_hex(artist.get_color()).lower())
    assert set(drawn) == set(beyond.MODELS)
    for model, colours in drawn.items():
        assert colours == {palette.color(model).lower()}, model
    plt.close(fig)
