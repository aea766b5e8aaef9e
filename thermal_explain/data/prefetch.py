"""Read the next batch in a background thread while the current one is explained.

With ``num_workers=0`` a loader decodes in the calling thread, so decoding and the CAM
engine take turns. :func:`prefetched` keeps one batch ready ahead instead, and
:class:`ReadAheadLoader` is a ``DataLoader`` that does so (``analyze`` and ``predict`` use
it): OpenCV decodes and resizes without the interpreter lock, so the file work runs beside
the engine. That pays only where the engine leaves a core free (:func:`read_ahead_pays`):
with a CPU engine on every core, measured on 2 cores, the thread slowed the engine by more
than it saved. Training loaders do not read ahead: their augmentations draw from the global
random generators, which a second thread would make depend on timing.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterable
from typing import Any, TypeVar

import torch
from torch.utils.data import DataLoader

from thermal_explain.output.pool import engine_fills_cores

Item = TypeVar("Item")

_DONE = object()


class _Failure:
    """An exception raised by the reading thread, re-raised in the consumer."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


def read_ahead_pays(device: torch.device | str | None) -> bool:
    """Whether reading ahead in a thread speeds up an engine on ``device``: an accelerator,
    or a CPU engine whose intra-op threads leave a core free (``None``: unknown, yes)."""
    return not engine_fills_cores(device)


def prefetched(items: Iterable[Item], depth: int = 1) -> Generator[Item, None, None]:
    """Yield ``items`` in order, reading up to ``depth`` of them ahead in a thread.

    An exception of the reading thread is raised where its item would have been yielded.
    Stopping early (``break``, an error in the loop body) stops the thread after the item
    it is reading.
    """
    ready: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def read() -> None:
        try:
            for item in items:
                if not _put(ready, item, stop):
                    return
        except BaseException as error:  # re-raised by the consumer
            _put(ready, _Failure(error), stop)
        else:
            _put(ready, _DONE, stop)

    reader = threading.Thread(target=read, name="thermal-explain-prefetch", daemon=True)
    reader.start()
    try:
        while True:
            item = ready.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        reader.join()


def _put(ready: queue.Queue[object], item: object, stop: threading.Event) -> bool:
    """Put ``item`` unless the consumer has stopped; returns whether it was put."""
    while not stop.is_set():
        try:
            ready.put(item, timeout=0.05)
        except queue.Full:
            continue
        return True
    return False


class ReadAheadLoader(DataLoader):
    """A ``DataLoader`` that, without worker processes, reads one batch ahead in a thread
    (:func:`prefetched`); with workers it is a plain ``DataLoader``, which reads ahead itself."""

    def __iter__(self) -> Any:
        batches = super().__iter__()
        return prefetched(batches) if self.num_workers == 0 else batches
