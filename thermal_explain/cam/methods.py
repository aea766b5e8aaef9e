r"""CAM methods and the map arithmetic they share (upsampling, normalization, fusion).

Every method turns a layer's activations :math:`A` and the gradients
:math:`G = \partial y^{(c)} / \partial A` of the target score into a map

.. math::

    L^{(c)}(i, j) = \mathrm{ReLU}\Big(\sum_k w_k^{(c)}(i, j)\, A_k(i, j)\Big)

and differs only in the weights :math:`w`: a method is a small :class:`CAMMethod`
subclass overriding :meth:`CAMMethod.weights`. All functions work on whole batches on the
tensors' device and never change their inputs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

import torch
import torch.nn.functional as F

from thermal_explain.errors import ConfigurationError


class CAMMethod:
    """Base class: combines activations and gradients into a non-negative map.

    Subclasses override only :meth:`weights`.

    Example:
        >>> method = get_method("gradcam")
        >>> activations, gradients = torch.rand(2, 8, 7, 7), torch.randn(2, 8, 7, 7)
        >>> method(activations, gradients).shape
        torch.Size([2, 7, 7])
    """

    name: ClassVar[str] = ""

    def weights(self, activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        """Weights of the activations, broadcastable to them.

        Args:
            activations: ``(B, C, h, w)`` layer output :math:`A`.
            gradients: ``(B, C, h, w)`` gradient of the target score with respect to it.

        Returns:
            ``(B, C, 1, 1)`` channel weights or ``(B, C, h, w)`` element weights.
        """
        raise NotImplementedError

    def __call__(self, activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        r"""The map :math:`\mathrm{ReLU}(\sum_k w_k A_k)` on the layer's grid.

        Args:
            activations: ``(B, C, h, w)`` layer output.
            gradients: ``(B, C, h, w)`` gradient of the target score with respect to it.

        Returns:
            ``(B, h, w)`` non-negative, unnormalized map.
        """
        weights = self.weights(activations, gradients)
        if weights.shape[-2:] == (1, 1):  # channel weights: one batched matrix product
            batch, _, height, width = activations.shape
            combined = torch.bmm(weights.flatten(1).unsqueeze(1), activations.flatten(2))
            return torch.relu(combined.view(batch, height, width))
        return torch.relu((weights * activations).sum(1))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class GradCAM(CAMMethod):
    r"""Grad-CAM (Selvaraju et al., 2017): spatially averaged gradients.

    .. math:: w_k = \frac{1}{hw} \sum_{i,j} G_k(i, j)
    """

    name = "gradcam"

    def weights(self, activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        return gradients.mean((2, 3), keepdim=True)


class GradCAMPlusPlus(CAMMethod):
    r"""Grad-CAM++ (Chattopadhyay et al., 2018), closed form for an exponential score.

    .. math::

        w_k = \sum_{i,j} \alpha_k(i, j)\, \mathrm{ReLU}(G_k(i, j)), \qquad
        \alpha_k(i, j) = \frac{G_k^2}{2 G_k^2 + G_k^3 \sum_{a,b} A_k(a, b)}
        = \frac{1}{2 + G_k(i, j) \sum_{a,b} A_k(a, b)}

    where :math:`G_k(i, j) \neq 0`, and :math:`\alpha = 0` elsewhere. The simplified right-hand
    form is used: it does not underflow for the tiny gradients of deep layers.
    """

    name = "gradcam++"

    def weights(self, activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        denominator = 2 + gradients * activations.sum((2, 3), keepdim=True)
        usable = (gradients != 0) & (denominator != 0)
        alpha = torch.where(usable, 1 / torch.where(usable, denominator, 1), 0)
        return (alpha * torch.relu(gradients)).sum((2, 3), keepdim=True)


class XGradCAM(CAMMethod):
    r"""XGrad-CAM (Fu et al., 2020): gradients weighted by the normalized activations.

    .. math:: w_k = \frac{\sum_{i,j} G_k(i, j) A_k(i, j)}{\sum_{i,j} A_k(i, j)}

    A channel whose activations sum to zero gets weight 0.
    """

    name = "xgradcam"

    def weights(self, activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        total = activations.sum((2, 3), keepdim=True)
        weighted = (gradients * activations).sum((2, 3), keepdim=True)
        return torch.where(total != 0, weighted / torch.where(total != 0, total, 1), 0)


class LayerCAM(CAMMethod):
    r"""LayerCAM (Jiang et al., 2021): positive gradients as element-wise weights.

    .. math:: w_k(i, j) = \mathrm{ReLU}(G_k(i, j))
    """

    name = "layercam"

    def weights(self, activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        return torch.relu(gradients)


class HiResCAM(CAMMethod):
    r"""HiResCAM (Draelos and Carin, 2020): gradients as element-wise weights.

    .. math:: w_k(i, j) = G_k(i, j)

    Before the ReLU, the sum of the map equals the score's first-order contribution of the layer.
    """

    name = "hirescam"

    def weights(self, activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        return gradients


METHODS: dict[str, type[CAMMethod]] = {
    cls.name: cls for cls in (GradCAM, GradCAMPlusPlus, XGradCAM, LayerCAM, HiResCAM)
}
_ALIASES = {"gradcampp": "gradcam++", "gradcamplusplus": "gradcam++"}


def get_method(name: str | CAMMethod) -> CAMMethod:
    """A CAM method by name (case, ``-``, ``_`` and spaces ignored), or the instance given.

    Args:
        name: ``gradcam``, ``gradcam++`` (also ``gradcampp``), ``xgradcam``, ``layercam``,
            ``hirescam``; or a :class:`CAMMethod` instance.

    Returns:
        A method instance.

    Raises:
        ConfigurationError: unknown name (the message lists the valid ones).
    """
    if isinstance(name, CAMMethod):
        return name
    key = "".join(str(name).lower().split()).replace("-", "").replace("_", "")
    key = _ALIASES.get(key, key)
    if not isinstance(name, str) or key not in METHODS:
        raise ConfigurationError(
            f"Expected argument `method` to be one of {', '.join(METHODS)} but got {name!r}"
        )
    return METHODS[key]()


def upsample_maps(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of the last two dimensions (pixel centres aligned, no corner pinning).

    Args:
        maps: ``(..., h, w)`` maps.
        size: ``(H, W)`` target size.

    Returns:
        ``(..., H, W)`` maps; the input itself when the size already matches.
    """
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    flat = maps.reshape(-1, 1, *maps.shape[-2:])
    resized = F.interpolate(flat, size=size, mode="bilinear", align_corners=False)
    return resized.reshape(*maps.shape[:-2], *size)


