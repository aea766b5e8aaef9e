"""Text bands for images shown in TensorBoard: crisp anti-aliased lines, shrunk to fit.

Headers are drawn on their own white bands (never on a heatmap, where a light map
would swallow white text) with DejaVu Sans, the font matplotlib ships; a line
with characters it lacks (Chinese class names) uses an installed CJK font when there is
one, else shows those characters as ``?``. Font sizes follow the image width, so the
text stays legible when the dashboard scales a card down.

This module imports neither torch nor the writer (writer workers use it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from matplotlib import font_manager
from matplotlib.ft2font import FT2Font
from PIL import Image, ImageDraw, ImageFont

INK = (20, 20, 20)
CORRECT = (0, 110, 40)
WRONG = (190, 20, 20)
PAPER = (255, 255, 255)

MIN_FONT = 11
"""Smallest font size in pixels before a line is cut short instead."""

_CJK_FAMILIES = ("Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Zen Hei", "SimHei")


@dataclass(frozen=True)
class Line:
    """One line of a band: its text, colour and font size in pixels."""

    text: str
    color: tuple[int, int, int] = INK
    size: int = 16


def font_sizes(width: int) -> tuple[int, int]:
    """``(title, caption)`` font sizes for an image ``width`` pixels wide.

    TensorBoard scales an image to its card (about 350 px wide in the Images dashboard,
    about 440 x 215 px in Time Series); for the 320 x 225 px probe panels and the previews
    this keeps the text between about 13 and 17 px tall on screen.
    """
    return max(16, round(width * 0.05)), max(14, round(width * 0.042))


def text_band(width: int, lines: Sequence[Line]) -> np.ndarray:
    """A white ``(h, width, 3)`` uint8 RGB band holding ``lines``, each shrunk to fit.

    A line too long at :data:`MIN_FONT` is cut at its start with ``…`` (the end of a
    dotted layer name or a file name says the most).
    """
    margin = max(4, width // 60)
    heights = [round(line.size * 1.35) for line in lines]
    band = Image.new("RGB", (width, sum(heights) + margin), PAPER)
    draw = ImageDraw.Draw(band)
    top = margin // 2
    fitted = [_fitted(line.text, line.size, width - 2 * margin) for line in lines]
    for line, height, (text, font) in zip(lines, heights, fitted, strict=True):
        draw.text((margin, top + height // 2), text, fill=line.color, font=font, anchor="lm")
        top += height
    return np.asarray(band, dtype=np.uint8).copy()


def header_lines(
    name: str,
    predicted: str,
    confidence: float,
    true: str | None,
    layer: str | None,
    width: int,
    target: str | None = None,
) -> list[Line]:
    """The header every TensorBoard image of an explained input carries.

    ``name``, then ``true <class> | pred <class> 93%`` (green when right, red when
    wrong), then the layer when the image shows one layer; ``target`` is named when the
    maps explain another class than the predicted one.
    """
    title, caption = font_sizes(width)
    verdict = "" if true is None else (" (right)" if true == predicted else " (wrong)")
    color = INK if true is None else CORRECT if true == predicted else WRONG
    truth = f"true {true} | " if true is not None else ""
    lines = [
        Line(name, INK, title),
        Line(f"{truth}pred {predicted} {confidence:.0%}{verdict}", color, caption),
    ]
    explains = f"map of class {target}" if target not in (None, predicted) else None
    last = " | ".join(part for part in (layer and f"layer: {layer}", explains) if part)
    if last:
        lines.append(Line(last, INK, caption))
    return lines


def _fitted(text: str, size: int, width: int) -> tuple[str, ImageFont.FreeTypeFont]:
    """``text`` (cut if it must be) and the largest font up to ``size`` that fits ``width``."""
    path = _font_path(text)
    text = _drawable(text, path)
    for points in range(size, MIN_FONT - 1, -1):
        font = _font(path, points)
        if font.getlength(text) <= width:
            return text, font
    font = _font(path, MIN_FONT)
    while len(text) > 1 and font.getlength(f"…{text}") > width:
        text = text[1:]
    return f"…{text}", font


@lru_cache(maxsize=64)
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


@lru_cache(maxsize=1)
def _default_path() -> str:
    return font_manager.findfont("DejaVu Sans")


@lru_cache(maxsize=1)
def _cjk_path() -> str | None:
    for family in _CJK_FAMILIES:
        try:
            path = font_manager.findfont(family, fallback_to_default=False)
        except ValueError:
            continue
        return path
    return None


@lru_cache(maxsize=4)
def _charmap(path: str) -> frozenset[int]:
    return frozenset(FT2Font(path).get_charmap())


def _font_path(text: str) -> str:
    default = _default_path()
    if all(ord(char) in _charmap(default) for char in text):
        return default
    cjk = _cjk_path()
    return cjk if cjk is not None else default


def _drawable(text: str, path: str) -> str:
    covered = _charmap(path)
    return "".join(char if ord(char) in covered or char == " " else "?" for char in text)
