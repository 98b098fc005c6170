"""The toy and theory chapters' figures and sentences: numbers and direction words from what they are given,
figures at display size with readable text, and no line of theirs in a model's colour."""

from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from stnlib import toy  # noqa: E402
from stnlib.report import figures, palette, prose, theory  # noqa: E402
from stnlib.report import toy as report  # noqa: E402

MODEL_COLOURS = {c.color.lower() for c in palette.STYLES.values()}


@pytest.fixture(scope="module")
def wm():
    return toy.wm_counterexample(angles=range(0, 360, 45), affine_steps=4)


@pytest.fixture(scope="module")
def bar():
    return toy.bar_example(angles=range(0, 360, 90))


@pytest.fixture(scope="module")
def layers():
    torch.manual_seed(0)
    images = torch.rand(3, 1, 28, 28) * (torch.rand(3, 1, 28, 28) > 0.6)
    return toy.random_first_layer(0), toy.random_first_layer(1), images


def _fake_wm(*, back=2 ** 0.5, best_rotation=1.3512, affine=1.0, bound=1.0, swap=0.0, cross=0.43, m_sum=0.0):
    return SimpleNamespace(back_rotated_error=back, rotation=SimpleNamespace(best_error=best_rotation),
                           affine=SimpleNamespace(best_error=affine), lower_bound=bound, swap_error=swap,
                           cross_response=cross, channel_sums={"W": (2.389, m_sum)})


def _line_colours(fig: plt.Figure) -> set[str]:
    return {to_hex(ln.get_color()).lower() for ln in fig.findobj(Line2D) if ln.get_xdata() is not None
            and len(ln.get_xdata())}


def _contract(fig: plt.Figure) -> None:
    assert fig.get_figwidth() <= figures.WIDE_IN  # readable on a 420 px phone, too
    assert figures.smallest_font_pt(fig) >= figures.MIN_FONT_PT


# --------------------------------------------------------------------------- sentences


def test_letters_text_says_below_the_threshold_only_when_it_is():
    text = report.letters_text(_fake_wm(cross=0.43), ink_pixels=95)
    assert "is 0.430, below the threshold, so the wrong channel stays exactly zero" in text
    assert "the W has 95 ink pixels" in text and "channel M exactly 0." in text
    high = report.letters_text(_fake_wm(cross=0.61, m_sum=0.25), ink_pixels=95)
    assert "0.610, at or above the threshold" in high and "channel M 0.250." in high
    assert "below the threshold" not in high


def test_search_text_at_the_bound_and_above_it():
    at = report.search_text(_fake_wm())
    assert "error of 1.4142 ($\\sqrt 2$" in at and "No rotation does better than 1.3512" in at
    assert "gets to 1.0000, the bound itself" in at and "never below the bound" in at
    assert "error 0.0e+00, exactly," in at
    above = report.search_text(_fake_wm(back=1.2, best_rotation=0.9, affine=1.2, swap=3e-7))
    assert "\\sqrt 2" not in above and "never below the bound" not in above
    assert "gets to 1.2000, 0.2000 above the bound" in above and "the bound itself" not in above
    assert "error 3.0e-07, to float precision" in above and "exactly" not in above


def test_bar_text_reads_filter_and_bar(bar):
    text = report.bar_text(bar)
    assert "The filter is 3×7" in text and "bias -4" in text and "at least 5 of its 7 columns" in text
    assert "The bar is 3×21 pixels" in text and "3 pixels wide: too short to pass the threshold." in text
    wide = report.bar_text(SimpleNamespace(image=toy.bar_image(width=5)))
    assert "The bar is 5×21 pixels" in wide and "wide enough to pass the threshold." in wide


def test_exact_lines_are_the_numbers(wm, bar):
    lines = report.wm_numbers(wm).splitlines()
    assert lines[0].startswith("error of R^-1 Γ(R f), the inverse rotation:") and lines[0].endswith("1.4142")
    assert "best rotation (8 angles, every 45°):" in lines[1] and lines[1].endswith(f"{wm.rotation.best_error:.4f}")
    assert "(10 starts, 4 Adam steps)" in lines[2]
    assert lines[-1].endswith("0.0e+00")
    assert len({len(line) - len(line.rsplit(None, 1)[-1]) for line in lines}) == 1  # the values line up
    assert report.bar_numbers(bar).splitlines()[2].endswith("1.0000")


def test_training_text_direction():
    down = report.training_text("quick", [2.3] + [0.1] * 60, 12.4)
    assert "trained for 61 SGD steps" in down and "in 12 s" in down
    assert "over the last 50 steps is 0.100, down from 2.30" in down
    flat = report.training_text("smoke", [1.0, 1.5, 2.0], 1.0)
    assert "last 3 steps is 1.500, not below 1.00" in flat


