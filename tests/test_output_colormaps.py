"""Colormap lookup tables from OpenCV and matplotlib names."""

from __future__ import annotations

import cv2
import matplotlib
import numpy as np
import pytest

from thermal_explain.errors import ConfigurationError
from thermal_explain.output.colormaps import colormap_names, get_colormap


def test_opencv_names_match_apply_color_map() -> None:
    ramp = np.arange(256, dtype=np.uint8).reshape(256, 1)
    for name, code in [("jet", cv2.COLORMAP_JET), ("TURBO", cv2.COLORMAP_TURBO)]:
        expected = cv2.applyColorMap(ramp, code)[:, 0, ::-1]
        table = get_colormap(name)
        assert table.shape == (256, 3) and table.dtype == np.uint8
        np.testing.assert_array_equal(table, expected)


def test_jet_runs_from_blue_to_red() -> None:
    table = get_colormap("jet")
    assert table[0, 2] > 100 and table[0, 0] < 10
    assert table[255, 0] > 100 and table[255, 2] < 10


@pytest.mark.parametrize("name", ["coolwarm", "RdBu_r", "rdbu_r", "Greys"])
def test_matplotlib_names(name: str) -> None:
    known = {entry.lower(): entry for entry in matplotlib.colormaps}
    colormap = matplotlib.colormaps[known[name.lower()]]
    expected = np.round(colormap(np.linspace(0, 1, 256))[:, :3] * 255).astype(np.uint8)
    np.testing.assert_array_equal(get_colormap(name), expected)


def test_tables_are_independent_copies() -> None:
    table = get_colormap("hot")
    table[:] = 0
    assert get_colormap("hot").any()


@pytest.mark.parametrize("name", ["jett", "no-such-map", ""])
def test_unknown_name_is_a_one_line_configuration_error(name: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        get_colormap(name)
    message = str(caught.value)
    assert "\n" not in message
    assert "colormap" in message and "jet" in message


def test_typo_suggests_close_name() -> None:
    with pytest.raises(ConfigurationError, match=r"did you mean .*viridis"):
        get_colormap("viridiss")


def test_names_list_both_libraries() -> None:
    names = colormap_names()
    assert {"jet", "turbo", "inferno", "coolwarm", "magma"} <= set(names)
