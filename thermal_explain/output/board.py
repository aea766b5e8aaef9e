"""Images into TensorBoard, encoded with the project's fast PNG encoder.

``SummaryWriter.add_image`` converts every image to float and back and encodes it with
PIL's default (slow) PNG settings, which made TensorBoard previews the costliest part of
writing a run's outputs. With a ``SummaryWriter`` (anything whose ``file_writer`` takes
``add_summary``) the image summary is built here instead, from the same pixels; any other
logger gets ``add_image``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from thermal_explain.output.png import encode_png


def log_image(logger: Any, tag: str, image: np.ndarray, step: int | None = None) -> None:
    """Log an ``(H, W, 3)`` uint8 RGB image under ``tag`` at ``step``.

    Args:
        logger: a ``SummaryWriter`` (or any object with ``add_image``).
        tag: the image's TensorBoard tag.
        image: the pixels.
        step: the global step; ``None`` for none.
    """
    add_summary = getattr(getattr(logger, "file_writer", None), "add_summary", None)
    if add_summary is None:
        logger.add_image(tag, image, global_step=step, dataformats="HWC")
        return
    from tensorboard.compat.proto.summary_pb2 import Summary

    height, width = image.shape[:2]
    picture = Summary.Image(
        height=height, width=width, colorspace=3, encoded_image_string=encode_png(image)
    )
    add_summary(Summary(value=[Summary.Value(tag=tag, image=picture)]), step)
