"""TensorBoard panels: the original image and each layer's overlay side by side, titled."""

from __future__ import annotations

import cv2
import numpy as np

from thermal_explain.data.images import read_image
from thermal_explain.output.render import blend, colorize, desaturate, resize_map
from thermal_explain.types import ExplainedImage

PANEL_HEIGHT = 160
TITLE_HEIGHT = 24


def probe_panel(
    item: ExplainedImage,
    lut: np.ndarray,
    original_alpha: float = 0.3,
    heatmap_alpha: float = 0.7,
    height: int = PANEL_HEIGHT,
) -> np.ndarray:
    """One ``(H, W, 3)`` uint8 RGB panel: original | overlay per layer, with a title strip.

    The title names the true label (when known), the prediction and its confidence; each tile
    is captioned with its layer.
    """
    original = read_image(item.image_path)
    scale = height / original.shape[0]
    size = (height, max(1, round(original.shape[1] * scale)))
    base = cv2.resize(original, (size[1], size[0]), interpolation=cv2.INTER_AREA)
    gray = desaturate(base)
    tiles = [_caption(base, "original")]
    for layer, explanation in item.layers.items():
        heat = colorize(resize_map(explanation.display_map.numpy(), size), lut)
        tiles.append(_caption(blend(gray, heat, original_alpha, heatmap_alpha), layer))
    strip = np.concatenate(tiles, axis=1)
    truth = f"true {item.true_label} | " if item.true_label is not None else ""
    title = f"{truth}pred {item.predicted_label} ({item.confidence:.2f})"
    header = np.full((TITLE_HEIGHT, strip.shape[1], 3), 255, dtype=np.uint8)
    cv2.putText(
        header,
        title,
        (6, TITLE_HEIGHT - 7),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.5,
        (0, 0, 0),
        1,
        cv2.LINE_AA,
    )
    return np.concatenate([header, strip], axis=0)


def _caption(tile: np.ndarray, text: str) -> np.ndarray:
    out = tile.copy()
    label = text.replace("backbone.", "")
    cv2.putText(
        out, label, (4, out.shape[0] - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 2, cv2.LINE_AA
    )
    cv2.putText(
        out,
        label,
        (4, out.shape[0] - 6),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.35,
        (255, 255, 255),
        1,
        cv2.LINE_AA,
    )
    return out
