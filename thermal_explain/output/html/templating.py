"""The Jinja2 environment of the reports: templates, filters, and writing pages.

Every page is rendered with autoescaping on, so a file name such as ``<script>.jpg`` is
shown as text. Links go through the ``href`` filter, which percent-encodes the
root-relative path and climbs out of the page's folder (``depth`` levels down).
"""

from __future__ import annotations

import math
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import markupsafe

from thermal_explain.output.html.links import href, short_layer

STYLESHEET = "report.css"
"""Written beside the pages; every page links to it."""
SCRIPT = "report.js"
"""Inlined into the pages with a table: an external script would wait behind the fetches of
hundreds of thumbnails before the table could be sorted, filtered and paged."""


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The shared environment (templates are package data of this package)."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("thermal_explain.output.html", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["href"] = _href
    env.filters["num"] = number
    env.filters["pct"] = percent
    env.filters["short"] = short_layer
    env.globals["script"] = markupsafe.Markup(static_text(SCRIPT))
    return env


def render_page(template: str, target: Path, depth: int, **context: Any) -> None:
    """Render ``template`` into ``target``, a page ``depth`` folders below the root.

    A page that already holds the same text is left alone (a resumed run rewrites only the
    pages that changed).
    """
    text = environment().get_template(template).render(depth=depth, **context)
    try:
        if target.read_text(encoding="utf-8") == text:
            return
    except (OSError, UnicodeDecodeError):
        target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")


def render_text(template: str, depth: int, **context: Any) -> str:
    """Render ``template`` to a string (for pages written atomically by the caller)."""
    return environment().get_template(template).render(depth=depth, **context)


def copy_static(folder: Path) -> None:
    """Write the stylesheet the pages link to into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    text = static_text(STYLESHEET)
    target = folder / STYLESHEET
    if not target.is_file() or target.read_text(encoding="utf-8") != text:
        target.write_text(text, encoding="utf-8")


def static_text(name: str) -> str:
    """A file of this package's ``static`` folder."""
    package = resources.files("thermal_explain.output.html") / "static"
    return (package / name).read_text(encoding="utf-8")


def number(value: object, digits: int = 3) -> str:
    """A number with ``digits`` decimals; ``–`` for a missing or non-finite value."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "–"
    if not math.isfinite(value):
        return "–"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def percent(value: object, digits: int = 1) -> str:
    """A 0..1 share as a percentage; ``–`` when missing."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return "–"
    return f"{value * 100:.{digits}f} %"


@jinja2.pass_context
def _href(context: jinja2.runtime.Context, relative: str) -> str:
    return href(relative, int(context.get("depth", 0)))
