"""Read encoder weights from any checkpoint format the project meets, and load them."""

from __future__ import annotations

import logging
import pickle
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from thermal_explain.errors import CheckpointError, ConfigurationError, shorten
from thermal_explain.modeling.encoder import BACKBONES, ThermalEncoder

log = logging.getLogger(__name__)

WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "encoder")
HPARAM_KEYS = ("hyper_parameters", "hparams", "config")
PREFIXES = ("module.", "model.", "encoder.", "_orig_mod.")
ENCODER_PARTS = ("backbone.", "projection_head.", "classifier.")
_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_PROTO = b"\x80"
_TRUSTED_HINT = "pass allow_pickle=True (--allow_pickle) only if you trust the file"


@dataclass(frozen=True)
class Architecture:
    """What a state dict says about the encoder that produced it."""

    backbone: str
    in_channels: int
    num_classes: int | None
    projection_dim: int | None


@dataclass(frozen=True)
class TrainedWeights:
    """The weights a run explains and what they were trained with.

    Attributes:
        state: encoder weights (``backbone.*``, ``projection_head.*``, ``classifier.*``).
        class_names: names by class index, or ``None`` when the file does not say.
        preprocessing: the stored preprocessing record (``None`` when absent).
        source: ``"checkpoint 'path'"`` (or ``"the model in memory"``), for messages.
        path: the file, when the weights come from one.
    """

    state: Mapping[str, torch.Tensor]
    class_names: list[str] | None
    preprocessing: Mapping[str, Any] | None
    source: str
    path: str | None


def checkpoint_weights(path: str | Path, allow_pickle: bool = False) -> TrainedWeights:
    """The encoder weights, class names and preprocessing record of a checkpoint file.

    Raises:
        CheckpointError: the file cannot be read (see :func:`read_checkpoint`).
    """
    state, hparams = read_checkpoint(path, allow_pickle=allow_pickle)
    names = hparams.get("class_names")
    names = list(names) if isinstance(names, (list, tuple)) else None
    stored = hparams.get("preprocessing")
    return TrainedWeights(
        normalize_state_dict(state),
        names,
        dict(stored) if isinstance(stored, Mapping) else None,
        f"checkpoint '{path}'",
        str(path),
    )


