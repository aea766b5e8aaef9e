"""What ``GradCAMCallback`` costs a training run, relative to an epoch.

A user's own LightningModule (a torchvision ResNet-18, tuple batches) trains on 400
random 128-px images (batch 32) and validates on 100, for ``--epochs`` epochs, without
and with the callback (``every_n_epochs=1``, 8 probes, 4 layers, panels and scalars to
TensorBoard). Rounds alternate the two runs. Three figures:

- ``overhead``: for each epoch after the first (probes chosen, layers found) of the runs
  with the callback, the seconds spent inside its hooks over the rest of that epoch
  (training and validation), median; target ``<= 0.05``. Both parts come from the same
  epoch, so a shared machine's drifting load hardly moves the ratio;
- ``overhead_vs_plain``: the same hook seconds over the median epoch without the callback;
- ``paired_overhead``: the with/without wall-time ratio of whole runs, minus one
  (noisiest; it includes the first epoch's one-time work, reported alone as
  ``first_epoch_callback_s``).

The last line is JSON. Usage::

    python benchmarks/bench_callback.py --rounds 3 --threads 2 --epochs 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torchvision.models import resnet18

from thermal_explain import GradCAMCallback


class Classifier(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = resnet18(weights=None, num_classes=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.log("val_loss", nn.functional.cross_entropy(self(x), y))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.parameters(), lr=1e-3)


class TimedCallback(GradCAMCallback):
    """The callback, with the seconds spent in each validation epoch's hooks recorded."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seconds: list[float] = []

    def _timed(self, hook: str, *args: Any, **kwargs: Any) -> None:
        started = time.perf_counter()
        getattr(super(), hook)(*args, **kwargs)
        if hook == "on_validation_epoch_start":
            self.seconds.append(0.0)
        if self.seconds:
            self.seconds[-1] += time.perf_counter() - started

    def on_validation_epoch_start(self, *args: Any) -> None:
        self._timed("on_validation_epoch_start", *args)

    def on_validation_batch_end(self, *args: Any, **kwargs: Any) -> None:
        self._timed("on_validation_batch_end", *args, **kwargs)

    def on_validation_epoch_end(self, *args: Any) -> None:
        self._timed("on_validation_epoch_end", *args)


class EpochTimer(L.Callback):
    """Wall seconds of every epoch, training and validation together."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self._start = 0.0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self.seconds.append(time.perf_counter() - self._start)


def run(
    workdir: Path, epochs: int, explain: bool, data: tuple[DataLoader, DataLoader]
) -> tuple[float, list[float], list[float]]:
    L.seed_everything(0, verbose=False)
    timer = EpochTimer()
    callbacks: list[L.Callback] = []
    gradcam = None
    if explain:
        gradcam = TimedCallback(num_probe_samples=8, every_n_epochs=1, output_dir=str(workdir))
        callbacks.append(gradcam)
    callbacks.append(timer)  # after the callback: an epoch ends once its probes are logged
    trainer = L.Trainer(
        accelerator="cpu",
        max_epochs=epochs,
        logger=TensorBoardLogger(workdir, name="tb"),
        callbacks=callbacks,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        num_sanity_val_steps=0,
    )
    started = time.perf_counter()
    trainer.fit(Classifier(), *data)
    return time.perf_counter() - started, timer.seconds, gradcam.seconds if gradcam else []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size", type=int, default=128)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(0)
    train = TensorDataset(
        torch.randn(400, 3, args.size, args.size, generator=generator),
        torch.randint(0, 2, (400,), generator=generator),
    )
    val = TensorDataset(
        torch.randn(100, 3, args.size, args.size, generator=generator),
        torch.randint(0, 2, (100,), generator=generator),
    )
    data = (DataLoader(train, batch_size=32, shuffle=True), DataLoader(val, batch_size=32))
    plain_runs, explained_runs, plain_epochs, hooks, first, ratios = [], [], [], [], [], []
    with tempfile.TemporaryDirectory() as folder:
        for round_index in range(args.rounds):
            order = (False, True) if round_index % 2 == 0 else (True, False)
            for explain in order:
                workdir = Path(folder) / f"{round_index}_{explain}"
                total, epochs, seconds = run(workdir, args.epochs, explain, data)
                if explain:
                    explained_runs.append(total)
                    first.append(seconds[0])
                    hooks += seconds[1:]
                    ratios += [
                        hook / (epoch - hook)
                        for hook, epoch in zip(seconds[1:], epochs[1:], strict=True)
                    ]
                else:
                    plain_runs.append(total)
                    plain_epochs += epochs
                print(f"round {round_index} callback={explain}: {total:.1f} s, epochs {epochs}")
    epoch_s = statistics.median(plain_epochs)
    callback_s = statistics.median(hooks) if hooks else float("nan")
    paired = [b / a - 1 for a, b in zip(plain_runs, explained_runs, strict=True)]
    report = {
        "epoch_s": round(epoch_s, 2),
        "callback_s_per_epoch": round(callback_s, 3),
        "first_epoch_callback_s": round(statistics.median(first), 3),
        "overhead": round(statistics.median(ratios), 4) if ratios else None,
        "overhead_vs_plain": round(callback_s / epoch_s, 4),
        "paired_overhead": round(statistics.median(paired), 4),
        "rounds": args.rounds,
        "epochs": args.epochs,
        "threads": args.threads,
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
