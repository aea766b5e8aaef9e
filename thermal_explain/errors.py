"""User-facing errors: one line that names the problem and the fix."""

from __future__ import annotations


class ThermalExplainError(Exception):
    """An error caused by the user's input or environment.

    The CLI prints ``str(error)`` as a single line on stderr (no traceback) and exits
    with status 2. The message names the offending argument and how to fix it.
    """

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


class ConfigurationError(ThermalExplainError, ValueError):
    """An argument has an invalid value (wrong type, out of range, unknown name)."""


class CheckpointError(ThermalExplainError):
    """A checkpoint cannot be read or does not fit the model."""


class ImageReadError(ThermalExplainError):
    """An image file cannot be read or decoded."""


def shorten(names: list[str] | tuple[str, ...], limit: int = 4) -> str:
    """``['a', 'b', 'c', 'd', 'e']`` -> ``"a, b, c, d (+1 more)"``."""
    names = list(names)
    head = ", ".join(names[:limit])
    return head if len(names) <= limit else f"{head} (+{len(names) - limit} more)"
