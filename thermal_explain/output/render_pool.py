"""The writer's render workers: threads or processes, started on first use.

A process pool that breaks (a worker killed, or one that cannot start) is replaced by
threads, so the images in flight can be tried again there. Threads can be added while
images wait (:meth:`RenderPool.widen`), for the end of a run when the engine's cores are
free.
"""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import partial
from multiprocessing import get_context
from typing import Any, Literal

from thermal_explain.output.render_threads import RenderThreads
from thermal_explain.output.worker import (
    ImageJob,
    JobResult,
    RenderSettings,
    init_process,
    run_in_process,
    run_in_thread,
)

log = logging.getLogger(__name__)


class RenderPool:
    """``workers`` threads or processes rendering :class:`ImageJob`s with ``settings``.

    Thread-safe: the writer submits from its caller's thread and retries from its
    collector thread.
    """

    def __init__(
        self, workers: int, worker_type: Literal["process", "thread"], settings: RenderSettings
    ) -> None:
        self.workers = workers
        self.worker_type = worker_type
        self._settings = settings
        self._executor: Executor | None = None
        self._lock = threading.Lock()

    def submit(self, job: ImageJob) -> Future[JobResult]:
        """Render ``job`` in a worker (on threads at once if the process pool broke)."""
        with self._lock:
            try:
                return self._pool().submit(self._task(), job)
            except BrokenProcessPool as error:
                self._use_threads(error)
                return self._pool().submit(self._task(), job)

    def use_threads(self, error: BaseException) -> None:
        """Replace a broken process pool by threads (no-op when already on threads)."""
        with self._lock:
            self._use_threads(error)

    def widen(self, workers: int) -> None:
        """Render the images waiting on up to ``workers`` threads (a thread pool only:
        a process pool keeps its size, as new processes would pay their start-up)."""
        with self._lock:
            if isinstance(self._executor, RenderThreads):
                self._executor.widen(workers)

    def acquire_rendering(self, slots: threading.Semaphore) -> None:
        """Acquire ``slots``, rendering waiting images in this thread while it is taken: a
        caller that would only wait leaves its core idle (thread pools only)."""
        while not slots.acquire(blocking=False):
            if not self._run_queued():
                slots.acquire()
                return

    def render_waiting(self, threads: int) -> None:
        """Render the waiting images on up to ``threads`` threads and the calling one,
        returning when none waits (a thread pool only; the images in flight go on)."""
        self.widen(threads)
        while self._run_queued():
            pass

    def _run_queued(self) -> bool:
        """Render one waiting image in the calling thread; ``False`` when none waits."""
        with self._lock:
            executor = self._executor
        return isinstance(executor, RenderThreads) and executor.run_queued()

    def shutdown(self) -> None:
        """Wait for the jobs in flight and stop the workers."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)

    def _task(self) -> Any:
        if self.worker_type == "process":
            return run_in_process
        return partial(run_in_thread, settings=self._settings)

    def _pool(self) -> Executor:
        """The executor (created on first use; call with ``self._lock`` held)."""
        if self._executor is None:
            if self.worker_type == "process":
                self._executor = ProcessPoolExecutor(
                    max_workers=self.workers,
                    mp_context=get_context("spawn"),
                    initializer=init_process,
                    initargs=(self._settings, os.getpid()),
                )
            else:
                self._executor = RenderThreads(self.workers, name="thermal-explain-render")
        return self._executor

    def _use_threads(self, error: BaseException) -> None:
        if self.worker_type == "thread":
            return
        log.warning("a writer worker process stopped (%s); continuing with threads", error)
        broken, self._executor = self._executor, None
        self.worker_type = "thread"
        if broken is not None:
            broken.shutdown(wait=False)
