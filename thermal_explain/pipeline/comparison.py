"""Compare where two classifiers look: their CAMs on the same images, layer by layer.

Both models are explained on the same images, each with its own class names and input mode
(RGB or asymmetry), each for its own predicted class. Per image and layer pair the two
full-width display maps are compared by Spearman rank correlation and by the IoU of their
hottest ``top_fraction`` of pixels (:mod:`thermal_explain.metrics.similarity`). The run
writes side-by-side panels, ``comparison_results.json`` and ``comparison_report.txt``.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from thermal_explain.cam import CAMEngine, default_target_layers, resolve_layers
from thermal_explain.data.images import (
    DEFAULT_MEAN,
    DEFAULT_STD,
    check_preprocessing,
    read_image,
    to_model_input,
)
from thermal_explain.errors import (
    CheckpointError,
    ConfigurationError,
    ThermalExplainError,
    shorten,
)
from thermal_explain.metrics.similarity import spearman_correlation, top_fraction_iou
from thermal_explain.modeling.classifier import ThermalClassifier
from thermal_explain.output.atomic import atomic_write_text
from thermal_explain.output.colormaps import DEFAULT_COLORMAP, get_colormap
from thermal_explain.output.comparison_panels import _thumbnail, comparison_panel
from thermal_explain.output.comparison_report import build_report
from thermal_explain.output.naming import NameResolver, inside, layer_token
from thermal_explain.output.render import encode_png
from thermal_explain.output.render import write_file as write_bytes
from thermal_explain.pipeline.progress import Progress

__all__ = [
    "DEFAULT_OUTPUT_DIR",
    "PANEL_DIR",
    "REPORT_FILE",
    "RESULTS_FILE",
    "BatchComparison",
    "ComparisonRun",
    "LayerPair",
    "ModelComparison",
    "compare_maps",
    "flat_maps",
    "pair_layers",
    "to_common_grid",
]


DEFAULT_OUTPUT_DIR = "model_comparison"


PANEL_DIR = "panels"


RESULTS_FILE = "comparison_results.json"


REPORT_FILE = "comparison_report.txt"


PANEL_SUFFIX = "_comparison.png"


_STAGE = re.compile(r"^layer\d+$")


@dataclass(frozen=True)
class LayerPair:
    """One compared pair of layers.

    Attributes:
        name: the key in records, reports and file names: the layer name when both models
            use the same one, else the shared stage (``backbone.layer4``).
        layer_a: dotted layer name in model A's encoder.
        layer_b: dotted layer name in model B's encoder.
    """

    name: str
    layer_a: str
    layer_b: str


def _stage_prefix(layer: str) -> str | None:
    """``backbone.layer4.1.conv2`` -> ``backbone.layer4``; ``None`` without a ResNet stage."""
    parts = layer.split(".")
    for index, part in enumerate(parts):
        if _STAGE.match(part):
            return ".".join(parts[: index + 1])
    return None


def pair_layers(
    model_a: nn.Module, model_b: nn.Module, layers: Sequence[str] | None = None
) -> list[LayerPair]:
    """The layer pairs to compare.

    With ``layers``, every name must exist in both models and is compared with itself.
    Without, each model's default layers (the last conv of each ResNet stage) are used:
    identical names pair with each other; otherwise (models of different depth) the layers
    pair by stage (``layer1`` .. ``layer4``) and are keyed by the stage.

    Raises:
        ConfigurationError: a named layer is missing in one model (the message says which),
            or the models share no ResNet stage.
    """
    if layers is not None:
        for label, model in (("--model_a", model_a), ("--model_b", model_b)):
            try:
                resolve_layers(model, layers)
            except ConfigurationError as error:
                raise ConfigurationError(
                    f"--layers must name layers of both models; {label}: {error}"
                ) from error
        return [LayerPair(name, name, name) for name in layers]
    defaults_a = default_target_layers(model_a)
    defaults_b = default_target_layers(model_b)
    if defaults_a == defaults_b:
        return [LayerPair(name, name, name) for name in defaults_a]
    stages_b = {_stage_prefix(name): name for name in defaults_b}
    pairs = []
    for name_a in defaults_a:
        stage = _stage_prefix(name_a)
        name_b = stages_b.get(stage) if stage is not None else None
        if stage is not None and name_b is not None:
            key = name_a if name_a == name_b else stage
            pairs.append(LayerPair(key, name_a, name_b))
    if not pairs:
        raise ConfigurationError(
            f"the models share no ResNet stage (model A: {shorten(defaults_a)}; model B: "
            f"{shorten(defaults_b)}); pass --layers with names present in both models"
        )
    return pairs


def to_common_grid(maps_a: torch.Tensor, maps_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Bring two sets of maps onto one grid.

    Args:
        maps_a: ``(N, Ha, Wa)`` maps in 0..1.
        maps_b: ``(N, Hb, Wb)`` maps in 0..1.

    Returns:
        Both as ``(N, max(Ha, Hb), max(Wa, Wb))`` float32 (bilinear, clamped to 0..1); a set
        already on that grid is returned unchanged.
    """
    height = max(maps_a.shape[-2], maps_b.shape[-2])
    width = max(maps_a.shape[-1], maps_b.shape[-1])

    def fit(maps: torch.Tensor) -> torch.Tensor:
        maps = maps.float()
        if maps.shape[-2:] == (height, width):
            return maps
        resized = F.interpolate(
            maps.unsqueeze(1), size=(height, width), mode="bilinear", align_corners=False
        )
        return resized.squeeze(1).clamp(0.0, 1.0)

    return fit(maps_a), fit(maps_b)


