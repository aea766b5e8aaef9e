"""Two-view training of ThermalClassifier, NT-Xent, and the memorizing warning."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml

from thermal_explain.modeling.classifier import ThermalClassifier
from thermal_explain.modeling.losses import nt_xent_loss, supcon_loss
from thermal_explain.modeling.training import MEMORIZING_GAP, labelled_views, memorizing_warning

ROOT = Path(__file__).resolve().parents[1]


def test_labelled_views_are_every_view_with_its_images_label(make_batch) -> None:
    batch = make_batch(torch.randn(3, 3, 8, 8), torch.tensor([1, -1, 0]))
    batch.views = torch.randn(2, 3, 3, 8, 8)
    inputs, labels = labelled_views(batch)
    assert inputs.shape == (4, 3, 8, 8) and labels.tolist() == [1, 0, 1, 0]
    assert torch.equal(inputs[0], batch.views[0, 0]) and torch.equal(inputs[3], batch.views[1, 2])
    batch.views = None
    inputs, labels = labelled_views(batch)
    assert inputs.shape == (2, 3, 8, 8) and labels.tolist() == [1, 0]


@pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`")
def test_training_step_is_supcon_over_2n_views_plus_cross_entropy(make_batch) -> None:
    torch.manual_seed(0)
    model = ThermalClassifier(projection_dim=8, contrastive_weight=0.5, ce_weight=1.0)
    batch = make_batch(torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 0, 1]))
    batch.views = torch.randn(2, 4, 3, 32, 32)
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    original = model.supcon.forward

    def record(embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        seen.append((embeddings.detach(), labels))
        return original(embeddings, labels)

    model.supcon.forward = record
    model.encoder.eval()  # deterministic forward for the check below
    loss = model.training_step(batch, 0)
    assert seen and seen[0][0].shape == (8, 8) and seen[0][1].tolist() == [0, 1, 0, 1] * 2
    with torch.no_grad():
        embeddings, logits = model.encoder.forward_all(batch.views.flatten(0, 1))
        labels = torch.tensor([0, 1, 0, 1] * 2)
        expected = F.cross_entropy(logits, labels) + 0.5 * supcon_loss(embeddings, labels, 0.1)
    assert loss is not None and torch.allclose(loss, expected, atol=1e-5)


def test_nt_xent_matches_hand_computation() -> None:
    a = F.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), dim=1)
    b = F.normalize(torch.tensor([[1.0, 0.2], [0.3, 1.0]]), dim=1)
    views = torch.stack([a, b])
    z = torch.cat([a, b])
    t = 0.5
    total = 0.0
    for i in range(4):
        positive = (i + 2) % 4
        others = [j for j in range(4) if j != i]
        denominator = sum(math.exp(float(z[i] @ z[j]) / t) for j in others)
        total += -math.log(math.exp(float(z[i] @ z[positive]) / t) / denominator)
    assert float(nt_xent_loss(views, t)) == pytest.approx(total / 4, rel=1e-5)
    with pytest.raises(Exception, match="V >= 2 views"):
        nt_xent_loss(a.unsqueeze(0), t)


def test_memorizing_warning_names_the_gap_and_what_to_try() -> None:
    assert memorizing_warning(0.9, 0.9 - MEMORIZING_GAP) is None
    message = memorizing_warning(0.997, 0.52)
    assert message is not None and "\n" not in message
    assert "0.997" in message and "0.520" in message and "0.48" in message
    for hint in ("--data.group_pattern", "--data.augmentation", "--model.pretrained"):
        assert hint in message


def test_fit_ends_with_one_warning_when_train_beats_validation(
    thermal_faces, batch_loader, make_trainer, caplog
) -> None:
    images, labels = thermal_faces
    model = ThermalClassifier(projection_dim=16)
    train = batch_loader(images, labels, batch_size=8, shuffle=True)
    flipped = batch_loader(images, 1 - labels, batch_size=16)  # validation that cannot agree
    with caplog.at_level(logging.WARNING, logger="thermal_explain"):
        make_trainer(max_epochs=2).fit(model, train, flipped)
    warnings = [r for r in caplog.records if "memorizes" in r.getMessage()]
    assert len(warnings) == 1
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="thermal_explain"):
        make_trainer(max_epochs=2).fit(
            ThermalClassifier(projection_dim=16), train, batch_loader(images, labels, 16)
        )
    assert not [r for r in caplog.records if "memorizes" in r.getMessage()]


def test_shipped_fit_config_stops_early_and_keeps_the_best_by_validation() -> None:
    config = yaml.safe_load((ROOT / "configs" / "fit.yaml").read_text(encoding="utf-8"))
    callbacks = {
        c["class_path"].rsplit(".", 1)[-1]: c["init_args"] for c in config["trainer"]["callbacks"]
    }
    assert callbacks["EarlyStopping"]["monitor"] == "val_loss"
    assert callbacks["EarlyStopping"]["mode"] == "min"
    assert callbacks["ModelCheckpoint"]["monitor"].startswith("val_")
    assert config["data"]["views"] == 2 and config["data"]["augmentation"]["enabled"] is True
