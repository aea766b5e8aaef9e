"""Sanity check: do the maps depend on what the model learned?

Model-parameter randomization test (Adebayo et al., 2018, "Sanity Checks for
Saliency Maps", NeurIPS), cascading version. On a deep copy of the model, modules are
re-initialized one after another from the top (the classifier, then ``layer4``,
``layer3``, ... down to the stem's ``bn1`` and ``conv1``), cumulatively: after step
``i`` every module of steps ``0 .. i`` holds fresh random weights. The maps are
recomputed after each step and compared with the trained model's maps by Spearman
rank correlation (:func:`~thermal_explain.metrics.similarity.spearman_correlation`,
ties averaged; a flat map counts as 0).

A method that explains the model must produce different maps once the weights are
random: the layer **passes** when the mean ``|rho|`` over the images after the full
cascade is below ``threshold`` (default 0.5). A map that survives randomization
(an edge detector does) shows the image, not the model's reasoning.

The caller's model and the global random state are left untouched.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from thermal_explain.cam.engine import CAMEngine
from thermal_explain.errors import ConfigurationError, shorten
from thermal_explain.metrics.similarity import spearman_correlation

__all__ = [
    "ExplainFn",
    "LayerSanity",
    "SanityResult",
    "cam_explainer",
    "cascading_randomization",
    "default_cascade",
    "randomize_module",
    "sanity_verdict",
]

ExplainFn = Callable[[nn.Module], Mapping[str, Tensor]]
"""Model -> layer name -> ``(N, H, W)`` (or ``(N, T, H, W)``) maps of a fixed batch."""

_STAGES = ("layer4", "layer3", "layer2", "layer1", "bn1", "conv1")


def cam_explainer(
    images: Tensor,
    target: Tensor | int | Sequence[int] | None,
    *,
    layers: Sequence[str] | None = None,
    method: str = "gradcam",
) -> ExplainFn:
    """An ``explain_fn`` computing :class:`~thermal_explain.cam.engine.CAMEngine` maps.

    Args:
        images: ``(N, C, H, W)`` fixed batch on the model's device.
        target: the classes to explain, e.g. the trained model's ``CAMResult.targets[:, 0]``;
            keep them fixed so that only the weights change between steps (``None`` explains
            each model's own prediction).
        layers: dotted layer names (``None``: the last conv of each ResNet stage).
        method: a CAM method name of the engine.

    Returns:
        ``model -> {layer: (N, T, H, W) maps}``.
    """

    def explain(model: nn.Module) -> Mapping[str, Tensor]:
        return CAMEngine(model, layers=layers, method=method)(images, target=target).maps

    return explain


def default_cascade(model: nn.Module) -> list[str]:
    """Modules to re-initialize, top first, for a model holding a ResNet ``backbone``.

    Finds the ``backbone`` (directly or inside e.g. ``encoder``) and returns, with the
    same prefix, ``classifier`` (when present) followed by ``backbone.layer4`` ..
    ``backbone.layer1``, ``backbone.bn1`` and ``backbone.conv1``.

    Args:
        model: e.g. a ``ThermalEncoder`` or a ``ThermalClassifier``.

    Returns:
        Dotted module names relative to ``model``.

    Raises:
        ConfigurationError: no ResNet-like ``backbone`` is found.
    """
    names = dict(model.named_modules())
    for name in names:
        if name.split(".")[-1] != "backbone":
            continue
        prefix = name[: -len("backbone")]
        stages = [f"{name}.{stage}" for stage in _STAGES if f"{name}.{stage}" in names]
        if not stages:
            continue
        head = [f"{prefix}classifier"] if f"{prefix}classifier" in names else []
        return head + stages
    raise ConfigurationError(
        "Expected a model with a ResNet `backbone` (layer1..layer4, conv1) to build the "
        "default cascade; pass argument `cascade` with the module names to randomize, top first"
    )


def randomize_module(module: nn.Module) -> int:
    """Re-initialize, in place, every submodule of ``module`` that can reset itself.

    Uses each submodule's ``reset_parameters`` (PyTorch's default initialization; batch
    norms also reset their running statistics). Meant for a copy of a model only.

    Args:
        module: the module to re-initialize.

    Returns:
        The number of submodules reset.
    """
    count = 0
    for submodule in module.modules():
        reset = getattr(submodule, "reset_parameters", None)
        if callable(reset):
            reset()
            count += 1
    return count


def sanity_verdict(layer: str, final_abs_rho: float, threshold: float, last_step: str) -> str:
    """Plain-language verdict for one layer.

    Args:
        layer: the explained layer.
        final_abs_rho: mean ``|rho|`` after the full cascade.
        threshold: the pass threshold.
        last_step: the last module randomized.

    Returns:
        A sentence starting with ``"passes:"`` or ``"fails:"``.
    """
    if final_abs_rho < threshold:
        return (
            f"passes: with the weights re-initialized from the top down to {last_step}, the "
            f"maps of {layer} no longer match the trained model's (mean |Spearman rho| "
            f"{final_abs_rho:.2f} < {threshold:g}); they depend on what the model learned."
        )
    return (
        f"fails: the maps of {layer} still match the trained model's after its weights were "
        f"re-initialized from the top down to {last_step} (mean |Spearman rho| "
        f"{final_abs_rho:.2f} >= {threshold:g}); they show the image or the architecture "
        "rather than what the model learned, so do not read them as the model's evidence."
    )


@dataclass(frozen=True)
class LayerSanity:
    """Randomization results of one explained layer.

    Attributes:
        layer: the explained layer's name.
        rho: ``(S, N)`` (or ``(S, N, T)``) Spearman rho per cascade step and image.
        passed: ``True`` when the final mean ``|rho|`` is below the threshold.
        verdict: what the result means, in words (:func:`sanity_verdict`).
    """

    layer: str
    rho: Tensor
    passed: bool
    verdict: str

    @property
    def mean_rho(self) -> list[float]:
        """Mean rho over the images, per cascade step."""
        return self.rho.flatten(1).mean(dim=1).tolist()

    @property
    def mean_abs_rho(self) -> list[float]:
        """Mean ``|rho|`` over the images, per cascade step."""
        return self.rho.flatten(1).abs().mean(dim=1).tolist()

    @property
    def final_abs_rho(self) -> float:
        """Mean ``|rho|`` after the full cascade (the value the verdict is based on)."""
        return self.mean_abs_rho[-1]

    def to_dict(self) -> dict[str, object]:
        """JSON-ready summary (no per-image values)."""
        return {
            "mean_rho": [round(value, 4) for value in self.mean_rho],
            "mean_abs_rho": [round(value, 4) for value in self.mean_abs_rho],
            "final_abs_rho": round(self.final_abs_rho, 4),
            "passed": self.passed,
            "verdict": self.verdict,
        }


@dataclass(frozen=True)
class SanityResult:
    """Cascading randomization results of every explained layer.

    Attributes:
        cascade: the modules randomized, in order (one entry per step).
        threshold: the pass threshold on the final mean ``|rho|``.
        layers: layer name -> :class:`LayerSanity`.
    """

    cascade: list[str]
    threshold: float
    layers: dict[str, LayerSanity]

    @property
    def passed(self) -> bool:
        """``True`` when every layer passes."""
        return all(layer.passed for layer in self.layers.values())

    def to_dict(self) -> dict[str, object]:
        """JSON-ready summary: the cascade, the threshold and each layer's results."""
        return {
            "test": "cascading model-parameter randomization (Adebayo et al., 2018)",
            "cascade": list(self.cascade),
            "threshold": self.threshold,
            "passed": self.passed,
            "layers": {name: layer.to_dict() for name, layer in self.layers.items()},
        }


