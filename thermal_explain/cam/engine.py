"""``CAMEngine``: every target layer's maps for a batch from one forward and one backward."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from thermal_explain.cam.asymmetry import mirror_to_full_width, side_attribution
from thermal_explain.cam.folding import FoldedModel
from thermal_explain.cam.layers import default_target_layers, record_outputs, resolve_layers
from thermal_explain.cam.methods import (
    CAMMethod,
    fuse_maps,
    get_method,
    normalize_maps,
    upsample_maps,
)
from thermal_explain.cam.modes import eval_mode
from thermal_explain.cam.precision import autocast, check_precision, float32, gradient_scale
from thermal_explain.cam.statistics import statistics_at_sizes, statistics_records
from thermal_explain.cam.targets import Target, check_sizes, parse_target, resolve_target
from thermal_explain.checks import describe_shape
from thermal_explain.errors import ConfigurationError, shorten


@dataclass
class CAMResult:
    """The engine's output for one batch; every tensor is on the batch's device.

    ``T`` is 1, or the number of classes ``K`` when the target was ``"all"``.

    Attributes:
        logits: ``(N, K)`` model output.
        probabilities: ``(N, K)`` softmax of ``logits``.
        predicted: ``(N,)`` arg-max class.
        targets: ``(N, T)`` classes the maps explain.
        maps: ``{layer: (N, T, H, W)}`` normalized to 0..1 per map, on the model-input grid.
        raw_maps: ``{layer: (N, T, H, W)}`` unnormalized maps (after ReLU, upsampled).
        display_maps: ``{layer: (N, T, H, W_full)}``: ``maps`` drawn on both halves of the face
            in asymmetry mode, else ``maps`` itself.
        statistics: ``{layer: {name: (N, T)}}`` (``center_of_mass``: ``(N, T, 2)`` ``[x, y]``),
            over the display map at the original image size.
        side_attribution: ``(N, T, 2)`` ``[left, right]`` evidence shares in asymmetry mode.
        class_names: ``K`` class names when the engine was given them.
    """

    logits: torch.Tensor
    probabilities: torch.Tensor
    predicted: torch.Tensor
    targets: torch.Tensor
    maps: dict[str, torch.Tensor]
    raw_maps: dict[str, torch.Tensor]
    display_maps: dict[str, torch.Tensor]
    statistics: dict[str, dict[str, torch.Tensor]]
    side_attribution: torch.Tensor | None = None
    class_names: list[str] | None = None

    @property
    def layers(self) -> list[str]:
        """The target layer names, in the engine's order."""
        return list(self.maps)

    def statistics_records(self, layer: str, column: int = 0) -> list[dict[str, object]]:
        """The contract's ``feature_statistics`` of one layer, one dict per image.

        Args:
            layer: a target layer name.
            column: target column ``t`` (0 unless the target was ``"all"``).

        Returns:
            ``N`` dicts of floats, ``center_of_mass`` as ``[int x, int y]``.
        """
        return statistics_records(self.statistics[layer], column)

    def fused(self, mode: str = "max", display: bool = True) -> torch.Tensor:
        """All layers' maps fused into one ``(N, T, H, W)`` map (see :func:`fuse_maps`).

        Args:
            mode: ``"max"`` or ``"mean"`` over the per-layer normalized maps.
            display: fuse ``display_maps`` (full width) instead of ``maps``.
        """
        return fuse_maps(self.display_maps if display else self.maps, mode)


