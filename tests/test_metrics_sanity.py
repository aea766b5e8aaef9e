"""Cascading model-parameter randomization: order, verdicts, the engine, side effects."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models import resnet18

from thermal_explain.errors import ConfigurationError
from thermal_explain.metrics.sanity import (
    cam_explainer,
    cascading_randomization,
    default_cascade,
)

RESNET_CASCADE = [
    "classifier",
    "backbone.layer4",
    "backbone.layer3",
    "backbone.layer2",
    "backbone.layer1",
    "backbone.bn1",
    "backbone.conv1",
]


class TinyResNetClassifier(nn.Module):
    """The explained architecture in miniature: ResNet backbone without fc + Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = resnet18(weights=None)
        self.backbone.fc = nn.Identity()
        self.classifier = nn.Linear(512, 2)

    def forward(self, images: Tensor) -> Tensor:
        return self.classifier(self.backbone(images))


class Wrapper(nn.Module):
    """A model that holds the classifier one level down, like ``ThermalClassifier.encoder``."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = TinyResNetClassifier()


class SmallModel(nn.Module):
    """Fast stand-in with two randomizable modules."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Conv2d(1, 4, 3, padding=1)
        self.classifier = nn.Linear(256, 2)


def weight_map(model: SmallModel, count: int) -> Tensor:
    """A "map" that is a picture of the classifier's weights: it must change on reset."""
    return model.classifier.weight[0].detach().view(16, 16).expand(count, -1, -1)


def edge_map(images: Tensor) -> Tensor:
    """A model-free "map": horizontal intensity gradients of the image."""
    return F.pad((images[:, 0, :, 1:] - images[:, 0, :, :-1]).abs(), (0, 1))


def test_default_cascade_goes_from_the_classifier_down_to_conv1() -> None:
    assert default_cascade(TinyResNetClassifier()) == RESNET_CASCADE
    assert default_cascade(Wrapper()) == [f"encoder.{name}" for name in RESNET_CASCADE]
    with pytest.raises(ConfigurationError, match="`cascade`"):
        default_cascade(SmallModel())


def test_randomization_is_cumulative_and_leaves_the_model_alone() -> None:
    model = TinyResNetClassifier()
    with torch.no_grad():  # move every weight off its initial value, as training would
        for parameter in model.parameters():
            parameter.add_(0.01)
    trained = {name: value.clone() for name, value in model.state_dict().items()}
    changed_per_call: list[list[str]] = []

    def explain(copy: nn.Module) -> dict[str, Tensor]:
        state = copy.state_dict()
        changed = [
            step
            for step in RESNET_CASCADE
            if any(
                not torch.equal(state[name], trained[name])
                for name in state
                if name.startswith(f"{step}.") and name.endswith("weight")
            )
        ]
        changed_per_call.append(changed)
        return {"x": torch.rand(1, 4, 4)}

    rng_before = torch.get_rng_state()
    model.train()
    cascading_randomization(model, explain)
    assert changed_per_call == [RESNET_CASCADE[:i] for i in range(len(RESNET_CASCADE) + 1)]
    assert model.training
    assert all(torch.equal(value, trained[name]) for name, value in model.state_dict().items())
    assert torch.equal(torch.get_rng_state(), rng_before)


def test_weight_dependent_maps_pass_and_model_free_maps_fail() -> None:
    images = torch.rand(3, 1, 16, 16)

    def explain(model: nn.Module) -> dict[str, Tensor]:
        return {"weights": weight_map(model, 3), "edges": edge_map(images)}

    model = SmallModel()
    result = cascading_randomization(model, explain, cascade=["classifier", "features"])
    again = cascading_randomization(model, explain, cascade=["classifier", "features"])
    weights, edges = result.layers["weights"], result.layers["edges"]
    assert weights.rho.shape == (2, 3)
    assert weights.passed
    assert weights.final_abs_rho < 0.5
    assert weights.verdict.startswith("passes:")
    assert not edges.passed
    assert edges.mean_abs_rho == pytest.approx([1.0, 1.0])
    assert edges.verdict.startswith("fails:")
    assert "edges" in edges.verdict
    assert not result.passed
    summary = json.loads(json.dumps(result.to_dict()))
    assert summary["cascade"] == ["classifier", "features"]
    assert summary["layers"]["weights"]["passed"] is True
    assert summary["layers"]["edges"]["final_abs_rho"] == 1.0
    assert torch.equal(weights.rho, again.layers["weights"].rho)


def test_cam_engine_maps_change_once_the_weights_are_random() -> None:
    torch.manual_seed(0)
    model = TinyResNetClassifier().eval()
    images = torch.rand(2, 3, 48, 48)
    layers = ["backbone.layer2.1.conv2", "backbone.layer3.1.conv2"]
    explain = cam_explainer(images, torch.tensor([0, 1]), layers=layers)
    original = explain(model)["backbone.layer2.1.conv2"]
    result = cascading_randomization(model, explain)
    assert result.cascade == RESNET_CASCADE
    assert set(result.layers) == set(layers)
    for layer in result.layers.values():
        assert layer.rho.shape == (len(RESNET_CASCADE), 2, 1)
        assert bool((layer.rho.abs() <= 1).all())
        assert layer.final_abs_rho < 0.9
    torch.testing.assert_close(explain(model)["backbone.layer2.1.conv2"], original)


def test_errors_name_the_problem() -> None:
    model = SmallModel()

    def explain(model: nn.Module) -> dict[str, Tensor]:
        return {"weights": weight_map(model, 1)}

    with pytest.raises(ConfigurationError, match="did you mean classifier"):
        cascading_randomization(model, explain, cascade=["clasifier"])
    with pytest.raises(ConfigurationError, match="`threshold`"):
        cascading_randomization(model, explain, cascade=["classifier"], threshold=1.5)
    with pytest.raises(ConfigurationError, match="at least one"):
        cascading_randomization(model, explain, cascade=[])

    calls: list[int] = []

    def shifting(model: nn.Module) -> dict[str, Tensor]:
        calls.append(1)
        return {f"layer{len(calls)}": weight_map(model, 1)}

    with pytest.raises(ConfigurationError, match="same layers"):
        cascading_randomization(model, shifting, cascade=["classifier"])

    relu = nn.Sequential(nn.ReLU())
    with pytest.raises(ConfigurationError, match="has none"):
        cascading_randomization(relu, lambda m: {"x": torch.rand(1, 4, 4)}, cascade=["0"])
