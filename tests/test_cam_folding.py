"""BatchNorm folding: same maps as the unfolded model, the model untouched, unsafe pairs left."""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models import resnet18

from thermal_explain.cam import CAMEngine
from thermal_explain.cam.folding import FoldedModel

LAYERS = [f"backbone.layer{k}.1.conv2" for k in range(1, 5)]


class Encoder(nn.Module):
    """A ResNet-18 classifier whose BatchNorms have non-trivial running statistics."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.backbone = resnet18(weights=None, num_classes=2)
        for module in self.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.normal_(0.0, 0.2)
                module.running_var.uniform_(0.5, 2.0)
                nn.init.uniform_(module.weight, 0.5, 1.5)
                nn.init.normal_(module.bias, 0.0, 0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)


def images(count: int = 3, size: int = 48) -> torch.Tensor:
    return torch.randn(count, 3, size, size, generator=torch.Generator().manual_seed(1))


def assert_same_maps(model: nn.Module, x: torch.Tensor, layers: list[str]) -> CAMEngine:
    folded = CAMEngine(model, layers)
    plain = CAMEngine(model, layers, fold_batchnorm=False)
    ours, reference = folded(x), plain(x)
    torch.testing.assert_close(ours.logits, reference.logits, atol=1e-4, rtol=1e-4)
    for name in layers:
        torch.testing.assert_close(ours.maps[name], reference.maps[name], atol=2e-4, rtol=0)
        torch.testing.assert_close(
            ours.raw_maps[name], reference.raw_maps[name], atol=1e-5, rtol=1e-3
        )
    return folded


def test_folds_every_pair_but_the_targets_and_gives_the_same_maps() -> None:
    model = Encoder().eval()
    engine = assert_same_maps(model, images(), LAYERS)
    assert engine._folding is not None
    assert engine._folding.pairs == 20 - len(LAYERS)  # a target conv keeps its BatchNorm


def test_the_model_is_left_as_it_was() -> None:
    model = Encoder().train()
    state = {key: value.clone() for key, value in model.state_dict().items()}
    modules = [(name, id(module)) for name, module in model.named_modules()]
    CAMEngine(model, LAYERS)(images())
    assert [(name, id(module)) for name, module in model.named_modules()] == modules
    assert all(torch.equal(value, model.state_dict()[key]) for key, value in state.items())
    assert all(module.training for module in model.modules())
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())


def test_weights_changed_by_an_optimizer_step_are_followed() -> None:
    """A fused optimizer step changes weights without their version counter: no stale fold."""
    model = Encoder()
    engine = CAMEngine(model, LAYERS)
    x = images()
    before = engine(x)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.05, fused=True)
    model.train()
    nn.functional.cross_entropy(model(x), torch.tensor([0, 1, 0])).backward()
    optimizer.step()  # also updates the BatchNorm running statistics (train mode)
    after = engine(x)
    reference = CAMEngine(model, LAYERS, fold_batchnorm=False)(x)
    assert not torch.allclose(before.logits, reference.logits, atol=1e-3)
    torch.testing.assert_close(after.logits, reference.logits, atol=1e-4, rtol=1e-4)
    for name in LAYERS:
        torch.testing.assert_close(after.maps[name], reference.maps[name], atol=2e-4, rtol=0)


def test_a_layer_replaced_after_the_first_call_is_used() -> None:
    model = Encoder().eval()
    engine = CAMEngine(model, LAYERS)
    x = images()
    engine(x)
    model.backbone.layer3[0].bn1 = nn.Identity()
    reference = CAMEngine(model, LAYERS, fold_batchnorm=False)(x)
    torch.testing.assert_close(engine(x).logits, reference.logits, atol=1e-4, rtol=1e-4)


class ReadTwice(nn.Module):
    """conv -> bn, and the conv's output read again after the BatchNorm."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.target = nn.Conv2d(8, 8, 3, padding=1)
        self.classifier = nn.Linear(8, 2)
        self.bn.running_mean.fill_(0.5)
        self.bn.running_var.fill_(4.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return self.classifier(self.target(self.bn(y) + y).mean((2, 3)))


class AttributeCall(ReadTwice):
    """conv -> bn, with the BatchNorm also reached through a plain list (not a submodule)."""

    def __init__(self) -> None:
        super().__init__()
        self.plain = [self.bn]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.target(self.plain[0](self.conv(x))).mean((2, 3)))


def test_pairs_that_would_change_the_output_are_left_unfolded() -> None:
    x = images(size=16)
    for model in (ReadTwice().eval(), AttributeCall().eval()):
        engine = assert_same_maps(model, x, ["target"])
        assert engine._folding is not None and engine._folding.pairs == 0, type(model).__name__


def test_a_model_without_batchnorm_runs_once_per_call() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.LazyLinear(2))
    x = images(size=16)
    model(x)
    calls: list[int] = []
    model.register_forward_pre_hook(lambda module, args: calls.append(1))
    folding = FoldedModel(model, ["0"])
    assert folding.module_for(x, channels_last=True) is model
    assert calls == [] and folding.pairs == 0


class NeedsPairs(Encoder):
    """Refuses a batch of one image (as a model with a pairwise loss might)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] < 2:
            raise ValueError("needs pairs")
        return self.backbone(x)


def test_a_model_that_cannot_run_the_check_is_explained_unfolded() -> None:
    engine = assert_same_maps(NeedsPairs().eval(), images(count=2), LAYERS)
    assert engine._folding is not None and engine._folding.pairs == 0
