"""The exact claims: constructions that hold to float precision unless there is a bug.

They are statements about fixed, hand-built or randomly initialised feature extractors, computed live
from :mod:`stnlib.toy` with exact quarter turns and integer shifts (a few seconds, no training, the same
in every profile). A relative feature-map error ``||S Γ(Tf) − Γf|| / ||Γf||`` at or below
:data:`ALIGNED_TOL` counts as *aligned* (float32 rounding); at or above :data:`MISALIGNED` as *clearly not
aligned* (more than half of the reference left over). They are reported apart from the trained results.
"""

from __future__ import annotations

import functools
from typing import Any

from stnlib.claims.verdicts import FAILS_EXACTLY, HOLDS_EXACTLY, NOT_RUN, Judgement

ALIGNED_TOL = 1e-5
MISALIGNED = 0.5


@functools.lru_cache(maxsize=1)
def wm_numbers() -> dict[str, float]:
    """The W/M counterexample's errors (cached: the same in every profile)."""
    from stnlib import toy

    # A 15° grid includes every quarter turn (exact); the affine fit starts at the true inverse.
    wm = toy.wm_counterexample(angles=range(0, 360, 15), affine_steps=60)
    return {"back_rotated": wm.back_rotated_error, "best_rotation": wm.rotation.best_error,
            "best_affine": wm.affine.best_error, "lower_bound": wm.lower_bound, "swap": wm.swap_error}


@functools.lru_cache(maxsize=1)
def first_layer_numbers() -> dict[str, Any]:
    """Misalignment of a random MNIST conv1 for exact quarter turns and integer shifts (cached)."""
    from stnlib import toy

    images = toy.mnist_test_images(64)
    conv = toy.random_first_layer(0)
    norm = toy.MNIST_NORMALIZATION
    angles = (90.0, 180.0, 270.0)
    shifts = ((3, 0), (0, -2), (5, 5), (-4, 3))
    rot = toy.rotation_misalignment_curve(conv, images, angles, normalization=norm)
    inv = toy.rotation_misalignment_curve(toy.c4_symmetrized(conv), images, angles, normalization=norm)
    tr = toy.translation_misalignment_curve(conv, images, shifts, normalization=norm)
    return {"n_images": int(images.shape[0]), "angles": angles, "shifts": shifts,
            "rotation": [float(v) for v in rot], "invariant": [float(v) for v in inv],
            "translation": [float(v) for v in tr]}


def _first_layer_or_missing() -> dict[str, Any] | Judgement:
    try:
        return first_layer_numbers()
    except FileNotFoundError as e:
        return Judgement(NOT_RUN, "—", notes=(f"MNIST test digits not available: {e}",))


def theory_rotation() -> Judgement:
    r = _first_layer_or_missing()
    if isinstance(r, Judgement):
        return r
    worst = min(r["rotation"])
    control = max(r["invariant"])
    holds = worst >= MISALIGNED and control <= ALIGNED_TOL
    per_angle = ", ".join(f"{a:.0f}°: {v:.2f}" for a, v in zip(r["angles"], r["rotation"]))
    return Judgement(
        HOLDS_EXACTLY if holds else FAILS_EXACTLY,
        f"random conv1 on {r['n_images']} MNIST digits, error after undoing the rotation spatially: {per_angle}; "
        f"with C4-invariant filters: {control:.1e}",
        notes=(f"smallest error over exact quarter turns {worst:.2f} ({'≥' if worst >= MISALIGNED else '<'} "
               f"{MISALIGNED}); control with C4-invariant filters {control:.1e} "
               f"({'≤' if control <= ALIGNED_TOL else '>'} {ALIGNED_TOL:g}: the measure reaches 0 where the "
               "theory says it should)",),
        values={f"rotation {a:.0f}°": v for a, v in zip(r["angles"], r["rotation"])}
        | {f"C4-invariant {a:.0f}°": v for a, v in zip(r["angles"], r["invariant"])})


def theory_translation() -> Judgement:
    r = _first_layer_or_missing()
    if isinstance(r, Judgement):
        return r
    worst = max(r["translation"])
    shifts = ", ".join(f"({dx},{dy})" for dx, dy in r["shifts"])
    return Judgement(
        HOLDS_EXACTLY if worst <= ALIGNED_TOL else FAILS_EXACTLY,
        f"random conv1 on {r['n_images']} MNIST digits, integer shifts {shifts} px: largest error after "
        f"shifting the feature maps back {worst:.1e}",
        notes=(f"largest error {worst:.1e} {'≤' if worst <= ALIGNED_TOL else '>'} {ALIGNED_TOL:g} away from the "
               "borders",),
        values={f"shift {s}": v for s, v in zip(r["shifts"], r["translation"])})


def toy_counterexample() -> Judgement:
    r = wm_numbers()
    best_spatial = min(r["best_rotation"], r["best_affine"])
    holds = best_spatial >= MISALIGNED and r["swap"] <= ALIGNED_TOL
    return Judgement(
        HOLDS_EXACTLY if holds else FAILS_EXACTLY,
        f"W/M detector, 180° rotation: inverse rotation {r['back_rotated']:.3f}, best rotation "
        f"{r['best_rotation']:.3f}, best affine warp {r['best_affine']:.3f} (bound for any spatial warp "
        f"{r['lower_bound']:.3f}); rotation + channel swap {r['swap']:.1e}",
        notes=(f"best spatial warp {best_spatial:.3f} {'≥' if best_spatial >= MISALIGNED else '<'} {MISALIGNED}; "
               f"rotation + channel swap {r['swap']:.1e} {'≤' if r['swap'] <= ALIGNED_TOL else '>'} "
               f"{ALIGNED_TOL:g}",),
        values=dict(r))
