"""Images of one explained input and layer for TensorBoard: the input beside its overlay,
under a header saying what they show (name, true and predicted class, confidence, layer).

Validation probe panels and predict overlay previews share this format. Two tiles under
three lines of text keep the image about 2:1 (for a square input), the shape of a Time
Series card (about 440 x 215 px), and narrow enough for an Images card (about 350 px), so
the text stays legible at the dashboard's default zoom.

This module imports neither torch nor the writer (writer workers use it).
"""

from __future__ import annotations

import numpy as np

from thermal_explain.output.render import scale_to_height
from thermal_explain.output.text import header_lines, text_band

TILE_HEIGHT = 160
"""Height in pixels of the two tiles (a square input gives a 320 x 225 px image)."""


def labelled_pair(
    original: np.ndarray,
    overlay: np.ndarray,
    *,
    name: str,
    predicted: str,
    confidence: float,
    true: str | None,
    layer: str,
    target: str | None = None,
    height: int = TILE_HEIGHT,
) -> np.ndarray:
    """``original | overlay`` at ``height`` px (aspect kept) under the image's header.

    Args:
        original: ``(H, W, 3)`` uint8 RGB input.
        overlay: ``(H, W, 3)`` uint8 RGB overlay of the same size.

    Returns:
        ``(h, 2 * w, 3)`` uint8 RGB.
    """
    tiles = np.concatenate(
        [scale_to_height(original, height), scale_to_height(overlay, height)], axis=1
    )
    width = tiles.shape[1]
    header = header_lines(name, predicted, confidence, true, layer, width, target=target)
    return np.concatenate([text_band(width, header), tiles], axis=0)