FLAT_TOLERANCE = 1e-5
"""Relative span below which a map is constant (float32 rounding is about 1e-7)."""


def flat_maps(maps: torch.Tensor) -> torch.Tensor:
    """Which maps carry no spatial ranking: their span is within rounding of their magnitude.

    A layer whose output is 1x1 (or a CAM that is 0 everywhere) gives a constant map, up to
    float rounding from upsampling; stretching that rounding would draw structure that is
    not there.

    Args:
        maps: ``(..., H, W)`` unnormalized maps.

    Returns:
        ``(...)`` bool.
    """
    flat = maps.detach().float().flatten(-2)
    return _is_flat(flat.amin(-1), flat.amax(-1))


def _is_flat(low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    return (high - low) <= FLAT_TOLERANCE * torch.maximum(high.abs(), low.abs())


def normalize_maps(maps: torch.Tensor) -> torch.Tensor:
    r"""Min-max normalize each map to 0..1: :math:`(L - \min L) / (\max L - \min L)`.

    Args:
        maps: ``(..., H, W)`` maps.

    Returns:
        ``(..., H, W)`` maps in 0..1; a flat map (:func:`flat_maps`, e.g. a 1x1 layer output
        upsampled bilinearly, or a constant) becomes zeros (never NaN).
    """
    flat = maps.flatten(-2)
    low = flat.amin(-1, keepdim=True)
    high = flat.amax(-1, keepdim=True)
    span = high - low
    live = (span > 0) & ~_is_flat(low, high)
    normalized = (flat - low).div_(torch.where(live, span, 1))
    return normalized.masked_fill_(~live, 0.0).reshape(maps.shape)


FUSION_TIE_BREAK = 1e-3
"""Weight of the layers' mean in a max-fused map (see :func:`fuse_maps`)."""


def fuse_maps(
    maps: Mapping[str, torch.Tensor] | Sequence[torch.Tensor], mode: str = "max"
) -> torch.Tensor:
    """Combine per-layer maps into one: deep layers localize, shallow ones add detail.

    Each map is normalized to 0..1, resized to the largest grid among them, combined
    element-wise (``max`` or ``mean``) and normalized again.

    Every normalized map reaches 1 somewhere, so a max-fused map is 1 at each layer's own
    peak and its arg-max would be decided by raster order. ``max`` therefore adds
    :data:`FUSION_TIE_BREAK` times the layers' mean: values change by at most that
    fraction, and among equal maxima the peak is where the layers agree most.

    Args:
        maps: ``(..., H_l, W_l)`` maps of several layers (e.g. ``CAMResult.maps``).
        mode: ``"max"`` or ``"mean"``.

    Returns:
        ``(..., H, W)`` fused map in 0..1.

    Raises:
        ConfigurationError: no maps, or an unknown ``mode``.
    """
    tensors = list(maps.values()) if isinstance(maps, Mapping) else list(maps)
    if not tensors:
        raise ConfigurationError("Expected argument `maps` to hold at least one map but got none")
    if mode not in ("max", "mean"):
        raise ConfigurationError(
            f"Expected argument `mode` to be one of max, mean but got {mode!r}"
        )
    size = (max(t.shape[-2] for t in tensors), max(t.shape[-1] for t in tensors))
    stacked = torch.stack([upsample_maps(normalize_maps(t), size) for t in tensors])
    if mode == "max":
        fused = stacked.amax(0) + FUSION_TIE_BREAK * stacked.mean(0)
    else:
        fused = stacked.mean(0)
    return normalize_maps(fused)
