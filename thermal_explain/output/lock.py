"""One run per output folder at a time: an exclusive lock held for the life of a run.

The lock is ``fcntl.flock`` on ``output_dir/.lock``. The operating system releases it when
its process ends, however it ends, so a lock left by a killed run is simply taken over.
The file holds the holder's process id and start time, for the message a second run gets.
Where ``fcntl`` does not exist (Windows) runs are not locked.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from types import TracebackType

from thermal_explain.errors import ThermalExplainError

try:
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".lock"


class FolderLock:
    """An exclusive, non-blocking lock on a folder (see the module docstring).

    Raises:
        ThermalExplainError: from :meth:`acquire`, when another process holds the lock.
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_FILE
        self._descriptor: int | None = None

    def acquire(self) -> FolderLock:
        """Take the lock or say who holds it; returns ``self``."""
        if fcntl is None or self._descriptor is not None:
            return self
        descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _read_holder(descriptor)
            os.close(descriptor)
            raise ThermalExplainError(
                f"output_dir '{self.folder}' is in use by {holder}; wait for that run to end "
                "or choose another --output_dir"
            ) from None
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime())
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()} {stamp}\n".encode(), 0)
        self._descriptor = descriptor
        return self

    def release(self) -> None:
        """Give the lock up (the file stays; a later run reuses it)."""
        if self._descriptor is None:
            return
        descriptor, self._descriptor = self._descriptor, None
        with contextlib.suppress(OSError):
            fcntl.flock(descriptor, fcntl.LOCK_UN)
        os.close(descriptor)

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()


def _read_holder(descriptor: int) -> str:
    """``"process 123 since 2026-12-01 14:03:11"`` from the lock file (what it can tell)."""
    try:
        pid, _, since = os.pread(descriptor, 200, 0).decode().strip().partition(" ")
    except (OSError, UnicodeDecodeError):
        return "another run"
    return f"process {pid} since {since}" if pid.isdigit() else "another run"
