"""``report.html`` and ``comparison_report.html``: links, rows, galleries, escaping, browser."""

from __future__ import annotations

import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import torch

from thermal_explain import ThermalInterpretabilityAnalyzer
from thermal_explain.cli.main import main
from thermal_explain.data.synthetic import make_synthetic_dataset
from thermal_explain.metrics.summaries import (
    accuracy_summary,
    is_correct,
    least_confident_correct,
    misclassified,
)
from thermal_explain.modeling.encoder import ThermalEncoder
from thermal_explain.output.html.analysis_report import LEAST_CONFIDENT_COUNT, write_analysis_report
from thermal_explain.output.html.links import href, output_file
from thermal_explain.pipeline.comparison import ModelComparison

ODD_NAMES = ("<script>.png", 'it\'s "q" #1 50%.png', "病人 一号.png")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class Page(HTMLParser):
    """Links, text and the rows of a ``data-rows`` table of one HTML page."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.links: list[str] = []
        self.text: list[str] = []
        self.rows: list[dict[str, str | None]] = []
        self.thumbnails: list[dict[str, str | None]] = []
        self.items = 0
        self.contours = 0
        self.polylines = 0
        self._in_rows = False
        self.feed(path.read_text(encoding="utf-8"))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.links += [value for key, value in attrs if key in ("href", "src") and value]
        if tag == "table" and "data-rows" in found:
            self._in_rows = True
        elif tag == "tr" and self._in_rows and "data-status" in found:
            self.rows.append(found)
        elif tag == "img" and self._in_rows and "data-src" in found:
            self.thumbnails.append({**found, "row": str(len(self.rows) - 1)})
        if "data-item" in found:
            self.items += 1
        if tag == "svg" and found.get("class") == "contour":
            self.contours += 1
        self.polylines += tag == "polyline"

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._in_rows = False

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def broken_links(root: Path) -> list[str]:
    """Every ``href``/``src`` of every page under ``root`` that is not a file inside it."""
    bad = []
    for page in [*root.glob("*.html"), *root.rglob("*_files/**/*.html")]:
        for link in Page(page).links:
            parts = urlsplit(link)
            if not parts.path:  # a fragment of the same page
                continue
            target = (page.parent / unquote(parts.path)).resolve()
            inside = target.is_relative_to(root.resolve())
            if parts.scheme or parts.netloc or not inside or not target.is_file():
                bad.append(f"{page.relative_to(root)}: {link}")
    return bad


def save_model(path: Path, seed: int) -> Path:
    torch.manual_seed(seed)
    encoder = ThermalEncoder("resnet18", 3, 2)
    torch.save({"model_state_dict": encoder.state_dict(), "class_names": ["icas", "normal"]}, path)
    return path


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six synthetic faces, three with odd names (one with a mask), and an unreadable file."""
    root = tmp_path_factory.mktemp("html")
    make_synthetic_dataset(root / "data", n=6, size=32, seed=0)
    images, masks = root / "data" / "images", root / "data" / "masks"
    icas = sorted((images / "icas").glob("*.png"))
    shutil.copy(icas[0], images / "icas" / ODD_NAMES[0])
    shutil.copy(masks / "icas" / icas[0].name, masks / "icas" / ODD_NAMES[0])
    shutil.copy(icas[1], images / "icas" / ODD_NAMES[1])
    shutil.copy(sorted((images / "normal").glob("*.png"))[0], images / "normal" / ODD_NAMES[2])
    (images / "normal" / "broken.png").write_bytes(b"not an image")
    save_model(root / "a.pth", 0)
    save_model(root / "b.pth", 1)
    return root


@pytest.fixture(scope="module")
def analysed(dataset: Path) -> tuple[Path, list[dict]]:
    out = dataset / "out"
    analyzer = small_analyzer(
        dataset,
        out,
        mask_dir=dataset / "data" / "masks",
        metrics=("deletion", "insertion", "localization"),
        metric_steps=2,
        fuse=True,
    )
    records = analyzer.batch_analyze(dataset / "data" / "images", "*/*.png")
    return out, records


@pytest.fixture(scope="module")
def compared(dataset: Path) -> Path:
    comparison = ModelComparison(dataset / "a.pth", dataset / "b.pth", image_size=32)
    paths = sorted((dataset / "data" / "images").glob("*/*.png"))
    return comparison.run(paths, dataset / "compare").output_dir


