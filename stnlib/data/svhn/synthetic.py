"""A synthetic SVHN-like stand-in: printed house numbers rendered in code (NOT real SVHN).

Used only where real SVHN format 1 is absent (no copy can be had offline on the project's
machines): 1–5 printed digits in the TrueType fonts that matplotlib ships, on textured backgrounds,
with neighbouring distractor characters, rotation, shear, perspective, blur, noise and JPEG
artefacts, cut out with the SAME crop function as the real data, from boxes known at rendering time.
It is deterministic from a seed and cached under ``<data>/svhn-synthetic/<hash>/``. Numbers measured
on it are not comparable with the paper's, and every record trained on it says so.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import time
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from stnlib.data.base import SPLITS, check_choice
from stnlib.data.svhn.cache import (
    CACHE_SCHEMA, SPLIT_KEY, IMAGE_SIZE, atomic_savez, channel_mean_std, channel_sums, check_arrays, load_npz,
    parallel_map,
)
from stnlib.data.svhn.format1 import crop_and_resize, encode_labels, format1_crop_box
from stnlib.datasets import SVHN_POSITIONS
from stnlib.io import DataIntegrityError, atomic_write_json
from stnlib.paths import data_root

SYNTHETIC_SOURCE = "synthetic SVHN-like stand-in (not real SVHN)"

#: Fonts from matplotlib's ``mpl-data/fonts/ttf``: sans, serif, mono, bold, oblique, and TeX faces.
DEFAULT_FONTS: tuple[str, ...] = (
    "DejaVuSans.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSans-Oblique.ttf",
    "DejaVuSansMono.ttf",
    "DejaVuSansMono-Bold.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSerif-Bold.ttf",
    "DejaVuSerif-Italic.ttf",
    "STIXGeneral.ttf",
    "STIXGeneralBol.ttf",
    "cmr10.ttf",
    "cmb10.ttf",
    "cmss10.ttf",
    "cmtt10.ttf",
)

#: Bump when the renderer changes in a way that changes pixels: it is part of the cache key.
GENERATOR_VERSION = 1


@dataclass(frozen=True)
class SyntheticSVHNConfig:
    """Parameters of the synthetic SVHN-like renderer (all of them enter the cache key).

    Lengths follow ``length_probs`` (1..5 digits). Geometry of the rendered "photo": rotation uniform in
    ±``max_rotation_deg`` (positive = counter-clockwise as displayed), horizontal shear uniform in
    ±``max_shear``, aspect ``2**U(±max_log2_aspect)``, perspective tilt up to ``perspective`` per font
    size. Each digit box gets annotation noise (``box_jitter`` × digit height per edge, s.d.), and the
    union box a shift up to ``crop_shift`` of its size and a scale ``2**U(±crop_log2_scale)`` before
    the format-1 crop, so that position and scale vary in the 64×64 crops as they do in real SVHN.
    """

    fonts: tuple[str, ...] = DEFAULT_FONTS
    length_probs: tuple[float, ...] = (0.15, 0.35, 0.30, 0.14, 0.06)
    font_size: tuple[int, int] = (14, 44)
    max_rotation_deg: float = 30.0
    max_shear: float = 0.3
    max_log2_aspect: float = 0.3
    perspective: float = 0.06
    tracking: tuple[float, float] = (-0.06, 0.3)
    box_jitter: float = 0.05
    crop_shift: float = 0.08
    crop_log2_scale: float = 0.2
    distractor_prob: float = 0.75
    plaque_prob: float = 0.35
    lines_prob: float = 0.35
    shadow_prob: float = 0.3
    min_contrast: float = 55.0
    max_saturation: float = 0.45
    blur_prob: float = 0.6
    max_blur: float = 1.3
    max_noise: float = 14.0
    jpeg_prob: float = 0.35

    def __post_init__(self) -> None:
        if len(self.length_probs) != SVHN_POSITIONS or abs(sum(self.length_probs) - 1) > 1e-6:
            raise ValueError(f"length_probs must be {SVHN_POSITIONS} probabilities summing to 1, got {self.length_probs}")
        if not self.fonts:
            raise ValueError("fonts must name at least one .ttf file")

    def to_json(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


#: Named difficulty levels of the stand-in. ``"paper-like"`` imitates real SVHN's variety; ``"plain"``
#: keeps the same renderer and crop protocol with milder nuisances (shorter numbers, smaller rotations and
#: shears, fewer distractors, no JPEG artefacts), so that a small network trained for minutes on a CPU
#: leaves the all-blank plateau and converges: a named deviation of the ``quick`` profile.
DIFFICULTIES: dict[str, SyntheticSVHNConfig] = {
    "paper-like": SyntheticSVHNConfig(),
    "plain": SyntheticSVHNConfig(
        fonts=DEFAULT_FONTS[:8], length_probs=(0.3, 0.45, 0.25, 0.0, 0.0), font_size=(20, 44),
        max_rotation_deg=15.0, max_shear=0.15, max_log2_aspect=0.15, perspective=0.02, distractor_prob=0.3,
        plaque_prob=0.2, lines_prob=0.15, shadow_prob=0.15, min_contrast=80.0, blur_prob=0.3, max_blur=1.0,
        max_noise=6.0, jpeg_prob=0.0),
}


def difficulty(name: str) -> SyntheticSVHNConfig:
    """The stand-in's renderer settings called ``name`` (see :data:`DIFFICULTIES`)."""
    try:
        return DIFFICULTIES[name]
    except KeyError:
        raise ValueError(f"unknown stand-in difficulty {name!r}; valid choices: {', '.join(DIFFICULTIES)}") from None


