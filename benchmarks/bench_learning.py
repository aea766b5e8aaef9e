"""Learning benchmark: is the synthetic ICAS task learnable in two CPU minutes?

Trains ThermalClassifier (ResNet-18, random init) with a Lightning Trainer on synthetic
thermal faces from :mod:`thermal_explain.synthetic`, then measures validation accuracy
with the model in eval mode (BatchNorm running statistics, as at inference). The last
line printed is JSON: ``{"val_acc_eval_mode": ..., "seconds": ..., "epochs": ...}``;
``seconds`` is the wall time of training plus the eval-mode measurement.

Run: ``PYTHONPATH=. python benchmarks/bench_learning.py [--epochs 8] [--threads 2]``.
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

from thermal_explain.data import ThermalDataModule
from thermal_explain.model import ThermalClassifier
from thermal_explain.synthetic import make_synthetic_dataset

TARGET_ACCURACY = 0.95
TIME_LIMIT_S = 120.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=400, help="synthetic faces")
    parser.add_argument("--size", type=int, default=128, help="image side in pixels")
    parser.add_argument("--image_size", type=int, default=128, help="model input side")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--learning_rate", type=float, default=2e-3)
    parser.add_argument("--contrastive_weight", type=float, default=0.5)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="data folder (default: a temp folder)")
    return parser.parse_args(argv)


@torch.inference_mode()
def eval_mode_accuracy(model: ThermalClassifier, datamodule: ThermalDataModule) -> float:
    """Accuracy on the validation split with ``model.eval()`` (running BN statistics)."""
    model.eval()
    correct = total = 0
    for batch in datamodule.val_dataloader():
        predictions = model(batch.images).argmax(dim=1)
        correct += int((predictions == batch.labels).sum())
        total += len(batch)
    return correct / max(total, 1)


def run(args: argparse.Namespace, data_dir: Path) -> dict[str, float | int]:
    torch.set_num_threads(args.threads)
    L.seed_everything(args.seed, verbose=False)
    started = time.perf_counter()
    synthetic = make_synthetic_dataset(data_dir, n=args.n, size=args.size, seed=args.seed)
    generated = time.perf_counter() - started
    datamodule = ThermalDataModule(
        image_dir=str(synthetic.image_dir),
        pattern="*.png",
        image_size=args.image_size,
        batch_size=args.batch_size,
        val_fraction=0.2,
        seed=args.seed,
    )
    model = ThermalClassifier(
        backbone="resnet18",
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
        limit_val_batches=0,
    )
    started, cpu_started = time.perf_counter(), time.process_time()
    trainer.fit(model, datamodule)
    accuracy = eval_mode_accuracy(model, datamodule)
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    return {
        "val_acc_eval_mode": round(accuracy, 4),
        "seconds": round(seconds, 1),
        "epochs": args.epochs,
        "val_images": len(datamodule.val_dataset or []),
        "generate_seconds": round(generated, 1),
        "cpu_seconds": round(cpu_seconds, 1),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.getLogger("lightning").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    if args.out is not None:
        result = run(args, Path(args.out))
    else:
        with tempfile.TemporaryDirectory(prefix="bench_learning_") as folder:
            result = run(args, Path(folder))
    passed = result["val_acc_eval_mode"] >= TARGET_ACCURACY and result["seconds"] <= TIME_LIMIT_S
    print(
        f"target: >= {TARGET_ACCURACY:.0%} in <= {TIME_LIMIT_S:.0f} s -> "
        f"{'PASS' if passed else 'FAIL'}; details: {json.dumps(result)}",
        file=sys.stderr,
    )
    print(json.dumps({k: result[k] for k in ("val_acc_eval_mode", "seconds", "epochs")}))
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
