"""One image's outputs, rendered and written inside a writer worker (thread or process).

This module imports neither torch nor the writer, so a worker process starts light.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

import cv2
import numpy as np

from thermal_explain.data.thermal import ThermalInput, read_input
from thermal_explain.errors import ThermalExplainError
from thermal_explain.output.figures import FigureRenderer, figure_title, shared_figure_renderer
from thermal_explain.output.html.pictures import strip_tile, write_pictures
from thermal_explain.output.naming import inside, output_names
from thermal_explain.output.preview import labelled_pair
from thermal_explain.output.records import describe_error, error_record, layer_entry, ok_record
from thermal_explain.output.render import (
    blend,
    colorize,
    desaturate,
    encode_png,
    resize_map,
    write_file,
)
from thermal_explain.output.thermal_figure import thermal_figure_png


@dataclass(frozen=True)
class LayerJob:
    """One layer's maps and numbers (numpy and JSON types only)."""

    layer: str
    display_map: np.ndarray
    raw_map: np.ndarray
    statistics: dict[str, Any]
    side_attribution: dict[str, Any] | None = None
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ImageJob:
    """Everything a worker needs to write one image's outputs and record.

    ``background`` is the desaturated original ``(height, width)`` uint8 when the batch
    carried it; ``pixels`` the ``(H, W, 3)`` uint8 input when it is not a file; without
    either the worker reads the file again. ``original`` is the picture in colour
    ``(h, w, 3)`` uint8, at most the report's size, when the batch carried it for the
    report's pictures; ``celsius`` a temperature input's ``(height, width)`` float32 degrees
    for its figures, when the batch carried them.
    """

    image_path: str
    stem: str
    predicted_class: int
    predicted_label: str
    confidence: float
    true_label: str | None
    target_label: str
    layers: tuple[LayerJob, ...]
    pixels: np.ndarray | None = None
    background: np.ndarray | None = None
    original: np.ndarray | None = None
    celsius: np.ndarray | None = None
    record_fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RenderSettings:
    """What to write and how; fixed for the life of a writer.

    ``report_pictures``: also write each image's contact strip and copy of the original
    for ``report.html`` (:func:`~thermal_explain.output.html.pictures.write_pictures`).
    """

    output_dir: str
    lut: np.ndarray
    original_alpha: float = 0.3
    heatmap_alpha: float = 0.7
    save_heatmaps: bool = True
    save_overlays: bool = True
    save_figures: bool = True
    save_feature_maps: bool = True
    preview_size: int | None = None
    temperature_scale: str | None = None
    temperature_range: tuple[float, float] | None = None
    report_pictures: bool = False


@dataclass
class JobResult:
    """A finished record, the stem it used, and overlay previews ``(layer, RGB)``."""

    record: dict[str, Any]
    stem: str
    previews: list[tuple[str, np.ndarray]] = field(default_factory=list)


def render_image(
    job: ImageJob, settings: RenderSettings, figures: FigureRenderer | None
) -> JobResult:
    """Write every enabled output of ``job``; any failure becomes an error record."""
    try:
        return _render(job, settings, figures)
    except Exception as error:  # a failing image is recorded, never fatal to the run
        record = error_record(
            job.image_path,
            describe_error(error),
            true_label=job.true_label,
            predicted_class=job.predicted_class,
            predicted_label=job.predicted_label,
            confidence=job.confidence,
        )
        return JobResult(record, job.stem)


def _render(job: ImageJob, settings: RenderSettings, figures: FigureRenderer | None) -> JobResult:
    root = Path(settings.output_dir)
    needs_pixels = (
        settings.save_heatmaps
        or settings.save_overlays
        or settings.save_figures
        or settings.preview_size is not None
    )
    original = job.pixels  # previews show the input beside the overlay
    source = None
    temperature_input = job.record_fields.get("input_kind", "image") != "image"
    needs_file = (
        job.background is None
        or (temperature_input and settings.save_figures and job.celsius is None)
        or (settings.report_pictures and job.original is None and not temperature_input)
    )
    if original is None and needs_pixels and needs_file:
        source = read_input(job.image_path, settings.temperature_scale)
        original = source.display(settings.temperature_range)
    background = _background(job, original) if needs_pixels else None
    temperatures = source if source is not None and source.is_temperature else None
    if temperatures is None and job.celsius is not None:
        temperatures = ThermalInput(job.record_fields.get("input_kind", ""), job.celsius)
    results: dict[str, dict[str, Any]] = {}
    previews: list[tuple[str, np.ndarray]] = []
    tiles: list[np.ndarray] = []  # the overlays written, for the report's contact strip
    tile_background = (
        strip_tile(background)
        if background is not None and settings.save_overlays and settings.report_pictures
        else None
    )
    for layer in job.layers:
        names = output_names(job.stem, layer.layer, job.target_label)
        paths: dict[str, str | None] = dict.fromkeys(
            ("heatmap_path", "overlay_path", "overlay_plt_path")
        )
        if background is not None:
            heatmap, overlay = _overlay(background, layer.display_map, settings)
            if settings.save_heatmaps:
                paths["heatmap_path"] = _write(root, names.heatmap, encode_png(heatmap))
            if settings.save_overlays:
                paths["overlay_path"] = _write(root, names.overlay, encode_png(overlay))
            if tile_background is not None:
                tiles.append(_overlay(tile_background, layer.display_map, settings)[1])
            if settings.save_figures and figures is not None:
                title = figure_title(
                    layer.layer,
                    job.predicted_label,
                    job.confidence,
                    job.target_label,
                    job.true_label,
                )
                if temperatures is not None:
                    window = temperatures.display_range(settings.temperature_range)
                    figure = thermal_figure_png(
                        temperatures.pixels, window, overlay, title, settings.lut
                    )
                else:
                    figure = figures.render_png(overlay, title)
                paths["overlay_plt_path"] = _write(root, names.figure, figure)
            if settings.preview_size is not None:
                size = settings.preview_size
                preview = labelled_pair(
                    original if original is not None else background,
                    overlay,
                    name=PurePath(job.image_path).name,
                    predicted=job.predicted_label,
                    confidence=job.confidence,
                    true=job.true_label,
                    layer=layer.layer,
                    target=job.target_label,
                    height=size,
                )
                previews.append((layer.layer, preview))
        if settings.save_feature_maps:
            target = inside(root, names.feature_map)
            np.save(target, np.asarray(layer.raw_map, dtype=np.float32))
        results[layer.layer] = layer_entry(
            paths, layer.statistics, layer.side_attribution, layer.metrics
        )
    if settings.report_pictures:
        _report_pictures(job, settings, original, background, tiles)
    record = ok_record(
        image_path=job.image_path,
        predicted_class=job.predicted_class,
        predicted_label=job.predicted_label,
        confidence=job.confidence,
        true_label=job.true_label,
        gradcam_results=results,
        extra=job.record_fields,
    )
    return JobResult(record, job.stem, previews)


