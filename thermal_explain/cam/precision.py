"""Numerical precision of the engine's forward and backward, named as Lightning names it.

``"32-true"`` runs in float32. ``"bf16-mixed"`` runs the model under
``torch.autocast(dtype=torch.bfloat16)`` on a CPU with native bfloat16 arithmetic (AVX-512
BF16 or AMX on x86, BF16 on Arm) or a GPU that has it; ``"16-mixed"`` under float16 autocast
on CUDA only (the target score scaled so that small gradients do not underflow). The
activations and gradients are then bfloat16 or float16; the engine turns them into float32
before any map or statistic is computed. Where bfloat16 is not native, one
warning says so and the engine runs in float32.

Reduced precision trades exactness for speed: about 1.4x (bfloat16 alone) to 2.7x (with
channels-last) the float32 throughput on a CPU with AVX-512 BF16, with maps that correlate
with float32 maps at r >= 0.98 and the same predicted class for nearly every image (see
``benchmarks/bench_cam.py``); float32 stays the default.
"""

from __future__ import annotations

import logging
import platform
from contextlib import AbstractContextManager, nullcontext

import torch

from thermal_explain.errors import ConfigurationError

log = logging.getLogger(__name__)

PRECISIONS = ("32-true", "bf16-mixed", "16-mixed")
"""The precisions the engine runs in (Lightning's names)."""

_ALIASES = {"32": "32-true", "bf16": "bf16-mixed", "16": "16-mixed"}
_warned: set[str] = set()


def check_precision(precision: object) -> str:
    """``precision`` as one of :data:`PRECISIONS` (Lightning's short forms accepted).

    Raises:
        ConfigurationError: an unknown precision.
    """
    name = _ALIASES.get(str(precision), str(precision))
    if isinstance(precision, bool) or name not in PRECISIONS:
        raise ConfigurationError(
            f"Expected argument `precision` to be one of {', '.join(PRECISIONS)} but got "
            f"{precision!r}"
        )
    return name


def lightning_precision(precision: object) -> str:
    """The engine precision for a ``Trainer.precision`` value.

    Mixed precisions map to the same name; any other (``"32-true"``, ``"64-true"``,
    ``"bf16-true"``, ...) runs without autocast, in the model's own dtype.
    """
    name = _ALIASES.get(str(precision), str(precision))
    return name if name in PRECISIONS else "32-true"


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype ``precision`` runs in on ``device``; ``None`` for float32.

    Raises:
        ConfigurationError: ``16-mixed`` on a device other than CUDA.
    """
    if precision == "32-true":
        return None
    if precision == "16-mixed":
        if device.type != "cuda":
            raise ConfigurationError(
                f"argument `precision='16-mixed'` runs on CUDA only but the model is on "
                f"{device}; use bf16-mixed on a CPU"
            )
        return torch.float16
    if not bfloat16_is_native(device):
        if device.type not in _warned:
            _warned.add(device.type)
            log.warning(
                "precision bf16-mixed: this %s has no native bfloat16 arithmetic; running in "
                "float32",
                "CPU" if device.type == "cpu" else device.type.upper() + " device",
            )
        return None
    return torch.bfloat16


FLOAT16_GRADIENT_SCALE = 1024.0
"""Factor on the target score under ``16-mixed``: float16 gradients of deep layers can be
smaller than float16's smallest normal number (6e-5); scaled, they keep their precision."""


def gradient_scale(precision: str) -> float:
    """The factor the engine multiplies the target score by before the backward pass."""
    return FLOAT16_GRADIENT_SCALE if precision == "16-mixed" else 1.0


def autocast(precision: str, device: torch.device) -> AbstractContextManager[object]:
    """A context running ``precision`` on ``device``: autocast, or autocast switched off."""
    dtype = autocast_dtype(precision, device)
    if device.type not in ("cpu", "cuda"):
        return nullcontext()
    return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)


def float32(device: torch.device) -> AbstractContextManager[object]:
    """A context where ``device``'s autocast (the engine's or a caller's) is switched off."""
    return autocast("32-true", device)


def bfloat16_is_native(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 in hardware (CPU: AVX-512 BF16, AMX or Arm BF16)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type != "cpu":
        return False
    if platform.machine().lower() in ("x86_64", "amd64", "i386", "i686"):
        checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        return any(bool(getattr(torch.cpu, check, lambda: False)()) for check in checks)
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