def small_analyzer(dataset, out, **options):
    """An analyzer of the data set's model at 32 px, quiet and without TensorBoard."""
    return ThermalInterpretabilityAnalyzer(
        dataset / "a.pth",
        output_dir=out,
        image_size=32,
        quiet=True,
        log_to_tensorboard=False,
        **options,
    )


def test_every_link_and_image_resolves_to_a_file_in_the_folder(analysed):
    out, _ = analysed
    assert (out / "report.html").is_file()
    assert broken_links(out) == []


def test_the_folder_still_works_when_moved_without_its_inputs(analysed, tmp_path):
    out, records = analysed
    moved = tmp_path / "moved copy"
    shutil.copytree(out, moved)
    assert broken_links(moved) == []
    pages = list((moved / "report_files" / "images").glob("*.html"))
    assert len(pages) == len(records)
    links = [link for page in pages for link in Page(page).links]
    assert not any(link.startswith(("/", "file:")) for link in links)


def test_overview_has_one_row_per_record_and_galleries_match_the_json(analysed):
    out, records = analysed
    results = json.loads((out / "analysis_results.json").read_text(encoding="utf-8"))
    assert len(results) == len(records) == 10
    overview = Page(out / "report.html")
    assert len(overview.rows) == len(results)
    assert [row["data-status"] for row in overview.rows] == [r["status"] for r in results]
    wrong = [r for r in results if r["status"] == "ok" and r["true_label"] != r["predicted_label"]]
    right = [r for r in results if r["status"] == "ok" and r["true_label"] == r["predicted_label"]]
    failed = [r for r in results if r["status"] != "ok"]
    assert len(failed) == 1
    galleries = out / "report_files"
    assert Page(galleries / "misclassified.html").items == len(wrong)
    assert Page(galleries / "least_confident.html").items == min(len(right), LEAST_CONFIDENT_COUNT)
    assert Page(galleries / "failed.html").items == 1
    means = Page(galleries / "class_means.html")
    assert means.items == 2 and any("class_mean_heatmaps.png" in link for link in means.links)
    text = " ".join(Page(galleries / "failed.html").text)
    assert "broken.png" in text and failed[0]["error"] in text


def test_odd_file_names_show_as_text_and_link_to_their_pages(analysed):
    out, _ = analysed
    raw = (out / "report.html").read_text(encoding="utf-8")
    assert "<script>.png" not in raw and "&lt;script&gt;.png" in raw
    overview = Page(out / "report.html")
    text = " ".join(overview.text)
    for name in ODD_NAMES:
        assert name in text
    names = {unquote(Path(urlsplit(link).path).name) for link in overview.links}
    assert any(name.startswith("it's_q_#1_50%") for name in names)
    assert any(name.startswith("病人_一号") for name in names)


def test_image_page_has_maps_curves_figure_and_mask_contour(analysed):
    out, records = analysed
    overview = Page(out / "report.html")
    row = next(row for row in overview.rows if row["data-name"] == f"icas/{ODD_NAMES[0]}")
    link = next(link for link in overview.links if "images/script_" in link)
    page = Page(out / unquote(link))
    record = next(r for r in records if r["image_path"].endswith(ODD_NAMES[0]))
    layers = record["gradcam_results"]
    assert row["data-status"] == "ok"
    assert page.contours == 1 + 2 * len(layers)  # the original, every overlay and heatmap
    assert page.polylines == 2 * (len(layers) - 1)  # deletion and insertion, fused has none
    assert sum("_overlay_plt.png" in link for link in page.links) == len(layers)
    assert sum("_heatmap.png" in link for link in page.links) == 2 * len(layers)


def test_a_run_with_deletion_only_draws_its_one_curve(dataset, tmp_path):
    analyzer = small_analyzer(
        dataset, tmp_path / "out", save_figures=False, metrics=("deletion",), metric_steps=2
    )
    records = analyzer.batch_analyze(dataset / "data" / "images" / "icas", "face_*.png")
    layers = records[0]["gradcam_results"]
    overview = Page(tmp_path / "out" / "report.html")
    page = Page(
        tmp_path / "out" / unquote(next(link for link in overview.links if "images/" in link))
    )
    assert page.polylines == len(layers)  # one deletion curve per layer
    assert "deletion" in page.text and "insertion" not in page.text


