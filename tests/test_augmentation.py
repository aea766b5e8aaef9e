"""Training augmentation: the policy, its transform, and two-view batches."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from thermal_explain.data.augmentation import (
    DEFAULT_AUGMENTATION,
    NO_AUGMENTATION,
    AugmentationPolicy,
    ThermalAugmentation,
    as_policy,
)
from thermal_explain.data.dataset import ThermalImageDataset, collate
from thermal_explain.data.images import read_image
from thermal_explain.data.preprocessing import DEFAULT_MEAN, DEFAULT_STD, to_model_input
from thermal_explain.errors import ConfigurationError

OFF = {
    "flip_probability": 0.0,
    "rotation": 0.0,
    "scale": 0.0,
    "translate_x": 0.0,
    "translate_y": 0.0,
    "intensity": 0.0,
    "contrast": 0.0,
    "noise": 0.0,
    "blur_probability": 0.0,
}


def only(**parts: float) -> AugmentationPolicy:
    """A policy with every part off except ``parts``."""
    return AugmentationPolicy(**{**OFF, **parts})


def _image(tmp_path: Path, name: str = "face.png", size: int = 32) -> Path:
    """A left-right asymmetric test image (bright left third, a ramp elsewhere)."""
    ramp = np.tile(np.linspace(20, 220, size, dtype=np.float32), (size, 1))
    image = np.stack([ramp, ramp * 0.8, ramp * 0.5], axis=2).astype(np.uint8)
    image[:, : size // 3] = 250
    path = tmp_path / name
    ok, buffer = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    assert ok
    path.write_bytes(buffer.tobytes())
    return path


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"rotation": -1.0}, "rotation"),
        ({"flip_probability": 1.5}, "flip_probability"),
        ({"scale": 2.0}, "scale"),
        ({"translate_x": -0.1}, "translate_x"),
        ({"noise": "a"}, "noise"),
        ({"enabled": "yes"}, "enabled"),
    ],
)
def test_policy_rejects_bad_values_naming_them(kwargs: dict, name: str) -> None:
    with pytest.raises(ConfigurationError, match=f"`augmentation.{name}`") as info:
        AugmentationPolicy(**kwargs)
    assert "\n" not in str(info.value)


def test_policy_activity_and_mapping_form() -> None:
    assert DEFAULT_AUGMENTATION.active
    assert not NO_AUGMENTATION.active and not AugmentationPolicy(**OFF).active
    assert as_policy({"rotation": 3.0}) == AugmentationPolicy(rotation=3.0)
    assert as_policy(DEFAULT_AUGMENTATION) is DEFAULT_AUGMENTATION
    with pytest.raises(ConfigurationError, match=r"unknown augmentation setting.*rotate"):
        as_policy({"rotate": 3.0})


def test_flip_only_mirrors_exactly(tmp_path: Path) -> None:
    image = to_model_input(read_image(_image(tmp_path)), 32)
    augment = ThermalAugmentation(only(flip_probability=1.0), DEFAULT_MEAN, DEFAULT_STD)
    assert torch.allclose(augment(image), image.flip(-1), atol=1e-5)


def test_intensity_and_noise_are_in_the_inputs_own_units(tmp_path: Path) -> None:
    image = to_model_input(read_image(_image(tmp_path)), 32)
    std = torch.tensor(DEFAULT_STD).view(3, 1, 1)
    torch.manual_seed(0)
    shifted = ThermalAugmentation(only(intensity=0.1), DEFAULT_MEAN, DEFAULT_STD)(image)
    offset = (shifted - image) * std  # back in 0..1 units: one offset for every pixel
    assert offset.abs().max() <= 0.1 + 1e-5
    assert torch.allclose(offset, offset.flatten()[0].expand_as(offset), atol=1e-5)
    torch.manual_seed(1)
    noisy = ThermalAugmentation(only(noise=0.05), DEFAULT_MEAN, DEFAULT_STD)(image)
    spread = ((noisy - image) * std).std()
    assert 0.0 < spread <= 0.06


def test_geometry_keeps_the_face_and_fills_with_the_border(tmp_path: Path) -> None:
    image = to_model_input(read_image(_image(tmp_path)), 32)
    torch.manual_seed(0)
    moved = ThermalAugmentation(
        only(rotation=10.0, scale=0.1, translate_x=0.06, translate_y=0.06),
        DEFAULT_MEAN,
        DEFAULT_STD,
    )(image)
    assert moved.shape == image.shape and not torch.equal(moved, image)
    assert (moved - image).abs().mean() < 0.5 * image.abs().mean()
    assert moved.min() >= image.min() - 1e-4 and moved.max() <= image.max() + 1e-4


def test_vertical_shift_and_zoom_keep_the_midline() -> None:
    """Without ``translate_x`` and rotation a left-right symmetric face stays symmetric."""
    column = torch.linspace(-1.0, 1.0, 32).abs()
    row = torch.linspace(0.0, 1.0, 32).unsqueeze(1)
    face = (column * row).expand(3, 32, 32).contiguous()
    for seed in range(3):
        torch.manual_seed(seed)
        moved = ThermalAugmentation(only(translate_y=0.1, scale=0.1), DEFAULT_MEAN, DEFAULT_STD)(
            face
        )
        assert not torch.allclose(moved, face, atol=1e-3)
        assert torch.allclose(moved, moved.flip(-1), atol=1e-4)
    torch.manual_seed(0)
    shifted = ThermalAugmentation(only(translate_x=0.1), DEFAULT_MEAN, DEFAULT_STD)(face)
    assert not torch.allclose(shifted, shifted.flip(-1), atol=1e-3)


def test_views_are_independent_and_asymmetry_flip_swaps_halves(tmp_path: Path) -> None:
    path = _image(tmp_path)
    plain = ThermalImageDataset([path], [0], 32, use_asymmetry=True)[0].image
    flipped = ThermalImageDataset(
        [path], [0], 32, use_asymmetry=True, augmentation=only(flip_probability=1.0), views=2
    )[0]
    assert flipped.views is not None and flipped.views.shape == (2, 6, 32, 16)
    # Mirroring the face before the split swaps left (0-2) and mirrored right (3-5).
    swapped = torch.cat((plain[3:], plain[:3]))
    assert torch.allclose(flipped.views[0], swapped, atol=1e-5)
    torch.manual_seed(0)
    sample = ThermalImageDataset([path], [0], 32, augmentation=DEFAULT_AUGMENTATION, views=2)[0]
    assert sample.views is not None and not torch.equal(sample.views[0], sample.views[1])
    assert torch.equal(sample.image, sample.views[0])


def test_collate_stacks_views_view_by_view(tmp_path: Path) -> None:
    paths = [_image(tmp_path, f"f{i}.png") for i in range(3)]
    dataset = ThermalImageDataset(paths, [0, 1, 0], 32, augmentation=DEFAULT_AUGMENTATION, views=2)
    batch = collate([dataset[i] for i in range(3)])
    assert batch.views is not None and batch.views.shape == (2, 3, 3, 32, 32)
    assert torch.equal(batch.images, batch.views[0])
    single = collate([ThermalImageDataset(paths, [0, 1, 0], 32)[i] for i in range(3)])
    assert single.views is None
    with pytest.raises(ConfigurationError, match="`views`"):
        ThermalImageDataset(paths, None, 32, views=0)