def compare_maps(
    maps_a: torch.Tensor, maps_b: torch.Tensor, top_fraction: float = 0.2
) -> tuple[torch.Tensor, torch.Tensor]:
    """Spearman correlation and top-fraction IoU of matching maps.

    Args:
        maps_a: ``(N, Ha, Wa)`` maps.
        maps_b: ``(N, Hb, Wb)`` maps (brought to a common grid with ``maps_a`` first).
        top_fraction: share of the hottest pixels forming each map's region, in ``(0, 1]``.

    Returns:
        ``((N,) spearman, (N,) top_iou)`` float32 on the maps' device.
    """
    first, second = to_common_grid(maps_a, maps_b)
    return spearman_correlation(first, second), top_fraction_iou(first, second, top_fraction)


FLAT_TOLERANCE = 1e-5
"""A raw map whose values span less than this share of its largest magnitude is flat."""


def flat_maps(raw_maps: torch.Tensor) -> torch.Tensor:
    """Which maps carry no spatial ranking.

    A layer whose output is 1x1 (or a CAM that is 0 everywhere) gives a constant raw map,
    up to float rounding from upsampling; min-max normalization would blow that rounding
    up into a noise map. Such maps are recognized on the unnormalized values.

    Args:
        raw_maps: ``(N, H, W)`` unnormalized maps.

    Returns:
        ``(N,)`` bool.
    """
    flat = raw_maps.detach().float().flatten(1)
    span = flat.amax(1) - flat.amin(1)
    return span <= FLAT_TOLERANCE * flat.abs().amax(1)


def _load_model(
    model: ThermalClassifier | str | Path, flag: str, allow_pickle: bool
) -> ThermalClassifier:
    """A :class:`ThermalClassifier` from a checkpoint path (or the one given)."""
    if isinstance(model, ThermalClassifier):
        return model
    if not isinstance(model, (str, Path)):
        raise ConfigurationError(
            f"Expected argument `{flag}` to be a checkpoint path or a ThermalClassifier but "
            f"got {type(model).__name__}"
        )
    path = Path(model)
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise ConfigurationError(
            f"{flag} '{path}' {what}; pass a checkpoint file (.pth or .ckpt) with {flag}"
        )
    try:
        return ThermalClassifier(model_path=str(path), allow_pickle=allow_pickle)
    except ThermalExplainError as error:
        raise CheckpointError(f"{flag}: {error}") from error


def _source(model: object) -> str:
    """The path of a model given by path, else ``""`` (a model object)."""
    return str(model) if isinstance(model, (str, Path)) else ""


def _same_file(model_a: object, model_b: object) -> bool:
    """Whether two models were given as paths to the same file."""
    if not isinstance(model_a, (str, Path)) or not isinstance(model_b, (str, Path)):
        return False
    try:
        return os.path.samefile(model_a, model_b)
    except OSError:
        return False


def _model_labels(model_a: object, model_b: object) -> tuple[str, str]:
    """Short names of the two models: file names, with parent folders when those clash."""
    if not isinstance(model_a, (str, Path)) or not isinstance(model_b, (str, Path)):
        name_a = Path(model_a).name if isinstance(model_a, (str, Path)) else "model A"
        name_b = Path(model_b).name if isinstance(model_b, (str, Path)) else "model B"
        return name_a, name_b
    parts_a = Path(os.path.abspath(model_a)).parts[1:]
    parts_b = Path(os.path.abspath(model_b)).parts[1:]
    for depth in range(1, max(len(parts_a), len(parts_b)) + 1):
        name_a, name_b = "/".join(parts_a[-depth:]), "/".join(parts_b[-depth:])
        if name_a != name_b:
            return name_a, name_b
    return Path(model_a).name, Path(model_b).name


