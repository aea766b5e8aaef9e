"""Compare where two classifiers look: their CAMs on the same images, layer by layer.

Both models are explained on the same images, each with its own class names and input mode
(RGB or asymmetry), each for its own predicted class. Per image and layer pair the two
full-width display maps are compared by Spearman rank correlation and by the IoU of their
hottest ``top_fraction`` of pixels (:mod:`thermal_explain.metrics.similarity`). The run
writes side-by-side panels, ``comparison_results.json``, ``comparison_report.txt`` and
``comparison_report.html``.

A comparison run shares the explanation runs' parts: the dataset and loader, the engine's
upsampling and flat-map rule, the output-folder checks, the journal (a killed run resumes
where it stopped; a record is journaled once its panels are written) and atomic writes.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from thermal_explain.cam import flat_maps
from thermal_explain.checks import check_int, check_number
from thermal_explain.data.dataset import ThermalImageDataset, batch_loader
from thermal_explain.errors import ThermalExplainError
from thermal_explain.metrics.similarity import compare_maps, to_common_grid
from thermal_explain.modeling.classifier import ThermalClassifier
from thermal_explain.output import journal
from thermal_explain.output.atomic import atomic_write_text
from thermal_explain.output.colormaps import DEFAULT_COLORMAP, get_colormap
from thermal_explain.output.comparison_report import build_report
from thermal_explain.output.folder import clear_outputs, make_folder, prepare_output_dir
from thermal_explain.output.html import COMPARISON_ASSETS_DIR, COMPARISON_HTML
from thermal_explain.output.html.comparison_report import write_comparison_report
from thermal_explain.output.lock import FolderLock
from thermal_explain.output.naming import NameResolver, path_key
from thermal_explain.output.panels import write_comparison_panels
from thermal_explain.output.records import STATUS_OK, merge_records
from thermal_explain.pipeline.compared_models import (
    ComparedModel,
    compared_model,
    load_model,
    model_labels,
    model_source,
    same_file,
)
from thermal_explain.pipeline.comparison_records import (
    PANEL_DIR,
    PANEL_SUFFIX,
    BatchComparison,
    failure_entries,
    finished_entries,
    image_record,
)
from thermal_explain.pipeline.device import resolve_device
from thermal_explain.pipeline.layer_pairs import LayerPair, pair_layers
from thermal_explain.pipeline.manifest import (
    MANIFEST_FILE,
    check_and_write,
    model_facts,
    new_manifest,
)
from thermal_explain.pipeline.progress import Progress
from thermal_explain.types import Batch

__all__ = [
    "DEFAULT_OUTPUT_DIR",
    "PANEL_DIR",
    "REPORT_FILE",
    "RESULTS_FILE",
    "BatchComparison",
    "ComparisonRun",
    "LayerPair",
    "ModelComparison",
    "compare_maps",
    "pair_layers",
    "to_common_grid",
]

log = logging.getLogger(__name__)

DEFAULT_OUTPUT_DIR = "model_comparison"
"""The same default as ``thermal-explain compare --output_dir``."""
RESULTS_FILE = "comparison_results.json"
REPORT_FILE = "comparison_report.txt"


@dataclass
class ComparisonRun:
    """What a comparison run produced.

    Attributes:
        records: one record per given image, ordered by path.
        output_dir: the absolute output folder.
        seconds: wall time of the run.
        compared: images compared by this call (the others were already recorded).
    """

    records: list[dict[str, Any]]
    output_dir: Path
    seconds: float
    compared: int = 0

    @property
    def failed(self) -> int:
        """Images recorded with ``"status": "error"``."""
        return sum(1 for record in self.records if record["status"] != "ok")

    @property
    def results_path(self) -> Path:
        return self.output_dir / RESULTS_FILE

    @property
    def report_path(self) -> Path:
        return self.output_dir / REPORT_FILE


class ModelComparison:
    """Explain the same images with two classifiers and measure how alike their maps are.

    Each model is explained for its own predicted class, with its own class names and its
    own input mode (an RGB model and an asymmetry model each get their own preprocessing
    of the same file); the comparison uses the full-width display maps.

    Args:
        model_a: checkpoint path (any supported format) or a loaded ``ThermalClassifier``.
        model_b: the other model.
        layers: dotted names present in both models; ``None`` pairs each model's default
            layers by ResNet stage (see :func:`pair_layers`).
        method: CAM method (``gradcam``, ``gradcam++``, ``xgradcam``, ``layercam``,
            ``hirescam``).
        image_size: side of the square model input for both models; ``None``: each the
            size its checkpoint was trained at (224 when it does not say).
        top_fraction: share of the hottest pixels whose overlap is measured, in ``(0, 1]``.
        device: ``"cuda"``, ``"cpu"``, ... or ``None`` (a GPU when there is one).
        allow_pickle: let checkpoints hold pickled objects (trusted files only).

    Example:
        >>> comparison = ModelComparison("run1/best.pth", "run2/best.pth")
        >>> run = comparison.run(find_images("faces/", "*/*.jpg"), "model_comparison")
        >>> run.records[0]["layers"]["backbone.layer4.1.conv2"]["spearman"]

    Raises:
        ConfigurationError: an argument is invalid (the message names it).
        CheckpointError: a checkpoint cannot be loaded (the message names which).
    """

    def __init__(
        self,
        model_a: ThermalClassifier | str | Path,
        model_b: ThermalClassifier | str | Path,
        *,
        layers: Sequence[str] | None = None,
        method: str = "gradcam",
        image_size: int | None = None,
        top_fraction: float = 0.2,
        device: str | torch.device | None = None,
        allow_pickle: bool = False,
    ) -> None:
        self.top_fraction = check_number("top_fraction", top_fraction, 0.0, 1.0, low_open=True)
        self.device = resolve_device(device)
        classifier_a = load_model(model_a, "--model_a", allow_pickle)
        classifier_b = load_model(model_b, "--model_b", allow_pickle)
        self.pairs = pair_layers(classifier_a.encoder, classifier_b.encoder, layers)
        label_a, label_b = model_labels(model_a, model_b)
        self.model_a = compared_model(
            classifier_a, label_a, model_source(model_a), [p.layer_a for p in self.pairs], method,
            image_size,
        )  # fmt: skip
        self.model_b = compared_model(
            classifier_b, label_b, model_source(model_b), [p.layer_b for p in self.pairs], method,
            image_size,
        )  # fmt: skip
        for model in (self.model_a, self.model_b):
            model.classifier.to(self.device)  # the engine runs it in eval mode
        size_a = self.model_a.preprocessing.image_size
        size_b = self.model_b.preprocessing.image_size
        self.image_size: int | str = size_a if size_a == size_b else f"A {size_a}, B {size_b}"
        self.method = self.model_a.engine.method.name
        self.same_file = same_file(model_a, model_b)

    @property
    def layer_names(self) -> list[str]:
        """The compared pairs' names, shallowest first."""
        return [pair.name for pair in self.pairs]

    def compare_batch(
        self,
        images_a: torch.Tensor,
        images_b: torch.Tensor,
        original_sizes: Sequence[tuple[int, int]] | None = None,
    ) -> BatchComparison:
        """Explain one batch with both models and compare every layer pair.

        Args:
            images_a: ``(N, C_a, S, W_a)`` model A input on ``self.device``.
            images_b: ``(N, C_b, S, W_b)`` model B input (the same images).
            original_sizes: ``N`` ``(height, width)`` of the files.

        Returns:
            A :class:`BatchComparison` on the CPU.
        """
        result_a = self.model_a.engine(images_a, original_sizes=original_sizes)
        result_b = self.model_b.engine(images_b, original_sizes=original_sizes)
        spearman, top_iou, flat, maps_a, maps_b = {}, {}, {}, {}, {}
        for pair in self.pairs:
            flat_a = flat_maps(result_a.raw_maps[pair.layer_a][:, 0])
            flat_b = flat_maps(result_b.raw_maps[pair.layer_b][:, 0])
            first, second = to_common_grid(
                result_a.display_maps[pair.layer_a][:, 0],
                result_b.display_maps[pair.layer_b][:, 0],
            )
            first = first.masked_fill(flat_a[:, None, None], 0.0)
            second = second.masked_fill(flat_b[:, None, None], 0.0)
            either = flat_a | flat_b
            rho, iou = compare_maps(first, second, self.top_fraction)
            spearman[pair.name] = rho.masked_fill(either, math.nan).cpu()
            top_iou[pair.name] = iou.masked_fill(either, math.nan).cpu()
            flat[pair.name] = either.cpu()
            maps_a[pair.name] = first.cpu()
            maps_b[pair.name] = second.cpu()
        index = torch.arange(images_a.shape[0], device=result_a.predicted.device)
        return BatchComparison(
            predicted_a=result_a.predicted.cpu(),
            confidence_a=result_a.probabilities[index, result_a.predicted].float().cpu(),
            predicted_b=result_b.predicted.cpu(),
            confidence_b=result_b.probabilities[index, result_b.predicted].float().cpu(),
            spearman=spearman,
            top_iou=top_iou,
            flat=flat,
            maps_a=maps_a,
            maps_b=maps_b,
        )

    def agree(self, class_a: int, class_b: int) -> bool:
        """Whether two predictions are the same class (see :meth:`agreement_rule`)."""
        names_a, names_b = self.model_a.class_names, self.model_b.class_names
        if self._by_index():
            return class_a == class_b
        return names_a[class_a] == names_b[class_b]

    def _by_index(self) -> bool:
        names_a, names_b = self.model_a.class_names, self.model_b.class_names
        return set(names_a) != set(names_b) and len(names_a) == len(names_b)

    def agreement_rule(self) -> str:
        """One sentence on how predictions are matched between the models."""
        if self._by_index():
            return (
                "the models name their classes differently, so predictions are matched by "
                "class index"
            )
        return "predictions are matched by class name"

    def run(
        self,
        paths: Sequence[str | Path],
        output_dir: str | Path = DEFAULT_OUTPUT_DIR,
        *,
        batch_size: int = 16,
        colormap: str = DEFAULT_COLORMAP,
        quiet: bool = True,
        overwrite: bool = False,
        num_workers: int = 0,
        html_report: bool = True,
    ) -> ComparisonRun:
        """Compare the models on ``paths``; write panels, the JSON records and the reports.

        ``html_report`` adds ``comparison_report.html`` (a failure to write it is a warning).

        Unreadable images are recorded with ``"status": "error"`` and never stop the run.
        Images already compared into ``output_dir`` are skipped (``overwrite`` starts over).

        Raises:
            ConfigurationError: bad ``batch_size``, ``num_workers`` or ``colormap``.
            ThermalExplainError: ``output_dir`` cannot be written.
        """
        check_int("batch_size", batch_size, 1)
        check_int("num_workers", num_workers, 0)
        lut = get_colormap(colormap)
        started = time.perf_counter()
        root = prepare_output_dir(output_dir)
        with FolderLock(root):
            if overwrite:
                journal.remove_journals(root)
                clear_outputs(
                    root,
                    files=(RESULTS_FILE, REPORT_FILE, MANIFEST_FILE, COMPARISON_HTML),
                    owned={PANEL_DIR: (PANEL_SUFFIX,)},
                    trees=(COMPARISON_ASSETS_DIR,),
                )
            check_and_write(root, self.manifest(colormap), RESULTS_FILE)
            todo = self._compare_into(root, paths, batch_size, num_workers, lut, quiet)
            records = merge_records(entry["record"] for entry in journal.read_all(root))
            _write(root / RESULTS_FILE, json.dumps(records, ensure_ascii=False, indent=2) + "\n")
            _write(root / REPORT_FILE, build_report(records, self))
            if html_report:
                _write_html(root, records, self)
        wanted = {path_key(str(path)) for path in paths}
        covered = [record for record in records if path_key(record["image_path"]) in wanted]
        return ComparisonRun(covered, root, time.perf_counter() - started, len(todo))

    def manifest(self, colormap: str) -> dict[str, Any]:
        """What makes this comparison's results (``run_manifest.json``)."""
        models = {}
        for key, model in (("a", self.model_a), ("b", self.model_b)):
            encoder = model.classifier.encoder
            models[key] = model_facts(
                encoder.state_dict(), model.class_names, model.source or None, encoder.backbone_name
            )
        return new_manifest(
            "comparison",
            models=models,
            preprocessing={"a": self.model_a.preprocessing.to_dict(),
                           "b": self.model_b.preprocessing.to_dict()},
            method=self.method,
            layers=[[pair.layer_a, pair.layer_b] for pair in self.pairs],
            top_fraction=self.top_fraction,
            output={"colormap": colormap},
        )  # fmt: skip

    def _compare_into(
        self,
        root: Path,
        paths: Sequence[str | Path],
        batch_size: int,
        num_workers: int,
        lut: np.ndarray,
        quiet: bool,
    ) -> list[Path]:
        """Compare the images of ``paths`` not yet recorded in ``root``; returns them."""
        make_folder(root, PANEL_DIR)
        previous = journal.read_all(root)
        done = {path_key(e["record"]["image_path"]) for e in previous if _ok(e["record"])}
        claims = {e["record"]["image_path"]: e["stem"] for e in previous if e.get("stem")}
        names = NameResolver([str(path) for path in paths], claims)
        todo = [Path(path) for path in paths if path_key(str(path)) not in done]
        writer = journal.JournalWriter(journal.journal_path(root, 0))
        try:
            with (
                ThreadPoolExecutor(max_workers=2) as pool,
                Progress(len(todo), disable=quiet, description="comparing") as progress,
            ):
                waiting: list[tuple[Future[None], dict[str, Any], str]] = []
                for batch_a, batch_b in self._batches(todo, batch_size, num_workers):
                    writer.append(failure_entries(batch_a))
                    queued = self._submit(batch_a, batch_b, names, root, lut, pool)
                    writer.append(finished_entries(waiting))
                    waiting = queued
                    progress.update(len(batch_a) + len(batch_a.failed))
                writer.append(finished_entries(waiting))
        finally:
            writer.close()
        return todo

    def _batches(
        self, paths: list[Path], batch_size: int, num_workers: int
    ) -> Iterator[tuple[Batch, Batch]]:
        """Each model's input batch for the same images (one loader when they agree)."""
        loaders = [
            batch_loader(_dataset(paths, model), batch_size, num_workers)
            for model in (self.model_a, self.model_b)
            if model is self.model_a or model.preprocessing != self.model_a.preprocessing
        ]
        if len(loaders) == 1:
            yield from ((batch, batch) for batch in loaders[0])
        else:
            yield from zip(*loaders, strict=True)

    def _submit(
        self,
        batch_a: Batch,
        batch_b: Batch,
        names: NameResolver,
        root: Path,
        lut: np.ndarray,
        pool: ThreadPoolExecutor,
    ) -> list[tuple[Future[None], dict[str, Any], str]]:
        """Compare a batch and queue its panels; returns ``(panels, record, stem)`` per image."""
        if not len(batch_a):
            return []
        images_a = batch_a.images.to(self.device)
        images_b = images_a if batch_b is batch_a else batch_b.images.to(self.device)
        result = self.compare_batch(images_a, images_b, batch_a.original_sizes)
        queued = []
        models = (self.model_a, self.model_b)
        for index, path in enumerate(batch_a.paths):
            stem = names.stem_for(path)
            agree = self.agree(int(result.predicted_a[index]), int(result.predicted_b[index]))
            record, jobs = image_record(
                models, self.pairs, self.top_fraction, agree, path, stem, index, result, root
            )
            queued.append((pool.submit(write_comparison_panels, path, jobs, lut), record, stem))
        return queued


def _dataset(paths: list[Path], model: ComparedModel) -> ThermalImageDataset:
    return ThermalImageDataset.for_preprocessing(paths, None, model.preprocessing)


def _ok(record: dict[str, Any]) -> bool:
    return record.get("status") == STATUS_OK and isinstance(record.get("image_path"), str)


def _write_html(root: Path, records: list[dict[str, Any]], comparison: ModelComparison) -> None:
    """``comparison_report.html``; a failure costs the page, never the results."""
    try:
        write_comparison_report(root, records, comparison)
    except Exception as error:  # the results are on disk already
        log.warning("%s was not written: %s", COMPARISON_HTML, error)


def _write(path: Path, text: str) -> None:
    try:
        atomic_write_text(path, text)
    except OSError as error:
        raise ThermalExplainError(
            f"cannot write '{path.name}' in --output_dir '{path.parent}' "
            f"({error.strerror or error}); free disk space or choose another --output_dir"
        ) from error
