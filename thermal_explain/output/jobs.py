"""Explained images as worker jobs: plain numpy and JSON values, safe to send to a process."""

from __future__ import annotations

from typing import Any

import numpy as np

from thermal_explain.output.records import describe_error, error_record, to_jsonable
from thermal_explain.output.worker import ImageJob, JobResult, LayerJob
from thermal_explain.types import ExplainedImage


def image_job(item: ExplainedImage, stem: str) -> ImageJob:
    """The numpy job of one explained image: what a worker needs, nothing on the GPU."""
    if not isinstance(item, ExplainedImage):
        raise TypeError(f"expected an ExplainedImage, got {type(item)}")
    layers = tuple(
        LayerJob(
            layer=name,
            display_map=as_map(explanation.display_map),
            raw_map=as_map(explanation.raw_map),
            statistics=to_jsonable(dict(explanation.statistics)),
            side_attribution=(
                None
                if explanation.side_attribution is None
                else to_jsonable(dict(explanation.side_attribution))
            ),
            metrics=to_jsonable(dict(explanation.metrics)),
        )
        for name, explanation in item.layers.items()
    )
    return ImageJob(
        image_path=str(item.image_path),
        stem=stem,
        predicted_class=int(item.predicted_class),
        predicted_label=str(item.predicted_label),
        confidence=float(item.confidence),
        true_label=None if item.true_label is None else str(item.true_label),
        target_label=str(item.target_label),
        layers=layers,
        pixels=item.pixels,
        background=as_background(item.background),
        original=as_original(item.original),
        celsius=as_celsius(item.celsius),
        record_fields=record_fields(item),
    )


def record_fields(item: ExplainedImage) -> dict[str, Any]:
    """The record's top-level entries besides the prediction: what was read, the readout."""
    fields: dict[str, Any] = {"input_kind": item.input_kind}
    if item.temperature is not None:
        fields["temperature"] = to_jsonable(dict(item.temperature))
    if item.thermal_asymmetry is not None:
        fields["thermal_asymmetry"] = to_jsonable(dict(item.thermal_asymmetry))
    return fields


def as_map(value: Any) -> np.ndarray:
    """A CPU float32 numpy copy of a 2-D map given as a tensor or an array."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().float().numpy()
    array = np.array(value, dtype=np.float32, copy=True)
    if array.ndim > 2:
        array = np.squeeze(array)
    if array.ndim != 2:
        raise ValueError(f"expected a 2-D map, got shape {tuple(array.shape)}")
    return array


def as_background(value: Any) -> np.ndarray | None:
    """A ``(H, W)`` uint8 desaturated original, or ``None`` when there is none."""
    if value is None:
        return None
    array = np.asarray(value)
    if array.dtype != np.uint8 or array.ndim != 2:
        raise ValueError(f"expected a (H, W) uint8 background, got {array.dtype} {array.shape}")
    return array


def as_original(value: Any) -> np.ndarray | None:
    """A ``(h, w, 3)`` uint8 picture in colour, or ``None`` when there is none."""
    if value is None:
        return None
    array = np.asarray(value)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"expected an (h, w, 3) uint8 original, got {array.dtype} {array.shape}")
    return array


def as_celsius(value: Any) -> np.ndarray | None:
    """``(H, W)`` float32 degrees Celsius, or ``None`` when there are none."""
    if value is None:
        return None
    array = np.asarray(value)
    if array.ndim != 2 or not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"expected (H, W) float temperatures, got {array.dtype} {array.shape}")
    return array.astype(np.float32, copy=False)


def failed_result(job: ImageJob, error: BaseException) -> JobResult:
    """The error record of a job whose outputs could not be written (its prediction kept)."""
    record = error_record(
        job.image_path,
        f"writing outputs failed: {describe_error(error)}",
        true_label=job.true_label,
        predicted_class=job.predicted_class,
        predicted_label=job.predicted_label,
        confidence=job.confidence,
    )
    return JobResult(record, job.stem)
