"""CAMEngine: layers, one pass, modes, hooks, grad modes, targets, validation, asymmetry."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torchvision.models import resnet18, resnet34, resnet50

from thermal_explain.cam import (
    CAMEngine,
    default_target_layers,
    feature_statistics,
    normalize_maps,
    resolve_layers,
    upsample_maps,
)
from thermal_explain.errors import ConfigurationError

LAYERS18 = [f"backbone.layer{k}.1.conv2" for k in range(1, 5)]
SIZE = 64


class TinyEncoder(nn.Module):
    """The shape of ``ThermalEncoder``: ResNet backbone without fc, projection head, classifier."""

    def __init__(self, in_channels: int = 3, num_classes: int = 2, depth: int = 18) -> None:
        super().__init__()
        self.backbone = {18: resnet18, 34: resnet34, 50: resnet50}[depth](weights=None)
        features = self.backbone.fc.in_features
        self.backbone.fc = nn.Identity()
        if in_channels != 3:
            self.backbone.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        self.projection_head = nn.Sequential(nn.Linear(features, 16), nn.ReLU(), nn.Linear(16, 8))
        self.classifier = nn.Linear(features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.backbone(x))


@pytest.fixture(scope="module")
def encoder() -> TinyEncoder:
    torch.manual_seed(0)
    return TinyEncoder().eval()


@pytest.fixture(scope="module")
def encoder6() -> TinyEncoder:
    torch.manual_seed(1)
    return TinyEncoder(in_channels=6).eval()


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.randn(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))


def all_hooks(model: nn.Module) -> int:
    return sum(
        len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
        for m in model.modules()
    )


# --- layers ----------------------------------------------------------------------------------


def test_default_layers_follow_the_resnet_depth() -> None:
    blocks34 = {1: 2, 2: 3, 3: 5, 4: 2}
    with torch.device("meta"):  # structure only: no weight initialization
        assert default_target_layers(TinyEncoder()) == LAYERS18
        assert default_target_layers(TinyEncoder(depth=34)) == [
            f"backbone.layer{k}.{b}.conv2" for k, b in blocks34.items()
        ]
        assert default_target_layers(TinyEncoder(depth=50)) == [
            f"backbone.layer{k}.{b}.conv3" for k, b in blocks34.items()
        ]
        assert default_target_layers(resnet18(weights=None)) == [n[9:] for n in LAYERS18]


def test_default_layers_need_resnet_stages() -> None:
    with pytest.raises(ConfigurationError, match="`layers`"):
        default_target_layers(nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten()))


def test_mistyped_layer_fails_at_once_with_suggestions(encoder: TinyEncoder) -> None:
    with pytest.raises(ConfigurationError) as error:
        CAMEngine(encoder, layers=["backbone.layer4.1.cnv2"])
    message = str(error.value)
    assert "`layers`" in message and "backbone.layer4.1.conv2" in message and "\n" not in message
    with pytest.raises(ConfigurationError, match="more than once"):
        resolve_layers(encoder, ["backbone.layer1", "backbone.layer1"])
    assert list(resolve_layers(encoder, "backbone.layer1")) == ["backbone.layer1"]


def test_layer_without_a_4d_output_fails_at_the_first_call(
    encoder: TinyEncoder, images: torch.Tensor
) -> None:
    engine = CAMEngine(encoder, layers=["backbone.layer4", "backbone.avgpool", "classifier"])
    with pytest.raises(ConfigurationError) as error:
        engine(images)
    assert "classifier" in str(error.value) and "4-D" in str(error.value)
    assert all_hooks(encoder) == 0


def test_layer_off_the_output_path_is_reported(images: torch.Tensor) -> None:
    class TwoBranches(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.used, self.unused = nn.Conv2d(3, 4, 3), nn.Conv2d(3, 4, 3)
            self.classifier = nn.Linear(4, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.unused(x)
            return self.classifier(self.used(x).mean((2, 3)))

    with pytest.raises(ConfigurationError, match="unused"):
        CAMEngine(TwoBranches(), layers=["used", "unused"])(images)


# --- one pass, modes, hooks --------------------------------------------------------------------


def test_one_forward_one_autograd_grad_and_no_parameter_grads(
    encoder: TinyEncoder, images: torch.Tensor, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = {"forward": 0, "grad": 0}
    real_grad = torch.autograd.grad

    def counting_grad(*args: object, **kwargs: object) -> object:
        calls["grad"] += 1
        return real_grad(*args, **kwargs)

    def no_backward(*args: object, **kwargs: object) -> None:
        raise AssertionError("the engine must not call .backward()")

    engine = CAMEngine(encoder)  # finding the default layers runs one dummy pass
    engine(images)  # the first call also checks its BatchNorm folding on one image
    monkeypatch.setattr(torch.autograd, "grad", counting_grad)
    monkeypatch.setattr(torch.Tensor, "backward", no_backward)
    marker = torch.full_like(encoder.classifier.weight, 3.0)
    encoder.classifier.weight.grad = marker.clone()
    handle = encoder.register_forward_pre_hook(
        lambda module, args: calls.__setitem__("forward", calls["forward"] + 1)
    )
    try:
        result = engine(images)
    finally:
        handle.remove()
        grad = encoder.classifier.weight.grad
        encoder.classifier.weight.grad = None
    assert calls == {"forward": 1, "grad": 1}
    assert list(result.maps) == LAYERS18
    assert torch.equal(grad, marker)
    assert all(p.grad is None for n, p in encoder.named_parameters() if n != "classifier.weight")


def test_multi_layer_pass_equals_single_layer_passes(
    encoder: TinyEncoder, images: torch.Tensor
) -> None:
    together = CAMEngine(encoder, method="layercam")(images)
    for name in LAYERS18:
        alone = CAMEngine(encoder, layers=[name], method="layercam")(images)
        assert torch.allclose(together.raw_maps[name], alone.raw_maps[name], atol=1e-6)


def test_runs_in_eval_mode_and_restores_every_mode(images: torch.Tensor) -> None:
    model = TinyEncoder()
    model.train()
    model.backbone.layer2.eval()
    before = {name: m.training for name, m in model.named_modules()}
    engine = CAMEngine(model)
    assert {name: m.training for name, m in model.named_modules()} == before
    seen = []
    handle = model.backbone.bn1.register_forward_hook(lambda m, i, o: seen.append(m.training))
    try:
        result = engine(images)
    finally:
        handle.remove()
    assert seen and not any(seen)
    assert {name: m.training for name, m in model.named_modules()} == before
    with torch.no_grad():
        model.eval()
        assert torch.allclose(result.logits, model(images), atol=1e-5)


def test_no_hook_left_and_modes_restored_when_the_model_raises(images: torch.Tensor) -> None:
    class Failing(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise RuntimeError("classifier exploded")

    model = TinyEncoder().train()
    model.classifier = Failing()
    engine = CAMEngine(model)
    with pytest.raises(RuntimeError, match="exploded"):
        engine(images)
    assert all_hooks(model) == 0
    assert all(m.training for m in model.modules())


def forward_calls(model: nn.Module) -> list[int]:
    """A list that grows by one each time ``model`` runs."""
    calls: list[int] = []
    model.register_forward_pre_hook(lambda module, args: calls.append(1))
    return calls


class InPlaceNet(nn.Module):
    """conv (hooked) -> ReLU -> conv -> pool -> linear; the ReLU may work in place."""

    def __init__(self, inplace: bool) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.relu = nn.ReLU(inplace=inplace)
        self.head = nn.Conv2d(8, 8, 3, padding=1)
        self.classifier = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.head(self.relu(self.conv(x))).mean((2, 3)))


def test_hooked_output_modified_in_place_downstream(images: torch.Tensor) -> None:
    x = images[:, :, :16, :16]
    model = InPlaceNet(inplace=False)
    activations = model.conv(x)
    logits = model.classifier(model.head(torch.relu(activations)).mean((2, 3)))
    score = logits.gather(1, logits.argmax(1, keepdim=True)).sum()
    (gradients,) = torch.autograd.grad(score, activations)
    assert bool((activations < 0).any())  # the in-place ReLU would change the values
    weights = gradients.mean((2, 3), keepdim=True)
    expected = torch.relu((weights * activations).sum(1)).detach()
    for inplace in (False, True):
        model = InPlaceNet(inplace)
        forwards = forward_calls(model)
        engine = CAMEngine(model, layers=["conv"])
        for _ in range(2):
            result = engine(x)
            assert torch.allclose(result.raw_maps["conv"][:, 0], expected, atol=1e-6), inplace
        # an in-place change is detected once, then the layer's output is always copied
        assert len(forwards) == (3 if inplace else 2)
        model.requires_grad_(False)
        frozen = CAMEngine(model, layers=["conv"])(x)
        assert torch.allclose(frozen.raw_maps["conv"][:, 0], expected, atol=1e-6), inplace


@pytest.mark.parametrize("mode", ["inference_mode", "no_grad"])
def test_works_inside_inference_mode_and_no_grad(
    mode: str, encoder: TinyEncoder, images: torch.Tensor
) -> None:
    engine = CAMEngine(encoder, method="gradcam++")
    reference = engine(images)
    context = torch.inference_mode() if mode == "inference_mode" else torch.no_grad()
    with context:
        inside = images.clone()  # an inference tensor under inference_mode
        result = engine(inside)
        assert torch.is_inference_mode_enabled() == (mode == "inference_mode")
        assert not torch.is_grad_enabled()
    for name in LAYERS18:
        assert torch.allclose(result.maps[name], reference.maps[name], atol=1e-6)
    assert torch.equal(result.targets, reference.targets)


def test_works_with_frozen_parameters(images: torch.Tensor) -> None:
    torch.manual_seed(0)
    model = TinyEncoder().eval()
    reference = CAMEngine(model)(images)
    model.requires_grad_(False)
    frozen = CAMEngine(model)(images)
    for name in LAYERS18:
        assert torch.allclose(frozen.raw_maps[name], reference.raw_maps[name], atol=1e-6)
    assert all(p.grad is None and not p.requires_grad for p in model.parameters())


def test_input_is_not_changed(encoder: TinyEncoder, images: torch.Tensor) -> None:
    copy = images.clone()
    CAMEngine(encoder, layers=LAYERS18[-1:])(images)
    assert torch.equal(images, copy) and not images.requires_grad


# --- targets -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def engine(encoder: TinyEncoder) -> CAMEngine:
    return CAMEngine(encoder, layers=LAYERS18[2:], class_names=["normal", "ICAS"])


def test_default_target_is_the_predicted_class(engine: CAMEngine, images: torch.Tensor) -> None:
    result = engine(images)
    assert torch.equal(result.predicted, result.logits.argmax(1))
    assert torch.equal(result.targets[:, 0], result.predicted)
    assert torch.allclose(result.probabilities, result.logits.softmax(1))
    assert result.maps[LAYERS18[-1]].shape == (2, 1, SIZE, SIZE)


def test_targets_by_index_name_sequence_tensor_and_all(
    engine: CAMEngine, images: torch.Tensor
) -> None:
    layer = LAYERS18[-1]
    by_class = [engine(images, target=k) for k in range(2)]
    by_name = engine(images, target="ICAS")
    assert torch.equal(by_name.targets, torch.ones(2, 1, dtype=torch.long))
    assert torch.allclose(by_name.raw_maps[layer], by_class[1].raw_maps[layer])
    mixed = engine(images, target=["ICAS", 0])
    tensor = engine(images, target=torch.tensor([1, 0]))
    assert torch.equal(mixed.targets, torch.tensor([[1], [0]]))
    assert torch.allclose(mixed.raw_maps[layer], tensor.raw_maps[layer])
    assert torch.allclose(mixed.raw_maps[layer][0], by_class[1].raw_maps[layer][0])
    assert torch.allclose(mixed.raw_maps[layer][1], by_class[0].raw_maps[layer][1])
    every = engine(images, target="all")
    assert every.targets.tolist() == [[0, 1], [0, 1]]
    assert every.maps[layer].shape == (2, 2, SIZE, SIZE)
    assert every.statistics[layer]["center_of_mass"].shape == (2, 2, 2)
    for k in range(2):
        assert torch.allclose(every.raw_maps[layer][:, k], by_class[k].raw_maps[layer][:, 0])


@pytest.mark.parametrize(
    ("target", "fragment"),
    [
        (2, "[0, 2)"),
        (-1, "[0, 2)"),
        ([0, 5], "got 5"),
        (torch.tensor([0, 1, 1]), "for 2 images"),
        ("stroke", "normal, ICAS"),
        (True, "True"),
        (0.5, "float"),
    ],
)
def test_bad_targets_name_the_argument(
    engine: CAMEngine, images: torch.Tensor, target: object, fragment: str
) -> None:
    with pytest.raises(ConfigurationError) as error:
        engine(images, target=target)
    message = str(error.value)
    assert "`target`" in message and fragment in message and "\n" not in message


def test_class_name_target_needs_class_names(encoder: TinyEncoder, images: torch.Tensor) -> None:
    with pytest.raises(ConfigurationError, match="`class_names`"):
        CAMEngine(encoder, layers=LAYERS18[-1:])(images, target="ICAS")
    with pytest.raises(ConfigurationError, match="`class_names`"):
        CAMEngine(encoder, layers=LAYERS18[-1:], class_names=["a", "b", "c"])(images)


# --- validation --------------------------------------------------------------------------------


def test_input_rank_channels_and_sizes_are_checked(
    engine: CAMEngine, encoder6: TinyEncoder, images: torch.Tensor
) -> None:
    cases = [
        (lambda: engine(images[0]), "`images`"),
        (lambda: engine(images[:, :2]), "`images` has 2 channels"),
        (lambda: engine(images.long()), "float"),
        (lambda: engine(images, original_sizes=[(10, 10)]), "`original_sizes`"),
        (lambda: engine(images, original_sizes=[(10, 0), (4, 4)]), "`original_sizes`"),
        (lambda: engine(images, original_sizes=[("a", 1), (4, 4)]), "`original_sizes`"),
        (lambda: CAMEngine(encoder6)(images), "takes 6"),
        (lambda: CAMEngine(engine.model, asymmetry=True), "`asymmetry=True`"),
        (lambda: CAMEngine(engine.model, method="cam"), "`method`"),
        (lambda: CAMEngine("resnet18"), "`model`"),  # type: ignore[arg-type]
    ]
    for call, fragment in cases:
        with pytest.raises(ConfigurationError) as error:
            call()
        assert fragment in str(error.value) and "\n" not in str(error.value)


# --- statistics, results, asymmetry ------------------------------------------------------------


def test_statistics_at_original_sizes(engine: CAMEngine, images: torch.Tensor) -> None:
    sizes = [(100, 80), (48, 64)]
    result = engine(images, original_sizes=sizes)
    for layer in engine.layers:
        for index, size in enumerate(sizes):
            expected = feature_statistics(
                normalize_maps(upsample_maps(result.display_maps[layer][index], size))
            )
            for name, values in expected.items():
                got = result.statistics[layer][name][index]
                assert torch.allclose(got, values, atol=1e-5), name
    com = result.statistics[LAYERS18[-1]]["center_of_mass"][0, 0]
    assert 0 <= com[0] <= 79 and 0 <= com[1] <= 99


def test_maps_and_records(engine: CAMEngine, images: torch.Tensor) -> None:
    result = engine(images)
    assert result.layers == LAYERS18[2:]
    for layer in result.layers:
        maps = result.maps[layer]
        assert maps.min() >= 0 and maps.max() <= 1 and not maps.isnan().any()
        assert result.display_maps[layer] is maps and maps.is_contiguous()
        assert torch.allclose(maps, normalize_maps(result.raw_maps[layer]))
    records = result.statistics_records(LAYERS18[-1])
    assert len(records) == 2 and len(records[0]["center_of_mass"]) == 2
    assert result.side_attribution is None
    fused = result.fused("mean")
    assert fused.shape == (2, 1, SIZE, SIZE) and fused.max() <= 1


def test_asymmetry_maps_and_side_attribution(encoder6: TinyEncoder) -> None:
    stacked = torch.randn(2, 6, SIZE, SIZE // 2, generator=torch.Generator().manual_seed(2))
    engine = CAMEngine(encoder6, layers=LAYERS18[1:], asymmetry=True)
    result = engine(stacked, original_sizes=[(90, 120), (64, 64)])
    for layer in engine.layers:
        half = result.maps[layer]
        assert half.shape == (2, 1, SIZE, SIZE // 2)
        assert torch.equal(result.display_maps[layer], torch.cat([half, half.flip(-1)], -1))
    sides = result.side_attribution
    assert sides is not None and sides.shape == (2, 1, 2)
    assert torch.allclose(sides.sum(-1), torch.ones(2, 1))
    x = stacked.clone().requires_grad_(True)
    logits = encoder6(x)
    (gradients,) = torch.autograd.grad(logits.gather(1, result.targets).sum(), x)
    energy = (x * gradients).abs().detach()
    left, right = energy[:, :3].sum((1, 2, 3)), energy[:, 3:].sum((1, 2, 3))
    assert torch.allclose(sides[:, 0, 0], left / (left + right), atol=1e-5)
    assert float(sides[0, 0].sum()) == pytest.approx(1.0)
    plain = CAMEngine(encoder6, layers=LAYERS18[1:])(stacked)
    for layer in engine.layers:
        assert torch.allclose(plain.raw_maps[layer], result.raw_maps[layer], atol=1e-6)
