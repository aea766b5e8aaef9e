"""Learning benchmark: does a recipe learn the lesion, or memorize the subjects?

Writes a realistic synthetic set (:mod:`thermal_explain.data.realistic`: several 128-px
grayscale images per subject, natural left-right differences, hair and glasses, pose
jitter, sensor non-uniformity) for training and a second one of other subjects for a
held-out test, then trains ResNet-18 with each recipe:

* ``baseline``: the earlier recipe, one unaugmented view per image (SupCon on single
  views plus cross-entropy);
* ``default``: two augmented views per image, SupCon over the 2N views plus
  cross-entropy (the shipped ``fit`` default);
* ``pretrained``: ``thermal-explain pretrain`` (NT-Xent, no labels) on the training
  images first, then the default recipe from that checkpoint.

Validation during training is subject-disjoint (``group_pattern``). Each trained model
is saved, then analyzed on the held-out subjects by ``ThermalInterpretabilityAnalyzer``
with their lesion masks: held-out accuracy (eval mode, as at inference) and the pointing
game (15 px at 128 px; in asymmetry mode a hit is at the lesion or its mirror point) of
every layer and the fused map, on the ICAS faces (the tolerance scales with
``--image_size``: 7.5 px at 64 px). ``seconds`` is the recipe's wall time
(pretraining, training and validation), ``eval_seconds`` the analysis.

The last line printed is one JSON object with every recipe's figures. Exit status 0 when
the default recipe meets the targets: held-out accuracy >= 0.9 and best-layer pointing
game >= 0.8 within 600 s.

Run: ``PYTHONPATH=. python benchmarks/bench_learning.py [--recipes default] [--verbose]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
import warnings
from pathlib import Path

import lightning as L
import torch

from thermal_explain.data.augmentation import DEFAULT_AUGMENTATION, NO_AUGMENTATION
from thermal_explain.data.datamodule import ThermalDataModule
from thermal_explain.data.realistic import (
    DEFAULT_LESION_STRENGTH,
    GROUP_PATTERN,
    make_realistic_dataset,
)
from thermal_explain.data.unlabeled import UnlabeledImageDataModule
from thermal_explain.metrics.suite import MetricOptions
from thermal_explain.metrics.summaries import localization_summary
from thermal_explain.modeling.classifier import ThermalClassifier
from thermal_explain.modeling.pretrainer import ContrastivePretrainer
from thermal_explain.pipeline.analyzer import ThermalInterpretabilityAnalyzer
from thermal_explain.types import FUSED

RECIPES = ("baseline", "default", "pretrained")
TARGET_ACCURACY = 0.9
TARGET_POINTING = 0.8
TIME_LIMIT_S = 600.0
TOLERANCE_AT_128 = 15.0
"""Pointing-game tolerance in pixels of a 128-px model input (scaled for other sizes)."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", choices=RECIPES, default=list(RECIPES))
    parser.add_argument("--n", type=int, default=480, help="training images")
    parser.add_argument("--heldout", type=int, default=120, help="held-out images")
    parser.add_argument("--per_subject", type=int, default=5, help="images per subject")
    parser.add_argument("--size", type=int, default=128, help="face image side in pixels")
    parser.add_argument("--image_size", type=int, default=128, help="model input side")
    parser.add_argument("--lesion_strength", type=float, default=DEFAULT_LESION_STRENGTH)
    parser.add_argument("--mode", choices=("asymmetry", "rgb"), default="asymmetry")
    parser.add_argument("--epochs", type=int, default=24)
    parser.add_argument("--pretrain_epochs", type=int, default=10)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--learning_rate", type=float, default=3e-4)
    parser.add_argument("--contrastive_weight", type=float, default=0.5)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="work folder (default: a temp folder)")
    parser.add_argument("--verbose", action="store_true", help="print each epoch's figures")
    return parser.parse_args(argv)


class EpochReport(L.Callback):
    """Print each epoch's training and validation figures to stderr."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.started = time.perf_counter()

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        metrics = {key: float(value) for key, value in trainer.callback_metrics.items()}
        print(
            f"{self.name} epoch {trainer.current_epoch}: "
            f"train_loss {metrics.get('train_loss_epoch', -1):.3f} "
            f"train_acc {metrics.get('train_acc', -1):.3f} "
            f"val_loss {metrics.get('val_loss', -1):.3f} val_acc {metrics.get('val_acc', -1):.3f}"
            f" at {time.perf_counter() - self.started:.0f} s",
            file=sys.stderr,
            flush=True,
        )


def _trainer(args: argparse.Namespace, epochs: int, name: str) -> L.Trainer:
    return L.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=[EpochReport(name)] if args.verbose else [],
    )


def pretrain(args: argparse.Namespace, image_dir: Path, work: Path) -> Path:
    """Self-supervised pretraining on the training images (labels unused)."""
    data = UnlabeledImageDataModule(
        image_dir=str(image_dir),
        image_size=args.image_size,
        use_asymmetry=args.mode == "asymmetry",
        batch_size=args.batch_size,
    )
    model = ContrastivePretrainer(
        use_asymmetry=args.mode == "asymmetry", learning_rate=args.learning_rate
    )
    trainer = _trainer(args, args.pretrain_epochs, "pretrain")
    trainer.fit(model, data)
    path = work / "pretrained_encoder.ckpt"
    trainer.save_checkpoint(path, weights_only=True)
    return path


def train(args: argparse.Namespace, recipe: str, image_dir: Path, work: Path) -> dict:
    """Train one recipe; returns its figures and the saved checkpoint's path."""
    started = time.perf_counter()
    start = pretrain(args, image_dir, work) if recipe == "pretrained" else None
    asymmetry = args.mode == "asymmetry"
    baseline = recipe == "baseline"
    data = ThermalDataModule(
        image_dir=str(image_dir),
        pattern="*.png",
        image_size=args.image_size,
        use_asymmetry=asymmetry,
        batch_size=args.batch_size,
        val_fraction=0.2,
        seed=args.seed,
        group_pattern=GROUP_PATTERN,
        augmentation=NO_AUGMENTATION if baseline else DEFAULT_AUGMENTATION,
        views=1 if baseline else 2,
    )
    model = ThermalClassifier(
        backbone="resnet18",
        use_asymmetry=asymmetry,
        learning_rate=args.learning_rate,
        contrastive_weight=args.contrastive_weight,
        pretrained=None if start is None else str(start),
    )
    trainer = _trainer(args, args.epochs, recipe)
    trainer.fit(model, data)
    seconds = time.perf_counter() - started
    checkpoint = work / f"{recipe}.ckpt"
    trainer.save_checkpoint(checkpoint, weights_only=True)
    metrics = trainer.callback_metrics
    return {
        "checkpoint": checkpoint,
        "seconds": round(seconds, 1),
        "train_acc": round(float(metrics.get("train_acc", torch.tensor(-1.0))), 4),
        "val_acc": round(float(metrics.get("val_acc", torch.tensor(-1.0))), 4),
        "val_images": len(data.val_dataset or []),
    }