def font_dir() -> Path:
    """matplotlib's bundled TrueType folder (``mpl-data/fonts/ttf``)."""
    try:
        import matplotlib
    except ImportError as err:
        raise ImportError(
            f"the {SYNTHETIC_SOURCE} renders digits with the TrueType fonts that matplotlib ships, but "
            "matplotlib is not installed: pip install matplotlib (or pip install 'stnlib[book]')."
        ) from err
    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


@lru_cache(maxsize=1024)
def _font(name: str, size: int) -> ImageFont.FreeTypeFont:
    path = font_dir() / name
    if not path.is_file():
        raise FileNotFoundError(f"font {name!r} not found in {path.parent}; valid names are the .ttf files there")
    return ImageFont.truetype(str(path), size)


@lru_cache(maxsize=32768)
def _glyph(name: str, size: int, ch: str) -> tuple[Image.Image, int, int, float]:
    """Ink mask of one character: (mask "L" cropped to the ink, ink x offset, ink y offset from the
    baseline (negative = above), advance width)."""
    font = _font(name, size)
    l, t, r, b = font.getbbox(ch, anchor="ls")
    pad = 2
    canvas = Image.new("L", (r - l + 2 * pad, b - t + 2 * pad), 0)
    ImageDraw.Draw(canvas).text((pad - l, pad - t), ch, font=font, fill=255, anchor="ls")
    ink = canvas.getbbox()
    if ink is None:
        raise ValueError(f"font {name!r} renders no ink for {ch!r}")
    mask = canvas.crop(ink)
    return mask, ink[0] - pad + l, ink[1] - pad + t, float(font.getlength(ch))


def _luma(rgb: np.ndarray) -> float:
    return float(rgb @ np.array([0.299, 0.587, 0.114]))


def _colour(rng: np.random.Generator, luma: float, max_sat: float) -> np.ndarray:
    """A de-saturated RGB colour (0–255 floats) with approximately the requested luminance."""
    h, s = rng.random(), rng.uniform(0, max_sat)
    k = (np.array([5.0, 3.0, 1.0]) + 6 * h) % 6
    rgb = 1 - s * np.clip(np.minimum(k, 4 - k), 0, 1)  # HSV → RGB at value 1
    return np.clip(rgb * (luma / max(_luma(rgb), 1e-3)), 0, 255)


