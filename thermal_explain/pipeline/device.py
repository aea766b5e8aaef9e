"""Where a run computes: the device a user asked for, checked before any work."""

from __future__ import annotations

import torch

from thermal_explain.errors import ConfigurationError


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``device``, or a GPU when there is one (``None``), checked to exist.

    Raises:
        ConfigurationError: not a device name, or CUDA asked for where there is none.
    """
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as error:
        raise ConfigurationError(
            f"Expected argument `device` to be cpu, cuda or cuda:N but got {device!r}; "
            "pass e.g. --device cpu"
        ) from error
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigurationError(
                f"--device {device} was asked for but no CUDA GPU is available; pass --device cpu"
            )
        count = torch.cuda.device_count()
        if resolved.index is not None and resolved.index >= count:
            raise ConfigurationError(
                f"--device {device} was asked for but there are {count} CUDA device(s); "
                f"pass --device cuda:0 .. cuda:{count - 1}"
            )
    elif resolved.type == "mps" and torch.backends.mps.is_available():
        return resolved
    elif resolved.type != "cpu":
        raise ConfigurationError(
            f"Expected argument `device` to be cpu, cuda or cuda:N but got {device!r}; "
            "pass e.g. --device cpu"
        )
    return resolved
