"""Training augmentation for thermal faces: label-preserving views of one image.

A thermal face crop varies between recordings of the same person by small shifts of pose
and framing, by the camera's gain and offset, by sensor noise and by focus. The policy
draws those, and only those, so two views of one face stay the same face with the same
lesion. The geometry keeps the face on the vertical midline (no left-right shift by
default, a few degrees of rotation, zoom about the centre): in asymmetry mode the input is
the face folded at that line, and moving it sideways or turning it far makes left-right
differences larger than a one-sided finding. Every amount is in the input's own units:
pixels and degrees for geometry, fractions of the input's full range (0..1; for 8-bit
images 0.02 is about 5 grey levels, for a temperature window of ``LO..HI`` it is
``0.02 * (HI - LO)`` degrees) for intensity, contrast and noise.

Augmentation runs on the full-width image before the asymmetry split, so a left-right
flip swaps the two halves (channels 0-2 and 3-5) exactly as mirroring the face would.
Validation and predict never augment.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields

import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from thermal_explain.errors import ConfigurationError


@dataclass(frozen=True)
class AugmentationPolicy:
    """What the training views vary, and by how much (``0`` switches a part off).

    Attributes:
        enabled: ``False`` switches augmentation off altogether.
        flip_probability: chance of a left-right mirror (label-preserving: a one-sided
            lesion stays one-sided).
        rotation: largest rotation about the image centre in degrees (uniform +-).
        scale: largest relative zoom (uniform ``1 +- scale``).
        translate_x: largest left-right shift as a fraction of the image width. Keep it
            small: in asymmetry mode the face's midline is the fold, and a shifted face
            folds its left half onto the wrong part of the right.
        translate_y: largest up-down shift as a fraction of the image height.
        intensity: largest offset added to the whole image (fraction of the range).
        contrast: largest relative contrast change about the image mean (``1 +- c``).
        noise: largest standard deviation of added Gaussian pixel noise (fraction of the
            range; each view draws its own level up to this).
        blur_probability: chance of a Gaussian blur.
        blur_sigma: largest blur sigma in pixels of the model input.
    """

    enabled: bool = True
    flip_probability: float = 0.5
    rotation: float = 3.0
    scale: float = 0.05
    translate_x: float = 0.0
    translate_y: float = 0.04
    intensity: float = 0.05
    contrast: float = 0.15
    noise: float = 0.02
    blur_probability: float = 0.3
    blur_sigma: float = 1.0

    def __post_init__(self) -> None:
        for item in fields(self):
            if item.name == "enabled":
                if not isinstance(self.enabled, bool):
                    raise ConfigurationError(
                        f"Expected argument `augmentation.enabled` to be a bool but got "
                        f"{self.enabled!r}"
                    )
                continue
            value = getattr(self, item.name)
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            upper = 1.0 if item.name.endswith("probability") or item.name == "scale" else None
            if not number or value < 0 or (upper is not None and value > upper):
                bound = "a number in [0, 1]" if upper is not None else "a number >= 0"
                raise ConfigurationError(
                    f"Expected argument `augmentation.{item.name}` to be {bound} but got "
                    f"{value!r}; 0 switches that part off"
                )

    @property
    def active(self) -> bool:
        """Whether any part changes an image."""
        blur = self.blur_probability * self.blur_sigma
        parts = (self.flip_probability, self.rotation, self.scale)
        parts += (self.translate_x, self.translate_y)
        parts += (self.intensity, self.contrast, self.noise, blur)
        return self.enabled and any(value > 0 for value in parts)


DEFAULT_AUGMENTATION = AugmentationPolicy()
"""The policy ``fit`` and ``pretrain`` train with unless configured otherwise."""

NO_AUGMENTATION = AugmentationPolicy(enabled=False)
"""The policy that leaves images as they are."""


def as_policy(value: object) -> AugmentationPolicy:
    """``value`` as a policy: a policy, or a mapping / namespace of its fields.

    Raises:
        ConfigurationError: anything else, or an unknown field (named in the message).
    """
    if isinstance(value, AugmentationPolicy):
        return value
    items = value if isinstance(value, Mapping) else getattr(value, "__dict__", None)
    if not isinstance(items, Mapping):
        raise ConfigurationError(
            f"Expected argument `augmentation` to be an AugmentationPolicy or a mapping of its "
            f"fields but got {value!r}"
        )
    known = {item.name for item in fields(AugmentationPolicy)}
    unknown = sorted(str(key) for key in items if key not in known)
    if unknown:
        raise ConfigurationError(
            f"unknown augmentation setting(s) {', '.join(unknown)}; use {', '.join(sorted(known))}"
        )
    return AugmentationPolicy(**{str(key): item for key, item in items.items()})


class ThermalAugmentation:
    """Draw one augmented view of a normalized ``(3, H, W)`` model input.

    The input is taken back to its own 0..1 units with ``mean``/``std``, changed, and
    normalized again, so the amounts of the policy mean the same for every
    normalization. Randomness comes from torch's global generator (seeded per
    DataLoader worker by Lightning).
    """

    def __init__(
        self, policy: AugmentationPolicy, mean: Sequence[float], std: Sequence[float]
    ) -> None:
        self.policy = policy
        self.mean = torch.tensor([float(x) for x in mean]).view(3, 1, 1)
        self.std = torch.tensor([float(x) for x in std]).view(3, 1, 1)

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        """``(3, H, W)`` normalized image -> an augmented ``(3, H, W)`` copy."""
        policy = self.policy
        x = image * self.std + self.mean
        if _chance(policy.flip_probability):
            x = TF.horizontal_flip(x)
        if policy.rotation or policy.scale or policy.translate_x or policy.translate_y:
            x = self._affine(x)
        if policy.blur_sigma and _chance(policy.blur_probability):
            sigma = _uniform(0.1, max(policy.blur_sigma, 0.1))
            kernel = 2 * math.ceil(3 * sigma) + 1
            x = TF.gaussian_blur(x, [kernel, kernel], [sigma, sigma])
        if policy.contrast or policy.intensity:
            centre = x.mean()
            factor = 1.0 + _uniform(-policy.contrast, policy.contrast)
            x = centre + factor * (x - centre) + _uniform(-policy.intensity, policy.intensity)
        if policy.noise:
            x = x + torch.randn_like(x) * _uniform(0.0, policy.noise)
        return (x - self.mean) / self.std

    def _affine(self, x: torch.Tensor) -> torch.Tensor:
        """Rotate, zoom and shift; uncovered pixels take the image border's median."""
        policy = self.policy
        height, width = x.shape[-2:]
        border = torch.cat((x[:, 0], x[:, -1], x[:, :, 0], x[:, :, -1]), dim=1)
        fill = border.median(dim=1).values.tolist()
        return TF.affine(
            x,
            angle=_uniform(-policy.rotation, policy.rotation),
            translate=[
                _uniform(-policy.translate_x, policy.translate_x) * width,
                _uniform(-policy.translate_y, policy.translate_y) * height,
            ],
            scale=1.0 + _uniform(-policy.scale, policy.scale),
            shear=[0.0, 0.0],
            interpolation=InterpolationMode.BILINEAR,
            fill=fill,
        )


def _uniform(low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand(()))


def _chance(probability: float) -> bool:
    return probability > 0 and float(torch.rand(())) < probability