def _palette(rng: np.random.Generator, cfg: SyntheticSVHNConfig) -> tuple[np.ndarray, np.ndarray]:
    """Background and foreground colours whose luminances differ by at least ``min_contrast``."""
    for _ in range(20):
        bg_l = rng.uniform(15, 240)
        lo, hi = bg_l - cfg.min_contrast, bg_l + cfg.min_contrast
        options = [(0.0, lo)] if lo > 0 else []
        options += [(hi, 255.0)] if hi < 255 else []
        widths = np.array([b - a for a, b in options])
        pick = options[int(rng.choice(len(options), p=widths / widths.sum()))]
        fg_l = rng.uniform(*pick)
        bg, fg = _colour(rng, bg_l, cfg.max_saturation), _colour(rng, fg_l, cfg.max_saturation)
        if abs(_luma(bg) - _luma(fg)) >= cfg.min_contrast:
            return bg, fg
    return np.full(3, 220.0), np.full(3, 30.0)


def _background(rng: np.random.Generator, w: int, h: int, base: np.ndarray) -> Image.Image:
    """RGB ``w×h``: base colour + tinted gradient + low-frequency blotches + grain (+ stripes)."""
    x = (np.arange(w, dtype=np.float32) - w / 2) / max(w, h)
    y = (np.arange(h, dtype=np.float32) - h / 2) / max(w, h)
    ang = rng.uniform(0, 2 * np.pi)
    field = np.cos(ang) * x[None, :] + np.sin(ang) * y[:, None]  # gradient, [h, w]
    gh, gw = int(rng.integers(2, 7)), int(rng.integers(2, 9))
    blot = rng.normal(0, 1, (gh, gw)).astype(np.float32)
    field = field * rng.uniform(0, 50) + np.asarray(
        Image.fromarray(blot, mode="F").resize((w, h), Image.Resampling.BICUBIC)) * rng.uniform(0, 22)
    if rng.random() < 0.3:  # bricks / siding / wood: periodic stripes
        period = rng.uniform(4, 14)
        along = y * max(w, h) if rng.random() < 0.75 else x * max(w, h)
        stripe = (np.abs(np.sin(np.pi * along / period)) < 0.25).astype(np.float32) * rng.uniform(-35, 35)
        field = field + (stripe[:, None] if along.shape[0] == h else stripe[None, :])
    field += rng.standard_normal((h, w), dtype=np.float32) * np.float32(rng.uniform(0, 6))
    tint = 1 + rng.normal(0, 0.25, 3).astype(np.float32)  # the texture is not exactly grey
    img = base.astype(np.float32) + field[..., None] * tint
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")


def _homography(rng: np.random.Generator, cfg: SyntheticSVHNConfig, centre: tuple[float, float], size: float) -> tuple[np.ndarray, float]:
    """Forward map scene → photo (3×3) about ``centre``, and the rotation angle in degrees (CCW displayed)."""
    angle = rng.uniform(-cfg.max_rotation_deg, cfg.max_rotation_deg)
    a = math.radians(angle)
    # y points down, so a counter-clockwise turn as displayed is [[cos, sin], [-sin, cos]]
    rot = np.array([[math.cos(a), math.sin(a), 0], [-math.sin(a), math.cos(a), 0], [0, 0, 1]])
    shear = np.array([[1, rng.uniform(-cfg.max_shear, cfg.max_shear), 0], [0, 1, 0], [0, 0, 1]])
    asp = 2 ** rng.uniform(-cfg.max_log2_aspect, cfg.max_log2_aspect)
    aspect = np.diag([math.sqrt(asp), 1 / math.sqrt(asp), 1])
    tilt = np.eye(3)
    tilt[2, :2] = rng.uniform(-cfg.perspective, cfg.perspective, 2) / size
    to_centre = np.array([[1, 0, -centre[0]], [0, 1, -centre[1]], [0, 0, 1]])
    return tilt @ rot @ shear @ aspect @ to_centre, angle


