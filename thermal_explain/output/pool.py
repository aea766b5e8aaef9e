"""How many writer workers, and of which kind, a run's engine leaves room for."""

from __future__ import annotations

import os
from typing import Literal

import torch

from thermal_explain.checks import check_choice

PROCESS_MIN_IMAGES = 64
"""Fewest images for which ``worker_type="auto"`` starts worker processes."""

PROCESS_MIN_WORKERS = 4
"""Fewest workers for which ``worker_type="auto"`` starts processes: below it, threads
render as fast (PNG encoding, resizing and array work release the GIL) without each worker
paying a second of start-up imports."""


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def engine_fills_cores(device: torch.device | str | None, processes: int = 1) -> bool:
    """Whether an engine on ``device`` computes on every core of this process's share:
    a CPU engine whose intra-op threads (times ``processes`` engine processes) cover the
    cores. ``None``: unknown, no."""
    if device is None or torch.device(device).type != "cpu":
        return False
    return torch.get_num_threads() * max(1, processes) >= available_cores()


def default_workers(device: str = "cpu", processes: int = 1) -> int:
    """Writer workers for one engine process: the CPU cores its engine leaves free.

    A GPU engine keeps one core busy (loading batches, launching kernels) and the others
    render, so a 16-core GPU machine writes about eight times what 2 cores do. A CPU engine
    computes on every core; its threads leave gaps (between and inside kernels) that half as
    many writer workers fill without starving it.

    Args:
        device: the engine's device type (``"cpu"``, ``"cuda"``, ...).
        processes: engine processes sharing this machine's cores (DDP ranks per node).

    Returns:
        At least 1.
    """
    cores = drain_workers(processes)
    return max(1, cores - 1 if device != "cpu" else cores // 2)


def drain_workers(processes: int = 1) -> int:
    """Writer threads for the images still queued when the engine is done: every core
    this process's share of the machine holds (``processes`` engine processes share it),
    at least 1."""
    return max(1, available_cores() // max(1, processes))


def resolve_worker_type(
    worker_type: str, workers: int, images: int | None, save_figures: bool
) -> Literal["process", "thread"]:
    """``worker_type``, with ``"auto"`` decided: processes for figure runs of at least
    :data:`PROCESS_MIN_IMAGES` known images with at least :data:`PROCESS_MIN_WORKERS`
    workers, threads otherwise."""
    check_choice("worker_type", worker_type, ("auto", "process", "thread"))
    if worker_type != "auto":
        return worker_type  # type: ignore[return-value]
    large = images is not None and images >= PROCESS_MIN_IMAGES
    many = workers >= PROCESS_MIN_WORKERS
    return "process" if save_figures and large and many else "thread"
