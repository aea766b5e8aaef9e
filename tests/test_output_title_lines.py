"""Title lines composed from digit drawings are matplotlib's drawings, or are drawn in full."""

from __future__ import annotations

import numpy as np
import pytest

from thermal_explain.output.colormaps import get_colormap
from thermal_explain.output.figures import FigureRenderer, figure_title
from thermal_explain.output.title_lines import DigitComposer, TitleLineCache


@pytest.fixture(scope="module")
def draw_prediction_line():
    """Matplotlib's drawing of a figure's second title line (a 40x56 image's figure)."""
    renderer = FigureRenderer(get_colormap("jet"))
    renderer.render(np.zeros((40, 56, 3), np.uint8), "first\nsecond")
    template = next(iter(renderer._templates.values()))
    return lambda text: template.title.draw_line(template.canvas, 1, text)


def _prediction(confidence: float, label: str = "ICAS") -> str:
    return figure_title("layer", label, confidence, "ICAS", "NORMAL").split("\n")[1]


@pytest.mark.parametrize("confidences", [[0.8542, 0.1, 0.9999, 0.5005], [0.05, 0.031, 0.099]])
def test_composed_lines_equal_matplotlib_drawings(draw_prediction_line, confidences) -> None:
    drawn = []

    def counting(text: str) -> np.ndarray:
        drawn.append(text)
        return draw_prediction_line(text)

    cache = TitleLineCache(compose_after=1)
    for confidence in (0.4321, 0.0432, 1.0):  # build the composers of ##.#, #.# and ###.#
        cache.get("figure", _prediction(confidence), counting)
    built = len(drawn)
    for confidence in confidences:
        text = _prediction(confidence)
        np.testing.assert_array_equal(
            cache.get("figure", text, counting), draw_prediction_line(text)
        )
    assert len(drawn) == built  # every later line was composed, none drawn


def test_a_pattern_is_drawn_in_full_until_it_repeats(draw_prediction_line) -> None:
    drawn = []

    def counting(text: str) -> np.ndarray:
        drawn.append(text)
        return draw_prediction_line(text)

    cache = TitleLineCache(compose_after=3)
    for confidence in (0.61, 0.62):
        cache.get("figure", _prediction(confidence), counting)
    assert len(drawn) == 2
    cache.get("figure", _prediction(0.63), counting)  # third line: ten digit drawings follow
    assert len(drawn) > 10
    count = len(drawn)
    cache.get("figure", _prediction(0.64), counting)
    cache.get("figure", _prediction(0.64, label="NORMAL"), counting)  # another pattern
    assert len(drawn) == count + 1


def _shifting_draw(text: str) -> np.ndarray:
    """A 'font' whose 1 is narrower than the other digits: a digit moves what follows it."""
    columns = []
    for character in text:
        width = 2 if character == "1" else 3
        columns += [ord(character) % 251] * width + [255]
    line = np.full((1, 64, 3), 255, np.uint8)
    line[0, : len(columns)] = np.array(columns, np.uint8)[:, None]
    return line


def test_lines_whose_digits_move_the_text_are_drawn_in_full() -> None:
    assert DigitComposer.build(("p(", ".", "%)"), _shifting_draw) is None
    cache = TitleLineCache(compose_after=1)
    for text in ("p(41.5%)", "p(11.1%)", "p(97.3%)"):
        np.testing.assert_array_equal(cache.get("k", text, _shifting_draw), _shifting_draw(text))


def test_dropping_a_context_forgets_its_lines() -> None:
    calls = []

    def draw(text: str) -> np.ndarray:
        calls.append(text)
        return _shifting_draw(text)

    cache = TitleLineCache()
    cache.get("a", "title", draw)
    cache.get("a", "title", draw)
    assert calls == ["title"]
    cache.drop("a")
    cache.get("a", "title", draw)
    assert calls == ["title", "title"]
