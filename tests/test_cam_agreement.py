"""The engine's maps agree with torchcam and pytorch-grad-cam (dev-only dependencies).

Both compare the same thing: the map of each layer upsampled (bilinear, pixel centres
aligned) to the input grid. torchcam returns normalized maps on the layer's grid, so they
are upsampled here; pytorch-grad-cam normalizes and then resizes with OpenCV. Min-max
normalization is affine and bilinear resizing is linear, so the per-image Pearson
correlation is insensitive to the order of the two.

Not compared: torchcam's ``GradCAMpp``, whose ``alpha[mask].div_(...)`` divides a copy, so
its weights are ``sum(G**2 * relu(G))`` rather than the paper's; and HiResCAM, which torchcam
lacks. pytorch-grad-cam adds ``eps = 1e-6`` to the Grad-CAM++ denominator ``2 G^2 + G^3 sum(A)``,
which dominates when the gradients of an untrained network are ~1e-4; its classifier is
scaled up for that method so both libraries evaluate the paper's formula on the same model.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import resnet18

from thermal_explain.cam import CAMEngine

torchcam_methods = pytest.importorskip("torchcam.methods")
pytorch_grad_cam = pytest.importorskip("pytorch_grad_cam")
model_targets = pytest.importorskip("pytorch_grad_cam.utils.model_targets")

SIZE = 64
MIN_PEARSON = 0.999


class TinyEncoder(nn.Module):
    """The shape of ``ThermalEncoder``: ResNet-18 without fc, projection head, classifier."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.backbone = resnet18(weights=None)
        self.backbone.fc = nn.Identity()
        if in_channels != 3:
            self.backbone.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        self.projection_head = nn.Linear(512, 16)
        self.classifier = nn.Linear(512, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.backbone(x))


@pytest.fixture(scope="module", params=[3, 6], ids=["rgb", "asymmetry6"])
def setup(request: pytest.FixtureRequest) -> tuple[TinyEncoder, torch.Tensor]:
    torch.manual_seed(request.param)
    model = TinyEncoder(request.param).eval()
    images = torch.randn(3, request.param, SIZE, SIZE)
    return model, images


def assert_agree(ours: torch.Tensor, theirs: torch.Tensor, label: str) -> None:
    """Per-image Pearson r >= MIN_PEARSON; two constant maps agree, one constant map does not."""
    a, b = ours.flatten(1).double(), theirs.flatten(1).double()
    a, b = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
    norms = a.norm(dim=1) * b.norm(dim=1)
    both_flat = (a.norm(dim=1) < 1e-9) & (b.norm(dim=1) < 1e-9)
    pearson = torch.where(both_flat, 1.0, (a * b).sum(1) / norms.clamp_min(1e-30))
    assert bool((pearson >= MIN_PEARSON).all()), f"{label}: r = {pearson.tolist()}"


@pytest.mark.parametrize(
    ("method", "theirs"),
    [("gradcam", "GradCAM"), ("xgradcam", "XGradCAM"), ("layercam", "LayerCAM")],
)
def test_agrees_with_torchcam(method: str, theirs: str, setup: tuple) -> None:
    model, images = setup
    engine = CAMEngine(model, method=method)
    result = engine(images)
    extractor_class = getattr(torchcam_methods, theirs)
    with extractor_class(model, engine.layers) as extractor:
        scores = model(images)
        cams = extractor(class_idx=result.predicted.tolist(), scores=scores)
    for name, cam in zip(engine.layers, cams, strict=True):
        upsampled = F.interpolate(cam.unsqueeze(1), (SIZE, SIZE), mode="bilinear")
        assert_agree(result.maps[name][:, 0], upsampled[:, 0], f"{method} {name}")


@pytest.mark.parametrize(
    ("method", "theirs"),
    [
        ("gradcam", "GradCAM"),
        ("gradcam++", "GradCAMPlusPlus"),
        ("xgradcam", "XGradCAM"),
        ("layercam", "LayerCAM"),
        ("hirescam", "HiResCAM"),
    ],
)
def test_agrees_with_pytorch_grad_cam(method: str, theirs: str, setup: tuple) -> None:
    model, images = setup
    if method == "gradcam++":
        model = TinyEncoder(images.shape[1]).eval()
        model.load_state_dict(setup[0].state_dict())
        with torch.no_grad():
            model.classifier.weight.mul_(1e4)
    engine = CAMEngine(model, method=method)
    result = engine(images)
    targets = [model_targets.ClassifierOutputTarget(int(k)) for k in result.predicted]
    modules = dict(model.named_modules())
    for name in engine.layers:
        with getattr(pytorch_grad_cam, theirs)(model, [modules[name]]) as extractor:
            theirs_map = torch.from_numpy(extractor(images, targets))
        assert_agree(result.maps[name][:, 0], theirs_map, f"{method} {name}")
