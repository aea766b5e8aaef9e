"""Images into TensorBoard, encoded with the project's fast PNG encoder.

``SummaryWriter.add_image`` converts every image to float and back and encodes it with
PIL's default (slow) PNG settings, which made TensorBoard previews the costliest part of
writing a run's outputs. With a ``SummaryWriter`` (anything whose ``file_writer`` takes
``add_summary``) the image summary is built here instead, from the same pixels; any other
logger gets ``add_image``.

TensorBoard's event writer checksums every record with a CRC-32C computed in pure Python,
about a microsecond per byte: tens of milliseconds per image, in a background thread that
holds the interpreter while the run encodes its next pictures. :func:`use_fast_checksums`
gives it the same checksum computed in C (``google-crc32c``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, Protocol

import numpy as np

from thermal_explain.output.png import encode_png

log = logging.getLogger(__name__)

_MASK_DELTA = 0xA282EAD8


class ImageLogger(Protocol):
    """What the writer needs of a TensorBoard ``SummaryWriter``."""

    def add_image(self, tag: str, img_tensor: Any, *args: Any, **kwargs: Any) -> Any:
        """Log one image under ``tag``."""


def log_image(logger: Any, tag: str, image: np.ndarray, step: int | None = None) -> None:
    """Log an ``(H, W, 3)`` uint8 RGB image under ``tag`` at ``step``.

    Args:
        logger: a ``SummaryWriter`` (or any object with ``add_image``).
        tag: the image's TensorBoard tag.
        image: the pixels.
        step: the global step; ``None`` for none.
    """
    add_summary = getattr(getattr(logger, "file_writer", None), "add_summary", None)
    use_fast_checksums()
    if add_summary is None:
        logger.add_image(tag, image, global_step=step, dataformats="HWC")
        return
    from tensorboard.compat.proto.summary_pb2 import Summary

    height, width = image.shape[:2]
    picture = Summary.Image(
        height=height, width=width, colorspace=3, encoded_image_string=encode_png(image)
    )
    add_summary(Summary(value=[Summary.Value(tag=tag, image=picture)]), step)


def log_previews(logger: Any, previews: Iterable[tuple[str, np.ndarray, int | None]]) -> bool:
    """Log ``(tag, image, step)`` previews; on a logger failure warn once and stop.

    Returns:
        ``False`` when the logger failed (the caller should stop using it), else ``True``.
    """
    for tag, image, step in previews:
        try:
            log_image(logger, tag, image, step)
        except Exception as error:  # a logger failure must not lose the run's records
            log.warning("TensorBoard logging stopped: %s", error)
            return False
    return True


def use_fast_checksums() -> bool:
    """Let TensorBoard's record writer checksum in C; returns whether it does.

    The record format is unchanged: the masked CRC-32C of TFRecord, bit for bit the value of
    TensorBoard's own pure-Python function. Without ``google-crc32c`` (or its C build)
    nothing changes.
    """
    try:
        import google_crc32c
        from tensorboard.summary.writer import record_writer
    except ImportError:  # pragma: no cover - a dependency; TensorBoard still works without
        return False
    if getattr(record_writer.masked_crc32c, "fast", False):
        return True
    if google_crc32c.implementation != "c":  # pragma: no cover - the pure-Python fallback
        return False

    def masked_crc32c(data: bytes) -> int:
        crc = google_crc32c.value(bytes(data))
        rotated = (crc >> 15) | ((crc << 17) & 0xFFFFFFFF)
        return (rotated + _MASK_DELTA) & 0xFFFFFFFF

    masked_crc32c.fast = True  # type: ignore[attr-defined]
    record_writer.masked_crc32c = masked_crc32c
    return True
