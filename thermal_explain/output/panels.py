"""Panels: an original and its overlays, captioned, under a title band.

Probe panels (validation probes in TensorBoard) show one layer each, under a header on a
white band sized to stay legible when the dashboard scales the image
(:mod:`thermal_explain.output.text`). The two-model comparison panels are strips drawn
with OpenCV's Hershey fonts (shrunk to fit, characters they cannot draw shown as ``?``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from thermal_explain.data.thermal import read_display
from thermal_explain.output.preview import TILE_HEIGHT, labelled_pair
from thermal_explain.output.render import (
    blend,
    colorize,
    desaturate,
    encode_png,
    resize_map,
    scale_to_height,
)
from thermal_explain.output.render import write_file as write_bytes
from thermal_explain.types import ExplainedImage

PANEL_HEIGHT = 224
"""Height in pixels of each tile of a comparison panel (the original's aspect is kept)."""

PROBE_HEIGHT = TILE_HEIGHT
"""Height in pixels of the two tiles of a probe panel (that of the predict previews)."""

TITLE_LINE = 22
"""Height in pixels of one line of a title band."""

_FONT = cv2.FONT_HERSHEY_SIMPLEX


def probe_panels(
    item: ExplainedImage,
    lut: np.ndarray,
    original_alpha: float = 0.3,
    heatmap_alpha: float = 0.7,
    height: int = PROBE_HEIGHT,
) -> list[tuple[str, np.ndarray]]:
    """One image per layer: the input beside its overlay, under the image's header.

    The format of the predict previews (:func:`~thermal_explain.output.preview.labelled_pair`):
    about 320 x 225 px for a square input, legible on TensorBoard's default cards. The
    input is ``item.pixels`` when set (the model input as the model saw it), else the file
    at ``item.image_path``.

    Returns:
        ``(layer, (H, W, 3) uint8 RGB)`` per layer, in the item's order.
    """
    source = item.pixels if item.pixels is not None else read_display(item.image_path)
    base = thumbnail(source, height)
    gray = desaturate(base)
    panels = []
    for layer, explanation in item.layers.items():
        heat = colorize(resize_map(explanation.display_map.numpy(), base.shape[:2]), lut)
        overlay = blend(gray, heat, original_alpha, heatmap_alpha)
        panel = labelled_pair(
            base,
            overlay,
            name=Path(item.image_path).name,
            predicted=item.predicted_label,
            confidence=item.confidence,
            true=item.true_label,
            layer=layer,
            target=item.target_label,
            height=height,
        )
        panels.append((layer, panel))
    return panels


def comparison_panel(
    thumbnail_image: np.ndarray,
    map_a: np.ndarray,
    map_b: np.ndarray,
    lut: np.ndarray,
    title: Sequence[str],
    captions: Sequence[str] = ("original", "model A", "model B"),
    original_alpha: float = 0.3,
    heatmap_alpha: float = 0.7,
) -> np.ndarray:
    """original | model A overlay | model B overlay, under a title band.

    Args:
        thumbnail_image: ``(h, w, 3)`` uint8 RGB original, already at the tile size.
        map_a: ``(Ha, Wa)`` 0..1 map of model A (resized to the tile).
        map_b: ``(Hb, Wb)`` 0..1 map of model B.
        lut: ``(256, 3)`` uint8 RGB colormap table.
        title: lines of the title band (one line each, shrunk to fit).
        captions: the three tiles' captions.
        original_alpha: weight of the desaturated original in the overlays.
        heatmap_alpha: weight of the heatmap.

    Returns:
        ``(len(title) * 22 + h, 3 * w, 3)`` uint8 RGB.
    """
    size = thumbnail_image.shape[:2]
    gray = desaturate(thumbnail_image)
    tiles = [thumbnail_image]
    for values in (map_a, map_b):
        heat = colorize(resize_map(values, size), lut)
        tiles.append(blend(gray, heat, original_alpha, heatmap_alpha))
    return titled_strip(tiles, captions, title)


def write_comparison_panels(
    image_path: str,
    jobs: Sequence[tuple[Path, np.ndarray, np.ndarray, list[str], list[str]]],
    lut: np.ndarray,
) -> None:
    """Render and write one image's comparison panels ``(path, map_a, map_b, title, captions)``.

    Reads the original once for all of them; runs on a worker thread.

    Raises:
        OSError: a panel cannot be written.
    """
    original = thumbnail(read_display(image_path), PANEL_HEIGHT)
    for path, map_a, map_b, title, captions in jobs:
        panel = comparison_panel(original, map_a, map_b, lut, title, captions)
        write_bytes(os.fspath(path), encode_png(panel))


def titled_strip(
    tiles: Sequence[np.ndarray], captions: Sequence[str], title: Sequence[str]
) -> np.ndarray:
    """Equal-height ``tiles`` side by side, each captioned, under a white title band."""
    strip = np.concatenate(
        [caption(tile, text) for tile, text in zip(tiles, captions, strict=True)], axis=1
    )
    header = np.full((TITLE_LINE * len(title), strip.shape[1], 3), 255, dtype=np.uint8)
    for row, text in enumerate(title):
        line = drawable(text)
        scale = fit_text(line, strip.shape[1] - 12)
        baseline = TITLE_LINE * (row + 1) - 7
        cv2.putText(header, line, (6, baseline), _FONT, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([header, strip], axis=0)


def caption(tile: np.ndarray, text: str) -> np.ndarray:
    """A copy of ``tile`` with ``text`` at its bottom left, white on a dark outline."""
    out = tile.copy()
    line = drawable(text)
    scale = fit_text(line, out.shape[1] - 8, 0.45)
    origin = (4, out.shape[0] - 6)
    cv2.putText(out, line, origin, _FONT, scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(out, line, origin, _FONT, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def fit_text(text: str, width: int, scale: float = 0.5) -> float:
    """The largest font scale up to ``scale`` (at least 0.3) at which ``text`` fits ``width``."""
    while scale > 0.3:
        (text_width, _), _ = cv2.getTextSize(text, _FONT, scale, 1)
        if text_width <= width:
            break
        scale -= 0.05
    return max(scale, 0.3)


def drawable(text: str) -> str:
    """``text`` with each character OpenCV's Hershey fonts cannot draw replaced by ``?``."""
    return "".join(char if " " <= char <= "~" else "?" for char in text)


def thumbnail(image: np.ndarray, height: int = PANEL_HEIGHT) -> np.ndarray:
    """``image`` scaled to ``height`` rows, aspect kept."""
    return scale_to_height(image, height)
