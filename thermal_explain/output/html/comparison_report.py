"""``comparison_report.html``: two models' maps side by side, the disagreements first.

Layout under the comparison's ``output_dir``::

    comparison_report.html                       models, per-layer similarity, one row per image
    comparison_report_files/report.css           the style (the table script is inlined)
    comparison_report_files/images/<id>.html     one page per image: every layer's panel
    comparison_report_files/thumbs/<id>.jpg      the deepest layer's panel, small

Rows start with the images where the models predict different classes, then those whose
deepest maps are least alike. Links are relative and percent-encoded, as in ``report.html``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from thermal_explain.output.atomic import atomic_write_text
from thermal_explain.output.comparison_report import ComparedModels, layer_summary
from thermal_explain.output.html.facts import (
    MANIFEST_FILE,
    manifest_facts,
    manifest_summary,
    read_manifest,
)
from thermal_explain.output.html.links import common_folder, display_name, output_file, page_id
from thermal_explain.output.html.pictures import PictureJob, Pictures, draw_pictures
from thermal_explain.output.html.settings import COMPARISON_ASSETS_DIR, COMPARISON_HTML
from thermal_explain.output.html.templating import copy_static, render_page, render_text


@dataclass
class PairView:
    """One layer pair of one image."""

    name: str
    layer_a: str
    layer_b: str
    spearman: float | None
    top_iou: float | None
    flat: bool
    panel: str | None


@dataclass
class ComparedImage:
    """One comparison record as the report shows it."""

    index: int
    id: str
    page: str
    name: str
    image_path: str
    status: str
    error: str | None
    model_a: dict[str, Any]
    model_b: dict[str, Any]
    agree: bool | None
    pairs: list[PairView]
    pictures: Pictures

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def pair(self, name: str) -> PairView | None:
        return next((pair for pair in self.pairs if pair.name == name), None)


def write_comparison_report(
    output_dir: str | os.PathLike[str],
    records: Sequence[Mapping[str, Any]],
    comparison: ComparedModels,
) -> Path:
    """Write ``comparison_report.html`` and its pages; returns the front page's path."""
    root = Path(os.path.abspath(os.fspath(output_dir)))
    assets = root / COMPARISON_ASSETS_DIR
    copy_static(assets)
    names = comparison.layer_names
    deepest = names[-1] if names else None
    ordered = sorted(records, key=lambda record: _disagreement_key(record, deepest))
    ids = [page_id(str(record.get("image_path", ""))) for record in ordered]
    pictures = _thumbnails(ordered, ids, deepest, root)
    input_root = common_folder([str(record.get("image_path", "")) for record in ordered])
    views = [
        _view(index + 1, record, ids[index], pictures[index], names, root, input_root)
        for index, record in enumerate(ordered)
    ]
    ok = [record for record in records if record.get("status") == "ok"]
    agreeing = sum(1 for record in ok if record.get("agree"))
    manifest = read_manifest(root)
    context = {
        "title": f"Model comparison: {root.name}",
        "assets": COMPARISON_ASSETS_DIR,
        "folder": root.name,
        "generated": datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "root_files": [
            name
            for name in ("comparison_results.json", "comparison_report.txt", MANIFEST_FILE)
            if (root / name).is_file()
        ],
        "views": views,
        "pairs": comparison.pairs,
        "deepest": deepest,
        "facts": _facts(records, ok, agreeing, comparison),
        "run_facts": manifest_summary(manifest) if manifest else [],
        "manifest": manifest_facts(manifest) if manifest else [],
        "summaries": _summaries(ok, comparison),
        "labels": sorted(
            {
                str((record.get(side) or {}).get("predicted_label"))
                for record in ok
                for side in ("model_a", "model_b")
            }
        ),
    }
    for index, view in enumerate(views):
        neighbours = {
            "previous": views[index - 1] if index > 0 else None,
            "next": views[index + 1] if index + 1 < len(views) else None,
        }
        render_page(
            "comparison_image.html.j2", root / view.page, 2, view=view, **neighbours, **context
        )
    text = render_text("comparison_overview.html.j2", 0, **context)
    atomic_write_text(root / COMPARISON_HTML, text)
    return root / COMPARISON_HTML


