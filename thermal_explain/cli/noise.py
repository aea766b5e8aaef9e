"""Keep our commands' output about the run: drop libraries' promotions and known noise.

Lightning prints promotional tips ("Tip: ... try installing litlogger") and, with the
libraries pinned here, deprecation warnings that a user cannot act on. They are dropped
from ``thermal-explain``'s own commands only; a user's Python session is left alone.
"""

from __future__ import annotations

import logging
import warnings

PROMOTIONS = ("💡 Tip:",)
"""Start of Lightning's promotional log lines."""

NOISE_LOGS = ("Seed set to",)
"""Log lines that repeat what the configuration already says."""

NOISE_WARNINGS = (
    r".*LeafSpec.*",
    r"No seed found, seed set to.*",
    r"Total length of `DataLoader` across ranks is zero.*",
    r".*does not have many workers.*",
    r".*smaller than the logging interval.*",
)
"""Warnings with nothing for a user to do (an empty loader is a finished, resumed run)."""

_LOGGERS = (
    "lightning.pytorch.utilities.rank_zero",
    "lightning.fabric.utilities.rank_zero",
    "lightning.fabric.utilities.seed",
)


class _DropNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not message.startswith(PROMOTIONS + NOISE_LOGS)


def filter_library_noise() -> None:
    """Install the filters (idempotent)."""
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(existing, _DropNoise) for existing in logger.filters):
            logger.addFilter(_DropNoise())
    for pattern in NOISE_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)
