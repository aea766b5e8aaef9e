"""Layout of the summary plots: figures on a fast-text canvas, boxes and labels in inches.

A layout engine measures every artist of a figure once more before the real drawing. The
summary plots are laid out with margins in inches instead, sized from the few labels whose
length varies (measured with the figure's own renderer, whose text metrics the drawing then
reuses), with titles and axis labels put where matplotlib would put them. The figures draw
on a :class:`~thermal_explain.output.plot_canvas.TextCanvas`.
"""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.transforms import ScaledTranslation

from thermal_explain.output.plot_canvas import TextCanvas

DEFAULT_DPI = 120

POINT = 1 / 72
"""One typographic point in inches."""

TICKS = 7 * POINT
"""Inches from an Axes edge to its tick labels: the tick (3.5 pt) and its padding (3.5 pt)."""

LINE = 12 * POINT
"""Inches one line of 10-pt text takes (ascent and descent of the font)."""

LABEL_PAD = 4 * POINT
"""Inches between tick labels and the axis label."""

TITLE = 0.3
"""Inches above an Axes for its title (9 pt)."""


def new_figure(width: float, height: float, dpi: int = DEFAULT_DPI) -> Figure:
    """A ``width`` by ``height`` inch figure on its own fast-text canvas (no ``pyplot``)."""
    figure = Figure(figsize=(width, height), dpi=dpi)
    TextCanvas(figure)
    return figure


def axes_at(figure: Figure, left: float, bottom: float, width: float, height: float) -> Axes:
    """An Axes at a box given in inches from the figure's lower left corner."""
    figure_width, figure_height = figure.get_size_inches()
    return figure.add_axes(
        (left / figure_width, bottom / figure_height, width / figure_width, height / figure_height)
    )


def text_width(figure: Figure, texts: Sequence[str], size: float) -> float:
    """Inches the widest of ``texts`` takes at ``size`` points (0 for none).

    Measured by the figure's own renderer, whose text metrics its drawing then reuses.
    """
    renderer = figure.canvas.get_renderer()  # type: ignore[attr-defined]
    font = FontProperties(size=size)
    widths = [renderer.get_text_width_height_descent(text, font, False)[0] for text in texts]
    return max(widths, default=0.0) / figure.dpi


def label_axes(
    axis: Axes,
    *,
    title: str | None = None,
    xlabel: str | None = None,
    ylabel: str | None = None,
    numbers: float = 0.0,
) -> None:
    """The title and axis labels where matplotlib would put them, without measuring.

    Left to itself, matplotlib measures every tick label at draw time to place them; here
    the x label goes one line of tick labels below the Axes and the y label ``numbers``
    inches (the widest tick label) to its left.
    """
    inches = axis.figure.dpi_scale_trans  # type: ignore[union-attr]
    if title is not None:
        axis.set_title(title, fontsize=9, y=1.0)
    if xlabel is not None:
        axis.set_xlabel(xlabel)
        below = ScaledTranslation(0.0, -(TICKS + LINE + LABEL_PAD), inches)
        axis.xaxis.set_label_coords(0.5, 0.0, axis.transAxes + below)
    if ylabel is not None:
        axis.set_ylabel(ylabel)
        beside = ScaledTranslation(-(TICKS + numbers + LABEL_PAD), 0.0, inches)
        axis.yaxis.set_label_coords(0.0, 0.5, axis.transAxes + beside)


def text_at(figure: Figure, x: float, y: float, text: str, **style: object) -> None:
    """``text`` at ``(x, y)`` inches from the figure's lower left corner."""
    figure.text(x, y, text, transform=figure.dpi_scale_trans, **style)


def short_layer(name: str) -> str:
    """``backbone.layer4.1.conv2`` -> ``layer4.1.conv2`` for axis labels."""
    return name.removeprefix("backbone.")
