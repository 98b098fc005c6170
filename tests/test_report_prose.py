"""Sentence builders of stnlib.report.prose that the chapters share."""

from __future__ import annotations

from stnlib.report import prose


def test_seed_counts_say_which_models_have_fewer_seeds():
    assert prose.seed_counts_phrase({"stn-c0": 3, "stn-c1": 3}) == "mean over 3 seeds"
    mixed = prose.seed_counts_phrase({"stn-c0": 3, "stn-c1": 3, "stn-sl1": 3, "ecnn": 1, "stn-ec1": 1})
    assert mixed == "means over 3 seeds; 1 seed for C4-CNN and STN-EC1 (equivariant)"
    assert prose.seed_counts_phrase({"cnn": 1}) == "mean over 1 seed"
