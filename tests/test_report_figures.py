"""Figures: drawn at the size they are shown, text never below 9.5 pt, one colour per model everywhere."""

import io

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402
from PIL import Image  # noqa: E402

from stnlib import measures, records  # noqa: E402
from stnlib.report import figures, palette  # noqa: E402

MODELS = ["cnn", "stn-c0", "stn-c1", "stn-sl1", "stn-dl1"]


def _example_record(kind: str, channels: int, rng: np.random.Generator) -> dict:
    enc = [records.encode_image(rng.random((channels, 8, 8))) for _ in range(2)]
    ex = {"inputs": enc, "st_output": enc, "st_output_kind": kind, "info": {}}
    if kind.startswith("feature"):
        ex["theta_on_input"] = enc
    return {"summaries": {"examples": ex}}


def _orientation_record(model: str, seed: int, rng: np.random.Generator) -> dict:
    a = rng.uniform(-90, 90, 400)
    p = -0.5 * a + rng.normal(0, 10, 400)
    stats = measures.orientation_stats(a, p, rng.integers(0, 10, 400))
    epochs = [0.0, 1.0, 2.0, 3.0]
    orient = [None] + [{"slope": -0.1 * k, "abs_r": 0.2 * k, "r": -0.2 * k, "pooled_class_deviation": 50 - 5 * k}
                       for k in (1, 2, 3)]
    return {"model": model, "seed": seed, "metrics": {"orientation": {"kind": "rotation", **stats}},
            "summaries": {"angle_hist": measures.sparse_histogram2d(a, p, 55, 110.0),
                          "misalignment": {"kind": "rotation", "angle_deg": [-90, 0, 90],
                                           "feature_maps": [1.0, 0.0, 1.0], "after_st": [0.5, 0.0, 0.5]}},
            "curves": {"epoch": epochs, "iteration": [0, 1, 2, 3], "test_error": [0.9, 0.1, 0.05, 0.04],
                       "orientation": orient}}


def _drawn_colours(fig: plt.Figure) -> dict[str, set[str]]:
    """Every colour each model is drawn in, from the ``gid`` the palette gives its artists."""
    out: dict[str, set[str]] = {}
    for artist in fig.findobj(lambda a: isinstance(a.get_gid(), str) and ":" in a.get_gid()):
        model = artist.get_gid().split(":", 1)[1]
        colour = artist.get_color() if hasattr(artist, "get_color") else artist.get_edgecolor()
        out.setdefault(model, set()).add(to_hex(colour))
    return out


def test_examples_rgb_rows_in_colour_feature_maps_in_grey():
    rng = np.random.default_rng(0)
    recs = {"stn-c0": _example_record("image", 3, rng), "stn-c3": _example_record("feature maps", 3, rng)}
    fig = figures.examples(recs, n=2)
    rows = [ax.get_images()[0].get_array() for ax in fig.axes[::2]]  # first column: one axes per row
    assert [r.shape for r in rows] == [(8, 8, 3), (8, 8, 3), (8, 8, 3), (8, 8)]
    plt.close(fig)


def test_examples_grey_digits_and_row_labels():
    rng = np.random.default_rng(1)
    fig = figures.examples({"stn-c1": _example_record("feature maps", 1, rng)}, n=2)
    assert [ax.get_ylabel() for ax in fig.axes[::2]] == ["input", "STN-C1\nθ on input", "STN-C1\nmaps"]
    plt.close(fig)


def test_every_model_has_its_own_colour_and_unknown_ones_are_refused():
    names = MODELS + ["ecnn", "stn-ec1"] + [f"stn-{f}{x}" for f in ("c", "sl", "dl") for x in (3, 6, 8)]
    assert len({palette.color(n) for n in names}) == len(names)
    with pytest.raises(ValueError, match="no colour for model 'stn-x9'"):
        palette.style("stn-x9")


def test_figures_draw_each_model_in_its_palette_colour():
    rng = np.random.default_rng(2)
    runs = {m: [_orientation_record(m, s, rng) for s in range(3)] for m in MODELS[1:]}
    for fig in (figures.orientation_trend(runs), figures.misalignment({m: r[0] for m, r in runs.items()}),
                figures.learning_curves(runs)):
        drawn = _drawn_colours(fig)
        assert set(drawn) == set(MODELS[1:])
        for model, colours in drawn.items():
            assert colours == {palette.color(model).lower()}, (model, colours)
        plt.close(fig)


def test_the_colour_check_can_fail():
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1], gid="model:stn-c1", color="#0000ff")
    assert _drawn_colours(fig)["stn-c1"] != {palette.color("stn-c1").lower()}
    plt.close(fig)


def test_figures_are_drawn_at_display_size_with_readable_text_and_carry_it():
    rng = np.random.default_rng(3)
    recs = {m: _orientation_record(m, 0, rng) for m in MODELS[1:]}
    fig = figures.angle_histograms(recs, expectation={"stn-c1": "paper Fig. 3: flat"})
    width_in = fig.get_figwidth()
    assert width_in <= figures.WIDE_IN and figures.smallest_font_pt(fig) >= figures.MIN_FONT_PT
    png = Image.open(io.BytesIO(figures.png_bytes(fig)))
    assert float(png.text[figures.WIDTH_KEY]) == width_in
    assert float(png.text[figures.FONT_KEY]) >= figures.MIN_FONT_PT
    assert abs(png.size[0] - width_in * figures.DPI) <= 1  # matplotlib truncates to whole pixels
    shown = figures.show(figures.orientation_trend({"stn-c0": [recs["stn-c0"]]}))
    assert shown.width == round(figures.WIDE_IN * 96)


def test_the_widest_figure_keeps_its_smallest_text_readable_on_a_phone():
    # A 420 px phone window shows an image at most 388 px wide (tools/check_html.py's rule: text ≥ 9 px).
    px_per_in = 388 / figures.WIDE_IN
    assert figures.MIN_FONT_PT / 72 * px_per_in >= 9
    # The PNG has no alpha channel: the backgrounds are opaque and it would only add bytes.
    assert Image.open(io.BytesIO(figures.png_bytes(plt.subplots(figsize=(2, 1))[0]))).mode == "RGB"


def test_small_text_is_reported_as_such():
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.set_title("tiny", fontsize=5)
    assert figures.smallest_font_pt(fig) == 5
    plt.close(fig)


def test_a_figure_too_wide_or_with_too_small_text_is_refused_before_it_reaches_the_book():
    with pytest.raises(ValueError, match=r"6\.40 in wide.*WIDE_IN = 5\.6"):
        figures.png_bytes(plt.subplots(figsize=(6.4, 2))[0])
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.set_title("tiny", fontsize=7)
    with pytest.raises(ValueError, match="7 pt text.*MIN_FONT_PT = 9.5"):
        figures.png_bytes(fig)
