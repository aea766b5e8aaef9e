"""SupCon loss against a hand computation, edge cases and numerical stability."""

from __future__ import annotations

import math

import pytest
import torch

from thermal_explain.errors import ConfigurationError
from thermal_explain.modeling.losses import SupConLoss, supcon_loss

# Four unit vectors in 2-D; labels 0, 0, 0, 1 (the last sample has no positive).
POINTS = [(1.0, 0.0), (0.6, 0.8), (0.0, 1.0), (-0.8, 0.6)]


def test_supcon_matches_hand_computation() -> None:
    t = 0.5
    # Pairwise dot products worked out by hand from POINTS.
    d01, d02, d03, d12, d13, d23 = 0.6, 0.0, -0.8, 0.8, 0.0, 0.6

    def e(dot: float) -> float:
        return math.exp(dot / t)

    def anchor_loss(positives: list[float], others: list[float]) -> float:
        denominator = sum(e(d) for d in positives + others)
        return -sum(math.log(e(d) / denominator) for d in positives) / len(positives)

    expected = (
        anchor_loss([d01, d02], [d03])  # anchor 0: positives 1, 2
        + anchor_loss([d01, d12], [d13])  # anchor 1: positives 0, 2
        + anchor_loss([d02, d12], [d23])  # anchor 2: positives 0, 1
    ) / 3  # anchor 3 has no positive and is left out

    embeddings = torch.tensor(POINTS)
    labels = torch.tensor([0, 0, 0, 1])
    assert supcon_loss(embeddings, labels, temperature=t).item() == pytest.approx(expected, 1e-6)
    assert SupConLoss(t)(embeddings, labels).item() == pytest.approx(expected, 1e-6)


def test_loss_is_lower_when_classes_cluster() -> None:
    labels = torch.tensor([0, 0, 1, 1])
    clustered = torch.tensor([(1.0, 0.0), (0.99, 0.141), (-1.0, 0.0), (-0.99, 0.141)])
    mixed = torch.tensor([(1.0, 0.0), (-1.0, 0.0), (0.99, 0.141), (-0.99, 0.141)])
    assert supcon_loss(clustered, labels) < supcon_loss(mixed, labels)


def test_no_positive_gives_zero_with_gradient() -> None:
    embeddings = torch.tensor(POINTS[:3], requires_grad=True)
    loss = supcon_loss(embeddings, torch.tensor([0, 1, 2]))
    assert loss.item() == 0.0
    loss.backward()
    assert embeddings.grad is not None
    assert torch.equal(embeddings.grad, torch.zeros(3, 2))


def test_tiny_temperature_stays_finite() -> None:
    embeddings = torch.nn.functional.normalize(torch.randn(6, 8, generator=_seeded()), dim=1)
    embeddings.requires_grad_(True)
    loss = supcon_loss(embeddings, torch.tensor([0, 0, 1, 1, 2, 2]), temperature=1e-3)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(embeddings.grad).all()


def test_bad_arguments_raise_one_line_errors() -> None:
    with pytest.raises(ConfigurationError, match="`temperature` to be a number > 0"):
        SupConLoss(temperature=0.0)
    with pytest.raises(ConfigurationError, match=r"embeddings \(N, D\) and labels \(N,\)"):
        supcon_loss(torch.zeros(4, 2), torch.zeros(3, dtype=torch.long))


def _seeded() -> torch.Generator:
    return torch.Generator().manual_seed(0)
