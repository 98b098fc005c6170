"""The "Beyond the paper" chapter: the C4 identities checked on a digit, and its figures and sentences.

The equivariant layers are :mod:`stnlib.nn.equivariant`; the trained models' tables come from
:mod:`stnlib.report.tables`. This module computes the chapter's demonstration on one MNIST digit
(:func:`c4_demo`: the identities of the group action and the counterexamples, to float precision) and
turns tables of records into the chapter's sentences, every number and direction word taken from the
tables it is given (tested in ``tests/test_report_beyond.py``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
import torch
from torch import Tensor

from stnlib import measures, profiles, transforms
from stnlib import nn as networks
from stnlib.data import NORMALIZATION, mnist_arrays
from stnlib.nn import display_name as name
from stnlib.nn.equivariant import DEFAULT_FIELDS, rotate_fields, split_fields
from stnlib.report.figures import MIN_FONT_PT
from stnlib.report.prose import compared, f2, seed_counts_phrase, small
from stnlib.report.figures import WIDE_IN

EXPERIMENT = "mnist-rot"
#: What the chapter loads: the input-level STN-C0 (the reference of the ledger's regime check), the
#: paper's STN-C1 and STN-SL1, and the two C4 models.
MODELS: tuple[str, ...] = ("stn-c0", "stn-c1", "stn-sl1", "ecnn", "stn-ec1")
ST_MODELS: tuple[str, ...] = ("stn-c0", "stn-c1", "stn-sl1", "stn-ec1")
#: Quarter turns of the demonstration, and what counts as equal "to float precision" there.
TURNS: tuple[int, ...] = (1, 2, 3)
EXACT = 1e-5
#: |Relative error| this close to 1 reads as "about what an all-zero map scores".
ZERO_MAP_BAND = 0.15


def card_deviations(profile: str) -> dict[str, list[str]]:
    """The card's deviations: the profile's for rotated MNIST, and the extension itself."""
    ext = profiles.EXTENSION_MODELS[EXPERIMENT]
    pin = profiles.get_profile(profile).pin(EXPERIMENT, ext[0])
    own = ([f"{pin.why}; their settings:", *pin.described_deviations] if pin else [])
    return {EXPERIMENT: list(profiles.deviations_for(profile, EXPERIMENT)),
            "C4 models": ["not an experiment of the paper: the C4-CNN (ecnn) and STN-EC1 (an equivariant "
                          "feature-map ST) are our extension, trained under the settings of the rotated-MNIST "
                          "experiment", *own]}


# ---------------------------------------------------------------------------------------
# the architecture


def parameter_counts() -> dict[str, int]:
    """Parameters of the CNN, the C4-CNN, STN-EC1, STN-C1 and of STN-C1's localisation network (``"loc"``)."""
    nets = {m: networks.build(m, EXPERIMENT) for m in ("cnn", "ecnn", "stn-ec1", "stn-c1")}
    counts = {m: sum(p.numel() for p in n.parameters()) for m, n in nets.items()}
    counts["loc"] = sum(p.numel() for p in nets["stn-c1"].localization_parameters())
    return counts


def _fewer(a: int, b: int) -> str:
    return "as many parameters as" if a == b else ("fewer parameters than" if a < b else "more parameters than")


def architecture_text(counts: Mapping[str, int], fields: tuple[int, int] = DEFAULT_FIELDS) -> str:
    """The C4-CNN and STN-EC1 in numbers: fields, channels, parameters against the CNN and STN-C1."""
    f1, f2 = fields
    return (f"The **C4-CNN** (`ecnn`) is the MNIST CNN of the paper with its two convolutions replaced: a lifting "
            f"convolution with {f1} fields ({4 * f1} channels) and a group convolution with {f2} fields, followed by "
            f"orientation pooling and the same linear read-out. With {counts['ecnn']:,} parameters it has "
            f"{_fewer(counts['ecnn'], counts['cnn'])} the CNN ({counts['cnn']:,}). **STN-EC1** (`stn-ec1`) inserts "
            "the equivariant ST after the first block, exactly where STN-C1 has its ST, with STN-C1's localisation "
            f"network ({counts['loc']:,} parameters): {counts['stn-ec1']:,} in all, "
            f"{_fewer(counts['stn-ec1'], counts['stn-c1'])} STN-C1 ({counts['stn-c1']:,}). The read-out sees the "
            "orientation-pooled maps at their positions, so the C4-CNN is not invariant to quarter turns (a 6 and "
            "a 9 stay distinguishable) and an ST in front of it still has work to do.")


