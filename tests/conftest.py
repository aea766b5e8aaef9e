"""Shared test fixtures: tiny batches and near-identical synthetic thermal faces."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader

from thermal_explain.types import Batch

# Test machines are small and shared: one intra-op thread avoids oversubscription stalls.
torch.set_num_threads(1)


def _make_batch(images: torch.Tensor, labels: torch.Tensor | None = None) -> Batch:
    """A :class:`Batch` around ``(N, C, H, W)`` images; labels default to ``-1``."""
    n = images.shape[0]
    if labels is None:
        labels = torch.full((n,), -1, dtype=torch.long)
    return Batch(
        images=images,
        labels=labels.long(),
        indices=torch.arange(n),
        paths=[f"face_{index:03d}.png" for index in range(n)],
        original_sizes=[(images.shape[2], images.shape[3])] * n,
    )


@pytest.fixture
def make_batch() -> Callable[..., Batch]:
    """``make_batch(images, labels=None) -> Batch``."""
    return _make_batch


@pytest.fixture
def thermal_faces() -> tuple[torch.Tensor, torch.Tensor]:
    """``(32, 3, 32, 32)`` near-identical faces and ``(32,)`` labels (class 1 has a warm patch).

    Every image is one shared random face plus faint noise, so the classes differ only by a
    small region: the case where lagging BatchNorm statistics break eval-mode accuracy.
    """
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(32) % 2
    images = torch.rand(1, 3, 32, 32, generator=generator) + 0.05 * torch.randn(
        32, 3, 32, 32, generator=generator
    )
    images[labels == 1, :, 8:16, 8:16] += 0.3
    return images, labels


@pytest.fixture
def batch_loader() -> Callable[..., DataLoader]:
    """``batch_loader(images, labels, batch_size=8, shuffle=False)`` yielding ``Batch``es."""

    def build(
        images: torch.Tensor, labels: torch.Tensor, batch_size: int = 8, shuffle: bool = False
    ) -> DataLoader:
        items = list(zip(images, labels, strict=True))

        def collate(chunk: list[tuple[torch.Tensor, torch.Tensor]]) -> Batch:
            return _make_batch(
                torch.stack([x for x, _ in chunk]), torch.stack([y for _, y in chunk])
            )

        generator = torch.Generator().manual_seed(1)
        return DataLoader(
            items, batch_size=batch_size, shuffle=shuffle, collate_fn=collate, generator=generator
        )

    return build


@pytest.fixture
def make_trainer() -> Callable[..., L.Trainer]:
    """``make_trainer(**overrides)``: a quiet CPU Trainer (no logger, checkpoints or bars)."""

    def build(**overrides: object) -> L.Trainer:
        settings: dict[str, object] = {
            "accelerator": "cpu",
            "devices": 1,
            "logger": False,
            "enable_checkpointing": False,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "log_every_n_steps": 1,
            "num_sanity_val_steps": 0,
        }
        settings.update(overrides)
        return L.Trainer(**settings)

    return build


@pytest.fixture
def thermal_folder(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """``thermal_folder(n=6, size=32)``: synthetic faces in ``icas/`` and ``normal/`` folders.

    Returns the data root of :func:`make_synthetic_dataset` (``images/``, ``masks/``).
    """
    from thermal_explain.data.synthetic import make_synthetic_dataset

    def build(n: int = 6, size: int = 32, seed: int = 0) -> Path:
        root = tmp_path_factory.mktemp("faces")
        make_synthetic_dataset(root, n=n, size=size, seed=seed)
        return root

    return build


@pytest.fixture
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """``tiny_checkpoint(in_channels=3)``: a random ResNet-18 encoder saved as a ``.pth``.

    The file wraps the state dict with the class names of the synthetic faces.
    """
    from thermal_explain.modeling.encoder import ThermalEncoder

    def build(in_channels: int = 3, seed: int = 0) -> Path:
        torch.manual_seed(seed)
        encoder = ThermalEncoder("resnet18", in_channels, 2)
        path = tmp_path_factory.mktemp("model") / "best_contrastive_encoder.pth"
        torch.save(
            {"model_state_dict": encoder.state_dict(), "class_names": ["icas", "normal"]}, path
        )
        return path

    return build


FLIR_DIR = Path(__file__).resolve().parent / "data" / "flir"
"""Real radiometric FLIR JPEGs (CC0; see data/flir/README.md)."""


@pytest.fixture
def flir_dir() -> Path:
    """The folder of the real FLIR JPEGs."""
    return FLIR_DIR


@pytest.fixture
def cut_flir() -> Callable[..., Path]:
    """``cut_flir(target, keep_length_field)``: 200_deg_neutral.jpg with its FLIR APP1
    segment cut to its first 300 bytes.

    With ``keep_length_field`` the segment still claims its old length (the picture after
    it is damaged too); otherwise the length is fixed and only the FLIR record is broken.
    """

    def build(target: Path, keep_length_field: bool = False) -> Path:
        data = (FLIR_DIR / "200_deg_neutral.jpg").read_bytes()
        position = 2
        while not (data[position + 1] == 0xE1 and data[position + 4 : position + 9] == b"FLIR\x00"):
            position += 2 + int.from_bytes(data[position + 2 : position + 4], "big")
        length = int.from_bytes(data[position + 2 : position + 4], "big")
        field = data[position + 2 : position + 4] if keep_length_field else (302).to_bytes(2, "big")
        kept = data[position + 4 : position + 4 + 300]
        target.write_bytes(data[: position + 2] + field + kept + data[position + 2 + length :])
        return target

    return build