def _overlay(
    background: np.ndarray, display_map: np.ndarray, settings: RenderSettings
) -> tuple[np.ndarray, np.ndarray]:
    """``(heatmap, overlay)``, both ``(H, W, 3)`` uint8 RGB at ``background``'s size.

    The report's contact strip draws its tiles this way over the background shrunk to
    tile size: the picture of the full-size overlay shrunk (within a few levels), for 0.9 ms
    against 1.6 per 224-px image of 4 layers.
    """
    heatmap = colorize(resize_map(display_map, background.shape[:2]), settings.lut)
    return heatmap, blend(background, heatmap, settings.original_alpha, settings.heatmap_alpha)


def _background(job: ImageJob, original: np.ndarray | None) -> np.ndarray:
    """The desaturated original as ``(H, W, 3)`` uint8: carried by the job, or from ``original``."""
    if job.background is not None:
        return cv2.cvtColor(job.background, cv2.COLOR_GRAY2RGB)
    assert original is not None
    return desaturate(original)


def _report_pictures(
    job: ImageJob,
    settings: RenderSettings,
    original: np.ndarray | None,
    background: np.ndarray | None,
    tiles: list[np.ndarray],
) -> None:
    """The report's strip and copy of the original, from the pixels at hand.

    The original in colour comes from the batch, else from what this job holds (a
    temperature input's display is its gray background), else from the file. A picture
    that cannot be drawn here is left to the report's end-of-run pass.
    """
    temperature_input = job.record_fields.get("input_kind", "image") != "image"
    colour = job.original
    if colour is None and temperature_input:
        colour = background
    if colour is None:
        colour = original
    try:
        if colour is None:
            colour = read_input(job.image_path, settings.temperature_scale).display(
                settings.temperature_range
            )
        write_pictures(Path(settings.output_dir), job.image_path, colour, tiles)
    except (OSError, ValueError, cv2.error, ThermalExplainError):
        return


def _write(root: Path, relative: str, data: bytes) -> str:
    target = inside(root, relative)
    write_file(os.fspath(target), data)
    return os.fspath(target)


# Worker entry points -------------------------------------------------------------------

_process_settings: list[RenderSettings] = []
_parent: list[int] = []
_PR_SET_PDEATHSIG = 1


def init_process(settings: RenderSettings, parent: int) -> None:
    """Process-pool initializer: die with ``parent``, keep the settings, one OpenCV thread.

    A worker must neither outlive the run that started it nor write after its death: on
    Linux the kernel kills the worker when the parent dies (``PR_SET_PDEATHSIG``), and
    every job first checks that the parent is still there (other systems).
    """
    _die_with_parent()
    _parent[:] = [parent]
    _exit_if_orphaned()
    cv2.setNumThreads(1)
    _process_settings[:] = [settings]


def run_in_process(job: ImageJob) -> JobResult:
    """Render ``job`` in a worker process."""
    _exit_if_orphaned()
    settings = _process_settings[0]
    return run_in_thread(job, settings)


def run_in_thread(job: ImageJob, settings: RenderSettings) -> JobResult:
    """Render ``job`` in the calling thread (figures drawn once per process and colormap)."""
    figures = shared_figure_renderer(settings.lut) if settings.save_figures else None
    return render_image(job, settings, figures)


def _die_with_parent() -> None:
    """Ask Linux to send this process SIGKILL when its parent dies (no-op elsewhere)."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _exit_if_orphaned() -> None:
    """End this worker at once when the process that started it is gone."""
    if _parent and os.getppid() != _parent[0]:
        os._exit(0)
