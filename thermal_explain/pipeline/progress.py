"""A progress bar with images/s on stderr, silent when asked or when nothing is to do."""

from __future__ import annotations

from types import TracebackType

from tqdm.auto import tqdm


class Progress:
    """Context manager around a tqdm bar that reports throughput in ``unit``/s."""

    def __init__(
        self,
        total: int,
        *,
        disable: bool = False,
        unit: str = "img",
        description: str = "analyzing",
    ) -> None:
        self._bar = tqdm(
            total=total,
            unit=unit,
            desc=description,
            disable=disable or total == 0,
            dynamic_ncols=True,
            smoothing=0.1,
        )

    def update(self, count: int) -> None:
        self._bar.update(count)

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._bar.close()