# ---------------------------------------------------------------------------------------
# the identities on one digit


@dataclass
class C4Demo:
    """The group action on one digit (see :func:`c4_demo`)."""

    digit: Tensor                       # 1×1×28×28, normalised as the networks see it
    label: int
    net: Any                            # STN-EC1 with random weights
    errors: pd.DataFrame                # rows: checks; columns: quarter turns k; relative errors
    identities: list[str] = field(default_factory=list)       # rows that must vanish
    counterexamples: list[str] = field(default_factory=list)  # rows that must not


def _turn(x: Tensor, k: int) -> Tensor:
    """k quarter turns counter-clockwise as displayed (== transforms.rotate(x, 90 * k))."""
    return torch.rot90(x, k, dims=(-2, -1))


def _err(a: Tensor, b: Tensor) -> float:
    return float(measures.alignment_error(a, b))


@torch.no_grad()
def c4_demo(digit: Tensor | None = None, label: int = -1, *, seed: int = 0, root: Any = None) -> C4Demo:
    """The identities of the C4 group action and the counterexamples, on one digit.

    ``digit`` is a normalised ``1×1×28×28`` image (default: the first MNIST test digit, normalised as the
    networks see it, with its label; ``root`` is the data folder).

    STN-EC1 and the paper's CNN with random weights (``torch.manual_seed(seed)``; the identities hold for
    every choice of weights): for each quarter turn ``k`` of :data:`TURNS`, the relative error between the
    two sides of each identity (lifting conv, group conv, first block, both blocks with orientation pooling,
    the equivariant ST given the undoing ``theta``) and of each counterexample (the inverse rotation in
    space only, for both networks, and an ordinary feature-map ST with the same ``theta``).
    """
    if digit is None:
        images, labels = mnist_arrays(train=False, root=root)
        mean, std = NORMALIZATION[EXPERIMENT]
        digit, label = (images[:1, None].float() / 255.0 - mean) / std, int(labels[0])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = networks.build("stn-ec1", EXPERIMENT).eval()
        cnn = networks.build("cnn", EXPERIMENT).eval()
    maps = net.first_layer(digit)
    rows: dict[str, list[float]] = {k: [] for k in (
        "lifting convolution", "group convolution", "first block Γ", "both blocks + orientation pooling",
        "equivariant feature-map ST, undoing theta", "C4-CNN, inverse rotation in space only",
        "paper's CNN, inverse rotation in space only", "ordinary feature-map ST, undoing theta")}
    for k in TURNS:
        turned = net.first_layer(_turn(digit, k))
        undo = transforms.rotation_theta(-90.0 * k, batch=1)
        for row, (a, b) in zip(rows, [
                (net.conv1(_turn(digit, k)), rotate_fields(net.conv1(digit), k)),
                (net.conv2(rotate_fields(maps, k)), rotate_fields(net.conv2(maps), k)),
                (turned, rotate_fields(maps, k)),
                (net.block2(turned), _turn(net.block2(maps), k)),
                (net.st.align(turned, undo), maps),
                (_turn(turned, -k), maps),
                (_turn(cnn.first_layer(_turn(digit, k)), -k), cnn.first_layer(digit)),
                (transforms.warp(turned, undo, padding_mode=net.st.padding_mode), maps)]):
            rows[row].append(_err(a, b))
    errors = pd.DataFrame(rows, index=[f"k = {k}" for k in TURNS]).T
    names = list(rows)
    return C4Demo(digit, label, net, errors, names[:5], names[5:])


def identity_table(demo: C4Demo) -> pd.DataFrame:
    """The demonstration's errors as display strings (one decimal in scientific notation)."""
    t = demo.errors.map(lambda e: f"{e:.1e}")
    t.index.name = f"relative error (digit {demo.label}, random weights)"
    return t


def identity_lines(demo: C4Demo, exact: float = EXACT) -> str:
    """One line per check, rounded so that the text is the same on every machine."""
    width = max(len(r) for r in demo.errors.index) + 2
    out = []
    for row, errs in demo.errors.iterrows():
        verdict = (f"equal to float precision (all < {exact:.0e})" if errs.max() < exact
                   else f"NOT aligned: {errs.min():.2f} to {errs.max():.2f}")
        out.append(f"{row:<{width}}{verdict}")
    return "\n".join(out)


