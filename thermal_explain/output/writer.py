"""``ResultWriter``: writes explained images to disk off the compute path.

``submit`` turns each :class:`~thermal_explain.types.ExplainedImage` into a small numpy job
(its maps and, when the batch carried it, its desaturated original, so the file is not
decoded twice) and hands it to a pool of worker threads or processes (sized from the
machine's cores, :func:`default_workers`), which render and write the PNG/NPY outputs.
At most ``queue_size`` images are in flight: ``submit`` blocks when they are
(backpressure), so memory stays flat however long the run. One collector thread receives
finished records, appends them to this rank's journal (one flush + fsync per group of
records that arrived together) and feeds TensorBoard. ``close`` drains everything and, on
rank zero, merges all rank journals into ``analysis_results.json`` and
``summary_report.txt`` (both written atomically).

Resume: :meth:`ResultWriter.done_paths` lists the images that already have a successful
record in any rank journal. Images recorded as failed are *not* listed: they are tried
again (an unreadable file that was fixed, or a transient write error), and a success
replaces the error record.

DDP: give every rank its ``rank`` and the full ``all_paths`` list (for stable names),
construct the writers on all ranks, then barrier before the first ``submit`` (with
``overwrite=True`` rank zero clears the previous outputs in the constructor). At the end
call ``close(finalize=False)`` on every rank, barrier, then :func:`finalize_results` on
rank zero.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from thermal_explain.checks import check_int, check_names, check_number, expect
from thermal_explain.data.thermal import check_temperature_range
from thermal_explain.errors import ThermalExplainError
from thermal_explain.output import journal
from thermal_explain.output.board import ImageLogger, log_previews
from thermal_explain.output.colormaps import DEFAULT_COLORMAP, get_colormap
from thermal_explain.output.folder import make_folder, prepare_output_dir
from thermal_explain.output.jobs import failed_result, image_job
from thermal_explain.output.naming import (
    FEATURE_DIR,
    HEATMAP_DIR,
    JOURNAL_DIR,
    OVERLAY_DIR,
    NameResolver,
    path_key,
)
from thermal_explain.output.pool import default_workers, resolve_worker_type
from thermal_explain.output.records import STATUS_OK, describe_error, error_record
from thermal_explain.output.render_pool import RenderPool
from thermal_explain.output.results import clear_results, finalize_results
from thermal_explain.output.worker import ImageJob, JobResult, RenderSettings, run_in_thread
from thermal_explain.types import ExplainedImage, FailedItem

log = logging.getLogger(__name__)

PREVIEW_SIZE = 160
"""Height of the two tiles (original, overlay) of the previews sent to TensorBoard."""


@dataclass
class _Message:
    """A finished (or failed) job on its way to the collector thread."""

    job: ImageJob | None
    step: int | None
    attempt: int
    result: JobResult | None = None
    future: Future[JobResult] | None = None
    holds_slot: bool = True


_STOP = object()


class ResultWriter:
    """Writes heatmaps, overlays, figures, feature maps, the journal and the final results.

    Args:
        output_dir: folder for every output (created when missing).
        class_names: class names in index order (for the report).
        layers: the explained layer names (for the report's order).
        colormap: OpenCV or matplotlib colormap name.
        original_alpha: weight of the desaturated original in the overlay.
        heatmap_alpha: weight of the colorized heatmap in the overlay.
        save_heatmaps: write ``gradcam_heatmaps/*_heatmap.png``.
        save_overlays: write ``overlay_images/*_overlay.png``.
        save_figures: write the 300-DPI ``overlay_images/*_overlay_plt.png`` figures.
        save_feature_maps: write ``feature_maps/*.npy`` (the raw CAM).
        workers: worker count; ``None`` = :func:`default_workers` for a CPU engine (the
            run passes the count for its device); ``0`` = render synchronously inside
            ``submit``.
        drain_workers: threads rendering the images still queued once :meth:`close` is
            called (the engine is done, its cores are free); ``None`` = ``workers``.
            A process pool keeps its size.
        take_turns: ``submit`` returns once the images it queued are rendering, rendering
            them itself beside up to ``drain_workers - 1`` threads: a CPU engine on every
            core waits for its slowest thread at each kernel, so sharing the cores with the
            writer cost it more than taking turns (thread pools only).
        worker_type: ``"process"`` (no GIL contention with the compute loop, but each
            worker pays a start-up import), ``"thread"`` (no start-up cost; the PNG encoding
            that dominates releases the GIL) or ``"auto"``: processes for figure runs of at
            least ``PROCESS_MIN_IMAGES`` known paths with at least ``PROCESS_MIN_WORKERS``
            workers, threads otherwise. If a worker process dies or cannot start, the writer
            falls back to threads and retries its images.
        queue_size: images in flight at most; ``submit`` blocks beyond it.
        overwrite: delete this tool's previous outputs in ``output_dir`` and start over.
        rank: this process's global rank (its journal is ``.journal/rank<rank>.jsonl``).
        tensorboard: a ``SummaryWriter``-like object; each overlay is added as an image
            tagged ``overlays/<stem>/<layer>``.
        all_paths: every input path of the run, so same-stem inputs get stable names.
        temperature_scale: how 16-bit exports are read as temperatures (as the model's
            input was); ``None`` reads them as pictures.
        temperature_range: the window temperature inputs are drawn through; ``None``
            stretches each from its minimum to its maximum.
        report_pictures: also write each image's contact strip and copy of the original
            under ``report_files/`` (for ``report.html``, which then only renders pages).

    Raises:
        ConfigurationError: an argument has an invalid value.
        ThermalExplainError: ``output_dir`` cannot be created or written.
    """

    def __init__(
        self,
        output_dir: str | os.PathLike[str],
        *,
        class_names: Sequence[str],
        layers: Sequence[str],
        colormap: str = DEFAULT_COLORMAP,
        original_alpha: float = 0.3,
        heatmap_alpha: float = 0.7,
        save_heatmaps: bool = True,
        save_overlays: bool = True,
        save_figures: bool = True,
        save_feature_maps: bool = True,
        workers: int | None = None,
        drain_workers: int | None = None,
        take_turns: bool = False,
        worker_type: Literal["auto", "process", "thread"] = "auto",
        queue_size: int = 32,
        overwrite: bool = False,
        rank: int = 0,
        tensorboard: ImageLogger | None = None,
        all_paths: Sequence[str] | None = None,
        temperature_scale: str | None = None,
        temperature_range: tuple[float, float] | None = None,
        report_pictures: bool = False,
    ) -> None:
        self.class_names = check_names("class_names", class_names, minimum=0)
        self.layers = check_names("layers", layers)
        self.rank = check_int("rank", rank, 0)
        self.workers = default_workers() if workers is None else check_int("workers", workers, 0)
        self._drain_workers = (
            self.workers if drain_workers is None else check_int("drain_workers", drain_workers, 0)
        )
        self._take_turns = bool(take_turns) and self.workers > 0
        worker_type = resolve_worker_type(
            worker_type,
            self.workers,
            len(all_paths) if all_paths is not None else None,
            save_figures,
        )
        queue_size = check_int("queue_size", queue_size, 1)
        expect(
            tensorboard is None or callable(getattr(tensorboard, "add_image", None)),
            "tensorboard",
            "a SummaryWriter with add_image",
            type(tensorboard).__name__,
        )
        lut = get_colormap(colormap)
        alphas = (
            check_number("original_alpha", original_alpha, 0.0, 1.0),
            check_number("heatmap_alpha", heatmap_alpha, 0.0, 1.0),
        )
        self.output_dir = prepare_output_dir(output_dir)
        if overwrite:
            clear_results(self.output_dir, self.rank)
        flags = {
            HEATMAP_DIR: save_heatmaps,
            OVERLAY_DIR: save_overlays or save_figures,
            FEATURE_DIR: save_feature_maps,
            JOURNAL_DIR: True,
        }
        for folder, wanted in flags.items():
            if wanted:
                make_folder(self.output_dir, folder)
        self._settings = RenderSettings(
            output_dir=os.fspath(self.output_dir),
            lut=lut,
            original_alpha=alphas[0],
            heatmap_alpha=alphas[1],
            save_heatmaps=bool(save_heatmaps),
            save_overlays=bool(save_overlays),
            save_figures=bool(save_figures),
            save_feature_maps=bool(save_feature_maps),
            preview_size=PREVIEW_SIZE if tensorboard is not None else None,
            temperature_scale=None if temperature_scale is None else str(temperature_scale),
            temperature_range=check_temperature_range(temperature_range),
            report_pictures=bool(report_pictures),
        )
        self._tensorboard = tensorboard
        self._journal = journal.JournalWriter(journal.journal_path(self.output_dir, self.rank))
        previous = journal.read_all(self.output_dir)
        self._done = journal.succeeded_paths(previous)
        self._done_keys = {path_key(path) for path in self._done}
        self._names = NameResolver(all_paths, journal.claimed_stems(previous))
        self._slots = threading.Semaphore(queue_size)
        self._messages: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._idle = threading.Condition()
        self._pending = 0
        self._lock = threading.Lock()
        self._render_pool = RenderPool(self.workers, worker_type, self._settings)
        self._fatal: BaseException | None = None
        self._session: list[dict[str, Any]] = []
        self._closed = False
        self._collector = threading.Thread(
            target=self._collect, name=f"thermal-explain-writer-rank{self.rank}", daemon=True
        )
        self._collector.start()

    # Public API ----------------------------------------------------------------------

    @staticmethod
    def clear(output_dir: str | os.PathLike[str]) -> None:
        """Delete this tool's earlier outputs in ``output_dir``; other files stay.

        Removes every rank journal, ``analysis_results.json``, ``summary_report.txt`` and
        the heatmap, overlay, figure and feature-map files. In DDP call it on rank zero,
        then barrier, then construct the writers (what ``overwrite=True`` does on one rank).

        Raises:
            ThermalExplainError: ``output_dir`` is not writable.
        """
        root = Path(os.path.abspath(os.fspath(output_dir)))
        if not root.exists():
            return
        clear_results(prepare_output_dir(root), rank=0)

    def done_paths(self) -> set[str]:
        """Image paths (as recorded) that already have a successful record."""
        with self._lock:
            return set(self._done)

    def filter_pending(self, paths: Sequence[str]) -> list[str]:
        """``paths`` without those already done, compared as normalized absolute paths."""
        with self._lock:
            done = set(self._done_keys)
        return [path for path in paths if path_key(path) not in done]

    def submit(self, items: Sequence[ExplainedImage], step: int | None = None) -> None:
        """Queue ``items`` for writing; while ``queue_size`` images are in flight, renders
        waiting ones in this thread until there is room (``take_turns``: until none waits).

        ``step`` is the TensorBoard global step of their overlays.

        Raises:
            ThermalExplainError: the journal could not be written (disk full, folder gone).
        """
        self._check_usable()
        for item in items:
            job = image_job(item, self._names.stem_for(str(item.image_path)))
            self._render_pool.acquire_rendering(self._slots)
            self._begin()
            try:
                self._dispatch(job, step, attempt=0)
            except BaseException:
                self._slots.release()
                self._finish(1)
                raise
        if self._take_turns:
            self._render_pool.render_waiting(max(self.workers, self._drain_workers - 1))

    def record_failures(self, items: Sequence[FailedItem]) -> None:
        """Record inputs that could not be loaded (``"status": "error"``)."""
        self._check_usable()
        for item in items:
            record = error_record(item.path, item.error, true_label=item.true_label)
            self._begin()
            self._messages.put(_Message(None, None, 0, JobResult(record, ""), holds_slot=False))

    def close(self, finalize: bool = True) -> list[dict[str, Any]]:
        """Drain the queue, stop the workers and (``finalize``) write the merged results.

        Returns:
            With ``finalize``: every record in ``output_dir`` (all ranks and earlier runs),
            ordered by path. Without: the records this writer produced, ordered by path.

        Raises:
            ThermalExplainError: the journal or the results could not be written.
        """
        if not self._closed:
            self._closed = True
            if self.workers and self._drain_workers > self.workers:
                self._render_pool.widen(self._drain_workers)
            with self._idle:
                while self._pending and self._collector.is_alive():
                    self._idle.wait(timeout=1.0)
            self._messages.put(_STOP)
            self._collector.join()
            self._render_pool.shutdown()
            self._journal.close()
        if self._fatal is not None:
            raise self._journal_error()
        if finalize:
            return finalize_results(self.output_dir, self.class_names, self.layers)
        with self._lock:
            return sorted(self._session, key=lambda record: record["image_path"])

    def __enter__(self) -> ResultWriter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if error is None:
            self.close(finalize=self.rank == 0)
            return
        try:
            self.close(finalize=self.rank == 0)
        except Exception as close_error:  # the original error matters more
            log.error("could not finish writing results: %s", close_error)

    # Internals ------------------------------------------------------------------------

    def _check_usable(self) -> None:
        if self._closed:
            raise RuntimeError("ResultWriter is closed")
        if self._fatal is not None:
            raise self._journal_error()

    def _journal_error(self) -> ThermalExplainError:
        return ThermalExplainError(
            f"cannot write the results journal in '{self.output_dir}': "
            f"{describe_error(self._fatal or RuntimeError())}; "
            "free disk space or choose another --output_dir"
        )

    def _begin(self) -> None:
        with self._idle:
            self._pending += 1

    def _finish(self, count: int) -> None:
        with self._idle:
            self._pending -= count
            if self._pending == 0:
                self._idle.notify_all()

    def _dispatch(self, job: ImageJob, step: int | None, attempt: int) -> None:
        if self.workers == 0:
            result = run_in_thread(job, self._settings)
            self._messages.put(_Message(job, step, attempt, result=result))
            return
        future = self._render_pool.submit(job)
        future.add_done_callback(
            lambda done: self._messages.put(_Message(job, step, attempt, future=done))
        )

    def _collect(self) -> None:
        """Collector thread: journal finished records, feed TensorBoard, free slots."""
        stop = False
        while not stop:
            messages = [self._messages.get()]
            while True:
                try:
                    messages.append(self._messages.get_nowait())
                except queue.Empty:
                    break
            stop = any(message is _STOP for message in messages)
            finished = [
                message
                for message in messages
                if isinstance(message, _Message) and self._resolve(message)
            ]
            if finished:
                self._commit(finished)

    def _resolve(self, message: _Message) -> bool:
        """Turn a finished future into a result; ``False`` when the job was re-queued."""
        job = message.job
        if message.future is None or job is None:
            return True
        try:
            message.result = message.future.result()
        except BrokenProcessPool as error:
            if message.attempt > 0:
                message.result = failed_result(job, error)
                return True
            try:
                self._render_pool.use_threads(error)
                self._dispatch(job, message.step, attempt=1)
            except Exception as retry_error:
                message.result = failed_result(job, retry_error)
                return True
            return False
        except Exception as error:
            message.result = failed_result(job, error)
        return True

    def _commit(self, finished: list[_Message]) -> None:
        results = [message.result for message in finished if message.result is not None]
        try:
            if self._fatal is None:
                self._journal.append(
                    [{"stem": result.stem or None, "record": result.record} for result in results]
                )
                self._remember(results)
                self._preview(finished)
        except Exception as error:  # the journal is the one thing that must not fail
            log.error("cannot append to %s: %s", self._journal.path, error)
            self._fatal = error
        finally:
            for message in finished:
                if message.holds_slot:
                    self._slots.release()
            self._finish(len(finished))

    def _remember(self, results: list[JobResult]) -> None:
        with self._lock:
            for result in results:
                record = result.record
                self._session.append(record)
                if record["status"] == STATUS_OK:
                    self._done.add(record["image_path"])
                    self._done_keys.add(path_key(record["image_path"]))

    def _preview(self, finished: list[_Message]) -> None:
        if self._tensorboard is None:
            return
        previews = (
            (f"overlays/{message.result.stem}/{layer}", image, message.step)
            for message in finished
            if message.result is not None
            for layer, image in message.result.previews
        )
        if not log_previews(self._tensorboard, previews):
            self._tensorboard = None
