"""The options of an analysis, defined once for the Python API and ``thermal-explain analyze``.

:class:`AnalysisOptions` is the single definition: the analyzer takes its fields as keyword
arguments, and the command line builds its flags from the same fields (help text and
defaults included), so an option is added in one place. This module imports no torch, so
``thermal-explain analyze --help`` answers at once.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from thermal_explain.checks import (
    check_choice,
    check_class_names,
    check_int,
    check_names,
    check_number,
    expect,
)
from thermal_explain.data.thermal import (
    POLARITIES,
    READOUT_FRACTION,
    READOUT_THRESHOLD,
    TemperatureScale,
    check_temperature_range,
)
from thermal_explain.errors import ConfigurationError

PERTURBATIONS = ("blur", "zero", "mean")
DEFAULT_OUTPUT_DIR = "interpretability_analysis"


def _help(text: str, **extra: Any) -> dict[str, Any]:
    return {"help": text, **extra}


@dataclass(frozen=True)
class AnalysisOptions:
    """Everything that shapes an analysis besides the model and the images.

    ``None`` for ``image_size`` and ``class_names`` means "what the checkpoint says".
    Names (method, metrics, colormap, layers, precision) are checked where they are used,
    when the analyzer is built and before any work.
    Field metadata holds each option's help text (and, for flags that switch something
    off, the flag's name), which the command line shows.
    """

    output_dir: str = field(default=DEFAULT_OUTPUT_DIR, metadata=_help("folder of every output"))
    mask_dir: str | None = field(
        default=None,
        metadata=_help("masks mirroring --image_dir as <stem>.png, for localization metrics"),
    )
    method: str = field(
        default="gradcam", metadata=_help("gradcam, gradcam++, xgradcam, layercam or hirescam")
    )
    layers: tuple[str, ...] | None = field(
        default=None,
        metadata=_help("dotted layer names (default: the last conv of each stage)"),
    )
    target: int | str | None = field(
        default=None,
        metadata=_help("class index or name to explain (default: the predicted class)"),
    )
    image_size: int | None = field(
        default=None,
        metadata=_help("side of the model input (default: the checkpoint's, else 224)"),
    )
    batch_size: int = field(default=16, metadata=_help("images per engine call"))
    device: str | None = field(
        default=None, metadata=_help("cpu, cuda or cuda:N (default: a GPU when there is one)")
    )
    precision: str = field(
        default="32-true",
        metadata=_help(
            "32-true (float32), bf16-mixed (bfloat16 autocast: about 1.5-2x faster on CPUs "
            "with AVX-512 BF16/AMX and on GPUs, maps within r >= 0.98 of float32) or "
            "16-mixed (float16 autocast, CUDA only)"
        ),
    )
    colormap: str = field(default="jet", metadata=_help("any OpenCV or matplotlib colormap"))
    original_alpha: float = field(
        default=0.3, metadata=_help("weight of the desaturated original in overlays")
    )
    heatmap_alpha: float = field(default=0.7, metadata=_help("weight of the heatmap in overlays"))
    save_figures: bool = field(
        default=True,
        metadata=_help("skip the 300-DPI figures (*_overlay_plt.png)", flag="no_figures"),
    )
    log_to_tensorboard: bool = field(
        default=True,
        metadata=_help("do not log to output_dir/tensorboard", flag="no_tensorboard"),
    )
    html_report: bool = field(
        default=True,
        metadata=_help("do not write output_dir/report.html", flag="no_html"),
    )
    overwrite: bool = field(
        default=False, metadata=_help("start over instead of resuming what output_dir holds")
    )
    allow_pickle: bool = field(
        default=False,
        metadata=_help("allow checkpoints that pickle a whole model (trusted files only)"),
    )
    num_workers: int = field(default=0, metadata=_help("image-decoding worker processes"))
    writer_workers: int | None = field(
        default=None,
        metadata=_help(
            "threads or processes writing the outputs (default: the CPU cores the engine "
            "leaves free; 0 writes in the main thread)"
        ),
    )
    quiet: bool = field(default=False, metadata=_help("no progress bar"))
    class_names: tuple[str, ...] | None = field(
        default=None,
        metadata=_help("class names by index, for checkpoints that do not store them"),
    )
    metrics: tuple[str, ...] = field(
        default=(),
        metadata=_help(
            "quality metrics: deletion insertion confidence localization sanity "
            "(or faithfulness, all); localization needs --mask_dir"
        ),
    )
    metric_steps: int = field(default=16, metadata=_help("deletion/insertion steps"))
    perturbation: str = field(
        default="blur",
        metadata=_help("how deletion/insertion remove pixels", choices=PERTURBATIONS),
    )
    fuse: bool = field(
        default=False,
        metadata=_help("add a 'fused' map: every layer combined (element-wise max)"),
    )
    temperature_scale: str | None = field(
        default=None,
        metadata=_help(
            "read single-channel 16-bit TIFF/PNG as temperatures: centikelvin, celsius_x100 "
            "or linear:A,B (T = A * value + B); without it they are pictures (default: the "
            "checkpoint's)"
        ),
    )
    temperature_range: tuple[float, float] | None = field(
        default=None,
        metadata=_help(
            "window in degrees Celsius mapped to the model input, e.g. 28 38 (default: the "
            "checkpoint's, else each image's own minimum to maximum)",
            metavar=("LOW", "HIGH"),
        ),
    )
    lesion_polarity: str = field(
        default="none",
        metadata=_help(
            "asymmetry mode: draw maps on both sides (none), or on the colder (cold) or "
            "warmer (warm) point of each mirrored pair; localization then scores the full face",
            choices=POLARITIES,
        ),
    )
    readout_map: str = field(
        default="fused",
        metadata=_help("map of the left-right thermal readout: fused or a layer name"),
    )
    readout_fraction: float = field(
        default=READOUT_FRACTION,
        metadata=_help("share of the half-width map taken as the readout's attended region"),
    )
    readout_threshold: float = field(
        default=READOUT_THRESHOLD,
        metadata=_help("left-right difference in degrees Celsius flagged in records and report"),
    )

    def __post_init__(self) -> None:
        for name in ("output_dir", "mask_dir"):
            value = getattr(self, name)
            if isinstance(value, os.PathLike):
                object.__setattr__(self, name, os.fspath(value))
        for name in ("layers", "class_names", "metrics"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                object.__setattr__(self, name, tuple(value))
        if self.layers is not None:
            check_names("layers", list(self.layers))
        if self.image_size is not None:
            check_int("image_size", self.image_size, 1)
        check_int("batch_size", self.batch_size, 1)
        check_int("num_workers", self.num_workers, 0)
        if self.writer_workers is not None:
            check_int("writer_workers", self.writer_workers, 0)
        check_int("metric_steps", self.metric_steps, 1)
        check_number("original_alpha", self.original_alpha, 0.0, 1.0)
        check_number("heatmap_alpha", self.heatmap_alpha, 0.0, 1.0)
        check_choice("perturbation", self.perturbation, PERTURBATIONS)
        check_choice("lesion_polarity", self.lesion_polarity, POLARITIES)
        check_number("readout_fraction", self.readout_fraction, 0.0, 1.0, low_open=True)
        check_number("readout_threshold", self.readout_threshold, 0.0)
        scale = TemperatureScale.parse(self.temperature_scale)
        object.__setattr__(self, "temperature_scale", None if scale is None else scale.name)
        object.__setattr__(
            self, "temperature_range", check_temperature_range(self.temperature_range)
        )
        if self.class_names is not None:
            check_class_names(list(self.class_names))
        expect(
            isinstance(self.output_dir, str) and bool(self.output_dir.strip()),
            "output_dir",
            "a folder path",
            self.output_dir,
        )

    @classmethod
    def create(cls, options: AnalysisOptions | None = None, **overrides: Any) -> AnalysisOptions:
        """``options`` (or the defaults) with ``overrides``; an unknown name is one clear line."""
        known = {item.name for item in fields(cls)}
        for name in overrides:
            if name not in known:
                close = difflib.get_close_matches(name, sorted(known), n=1)
                hint = f"; did you mean {close[0]}?" if close else ""
                raise ConfigurationError(
                    f"unknown option `{name}`{hint} (the options are the fields of "
                    "thermal_explain.pipeline.options.AnalysisOptions)"
                )
        return replace(options or cls(), **overrides)

    def changed(self) -> Mapping[str, Any]:
        """The options that differ from their defaults (for messages and manifests)."""
        default = type(self)()
        return {
            item.name: getattr(self, item.name)
            for item in fields(self)
            if getattr(self, item.name) != getattr(default, item.name)
        }


@dataclass(frozen=True)
class DemoSettings:
    """Sizes of the demo: small enough for a few CPU minutes, large enough to learn."""

    n_train: int = 400
    n_heldout: int = 96
    face_size: int = 128
    image_size: int = 128
    epochs: int = 8
    batch_size: int = 16
    learning_rate: float = 1e-3
    contrastive_weight: float = 0.0
    use_asymmetry: bool = True
    seed: int = 0
    metric_steps: int = 8
    temperature_range: tuple[float, float] = (28.0, 38.0)
    lesion_polarity: str = "cold"