@dataclass
class _Side:
    """One model of the comparison, ready to explain."""

    classifier: ThermalClassifier
    engine: CAMEngine
    label: str
    source: str

    @property
    def class_names(self) -> list[str]:
        return self.classifier.class_names

    @property
    def asymmetry(self) -> bool:
        return self.classifier.use_asymmetry

    def describe(self) -> str:
        encoder = self.classifier.encoder
        mode = "asymmetry (6-channel)" if self.asymmetry else "RGB"
        where = f"{self.source}: " if self.source else ""
        return (
            f"{where}{encoder.backbone_name}, {mode} input, classes {', '.join(self.class_names)}"
        )


@dataclass
class BatchComparison:
    """The two models' predictions and map similarities for one batch (CPU tensors).

    Attributes:
        predicted_a: ``(N,)`` class index predicted by model A.
        confidence_a: ``(N,)`` probability of that class.
        predicted_b: ``(N,)`` model B's class index.
        confidence_b: ``(N,)`` its probability.
        spearman: ``{pair name: (N,)}`` rank correlation of the two maps (NaN where ``flat``).
        top_iou: ``{pair name: (N,)}`` IoU of the two maps' top regions (NaN where ``flat``).
        flat: ``{pair name: (N,)}`` bool: either map is flat (:func:`flat_maps`), so the pair
            has nothing to compare.
        maps_a: ``{pair name: (N, H, W)}`` model A's display maps on the common grid (zeros
            where flat).
        maps_b: ``{pair name: (N, H, W)}`` model B's.
    """

    predicted_a: torch.Tensor
    confidence_a: torch.Tensor
    predicted_b: torch.Tensor
    confidence_b: torch.Tensor
    spearman: dict[str, torch.Tensor]
    top_iou: dict[str, torch.Tensor]
    flat: dict[str, torch.Tensor]
    maps_a: dict[str, torch.Tensor]
    maps_b: dict[str, torch.Tensor]


@dataclass
class _Loaded:
    """One readable image: both models' inputs and the panel thumbnail."""

    path: str
    input_a: torch.Tensor
    input_b: torch.Tensor
    original_size: tuple[int, int]
    thumbnail: np.ndarray


@dataclass
class ComparisonRun:
    """What a comparison run produced.

    Attributes:
        records: one record per image, in input order.
        output_dir: the absolute output folder.
        seconds: wall time of the run.
    """

    records: list[dict[str, Any]]
    output_dir: Path
    seconds: float

    @property
    def failed(self) -> int:
        """Images recorded with ``"status": "error"``."""
        return sum(1 for record in self.records if record["status"] != "ok")

    @property
    def results_path(self) -> Path:
        return self.output_dir / RESULTS_FILE

    @property
    def report_path(self) -> Path:
        return self.output_dir / REPORT_FILE


