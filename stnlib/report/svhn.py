"""The SVHN chapter's tables, figures and sentences, built from records (and the data's own settings)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from stnlib import paper, transforms
from stnlib import nn as networks
from stnlib.data import svhn
from stnlib.data.svhn.synthetic import difficulty
from stnlib.datasets import DATASETS, SVHN_BLANK, SVHN_POSITIONS
from stnlib.nn import display_name
from stnlib.report.figures import WIDE_IN, plt

DEPTHS = (0, 3, 6, 8)
Records = Mapping[str, Sequence[Mapping[str, Any]]]


def data_source(recs: Records) -> tuple[str, bool]:
    """The records' data source, and whether it is real SVHN (then the paper's numbers compare)."""
    sources = sorted({r["provenance"]["data_source"] for rs in recs.values() for r in rs})
    return "; ".join(sources), sources == [svhn.REAL_SOURCE]


def data_text(recs: Records) -> str:
    """Where the chapter's numbers come from, and the format-1 protocol (Markdown)."""
    source, real = data_source(recs)
    cfg = next(iter(recs.values()))[0]["config"]["settings"]
    out = [f"**The numbers in this chapter come from: {source}.**"]
    if not real:
        sc = difficulty(cfg.get("svhn_difficulty") or "paper-like")
        longest = max(i + 1 for i, p in enumerate(sc.length_probs) if p > 0)
        out.append(
            "No copy of SVHN could be downloaded where this book was built, so the records were trained on images "
            f"generated in code (`stnlib.data.svhn.synthetic`), at the stand-in's "
            f"'{cfg.get('svhn_difficulty') or 'paper-like'}' difficulty: house numbers of 1 to {longest} printed "
            f"digits in {len(sc.fonts)} TrueType fonts, in random colours on textured backgrounds, rotated by up to "
            f"±{sc.max_rotation_deg:g}°, sheared by up to ±{sc.max_shear:g}, with neighbouring distractors, blur and "
            "noise. Each image is cropped exactly as real SVHN is, so inputs and labels have the paper's format. It "
            "is not real data: its error levels are not comparable with the paper's, and only the trends across "
            "depth are set beside Table 2. With real SVHN format 1 on disk (`python -m stnlib data svhn`) the same "
            "code trains on it instead and this text changes.")
    n_train_real = sum(svhn.SVHN_ARCHIVES[s].n_images for s in svhn.SPLIT_SOURCES["train"])
    out.append(
        "**Format 1, as in the paper.** Every image shows a whole house number, cropped to the union of the digit "
        f"boxes enlarged by {100 * svhn.CROP_ENLARGE:.0f}% and resized to {svhn.IMAGE_SIZE}×{svhn.IMAGE_SIZE} RGB "
        f"pixels. The label has {SVHN_POSITIONS} positions, each a digit or a blank after the last digit "
        f"({DATASETS['svhn'].classes} classes). A prediction counts as correct only when every position is right "
        f"(the *sequence error*). There is no augmentation. The paper trains on SVHN's train and extra sets "
        f"({n_train_real:,} images) and tests on its test set ({svhn.SVHN_ARCHIVES['test'].n_images:,}).")
    return " ".join(out)


def training_images(recs: Records, n: int = 16) -> plt.Figure | None:
    """The first ``n`` training images exactly as the records saw them, with their labels (None: not on disk)."""
    source, real = data_source(recs)
    cfg = next(iter(recs.values()))[0]["config"]["settings"]
    if real:
        if not svhn.real_svhn_available():
            return None
        images, labels, _ = svhn.load_svhn_cache(None, "train")
    else:
        images, labels = svhn.make_synthetic_svhn(n, seed=0, split="train", progress=False,
                                                  config=difficulty(cfg.get("svhn_difficulty") or "paper-like"))
    cols = 8
    fig, axes = plt.subplots(-(-n // cols), cols, figsize=(WIDE_IN, 1.75 * -(-n // cols)))
    for ax, im, lab in zip(axes.flat, images[:n], labels[:n]):
        ax.imshow(np.transpose(im, (1, 2, 0)), interpolation="nearest")
        ax.set_title("".join(str(int(d)) for d in lab if d != SVHN_BLANK))
        ax.set(xticks=[], yticks=[])
        ax.grid(False)
    fig.tight_layout(pad=0.3)
    return fig


def placements(recs: Records) -> pd.DataFrame:
    """Where each ST sits: the map the localisation head reads at depth X, what the ST warps, parameters."""
    width = next(iter(recs.values()))[0]["config"]["settings"]["width"]
    rows = {}
    for x in DEPTHS:
        net = networks.build(f"stn-c{x}", "svhn", width=width)
        with torch.no_grad():
            fmap, _ = net.transform(torch.zeros(1, *DATASETS["svhn"].input_shape))
        row = {"map at X": "×".join(map(str, fmap.shape[1:])),
               "STN-CX warps": "the input image" if x == 0 else "these feature maps",
               "STN-SLX / DLX warp": "—" if x == 0 else "the input image (3×64×64)"}
        for fam, key in (("CX", "c"), ("SLX", "sl"), ("DLX", "dl")):
            m = "stn-c0" if x == 0 else f"stn-{key}{x}"
            ok = m in recs and (x > 0 or fam == "CX")
            row[f"parameters, STN-{fam}"] = f"{recs[m][0]['metrics']['parameters']:,}" if ok else "—"
        rows[f"X = {x}"] = row
    return pd.DataFrame(rows).T


def paper_table2() -> pd.DataFrame:
    """The paper's Table 2 (real SVHN), as published."""
    return pd.DataFrame({f"STN-{fam}": [paper.TABLE2_ERROR_PERCENT.get("stn-c0" if x == 0 else f"stn-{key}{x}")
                                        for x in DEPTHS] for fam, key in (("CX", "c"), ("SLX", "sl"))},
                        index=[f"X = {x}" for x in DEPTHS]).map(lambda v: f"{v:.2f}%")


def transform_summary(recs: Records) -> pd.DataFrame:
    """What each ST's transforms of the six example images do to the content (from their theta)."""
    rows = {}
    for m, rs in recs.items():
        ex = rs[0]["summaries"].get("examples", {})
        if "theta" not in ex:
            continue
        theta = torch.tensor(ex["theta"], dtype=torch.float64)
        size = tuple(ex["inputs"][0]["shape"][-2:])
        rows[display_name(m)] = {
            "content scale (median)": f"{torch.exp2(transforms.theta_log2_scale(theta)).median().item():.2f}×",
            "rotation (median |°|)": f"{transforms.theta_rotation_deg(theta).abs().median().item():.1f}",
            "shift (median px)": f"{transforms.theta_translation_px(theta, size).norm(dim=1).median().item():.1f}",
        }
    return pd.DataFrame(rows).T


def errors_by_model(recs: Records) -> dict[str, list[float]]:
    """``{model: [sequence error % per seed]}`` of the complete records."""
    return {m: [100 * r["metrics"]["test_error"] for r in rs if r["status"] == "complete"] for m, rs in recs.items()}
