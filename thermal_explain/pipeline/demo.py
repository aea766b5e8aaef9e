"""The demo: synthetic faces, a fit with the callback on, a held-out analysis, its figures.

The faces are written as temperatures (``.npy``, degrees) with cold lesions, read through
a fixed temperature window, and explained with the maps drawn on the colder side of the
face, so that the demo checks the left-right readout and the side-resolved pointing game
against the known lesion side.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger

from thermal_explain.data.augmentation import NO_AUGMENTATION
from thermal_explain.data.datamodule import ThermalDataModule
from thermal_explain.data.synthetic import make_synthetic_dataset
from thermal_explain.lightning.callback import GradCAMCallback
from thermal_explain.lightning.progress import ImageProgressBar
from thermal_explain.metrics.summaries import (
    colder_side_agreement,
    deletion_against_random,
    localization_summary,
    sanity_summary,
)
from thermal_explain.modeling.classifier import ThermalClassifier
from thermal_explain.pipeline.explainer import FUSED
from thermal_explain.pipeline.options import DemoSettings


def run_demo(output_dir: Path, settings: DemoSettings, quiet: bool = False) -> dict:
    """Run the whole demo under ``output_dir``; returns the figures it prints."""
    started = time.perf_counter()
    # The demo prints its own steps; Lightning's hardware summary would interleave them.
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    L.seed_everything(settings.seed, verbose=False)
    print(
        f"[1/3] synthesizing {settings.n_train} + {settings.n_heldout} thermal faces "
        f"({settings.face_size} px) in {output_dir}"
    )
    faces = {"lesion_polarity": settings.lesion_polarity, "temperatures": "npy"}
    train_set = make_synthetic_dataset(
        output_dir / "data" / "train", settings.n_train, settings.face_size, settings.seed, **faces
    )
    heldout_set = make_synthetic_dataset(
        output_dir / "data" / "heldout",
        settings.n_heldout,
        settings.face_size,
        settings.seed + 1,
        **faces,
    )

    print(
        f"[2/3] training ResNet-18 for {settings.epochs} epochs at {settings.image_size} px, "
        "Grad-CAM probes each epoch"
    )
    model, val_accuracy = _fit(output_dir, train_set.image_dir, settings, quiet)

    print(f"[3/3] explaining {settings.n_heldout} held-out faces with every output")
    analysis_dir = output_dir / "analysis"
    datamodule = ThermalDataModule(
        image_dir=str(heldout_set.image_dir),
        pattern="*/*.npy",
        mask_dir=str(heldout_set.mask_dir),
        image_size=settings.image_size,
        use_asymmetry=settings.use_asymmetry,
        batch_size=16,
        temperature_range=settings.temperature_range,
    )
    datamodule.set_class_names(model.class_names)
    callback = GradCAMCallback(
        output_dir=str(analysis_dir),
        overwrite=True,
        fuse=True,
        metrics=["deletion", "localization", "sanity"],
        metric_steps=settings.metric_steps,
        lesion_polarity=settings.lesion_polarity,
    )
    trainer = L.Trainer(
        accelerator="auto",
        devices=1,
        logger=False,
        callbacks=[callback, *_progress_bar(quiet)],
        enable_progress_bar=not quiet,
        enable_model_summary=False,
    )
    trainer.predict(model, datamodule, return_predictions=False)
    records = json.loads((analysis_dir / "analysis_results.json").read_text(encoding="utf-8"))
    ok = [r for r in records if r["status"] == "ok"]
    heldout_accuracy = sum(r["predicted_label"] == r["true_label"] for r in ok) / max(len(ok), 1)
    layers = [*callback_layers(ok), FUSED]
    pointing = {
        layer: localization_summary(ok, layer, heldout_set.class_names[0]) for layer in layers
    }
    deletion = deletion_against_random(ok, layers[:-1])
    sanity = {layer: sanity_summary(ok, layer) for layer in layers[:-1]}
    sides = dict(zip(map(str, heldout_set.paths), heldout_set.lesion_sides, strict=True))
    readout = colder_side_agreement(ok, sides)
    figures = {
        "val_accuracy": round(val_accuracy, 4),
        "heldout_accuracy": round(heldout_accuracy, 4),
        "colder_side_is_lesion_side": readout,
        "pointing_game": {k: round(v.get("pointing_game", 0.0), 4) for k, v in pointing.items()},
        "deletion_auc": deletion,
        "sanity_mean_abs_rho": {
            k: round(v["mean_abs_rho"], 4) for k, v in sanity.items() if v is not None
        },
        "images": len(records),
        "seconds": round(time.perf_counter() - started, 1),
    }
    print()
    print(f"validation accuracy (eval mode): {val_accuracy:.1%}")
    print(f"held-out accuracy:               {heldout_accuracy:.1%} on {len(ok)} faces")
    if readout["images"]:
        print(
            f"left-right readout (top 10% of the fused map): the colder side is the lesion's "
            f"side for {readout['rate']:.1%} of {readout['images']} ICAS faces"
        )
    where = _pointing_where(settings)
    print(f"pointing game on ICAS faces, 15-px tolerance{where}, by layer:")
    for layer, summary in pointing.items():
        if summary["images"]:
            print(f"  {layer:<26} {summary['pointing_game']:.1%} of {summary['images']}")
    print("deletion AUC (lower = more faithful) vs a random map:")
    for layer, (auc, random_auc) in deletion.items():
        print(f"  {layer:<26} {auc:.4f} vs {random_auc:.4f}")
    print("sanity check (weights re-initialized top-down; maps should change):")
    for summary in sanity.values():
        if summary is not None:
            print(f"  {summary['verdict']}")
    print(f"report:      {analysis_dir / 'summary_report.txt'}")
    print(f"page:        {analysis_dir / 'report.html'}")
    print(f"results:     {analysis_dir / 'analysis_results.json'}")
    print(f"checkpoint:  {output_dir / 'checkpoints' / 'demo.ckpt'}")
    print(f"tensorboard: tensorboard --logdir {output_dir}")
    print(f"done in {figures['seconds']:.0f} s")
    return figures


def _pointing_where(settings: DemoSettings) -> str:
    """How the pointing game was scored, in words."""
    if not settings.use_asymmetry:
        return ""
    if settings.lesion_polarity == "none":
        return " (asymmetry mode: at the lesion or its mirror point)"
    return f" (full face, maps drawn on the {settings.lesion_polarity}er side)"


def callback_layers(records: list[dict]) -> list[str]:
    """The CAM layers of the records (without the fused map), in record order."""
    names = list(records[0]["gradcam_results"]) if records else []
    return [name for name in names if name != FUSED]


def _fit(
    output_dir: Path, image_dir: Path, settings: DemoSettings, quiet: bool
) -> tuple[ThermalClassifier, float]:
    datamodule = ThermalDataModule(
        image_dir=str(image_dir),
        pattern="*.npy",
        image_size=settings.image_size,
        batch_size=settings.batch_size,
        val_fraction=0.2,
        seed=settings.seed,
        use_asymmetry=settings.use_asymmetry,
        random_flip=True,
        # The demo's faces differ only by the lesion: one plain view per image learns them
        # in a few CPU minutes (the default two-view recipe is for real, varied data).
        augmentation=NO_AUGMENTATION,
        views=1,
        temperature_range=settings.temperature_range,
    )
    model = ThermalClassifier(
        backbone="resnet18",
        use_asymmetry=settings.use_asymmetry,
        learning_rate=settings.learning_rate,
        contrastive_weight=settings.contrastive_weight,
    )
    # One checkpoint, after the last epoch: saving a 130 MB file every epoch costs seconds.
    checkpoint = ModelCheckpoint(
        dirpath=output_dir / "checkpoints", filename="demo", every_n_epochs=settings.epochs
    )
    trainer = L.Trainer(
        max_epochs=settings.epochs,
        accelerator="auto",
        devices=1,
        logger=TensorBoardLogger(output_dir, name="tensorboard", version="fit"),
        callbacks=[GradCAMCallback(num_probe_samples=8), checkpoint],
        num_sanity_val_steps=0,
        log_every_n_steps=5,
        enable_progress_bar=not quiet,
        enable_model_summary=False,
    )
    trainer.fit(model, datamodule)
    accuracy = float(trainer.callback_metrics.get("val_acc", torch.tensor(0.0)))
    return model, accuracy


def _progress_bar(quiet: bool) -> list[ImageProgressBar]:
    """The project's progress bar (images per second when explaining), unless quiet."""
    return [] if quiet else [ImageProgressBar()]
