"""The letters of the paper's Figure 1 and two fixed feature extractors that read them.

* :func:`letter_bitmap`: a "W" drawn with exact integer geometry, mirror-symmetric left to right, and
  the "M", which is that "W" upside down: exactly the "W" rotated by 180°.
* :class:`LetterDetector`: Γ with two channels; channel 0 fires on a "W", channel 1 on an "M".
* :func:`bar_image` and :class:`HorizontalEdgeDetector`: a bar and a single channel that detects
  horizontal edges, the smallest case where no spatial warp can align the feature maps at all.

Convention: ``N×C×H×W``; row 0 is the top row as displayed; ``torch.rot90(x, k)`` turns the content
counter-clockwise as displayed, like :func:`stnlib.transforms.rotate` by ``90·k`` degrees.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: Channel order of :class:`LetterDetector`: channel 0 detects "W", channel 1 detects "M".
CHANNELS: tuple[str, str] = ("W", "M")
#: Side of the letter bitmaps (odd, so a letter has a centre pixel).
LETTER_SIZE = 15
#: Side of the canvas the letters are placed on (odd, so torch.rot90 rotates about the centre pixel).
CANVAS_SIZE = 33
#: A letter channel fires where its normalised template response exceeds this (1 = perfect match).
DETECTION_THRESHOLD = 0.5
#: Centre line of the "W" as a polyline of integer (column, row) vertices in the 15×15 bitmap.
W_POLYLINE: tuple[tuple[int, int], ...] = ((1, 0), (4, 14), (7, 4), (10, 14), (13, 0))
#: A pixel is ink if its centre lies within this squared distance (pixels²) of the centre line.
STROKE_RADIUS_SQ = 1
#: MNIST normalisation (mean, std) of the rotated-MNIST experiment; the trained layer expects it.


def _near_segment(n: int, p0: tuple[int, int], p1: tuple[int, int], r2: int) -> Tensor:
    """Boolean ``n×n`` mask: pixel centres within ``sqrt(r2)`` of segment ``p0–p1`` (integer arithmetic).

    Points are ``(column, row)``. Squared distances are compared as exact integer ratios, so a shape
    that is symmetric in its vertices is symmetric pixel for pixel (no rounding can break the symmetry).
    """
    (x0, y0), (x1, y1) = p0, p1
    dx, dy = x1 - x0, y1 - y0
    length2 = dx * dx + dy * dy
    out = torch.zeros(n, n, dtype=torch.bool)
    for y in range(n):
        for x in range(n):
            qx, qy = x - x0, y - y0
            dot = qx * dx + qy * dy
            if dot <= 0:
                inside = qx * qx + qy * qy <= r2
            elif dot >= length2:
                inside = (x - x1) ** 2 + (y - y1) ** 2 <= r2
            else:
                cross = qx * dy - qy * dx
                inside = cross * cross <= r2 * length2
            out[y, x] = inside
    return out


def letter_bitmap(letter: str, *, dtype: torch.dtype = torch.float32) -> Tensor:
    """The ``15×15`` binary bitmap (ink 1, background 0) of ``"W"`` or ``"M"``.

    The "W" is the stroke of :data:`W_POLYLINE` drawn with exact integer geometry; it is mirror-symmetric
    left to right. The "M" is the "W" turned upside down (rows reversed), which for a left-right symmetric
    letter is the same as the "W" rotated by 180°: ``letter_bitmap("M") == torch.rot90(letter_bitmap("W"), 2)``
    exactly.

    Convention:
        Row 0 is the top row (as displayed), column 0 the left column.
    """
    if letter not in CHANNELS:
        raise ValueError(f"unknown letter {letter!r}; valid choices: {', '.join(CHANNELS)}")
    ink = torch.zeros(LETTER_SIZE, LETTER_SIZE, dtype=torch.bool)
    for p0, p1 in zip(W_POLYLINE[:-1], W_POLYLINE[1:]):
        ink |= _near_segment(LETTER_SIZE, p0, p1, STROKE_RADIUS_SQ)
    w = ink.to(dtype)
    return w if letter == "W" else w.flip(0)


def letter_image(letter: str, *, canvas: int = CANVAS_SIZE, dtype: torch.dtype = torch.float32) -> Tensor:
    """A ``1×1×canvas×canvas`` image of ``letter`` centred on a black canvas.

    Convention:
        ``N×C×H×W``; ``canvas`` must be odd and at least :data:`LETTER_SIZE`, so the letter's centre pixel is
        the canvas's centre pixel and ``torch.rot90`` rotates the letter about its own centre.
    """
    if canvas < LETTER_SIZE or canvas % 2 == 0:
        raise ValueError(f"canvas must be odd and >= {LETTER_SIZE}, got {canvas}")
    img = torch.zeros(1, 1, canvas, canvas, dtype=dtype)
    o = (canvas - LETTER_SIZE) // 2
    img[0, 0, o:o + LETTER_SIZE, o:o + LETTER_SIZE] = letter_bitmap(letter, dtype=dtype)
    return img


def rotated_w_image(k: int = 2, *, canvas: int = CANVAS_SIZE, dtype: torch.dtype = torch.float32) -> Tensor:
    """The "W" image rotated by ``90·k`` degrees (exact, ``torch.rot90``); ``k = 2`` gives the "M" image.

    Convention:
        ``N×C×H×W``; positive ``k`` = counter-clockwise as displayed, like ``transforms.rotate(x, 90 * k)``.
    """
    return torch.rot90(letter_image("W", canvas=canvas, dtype=dtype), k, dims=(-2, -1))


class LetterDetector(nn.Module):
    """Γ: a fixed two-channel conv layer + ReLU; channel 0 fires on a "W", channel 1 on an "M".

    Each channel correlates the image with its letter's zero-mean template. With ``s`` ink pixels in the
    ``15×15 = 225``-pixel bitmap ``t``, the kernel is the integer array ``225·t - s`` (zero mean), whose
    correlation with a perfectly placed letter is ``s·(225 - s)``; dividing by that gives the normalised
    *response* (1 = perfect match, 0 on a blank patch). The channel outputs
    ``ReLU(response - τ) / (1 - τ)`` with ``τ =`` :data:`DETECTION_THRESHOLD`, so the peak is exactly 1 and a
    channel stays silent unless its own letter is there (the strongest response of a template to the
    *other* letter is about 0.43, see :func:`wm_counterexample`). As a layer: ``nn.Conv2d(1, 2, 15,
    padding=7)`` with integer weights and bias ``-τ·s·(225 - s)``, ReLU, then the positive constant
    ``1 / ((1 - τ)·s·(225 - s))``. Integer weights on binary images make every conv output an exactly
    representable integer, whatever order the sum is taken in, so the 180° symmetry below holds bit for bit.
    Like any conv layer it is translation covariant.

    Convention:
        Input ``N×1×H×W``, output ``N×2×H×W`` ("same" zero padding, odd kernel, so ``rot90`` of the input
        rotates the output about the same centre). Channel order :data:`CHANNELS`.
    """

    def __init__(self, threshold: float = DETECTION_THRESHOLD, *, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must lie in (0, 1), got {threshold}")
        self.threshold = float(threshold)
        area = LETTER_SIZE * LETTER_SIZE
        ink = int(letter_bitmap("W").sum())  # the same for "M"
        #: Template correlation of a perfectly placed letter (the normaliser of the response).
        self.match = float(ink * (area - ink))
        self.conv = nn.Conv2d(1, 2, LETTER_SIZE, padding=LETTER_SIZE // 2, bias=True, dtype=dtype)
        weight = torch.stack([area * letter_bitmap(letter, dtype=torch.float64) - ink for letter in CHANNELS])
        with torch.no_grad():
            self.conv.weight.copy_(weight[:, None].to(dtype))
            self.conv.bias.fill_(-threshold * self.match)
        self.conv.requires_grad_(False)
        self.scale = 1.0 / ((1.0 - threshold) * self.match)

    def response(self, x: Tensor) -> Tensor:
        """The normalised template response before the threshold (1 = perfect match), ``N×2×H×W``."""
        return (self.conv(x) - self.conv.bias[None, :, None, None]) / self.match

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.conv(x)) * self.scale


def bar_image(*, canvas: int = CANVAS_SIZE, length: int = 21, width: int = 3,
              dtype: torch.dtype = torch.float32) -> Tensor:
    """A ``1×1×canvas×canvas`` image of a centred horizontal bar (``width`` rows × ``length`` columns, ink 1).

    Convention:
        ``N×C×H×W``; ``canvas``, ``length`` and ``width`` odd so the bar is centred on the centre pixel and
        ``torch.rot90(bar_image(), 1)`` is the same bar standing upright.
    """
    if any(v % 2 == 0 for v in (canvas, length, width)) or not width <= length <= canvas:
        raise ValueError(f"need odd width <= length <= canvas, got width={width}, length={length}, canvas={canvas}")
    img = torch.zeros(1, 1, canvas, canvas, dtype=dtype)
    r0, c0 = (canvas - width) // 2, (canvas - length) // 2
    img[0, 0, r0:r0 + width, c0:c0 + length] = 1
    return img


class HorizontalEdgeDetector(nn.Module):
    """One channel: fires on long horizontal edges that are dark above and bright below.

    A ``3×7`` kernel (top row -1, middle row 0, bottom row +1) sums the vertical intensity step over 7
    columns; the output is ``ReLU(response - 4)``, so at least 5 of the 7 columns must see the step. A
    horizontal bar's top edge gives 7 - 4 = 3; a vertical bar 3 pixels wide gives at most 3 anywhere (its
    end) and hence exactly 0: the detector is silent on the rotated bar. Integer weights, so all values
    are exact.

    Convention:
        ``N×1×H×W`` in, ``N×1×H×W`` out ("same" zero padding); row 0 at the top, so "below" = larger row.
    """

    def __init__(self, *, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 1, (3, 7), padding=(1, 3), bias=True, dtype=dtype)
        kernel = torch.zeros(1, 1, 3, 7, dtype=dtype)
        kernel[0, 0, 0, :] = -1
        kernel[0, 0, 2, :] = 1
        with torch.no_grad():
            self.conv.weight.copy_(kernel)
            self.conv.bias.fill_(-4.0)
        self.conv.requires_grad_(False)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.conv(x))