def test_comparison_report_lists_disagreements_first(compared):
    results = json.loads((compared / "comparison_results.json").read_text(encoding="utf-8"))
    assert broken_links(compared) == []
    overview = Page(compared / "comparison_report.html")
    assert len(overview.rows) == len(results)
    agree = [row["data-agree"] for row in overview.rows if row["data-status"] == "ok"]
    assert agree == sorted(agree)  # "no" (disagree) before "yes"
    disagreeing = [r for r in results if r["status"] == "ok" and not r["agree"]]
    assert agree.count("no") == len(disagreeing)
    assert overview.rows[-1]["data-status"] == "error"
    pages = list((compared / "comparison_report_files" / "images").glob("*.html"))
    assert len(pages) == len(results)


def test_no_html_skips_the_report(dataset, tmp_path):
    out = tmp_path / "plain"
    image = next((dataset / "data" / "images" / "icas").glob("face_*.png"))
    common = ["--model_path", str(dataset / "a.pth"), "--image_path", str(image)]
    flags = ["--image_size", "32", "--quiet", "--no_figures", "--no_tensorboard"]
    assert main(["analyze", *common, *flags, "--output_dir", str(out), "--no_html"]) == 0
    assert (out / "analysis_results.json").is_file() and not (out / "report.html").exists()
    assert main(["analyze", *common, *flags, "--output_dir", str(out)]) == 0
    assert (out / "report.html").is_file()  # a resumed run writes the missing page


def test_a_resumed_run_adds_its_images_and_keeps_the_pictures_it_has(dataset, tmp_path):
    images = dataset / "data" / "images"
    analyzer = small_analyzer(dataset, tmp_path / "out", save_figures=False)
    first = analyzer.analyze_single_image(next((images / "icas").glob("face_*.png")))
    thumbs = tmp_path / "out" / "report_files" / "thumbs"
    (thumb,) = thumbs.iterdir()
    written = thumb.stat().st_mtime_ns
    records = analyzer.batch_analyze(images / "icas", "*.png")
    assert first["image_path"] in {record["image_path"] for record in records}
    count = len(list((images / "icas").glob("*.png")))
    assert len(Page(tmp_path / "out" / "report.html").rows) == len(records) == count
    assert len(list(thumbs.iterdir())) == count and thumb.stat().st_mtime_ns == written
    assert broken_links(tmp_path / "out") == []


def test_links_are_percent_encoded_and_found_after_a_move(tmp_path):
    assert href("overlay_images/a#b 病'.png", 2) == "../../overlay_images/a%23b%20%E7%97%85%27.png"
    (tmp_path / "overlay_images").mkdir()
    (tmp_path / "overlay_images" / "x.png").write_bytes(b"")
    assert (
        output_file(str(tmp_path / "overlay_images" / "x.png"), tmp_path) == "overlay_images/x.png"
    )
    assert output_file("/elsewhere/overlay_images/x.png", tmp_path) == "overlay_images/x.png"
    assert output_file("/elsewhere/overlay_images/gone.png", tmp_path) is None
    assert output_file(None, tmp_path) is None


def test_record_summaries_for_the_galleries():
    def record(truth, predicted, confidence, status="ok"):
        return {
            "true_label": truth,
            "predicted_label": predicted,
            "confidence": confidence,
            "status": status,
        }

    records = [
        record("ICAS", "icas", 0.9),
        record("icas", "normal", 0.6),
        record("normal", "icas", 0.95),
        record("normal", "normal", 0.55),
        record(None, "normal", 0.7),
        record("icas", None, None, status="error"),
    ]
    assert [is_correct(r) for r in records] == [True, False, False, True, None, None]
    assert [r["confidence"] for r in misclassified(records)] == [0.95, 0.6]
    assert [r["confidence"] for r in least_confident_correct(records, 1)] == [0.55]
    summary = accuracy_summary(records)
    assert (summary["labelled"], summary["correct"], summary["accuracy"]) == (4, 2, 0.5)
    assert summary["per_class"]["normal"] == {"images": 2, "correct": 1, "recall": 0.5}


def dump_dom(page: Path, fragment: str, tmp_path: Path) -> str:
    """The page's DOM after its script ran, as headless Chromium sees it from ``file://``."""
    assert CHROMIUM is not None
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--dump-dom",
        f"{page.as_uri()}#{fragment}",
    ]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr[-2000:]
    return finished.stdout


def shown_rows(dom: str, tmp_path: Path) -> list[dict[str, str | None]]:
    path = tmp_path / "dom.html"
    path.write_text(dom, encoding="utf-8")
    return [row for row in Page(path).rows if "hidden" not in row]