def _resolve(model: nn.Module, cascade: Sequence[str]) -> list[str]:
    names = dict(model.named_modules())
    for name in cascade:
        if name not in names:
            close = difflib.get_close_matches(name, list(names), n=3)
            hint = f"; did you mean {shorten(close)}?" if close else ""
            raise ConfigurationError(
                f"Expected argument `cascade` to name modules of the model but got {name!r}{hint}"
            )
    return list(cascade)


def _snapshot(maps: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Detached copies: maps may share memory with weights that the next step resets."""
    return {layer: value.detach().clone() for layer, value in maps.items()}


def cascading_randomization(
    model: nn.Module,
    explain_fn: ExplainFn,
    *,
    cascade: Sequence[str] | None = None,
    threshold: float = 0.5,
    seed: int = 0,
) -> SanityResult:
    """Run the cascading model-parameter randomization test.

    Args:
        model: the trained model; only a deep copy is changed.
        explain_fn: computes the maps of a fixed batch for a given model, e.g.
            :func:`cam_explainer`. Keep the explained classes fixed (the trained model's)
            so only the weights change.
        cascade: module names to re-initialize, top first; :func:`default_cascade`
            when ``None``.
        threshold: a layer passes when its final mean ``|rho|`` is below this.
        seed: seed of the re-initialization (the global random state is restored).

    Returns:
        :class:`SanityResult` with rho per layer, cascade step and image.

    Raises:
        ConfigurationError: an unknown or empty cascade, a bad threshold, a cascade step
            with nothing to re-initialize, or maps that change layers between steps.
    """
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
        raise ConfigurationError(
            f"Expected argument `threshold` to be a number but got {threshold!r}"
        )
    if not 0 < threshold <= 1:
        raise ConfigurationError(
            f"Expected argument `threshold` to be in (0, 1] but got {threshold}"
        )
    steps = default_cascade(model) if cascade is None else _resolve(model, cascade)
    if not steps:
        raise ConfigurationError("Expected argument `cascade` to name at least one module")

    randomized = copy.deepcopy(model)
    modules = dict(randomized.named_modules())
    for step in steps:
        if not any(callable(getattr(m, "reset_parameters", None)) for m in modules[step].modules()):
            raise ConfigurationError(
                f"Expected cascade module {step!r} to have parameters that can be "
                "re-initialized but it has none"
            )
    cuda_devices = sorted({p.device.index or 0 for p in randomized.parameters() if p.is_cuda})
    with torch.random.fork_rng(devices=cuda_devices):
        original = _snapshot(explain_fn(randomized))
        rhos: dict[str, list[Tensor]] = {layer: [] for layer in original}
        torch.manual_seed(seed)
        for step in steps:
            with torch.no_grad():
                randomize_module(modules[step])
            maps = _snapshot(explain_fn(randomized))
            if set(maps) != set(original):
                raise ConfigurationError(
                    "Expected `explain_fn` to return the same layers at every step but got "
                    f"{shorten(sorted(maps))} instead of {shorten(sorted(original))}"
                )
            for layer, reference in original.items():
                rhos[layer].append(spearman_correlation(reference, maps[layer].to(reference)))

    layers: dict[str, LayerSanity] = {}
    for layer, values in rhos.items():
        rho = torch.stack(values).cpu()
        final = rho[-1].abs().mean().item()
        layers[layer] = LayerSanity(
            layer=layer,
            rho=rho,
            passed=final < threshold,
            verdict=sanity_verdict(layer, final, threshold, steps[-1]),
        )
    return SanityResult(cascade=steps, threshold=float(threshold), layers=layers)
