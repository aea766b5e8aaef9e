"""The summary report is a pure function of the records."""

from __future__ import annotations

import copy
import unicodedata
from typing import Any

import numpy as np

from thermal_explain.output.report import build_summary

LAYER = "backbone.layer4.1.conv2"


def _record(
    path: str,
    predicted: int,
    confidence: float,
    truth: str | None,
    area: float,
    **extra: Any,
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "heatmap_path": f"out/gradcam_heatmaps/{path}.png",
        "overlay_path": None,
        "overlay_plt_path": f"out/overlay_images/{path}_plt.png",
        "feature_statistics": {"mean_activation": 0.5, "activation_area": area},
        **extra,
    }
    return {
        "image_path": path,
        "predicted_class": predicted,
        "predicted_label": ["ICAS", "NORMAL"][predicted],
        "confidence": confidence,
        "true_label": truth,
        "status": "ok",
        "gradcam_results": {LAYER: entry},
    }


RECORDS = [
    _record("a.jpg", 0, 0.9, "ICAS", 0.2, deletion_auc=0.1),
    _record("b.jpg", 0, 0.7, "NORMAL", 0.4, deletion_auc=0.3),
    _record("c.jpg", 1, 0.6, "NORMAL", 0.6, localization={"iou": 0.5}),
    {
        "image_path": "broken.jpg",
        "predicted_class": None,
        "predicted_label": None,
        "confidence": None,
        "true_label": None,
        "status": "error",
        "error": "cannot decode image 'broken.jpg'",
        "gradcam_results": {},
    },
]


def _summary(**kwargs: Any) -> str:
    return build_summary(
        RECORDS, class_names=["ICAS", "NORMAL"], layers=[LAYER], output_dir="out", **kwargs
    )


def test_totals_and_failures() -> None:
    text = _summary()
    assert "Images analysed: 4  (ok: 3, failed: 1)" in text
    assert "broken.jpg: cannot decode image 'broken.jpg'" in text


def test_distribution_and_confidence() -> None:
    lines = _summary().splitlines()
    assert any(line.split() == ["ICAS", "2", "66.7%"] for line in lines)
    assert any(line.split() == ["NORMAL", "1", "33.3%"] for line in lines)
    values = np.array([0.9, 0.7, 0.6])
    overall = ["all", "3", *(f"{v:.4f}" for v in (values.mean(), values.std(), 0.6, 0.9))]
    assert any(line.split() == overall for line in lines)
    assert any(line.split()[:3] == ["ICAS", "2", "0.8000"] for line in lines)


def test_accuracy_and_confusion_matrix() -> None:
    text = _summary()
    assert "Accuracy: 0.6667  (3 images with a known true label)" in text
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Confusion matrix"))
    assert lines[start + 3].split() == ["ICAS", "1", "0"]
    assert lines[start + 4].split() == ["NORMAL", "1", "1"]


def test_no_accuracy_without_true_labels() -> None:
    unlabeled = [{**record, "true_label": None} for record in RECORDS]
    text = build_summary(unlabeled, class_names=["ICAS", "NORMAL"])
    assert "Accuracy" not in text and "Confusion matrix" not in text


def test_layer_area_and_metric_means() -> None:
    lines = _summary().splitlines()
    assert any(line.split() == [LAYER, "3", "0.4000", "0.5000"] for line in lines)
    assert any(line.split() == [LAYER, "deletion_auc", "2", "0.2000"] for line in lines)
    assert any(line.split() == [LAYER, "localization.iou", "1", "0.5000"] for line in lines)


def test_side_attribution_only_in_asymmetry_mode() -> None:
    assert "Side attribution" not in _summary()
    sided = copy.deepcopy(RECORDS)
    sided[0]["gradcam_results"][LAYER]["side_attribution"] = {"left": 0.7, "right": 0.3}
    sided[1]["gradcam_results"][LAYER]["side_attribution"] = {"left": 0.2, "right": 0.8}
    text = build_summary(sided, layers=[LAYER])
    assert "Side attribution" in text
    assert any(
        line.split() == [LAYER, "2", "0.4500", "0.5500", "1", "1"] for line in text.splitlines()
    )


def test_outputs_section_names_the_folders() -> None:
    text = _summary()
    assert "out/gradcam_heatmaps/  heatmaps: 3" in text
    assert "overlays: 0, figures: 3" in text
    assert "out/analysis_results.json" in text and "out/summary_report.txt" in text


def test_records_are_not_changed_and_empty_input_works() -> None:
    before = copy.deepcopy(RECORDS)
    _summary()
    assert before == RECORDS
    assert "Images analysed: 0" in build_summary([])


def test_chinese_labels_align() -> None:
    records = [_record("x.jpg", 0, 0.5, None, 0.1)]
    records[0]["predicted_label"] = "缺血"
    lines = build_summary(records, class_names=["缺血", "正常"]).splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("Predicted class"))
    titles, row = lines[header + 1], lines[header + 3]
    assert row.split()[0] == "缺血"

    def columns(text: str) -> int:
        return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)

    assert columns(row[: row.index(" 1 ") + 1]) == columns(titles[: titles.index("images")])
