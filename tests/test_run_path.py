"""One run path for every front door: resume, discovery, options, help, configs."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from thermal_explain import ThermalInterpretabilityAnalyzer
from thermal_explain.cli.analyze import build_parser
from thermal_explain.cli.help_cache import KEPT_COMMANDS, SHIPPED, cache_key
from thermal_explain.cli.main import main
from thermal_explain.errors import ConfigurationError
from thermal_explain.pipeline.options import AnalysisOptions

ROOT = Path(__file__).resolve().parents[1]
OUTPUT_FOLDERS = ("gradcam_heatmaps", "overlay_images", "feature_maps", "plots")


def stamps(out: Path) -> dict[str, int]:
    """Modification times of every output file, by path."""
    files = [path for folder in OUTPUT_FOLDERS for path in (out / folder).rglob("*")]
    files += [out / "analysis_results.json", out / "summary_report.txt"]
    return {str(path): path.stat().st_mtime_ns for path in files if path.is_file()}


def test_second_predict_into_a_finished_folder_writes_nothing(
    tiny_checkpoint, thermal_folder, tmp_path, caplog
):
    data = thermal_folder(n=4)
    out = tmp_path / "out"
    args = [
        "predict", "--config", str(ROOT / "configs" / "predict.yaml"),
        "--model.model_path", str(tiny_checkpoint()), "--data.image_dir", str(data / "images"),
        "--data.pattern", "*/*.png", "--data.image_size", "32", "--data.num_workers", "0",
        "--output_dir", str(out), "--trainer.enable_progress_bar", "false",
    ]  # fmt: skip
    assert main(args) == 0
    before = stamps(out)
    assert sum(name.endswith("_overlay_plt.png") for name in before) == 4 * 4
    assert main(args) == 0
    assert stamps(out) == before
    assert "nothing left to explain" in caplog.text


def test_output_dir_inside_the_image_folder_is_never_read_back(tiny_checkpoint, thermal_folder):
    data = thermal_folder(n=3)
    images = data / "images"
    common = [
        "analyze", "--model_path", str(tiny_checkpoint()), "--image_dir", str(images),
        "--pattern", "**/*.png", "--image_size", "32", "--quiet", "--no_figures",
        "--output_dir", str(images / "analysis"),
    ]  # fmt: skip
    assert main(common) == 0
    first = json.loads((images / "analysis" / "analysis_results.json").read_text())
    assert main([*common, "--overwrite"]) == 0
    again = json.loads((images / "analysis" / "analysis_results.json").read_text())
    assert len(first) == len(again) == 3
    assert not any("/analysis/" in record["image_path"] for record in again)


def test_compare_resumes_and_keeps_its_panels(tiny_checkpoint, thermal_folder, tmp_path):
    data = thermal_folder(n=3)
    out = tmp_path / "cmp"
    args = [
        "compare", "--model_a", str(tiny_checkpoint()), "--model_b", str(tiny_checkpoint(seed=1)),
        "--image_dir", str(data / "images"), "--pattern", "*/*.png", "--image_size", "32",
        "--output_dir", str(out), "--quiet", "--layers", "backbone.layer3.1.conv2",
    ]  # fmt: skip
    assert main(args) == 0
    panels = {p: p.stat().st_mtime_ns for p in (out / "panels").iterdir()}
    assert len(panels) == 3
    assert main(args) == 0
    assert {p: p.stat().st_mtime_ns for p in (out / "panels").iterdir()} == panels
    assert len(json.loads((out / "comparison_results.json").read_text())) == 3


def test_every_analyze_option_is_one_flag_and_one_keyword(tiny_checkpoint, tmp_path):
    flags = {action.dest for action in build_parser()._actions}
    assert {item.name for item in fields(AnalysisOptions)} <= flags
    analyzer = ThermalInterpretabilityAnalyzer(
        tiny_checkpoint(), output_dir=tmp_path, image_size=32, metric_steps=4
    )
    assert analyzer.options.metric_steps == 4 and analyzer.preprocessing.image_size == 32
    with pytest.raises(ConfigurationError, match="did you mean metric_steps"):
        ThermalInterpretabilityAnalyzer(tiny_checkpoint(), metrics_steps=4)


@pytest.mark.parametrize(
    "command",
    ["analyze", "compare", "demo", "synth", "quickstart", "configs", "predict", "fit", "pretrain"],
)
def test_help_shows_defaults_without_importing_torch(command):
    script = (
        "import sys\n"
        "from thermal_explain.cli.main import main\n"
        f"try:\n    main([{command!r}, '--help'])\nexcept SystemExit:\n    pass\n"
        "print('TORCH' if 'torch' in sys.modules else 'LIGHT', file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert done.stderr.strip().endswith("LIGHT"), done.stderr[-500:]
    assert "default" in done.stdout and "usage: thermal-explain" in done.stdout


def test_shipped_lightning_help_matches_this_code():
    key = cache_key()
    for command in KEPT_COMMANDS:
        first = (SHIPPED / f"{command}.txt").read_text(encoding="utf-8").partition("\n")[0]
        assert first == f"# key {key}", (
            "the shipped --help text is stale: run `make help-cache` and commit "
            "thermal_explain/cli/help/"
        )


def test_configs_command_writes_the_shipped_configs(tmp_path, capsys):
    assert main(["configs", "--out", str(tmp_path / "cfg")]) == 0
    names = sorted(path.name for path in (tmp_path / "cfg").iterdir())
    assert names == ["demo.yaml", "fit.yaml", "predict.yaml", "pretrain.yaml"]
    shipped = (ROOT / "thermal_explain" / "configs" / "predict.yaml").read_text()
    assert (tmp_path / "cfg" / "predict.yaml").read_text() == shipped
    assert main(["configs", "--out", str(tmp_path / "cfg")]) == 0
    assert "kept" in capsys.readouterr().out