def _study(r90=1.12, t90=1.31, s90=2e-7, s180=3e-7, p45=0.21, s45=0.74, shift=0.0):
    angles = [-180, -90, -45, 0, 45, 90, 180]
    def curve(a45, a90, a180):
        return torch.tensor([a180, a90, a45, 0.0, a45, a90, a180], dtype=torch.float64)
    rotation = {"random conv1": curve(0.91, r90, 1.1), "trained conv1": curve(0.99, t90, 1.2),
                "trained, made C4-invariant": curve(s45, s90, s180), "pointwise (interpolation only)": curve(p45, 0, 0)}
    trans = {n: {a: torch.tensor([shift, 0.0, 0.0], dtype=torch.float64) for a in "xy"}
             for n in ("random conv1", "trained conv1")}
    return report.FirstLayerStudy(angles, rotation, (-6, 0, 6), trans)


def test_first_layer_text_takes_its_words_from_the_curves():
    text = report.first_layer_text(_study())
    assert "1.12 for the random layer and 1.31 for the trained one, more than an all-zero map would have (1)" in text
    assert "gets 2.0e-07 at 90° and 3.0e-07 at 180°, as the theory says it must" in text
    assert "interpolation alone costs 0.21" in text and "C4-invariant layer at 0.74, higher than the interpolation" in text
    assert "up to 6 pixels" in text and "is 0.0e+00: exactly zero" in text
    other = report.first_layer_text(_study(r90=0.95, s90=0.2, s45=0.1, shift=2e-7))
    assert "more than an all-zero map" not in other and "as the theory says" not in other
    assert "higher than the interpolation" not in other and "exactly zero" not in other
    assert "is 2.0e-07, float rounding" in other


def test_first_layer_study_measures_every_layer(layers):
    random_conv, trained_conv, images = layers
    study = report.first_layer_study(random_conv, trained_conv, images, 90, shifts=(-2, 0, 2))
    assert list(study.rotation) == list(report.LAYER_STYLES)
    assert study.angles == [-180, -135, -90, -45, 0, 45, 90, 135, 180]
    assert study.at("trained, made C4-invariant", 90) < 1e-5 < study.at("random conv1", 90)
    assert study.max_translation < 1e-5


def test_exact_rule_and_ran_in():
    text = prose.exact_rule_text(2e-6, 0.75)
    assert "at most 2e-06" in text and "at least 0.75" in text
    assert "at most 1e-05" in prose.exact_rule_text() and "at least 0.5" in prose.exact_rule_text()
    assert prose.ran_in(159.0, "quick") == "This chapter ran in 2 min 39 s (profile `quick`)."


def test_card_lines_name_the_work():
    assert "the first 256 test digits" in report.card_data_sources(256, "MNIST")[1]
    assert any("after 600 steps of SGD" in d for d in report.card_deviations(600))


# --------------------------------------------------------------------------- figures


def test_toy_figures_keep_the_size_and_font_contract(wm, bar, layers):
    random_conv, trained_conv, images = layers
    study = _study()
    for fig in (report.letters_figure(wm), report.wm_maps_figure(wm), report.search_figure(wm),
                report.bar_figure(bar), report.filters_figure(random_conv, trained_conv, 3),
                report.curves_figure(study), report.digit_figure(trained_conv, images[:1]),
                theory.architectures_figure()):
        _contract(fig)
        plt.close(fig)


def test_layer_lines_are_drawn_in_their_colours_which_no_model_has():
    colours = {s["color"].lower() for s in report.LAYER_STYLES.values()}
    assert len(colours) == len(report.LAYER_STYLES) and not colours & MODEL_COLOURS
    fig = report.curves_figure(_study())
    drawn = {ln.get_label(): to_hex(ln.get_color()).lower() for ln in fig.axes[0].get_lines()}
    assert drawn == {n: s["color"].lower() for n, s in report.LAYER_STYLES.items()}
    assert not _line_colours(fig) & MODEL_COLOURS
    plt.close(fig)


def test_search_figure_uses_no_model_colour(wm):
    fig = report.search_figure(wm)
    assert not _line_colours(fig) & MODEL_COLOURS
    assert figures.FIT_COLOR.lower() in _line_colours(fig)  # the rotation + swap line
    plt.close(fig)


def test_the_model_colour_check_can_fail():
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1], color=palette.color("stn-c1"))
    assert _line_colours(fig) & MODEL_COLOURS
    plt.close(fig)
    small_fig, ax = plt.subplots(figsize=(7, 2))
    ax.set_title("tiny", fontsize=6)
    with pytest.raises(AssertionError):
        _contract(small_fig)
    plt.close(small_fig)


def test_architecture_titles_take_the_palette_colour_and_boxes_none():
    fig = theory.architectures_figure()
    titles = {t.get_gid().split(":", 1)[1]: to_hex(t.get_color()).lower() for t in fig.findobj(Text)
              if isinstance(t.get_gid(), str) and t.get_gid().startswith("model:")}
    assert titles == {m: palette.color(m).lower() for _, m, _, _ in theory.ARCHITECTURES}
    fills = {to_hex(p.get_facecolor()).lower() for ax in fig.axes for p in ax.patches}
    assert fills and not fills & MODEL_COLOURS
    plt.close(fig)


def test_card_data_source_of_the_theory_chapter():
    assert theory.card_data_source("MNIST", n_digits=64).startswith("MNIST: the first 64 test digits")
