"""The plain analysis loop: images -> engine -> writer, with resume and progress."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from thermal_explain.data.dataset import ThermalImageDataset, collate
from thermal_explain.data.files import label_index
from thermal_explain.output import ResultWriter
from thermal_explain.output.summary_plots import write_summary_plots
from thermal_explain.pipeline.explainer import Explainer
from thermal_explain.pipeline.progress import Progress


@dataclass
class RunSummary:
    """What an analysis run did: records of every image it covers and timing."""

    records: list[dict]
    analyzed: int
    skipped: int
    seconds: float

    @property
    def failed(self) -> int:
        return sum(1 for record in self.records if record.get("status") != "ok")


def run_analysis(
    paths: Sequence[Path],
    *,
    explainer: Explainer,
    writer: ResultWriter,
    image_root: Path | None,
    image_size: int,
    mean: Sequence[float],
    std: Sequence[float],
    device: torch.device,
    batch_size: int = 16,
    num_workers: int = 0,
    quiet: bool = False,
    tensorboard: Any = None,
) -> RunSummary:
    """Explain ``paths`` batch by batch, skipping images the writer already recorded.

    Each finished batch is handed to the writer at once (its journal makes it durable), so a
    run killed at any moment loses at most the batch in flight. The summary plots are drawn
    from every record once the writer has finished.
    """
    started = time.perf_counter()
    done = writer.done_paths()
    todo = [path for path in paths if str(path) not in done]
    labels = [
        label_index(path, image_root, explainer.class_names) if image_root else -1 for path in todo
    ]
    dataset = ThermalImageDataset(
        todo,
        labels,
        image_size=image_size,
        mean=mean,
        std=std,
        use_asymmetry=explainer.asymmetry,
    )
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=collate,
        persistent_workers=False,
    )
    with Progress(total=len(todo), disable=quiet, unit="img") as progress:
        for batch in loader:
            explained = explainer(batch.to(device))
            writer.submit(explained.items)
            writer.record_failures(explained.failed)
            progress.update(len(batch) + len(batch.failed))
    records = writer.close()
    write_summary_plots(
        writer.output_dir, records, explainer.class_names, explainer.layers, tensorboard
    )
    wanted = {str(path) for path in paths}
    covered = [record for record in records if record["image_path"] in wanted]
    return RunSummary(covered, len(todo), len(paths) - len(todo), time.perf_counter() - started)
