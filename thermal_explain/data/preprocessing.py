"""From an image to the model's input: resize, normalize, and the asymmetry split.

:class:`Preprocessing` bundles the settings a model was trained with; it travels with
checkpoints and run manifests so that a model is always explained the way it was trained.
Temperature inputs (:mod:`thermal_explain.data.thermal`) pass through a fixed window in
degrees (``temperature_range``) before the same resize and normalization, so every image
maps a temperature to the same input value.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import cv2
import numpy as np
import torch

from thermal_explain.checks import check_int, expect
from thermal_explain.data.thermal import (
    TemperatureScale,
    ThermalInput,
    check_temperature_range,
    resize_finite,
    window_temperatures,
)
from thermal_explain.errors import ConfigurationError

log = logging.getLogger(__name__)

DEFAULT_IMAGE_SIZE = 224
"""Side of the model input when neither the user nor the checkpoint says otherwise."""

DEFAULT_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
"""ImageNet channel means (RGB, 0..1 scale)."""


DEFAULT_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
"""ImageNet channel standard deviations (RGB, 0..1 scale)."""


def to_model_input(
    image: np.ndarray,
    image_size: int,
    mean: Sequence[float] = DEFAULT_MEAN,
    std: Sequence[float] = DEFAULT_STD,
    use_asymmetry: bool = False,
) -> torch.Tensor:
    """Turn an ``(H, W, 3)`` uint8 RGB image into a normalized float model input.

    The whole image is resized to ``image_size x image_size`` (no crop), scaled to 0..1
    and normalized per channel. With ``use_asymmetry`` the result is split at the
    vertical midline (see :func:`split_asymmetry`). An ``(H, W)`` float32 image in 0..1
    (windowed temperatures) is resized the same way and repeated on the three channels.

    Returns:
        ``(3, S, S)`` float32, or ``(6, S, S // 2)`` in asymmetry mode.

    Raises:
        ConfigurationError: bad ``image_size`` (must be positive, and even in asymmetry
            mode) or ``mean``/``std`` not three values (``std`` positive).
    """
    check_preprocessing(image_size, mean, std, use_asymmetry)
    windowed = image.ndim == 2 and image.dtype == np.float32
    if not windowed and (image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8):
        raise ConfigurationError(
            f"image must be (H, W, 3) uint8 RGB, got {image.dtype} of shape {image.shape}; "
            "read it with thermal_explain.data.images.read_image"
        )
    height, width = image.shape[:2]
    shrinking = image_size * image_size < height * width
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    resized = cv2.resize(image, (image_size, image_size), interpolation=interpolation)
    # One image is too little work for torch's thread pool, whose threads stall while the
    # writer's workers hold the cores: numpy does the same float32 arithmetic on one thread.
    if windowed:
        scaled = np.repeat(resized[:, :, None], 3, axis=2)
    else:
        scaled = resized.astype(np.float32) / np.float32(255.0)
    scaled = (scaled - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    tensor = torch.from_numpy(np.ascontiguousarray(scaled.transpose(2, 0, 1)))
    return split_asymmetry(tensor) if use_asymmetry else tensor


def source_to_model_input(
    source: ThermalInput,
    image_size: int,
    mean: Sequence[float] = DEFAULT_MEAN,
    std: Sequence[float] = DEFAULT_STD,
    use_asymmetry: bool = False,
    temperature_range: tuple[float, float] | None = None,
) -> torch.Tensor:
    """A read input (picture or temperatures) as the model's input.

    Temperatures go through ``temperature_range`` (``None``: the image's own minimum to
    maximum) to 0..1, then as :func:`to_model_input`.
    """
    if source.is_temperature:
        image = window_temperatures(source.pixels, temperature_range)
    else:
        image = source.pixels
    return to_model_input(image, image_size, mean, std, use_asymmetry)


def readout_signal(source: ThermalInput, image_size: int) -> torch.Tensor:
    """``(S, S)`` float32 values the left-right readout compares, on the model's full grid:
    degrees Celsius (NaN where unknown) or a picture's gray level (0-255)."""
    return torch.from_numpy(resize_finite(source.signal(), (image_size, image_size)))


def split_asymmetry(x: torch.Tensor) -> torch.Tensor:
    """Stack the left half and the mirrored right half of ``(..., 3, H, W)`` images.

    Channels 0-2 hold columns ``0 .. W/2 - 1`` (the left face); channels 3-5 hold the
    right half flipped horizontally, so column ``j`` of both halves lies at the same
    distance from the midline. Works on single images and batches.

    Returns:
        ``(..., 6, H, W // 2)``, a new tensor (the input is not changed).

    Raises:
        ConfigurationError: not 3 channels, or an odd width.
    """
    if x.dim() < 3 or x.shape[-3] != 3:
        raise ConfigurationError(
            f"split_asymmetry expects (..., 3, H, W) images, got shape {tuple(x.shape)}"
        )
    width = x.shape[-1]
    if width % 2:
        raise ConfigurationError(
            f"split_asymmetry needs an even image width, got {width}; use an even image_size"
        )
    half = width // 2
    left = x[..., :half]
    right = torch.flip(x[..., half:], dims=(-1,))
    return torch.cat((left, right), dim=-3)


def check_preprocessing(
    image_size: int, mean: Sequence[float], std: Sequence[float], use_asymmetry: bool
) -> None:
    """Validate preprocessing arguments; raise a one-line ConfigurationError if wrong."""
    check_int("image_size", image_size, 1)
    expect(
        not use_asymmetry or image_size % 2 == 0,
        "image_size",
        "even with use_asymmetry (the face is split at its midline)",
        image_size,
        f"pass e.g. {image_size + 1}",
    )
    for name, values in (("mean", mean), ("std", std)):
        expect(_three_numbers(values), name, "three numbers (R, G, B)", _listed(values))
    expect(all(value > 0 for value in std), "std", "three positive numbers", _listed(std))


@dataclass(frozen=True)
class Preprocessing:
    """How an image file becomes the model's input.

    Attributes:
        image_size: side of the square model input in pixels.
        mean: per-channel normalization mean (RGB, 0..1 scale).
        std: per-channel normalization standard deviation.
        use_asymmetry: 6-channel input of the left half and the mirrored right half.
        temperature_range: ``(low, high)`` degrees Celsius mapped to 0..1 for temperature
            inputs; ``None`` stretches each image from its minimum to its maximum.
        temperature_scale: how 16-bit exports become degrees (``centikelvin``,
            ``celsius_x100``, ``linear:A,B``); ``None`` reads them as pictures.
    """

    image_size: int = DEFAULT_IMAGE_SIZE
    mean: tuple[float, float, float] = DEFAULT_MEAN
    std: tuple[float, float, float] = DEFAULT_STD
    use_asymmetry: bool = False
    temperature_range: tuple[float, float] | None = None
    temperature_scale: str | None = None

    def __post_init__(self) -> None:
        check_preprocessing(self.image_size, self.mean, self.std, self.use_asymmetry)
        object.__setattr__(self, "mean", tuple(float(value) for value in self.mean))
        object.__setattr__(self, "std", tuple(float(value) for value in self.std))
        object.__setattr__(self, "use_asymmetry", bool(self.use_asymmetry))
        window = check_temperature_range(self.temperature_range)
        object.__setattr__(self, "temperature_range", window)
        scale = TemperatureScale.parse(self.temperature_scale)
        object.__setattr__(self, "temperature_scale", None if scale is None else scale.name)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(C, S, W)`` of every model input: ``(3, S, S)`` or ``(6, S, S // 2)``."""
        size = self.image_size
        return (6, size, size // 2) if self.use_asymmetry else (3, size, size)

    def __call__(self, image: np.ndarray | ThermalInput) -> torch.Tensor:
        """``(H, W, 3)`` uint8 RGB or a read input -> ``input_shape`` float32."""
        if isinstance(image, ThermalInput):
            return source_to_model_input(
                image,
                self.image_size,
                self.mean,
                self.std,
                self.use_asymmetry,
                self.temperature_range,
            )
        return to_model_input(image, self.image_size, self.mean, self.std, self.use_asymmetry)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings (lists for the tuples)."""
        data = asdict(self)
        data.update(mean=list(self.mean), std=list(self.std))
        if self.temperature_range is not None:
            data["temperature_range"] = list(self.temperature_range)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Preprocessing:
        """The settings :meth:`to_dict` wrote; unknown keys are ignored, missing ones take
        their defaults (records written before a setting existed stay readable)."""
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        return cls(**known)

    @classmethod
    def from_record(cls, stored: object, use_asymmetry: bool) -> Preprocessing | None:
        """A checkpoint's stored record for a model of that input mode; ``None`` if unusable."""
        if not isinstance(stored, Mapping):
            return None
        try:
            return cls.from_dict({**stored, "use_asymmetry": use_asymmetry})
        except (ConfigurationError, TypeError):
            return None

    def differences(self, other: Preprocessing) -> list[str]:
        """``"image_size 128 vs 224"``-style notes for every field where ``other`` differs."""
        notes = []
        for name in self.__dataclass_fields__:
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine != theirs:
                notes.append(f"{name} {_shown(mine)} vs {_shown(theirs)}")
        return notes


def _shown(value: object) -> str:
    return str(list(value)) if isinstance(value, tuple) else str(value)


def _flag(value: object) -> str:
    """A setting as it is typed on the command line: ``32``, ``28 38``."""
    if isinstance(value, (tuple, list)):
        return " ".join(f"{item:g}" if isinstance(item, float) else str(item) for item in value)
    return str(value)


def _three_numbers(values: object) -> bool:
    if not isinstance(values, Sequence) or isinstance(values, str) or len(values) != 3:
        return False
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def _listed(values: object) -> object:
    return list(values) if isinstance(values, Sequence) and not isinstance(values, str) else values


def resolve_preprocessing(
    trained: Preprocessing | None,
    image_size: int | None,
    use_asymmetry: bool,
    source: str,
    *,
    temperature_range: tuple[float, float] | None = None,
    temperature_scale: str | None = None,
) -> tuple[Preprocessing, str]:
    """The preprocessing of a run and where it came from (``checkpoint``, ``options`` or
    ``defaults``).

    The checkpoint's settings are the default; an explicit ``image_size`` or
    ``temperature_range`` that disagrees wins, with one warning line. An explicit
    ``temperature_scale`` describes the files, not the model: it wins silently.
    """
    given = {
        "image_size": image_size,
        "temperature_range": check_temperature_range(temperature_range),
        "temperature_scale": temperature_scale,
    }
    explicit = {name: value for name, value in given.items() if value is not None}
    if trained is None:
        settings = {"image_size": DEFAULT_IMAGE_SIZE, **explicit}
        from_ = "options" if explicit else "defaults"
        return Preprocessing(**settings, use_asymmetry=use_asymmetry), from_
    differs = [
        name
        for name, value in explicit.items()
        if name != "temperature_scale" and value != getattr(trained, name)
    ]
    for name in differs:
        log.warning(
            "--%s %s differs from the %s %s was trained with; using %s",
            name, _flag(explicit[name]), _flag(getattr(trained, name)), source,
            _flag(explicit[name]),
        )  # fmt: skip
    resolved = replace(trained, **explicit, use_asymmetry=use_asymmetry)
    return resolved, "options" if differs else "checkpoint"
