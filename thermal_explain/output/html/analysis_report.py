"""``report.html``: a static report of an analysis run that opens from ``file://``.

Layout under ``output_dir``::

    report.html                        run facts, galleries, summary plots, one row per image
    report_files/report.css            the style of every page
    report_files/misclassified.html    galleries: errors, doubts, failures, class-mean maps
    report_files/least_confident.html
    report_files/failed.html
    report_files/class_means.html
    report_files/images/<id>.html      one page per image
    report_files/thumbs/<id>.jpg       contact strip: the original and every overlay
    report_files/originals/<id>.jpg    the original, so the folder stands alone

Every link is relative and percent-encoded, so the folder can be zipped and moved. The
table lists every image with JavaScript off; with it on (``static/report.js``, inlined in
the page), it sorts, filters and pages, and keeps that state in the URL fragment
(``report.html#result=no&sort=confidence&dir=desc``).
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from thermal_explain.metrics.summaries import (
    failed_records,
    grouped_by_truth,
    least_confident_correct,
    misclassified,
)
from thermal_explain.output.atomic import atomic_write_text
from thermal_explain.output.html.analysis_view import (
    CURVE_HEIGHT,
    CURVE_PAD,
    CURVE_WIDTH,
    ImageView,
    image_view,
    key_layer,
    layer_order,
    units,
)
from thermal_explain.output.html.facts import (
    MANIFEST_FILE,
    count_facts,
    manifest_facts,
    manifest_summary,
    quality_rows,
    read_manifest,
)
from thermal_explain.output.html.links import common_folder, output_file, page_id
from thermal_explain.output.html.pictures import PictureJob, draw_pictures, picture_paths
from thermal_explain.output.html.settings import ASSETS_DIR, REPORT_HTML, ReportSettings
from thermal_explain.output.html.templating import copy_static, render_page, render_text
from thermal_explain.output.naming import REPORT_FILE, RESULTS_FILE
from thermal_explain.output.summary_plots import PLOTS_DIR

log = logging.getLogger(__name__)

LEAST_CONFIDENT_COUNT = 24
"""How many correct predictions the least-confident gallery shows."""

GALLERIES = {
    "misclassified": "Misclassified",
    "least_confident": "Least confident correct",
    "failed": "Failed images",
    "class_means": "Class-mean maps",
}

ROOT_FILES = (RESULTS_FILE, REPORT_FILE, MANIFEST_FILE)
"""Files of ``output_dir`` the front page links to when they exist."""

PLOTS = {
    "confidence_histogram": "Confidence per predicted class",
    "activation_area": "Activation area per layer",
    "class_mean_heatmaps": "Mean map per class and layer",
    "faithfulness_curves": "Mean deletion and insertion curves",
}


def report_is_current(output_dir: str | os.PathLike[str]) -> bool:
    """``report.html`` exists and is not older than ``analysis_results.json``."""
    root = Path(output_dir)
    try:
        return (root / REPORT_HTML).stat().st_mtime_ns >= (root / RESULTS_FILE).stat().st_mtime_ns
    except OSError:
        return False


def refresh_report(
    output_dir: str | os.PathLike[str],
    records: Sequence[Mapping[str, Any]],
    class_names: Sequence[str],
    layers: Sequence[str],
    settings: ReportSettings,
) -> Path | None:
    """Write ``report.html`` at the end of a run unless it is already current.

    A failure is logged as a warning: it costs the page, never the results, which are
    written before. Returns the page, or ``None`` when it was current or failed.
    """
    if report_is_current(output_dir):
        return None
    try:
        return write_analysis_report(
            output_dir, records, class_names=class_names, layers=layers, settings=settings
        )
    except Exception as error:  # the results are on disk already
        log.warning("%s was not written: %s", REPORT_HTML, error)
        return None


def write_analysis_report(
    output_dir: str | os.PathLike[str],
    records: Sequence[Mapping[str, Any]],
    *,
    class_names: Sequence[str],
    layers: Sequence[str],
    settings: ReportSettings | None = None,
) -> Path:
    """Write ``report.html`` and its pages for ``records``; returns the front page's path.

    Args:
        output_dir: the run's folder (``analysis_results.json`` and the outputs it names).
        records: every record of the run, as in ``analysis_results.json``.
        class_names: class names by index.
        layers: the maps each image has, in the order to show them.
        settings: facts and mask lookup (none without them).
    """
    settings = settings or ReportSettings()
    root = Path(os.path.abspath(os.fspath(output_dir)))
    assets = root / ASSETS_DIR
    copy_static(assets)
    order = layer_order(records, layers)
    views = _views(records, order, root, settings)
    galleries = _galleries(records, views)
    means = _class_means(records, class_names, root)
    context = _context(root, records, views, order, class_names, settings)
    context["counts"] = {name: len(items) for name, items in galleries.items()}
    context["counts"]["class_means"] = len(means["groups"]) if means["figure"] else 0
    for name, items in galleries.items():
        render_page(
            "gallery.html.j2", assets / f"{name}.html", 1, gallery=name, items=items, **context
        )
    render_page("class_means.html.j2", assets / "class_means.html", 1, means=means, **context)
    for index, view in enumerate(views):
        neighbours = {
            "previous": views[index - 1] if index > 0 else None,
            "next": views[index + 1] if index + 1 < len(views) else None,
        }
        render_page("image.html.j2", root / view.page, 2, view=view, **neighbours, **context)
    atomic_write_text(root / REPORT_HTML, render_text("overview.html.j2", 0, **context))
    return root / REPORT_HTML


def _views(
    records: Sequence[Mapping[str, Any]],
    layers: Sequence[str],
    root: Path,
    settings: ReportSettings,
) -> list[ImageView]:
    """Every record's view, with its pictures drawn."""
    input_root = common_folder([str(record.get("image_path", "")) for record in records])
    views = []
    for index, record in enumerate(records):
        image_id = page_id(str(record.get("image_path", index)))
        page = f"{ASSETS_DIR}/images/{image_id}.html"
        views.append(image_view(index + 1, record, image_id, page, layers, root, input_root))
    jobs = [_picture_job(view, settings) for view in views if view.ok]
    for view, pictures in zip(
        [view for view in views if view.ok], draw_pictures(jobs, root), strict=True
    ):
        view.pictures = pictures
    return views