def _range(errs: Sequence[float]) -> str:
    lo, hi = f"{min(errs):.2f}", f"{max(errs):.2f}"
    return lo if lo == hi else f"{lo} to {hi}"


def identity_text(demo: C4Demo, exact: float = EXACT) -> str:
    """What the demonstration shows: identities at float precision, space-only inverses far from it."""
    e = demo.errors
    ident_max = float(e.loc[demo.identities].to_numpy().max())
    c4 = e.loc["C4-CNN, inverse rotation in space only"].tolist()
    cnn = e.loc["paper's CNN, inverse rotation in space only"].tolist()
    plain = e.loc["ordinary feature-map ST, undoing theta"].tolist()
    est = e.loc["equivariant feature-map ST, undoing theta"].tolist()
    spatial = c4 + cnn
    near_zero_map = all(abs(v - 1.0) <= ZERO_MAP_BAND for v in spatial)
    holds = ident_max < exact
    return ((f"Every identity holds to a relative error of at most {ident_max:.1e}, float32 round-off. " if holds else
             f"The identities do **not** all hold: the largest error is {ident_max:.1e}, above {exact:.0e}. ")
            + f"The inverse rotation in space alone leaves errors of {_range(c4)} for the C4-CNN and {_range(cnn)} "
            "for the paper's CNN, "
            + ("about what an all-zero map scores (1). " if near_zero_map else "against 1 for an all-zero map. ")
            + "An equivariant network does not escape equation (1) of the paper by having rotation-proof channels: "
            "its channels change meaning under rotation as the CNN's do. What it gains is that the change is a known "
            f"permutation, which the equivariant ST undoes (error at most {max(est):.1e}), while the ordinary ST "
            f"with the same `theta` stays at {_range(plain)}.")


def fields_figure(demo: C4Demo, *, k: int = 1) -> plt.Figure:
    """One field of the first block on the digit (rows: Γf, Γ(R f), space-only inverse, group-action
    inverse) at its four orientations (columns), the field chosen as active at every orientation."""
    with torch.no_grad():
        maps = demo.net.first_layer(demo.digit)
        turned = demo.net.first_layer(_turn(demo.digit, k))
    rows = [("$f$", demo.digit, maps), (f"$R_{k} f$", _turn(demo.digit, k), turned),
            ("space only:\n$R^{-1}\\Gamma(Rf)$", None, _turn(turned, -k)),
            ("space and\norientations:\n$\\rho^{-1}\\Gamma(Rf)$", None, rotate_fields(turned, -k))]
    per_field = split_fields(maps).flatten(3).norm(dim=3)[0]
    chosen = int(per_field.min(dim=1).values.argmax())
    vmax = float(maps.max())
    fig, axes = plt.subplots(4, 5, figsize=(WIDE_IN, 5.6))
    for i, (label, image, fmap) in enumerate(rows):
        ax = axes[i, 0]
        if image is None:
            ax.axis("off")
            ax.text(0.5, 0.5, label, ha="center", va="center", fontsize=MIN_FONT_PT, transform=ax.transAxes)
        else:
            ax.imshow(image[0, 0].numpy(), cmap="gray", interpolation="nearest")
            ax.set_ylabel(label, fontsize=MIN_FONT_PT, rotation=0, ha="right", va="center")
        for r in range(4):
            axes[i, r + 1].imshow(split_fields(fmap)[0, chosen, r].numpy(), cmap="magma", vmin=0, vmax=vmax,
                                  interpolation="nearest")
            if i == 0:
                axes[i, r + 1].set_title(f"orientation {r}", fontsize=MIN_FONT_PT)
    for ax in axes.flat:
        ax.set(xticks=[], yticks=[])
        ax.grid(False)
        for spine in ax.spines.values():
            spine.set_visible(False)
    fig.tight_layout(pad=0.4)
    return fig


# ---------------------------------------------------------------------------------------
# the trained models


