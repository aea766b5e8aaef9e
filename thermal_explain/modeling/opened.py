"""A trained model opened for ``ThermalClassifier(model_path=...)``: its encoder, checked
against the options given, and the class names and preprocessing it stores."""

from __future__ import annotations

import logging
from typing import Any

from thermal_explain.checks import check_class_names
from thermal_explain.errors import CheckpointError, ConfigurationError
from thermal_explain.modeling.checkpoints import load_encoder
from thermal_explain.modeling.encoder import ASYMMETRY_CHANNELS, ThermalEncoder

log = logging.getLogger(__name__)


def open_trained_model(
    model_path: str,
    architecture: dict[str, Any],
    class_names: list[str] | None,
    use_asymmetry: bool,
    projection_dim: int,
    allow_pickle: bool,
) -> tuple[ThermalEncoder, list[str] | None, dict[str, Any] | None]:
    """Encoder, stored class names and preprocessing from ``model_path``, checked.

    ``architecture`` holds the explicit ``backbone``/``in_channels``/``num_classes`` (or None).
    """
    encoder, hparams = load_encoder(
        model_path, projection_dim=projection_dim, allow_pickle=allow_pickle, **architecture
    )
    if class_names is not None and len(class_names) != encoder.num_classes:
        raise CheckpointError(
            f"checkpoint '{model_path}' has {encoder.num_classes} classes but class_names has "
            f"{len(class_names)} names; pass {encoder.num_classes} class names or drop "
            "class_names"
        )
    if use_asymmetry and encoder.in_channels != ASYMMETRY_CHANNELS:
        raise CheckpointError(
            f"checkpoint '{model_path}' has {encoder.in_channels} input channels but "
            f"use_asymmetry=True needs {ASYMMETRY_CHANNELS}; drop --use_asymmetry or pass a "
            f"{ASYMMETRY_CHANNELS}-channel checkpoint"
        )
    if not use_asymmetry and encoder.in_channels == ASYMMETRY_CHANNELS:
        log.warning("checkpoint '%s' has 6 input channels: using asymmetry mode", model_path)
    names = hparams.get("class_names")
    try:
        names = None if names is None else check_class_names(names)
    except ConfigurationError:
        names = None
    if names is not None and len(names) != encoder.num_classes:
        log.warning(
            "checkpoint '%s' stores %d class names for %d classes; ignoring the names",
            model_path,
            len(names),
            encoder.num_classes,
        )
        names = None
    preprocessing = hparams.get("preprocessing")
    return encoder, names, dict(preprocessing) if isinstance(preprocessing, dict) else None
