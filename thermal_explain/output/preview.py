"""The overlay previews sent to TensorBoard: a legible size and a header saying what they show.

This module imports neither torch nor the writer (writer workers use it).
"""

from __future__ import annotations

from pathlib import PurePath
from typing import TYPE_CHECKING

import cv2
import numpy as np

from thermal_explain.output.text import header_lines, text_band

if TYPE_CHECKING:
    from thermal_explain.output.worker import ImageJob

MIN_PREVIEW_WIDTH = 384
"""Narrowest preview: smaller overlays are enlarged (or padded) so their header fits."""


def overlay_preview(overlay: np.ndarray, job: ImageJob, layer: str, longest: int) -> np.ndarray:
    """``overlay`` at most ``longest`` px on its longer side, under the image's header.

    The header gives the image name, the true and predicted class with the confidence
    and the layer, as the validation probe panels do.

    Returns:
        ``(H, W, 3)`` uint8 RGB, ``W >= MIN_PREVIEW_WIDTH``.
    """
    image = _fit(overlay, longest)
    header = header_lines(
        PurePath(job.image_path).name,
        job.predicted_label,
        job.confidence,
        job.true_label,
        layer,
        image.shape[1],
        target=job.target_label,
    )
    return np.concatenate([text_band(image.shape[1], header), image], axis=0)


def _fit(image: np.ndarray, longest: int) -> np.ndarray:
    """Scaled to at most ``longest`` px, enlarged towards the minimum width, padded white."""
    height, width = image.shape[:2]
    scale = min(longest / max(height, width), max(1.0, MIN_PREVIEW_WIDTH / width))
    if scale != 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        image = cv2.resize(image, size, interpolation=interpolation)
    missing = MIN_PREVIEW_WIDTH - image.shape[1]
    if missing > 0:
        left = missing // 2
        image = cv2.copyMakeBorder(
            image, 0, 0, left, missing - left, cv2.BORDER_CONSTANT, value=(255, 255, 255)
        )
    return image
