"""The report's own pictures: contact strips, copies of the originals, mask contours.

A report must open without the input folder, so each image gets, under the report's asset
folder, a copy of its original (longest side at most ``ORIGINAL_SIDE``) and one small
contact strip (the original and every overlay, ``THUMB_HEIGHT`` pixels high) that serves as
its thumbnail in tables and galleries (:func:`picture_paths` names them).

A run that writes a report has its writer's workers draw both while the run goes, from the
pixels they hold (:func:`write_pictures`). At the end, :func:`draw_pictures` draws whatever
is not current (a run without overlays, a report of an older folder): files that are newer
than their sources are kept, so a resumed run only draws its new images. That work runs in
a few threads (OpenCV releases the GIL while it decodes, resizes and encodes).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from thermal_explain.data.images import fit_within, read_mask
from thermal_explain.data.thermal import read_display
from thermal_explain.errors import ThermalExplainError
from thermal_explain.output.html.links import page_id
from thermal_explain.output.html.settings import ASSETS_DIR, ORIGINAL_SIDE
from thermal_explain.output.render import scale_to_height, write_file

__all__ = [
    "GAP",
    "JPEG_QUALITY",
    "ORIGINAL_SIDE",
    "THUMB_HEIGHT",
    "PictureJob",
    "Pictures",
    "draw_pictures",
    "picture_paths",
    "strip_tile",
    "write_pictures",
]

THUMB_HEIGHT = 128
"""Height in pixels of each tile of a contact strip (smaller originals are not enlarged)."""

JPEG_QUALITY = 85
GAP = 2
"""Pixels between the tiles of a contact strip."""


def picture_paths(image_path: str) -> tuple[str, str]:
    """``(contact strip, copy of the original)`` of an input image, relative to the root."""
    image_id = page_id(image_path)
    return f"{ASSETS_DIR}/thumbs/{image_id}.jpg", f"{ASSETS_DIR}/originals/{image_id}.jpg"


def strip_tile(image: np.ndarray) -> np.ndarray:
    """An overlay as the tile of a contact strip: ``THUMB_HEIGHT`` rows (or its own, when
    smaller), aspect kept. The strip of its original holds it as it is."""
    return scale_to_height(image, min(THUMB_HEIGHT, image.shape[0]))


def write_pictures(
    root: Path, image_path: str, original: np.ndarray, tiles: Sequence[np.ndarray]
) -> None:
    """Write an image's copy of the original and its contact strip from pixels in memory.

    What :func:`draw_pictures` would draw from the files, without decoding them again.

    Args:
        root: the output folder.
        image_path: the input image (names the files).
        original: ``(H, W, 3)`` uint8 RGB, the original as the report shows it (any size
            up to the original's; shrunk to ``ORIGINAL_SIDE`` here).
        tiles: the overlays written for it, in layer order, as :func:`strip_tile` made them.

    Raises:
        OSError: a file cannot be written.
    """
    strip, copy = picture_paths(image_path)
    original = fit_within(original, ORIGINAL_SIDE)
    _write_jpeg(root / copy, original)
    _write_jpeg(root / strip, _contact_strip([original, *tiles]))


@dataclass(frozen=True)
class PictureJob:
    """What to draw for one image; every path but ``image_path`` is relative to the root.

    Attributes:
        image_path: the input image.
        tiles: images to put after the original in the strip (overlays, or a panel).
        thumbnail: where the contact strip goes (``.jpg``).
        original: where the copy of the original goes (``.jpg``); ``None``: no copy, and
            the strip holds the tiles only.
        mask: the image's mask file, for the contour (``None`` for none).
    """

    image_path: str
    tiles: tuple[str, ...]
    thumbnail: str
    original: str | None = None
    mask: Path | None = None


@dataclass(frozen=True)
class Pictures:
    """What was drawn for one image (paths relative to the root; ``None`` when missing).

    ``contour`` is SVG path data of the mask's outline in the pixels of a ``view_box``
    ``(width, height)`` frame with the original's aspect.
    """

    thumbnail: str | None = None
    original: str | None = None
    contour: str | None = None
    view_box: tuple[int, int] | None = None


def draw_pictures(
    jobs: Sequence[PictureJob], root: Path, workers: int | None = None
) -> list[Pictures]:
    """Draw every job's pictures under ``root`` (in threads); one result per job, in order.

    An image whose pictures cannot be drawn (its original is gone, a tile is unreadable)
    gets what could be drawn: the report then shows text instead of a picture.
    """
    count = workers if workers is not None else max(1, min(4, os.cpu_count() or 1))
    if count <= 1 or len(jobs) < 2:
        return [_draw(job, root) for job in jobs]
    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(lambda job: _draw(job, root), jobs, chunksize=16))


def _draw(job: PictureJob, root: Path) -> Pictures:
    """One job's pictures; nothing is decoded that is current and not needed."""
    strip = root / job.thumbnail
    sources = [root / tile for tile in job.tiles]
    strip_current = _current(strip, [*sources, Path(job.image_path)])
    copy = root / job.original if job.original is not None else None
    mask = job.mask if job.mask is not None and job.mask.is_file() else None
    original = None
    if copy is not None and (mask or not strip_current or not _current(copy, [])):
        original = _original(job.image_path, copy)
    if not strip_current:
        strip_current = _write_strip(strip, sources, original)
    contour = None
    if mask is not None and original is not None:
        contour = _contour(mask, original.shape[:2])
    return Pictures(
        thumbnail=job.thumbnail if strip_current else None,
        original=job.original if copy is not None and copy.is_file() else None,
        contour=contour,
        view_box=(original.shape[1], original.shape[0])
        if contour and original is not None
        else None,
    )


def _original(image_path: str, copy: Path) -> np.ndarray | None:
    """The original at most ``ORIGINAL_SIDE`` wide or high, from ``copy`` when that is current.

    A copy older than the original is written again; an original that can no longer be
    read leaves the copy as it is.
    """
    if _current(copy, [Path(image_path)]):
        image = _decode(copy)
        if image is not None:
            return image
    try:
        image = fit_within(read_display(image_path), ORIGINAL_SIDE)
    except ThermalExplainError:
        return _decode(copy) if copy.is_file() else None
    _write_jpeg(copy, image)
    return image


def _write_strip(target: Path, sources: Sequence[Path], original: np.ndarray | None) -> bool:
    """Draw the contact strip (the original, then ``sources``); ``False`` with nothing to draw."""
    images = [] if original is None else [original]
    images += [image for source in sources if (image := _decode(source)) is not None]
    if not images:
        return False
    _write_jpeg(target, _contact_strip(images))
    return True


def _contact_strip(images: Sequence[np.ndarray]) -> np.ndarray:
    """``images`` side by side, ``GAP`` white pixels apart, all as high as the highest up to
    ``THUMB_HEIGHT``."""
    height = min(THUMB_HEIGHT, max(image.shape[0] for image in images))
    tiles = [scale_to_height(image, height) for image in images]
    gap = np.full((height, GAP, 3), 255, np.uint8)
    parts = [tiles[0]]
    for tile in tiles[1:]:
        parts += [gap, tile]
    return np.concatenate(parts, axis=1)


def _contour(mask_path: Path, size: tuple[int, int]) -> str | None:
    """SVG path data of the outline of the mask's region, scaled to ``size = (H, W)``."""
    try:
        region = read_mask(mask_path, size)
    except ThermalExplainError:
        return None
    if not region.any():
        return None
    outlines, _ = cv2.findContours(
        region.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
    )
    parts = []
    for outline in outlines:
        points = cv2.approxPolyDP(outline, 0.75, True).reshape(-1, 2)
        if len(points) < 2:
            continue
        steps = " ".join(f"{x + 0.5:g},{y + 0.5:g}" for x, y in points)
        parts.append(f"M{steps}Z")
    return " ".join(parts) or None


def _current(target: Path, sources: Sequence[Path]) -> bool:
    """``target`` exists and is not older than any existing source."""
    try:
        written = target.stat().st_mtime_ns
    except OSError:
        return False
    for source in sources:
        try:
            if source.stat().st_mtime_ns > written:
                return False
        except OSError:
            continue
    return True


def _decode(path: Path) -> np.ndarray | None:
    """An RGB image file as ``(H, W, 3)`` uint8, ``None`` when it cannot be read."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError:
        return None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    return None if image is None else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _write_jpeg(path: Path, rgb: np.ndarray) -> None:
    ok, encoded = cv2.imencode(
        ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
    )
    if not ok:
        raise OSError(f"JPEG encoding failed for {path.name}")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_file(str(path), encoded.tobytes())