def _picture_job(view: ImageView, settings: ReportSettings) -> PictureJob:
    """The contact strip, original copy and mask contour of one successful image."""
    mask = settings.mask_lookup(view.image_path) if settings.mask_lookup is not None else None
    thumbnail, original = picture_paths(view.image_path)
    return PictureJob(
        image_path=view.image_path,
        tiles=tuple(layer.overlay for layer in view.layers if layer.overlay),
        thumbnail=thumbnail,
        original=original,
        mask=Path(mask) if mask is not None else None,
    )


def _galleries(
    records: Sequence[Mapping[str, Any]], views: Sequence[ImageView]
) -> dict[str, list[ImageView]]:
    """The views of the misclassified, least confident correct and failed images."""
    by_path = {view.image_path: view for view in views}
    least = least_confident_correct(records, LEAST_CONFIDENT_COUNT)
    return {
        "misclassified": [by_path[str(r["image_path"])] for r in misclassified(records)],
        "least_confident": [by_path[str(r["image_path"])] for r in least],
        "failed": [by_path[str(r.get("image_path"))] for r in failed_records(records)],
    }


def _context(
    root: Path,
    records: Sequence[Mapping[str, Any]],
    views: Sequence[ImageView],
    layers: Sequence[str],
    class_names: Sequence[str],
    settings: ReportSettings,
) -> dict[str, Any]:
    """What every page of the report may show."""
    ok = [record for record in records if record.get("status") == "ok"]
    manifest = read_manifest(root)
    return {
        "title": f"Grad-CAM report: {root.name}",
        "assets": ASSETS_DIR,
        "root_files": [name for name in ROOT_FILES if (root / name).is_file()],
        "folder": root.name,
        "generated": datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "views": views,
        "layers": layers,
        "key_layer": key_layer(layers),
        "class_names": _classes(records, class_names),
        "gallery_titles": GALLERIES,
        "facts": count_facts(records, class_names),
        "run_facts": manifest_summary(manifest) if manifest else list(settings.facts.items()),
        "manifest": manifest_facts(manifest) if manifest else [],
        "layer_facts": [("Layers", ", ".join(layers))] if layers else [],
        "quality": quality_rows(ok, layers),
        "plots": _plots(root),
        "columns": _columns(views, layers),
        "units": units,
        "curve": {"width": CURVE_WIDTH, "height": CURVE_HEIGHT, "pad": CURVE_PAD},
        "least_count": LEAST_CONFIDENT_COUNT,
    }


def _class_means(
    records: Sequence[Mapping[str, Any]], class_names: Sequence[str], root: Path
) -> dict[str, Any]:
    """The summary plot of class-mean maps, how it groups images, and the group sizes."""
    ok = [record for record in records if record.get("status") == "ok"]
    by_truth = grouped_by_truth(ok)
    key = "true_label" if by_truth else "predicted_label"
    counts = Counter(str(record.get(key)) for record in ok)
    return {
        "figure": output_file(f"{PLOTS_DIR}/class_mean_heatmaps.png", root),
        "basis": "true class" if by_truth else "predicted class",
        "groups": [(name, counts[name]) for name in class_names if counts[name]],
    }


def _classes(records: Sequence[Mapping[str, Any]], class_names: Sequence[str]) -> list[str]:
    """Class names, then any other true or predicted label seen (for the filters)."""
    names = [str(name) for name in class_names]
    for record in records:
        for key in ("true_label", "predicted_label"):
            value = record.get(key)
            if isinstance(value, str) and value not in names:
                names.append(value)
    return names


def _plots(root: Path) -> list[tuple[str, str]]:
    """``(relative path, caption)`` of the summary plots the run wrote."""
    found = []
    for name, caption in PLOTS.items():
        relative = output_file(f"{PLOTS_DIR}/{name}.png", root)
        if relative:
            found.append((relative, caption))
    return found


def _columns(views: Sequence[ImageView], layers: Sequence[str]) -> dict[str, Any]:
    """Which optional columns the table has: metrics of the key layer, thermal readout."""
    key = key_layer(layers)
    entries = [view.layer(key) for view in views] if key else []
    present = [entry for entry in entries if entry is not None]
    return {
        "faithfulness": any(entry.faithfulness for entry in present),
        "localization": any((entry.localization or {}).get("status") == "ok" for entry in present),
        "temperature": any(view.temperature for view in views),
        "asymmetry": any(view.asymmetry for view in views),
    }
