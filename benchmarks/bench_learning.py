"""Learning benchmark: is the synthetic ICAS task learnable in two CPU minutes?

Writes 400 synthetic 128-px thermal faces (:mod:`thermal_explain.data.synthetic`), trains
ThermalClassifier (ResNet-18, random init) on 80 % of them with a Lightning Trainer,
and measures validation accuracy with the model in eval mode (BatchNorm running
statistics, as at inference). Validation runs once, after the last epoch, so the
model's own hook re-estimates the BatchNorm statistics for the final weights first
("precise BN"), exactly as in any fit with validation.

The last line printed is JSON ``{"val_acc_eval_mode": ..., "seconds": ..., "epochs": ...}``;
``seconds`` is the wall time of training, that validation and the eval-mode
measurement (not the data generation). Exit status 0 when the target is met.

Run: ``PYTHONPATH=. python benchmarks/bench_learning.py [--mode rgb] [--epochs 10]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
import warnings
from collections.abc import Iterable
from pathlib import Path

import lightning as L
import torch
from torch import nn

from thermal_explain.data.datamodule import ThermalDataModule
from thermal_explain.data.synthetic import make_synthetic_dataset
from thermal_explain.modeling.classifier import ThermalClassifier
from thermal_explain.types import Batch

TARGET_ACCURACY = 0.95
TIME_LIMIT_S = 120.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=400, help="synthetic faces")
    parser.add_argument("--size", type=int, default=128, help="face image side in pixels")
    parser.add_argument("--image_size", type=int, default=128, help="model input side")
    parser.add_argument(
        "--mode",
        choices=("asymmetry", "rgb"),
        default="asymmetry",
        help="6-channel left/mirrored-right input (default) or plain RGB",
    )
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--learning_rate", type=float, default=1e-3)
    parser.add_argument("--contrastive_weight", type=float, default=0.0)
    parser.add_argument("--no_flip", action="store_true", help="no random left-right flips")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="data folder (default: a temp folder)")
    parser.add_argument("--verbose", action="store_true", help="print each epoch's progress")
    return parser.parse_args(argv)


class EpochReport(L.Callback):
    """Print each epoch's training loss/accuracy and the model's logged val_acc."""

    def __init__(self) -> None:
        self.started = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        metrics = {key: float(value) for key, value in trainer.callback_metrics.items()}
        print(
            f"epoch {trainer.current_epoch}: train_loss {metrics.get('train_loss_epoch', -1):.3f} "
            f"train_acc {metrics.get('train_acc', -1):.3f} val_acc {metrics.get('val_acc', -1):.3f}"
            f" at {time.perf_counter() - self.started:.0f} s",
            file=sys.stderr,
            flush=True,
        )


@torch.inference_mode()
def eval_mode_accuracy(model: nn.Module, batches: Iterable[Batch]) -> tuple[float, int]:
    """``(accuracy, images)`` with ``model.eval()`` (running BatchNorm statistics)."""
    model.eval()
    correct = total = 0
    for batch in batches:
        if len(batch):
            predictions = model(batch.images).argmax(dim=1)
            correct += int((predictions == batch.labels).sum())
            total += len(batch)
    return correct / max(total, 1), total


def run(args: argparse.Namespace, data_dir: Path) -> dict[str, object]:
    torch.set_num_threads(args.threads)
    L.seed_everything(args.seed, verbose=False)
    started = time.perf_counter()
    synthetic = make_synthetic_dataset(data_dir, n=args.n, size=args.size, seed=args.seed)
    generated = time.perf_counter() - started
    asymmetry = args.mode == "asymmetry"
    datamodule = ThermalDataModule(
        image_dir=str(synthetic.image_dir),
        pattern="*.png",
        image_size=args.image_size,
        use_asymmetry=asymmetry,
        batch_size=args.batch_size,
        val_fraction=0.2,
        seed=args.seed,
        random_flip=not args.no_flip,
    )
    model = ThermalClassifier(
        backbone="resnet18",
        use_asymmetry=asymmetry,
        learning_rate=args.learning_rate,
        contrastive_weight=args.contrastive_weight,
    )
    trainer = L.Trainer(
        max_epochs=args.epochs,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        check_val_every_n_epoch=1 if args.verbose else args.epochs,
        callbacks=[EpochReport()] if args.verbose else [],
    )
    started, cpu_started = time.perf_counter(), time.process_time()
    trainer.fit(model, datamodule)
    trained = time.perf_counter() - started
    accuracy, images = eval_mode_accuracy(model, datamodule.val_dataloader())
    seconds = time.perf_counter() - started
    logged = trainer.callback_metrics.get("val_acc")
    return {
        "val_acc_eval_mode": round(accuracy, 4),
        "seconds": round(seconds, 1),
        "epochs": args.epochs,
        "val_acc_logged": None if logged is None else round(float(logged), 4),
        "val_images": images,
        "mode": args.mode,
        "image_size": args.image_size,
        "train_seconds": round(trained, 1),
        "cpu_seconds": round(time.process_time() - cpu_started, 1),
        "generate_seconds": round(generated, 1),
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
    passed = result["val_acc_eval_mode"] >= TARGET_ACCURACY and result["seconds"] <= TIME_LIMIT_S
    verdict = "PASS" if passed else "FAIL"
    print(f"target >= {TARGET_ACCURACY:.0%} in <= {TIME_LIMIT_S:.0f} s: {verdict}", file=sys.stderr)
    print(f"details: {json.dumps(result)}", file=sys.stderr)
    print(json.dumps({key: result[key] for key in ("val_acc_eval_mode", "seconds", "epochs")}))
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