def error_text(t1: pd.DataFrame, experiment: str = EXPERIMENT) -> str:
    """The test errors, lowest first, and what the C4 layers and the equivariant ST change."""
    ours, seeds = t1[(experiment, "ours")].dropna(), t1[(experiment, "seeds")]
    ranked = ours.sort_values()
    c1, c1s, ecnn_s = ours["stn-c1"], "STN-C1's", "the C4-CNN's"
    return ("Test error, lowest first: " + ", ".join(f"{name(m)} {e:.2f}%" for m, e in ranked.items())
            + f" ({seed_counts_phrase(seeds[ours.index])}). The C4-CNN without any ST has {ours['ecnn']:.2f}%, "
            f"{compared(ours['ecnn'] - c1, c1s)} {c1:.2f}%; STN-EC1 has {ours['stn-ec1']:.2f}%, "
            f"{compared(ours['stn-ec1'] - ours['ecnn'], ecnn_s)}. The ledger at the end of the chapter judges the "
            "orientation, not these errors.")


def _steeper(d: float) -> str:
    """A slope difference (this minus the other) in words: a more negative slope undoes more of the rotation."""
    if round(d, 2) == 0:
        return "as steep as"
    return "steeper than" if d < 0 else "less steep than"


def orientation_text(o: pd.DataFrame, canonical_slope: float) -> str:
    """Slopes and |r| of every ST, STN-EC1 against STN-C1, and STN-C0 against the regime threshold."""
    parts = ["The slope of the predicted against the applied angle is "
             + ", ".join(f"{f2(o.loc[m, 'slope'])} for {name(m)}" for m in o.index) + ", and |r| is "
             + ", ".join(f"{f2(o.loc[m, 'abs_r'])} for {name(m)}" for m in o.index)
             + f" ({seed_counts_phrase(o['seeds'], 'mean')}; a slope of −1 would undo every rotation)."]
    if {"stn-ec1", "stn-c1"} <= set(o.index):
        d_r = o.loc["stn-ec1", "abs_r"] - o.loc["stn-c1", "abs_r"]
        d_s = o.loc["stn-ec1", "slope"] - o.loc["stn-c1", "slope"]
        c1s = "STN-C1's"
        parts.append(f"STN-EC1's |r| is {compared(d_r, c1s, unit='')}, and its slope is "
                     f"{_steeper(d_s)} STN-C1's.")
    if "stn-c0" in o.index:
        s0 = o.loc["stn-c0", "slope"]
        parts.append(f"STN-C0, whose ST acts on the input image and so can undo a rotation, reaches a slope of "
                     f"{f2(s0)}, " + ("steep enough for" if s0 <= canonical_slope else "not as steep as")
                     + f" the {canonical_slope:g} the ledger requires before it judges a claim about orientation.")
    return " ".join(parts)


def misalignment_text(mis: pd.DataFrame, *, exact: float = EXACT) -> str:
    """Equation (1) measured on the trained first layers (group action for C4) and after each ST."""
    fm, after = mis["feature_maps"], mis["after_st"]
    c4 = [m for m in ("ecnn", "stn-ec1") if m in fm.index]
    aligned90 = all(fm.loc[m, 90] <= exact for m in c4)
    out = ["At ±90°, where the group action is exact, the C4 first layers are aligned to "
           + " and ".join(f"{small(fm.loc[m, 90])} for {name(m)}" for m in c4)
           + f", while STN-C1's first layer, inversely rotated in space, is at {fm.loc['stn-c1', 90]:.2f}."
           + ("" if aligned90 else " The C4 layers are not aligned at float precision there, which the identities "
                                   "above say they should be."),
           "At ±45°, half-way between two orientations, the interpolated orientation shift leaves "
           + " and ".join(f"{fm.loc[m, 45]:.2f} for {name(m)}" for m in c4)
           + f", against {fm.loc['stn-c1', 45]:.2f} for STN-C1"
           + (": C4 gives exact alignment on its own grid only." if aligned90 and min(fm.loc[m, 45] for m in c4) > 1e-3
              else ".")]
    sts = [m for m in ("stn-ec1", "stn-c1", "stn-sl1", "stn-c0") if m in after.index and not math.isnan(after.loc[m, 90])]
    out.append("After the ST, the distance between the outputs for the rotated and the upright digit is "
               + "; ".join(f"{after.loc[m, 90]:.2f} at ±90° and {after.loc[m, 45]:.2f} at ±45° for {name(m)}" for m in sts)
               + f"; the smallest at ±90° is {name(min(sts, key=lambda m: after.loc[m, 90]))}'s.")
    return " ".join(out)