def _disagreement_key(record: Mapping[str, Any], deepest: str | None) -> tuple[int, float, str]:
    """Disagreements first, then the least alike deepest maps; failed images last."""
    path = str(record.get("image_path", ""))
    if record.get("status") != "ok":
        return (2, 0.0, path)
    rho = ((record.get("layers") or {}).get(deepest) or {}).get("spearman")
    alike = float(rho) if isinstance(rho, (int, float)) and math.isfinite(rho) else math.inf
    return (0 if not record.get("agree") else 1, alike, path)


def _thumbnails(
    records: Sequence[Mapping[str, Any]], ids: Sequence[str], deepest: str | None, root: Path
) -> list[Pictures]:
    jobs, slots = [], []
    for index, record in enumerate(records):
        entry = (record.get("layers") or {}).get(deepest) or {}
        panel = output_file(entry.get("panel_path"), root)
        if record.get("status") != "ok" or panel is None:
            continue
        thumbnail = f"{COMPARISON_ASSETS_DIR}/thumbs/{ids[index]}.jpg"
        jobs.append(PictureJob(str(record["image_path"]), (panel,), thumbnail))
        slots.append(index)
    pictures = [Pictures() for _ in records]
    for index, drawn in zip(slots, draw_pictures(jobs, root), strict=True):
        pictures[index] = drawn
    return pictures


def _view(
    index: int,
    record: Mapping[str, Any],
    image_id: str,
    pictures: Pictures,
    names: Sequence[str],
    root: Path,
    input_root: str | None,
) -> ComparedImage:
    layers = record.get("layers") or {}
    pairs = []
    for name in names:
        entry = layers.get(name)
        if not isinstance(entry, Mapping):
            continue
        pairs.append(
            PairView(
                name=name,
                layer_a=str(entry.get("layer_a", name)),
                layer_b=str(entry.get("layer_b", name)),
                spearman=_number(entry.get("spearman")),
                top_iou=_number(entry.get("top_iou")),
                flat=bool(entry.get("flat_map")),
                panel=output_file(entry.get("panel_path"), root),
            )
        )
    path = str(record.get("image_path", ""))
    return ComparedImage(
        index=index,
        id=image_id,
        page=f"{COMPARISON_ASSETS_DIR}/images/{image_id}.html",
        name=display_name(path, input_root),
        image_path=path,
        status=str(record.get("status", "error")),
        error=record.get("error"),
        model_a=dict(record.get("model_a") or {}),
        model_b=dict(record.get("model_b") or {}),
        agree=record.get("agree") if record.get("status") == "ok" else None,
        pairs=pairs,
        pictures=pictures,
    )


def _facts(
    records: Sequence[Mapping[str, Any]],
    ok: Sequence[Mapping[str, Any]],
    agreeing: int,
    comparison: ComparedModels,
) -> list[tuple[str, str]]:
    fraction = f"{comparison.top_fraction:g} (share of the hottest pixels whose IoU is measured)"
    facts = [
        ("Model A", comparison.model_a.describe()),
        ("Model B", comparison.model_b.describe()),
        ("Method", comparison.method),
        ("Input size", f"{comparison.image_size} px"),
        ("Top fraction", fraction),
        ("Images", f"{len(records)}: {len(ok)} compared, {len(records) - len(ok)} failed"),
    ]
    if ok:
        facts.append(
            (
                "Predictions agree",
                f"{agreeing} of {len(ok)} ({agreeing / len(ok):.1%}); "
                f"{comparison.agreement_rule()}",
            )
        )
    if comparison.same_file:
        facts.append(("Note", "model A and model B are the same file"))
    return facts


def _summaries(ok: Sequence[Mapping[str, Any]], comparison: ComparedModels) -> list[dict[str, Any]]:
    rows = []
    for pair in comparison.pairs:
        entries = [(record.get("layers") or {}).get(pair.name) or {} for record in ok]
        different = pair.layer_a != pair.layer_b
        rows.append(
            {
                "name": pair.name,
                "layers": f"A {pair.layer_a}, B {pair.layer_b}" if different else "",
                "spearman": layer_summary([entry.get("spearman") for entry in entries]),
                "top_iou": layer_summary([entry.get("top_iou") for entry in entries]),
            }
        )
    return rows


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None
