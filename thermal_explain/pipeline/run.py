"""The steps every explanation run shares, from its output folder to its report.

``analyze``, the Python API and ``predict`` (through ``GradCAMCallback``, on every DDP
rank) differ only in how explained batches reach :meth:`ExplanationRun.write`::

    run = ExplanationRun(output_dir, class_names=names, layers=explainer.layers)
    with run:
        for batch in loader_over(run.pending(paths)):
            run.write(explainer(batch))
        records = run.finish()

The run prepares the folder (and clears it on ``overwrite``), opens the TensorBoard run and
the :class:`~thermal_explain.output.writer.ResultWriter`, tells which images are still to
do (resume), and at the end merges the journals into ``analysis_results.json``, the report,
the summary plots and ``report.html``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import torch

from thermal_explain.data.dataset import ThermalImageDataset, batch_loader
from thermal_explain.data.files import label_index
from thermal_explain.data.prefetch import read_ahead_pays
from thermal_explain.data.preprocessing import Preprocessing
from thermal_explain.errors import ThermalExplainError
from thermal_explain.output.folder import clear_outputs, prepare_output_dir
from thermal_explain.output.html import ASSETS_DIR, ORIGINAL_SIDE, REPORT_HTML, ReportSettings
from thermal_explain.output.html.analysis_report import refresh_report
from thermal_explain.output.lock import FolderLock
from thermal_explain.output.naming import RESULTS_FILE
from thermal_explain.output.results import finalize_results, read_results
from thermal_explain.output.summary_plots import PLOTS_DIR, write_summary_plots
from thermal_explain.output.writer import ResultWriter
from thermal_explain.pipeline.explainer import ExplainedBatch, Explainer
from thermal_explain.pipeline.manifest import MANIFEST_FILE, check_and_write
from thermal_explain.pipeline.progress import Progress

TENSORBOARD_DIR = "tensorboard"

Barrier = Callable[[str], None]


@dataclass(frozen=True)
class OutputOptions:
    """How the writer draws: colormap, overlay weights, whether to draw the figures, and how
    temperature inputs are read (``temperature_scale``) and drawn (``temperature_range``)."""

    colormap: str = "jet"
    original_alpha: float = 0.3
    heatmap_alpha: float = 0.7
    save_figures: bool = True
    temperature_scale: str | None = None
    temperature_range: tuple[float, float] | None = None


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


class ExplanationRun:
    """One run's output folder, TensorBoard run and writer, from start to finished report.

    Args:
        output_dir: the run's folder (created when missing).
        class_names: class names by index (for the report and the plots).
        layers: the names of the maps each image gets (for the report's order).
        output: how the writer draws.
        overwrite: clear this tool's earlier outputs (and TensorBoard run) first.
        all_paths: every input path of the run, so same-stem inputs get stable names.
        log_to_tensorboard: log overlays and summary plots under ``output_dir/tensorboard``.
        manifest: what makes the results (:mod:`~thermal_explain.pipeline.manifest`);
            checked against the folder's before resuming, then written. ``None``: no check.
        rank: this process's global rank (DDP); rank zero locks the folder, clears,
            checks the manifest, merges and reports.
        barrier: synchronizes the ranks (``trainer.strategy.barrier``); ``None`` on one
            process.
        broadcast: sends rank zero's object to every rank (``trainer.strategy.broadcast``),
            so that all ranks stop on the same one-line error.
        report: how to draw ``report.html`` (rank zero, at the end); ``None`` for none.
        writer_workers: the writer's threads or processes; ``None`` sizes the pool for a
            CPU engine (:func:`~thermal_explain.output.pool.default_workers`).
        writer_drain_workers: the writer's threads for the images still queued at the
            end (:func:`~thermal_explain.output.pool.drain_workers`); ``None``: as many as
            ``writer_workers``.
        writer_takes_turns: each batch's images are rendered before the next batch is
            explained, by the caller and the writer's threads, instead of beside it (for
            a CPU engine on every core, :func:`~thermal_explain.output.pool.engine_fills_cores`).

    Raises:
        ThermalExplainError: ``output_dir`` cannot be used, is in use by another run, or
            holds results of another run.
        ConfigurationError: a bad output option (colormap, alpha).
    """

    def __init__(
        self,
        output_dir: str | Path,
        *,
        class_names: Sequence[str],
        layers: Sequence[str],
        output: OutputOptions | None = None,
        overwrite: bool = False,
        all_paths: Sequence[str] | None = None,
        log_to_tensorboard: bool = True,
        manifest: dict[str, Any] | None = None,
        rank: int = 0,
        barrier: Barrier | None = None,
        broadcast: Callable[[Any], Any] | None = None,
        report: ReportSettings | None = None,
        writer_workers: int | None = None,
        writer_drain_workers: int | None = None,
        writer_takes_turns: bool = False,
    ) -> None:
        self.output_dir = prepare_output_dir(output_dir)
        self.report = report
        self.class_names = list(class_names)
        self.layers = list(layers)
        self.rank = rank
        self._barrier = barrier or (lambda name: None)
        self._lock = FolderLock(self.output_dir)
        problem = self._claim_folder(overwrite, manifest) if rank == 0 else None
        problem = broadcast(problem) if broadcast is not None else problem
        if problem is not None:
            self._lock.release()
            raise ThermalExplainError(problem)
        self._barrier("thermal_explain_cleared")
        self.tensorboard = _summary_writer(self.output_dir, rank) if log_to_tensorboard else None
        try:
            self.writer = ResultWriter(
                self.output_dir,
                class_names=self.class_names,
                layers=self.layers,
                rank=rank,
                tensorboard=self.tensorboard,
                all_paths=all_paths,
                workers=writer_workers,
                drain_workers=writer_drain_workers,
                take_turns=writer_takes_turns,
                report_pictures=report is not None,
                **asdict(output or OutputOptions()),
            )
        except BaseException:
            self._close_tensorboard()
            self._lock.release()
            raise
        # Every rank reads the journals (and so shards the same remaining images) before
        # any rank appends to its own.
        self._barrier("thermal_explain_resume")
        self._finished = False

    def _claim_folder(self, overwrite: bool, manifest: dict[str, Any] | None) -> str | None:
        """Lock the folder, clear it on ``overwrite``, check and write the manifest.

        Returns the one-line problem instead of raising, so every rank can raise it.
        """
        try:
            self._lock.acquire()
            if overwrite:
                ResultWriter.clear(self.output_dir)
                clear_outputs(
                    self.output_dir,
                    files=(MANIFEST_FILE, REPORT_HTML),
                    trees=(TENSORBOARD_DIR, PLOTS_DIR, ASSETS_DIR),
                )
            if manifest is not None:
                check_and_write(self.output_dir, manifest, RESULTS_FILE)
        except ThermalExplainError as error:
            return str(error)
        return None

    def pending(self, paths: Sequence[str | Path]) -> list[Path]:
        """``paths`` without the images that already have a successful record."""
        keep = set(self.writer.filter_pending([str(path) for path in paths]))
        return [Path(path) for path in paths if str(path) in keep]

    def write(self, explained: ExplainedBatch, step: int | None = None) -> None:
        """Hand one batch's explained images and failed inputs to the writer."""
        self.writer.submit(explained.items, step)
        self.writer.record_failures(explained.failed)

    def finish(self) -> list[dict[str, Any]]:
        """Drain the writer; on rank zero merge every journal, write the report and plots.

        Returns:
            Every record in ``output_dir`` on rank zero (earlier runs included), else ``[]``.
        """
        self._finished = True
        self.writer.close(finalize=False)
        self._barrier("thermal_explain_written")
        records: list[dict[str, Any]] = []
        if self.rank == 0:
            records = read_results(self.output_dir)
            if records is None:
                records = finalize_results(self.output_dir, self.class_names, self.layers)
                write_summary_plots(
                    self.output_dir, records, self.class_names, self.layers, self.tensorboard
                )
            if self.report is not None:
                refresh_report(self.output_dir, records, self.class_names, self.layers, self.report)
        self._close_tensorboard()
        self._lock.release()
        return records

    def close(self) -> None:
        """Stop without the end-of-run files (after an error): what was written stays."""
        try:
            if not self._finished:
                self._finished = True
                self.writer.close(finalize=False)
        finally:
            self._close_tensorboard()
            self._lock.release()

    def __enter__(self) -> ExplanationRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _close_tensorboard(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()
            self.tensorboard = None


def explain_files(
    run: ExplanationRun,
    explainer: Explainer,
    paths: Sequence[Path],
    *,
    preprocessing: Preprocessing,
    image_root: Path | None,
    device: torch.device,
    batch_size: int = 16,
    num_workers: int = 0,
    quiet: bool = False,
) -> RunSummary:
    """Explain ``paths`` batch by batch into ``run``, skipping images already recorded.

    Each finished batch goes to the writer at once (its journal makes it durable), so a
    run killed at any moment loses at most the batch in flight. Labels come from the
    class folders under ``image_root`` when it is given.
    """
    started = time.perf_counter()
    todo = run.pending(paths)
    names = explainer.class_names
    labels = [label_index(path, image_root, names) if image_root else -1 for path in todo]
    dataset = ThermalImageDataset.for_preprocessing(todo, labels, preprocessing, names)
    dataset.keep_backgrounds = True  # the writer draws overlays over them
    if run.report is not None:  # and the report's pictures from these
        dataset.original_side = ORIGINAL_SIDE
    with Progress(total=len(todo), disable=quiet) as progress:
        ahead = read_ahead_pays(device)
        for batch in batch_loader(dataset, batch_size, num_workers, read_ahead=ahead):
            run.write(explainer(batch.to(device)))
            progress.update(len(batch) + len(batch.failed))
    records = run.finish()
    wanted = {str(path) for path in paths}
    covered = [record for record in records if record["image_path"] in wanted]
    return RunSummary(covered, len(todo), len(paths) - len(todo), time.perf_counter() - started)


def _summary_writer(output_dir: Path, rank: int) -> Any:
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(str(output_dir / TENSORBOARD_DIR), filename_suffix=f".rank{rank}")