def _apply_h(hom: np.ndarray, pts: np.ndarray) -> np.ndarray:
    p = pts @ hom[:, :2].T + hom[:, 2]
    return p[:, :2] / p[:, 2:3]


def _digits(rng: np.random.Generator, cfg: SyntheticSVHNConfig) -> tuple[np.ndarray, int, str, int]:
    """The house number: its digits, and the font (index, name) and size it is printed in."""
    n = int(rng.choice(SVHN_POSITIONS, p=np.asarray(cfg.length_probs))) + 1
    digits = rng.integers(0, 10, n)
    if n > 1 and digits[0] == 0 and rng.random() < 0.95:  # house numbers rarely start with 0
        digits[0] = rng.integers(1, 10)
    font_idx = int(rng.integers(len(cfg.fonts)))
    size = int(rng.integers(cfg.font_size[0], cfg.font_size[1] + 1))
    return digits, font_idx, cfg.fonts[font_idx], size


def _layout(rng: np.random.Generator, cfg: SyntheticSVHNConfig, digits: np.ndarray, font: str,
            size: int) -> tuple[list[tuple[Image.Image, int, int, int]], np.ndarray]:
    """Glyph pieces ``(mask, x, y, layer)`` on the baseline y = 0, and digit boxes (l, t, r, b) with slack."""
    pieces: list[tuple[Image.Image, int, int, int]] = []
    boxes = []
    x = 0.0
    for d in digits:
        mask, ox, oy, adv = _glyph(font, size, str(int(d)))
        gx, gy = round(x + ox), round(rng.normal(0, 0.02 * size) + oy)  # whole pixels: boxes match the ink
        pieces.append((mask, gx, gy, 0))
        slack = rng.uniform(0, 0.08, 4) * size
        boxes.append([gx - slack[0], gy - slack[1], gx + mask.width + slack[2], gy + mask.height + slack[3]])
        x += adv * (1 + rng.uniform(*cfg.tracking))
    return pieces, np.array(boxes)


def _distractors(rng: np.random.Generator, cfg: SyntheticSVHNConfig, font: str, size: int,
                 d_left: float, d_right: float) -> list[tuple[Image.Image, int, int, int]]:
    """Neighbouring digits, letters and dashes just outside the number (layer 1)."""
    pieces: list[tuple[Image.Image, int, int, int]] = []
    for side in (-1, 1):
        if rng.random() >= cfg.distractor_prob:
            continue
        dsize = max(8, int(size * rng.uniform(0.55, 1.15)))
        dfont = cfg.fonts[int(rng.integers(len(cfg.fonts)))] if rng.random() < 0.4 else font
        chars = [str(int(c)) if rng.random() < 0.75 else "AB-/"[int(rng.integers(4))]
                 for c in rng.integers(0, 10, int(rng.integers(1, 3)))]
        gap = rng.uniform(0.15, 0.9) * size
        y = rng.uniform(-0.35, 0.35) * size
        cx = d_left - gap if side < 0 else d_right + gap
        for ch in (reversed(chars) if side < 0 else chars):
            try:
                mask, ox, oy, adv = _glyph(dfont, dsize, ch)
            except ValueError:
                continue
            if side < 0:
                pieces.append((mask, round(cx - mask.width), round(y + oy), 1))
                cx -= mask.width + 0.1 * dsize
            else:
                pieces.append((mask, round(cx), round(y + oy), 1))
                cx += mask.width + 0.1 * dsize
    return pieces


def _rgb(c: np.ndarray) -> tuple[int, int, int]:
    return tuple(int(v) for v in np.clip(np.round(c), 0, 255))


