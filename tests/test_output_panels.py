"""Probe panels and overlay previews: text on its own band, sized for TensorBoard's cards."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from thermal_explain.output.colormaps import get_colormap
from thermal_explain.output.panels import PROBE_HEIGHT, probe_panels
from thermal_explain.output.preview import TILE_HEIGHT, labelled_pair
from thermal_explain.output.text import Line, header_lines, text_band
from thermal_explain.types import ExplainedImage, LayerExplanation


def item(layers: list[str], pixels: np.ndarray) -> ExplainedImage:
    generator = torch.Generator().manual_seed(0)
    maps = {
        name: LayerExplanation(torch.rand(4, 4, generator=generator), torch.zeros(4, 4), {})
        for name in layers
    }
    return ExplainedImage("/x/cat/pic_7.png", 7, 1, "dog", 0.73, "cat", "dog", maps, pixels=pixels)


def enlarged(image: np.ndarray, width: int, height: int) -> np.ndarray:
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)


def test_one_probe_panel_per_layer_with_text_off_the_maps() -> None:
    pixels = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    layers = [f"backbone.layer{k}.1.conv2" for k in range(1, 5)]
    panels = probe_panels(item(layers, pixels), get_colormap("jet"))
    assert [layer for layer, _ in panels] == layers
    for _, panel in panels:
        # About 3:2 and 320 px wide: TensorBoard's cards show it near full size.
        assert panel.dtype == np.uint8 and panel.shape[1] == 2 * PROBE_HEIGHT
        assert 1.3 <= panel.shape[1] / panel.shape[0] <= 1.6
        header, tiles = panel[:-PROBE_HEIGHT], panel[-PROBE_HEIGHT:]
        input_tile = enlarged(pixels, PROBE_HEIGHT, PROBE_HEIGHT)
        assert np.array_equal(tiles[:, :PROBE_HEIGHT], input_tile)  # no text on the input
        assert (header < 100).any() and (header == 255).mean() > 0.5  # dark text on white
    assert not np.array_equal(panels[0][1][-PROBE_HEIGHT:], panels[1][1][-PROBE_HEIGHT:])


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


def test_overlay_preview_carries_the_same_header_above_original_and_overlay() -> None:
    rng = np.random.default_rng(1)
    original = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
    overlay = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
    preview = labelled_pair(
        original, overlay, name="pic_7.png", predicted="dog", confidence=0.73, true=None,
        layer="layer4.1.conv2", target="dog", height=TILE_HEIGHT,
    )  # fmt: skip
    width = round(64 * TILE_HEIGHT / 48)
    assert preview.shape[1] == 2 * width
    tiles = preview[-TILE_HEIGHT:]
    assert np.array_equal(tiles[:, :width], enlarged(original, width, TILE_HEIGHT))
    assert np.array_equal(tiles[:, width:], enlarged(overlay, width, TILE_HEIGHT))
    header = preview[:-TILE_HEIGHT]
    assert header.shape[0] > 40 and (header < 100).any()
