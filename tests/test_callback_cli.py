"""``GradCAMCallback`` added from the command line or YAML of any LightningCLI project."""

from __future__ import annotations

import json
from pathlib import Path

from foreign import CLASSES, Classifier, PicturesData, events, probe_table, table_rows
from lightning.pytorch.cli import LightningCLI


def test_any_lightning_cli_project_takes_the_callback(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # LightningCLI saves its config in the working folder
    out = tmp_path / "gradcam"
    common = [
        "--trainer.accelerator=cpu",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        "--trainer.enable_checkpointing=false",
    ]
    LightningCLI(
        Classifier,
        PicturesData,
        args=[
            "fit",
            *common,
            "--trainer.max_epochs=1",
            "--trainer.num_sanity_val_steps=0",
            "--trainer.logger=lightning.pytorch.loggers.TensorBoardLogger",
            f"--trainer.logger.save_dir={tmp_path}",
            "--trainer.logger.version=run",
            "--trainer.callbacks+=thermal_explain.GradCAMCallback",
            f"--trainer.callbacks.output_dir={out}",
            "--trainer.callbacks.num_probe_samples=2",
        ],
    )
    log_dir = tmp_path / "lightning_logs" / "run"
    assert [row[2] for row in table_rows(probe_table(log_dir))] == CLASSES[:2]
    assert len([t for t in events(log_dir).Tags()["images"] if t.startswith("gradcam/")]) == 2 * 4

    config = tmp_path / "predict.yaml"
    config.write_text(
        "trainer:\n"
        "  logger: false\n"
        "  callbacks:\n"
        "    - class_path: thermal_explain.GradCAMCallback\n"
        "      init_args:\n"
        f"        output_dir: {out}\n"
        "        save_figures: false\n"
        "        method: gradcam++\n"
    )
    LightningCLI(Classifier, PicturesData, args=["predict", "--config", str(config), *common])
    records = json.loads((out / "analysis_results.json").read_text())
    assert len(records) == 4 and all(record["predicted_label"] in CLASSES for record in records)


def test_the_readme_example_runs(tmp_path: Path, monkeypatch) -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    section = readme[readme.index("### Your own LightningModule") :]
    code = section[section.index("```python\n") + 10 :]
    code = code[: code.index("```")]
    smaller = {"torch.randn(64, 3, 128, 128)": "torch.randn(8, 3, 32, 32)"}
    smaller["torch.randint(0, 2, (64,))"] = "torch.randint(0, 2, (8,))"
    smaller["max_epochs=2"] = "max_epochs=1, enable_progress_bar=False"
    for big, small in smaller.items():
        assert big in code
        code = code.replace(big, small)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {"__name__": "readme"})
    records = json.loads((tmp_path / "gradcam" / "analysis_results.json").read_text())
    assert len(records) == 8 and {r["predicted_label"] for r in records} <= {"normal", "ICAS"}
    assert sorted(r["image_path"] for r in records)[:2] == ["batch0_0", "batch0_1"]
    tags = events(next((tmp_path / "logs").rglob("events.out.*")).parent).Tags()["images"]
    assert len([tag for tag in tags if tag.startswith("gradcam/probe_")]) == 8 * 4