class CAMEngine:
    """Class activation maps of several layers for a batch, in one forward and one backward.

    The model runs in eval mode (every module's mode is restored afterwards) with hooks on
    the target layers that are always removed. The gradients of the summed target scores
    come from ``torch.autograd.grad`` with respect to the hooked outputs (and the input in
    asymmetry mode), so parameter ``.grad`` is never touched. Calls from inside
    ``torch.inference_mode()`` or ``torch.no_grad()`` (Lightning's validation and predict
    loops) step out of them; an input made under inference mode is cloned first, since
    inference tensors cannot take part in autograd.

    The input is passed on in channels-last memory order (``channels_last``), which the
    convolutions follow through the network: the same arithmetic, faster on CPUs and GPUs.
    Each eval-mode BatchNorm that follows a convolution is folded into it
    (``fold_batchnorm``, see :mod:`thermal_explain.cam.folding`): the target layers stay
    the model's own, and the maps agree with the unfolded model's within float rounding.
    With a reduced ``precision`` the forward runs under autocast (see
    :mod:`thermal_explain.cam.precision`); every map and statistic is computed in float32.

    Args:
        model: classifier returning ``(N, K)`` logits, e.g. ``ThermalEncoder``.
        layers: dotted layer names relative to ``model``; ``None`` takes the last conv of
            each stage (:func:`default_target_layers`).
        method: a name from :data:`METHODS` (``gradcam``, ``gradcam++``, ``xgradcam``,
            ``layercam``, ``hirescam``) or a :class:`CAMMethod`.
        class_names: ``K`` class names; lets ``target`` name a class.
        asymmetry: the input is a 6-channel stack of the left face and the mirrored right
            face; adds full-width display maps and ``side_attribution``.
        precision: ``"32-true"`` (float32), ``"bf16-mixed"`` or ``"16-mixed"`` (CUDA only).
        channels_last: pass the input on in channels-last order (the model's parameters
            are left as they are).
        fold_batchnorm: run the model with its BatchNorms folded into the convolutions
            before them (the model itself is left as it is).

    Example:
        >>> engine = CAMEngine(encoder, method="gradcam", class_names=["normal", "ICAS"])
        >>> result = engine(images)                       # predicted class
        >>> result.maps["backbone.layer4.1.conv2"].shape  # (N, 1, H, W)
        >>> result.statistics_records("backbone.layer4.1.conv2")[0]["center_of_mass"]

    Raises:
        ConfigurationError: an argument is invalid (the message names it).
    """

    def __init__(
        self,
        model: nn.Module,
        layers: Sequence[str] | None = None,
        method: str | CAMMethod = "gradcam",
        class_names: Sequence[str] | None = None,
        asymmetry: bool = False,
        precision: str = "32-true",
        channels_last: bool = True,
        fold_batchnorm: bool = True,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise ConfigurationError(
                f"Expected argument `model` to be a torch.nn.Module but got {type(model).__name__}"
            )
        self.model = model
        self._modules = resolve_layers(
            model, default_target_layers(model) if layers is None else layers
        )
        self.method = get_method(method)
        if class_names is not None and (
            isinstance(class_names, str) or not all(isinstance(name, str) for name in class_names)
        ):
            raise ConfigurationError(
                f"Expected argument `class_names` to be a list of strings but got {class_names!r}"
            )
        self.class_names = list(class_names) if class_names is not None else None
        self.in_channels = _input_channels(model)
        if asymmetry and self.in_channels not in (None, 6):
            raise ConfigurationError(
                f"argument `asymmetry=True` needs a 6-channel model but its first convolution "
                f"takes {self.in_channels}; load a model trained with use_asymmetry"
            )
        self.asymmetry = bool(asymmetry)
        self.precision = check_precision(precision)
        self._gradient_scale = gradient_scale(self.precision)
        self.channels_last = bool(channels_last)
        self._folding = FoldedModel(model, self._modules) if fold_batchnorm else None
        self._cloned: set[str] = set()

    @property
    def layers(self) -> list[str]:
        """The resolved target layer names."""
        return list(self._modules)

    def __repr__(self) -> str:
        return (
            f"CAMEngine(method={self.method.name!r}, layers={self.layers}, "
            f"asymmetry={self.asymmetry}, precision={self.precision!r})"
        )

    def __call__(
        self,
        images: torch.Tensor,
        target: Target = None,
        original_sizes: Sequence[tuple[int, int]] | None = None,
    ) -> CAMResult:
        """Explain a batch.

        Args:
            images: ``(N, C, H, W)`` model input on the model's device.
            target: ``None`` (predicted class), a class index or name for every image, a
                per-image sequence or ``(N,)`` tensor of indices/names, or ``"all"`` (one map
                per class).
            original_sizes: ``N`` ``(height, width)`` of the source images, for the
                statistics; ``None`` computes them on the display grid.

        Returns:
            A :class:`CAMResult`.

        Raises:
            ConfigurationError: invalid ``images``, ``target``, ``original_sizes``,
                ``class_names`` or a target layer that cannot be explained.
        """
        self._check_images(images)
        count = images.shape[0]
        sizes = check_sizes(original_sizes, count)
        request = parse_target(target, count, self.class_names)
        device = images.device
        with torch.inference_mode(False), torch.enable_grad():
            inputs = images.clone() if images.is_inference() else images.detach()
            if self.channels_last:
                inputs = inputs.contiguous(memory_format=torch.channels_last)
            inputs.requires_grad_(self.asymmetry)
            module = self.model
            if self._folding is not None:
                module = self._folding.module_for(inputs, self.channels_last)
            with autocast(self.precision, device):
                logits, outputs = self._forward(module, inputs)
            self._check_logits(logits, count)
            scores = logits.detach().float()
            targets = resolve_target(request, scores)
            with float32(device):  # the backward follows the forward's dtypes, nothing else
                layer_grads, input_grads = self._gradients(logits, outputs, inputs, targets)
            with torch.no_grad(), float32(device):
                return self._assemble(
                    scores, targets, outputs, layer_grads, inputs, input_grads, sizes
                )

    def _forward(
        self, module: nn.Module, inputs: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Run ``module`` (the model or its folded view) in eval mode, recording the target
        layers' outputs.

        A layer whose output the model changes in place is recorded again with a copy
        passed on instead (remembered for later calls), so its values and gradient stay
        the layer's own.
        """
        while True:
            with eval_mode(module), record_outputs(self._modules, self._cloned) as recording:
                logits = module(inputs)
            modified = [name for name in recording.modified_in_place() if name not in self._cloned]
            if not modified:
                return logits, recording.outputs
            self._cloned.update(modified)

    def _gradients(
        self,
        logits: torch.Tensor,
        outputs: dict[str, torch.Tensor],
        inputs: torch.Tensor,
        targets: torch.Tensor,
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
        """Gradients of the summed target scores: ``{layer: (N, T, C, h, w)}`` and the input's.

        Under float16 the score is scaled by :func:`gradient_scale` first, so that small
        gradients do not underflow, and the gradients are scaled back in float32.
        """
        missing = [name for name in self._modules if name not in outputs]
        if missing:
            raise ConfigurationError(
                f"argument `layers`: {shorten(missing)} did not run in the forward pass; "
                "choose layers the model uses"
            )
        wrt = [outputs[name] for name in self._modules] + ([inputs] if self.asymmetry else [])
        columns = targets.shape[1]
        scale = self._gradient_scale
        per_column = []
        for column in range(columns):
            score = logits.gather(1, targets[:, column : column + 1]).sum() * scale
            grads = torch.autograd.grad(
                score, wrt, retain_graph=column < columns - 1, allow_unused=True
            )
            unused = [
                name for name, grad in zip(self._modules, grads, strict=False) if grad is None
            ]
            if unused:
                raise ConfigurationError(
                    f"argument `layers`: {shorten(unused)} does not lead to the model output; "
                    "choose layers on the path to the classifier"
                )
            per_column.append(grads if scale == 1 else [grad.float() / scale for grad in grads])
        stacked = [
            grads[0].unsqueeze(1) if columns == 1 else torch.stack(grads, 1)
            for grads in zip(*per_column, strict=True)
        ]
        layer_grads = dict(zip(self._modules, stacked, strict=False))
        return layer_grads, stacked[-1] if self.asymmetry else None

    def _assemble(
        self,
        logits: torch.Tensor,
        targets: torch.Tensor,
        outputs: dict[str, torch.Tensor],
        layer_grads: dict[str, torch.Tensor],
        inputs: torch.Tensor,
        input_grads: torch.Tensor | None,
        sizes: list[tuple[int, int]] | None,
    ) -> CAMResult:
        """All map arithmetic, batched over images and targets, and over layers once upsampled."""
        count, columns = targets.shape
        size = (inputs.shape[-2], inputs.shape[-1])
        upsampled = []
        for name in self._modules:
            activations = outputs[name].detach().float()
            grads = layer_grads[name].float()
            flat_grads = grads.reshape(count * columns, *grads.shape[2:])
            flat_acts = activations.unsqueeze(1).expand_as(grads).reshape(flat_grads.shape)
            low = self.method(flat_acts, flat_grads).view(count, columns, *grads.shape[-2:])
            upsampled.append(upsample_maps(low, size))
        raw = torch.stack(upsampled)  # (L, N, T, H, W): each layer's maps stay contiguous
        normalized = normalize_maps(raw)
        display = mirror_to_full_width(normalized) if self.asymmetry else normalized
        stats = statistics_at_sizes(display.transpose(0, 1), sizes)  # (N, L, T) values
        layers = list(self._modules)
        statistics = {
            name: {stat: values[:, i] for stat, values in stats.items()}
            for i, name in enumerate(layers)
        }
        maps = dict(zip(layers, normalized, strict=True))
        display_maps = dict(zip(layers, display, strict=True)) if self.asymmetry else dict(maps)
        sides = None
        if input_grads is not None:
            sides = side_attribution(inputs.detach(), input_grads.float())
        return CAMResult(
            logits=logits,
            probabilities=logits.softmax(1),
            predicted=logits.argmax(1),
            targets=targets,
            maps=maps,
            raw_maps=dict(zip(layers, raw, strict=True)),
            display_maps=display_maps,
            statistics=statistics,
            side_attribution=sides,
            class_names=self.class_names,
        )

    def _check_images(self, images: object) -> None:
        if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[0] == 0:
            found = describe_shape(images)
            raise ConfigurationError(
                f"Expected argument `images` to be a non-empty (N, C, H, W) tensor but got "
                f"{found}; add a batch dimension with images.unsqueeze(0)"
            )
        if not images.is_floating_point():
            raise ConfigurationError(
                f"Expected argument `images` to be a float tensor but got {images.dtype}; "
                "preprocess the images (images.float() and normalization) first"
            )
        if self.in_channels is not None and images.shape[1] != self.in_channels:
            kind = "asymmetry (6-channel)" if self.in_channels == 6 else "RGB"
            raise ConfigurationError(
                f"argument `images` has {images.shape[1]} channels but the model takes "
                f"{self.in_channels}; use {kind} preprocessing to match the model"
            )
        parameter = next(self.model.parameters(), None)
        if parameter is not None and parameter.device != images.device:
            raise ConfigurationError(
                f"argument `images` is on {images.device} but the model is on "
                f"{parameter.device}; move it with images.to(device)"
            )

    def _check_logits(self, logits: object, count: int) -> None:
        if not isinstance(logits, torch.Tensor) or logits.ndim != 2 or logits.shape[0] != count:
            found = describe_shape(logits)
            raise ConfigurationError(
                f"argument `model` must return (N, K) logits for the engine but returned {found}; "
                "wrap it so that forward returns the classifier's logits"
            )
        if self.class_names is not None and len(self.class_names) != logits.shape[1]:
            raise ConfigurationError(
                f"argument `class_names` has {len(self.class_names)} names but the model has "
                f"{logits.shape[1]} classes; give one name per class"
            )


def _input_channels(model: nn.Module) -> int | None:
    """``in_channels`` of the model's first ``nn.Conv2d``, or ``None`` when it has none."""
    conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    return conv.in_channels if conv is not None else None
