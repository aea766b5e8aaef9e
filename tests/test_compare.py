"""``thermal-explain compare``: two models' CAMs on the same images, layer by layer."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from thermal_explain.cam import flat_maps
from thermal_explain.cli.main import main
from thermal_explain.data.images import read_image
from thermal_explain.errors import ConfigurationError
from thermal_explain.metrics.similarity import compare_maps, to_common_grid
from thermal_explain.modeling.classifier import ThermalClassifier
from thermal_explain.modeling.encoder import ThermalEncoder
from thermal_explain.output.colormaps import get_colormap
from thermal_explain.output.comparison_report import layer_summary
from thermal_explain.output.panels import PANEL_HEIGHT, comparison_panel
from thermal_explain.pipeline.comparison import ModelComparison
from thermal_explain.pipeline.layer_pairs import LayerPair, pair_layers

R18_LAYERS = [f"backbone.layer{stage}.1.conv2" for stage in range(1, 5)]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two randomly initialized ResNet-18 encoders (seeds 0 and 1) saved as state dicts."""
    folder = tmp_path_factory.mktemp("models")
    paths = {}
    for name, seed in (("a", 0), ("b", 1)):
        torch.manual_seed(seed)
        paths[name] = folder / f"model_{name}.pth"
        torch.save(ThermalEncoder().state_dict(), paths[name])
    return paths


@pytest.fixture
def image_dir(tmp_path: Path) -> Path:
    """Three 48x64 textured faces with a warm blob each, written with cv2.imwrite."""
    folder = tmp_path / "faces"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for index in range(3):
        image = (rng.random((48, 64, 3)) * 120).astype(np.uint8)
        cv2.circle(image, (16 + 14 * index, 24), 8, (250, 200, 120), -1)
        cv2.imwrite(str(folder / f"face_{index}.png"), image)
    return folder


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["compare", "--image_size", "64", "--device", "cpu", "--quiet", *argv])
    return code, capsys.readouterr().err


def _records(output: Path) -> list[dict]:
    return json.loads((output / "comparison_results.json").read_text(encoding="utf-8"))


