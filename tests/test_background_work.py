"""The run's background threads: batches read ahead, and render threads that can grow."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import torch
from torch.utils.data import DataLoader

from thermal_explain.data.prefetch import ReadAheadLoader, prefetched, read_ahead_pays
from thermal_explain.output.pool import engine_fills_cores
from thermal_explain.output.render_threads import RenderThreads


def test_prefetched_yields_every_item_in_order_read_in_another_thread() -> None:
    readers: set[str] = set()

    def items() -> Iterator[int]:
        for value in range(7):
            readers.add(threading.current_thread().name)
            yield value

    assert list(prefetched(items(), depth=2)) == list(range(7))
    assert readers == {"thermal-explain-prefetch"}


def test_prefetched_raises_a_reading_error_where_its_item_would_be() -> None:
    def items() -> Iterator[int]:
        yield 1
        raise OSError("disk gone")

    seen = []
    with pytest.raises(OSError, match="disk gone"):
        for value in prefetched(items()):
            seen.append(value)
    assert seen == [1]


def test_prefetched_stops_reading_when_the_loop_stops() -> None:
    read = []

    def items() -> Iterator[int]:
        for value in range(1000):
            read.append(value)
            yield value

    for value in prefetched(items(), depth=1):
        if value == 2:
            break
    readers = [t for t in threading.enumerate() if t.name == "thermal-explain-prefetch"]
    assert readers == []  # the reader has ended
    assert len(read) <= 5  # the item in hand, one queued, one being put


def test_read_ahead_loader_gives_the_plain_loader_batches_read_in_a_thread() -> None:
    collated_in: set[str] = set()

    def collate(items: list[int]) -> torch.Tensor:
        collated_in.add(threading.current_thread().name)
        return torch.tensor(items)

    data = list(range(10))
    plain = [batch.tolist() for batch in DataLoader(data, batch_size=3, collate_fn=collate)]
    assert collated_in == {threading.current_thread().name}
    collated_in.clear()
    ahead = ReadAheadLoader(data, batch_size=3, collate_fn=collate)
    assert [batch.tolist() for batch in ahead] == plain
    assert collated_in == {"thermal-explain-prefetch"}
    assert len(ahead) == 4


def test_render_threads_return_results_and_errors_through_futures() -> None:
    threads = RenderThreads(2, name="test-render")
    done = threads.submit(lambda a, b: a + b, 2, b=3)
    failed = threads.submit(lambda: 1 / 0)
    assert done.result(timeout=10) == 5
    with pytest.raises(ZeroDivisionError):
        failed.result(timeout=10)
    threads.shutdown()
    with pytest.raises(RuntimeError, match="stopped"):
        threads.submit(lambda: None)


def _blocking(started: threading.Event, release: threading.Event) -> bool:
    started.set()
    return release.wait(10)


def test_render_threads_widen_only_for_waiting_jobs() -> None:
    started, release = threading.Event(), threading.Event()
    threads = RenderThreads(1, name="test-render")
    busy = threads.submit(_blocking, started, release)
    assert started.wait(10)
    threads.widen(4)  # nothing waits: the running job keeps its one thread
    assert threads.workers == 1
    waiting = [threads.submit(threading.current_thread) for _ in range(2)]
    threads.widen(4)  # two jobs wait: two more threads, not three
    assert threads.workers == 3
    names = {future.result(timeout=10).name for future in waiting}
    assert names <= {"test-render_1", "test-render_2"}
    release.set()
    assert busy.result(timeout=10) is True
    threads.shutdown()


def test_run_queued_lends_the_calling_thread() -> None:
    started, release = threading.Event(), threading.Event()
    threads = RenderThreads(1, name="test-render")
    threads.submit(_blocking, started, release)
    assert started.wait(10)
    waiting = threads.submit(threading.current_thread)
    assert threads.run_queued()
    assert waiting.result(timeout=1) is threading.current_thread()
    assert not threads.run_queued()  # nothing left waiting
    release.set()
    threads.shutdown()


def test_shutdown_can_cancel_what_waits() -> None:
    started, release = threading.Event(), threading.Event()
    threads = RenderThreads(1, name="test-render")
    running = threads.submit(_blocking, started, release)
    waiting = threads.submit(lambda: "never")
    assert started.wait(10)
    threads.shutdown(wait=False, cancel_futures=True)
    release.set()
    threads.shutdown()  # waits for the threads
    assert running.result(timeout=10) is True
    assert waiting.cancelled()


def test_reading_ahead_is_kept_for_engines_that_leave_a_core_free(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("thermal_explain.output.pool.available_cores", lambda: 4)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 4)
    assert not read_ahead_pays("cpu")  # the CPU engine's threads fill every core
    assert engine_fills_cores("cpu") and not engine_fills_cores("cuda")
    assert read_ahead_pays(torch.device("cuda"))  # the GPU computes; the cores are free
    assert read_ahead_pays(None)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    assert read_ahead_pays("cpu")
    assert engine_fills_cores("cpu", processes=2)  # two DDP ranks of 2 threads on 4 cores
