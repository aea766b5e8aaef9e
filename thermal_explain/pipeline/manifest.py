"""``run_manifest.json``: what made the results in an output folder, checked before resuming.

Every run writes the manifest (atomically) into its ``output_dir``: a fingerprint of the
weights, the preprocessing and where it came from, the method, layers, target, fusion and
metric settings, the colormap and overlay weights, the package version. A run that finds
results in its folder resumes only when everything that changes results is the same;
otherwise it stops before any work with one line naming the first difference and the two
ways out (``--overwrite``, or another ``--output_dir``). A folder with results but no
manifest (from an older version) is treated the same way: nothing says it matches.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from thermal_explain import __version__
from thermal_explain.errors import ThermalExplainError
from thermal_explain.output import journal
from thermal_explain.output.atomic import atomic_write_text

MANIFEST_FILE = "run_manifest.json"

RECORDED_ONLY = frozenset({"tool", "created", "updated", "path", "preprocessing_from"})
"""Keys that describe a run without changing its results (never compared)."""

_PREFIXES = {
    "preprocessing": "the preprocessing's ",
    "metric_options": "the metric setting ",
    "output": "the drawing setting ",
    "readout": "the readout's ",
}

_LABELS = {
    "fingerprint": "the model's weights",
    "class_names": "the class names",
    "method": "the CAM method",
    "layers": "the layers",
    "target": "the explained class",
    "fuse": "the fused map",
    "precision": "the precision",
    "metrics": "the metrics",
    "version": "the thermal-explain version",
    "kind": "the kind of run",
    "backbone": "the backbone",
    "lesion_polarity": "the lesion polarity",
}


def weights_fingerprint(state: Mapping[str, torch.Tensor]) -> str:
    """``sha256:<hex>`` over every tensor's name, dtype, shape and bytes (sorted by name)."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().to("cpu").contiguous().reshape(-1)
        digest.update(f"{name}|{tensor.dtype}|{tuple(state[name].shape)}|".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes())
    return f"sha256:{digest.hexdigest()}"


def model_facts(
    state: Mapping[str, torch.Tensor],
    class_names: list[str],
    path: str | None,
    backbone: str | None = None,
) -> dict[str, Any]:
    """The manifest's ``model`` entry."""
    return {
        "path": path,
        "fingerprint": weights_fingerprint(state),
        "backbone": backbone,
        "class_names": list(class_names),
    }


def analysis_manifest(
    model: dict[str, Any],
    preprocessing: Mapping[str, Any] | None,
    preprocessing_from: str,
    explainer_settings: Mapping[str, Any],
    output: Mapping[str, Any],
) -> dict[str, Any]:
    """The manifest of an explanation run (``analyze``, the API, ``predict``)."""
    return new_manifest(
        "analysis",
        model=model,
        preprocessing=None if preprocessing is None else dict(preprocessing),
        preprocessing_from=preprocessing_from,
        **explainer_settings,
        output=dict(output),
    )


def new_manifest(kind: str, **entries: Any) -> dict[str, Any]:
    """A manifest of ``kind`` (``"analysis"`` or ``"comparison"``) with ``entries``."""
    return {"tool": "thermal-explain", "version": __version__, "kind": kind, **entries}


def read_manifest(output_dir: Path) -> dict[str, Any] | None:
    """The folder's manifest, or ``None`` when it has none (or an unreadable one)."""
    try:
        data = json.loads((output_dir / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def holds_results(output_dir: Path, results_file: str) -> bool:
    """Whether the folder holds results a run could resume (journals or a results file)."""
    return bool(journal.journal_files(output_dir)) or (output_dir / results_file).is_file()


def check_and_write(output_dir: Path, manifest: dict[str, Any], results_file: str) -> None:
    """Refuse to resume another run's results; then write ``manifest`` into the folder.

    Raises:
        ThermalExplainError: the folder holds results made otherwise (the message names the
            first difference), or the manifest cannot be written.
    """
    previous = read_manifest(output_dir)
    if holds_results(output_dir, results_file):
        if previous is None:
            raise ThermalExplainError(
                f"output_dir '{output_dir}' holds results without a {MANIFEST_FILE} (made by "
                "an older version), so nothing says they match this run; pass --overwrite to "
                "start over, or choose another --output_dir"
            )
        difference = first_difference(previous, manifest)
        if difference is not None:
            raise ThermalExplainError(
                f"output_dir '{output_dir}' holds results of another run: {difference}; pass "
                "--overwrite to start over, or choose another --output_dir"
            )
    now = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    created = previous.get("created", now) if previous is not None else now
    stamped = {**manifest, "created": created, "updated": now}
    try:
        text = json.dumps(stamped, ensure_ascii=False, indent=2, default=str)
        atomic_write_text(output_dir / MANIFEST_FILE, text + "\n")
    except OSError as error:
        raise ThermalExplainError(
            f"cannot write {MANIFEST_FILE} in output_dir '{output_dir}' "
            f"({error.strerror or error}); free disk space or choose another --output_dir"
        ) from error


def first_difference(
    before: Mapping[str, Any], now: Mapping[str, Any], prefix: str = ""
) -> str | None:
    """The first setting that changes results and differs, in words; ``None`` when none."""
    for key in sorted(set(before) | set(now), key=_order):
        if key in RECORDED_ONLY:
            continue
        old, new = before.get(key), now.get(key)
        if isinstance(old, Mapping) and isinstance(new, Mapping):
            inner = first_difference(old, new, _PREFIXES.get(key, prefix))
            if inner is not None:
                return inner
        elif _normal(old) != _normal(new):
            label = _LABELS.get(key) if not prefix else None
            return f"{label or prefix + key} {_short(old)} then, {_short(new)} now"
    return None


_ORDER = (
    "kind", "version", "model", "models", "a", "b", "fingerprint", "class_names", "backbone",
    "preprocessing", "method", "layers", "target", "fuse", "precision", "metrics",
    "metric_options", "output",
)  # fmt: skip


def _order(key: str) -> tuple[int, str]:
    return (_ORDER.index(key) if key in _ORDER else len(_ORDER), key)


def _normal(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _short(value: Any) -> str:
    if isinstance(value, str) and value.startswith("sha256:"):
        return value[:19] + "..."
    if isinstance(value, Mapping):
        return ", ".join(f"{key} {_short(item)}" for key, item in value.items())
    return json.dumps(value, ensure_ascii=False, default=str)
