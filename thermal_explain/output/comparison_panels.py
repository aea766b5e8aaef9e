"""Side-by-side comparison panels: the original and two models' overlays under a title."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from thermal_explain.output.render import blend, colorize, desaturate, resize_map

PANEL_HEIGHT = 224
"""Height in pixels of each tile of a comparison panel (the original's aspect is kept)."""


_TITLE_LINE = 22


_FONT = cv2.FONT_HERSHEY_SIMPLEX


def _fit_text(text: str, width: int, scale: float = 0.5) -> float:
    """The largest font scale up to ``scale`` (at least 0.3) at which ``text`` fits ``width``."""
    while scale > 0.3:
        (text_width, _), _ = cv2.getTextSize(text, _FONT, scale, 1)
        if text_width <= width:
            break
        scale -= 0.05
    return max(scale, 0.3)


def _caption(tile: np.ndarray, text: str) -> np.ndarray:
    """A copy of ``tile`` with ``text`` at its bottom left, white on a dark outline."""
    out = tile.copy()
    scale = _fit_text(text, out.shape[1] - 8, 0.45)
    origin = (4, out.shape[0] - 6)
    cv2.putText(out, text, origin, _FONT, scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(out, text, origin, _FONT, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def comparison_panel(
    thumbnail: np.ndarray,
    map_a: np.ndarray,
    map_b: np.ndarray,
    lut: np.ndarray,
    title: Sequence[str],
    captions: Sequence[str] = ("original", "model A", "model B"),
    original_alpha: float = 0.3,
    heatmap_alpha: float = 0.7,
) -> np.ndarray:
    """original | model A overlay | model B overlay, under a title strip.

    Args:
        thumbnail: ``(h, w, 3)`` uint8 RGB original, already at the tile size.
        map_a: ``(Ha, Wa)`` 0..1 map of model A (resized to the tile).
        map_b: ``(Hb, Wb)`` 0..1 map of model B.
        lut: ``(256, 3)`` uint8 RGB colormap table.
        title: lines of the title strip (one line each, shrunk to fit).
        captions: the three tiles' captions.
        original_alpha: weight of the desaturated original in the overlays.
        heatmap_alpha: weight of the heatmap.

    Returns:
        ``(len(title) * 22 + h, 3 * w, 3)`` uint8 RGB.
    """
    size = thumbnail.shape[:2]
    gray = desaturate(thumbnail)
    tiles = [thumbnail]
    for values in (map_a, map_b):
        heat = colorize(resize_map(values, size), lut)
        tiles.append(blend(gray, heat, original_alpha, heatmap_alpha))
    strip = np.concatenate(
        [_caption(tile, _drawable(text)) for tile, text in zip(tiles, captions, strict=True)],
        axis=1,
    )
    header = np.full((_TITLE_LINE * len(title), strip.shape[1], 3), 255, dtype=np.uint8)
    for row, text in enumerate(title):
        line = _drawable(text)
        scale = _fit_text(line, strip.shape[1] - 12)
        baseline = _TITLE_LINE * (row + 1) - 7
        cv2.putText(header, line, (6, baseline), _FONT, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([header, strip], axis=0)


def _drawable(text: str) -> str:
    """``text`` with each character OpenCV's Hershey fonts cannot draw replaced by ``?``."""
    return "".join(char if " " <= char <= "~" else "?" for char in text)


def _thumbnail(image: np.ndarray, height: int = PANEL_HEIGHT) -> np.ndarray:
    """``image`` scaled to ``height`` rows, aspect kept."""
    scale = height / image.shape[0]
    width = max(1, round(image.shape[1] * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(image, (width, height), interpolation=interpolation)
