"""Render threads on one job queue, which more threads may join while jobs wait.

A writer renders beside the engine with the cores the engine leaves free; once the last
batch is in, the engine's cores are free too, and the images still queued should use them.
``concurrent.futures.ThreadPoolExecutor`` cannot grow, so the writer's threads are these.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any

_Job = tuple[Future[Any], Callable[..., Any], tuple[Any, ...], dict[str, Any]]


class RenderThreads(Executor):
    """``workers`` threads running submitted calls in order; :meth:`widen` adds threads and
    :meth:`run_queued` lends the caller's."""

    def __init__(self, workers: int, name: str) -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._name = name
        self._lock = threading.Lock()
        self._stopped = False
        self.widen(max(1, workers), waiting_only=False)

    @property
    def workers(self) -> int:
        """Threads started so far."""
        return len(self._threads)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Queue ``fn(*args, **kwargs)``; its future holds the result or the exception."""
        with self._lock:
            if self._stopped:
                raise RuntimeError("cannot submit to stopped render threads")
            future: Future[Any] = Future()
            self._jobs.put((future, fn, args, kwargs))
            return future

    def widen(self, workers: int, *, waiting_only: bool = True) -> None:
        """Run up to ``workers`` threads; with ``waiting_only``, no more than jobs queued."""
        with self._lock:
            if self._stopped:
                return
            wanted = workers - len(self._threads)
            if waiting_only:
                wanted = min(wanted, self._jobs.qsize())
            for _ in range(max(0, wanted)):
                thread = threading.Thread(
                    target=self._work, name=f"{self._name}_{len(self._threads)}", daemon=True
                )
                thread.start()
                self._threads.append(thread)

    def run_queued(self) -> bool:
        """Run the oldest queued job in the calling thread; ``False`` when none waits."""
        try:
            job = self._jobs.get_nowait()
        except queue.Empty:
            return False
        if job is None:  # stopping: leave the stop signal to a thread
            self._jobs.put(None)
            return False
        _run(job)
        return True

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop every thread after the jobs queued before (``cancel_futures``: cancel them)."""
        with self._lock:
            if not self._stopped:
                self._stopped = True
                if cancel_futures:
                    self._cancel_queued()
                for _ in self._threads:
                    self._jobs.put(None)
        if wait:
            for thread in self._threads:
                thread.join()

    def _cancel_queued(self) -> None:
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                return
            if job is not None:
                job[0].cancel()

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            _run(job)


def _run(job: _Job) -> None:
    future, fn, args, kwargs = job
    if not future.set_running_or_notify_cancel():
        return
    try:
        result = fn(*args, **kwargs)
    except BaseException as error:  # handed to whoever waits on the future
        future.set_exception(error)
    else:
        future.set_result(result)
