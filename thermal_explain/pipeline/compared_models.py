"""The two models of a comparison: loaded, labelled, and each with its own engine."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from thermal_explain.cam import CAMEngine
from thermal_explain.data.preprocessing import Preprocessing, resolve_preprocessing
from thermal_explain.errors import CheckpointError, ConfigurationError, ThermalExplainError
from thermal_explain.modeling.classifier import ThermalClassifier


@dataclass
class ComparedModel:
    """One model of the comparison, ready to explain."""

    classifier: ThermalClassifier
    engine: CAMEngine
    preprocessing: Preprocessing
    label: str
    source: str

    @property
    def class_names(self) -> list[str]:
        return self.classifier.class_names

    @property
    def asymmetry(self) -> bool:
        return self.classifier.use_asymmetry

    def describe(self) -> str:
        """One line: where the model comes from, its backbone, input mode and classes."""
        encoder = self.classifier.encoder
        mode = "asymmetry (6-channel)" if self.asymmetry else "RGB"
        where = f"{self.source}: " if self.source else ""
        names = ", ".join(self.class_names)
        return f"{where}{encoder.backbone_name}, {mode} input, classes {names}"


def compared_model(
    classifier: ThermalClassifier,
    label: str,
    source: str,
    layers: Sequence[str],
    method: str,
    image_size: int | None,
) -> ComparedModel:
    """``classifier`` with its engine on ``layers`` and the preprocessing it was trained on
    (``image_size`` overrides the size, with a warning when it differs)."""
    preprocessing, _ = resolve_preprocessing(
        classifier.preprocessing, image_size, classifier.use_asymmetry, source or label
    )
    engine = CAMEngine(
        classifier.encoder,
        layers=layers,
        method=method,
        class_names=classifier.class_names,
        asymmetry=classifier.use_asymmetry,
    )
    return ComparedModel(classifier, engine, preprocessing, label, source)


def load_model(
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


def same_file(model_a: object, model_b: object) -> bool:
    """Whether two models were given as paths to the same file."""
    if not isinstance(model_a, (str, Path)) or not isinstance(model_b, (str, Path)):
        return False
    try:
        return os.path.samefile(model_a, model_b)
    except OSError:
        return False


def model_labels(model_a: object, model_b: object) -> tuple[str, str]:
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


def model_source(model: object) -> str:
    """The path of a model given by path, else ``""`` (a model object)."""
    return str(model) if isinstance(model, (str, Path)) else ""