def _decorate(rng: np.random.Generator, cfg: SyntheticSVHNConfig, draw: ImageDraw.ImageDraw,
              number_box: tuple[float, float, float, float], fg_col: np.ndarray, size: int,
              sw: int, sh: int) -> None:
    """A plate behind the number (its edges show in the crop) and lines: door frames, edges, cables."""
    if rng.random() < cfg.plaque_prob:
        m = rng.uniform(0.1, 0.5, 4) * size
        plate_l = rng.uniform(15, 240)
        if abs(plate_l - _luma(fg_col)) >= cfg.min_contrast:
            left, top, right, bottom = number_box
            draw.rounded_rectangle([left - m[0], top - m[1], right + m[2], bottom + m[3]],
                                   radius=rng.uniform(0, 0.3) * size,
                                   fill=_rgb(_colour(rng, plate_l, cfg.max_saturation)))
    if rng.random() < cfg.lines_prob:
        for _ in range(int(rng.integers(1, 4))):
            pts = rng.uniform(0, 1, 4) * [sw, sh, sw, sh]
            if rng.random() < 0.7:  # mostly near-horizontal/vertical
                if rng.random() < 0.5:
                    pts[3] = pts[1] + rng.normal(0, 0.05) * sh
                else:
                    pts[2] = pts[0] + rng.normal(0, 0.05) * sw
            draw.line(list(pts), fill=_rgb(_colour(rng, rng.uniform(0, 255), cfg.max_saturation)),
                      width=int(rng.integers(1, max(2, size // 6))))


def _scene(rng: np.random.Generator, cfg: SyntheticSVHNConfig, pieces: list, boxes: np.ndarray,
           size: int) -> tuple[Image.Image, np.ndarray, np.ndarray]:
    """The flat scene (number, distractors, background, plate, lines, shadow) and the boxes in it."""
    d_left, d_top = boxes[:, 0].min(), boxes[:, 1].min()
    d_right, d_bottom = boxes[:, 2].max(), boxes[:, 3].max()
    xs = [p[1] for p in pieces] + [p[1] + p[0].width for p in pieces] + [d_left, d_right]
    ys = [p[2] for p in pieces] + [p[2] + p[0].height for p in pieces] + [d_top, d_bottom]
    mx, my = rng.uniform(0.4, 1.4, 2) * size  # random margins around everything
    ox0, oy0 = math.floor(min(xs) - mx), math.floor(min(ys) - my)
    sw, sh = int(math.ceil(max(xs) + mx - ox0)), int(math.ceil(max(ys) + my - oy0))
    boxes = boxes - [ox0, oy0, ox0, oy0]

    bg_col, fg_col = _palette(rng, cfg)
    scene = _background(rng, sw, sh, bg_col)
    _decorate(rng, cfg, ImageDraw.Draw(scene), (d_left - ox0, d_top - oy0, d_right - ox0, d_bottom - oy0),
              fg_col, size, sw, sh)
    placed = [(mask, (px - ox0, py - oy0), layer) for mask, px, py, layer in pieces]
    if rng.random() < cfg.shadow_prob:  # embossed / shadowed digits
        dx, dy = (int(v) for v in rng.integers(-3, 4, 2))
        shade = bg_col * rng.uniform(0.2, 0.6) if _luma(bg_col) > 80 else bg_col + 60
        for mask, (px, py), _ in placed:
            scene.paste(_rgb(shade), (px + dx, py + dy), mask)
    fg = _rgb(fg_col + rng.normal(0, 8, 3))
    other = fg if rng.random() < 0.7 else _rgb(_colour(rng, _luma(fg_col) + rng.normal(0, 25), cfg.max_saturation))
    for mask, pos, layer in placed:
        scene.paste(other if layer else fg, pos, mask)
    return scene, boxes, bg_col


def _annotate(rng: np.random.Generator, cfg: SyntheticSVHNConfig, hom: np.ndarray,
              boxes: np.ndarray) -> tuple[np.ndarray, float]:
    """Annotated boxes ``[k, 4]`` (left, top, width, height) around the warped digit boxes, drawn loosely
    as annotators do (per-edge noise, then a shift and scale of the whole set), and that scale."""
    ann = []
    for l, t, r, b in boxes:
        q = _apply_h(hom, np.array([[l, t], [r, t], [l, b], [r, b]]))
        ql, qt = q.min(0)
        qr, qb = q.max(0)
        jit = rng.normal(0, cfg.box_jitter * (qb - qt), 4)
        ann.append([ql + jit[0], qt + jit[1], qr + jit[2], qb + jit[3]])
    ann = np.array(ann)
    ul, ut, ur, ub = ann[:, 0].min(), ann[:, 1].min(), ann[:, 2].max(), ann[:, 3].max()
    ucx, ucy = (ul + ur) / 2, (ut + ub) / 2
    scale = 2 ** rng.uniform(-cfg.crop_log2_scale, cfg.crop_log2_scale)
    shift = rng.uniform(-cfg.crop_shift, cfg.crop_shift, 2) * [ur - ul, ub - ut]
    ann[:, [0, 2]] = (ann[:, [0, 2]] - ucx) * scale + ucx + shift[0]
    ann[:, [1, 3]] = (ann[:, [1, 3]] - ucy) * scale + ucy + shift[1]
    return np.concatenate([ann[:, :2], ann[:, 2:] - ann[:, :2]], axis=1), scale


def _photograph(rng: np.random.Generator, cfg: SyntheticSVHNConfig, scene: Image.Image, boxes: np.ndarray,
                bg_col: np.ndarray, size: int) -> tuple[np.ndarray, float, float]:
    """Warp the scene into a photo (pose), crop it with the real-data protocol: ``(crop, angle, scale)``."""
    sw, sh = scene.size
    centre = ((boxes[:, 0].min() + boxes[:, 2].max()) / 2, (boxes[:, 1].min() + boxes[:, 3].max()) / 2)
    hom, angle = _homography(rng, cfg, centre, size)
    corners = _apply_h(hom, np.array([[0, 0], [sw, 0], [0, sh], [sw, sh]], dtype=np.float64))
    lo = np.floor(corners.min(0))
    hom = np.array([[1, 0, -lo[0]], [0, 1, -lo[1]], [0, 0, 1]]) @ hom
    pw, ph = (int(v) for v in np.ceil(corners.max(0)) - lo)
    ltwh, scale = _annotate(rng, cfg, hom, boxes)
    # Rendering only a window that contains the clipped crop region gives the same pixels as
    # rendering the whole photo: crop_and_resize clips to the photo, and the window covers the clip.
    x0, y0, x1, y1 = format1_crop_box(ltwh, (pw, ph))
    wx, wy = math.floor(x0), math.floor(y0)
    window = (math.ceil(x1) - wx, math.ceil(y1) - wy)
    inv = np.linalg.inv(np.array([[1, 0, -wx], [0, 1, -wy], [0, 0, 1]]) @ hom)
    inv /= inv[2, 2]
    photo = scene.transform(window, Image.Transform.PERSPECTIVE, tuple(inv.ravel()[:8]),
                            resample=Image.Resampling.BILINEAR, fillcolor=_rgb(bg_col))
    return crop_and_resize(photo, ltwh - [wx, wy, 0, 0]), angle, scale  # the real-data protocol, unchanged


def _camera(rng: np.random.Generator, cfg: SyntheticSVHNConfig, crop: np.ndarray) -> np.ndarray:
    """Blur, uneven lighting, contrast, noise and JPEG compression of a ``[3, 64, 64]`` crop (HWC out)."""
    out = Image.fromarray(crop.transpose(1, 2, 0))
    if rng.random() < cfg.blur_prob:
        out = out.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, cfg.max_blur)))
    arr = np.asarray(out, dtype=np.float32)
    if rng.random() < 0.4:
        ramp = (np.arange(IMAGE_SIZE, dtype=np.float32) + 0.5) / IMAGE_SIZE - 0.5
        g = rng.uniform(-1, 1) * ramp[None, :] + rng.uniform(-1, 1) * ramp[:, None]
        arr = arr * (1 + rng.uniform(0.2, 0.7) * g[..., None])
    arr = (arr - 128) * rng.uniform(0.75, 1.15) + 128 + rng.uniform(-20, 20)
    arr += rng.standard_normal(arr.shape, dtype=np.float32) * np.float32(rng.uniform(0, cfg.max_noise))
    arr = np.clip(arr, 0, 255).astype(np.uint8)
    if rng.random() < cfg.jpeg_prob:
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format="JPEG", quality=int(rng.integers(20, 80)))
        buf.seek(0)
        arr = np.asarray(Image.open(buf).convert("RGB"))
    return arr