def read_checkpoint(
    path: str | Path, allow_pickle: bool = False
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The raw weights and the hyper-parameters (``{}`` if none) of a checkpoint file.

    Accepts a Lightning ``.ckpt``, a plain ``state_dict``, a dict wrapping one under
    ``state_dict``, ``model_state_dict``, ``model`` or ``encoder`` and, with
    ``allow_pickle``, a pickled whole ``nn.Module``. Key prefixes are kept; see
    :func:`normalize_state_dict`.

    Raises:
        CheckpointError: missing, empty, truncated or foreign file; pickled objects without
            ``allow_pickle``; no weights inside.
    """
    path = Path(path)
    content = _load_file(path, allow_pickle)
    hparams = _hyper_parameters(content)
    state = _find_state_dict(content, depth=3)
    if not state:
        keys = shorten([str(key) for key in content]) if isinstance(content, Mapping) else ""
        found = f"found keys: {keys}" if keys else f"found a {type(content).__name__}"
        raise CheckpointError(
            f"checkpoint '{path}' holds no model weights ({found}); pass a state_dict or a "
            f"dict with one of {', '.join(WRAPPER_KEYS)}"
        )
    return state, hparams


def normalize_state_dict(state: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Strip ``module.``/``model.``/``encoder.`` prefixes (stacked too) and keep encoder keys.

    ``{"model.encoder.backbone.conv1.weight": w, "optimizer_step": t}`` ->
    ``{"backbone.conv1.weight": w}``. The input is left unchanged.
    """
    normalized: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        name = str(key)
        while not name.startswith(ENCODER_PARTS):
            prefix = next((p for p in PREFIXES if name.startswith(p)), None)
            if prefix is None:
                break
            name = name[len(prefix) :]
        if name.startswith(ENCODER_PARTS) and isinstance(value, torch.Tensor):
            normalized.setdefault(name, value)
    return normalized


def infer_architecture(state: Mapping[str, torch.Tensor]) -> Architecture:
    """Backbone depth, input channels, classes and projection size of normalized weights.

    Raises:
        CheckpointError: the weights hold no supported ResNet backbone.
    """
    conv1 = state.get("backbone.conv1.weight")
    if conv1 is None or conv1.ndim != 4:
        raise CheckpointError(
            "the weights hold no ResNet backbone (no backbone.conv1.weight); pass a "
            "checkpoint of this project's encoder"
        )
    bottleneck = any(key.startswith("backbone.layer1.0.conv3.") for key in state)
    blocks = {key.split(".")[2] for key in state if key.startswith("backbone.layer3.")}
    depth = {(False, 2): "resnet18", (False, 6): "resnet34", (True, 6): "resnet50"}
    name = depth.get((bottleneck, len(blocks)))
    if name is None:
        kind = "bottleneck" if bottleneck else "basic"
        raise CheckpointError(
            f"the weights hold a ResNet with {len(blocks)} {kind} blocks in layer3, which is "
            f"not one of {', '.join(BACKBONES)}; pass a checkpoint of a supported backbone"
        )
    return Architecture(
        backbone=name,
        in_channels=int(conv1.shape[1]),
        num_classes=_last_linear_outputs(state, "classifier."),
        projection_dim=_last_linear_outputs(state, "projection_head."),
    )


def load_encoder(
    path: str | Path,
    *,
    backbone: str | None = None,
    in_channels: int | None = None,
    num_classes: int | None = None,
    projection_dim: int | None = None,
    allow_pickle: bool = False,
) -> tuple[ThermalEncoder, dict[str, Any]]:
    """A :class:`ThermalEncoder` built to fit ``path``'s weights, and its hyper-parameters.

    ``backbone``, ``in_channels`` and ``num_classes`` are inferred when ``None`` and must
    match the weights when given. Weights load strictly, except that a checkpoint without
    a projection head (a classifier-only export) loads with a random head of
    ``projection_dim`` outputs (default 128) and a warning; with a head, the head's size wins.

    Raises:
        CheckpointError: unreadable file, or weights that do not fit (names the keys).
    """
    state, hparams = read_checkpoint(path, allow_pickle=allow_pickle)
    weights = normalize_state_dict(state)
    if not any(key.startswith("backbone.") for key in weights):
        raise CheckpointError(
            f"checkpoint '{path}' holds no encoder weights (found keys: "
            f"{shorten(list(state))}); expected keys like backbone.conv1.weight, optionally "
            f"prefixed by {', '.join(PREFIXES[:3])}"
        )
    try:
        arch = infer_architecture(weights)
    except CheckpointError as error:
        raise CheckpointError(f"checkpoint '{path}': {error}") from error
    _check_matches(path, arch, backbone, in_channels, num_classes)
    if arch.num_classes is None:
        raise CheckpointError(
            f"checkpoint '{path}' holds no classifier weights (classifier.weight); pass a "
            "checkpoint saved after training the classifier (an encoder without one, e.g. "
            "from thermal-explain pretrain, is a start for fit --model.pretrained)"
        )
    head_size = arch.projection_dim or projection_dim or 128
    encoder = _encoder_from_weights(arch, head_size, weights)
    if encoder is None:
        encoder = ThermalEncoder(arch.backbone, arch.in_channels, arch.num_classes, head_size)
        _load_strict(path, encoder, weights)
    return encoder, hparams


def _encoder_from_weights(
    arch: Architecture, head_size: int, weights: dict[str, torch.Tensor]
) -> ThermalEncoder | None:
    """The encoder built around complete ``weights`` without random initialization first.

    Initializing a ResNet's parameters only to overwrite them costs about as much as
    reading the file, so the modules are created on the ``meta`` device and take the
    checkpoint's tensors. Returns ``None`` unless ``weights`` fit exactly (names, shapes
    and dtypes; a missing ``num_batches_tracked`` is zero), leaving those cases to
    :func:`_load_strict` and its messages.
    """
    with torch.device("meta"):
        encoder = ThermalEncoder(arch.backbone, arch.in_channels, arch.num_classes, head_size)
    expected = encoder.state_dict()
    complete = dict(weights)
    for key, tensor in expected.items():
        if key not in complete and key.endswith("num_batches_tracked"):
            complete[key] = torch.zeros((), dtype=tensor.dtype)
    if complete.keys() != expected.keys() or any(
        complete[key].shape != expected[key].shape or complete[key].dtype != expected[key].dtype
        for key in expected
    ):
        return None
    encoder.load_state_dict(complete, strict=True, assign=True)
    if any(t.is_meta for t in (*encoder.parameters(), *encoder.buffers())):
        return None
    return encoder


def _load_file(path: Path, allow_pickle: bool) -> Any:
    """``torch.load`` on CPU with one-line errors for every way a file can be wrong."""
    if not path.exists():
        raise CheckpointError(f"checkpoint '{path}' does not exist; check --model_path")
    if not path.is_file():
        raise CheckpointError(f"checkpoint '{path}' is not a file; pass the .ckpt/.pth file")
    try:
        with path.open("rb") as stream:
            head = stream.read(8)
    except OSError as error:
        raise CheckpointError(
            f"checkpoint '{path}' cannot be read ({error.strerror or error}); check that you "
            "may read it (permissions) or copy it somewhere you can"
        ) from error
    if not head:
        raise CheckpointError(f"checkpoint '{path}' is empty; re-copy or re-save it")
    if not (head.startswith(_ZIP_MAGIC) or head.startswith(_PICKLE_PROTO)):
        raise CheckpointError(
            f"'{path}' is not a PyTorch checkpoint (it looks like {_describe(head)}); pass a "
            ".ckpt or .pth file written by torch.save"
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=not allow_pickle)
    except pickle.UnpicklingError as error:
        if not allow_pickle and str(error).startswith("Weights only load failed"):
            found = re.search(r"GLOBAL ([\w.]+)", str(error))
            what = f" ({found.group(1)})" if found else ""
            raise CheckpointError(
                f"checkpoint '{path}' holds pickled Python objects or code{what} that "
                f"weights-only loading refuses; {_TRUSTED_HINT}"
            ) from None
        raise CheckpointError(_corrupt(path, error)) from error
    except (ModuleNotFoundError, AttributeError) as error:
        raise CheckpointError(
            f"checkpoint '{path}' needs Python code that cannot be imported ({error}); load "
            "it where that code is installed, or save its state_dict instead"
        ) from error
    except Exception as error:
        raise CheckpointError(_corrupt(path, error)) from error


def _describe(head: bytes) -> str:
    if head.startswith(b"\xff\xd8"):
        return "a JPEG image"
    if head.startswith(b"\x89PNG"):
        return "a PNG image"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return "some other binary file"
    return "a text file"


def _corrupt(path: Path, error: Exception) -> str:
    reason = str(error).strip().splitlines()[0][:120] if str(error).strip() else "end of file"
    return (
        f"checkpoint '{path}' is truncated or corrupt ({type(error).__name__}: {reason}); "
        "re-copy or re-save it"
    )


def _hyper_parameters(content: Any) -> dict[str, Any]:
    """Lightning ``hyper_parameters`` (or ``hparams``, ``config``), and top-level
    ``class_names`` and ``preprocessing`` of a plain dict."""
    if isinstance(content, nn.Module):
        found = getattr(content, "hparams", None)
        return dict(found) if isinstance(found, Mapping) else {}
    if not isinstance(content, Mapping):
        return {}
    hparams: dict[str, Any] = {}
    for key in HPARAM_KEYS:
        if isinstance(content.get(key), Mapping):
            hparams.update(content[key])
    if isinstance(content.get("class_names"), (list, tuple)):
        hparams.setdefault("class_names", list(content["class_names"]))
    if isinstance(content.get("preprocessing"), Mapping):
        hparams.setdefault("preprocessing", dict(content["preprocessing"]))
    return hparams


def _find_state_dict(content: Any, depth: int) -> dict[str, torch.Tensor]:
    """The tensors of a (possibly wrapped) state dict, or ``{}``."""
    if isinstance(content, nn.Module):
        return dict(content.state_dict())
    if not isinstance(content, Mapping) or depth < 0:
        return {}
    for key in WRAPPER_KEYS:
        inner = content.get(key)
        if isinstance(inner, (Mapping, nn.Module)):
            found = _find_state_dict(inner, depth - 1)
            if found:
                return found
    return {str(k): v for k, v in content.items() if isinstance(v, torch.Tensor)}


def _last_linear_outputs(state: Mapping[str, torch.Tensor], prefix: str) -> int | None:
    """Output size of the last 2-D ``*.weight`` under ``prefix`` (``None`` if there is none)."""
    weights = [
        value
        for key, value in state.items()
        if key.startswith(prefix) and key.endswith("weight") and value.ndim == 2
    ]
    return int(weights[-1].shape[0]) if weights else None


def _check_matches(
    path: str | Path,
    arch: Architecture,
    backbone: str | None,
    in_channels: int | None,
    num_classes: int | None,
) -> None:
    """Raise when an explicit argument contradicts what the weights say."""
    if backbone is not None and backbone not in BACKBONES:
        raise ConfigurationError(
            f"unknown backbone '{backbone}'; choose one of {', '.join(BACKBONES)}"
        )
    checks = (
        ("backbone", backbone, arch.backbone, f"holds {arch.backbone} weights"),
        ("in_channels", in_channels, arch.in_channels, f"has {arch.in_channels} input channels"),
        ("num_classes", num_classes, arch.num_classes, f"has {arch.num_classes} classes"),
    )
    for name, given, found, says in checks:
        if given is not None and found is not None and given != found:
            raise CheckpointError(
                f"checkpoint '{path}' {says} but {name}={given!r}; drop --{name} or set it "
                f"to {found}"
            )


def _load_strict(path: str | Path, encoder: ThermalEncoder, weights: dict[str, Any]) -> None:
    """Load ``weights`` into ``encoder``; only a wholly missing projection head is forgiven."""
    expected = encoder.state_dict()
    missing = [
        key for key in expected if key not in weights and not key.endswith("num_batches_tracked")
    ]
    unexpected = [key for key in weights if key not in expected]
    mismatched = [
        f"{key} {tuple(weights[key].shape)} vs {tuple(expected[key].shape)}"
        for key in weights
        if key in expected and weights[key].shape != expected[key].shape
    ]
    head_missing = not any(key.startswith("projection_head.") for key in weights)
    fatal_missing = [
        key for key in missing if not (head_missing and key.startswith("projection_head."))
    ]
    if fatal_missing or unexpected or mismatched:
        problems = [
            f"{label}: {shorten(keys)}"
            for label, keys in (
                ("missing keys", fatal_missing),
                ("unexpected keys", unexpected),
                ("size mismatch", mismatched),
            )
            if keys
        ]
        raise CheckpointError(
            f"checkpoint '{path}' does not fit a {encoder.backbone_name} encoder "
            f"({encoder.in_channels} channels, {encoder.num_classes} classes): "
            f"{'; '.join(problems)}; pass weights saved from this project's encoder "
            "(keys backbone.*, projection_head.*, classifier.*)"
        )
    encoder.load_state_dict(weights, strict=not head_missing)
    if head_missing:
        log.warning(
            "checkpoint '%s' has no projection head: it is left randomly initialized "
            "(classification and CAMs are unaffected; the contrastive loss starts afresh)",
            path,
        )
