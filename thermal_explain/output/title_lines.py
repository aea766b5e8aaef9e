"""Drawn title lines, kept and reused; lines that differ only in digits composed from ten drawings.

Matplotlib draws a 300-DPI title line in several milliseconds (shaping, then every glyph), and
a figure's prediction line changes from image to image only in its digits (the confidence).
Matplotlib draws glyph after glyph, each at the place the line's layout gives it, and DejaVu
Sans gives every digit the same advance, so once the line's pattern (its text with the digits
taken out) has been drawn with one digit in every place, 0 to 9, any line of that pattern is
the drawing with 0s where each place's columns are copied from the drawing of its digit.
That is checked, not assumed: the columns that change between the ten drawings must form one
separate run per digit place, and two lines composed this way (one with a different digit in
every place) must equal matplotlib's own drawings of them; a pattern that fails is drawn in
full, line by line.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

import numpy as np

LINE_CACHE_SIZE = 32
"""Drawn lines kept (least recently used dropped)."""

PATTERN_CACHE_SIZE = 16
"""Digit patterns kept ready to compose (least recently used dropped)."""

COMPOSE_AFTER = 8
"""Lines of one pattern drawn in full before its ten digit drawings are made: a pattern
pays for them after a dozen lines, so short runs and one-off lines never draw them."""

_DIGIT = re.compile(r"[0-9]")
_FULL = "full"
"""A pattern's state once it failed the checks: its lines are drawn in full."""

DrawLine = Callable[[str], np.ndarray]
"""Draws one line of text as its ``(rows, W, 3)`` uint8 pixel rows."""


@dataclass
class DigitComposer:
    """Composes the lines of one pattern from its drawings with one digit in every place.

    ``base`` is the drawing with 0 in every place; ``places`` holds, per digit place left to
    right, its columns and the ``(10, rows, width, 3)`` pixels there of each digit's drawing.
    """

    base: np.ndarray
    places: list[tuple[slice, np.ndarray]]

    @classmethod
    def build(cls, segments: Sequence[str], draw: DrawLine) -> DigitComposer | None:
        """Draw the pattern ``segments`` (the text around its digits) once per digit.

        Returns:
            The composer, or None when the drawings differ in size or the columns that
            change do not form one run per place.
        """
        drawn = [draw(str(digit).join(segments)) for digit in range(10)]
        if len({drawing.shape for drawing in drawn}) != 1:
            return None
        drawings = np.stack(drawn)
        changing = np.flatnonzero((drawings != drawings[0]).any(axis=(0, 1, 3)))
        runs = np.split(changing, np.flatnonzero(np.diff(changing) > 1) + 1)
        if changing.size == 0 or len(runs) != len(segments) - 1:
            return None
        places = [
            (slice(int(run[0]), int(run[-1]) + 1), drawings[:, :, run[0] : run[-1] + 1].copy())
            for run in runs
        ]
        return cls(drawings[0].copy(), places)

    def compose(self, digits: Sequence[str]) -> np.ndarray:
        """The line showing ``digits`` (one per place, left to right) as new pixel rows."""
        rows = self.base.copy()
        for (columns, drawings), digit in zip(self.places, digits, strict=True):
            rows[:, columns] = drawings[int(digit)]
        return rows


class TitleLineCache:
    """Pixel rows of title lines, per drawing context ``key`` (figure size and line slot).

    Not thread-safe, like the renderer that owns it.

    Args:
        size: drawn lines kept.
        compose_after: lines of one pattern drawn in full before it is composed from digits.
        patterns: digit patterns kept ready to compose.
    """

    def __init__(
        self,
        size: int = LINE_CACHE_SIZE,
        compose_after: int = COMPOSE_AFTER,
        patterns: int = PATTERN_CACHE_SIZE,
    ) -> None:
        self._size = max(1, size)
        self._compose_after = max(1, compose_after)
        self._pattern_size = max(1, patterns)
        self._lines: OrderedDict[tuple[Hashable, str], np.ndarray] = OrderedDict()
        self._patterns: OrderedDict[tuple[Hashable, tuple[str, ...]], int | str | DigitComposer]
        self._patterns = OrderedDict()

    def get(self, key: Hashable, text: str, draw: DrawLine) -> np.ndarray:
        """The rows of ``text`` in context ``key``, drawn with ``draw`` only when needed.

        The returned array is shared with the cache: copy it before changing it.
        """
        rows = self._lines.get((key, text))
        if rows is not None:
            self._lines.move_to_end((key, text))
            return rows
        rows = self._compose_or_draw(key, text, draw)
        self._lines[(key, text)] = rows
        while len(self._lines) > self._size:
            self._lines.popitem(last=False)
        return rows

    def drop(self, key: Hashable) -> None:
        """Forget every line and pattern drawn in context ``key``."""
        for cache in (self._lines, self._patterns):
            for entry in [entry for entry in cache if entry[0] == key]:
                del cache[entry]

    def _compose_or_draw(self, key: Hashable, text: str, draw: DrawLine) -> np.ndarray:
        digits = _DIGIT.findall(text)
        if not digits:
            return draw(text)
        pattern = (key, tuple(_DIGIT.split(text)))
        state = self._patterns.get(pattern, 0)
        self._patterns[pattern] = state
        self._patterns.move_to_end(pattern)
        while len(self._patterns) > self._pattern_size:
            self._patterns.popitem(last=False)
        if isinstance(state, DigitComposer):
            return state.compose(digits)
        rows = draw(text)
        if isinstance(state, int):
            state += 1
            if state >= self._compose_after:
                state = _checked_composer(pattern[1], text, digits, rows, draw)
            self._patterns[pattern] = state
        return rows


def _checked_composer(
    segments: tuple[str, ...], text: str, digits: list[str], rows: np.ndarray, draw: DrawLine
) -> DigitComposer | str:
    """The pattern's composer if it reproduces ``rows`` (``text`` drawn) and a line with a
    different digit in every place; else :data:`_FULL`."""
    composer = DigitComposer.build(segments, draw)
    if composer is None or not np.array_equal(composer.compose(digits), rows):
        return _FULL
    mixed = [str((place + 1) % 10) for place in range(len(digits))]
    if not np.array_equal(composer.compose(mixed), draw("".join(_interleave(segments, mixed)))):
        return _FULL
    return composer


def _interleave(segments: Sequence[str], digits: Sequence[str]) -> list[str]:
    """``segments[0] digits[0] segments[1] ... segments[-1]``."""
    parts = [segments[0]]
    for digit, segment in zip(digits, segments[1:], strict=True):
        parts += [digit, segment]
    return parts
