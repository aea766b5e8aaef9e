"""An Agg canvas that draws plain text with Pillow: the summary plots' text, fast.

Matplotlib's Agg renderer places and rasterizes every glyph of every label separately, in
Python; in the summary plots that is most of the drawing time. :class:`TextCanvas` gives a
figure a renderer that measures and draws a whole plain-text line at once with Pillow's
FreeType binding, in the font matplotlib chose for it, and keeps the last few hundred lines
drawn (tick values repeat from axis to axis and figure to figure). Mathtext, TeX, text
drawn without antialiasing and any line with a character its font lacks go to matplotlib
as before (its font fallback).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from functools import lru_cache
from typing import Any

import cv2
import numpy as np
from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg
from matplotlib.ft2font import FT2Font
from PIL import Image, ImageDraw, ImageFont

__all__ = ["TextCanvas"]

CACHE_SIZE = 512
"""Drawn text lines kept per process (least recently used dropped)."""

_lock = threading.Lock()
_masks: OrderedDict[tuple[str, str, float, float], tuple[np.ndarray, float, float]] = OrderedDict()


class TextCanvas(FigureCanvasAgg):
    """``FigureCanvasAgg`` whose renderer draws plain text with Pillow (see the module)."""

    def get_renderer(self) -> RendererAgg:
        width, height = self.get_width_height(physical=True)
        key = (width, height, self.figure.dpi)
        if getattr(self, "_text_key", None) != key:
            self.renderer = TextRenderer(width, height, self.figure.dpi)
            self._text_key = key
        return self.renderer


class TextRenderer(RendererAgg):
    """``RendererAgg`` with plain text measured and drawn by Pillow."""

    def get_text_width_height_descent(
        self, s: str, prop: Any, ismath: Any
    ) -> tuple[float, float, float]:
        font = None if ismath else _font_for(s, prop, self.dpi)
        if font is None:
            return super().get_text_width_height_descent(s, prop, ismath)
        left, top, right, bottom = font.getbbox(s, anchor="ls")
        descent = max(0, bottom)
        return float(right - min(0, left)), float(descent - min(0, top)), float(descent)

    def draw_text(
        self,
        gc: Any,
        x: float,
        y: float,
        s: str,
        prop: Any,
        angle: float,
        ismath: Any = False,
        mtext: Any = None,
    ) -> None:
        plain = not ismath and gc.get_antialiased()
        font = _font_for(s, prop, self.dpi) if plain else None
        if font is None:
            super().draw_text(gc, x, y, s, prop, angle, ismath, mtext)
            return
        mask, anchor_x, anchor_y = _mask(s, font, angle)
        if not mask.size:
            return
        red, green, blue, *alpha = gc.get_rgb()
        if not alpha or gc.get_forced_alpha():
            alpha = [gc.get_alpha()]
        rgba = np.empty((*mask.shape, 4), np.uint8)
        rgba[..., :3] = np.round(np.array([red, green, blue]) * 255.0)
        rgba[..., 3] = mask if alpha[0] >= 1.0 else np.round(mask * alpha[0])
        # (x, y) is the line's baseline origin, y counted from the top (as Agg's text is).
        left = round(x - anchor_x)
        bottom = round(self.height - (y - anchor_y) - mask.shape[0])
        self.draw_image(gc, left, bottom, rgba[::-1])


def _font_for(text: str, prop: Any, dpi: float) -> ImageFont.FreeTypeFont | None:
    """Pillow's font for ``prop`` at ``dpi``, or ``None`` when it cannot draw ``text``."""
    path = font_manager.findfont(prop)
    if not path.lower().endswith((".ttf", ".otf")):
        return None
    if not set(map(ord, text)) <= _charmap(path):
        return None
    return _pillow_font(path, round(prop.get_size_in_points() * dpi / 72 * 64) / 64)


@lru_cache(maxsize=16)
def _charmap(path: str) -> frozenset[int]:
    return frozenset(FT2Font(path).get_charmap())


@lru_cache(maxsize=64)
def _pillow_font(path: str, size: float) -> ImageFont.FreeTypeFont:
    try:
        return ImageFont.truetype(path, size, layout_engine=ImageFont.Layout.BASIC)
    except TypeError:  # Pillow before 10.1 takes whole pixel sizes only
        return ImageFont.truetype(path, round(size), layout_engine=ImageFont.Layout.BASIC)


def _mask(text: str, font: ImageFont.FreeTypeFont, angle: float) -> tuple[np.ndarray, float, float]:
    """``text`` as an ``(h, w)`` uint8 coverage mask turned ``angle`` degrees counter-
    clockwise, and where in it the baseline origin lies ``(x, y)``, ``y`` down."""
    key = (text, font.path, font.size, angle % 360)
    with _lock:
        found = _masks.get(key)
        if found is not None:
            _masks.move_to_end(key)
            return found
    left, top, right, bottom = font.getbbox(text, anchor="ls")
    image = Image.new("L", (max(0, right - left), max(0, bottom - top)))
    ImageDraw.Draw(image).text((-left, -top), text, fill=255, font=font, anchor="ls")
    result = _turned(np.asarray(image), float(-left), float(-top), key[3])
    with _lock:
        _masks[key] = result
        if len(_masks) > CACHE_SIZE:
            _masks.popitem(last=False)
    return result


def _turned(mask: np.ndarray, x: float, y: float, angle: float) -> tuple[np.ndarray, float, float]:
    """``mask`` turned ``angle`` degrees counter-clockwise, with the point ``(x, y)``."""
    height, width = mask.shape
    if angle == 0 or not mask.size:
        return mask, x, y
    if angle in (90.0, 180.0, 270.0):
        turns = int(angle // 90)
        for _ in range(turns):
            x, y = y, width - x
            height, width = width, height
        return np.ascontiguousarray(np.rot90(mask, turns)), x, y
    matrix = cv2.getRotationMatrix2D((0.0, 0.0), angle, 1.0)
    corners = np.array([[0, 0, 1], [width, 0, 1], [0, height, 1], [width, height, 1]], float)
    turned = corners @ matrix.T
    low = np.floor(turned.min(axis=0))
    high = np.ceil(turned.max(axis=0))
    matrix[:, 2] -= low
    size = (int(high[0] - low[0]), int(high[1] - low[1]))
    out = cv2.warpAffine(mask, matrix, size, flags=cv2.INTER_LINEAR)
    point = matrix @ np.array([x, y, 1.0])
    return out, float(point[0]), float(point[1])
