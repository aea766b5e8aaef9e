"""Probe panels and overlay previews: text on its own bands, sized for TensorBoard's cards."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from thermal_explain.output.colormaps import get_colormap
from thermal_explain.output.panels import PROBE_HEIGHT, grid_columns, probe_panel
from thermal_explain.output.preview import MIN_PREVIEW_WIDTH, overlay_preview
from thermal_explain.output.text import Line, common_prefix, header_lines, text_band
from thermal_explain.output.worker import ImageJob
from thermal_explain.types import ExplainedImage, LayerExplanation


def item(layers: list[str], pixels: np.ndarray) -> ExplainedImage:
    generator = torch.Generator().manual_seed(0)
    maps = {
        name: LayerExplanation(torch.rand(4, 4, generator=generator), torch.zeros(4, 4), {})
        for name in layers
    }
    return ExplainedImage("/x/cat/pic_7.png", 7, 1, "dog", 0.73, "cat", "dog", maps, pixels=pixels)


def find(panel: np.ndarray, tile: np.ndarray, column: int) -> int | None:
    """The row at which ``tile`` sits unchanged in ``panel`` at ``column``."""
    height, width = tile.shape[:2]
    for top in range(panel.shape[0] - height + 1):
        if np.array_equal(panel[top : top + height, column : column + width], tile):
            return top
    return None


def test_probe_panel_is_a_near_square_grid_with_text_off_the_maps() -> None:
    pixels = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    layers = [f"backbone.layer{k}.1.conv2" for k in range(1, 5)]
    panel = probe_panel(item(layers, pixels), get_colormap("jet"))
    assert panel.dtype == np.uint8 and panel.shape[1] == 3 * PROBE_HEIGHT
    assert 0.8 <= panel.shape[0] / panel.shape[1] <= 1.2
    # The input tile is the model input, enlarged, with no text drawn over it.
    enlarged = cv2.resize(pixels, (PROBE_HEIGHT, PROBE_HEIGHT), interpolation=cv2.INTER_LINEAR)
    top = find(panel, enlarged, 0)
    assert top is not None and top > 40  # under a header band
    header = panel[:top]
    assert (header < 100).any() and (header == 255).mean() > 0.5  # dark text on white
    caption = panel[top + PROBE_HEIGHT : top + PROBE_HEIGHT + 10]
    assert (caption == 255).mean() > 0.7


def test_grid_columns_keep_panels_near_square() -> None:
    assert [grid_columns(n, 160, 160) for n in (1, 2, 5, 6, 9)] == [1, 2, 3, 3, 4]
    assert grid_columns(5, 320, 160) == 2  # wide tiles: fewer columns


def test_captions_drop_the_shared_prefix() -> None:
    assert common_prefix(["net.features.1.block", "net.features.12.0"]) == "net.features."
    assert common_prefix(["layer4.1.conv2"]) == ""
    assert common_prefix(["a.x", "b.y"]) == ""


def test_text_band_shrinks_then_cuts_a_long_line() -> None:
    band = text_band(120, [Line("features.denseblock4.denselayer16.conv2" * 3, size=20)])
    assert band.shape[1] == 120 and (band[:, -3:] == 255).all()  # nothing drawn to the edge
    lines = header_lines("pic_7.png", "dog", 0.73, "cat", "layer4", 480, target="cat")
    assert [line.text for line in lines] == [
        "pic_7.png",
        "true cat | pred dog 73% (wrong)",
        "layer: layer4 | map of class cat",
    ]
    assert lines[0].size > lines[1].size


def test_overlay_preview_carries_a_header_above_the_overlay() -> None:
    overlay = np.random.default_rng(1).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    job = ImageJob("/x/pic_7.png", "pic_7", 1, "dog", 0.73, None, "dog", ())
    preview = overlay_preview(overlay, job, "layer4.1.conv2", 512)
    assert preview.shape[1] == MIN_PREVIEW_WIDTH
    scaled = cv2.resize(overlay, (384, 288), interpolation=cv2.INTER_LINEAR)
    assert np.array_equal(preview[-288:], scaled)
    header = preview[:-288]
    assert header.shape[0] > 40 and (header < 100).any()
    large = np.zeros((1000, 800, 3), dtype=np.uint8)
    assert overlay_preview(large, job, "layer4", 512)[-512:].shape == (512, 410, 3)