class ModelComparison:
    """Explain the same images with two classifiers and measure how alike their maps are.

    Each model is explained for its own predicted class, with its own class names and its
    own input mode (an RGB model and an asymmetry model each get their own preprocessing
    of the same file); the comparison uses the full-width display maps.

    Args:
        model_a: checkpoint path (any supported format) or a loaded ``ThermalClassifier``.
        model_b: the other model.
        layers: dotted names present in both models; ``None`` pairs each model's default
            layers by ResNet stage (see :func:`pair_layers`).
        method: CAM method (``gradcam``, ``gradcam++``, ``xgradcam``, ``layercam``,
            ``hirescam``).
        image_size: side of the square model input, the same for both models.
        top_fraction: share of the hottest pixels whose overlap is measured, in ``(0, 1]``.
        device: ``"cuda"``, ``"cpu"``, ... or ``None`` (a GPU when there is one).
        allow_pickle: let checkpoints hold pickled objects (trusted files only).

    Example:
        >>> comparison = ModelComparison("run1/best.pth", "run2/best.pth")
        >>> run = comparison.run(find_images("faces/", "*/*.jpg"), "model_comparison")
        >>> run.records[0]["layers"]["backbone.layer4.1.conv2"]["spearman"]

    Raises:
        ConfigurationError: an argument is invalid (the message names it).
        CheckpointError: a checkpoint cannot be loaded (the message names which).
    """

    def __init__(
        self,
        model_a: ThermalClassifier | str | Path,
        model_b: ThermalClassifier | str | Path,
        *,
        layers: Sequence[str] | None = None,
        method: str = "gradcam",
        image_size: int = 224,
        top_fraction: float = 0.2,
        device: str | torch.device | None = None,
        allow_pickle: bool = False,
    ) -> None:
        _check_fraction(top_fraction)
        self.top_fraction = float(top_fraction)
        self.device = _resolve_device(device)
        classifier_a = _load_model(model_a, "--model_a", allow_pickle)
        classifier_b = _load_model(model_b, "--model_b", allow_pickle)
        for classifier in (classifier_a, classifier_b):
            check_preprocessing(image_size, DEFAULT_MEAN, DEFAULT_STD, classifier.use_asymmetry)
        self.image_size = image_size
        self.pairs = pair_layers(classifier_a.encoder, classifier_b.encoder, layers)
        label_a, label_b = _model_labels(model_a, model_b)
        layers_a = [pair.layer_a for pair in self.pairs]
        layers_b = [pair.layer_b for pair in self.pairs]
        self.model_a = self._side(classifier_a, layers_a, method, label_a, _source(model_a))
        self.model_b = self._side(classifier_b, layers_b, method, label_b, _source(model_b))
        self.method = self.model_a.engine.method.name
        self.same_file = _same_file(model_a, model_b)

    def _side(
        self,
        classifier: ThermalClassifier,
        layers: list[str],
        method: str,
        label: str,
        source: str,
    ) -> _Side:
        classifier.to(self.device)  # the engine runs it in eval mode and restores its mode
        engine = CAMEngine(
            classifier.encoder,
            layers=layers,
            method=method,
            class_names=classifier.class_names,
            asymmetry=classifier.use_asymmetry,
        )
        return _Side(classifier, engine, label, source)

    @property
    def layer_names(self) -> list[str]:
        """The compared pairs' names, shallowest first."""
        return [pair.name for pair in self.pairs]

    def compare_batch(
        self,
        images_a: torch.Tensor,
        images_b: torch.Tensor,
        original_sizes: Sequence[tuple[int, int]] | None = None,
    ) -> BatchComparison:
        """Explain one batch with both models and compare every layer pair.

        Args:
            images_a: ``(N, C_a, S, W_a)`` model A input on ``self.device``.
            images_b: ``(N, C_b, S, W_b)`` model B input (the same images).
            original_sizes: ``N`` ``(height, width)`` of the files.

        Returns:
            A :class:`BatchComparison` on the CPU.
        """
        result_a = self.model_a.engine(images_a, original_sizes=original_sizes)
        result_b = self.model_b.engine(images_b, original_sizes=original_sizes)
        spearman, top_iou, flat, maps_a, maps_b = {}, {}, {}, {}, {}
        for pair in self.pairs:
            flat_a = flat_maps(result_a.raw_maps[pair.layer_a][:, 0])
            flat_b = flat_maps(result_b.raw_maps[pair.layer_b][:, 0])
            first, second = to_common_grid(
                result_a.display_maps[pair.layer_a][:, 0],
                result_b.display_maps[pair.layer_b][:, 0],
            )
            first = first.masked_fill(flat_a[:, None, None], 0.0)
            second = second.masked_fill(flat_b[:, None, None], 0.0)
            either = flat_a | flat_b
            rho, iou = compare_maps(first, second, self.top_fraction)
            spearman[pair.name] = rho.masked_fill(either, math.nan).cpu()
            top_iou[pair.name] = iou.masked_fill(either, math.nan).cpu()
            flat[pair.name] = either.cpu()
            maps_a[pair.name] = first.cpu()
            maps_b[pair.name] = second.cpu()
        index = torch.arange(images_a.shape[0], device=result_a.predicted.device)
        return BatchComparison(
            predicted_a=result_a.predicted.cpu(),
            confidence_a=result_a.probabilities[index, result_a.predicted].float().cpu(),
            predicted_b=result_b.predicted.cpu(),
            confidence_b=result_b.probabilities[index, result_b.predicted].float().cpu(),
            spearman=spearman,
            top_iou=top_iou,
            flat=flat,
            maps_a=maps_a,
            maps_b=maps_b,
        )

    def agree(self, class_a: int, class_b: int) -> bool:
        """Whether two predictions are the same class (see :meth:`agreement_rule`)."""
        names_a, names_b = self.model_a.class_names, self.model_b.class_names
        if self._by_index():
            return class_a == class_b
        return names_a[class_a] == names_b[class_b]

    def _by_index(self) -> bool:
        names_a, names_b = self.model_a.class_names, self.model_b.class_names
        return set(names_a) != set(names_b) and len(names_a) == len(names_b)

    def agreement_rule(self) -> str:
        """One sentence on how predictions are matched between the models."""
        if self._by_index():
            return (
                "the models name their classes differently, so predictions are matched by "
                "class index"
            )
        return "predictions are matched by class name"

    def run(
        self,
        paths: Sequence[str | Path],
        output_dir: str | Path = DEFAULT_OUTPUT_DIR,
        *,
        batch_size: int = 16,
        colormap: str = DEFAULT_COLORMAP,
        quiet: bool = True,
    ) -> ComparisonRun:
        """Compare the models on ``paths``; write panels, the JSON records and the report.

        Unreadable images are recorded with ``"status": "error"`` and never stop the run.

        Raises:
            ConfigurationError: bad ``batch_size`` or ``colormap``.
            ThermalExplainError: ``output_dir`` cannot be written.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigurationError(f"--batch_size must be a positive integer, got {batch_size!r}")
        lut = get_colormap(colormap)
        started = time.perf_counter()
        root = _prepare_output(Path(output_dir))
        names = NameResolver([str(path) for path in paths])
        records: list[dict[str, Any]] = []
        pending: list[Future[None]] = []
        with (
            ThreadPoolExecutor(max_workers=2) as pool,
            Progress(len(paths), disable=quiet, description="comparing") as progress,
        ):
            for chunk in _chunks([str(path) for path in paths], batch_size):
                items: list[_Loaded] = []
                slots: list[int] = []
                for path in chunk:
                    loaded = self._load(path)
                    if isinstance(loaded, str):
                        records.append(_error_record(path, loaded))
                        continue
                    slots.append(len(records))
                    records.append({"image_path": path, "status": "error"})
                    items.append(loaded)
                previous = pending
                pending = self._submit(items, slots, records, names, root, lut, pool)
                _wait(previous)
                progress.update(len(chunk))
            _wait(pending)
        report = build_report(records, self)
        text = json.dumps(records, ensure_ascii=False, indent=2, allow_nan=False)
        _write_text(root / RESULTS_FILE, text + "\n", root)
        _write_text(root / REPORT_FILE, report, root)
        return ComparisonRun(records, root, time.perf_counter() - started)

    def _load(self, path: str) -> _Loaded | str:
        """Read and preprocess one image for both models; the error text if it fails."""
        try:
            image = read_image(path)
            input_a = to_model_input(image, self.image_size, use_asymmetry=self.model_a.asymmetry)
            input_b = (
                input_a
                if self.model_b.asymmetry == self.model_a.asymmetry
                else to_model_input(image, self.image_size, use_asymmetry=self.model_b.asymmetry)
            )
        except (ThermalExplainError, OSError, ValueError, cv2.error) as error:
            return " ".join(str(error).split()) or type(error).__name__
        return _Loaded(path, input_a, input_b, image.shape[:2], _thumbnail(image))

    def _submit(
        self,
        items: list[_Loaded],
        slots: list[int],
        records: list[dict[str, Any]],
        names: NameResolver,
        root: Path,
        lut: np.ndarray,
        pool: ThreadPoolExecutor,
    ) -> list[Future[None]]:
        """Compare a batch, put its records at ``slots`` and queue its panels on ``pool``."""
        if not items:
            return []
        images_a = torch.stack([item.input_a for item in items]).to(self.device)
        if all(item.input_a is item.input_b for item in items):
            images_b = images_a
        else:
            images_b = torch.stack([item.input_b for item in items]).to(self.device)
        sizes = [item.original_size for item in items]
        result = self.compare_batch(images_a, images_b, sizes)
        futures = []
        for index, (item, slot) in enumerate(zip(items, slots, strict=True)):
            records[slot], jobs = self._record(item, index, result, names, root)
            futures.append(pool.submit(_write_panels, item.thumbnail, jobs, lut))
        return futures

    def _record(
        self,
        item: _Loaded,
        index: int,
        result: BatchComparison,
        names: NameResolver,
        root: Path,
    ) -> tuple[dict[str, Any], list[tuple[Path, np.ndarray, np.ndarray, list[str], list[str]]]]:
        """One image's record and its panel jobs ``(path, map_a, map_b, title, captions)``."""
        class_a = int(result.predicted_a[index])
        class_b = int(result.predicted_b[index])
        label_a = self.model_a.class_names[class_a]
        label_b = self.model_b.class_names[class_b]
        confidence_a = round(float(result.confidence_a[index]), 4)
        confidence_b = round(float(result.confidence_b[index]), 4)
        agree = self.agree(class_a, class_b)
        stem = names.stem_for(item.path)
        layers: dict[str, dict[str, Any]] = {}
        jobs = []
        for pair in self.pairs:
            rho = _finite(float(result.spearman[pair.name][index]))
            iou = _finite(float(result.top_iou[pair.name][index]))
            panel = inside(root, f"{PANEL_DIR}/{stem}_{layer_token(pair.name)}{PANEL_SUFFIX}")
            layers[pair.name] = {
                "layer_a": pair.layer_a,
                "layer_b": pair.layer_b,
                "spearman": rho,
                "top_iou": iou,
                "flat_map": bool(result.flat[pair.name][index]),
                "panel_path": os.fspath(panel),
            }
            percent = f"{self.top_fraction * 100:g}%"
            title = [
                f"A: {label_a} ({confidence_a:.2f})  B: {label_b} ({confidence_b:.2f})  "
                f"{'agree' if agree else 'disagree'}",
                f"{pair.name}: Spearman {_show(rho)}, top-{percent} IoU {_show(iou)}",
            ]
            captions = ["original", f"A: {self.model_a.label}", f"B: {self.model_b.label}"]
            jobs.append(
                (
                    panel,
                    result.maps_a[pair.name][index].numpy(),
                    result.maps_b[pair.name][index].numpy(),
                    title,
                    captions,
                )
            )
        record = {
            "image_path": item.path,
            "status": "ok",
            "model_a": {
                "predicted_class": class_a,
                "predicted_label": label_a,
                "confidence": confidence_a,
            },
            "model_b": {
                "predicted_class": class_b,
                "predicted_label": label_b,
                "confidence": confidence_b,
            },
            "agree": agree,
            "layers": layers,
        }
        return record, jobs