def test_a_model_compared_with_itself_matches_everywhere(
    checkpoints: dict[str, Path], image_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    output = tmp_path / "self"
    code, _ = _run(
        [
            "--model_a", str(checkpoints["a"]), "--model_b", str(checkpoints["a"]),
            "--image_dir", str(image_dir), "--pattern", "*.png", "--output_dir", str(output),
        ],
        capsys,
    )  # fmt: skip
    assert code == 0
    records = _records(output)
    assert [Path(r["image_path"]).name for r in records] == [f"face_{i}.png" for i in range(3)]
    for record in records:
        assert record["status"] == "ok"
        assert record["agree"] is True
        assert record["model_a"] == record["model_b"]
        assert set(record["model_a"]) >= {"predicted_label", "confidence"}
        assert list(record["layers"]) == R18_LAYERS
        for entry in record["layers"].values():
            assert set(entry) >= {"spearman", "top_iou", "panel_path"}
            assert entry["top_iou"] == 1.0
            assert entry["spearman"] == pytest.approx(1.0, abs=1e-4)
            panel = cv2.imread(entry["panel_path"])
            assert panel is not None
            assert panel.shape[0] > PANEL_HEIGHT
            assert panel.shape[1] == 3 * round(64 * PANEL_HEIGHT / 48)
    stem = output / "panels" / "face_0_backbone_layer4_1_conv2_comparison.png"
    assert stem.is_file()
    assert len(list((output / "panels").glob("*_comparison.png"))) == 3 * len(R18_LAYERS)
    report = (output / "comparison_report.txt").read_text(encoding="utf-8")
    assert "3 compared, 0 failed" in report
    assert "prediction agreement: 3/3" in report
    assert "the same file" in report
    assert "agree equally at every layer" in report


def test_different_models_are_less_alike(
    checkpoints: dict[str, Path], image_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    output = tmp_path / "pair"
    code, _ = _run(
        [
            "--model_a", str(checkpoints["a"]), "--model_b", str(checkpoints["b"]),
            "--image_dir", str(image_dir), "--pattern", "*.png", "--output_dir", str(output),
            "--layers", "backbone.layer2.1.conv2", "backbone.layer3.1.conv2",
            "--top_fraction", "0.1",
        ],
        capsys,
    )  # fmt: skip
    assert code == 0
    records = _records(output)
    layers = ["backbone.layer2.1.conv2", "backbone.layer3.1.conv2"]
    for layer in layers:
        rho = [record["layers"][layer]["spearman"] for record in records]
        iou = [record["layers"][layer]["top_iou"] for record in records]
        assert all(-1.0 <= value < 0.99 for value in rho)
        assert all(0.0 <= value < 1.0 for value in iou)
    report = (output / "comparison_report.txt").read_text(encoding="utf-8")
    assert "top fraction: 0.1" in report
    assert "agree most at" in report
    for layer in layers:
        line = next(line for line in report.splitlines() if line.strip().startswith(layer))
        assert "Spearman" in line and "top-IoU" in line


def test_unreadable_image_is_recorded_and_exit_status_is_1(
    checkpoints: dict[str, Path], image_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    (image_dir / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    output = tmp_path / "broken"
    code, err = _run(
        [
            "--model_a", str(checkpoints["a"]), "--model_b", str(checkpoints["b"]),
            "--image_dir", str(image_dir), "--pattern", "*.png", "--output_dir", str(output),
            "--layers", "backbone.layer4.1.conv2", "--batch_size", "2",
        ],
        capsys,
    )  # fmt: skip
    assert code == 1
    records = {Path(record["image_path"]).name: record for record in _records(output)}
    assert len(records) == 4
    assert records["broken.png"]["status"] == "error"
    assert "broken.png" in records["broken.png"]["error"]
    assert all(records[f"face_{i}.png"]["status"] == "ok" for i in range(3))
    assert "failed: " in err and "broken.png" in err
    report = (output / "comparison_report.txt").read_text(encoding="utf-8")
    assert "3 compared, 1 failed" in report
    assert "broken.png" in report
    assert not list((output / "panels").glob("broken*"))


def test_missing_model_is_one_line_and_exit_status_2(
    checkpoints: dict[str, Path], image_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    code, err = _run(
        [
            "--model_a", str(checkpoints["a"]), "--model_b", str(tmp_path / "nowhere.pth"),
            "--image_dir", str(image_dir), "--pattern", "*.png",
            "--output_dir", str(tmp_path / "never"),
        ],
        capsys,
    )  # fmt: skip
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert "--model_b" in lines[0] and "nowhere.pth" in lines[0]
    assert "Traceback" not in err
    assert not (tmp_path / "never").exists()


@pytest.mark.parametrize(
    ("flag", "value", "expected"),
    [
        ("--top_fraction", "1.5", "`top_fraction`"),
        ("--layers", "backbone.layer9.conv", "--layers"),
        ("--colormap", "no_such_map", "colormap"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_status_2(
    checkpoints: dict[str, Path],
    image_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    flag: str,
    value: str,
    expected: str,
) -> None:
    code, err = _run(
        [
            "--model_a", str(checkpoints["a"]), "--model_b", str(checkpoints["b"]),
            "--image_dir", str(image_dir), "--pattern", "*.png",
            "--output_dir", str(tmp_path / "out"), flag, value,
        ],
        capsys,
    )  # fmt: skip
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert expected in err


def test_models_of_different_depth_pair_layers_by_stage() -> None:
    torch.manual_seed(0)
    shallow, deep = ThermalEncoder("resnet18"), ThermalEncoder("resnet34")
    pairs = pair_layers(shallow, deep)
    assert [pair.name for pair in pairs] == [f"backbone.layer{k}" for k in range(1, 5)]
    assert pairs[0] == LayerPair(
        "backbone.layer1", "backbone.layer1.1.conv2", "backbone.layer1.2.conv2"
    )
    assert pairs[3].layer_b == "backbone.layer4.2.conv2"
    assert pair_layers(shallow, ThermalEncoder("resnet18")) == [
        LayerPair(name, name, name) for name in R18_LAYERS
    ]
    assert pair_layers(shallow, deep, ["backbone.layer4.1.conv2"]) == [
        LayerPair("backbone.layer4.1.conv2", "backbone.layer4.1.conv2", "backbone.layer4.1.conv2")
    ]
    with pytest.raises(ConfigurationError, match=r"--model_a.*backbone\.layer1\.2\.conv2"):
        pair_layers(shallow, deep, ["backbone.layer1.2.conv2"])


def test_rgb_and_deeper_asymmetry_models_are_compared_on_the_full_face(image_dir: Path) -> None:
    torch.manual_seed(2)
    rgb = ThermalClassifier(class_names=["normal", "icas"])
    mirrored = ThermalClassifier("resnet34", class_names=["left", "right"], use_asymmetry=True)
    comparison = ModelComparison(rgb, mirrored, image_size=64, device="cpu")
    assert comparison.layer_names == [f"backbone.layer{k}" for k in range(1, 5)]
    assert (comparison.model_a.asymmetry, comparison.model_b.asymmetry) == (False, True)
    image = read_image(image_dir / "face_0.png")
    input_a = comparison.model_a.preprocessing(image)
    input_b = comparison.model_b.preprocessing(image)
    assert input_a.shape == (3, 64, 64)
    assert input_b.shape == (6, 64, 32)
    result = comparison.compare_batch(input_a[None], input_b[None], [(48, 64)])
    maps_b = result.maps_b["backbone.layer2"]
    assert result.maps_a["backbone.layer2"].shape == maps_b.shape == (1, 64, 64)
    assert torch.equal(maps_b, maps_b.flip(-1))
    assert -1.0 <= float(result.spearman["backbone.layer2"][0]) <= 1.0
    # Different class names of the same count: predictions match by index.
    assert comparison.agree(1, 1) and not comparison.agree(0, 1)
    assert "index" in comparison.agreement_rule()


def test_python_api_run_leaves_flat_maps_out(
    checkpoints: dict[str, Path], image_dir: Path, tmp_path: Path
) -> None:
    # At 32 px layer4 is 1x1: its maps are flat and have no ranking to compare.
    comparison = ModelComparison(
        checkpoints["a"], checkpoints["b"], image_size=32, device="cpu",
        layers=["backbone.layer3.1.conv2", "backbone.layer4.1.conv2"],
    )  # fmt: skip
    run = comparison.run(sorted(image_dir.glob("*.png")), tmp_path / "api", batch_size=2)
    assert run.failed == 0 and len(run.records) == 3
    assert json.loads(run.results_path.read_text(encoding="utf-8")) == run.records
    for record in run.records:
        deep = record["layers"]["backbone.layer4.1.conv2"]
        assert deep["flat_map"] is True
        assert deep["spearman"] is None and deep["top_iou"] is None
        assert Path(deep["panel_path"]).is_file()
        assert record["layers"]["backbone.layer3.1.conv2"]["flat_map"] is False
    report = run.report_path.read_text(encoding="utf-8")
    assert "3 map pair(s) had a flat map" in report
    line = next(line for line in report.splitlines() if "backbone.layer4.1.conv2  Spearman" in line)
    assert "n/a" in line


def test_flat_maps_ignore_rounding_noise() -> None:
    constant = torch.full((1, 4, 4), 0.0475) + torch.randn(1, 4, 4) * 1e-9
    varied = torch.linspace(0, 1, 16).reshape(1, 4, 4)
    assert flat_maps(torch.cat([constant, torch.zeros(1, 4, 4), varied])).tolist() == [
        True,
        True,
        False,
    ]


def test_to_common_grid_resizes_the_smaller_maps_only() -> None:
    small = torch.rand(2, 8, 8)
    large = torch.rand(2, 16, 16)
    first, second = to_common_grid(small, large)
    assert first.shape == second.shape == (2, 16, 16)
    assert second is large
    assert float(first.min()) >= 0.0 and float(first.max()) <= 1.0


def test_compare_maps_values() -> None:
    ramp = torch.linspace(0, 1, 64).reshape(1, 8, 8)
    rho, iou = compare_maps(ramp, ramp * 0.5 + 0.1)
    assert rho.tolist() == pytest.approx([1.0]) and iou.tolist() == [1.0]
    rho, iou = compare_maps(ramp, 1 - ramp, top_fraction=0.25)
    assert rho.tolist() == pytest.approx([-1.0]) and iou.tolist() == [0.0]
    coarse = torch.tensor([[[0.0, 1.0], [0.0, 1.0]]])
    fine = coarse.repeat_interleave(4, 1).repeat_interleave(4, 2)
    rho, iou = compare_maps(coarse, fine, top_fraction=0.5)
    assert float(rho) > 0.8 and float(iou) == 1.0


def test_layer_summary_and_panel_shape() -> None:
    summary = layer_summary([0.2, 0.4, 0.6])
    assert summary == pytest.approx({"mean": 0.4, "std": (0.08 / 3) ** 0.5, "min": 0.2, "max": 0.6})
    assert layer_summary([]) is None
    thumbnail = np.full((40, 30, 3), 128, dtype=np.uint8)
    panel = comparison_panel(
        thumbnail, np.zeros((8, 8)), np.ones((16, 16)), get_colormap("jet"), ["one", "two"]
    )
    assert panel.shape == (2 * 22 + 40, 90, 3) and panel.dtype == np.uint8
    assert not np.array_equal(panel[44:, 30:60], panel[44:, 60:90])
