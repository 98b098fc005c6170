"""Figures draw what the records hold: colour for RGB image rows, grey for feature maps."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from stnlib import plotting, records  # noqa: E402


def _example_record(kind: str, channels: int, rng: np.random.Generator) -> dict:
    enc = [records.encode_image(rng.random((channels, 8, 8))) for _ in range(2)]
    ex = {"inputs": enc, "st_output": enc, "st_output_kind": kind, "info": {}}
    if kind.startswith("feature"):
        ex["theta_on_input"] = enc
    return {"summaries": {"examples": ex}}


def test_examples_rgb_rows_in_colour_feature_maps_in_grey():
    rng = np.random.default_rng(0)
    recs = {"stn-c0": _example_record("image", 3, rng), "stn-c3": _example_record("feature maps", 3, rng)}
    fig = plotting.examples(recs, n=2)
    rows = [ax.get_images()[0].get_array() for ax in fig.axes[::2]]  # first column: one axes per row
    assert [r.shape for r in rows] == [(8, 8, 3), (8, 8, 3), (8, 8, 3), (8, 8)]
    plt.close(fig)


def test_examples_grey_digits_and_row_labels():
    rng = np.random.default_rng(1)
    fig = plotting.examples({"stn-c1": _example_record("feature maps", 1, rng)}, n=2)
    assert [ax.get_ylabel() for ax in fig.axes[::2]] == ["input", "STN-C1\nθ on input", "STN-C1\nfeature map"]
    assert all(ax.get_images()[0].get_array().shape == (8, 8) for ax in fig.axes)
    plt.close(fig)


def test_every_paper_model_has_its_own_colour():
    names = ["cnn", "stn-c0", "stn-c1", "stn-sl1", "stn-dl1"] + [
        f"stn-{f}{x}" for f in ("c", "sl", "dl") for x in (3, 6, 8)]
    colours = [tuple(plotting.PALETTE[n]) for n in names]
    assert len(set(colours)) == len(names)