def _render(rng: np.random.Generator, cfg: SyntheticSVHNConfig) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """One synthetic house number: (uint8 [3,64,64], labels int64 [5], pose parameters).

    The steps draw from ``rng`` in a fixed order (digits, layout, distractors, scene, pose, camera), so an
    image is a pure function of its generator's seed.
    """
    digits, font_idx, font, size = _digits(rng, cfg)
    pieces, boxes = _layout(rng, cfg, digits, font, size)
    pieces += _distractors(rng, cfg, font, size, boxes[:, 0].min(), boxes[:, 2].max())
    scene, boxes, bg_col = _scene(rng, cfg, pieces, boxes, size)
    crop, angle, scale = _photograph(rng, cfg, scene, boxes, bg_col, size)
    arr = _camera(rng, cfg, crop)
    pose = {"angle_deg": angle, "n_digits": len(digits), "font": font_idx, "font_size": size, "crop_scale": scale}
    return np.ascontiguousarray(arr.transpose(2, 0, 1)), encode_labels(digits), pose


#: Images per job of the generation pool (the output does not depend on it).
_SYNTHETIC_CHUNK = 256


def _synthetic_chunk(job: tuple[int, str, int, int, SyntheticSVHNConfig]) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    seed, split, start, stop, cfg = job
    images = np.empty((stop - start, 3, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    labels = np.empty((stop - start, SVHN_POSITIONS), dtype=np.int64)
    poses: dict[str, list] = {}
    for i in range(start, stop):
        # one independent stream per image: results do not depend on chunking or worker count
        rng = np.random.default_rng([seed, SPLIT_KEY[split], i])
        images[i - start], labels[i - start], pose = _render(rng, cfg)
        for k, v in pose.items():
            poses.setdefault(k, []).append(v)
    return images, labels, {k: np.asarray(v) for k, v in poses.items()}


def make_synthetic_svhn(
    n: int,
    seed: int = 0,
    *,
    split: str = "train",
    start: int = 0,
    config: SyntheticSVHNConfig | None = None,
    workers: int | None = 1,
    return_pose: bool = False,
    progress: bool = False,
):
    """Render ``n`` synthetic SVHN-like house numbers (a stand-in, NOT real SVHN).

    Image ``i`` of a split is drawn from its own generator ``default_rng([seed, split_key, i])``, so the
    result is byte-identical for the same ``(seed, split, start, n, config)`` whatever ``workers`` is,
    ``train`` and ``test`` never share an image stream, and the first ``m`` images of a larger set are the
    set of size ``m``.

    Returns:
        ``(images uint8 [n,3,64,64], labels int64 [n,5])``, plus a dict of per-image pose arrays
        (``angle_deg``, ``n_digits``, ``font``, ``font_size``, ``crop_scale``) when ``return_pose``.
    """
    check_choice(split, SPLITS, "SVHN split")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    cfg = config or SyntheticSVHNConfig()
    font_dir()  # clear error before any work if matplotlib is missing
    chunk = _SYNTHETIC_CHUNK
    jobs = [(int(seed), split, a, min(a + chunk, start + n), cfg) for a in range(start, start + n, chunk)]
    images = np.empty((n, 3, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    labels = np.empty((n, SVHN_POSITIONS), dtype=np.int64)
    poses: dict[str, list[np.ndarray]] = {}
    results = parallel_map(_synthetic_chunk, jobs, workers, chunksize=1) if len(jobs) > 1 else map(_synthetic_chunk, jobs)
    if progress:
        from tqdm import tqdm

        results = tqdm(results, total=len(jobs), desc=f"synthetic SVHN {split}", unit="chunk")
    for (_, _, a, b, _), (im, lab, pose) in zip(jobs, results):
        images[a - start : b - start], labels[a - start : b - start] = im, lab
        for k, v in pose.items():
            poses.setdefault(k, []).append(v)
    if return_pose:
        return images, labels, {k: np.concatenate(v) if v else np.zeros(0) for k, v in poses.items()}
    return images, labels


def _synthetic_key(seed: int, cfg: SyntheticSVHNConfig) -> str:
    blob = json.dumps({"generator": GENERATOR_VERSION, "seed": int(seed), "config": cfg.to_json()}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def synthetic_dir(root: str | os.PathLike | None, seed: int, config: SyntheticSVHNConfig | None = None) -> Path:
    """``<root>/svhn-synthetic/<hash of generator version, seed and config>``."""
    return data_root(root) / "svhn-synthetic" / _synthetic_key(seed, config or SyntheticSVHNConfig())


def synthetic_svhn_arrays(
    split: str,
    n: int,
    *,
    root: str | os.PathLike | None = None,
    seed: int = 0,
    config: SyntheticSVHNConfig | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """The first ``n`` synthetic images of ``split``, from the cache (generated and cached if needed).

    The cache ``<root>/svhn-synthetic/<hash>/<split>.npz`` (+ ``<split>.json``) holds the longest prefix
    generated so far, with per-image channel sums, so the mean/std of any prefix is exact.

    Returns:
        ``(images, labels, meta)``; ``meta["mean"]``/``meta["std"]`` are for these ``n`` images.
    """
    check_choice(split, SPLITS, "SVHN split")
    cfg = config or SyntheticSVHNConfig()
    folder = synthetic_dir(root, seed, cfg)
    path, meta_path = folder / f"{split}.npz", folder / f"{split}.json"
    fix = f"Delete {folder} to regenerate it."
    have: dict[str, np.ndarray] | None = None
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text())
            count = int(meta["count"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
            raise DataIntegrityError(f"synthetic cache metadata {meta_path} is corrupt ({err}); it is not used. {fix}") from err
        have = load_npz(path, ("images", "labels", "channel_sum", "channel_sqsum"), fix)
        check_arrays(path, have["images"], have["labels"], count, fix)
    if have is None or have["images"].shape[0] < n:
        start = 0 if have is None else have["images"].shape[0]
        t0 = time.time()
        images, labels = make_synthetic_svhn(n - start, seed, split=split, start=start, config=cfg,
                                             workers=workers, progress=progress)
        sums, sqsums = channel_sums(images)
        if have is not None:
            images = np.concatenate([have["images"], images])
            labels = np.concatenate([have["labels"], labels])
            sums = np.concatenate([have["channel_sum"], sums])
            sqsums = np.concatenate([have["channel_sqsum"], sqsums])
        have = {"images": images, "labels": labels, "channel_sum": sums, "channel_sqsum": sqsums}
        atomic_savez(path, **have)
        import matplotlib

        meta = {
            "schema": CACHE_SCHEMA,
            "source": SYNTHETIC_SOURCE,
            "split": split,
            "count": int(images.shape[0]),
            "seed": int(seed),
            "generator_version": GENERATOR_VERSION,
            "config": cfg.to_json(),
            "matplotlib_version": matplotlib.__version__,
            "pillow_version": Image.__version__,
            "numpy_version": np.__version__,
            "crop": "format-1 protocol of the real data (stnlib.data.svhn.crop_and_resize) on rendered boxes",
            "last_generation_seconds": round(time.time() - t0, 2),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        atomic_write_json(meta_path, meta, indent=2)
    mean, std = channel_mean_std(have["channel_sum"][:n], have["channel_sqsum"][:n], IMAGE_SIZE * IMAGE_SIZE)
    out_meta = dict(meta, count=n, cached_count=int(have["images"].shape[0]), mean=mean, std=std)
    return have["images"][:n], have["labels"][:n], out_meta


# --------------------------------------------------------------------------- task