def evaluate(args: argparse.Namespace, checkpoint: Path, heldout, out: Path) -> dict:
    """Held-out accuracy and pointing game per layer through the analyzer."""
    started = time.perf_counter()
    analyzer = ThermalInterpretabilityAnalyzer(
        model_path=checkpoint,
        use_asymmetry_analysis=args.mode == "asymmetry",
        output_dir=out,
        image_size=args.image_size,
        batch_size=32,
        device="cpu",
        save_figures=False,
        overwrite=True,
        mask_dir=heldout.mask_dir,
        metrics=["localization"],
        metric_options=MetricOptions(tolerance=TOLERANCE_AT_128 * args.image_size / 128),
        fuse=True,
        log_to_tensorboard=False,
    )
    records = analyzer.batch_analyze(heldout.image_dir, "*/*.png")
    ok = [record for record in records if record["status"] == "ok"]
    correct = sum(record["predicted_label"] == record["true_label"] for record in ok)
    layers = list(ok[0]["gradcam_results"]) if ok else []
    pointing = {}
    for layer in layers:
        summary = localization_summary(ok, layer, "icas")
        if summary.get("images"):
            pointing[layer] = round(float(summary["pointing_game"]), 4)
    conv_layers = {k: v for k, v in pointing.items() if k != FUSED}
    best = max(conv_layers, key=conv_layers.get) if conv_layers else None
    return {
        "heldout_accuracy": round(correct / max(len(ok), 1), 4),
        "heldout_images": len(ok),
        "pointing_game": pointing,
        "best_layer": best,
        "best_layer_pointing_game": conv_layers.get(best) if best else None,
        "eval_seconds": round(time.perf_counter() - started, 1),
    }


def run(args: argparse.Namespace, work: Path) -> dict[str, object]:
    torch.set_num_threads(args.threads)
    sets = {}
    for name, count, seed in (("train", args.n, args.seed), ("heldout", args.heldout, 1000)):
        sets[name] = make_realistic_dataset(
            work / name,
            n=count,
            size=args.size,
            seed=args.seed + seed,
            images_per_subject=args.per_subject,
            lesion_strength=args.lesion_strength,
        )
    results: dict[str, object] = {}
    for recipe in args.recipes:
        L.seed_everything(args.seed, verbose=False)
        trained = train(args, recipe, sets["train"].image_dir, work)
        checkpoint = trained.pop("checkpoint")
        trained.update(evaluate(args, checkpoint, sets["heldout"], work / f"analysis_{recipe}"))
        results[recipe] = trained
        print(f"{recipe}: {json.dumps(trained)}", file=sys.stderr, flush=True)
    return {
        "recipes": results,
        "settings": {
            "train_images": args.n,
            "heldout_images": args.heldout,
            "images_per_subject": args.per_subject,
            "image_size": args.image_size,
            "mode": args.mode,
            "epochs": args.epochs,
            "pretrain_epochs": args.pretrain_epochs,
            "lesion_strength": args.lesion_strength,
            "threads": args.threads,
        },
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.getLogger("lightning").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*transfer_batch_to_device.*")
    if args.out is not None:
        result = run(args, Path(args.out))
    else:
        with tempfile.TemporaryDirectory(prefix="bench_learning_") as folder:
            result = run(args, Path(folder))
    default = result["recipes"].get("default")
    passed = bool(
        default
        and default["heldout_accuracy"] >= TARGET_ACCURACY
        and (default["best_layer_pointing_game"] or 0.0) >= TARGET_POINTING
        and default["seconds"] <= TIME_LIMIT_S
    )
    verdict = "PASS" if passed else ("FAIL" if default else "not run")
    print(
        f"default recipe: held-out accuracy >= {TARGET_ACCURACY}, best-layer pointing game >= "
        f"{TARGET_POINTING}, <= {TIME_LIMIT_S:.0f} s: {verdict}",
        file=sys.stderr,
    )
    print(json.dumps(result))
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