@pytest.mark.skipif(CHROMIUM is None, reason="needs chromium (apt-get install chromium)")
def test_browser_filters_and_sorts_from_the_url_fragment(analysed, tmp_path):
    out, records = analysed
    dom = dump_dom(out / "report.html", "result=no&sort=confidence&dir=desc", tmp_path)
    assert 'data-ready-ms="' in dom
    rows = shown_rows(dom, tmp_path)
    wrong = [r for r in records if is_correct(r) is False]
    assert len(rows) == len(wrong) > 0
    assert all(row["data-correct"] == "no" for row in rows)
    confidences = [float(row["data-conf"]) for row in rows]
    assert confidences == sorted(confidences, reverse=True)
    assert f"{len(wrong)} of {len(records)} images match" in dom
    failed = shown_rows(dump_dom(out / "report.html", "status=error", tmp_path), tmp_path)
    assert [row["data-name"] for row in failed] == ["normal/broken.png"]
    odd = shown_rows(dump_dom(out / "report.html", "q=%E7%97%85%E4%BA%BA", tmp_path), tmp_path)
    assert [row["data-name"] for row in odd] == [f"normal/{ODD_NAMES[2]}"]


@pytest.mark.skipif(CHROMIUM is None, reason="needs chromium (apt-get install chromium)")
def test_browser_pages_a_long_table(analysed, tmp_path):
    out, records = analysed
    in_file_order = [row["data-name"] for row in Page(out / "report.html").rows]
    dom = dump_dom(out / "report.html", "per=3&page=2&sort=n", tmp_path)
    assert [row["data-name"] for row in shown_rows(dom, tmp_path)] == in_file_order[3:6]
    assert f"{len(records)} of {len(records)} images match; showing 4–6" in dom
    assert "page 2 of 4" in dom
    path = tmp_path / "paged.html"
    path.write_text(dom, encoding="utf-8")
    page = Page(path)
    shown = {str(index) for index, row in enumerate(page.rows) if "hidden" not in row}
    loading = {image["row"] for image in page.thumbnails if image.get("src")}
    assert loading and loading <= shown  # only the rows on the page load their thumbnails


def test_thermal_readout_and_manifest_are_shown_when_present(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    manifest = {
        "tool": "thermal-explain",
        "model": {"fingerprint": "sha256:abc123"},
        "preprocessing": {"image_size": 64},
        "method": "gradcam++",
    }
    (out / "run_manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    record = {
        "image_path": str(tmp_path / "gone" / "p1.tiff"),
        "predicted_class": 0,
        "predicted_label": "icas",
        "confidence": 0.8,
        "true_label": "icas",
        "status": "ok",
        "input_kind": "temperature_array",
        "temperature": {"min": 30.1, "max": 36.4, "mean": 34.25, "units": "celsius"},
        "thermal_asymmetry": {
            "left": 34.0,
            "right": 34.6,
            "delta": -0.6,
            "colder_side": "left",
            "units": "celsius",
            "region_fraction": 0.1,
            "map": "fused",
        },
        "gradcam_results": {},
    }
    write_analysis_report(out, [record], class_names=["icas", "normal"], layers=[])
    overview = " ".join(Page(out / "report.html").text)
    assert "sha256:abc123" in overview and "gradcam++" in overview
    assert "34.25 °C" in overview and "-0.60 °C" in overview and "left" in overview
    page = " ".join(Page(next((out / "report_files" / "images").glob("p1_*.html"))).text)
    assert "temperature_array" in page and "min 30.10, mean 34.25, max 36.40 °C" in page
    assert "colder side: left" in page
    assert broken_links(out) == []


@pytest.mark.skipif(CHROMIUM is None, reason="needs chromium (apt-get install chromium)")
def test_browser_filters_the_comparison(compared, tmp_path):
    results = json.loads((compared / "comparison_results.json").read_text(encoding="utf-8"))
    dom = dump_dom(compared / "comparison_report.html", "agree=no&sort=rho4&dir=asc", tmp_path)
    rows = shown_rows(dom, tmp_path)
    disagreeing = [r for r in results if r["status"] == "ok" and not r["agree"]]
    assert len(rows) == len(disagreeing) > 0
    rho = [float(row["data-rho"]) for row in rows if row["data-rho"]]
    assert rho == sorted(rho)