def _check_fraction(value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise ConfigurationError(
            f"--top_fraction must be a number in (0, 1] but got {value!r}; e.g. 0.2"
        )


def _resolve_device(device: str | torch.device | None) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ConfigurationError(
            f"--device {device!r} is not a device; pass cpu, cuda or cuda:N"
        ) from error
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ConfigurationError(
            f"--device {device} was asked for but no CUDA GPU is available; pass --device cpu"
        )
    return resolved


def _prepare_output(output_dir: Path) -> Path:
    """Create ``output_dir/panels`` and return ``output_dir`` as an absolute path."""
    root = Path(os.path.abspath(output_dir))
    try:
        (root / PANEL_DIR).mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ThermalExplainError(
            f"--output_dir '{root}' cannot be created ({error.strerror or error}); "
            "choose another --output_dir"
        ) from error
    if not os.access(root / PANEL_DIR, os.W_OK | os.X_OK):
        raise ThermalExplainError(
            f"--output_dir '{root}' is not writable; choose another --output_dir"
        )
    return root


def _write_text(path: Path, text: str, root: Path) -> None:
    try:
        atomic_write_text(path, text)
    except OSError as error:
        raise ThermalExplainError(
            f"cannot write '{path.name}' in --output_dir '{root}' ({error.strerror or error}); "
            "free disk space or choose another --output_dir"
        ) from error


def _write_panels(
    thumbnail: np.ndarray,
    jobs: Sequence[tuple[Path, np.ndarray, np.ndarray, list[str], list[str]]],
    lut: np.ndarray,
) -> None:
    """Render and write one image's panels (runs on a worker thread)."""
    for path, map_a, map_b, title, captions in jobs:
        panel = comparison_panel(thumbnail, map_a, map_b, lut, title, captions)
        try:
            write_bytes(os.fspath(path), encode_png(panel))
        except OSError as error:
            raise ThermalExplainError(
                f"cannot write panel '{path}' ({error.strerror or error}); free disk space or "
                "choose another --output_dir"
            ) from error


def _wait(futures: Sequence[Future[None]]) -> None:
    """Wait for ``futures``; re-raise the first failure."""
    for future in futures:
        future.result()


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _error_record(path: str, error: str) -> dict[str, Any]:
    return {"image_path": path, "status": "error", "error": error}


def _finite(value: float) -> float | None:
    return round(value, 4) if math.isfinite(value) else None


def _show(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"
