"""Faithfulness metrics: hand-computed curves, a model with known evidence, cross-checks."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from pytorch_grad_cam.metrics.cam_mult_image import DropInConfidence, IncreaseInConfidence
from pytorch_grad_cam.metrics.perturbation_confidence import (
    AveragerAcrossThresholds,
    PerturbationConfidenceMetric,
    RemoveLeastRelevantFirst,
    RemoveMostRelevantFirst,
)
from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget
from torch import Tensor, nn
from torchvision.models import resnet18

from thermal_explain.errors import ConfigurationError
from thermal_explain.metrics.faithfulness import (
    confidence_change,
    curve_auc,
    deletion_insertion,
    drop_in_confidence,
    gaussian_blur,
    increase_in_confidence,
    saliency_ranks,
    softmax_scorer,
    step_counts,
)


def sum_score(images: Tensor) -> Tensor:
    """Class-1 probability = pixel sum / 10 (valid for the 2x2 image below)."""
    value = images.sum(dim=(1, 2, 3)) / 10.0
    return torch.stack([1.0 - value, value], dim=1)


IMAGE = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
MAP = torch.tensor([[[0.1, 0.2], [0.4, 0.3]]])  # order: 3, 4, 2, 1


class TinyResNetClassifier(nn.Module):
    """The explained architecture in miniature: ResNet backbone without fc + Linear."""

    def __init__(self, num_classes: int = 2) -> None:
        super().__init__()
        self.backbone = resnet18(weights=None)
        self.backbone.fc = nn.Identity()
        self.classifier = nn.Linear(512, num_classes)

    def forward(self, images: Tensor) -> Tensor:
        return self.classifier(self.backbone(images))


class LesionModel(nn.Module):
    """Logit of class 1 = gain * (weighted mean intensity under ``weights`` - 0.5)."""

    def __init__(self, weights: Tensor, gain: float = 12.0) -> None:
        super().__init__()
        self.register_buffer("weights", weights / weights.sum())
        self.gain = gain

    def forward(self, images: Tensor) -> Tensor:
        evidence = (images.mean(dim=1) * self.weights).sum(dim=(-2, -1))
        logit = self.gain * (evidence - 0.5)
        return torch.stack([torch.zeros_like(logit), logit], dim=1)


def test_hand_computed_curves_with_zero_baseline() -> None:
    curves = deletion_insertion(IMAGE, MAP, 1, sum_score, steps=4, perturbation="zero")
    torch.testing.assert_close(curves.fractions, torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0]))
    torch.testing.assert_close(curves.deletion, torch.tensor([[1.0, 0.7, 0.3, 0.1, 0.0]]))
    torch.testing.assert_close(curves.insertion, torch.tensor([[0.0, 0.3, 0.7, 0.9, 1.0]]))
    torch.testing.assert_close(curves.deletion_auc, torch.tensor([0.4]))
    torch.testing.assert_close(curves.insertion_auc, torch.tensor([0.6]))


def test_mean_baseline_replaces_pixels_by_the_image_mean() -> None:
    curves = deletion_insertion(IMAGE, MAP, [1], sum_score, steps=4, perturbation="mean")
    torch.testing.assert_close(curves.deletion, torch.tensor([[1.0, 0.95, 0.8, 0.85, 1.0]]))


def test_confidence_change_by_hand() -> None:
    change = confidence_change(IMAGE, MAP, torch.tensor([1]), sum_score)
    # image * map = [[0.1, 0.4], [1.2, 1.2]] -> O = 0.29, Y = 1.0
    torch.testing.assert_close(change.original, torch.tensor([1.0]))
    torch.testing.assert_close(change.explained, torch.tensor([0.29]))
    torch.testing.assert_close(change.drop, torch.tensor([71.0]))
    assert change.increase.tolist() == [False]


def test_drop_and_increase_formulas() -> None:
    original = torch.tensor([0.8, 0.5, 0.0])
    explained = torch.tensor([0.4, 0.9, 0.3])
    torch.testing.assert_close(drop_in_confidence(original, explained), torch.tensor([50.0, 0, 0]))
    assert increase_in_confidence(original, explained).tolist() == [False, True, True]


def test_ranks_steps_and_auc_helpers() -> None:
    ranks = saliency_ranks(torch.tensor([[[0.5, 0.9], [0.5, 0.1]]]))
    assert ranks.tolist() == [[1, 0, 2, 3]]  # ties broken row-major
    assert step_counts(10, 4).tolist() == [0, 2, 5, 8, 10]
    fractions = torch.tensor([0.0, 0.5, 1.0])
    torch.testing.assert_close(
        curve_auc(torch.tensor([1.0, 1.0, 0.0]), fractions), torch.tensor(0.75)
    )


def test_blur_matches_opencv_with_replicated_border() -> None:
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(2, 3, 24, 20, generator=generator)
    ours = gaussian_blur(images, sigma=2.5, kernel_size=7)
    for image, blurred in zip(images, ours, strict=True):
        expected = cv2.GaussianBlur(
            image.permute(1, 2, 0).numpy(), (7, 7), 2.5, borderType=cv2.BORDER_REPLICATE
        )
        np.testing.assert_allclose(blurred.permute(1, 2, 0).numpy(), expected, atol=1e-5)


def _lesion_batch(size: int = 32) -> tuple[Tensor, Tensor, Tensor]:
    """Images with a bright square, the model's weight map and a random map."""
    generator = torch.Generator().manual_seed(1)
    images = 0.1 + 0.05 * torch.rand(3, 3, size, size, generator=generator)
    ys, xs = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    weights = torch.exp(-((ys - 20.0) ** 2 + (xs - 11.0) ** 2) / (2 * 2.0**2))
    images[:, :, 18:23, 9:14] = 1.0
    return images, weights, torch.rand(3, size, size, generator=generator)


@pytest.mark.parametrize("perturbation", ["blur", "zero", "mean"])
def test_right_map_beats_random_map(perturbation: str) -> None:
    images, weights, random_map = _lesion_batch()
    score_fn = softmax_scorer(LesionModel(weights))
    assert bool((score_fn(images)[:, 1] > 0.85).all())
    right = deletion_insertion(
        images, weights.expand(3, -1, -1), 1, score_fn, steps=16, perturbation=perturbation
    )
    random = deletion_insertion(
        images, random_map, 1, score_fn, steps=16, perturbation=perturbation
    )
    assert bool((right.deletion_auc < random.deletion_auc - 0.15).all())
    assert bool((right.insertion_auc > random.insertion_auc + 0.15).all())


def test_chunking_and_target_axis_do_not_change_results() -> None:
    images, weights, random_map = _lesion_batch()
    score_fn = softmax_scorer(LesionModel(weights))
    maps = torch.stack([weights.expand(3, -1, -1), random_map], dim=1)  # (N, T=2, H, W)
    targets = torch.tensor([[1, 0], [1, 1], [0, 1]])
    whole = deletion_insertion(images, maps, targets, score_fn, steps=8, chunk_size=1000)
    small = deletion_insertion(images, maps, targets, score_fn, steps=8, chunk_size=5)
    assert whole.deletion.shape == (3, 2, 9)
    torch.testing.assert_close(whole.deletion, small.deletion)
    torch.testing.assert_close(whole.insertion, small.insertion)
    for t in range(2):
        single = deletion_insertion(images, maps[:, t], targets[:, t], score_fn, steps=8)
        torch.testing.assert_close(whole.deletion[:, t], single.deletion)
        torch.testing.assert_close(whole.insertion[:, t], single.insertion)


def test_curve_endpoints_are_the_image_and_the_reference() -> None:
    images, weights, random_map = _lesion_batch()
    score_fn = softmax_scorer(LesionModel(weights))
    curves = deletion_insertion(images, random_map, 1, score_fn, steps=5)
    full = score_fn(images)[:, 1]
    blurred = score_fn(gaussian_blur(images))[:, 1]
    torch.testing.assert_close(curves.deletion[:, 0], full)
    torch.testing.assert_close(curves.insertion[:, -1], full)
    torch.testing.assert_close(curves.deletion[:, -1], blurred)
    torch.testing.assert_close(curves.insertion[:, 0], blurred)


def test_inputs_are_left_untouched() -> None:
    images, weights, random_map = _lesion_batch()
    before = (images.clone(), random_map.clone())
    score = softmax_scorer(LesionModel(weights))
    targets = torch.tensor([1, 1, 0])
    curves = deletion_insertion(images, random_map, targets, score, steps=4)
    change = confidence_change(images, random_map, targets, score)
    torch.testing.assert_close(images, before[0])
    torch.testing.assert_close(random_map, before[1])
    assert curves.deletion_auc.shape == change.drop.shape == (3,)
    assert change.increase.dtype == torch.bool


def test_softmax_scorer_restores_every_module_mode() -> None:
    model = TinyResNetClassifier().train()
    model.backbone.bn1.eval()  # a frozen part keeps its own mode
    before = {name: module.training for name, module in model.named_modules()}
    probabilities = softmax_scorer(model)(torch.rand(2, 3, 32, 32))
    assert {name: module.training for name, module in model.named_modules()} == before
    assert not model.backbone.bn1.training
    torch.testing.assert_close(probabilities.sum(dim=1), torch.ones(2))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"steps": 0}, "`steps`"),
        ({"chunk_size": 2.5}, "`chunk_size`"),
        ({"perturbation": "noise"}, "`perturbation`"),
        ({"blur_kernel_size": 4}, "`blur_kernel_size`"),
        ({"blur_sigma": -1.0}, "`blur_sigma`"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        deletion_insertion(IMAGE, MAP, 1, sum_score, **kwargs)


def test_bad_shapes_and_targets_are_named() -> None:
    with pytest.raises(ConfigurationError, match="resize the maps"):
        deletion_insertion(IMAGE, torch.rand(1, 3, 3), 1, sum_score)
    with pytest.raises(ConfigurationError, match="`targets`"):
        deletion_insertion(IMAGE, MAP, torch.tensor([1, 0]), sum_score)
    with pytest.raises(ConfigurationError, match="`score_fn`"):
        confidence_change(IMAGE, MAP, 5, sum_score)


# --------------------------------------------------------------------------- cross-checks


class SmallConvNet(nn.Module):
    """A few convolutions: enough spatial sensitivity for the cross-checks, fast on CPU."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(8, 16, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.classifier = nn.Linear(16, 3)

    def forward(self, images: Tensor) -> Tensor:
        return self.classifier(self.features(images))


def _cross_check_setup() -> tuple[nn.Module, Tensor, Tensor, Tensor]:
    torch.manual_seed(3)
    model = SmallConvNet().eval()
    with torch.no_grad():
        model.classifier.weight.mul_(8.0)
    images = torch.randn(6, 3, 40, 40) + torch.linspace(-1, 1, 6).view(6, 1, 1, 1)
    # distinct saliency values so percentile thresholds and ranks select the same pixels
    maps = torch.stack([torch.randperm(1600).float().view(40, 40) / 1599 for _ in range(6)])
    targets = torch.tensor([0, 1, 2, 0, 1, 2])  # mixed: some maps raise the confidence
    return model, images, maps, targets


def test_average_drop_and_increase_match_pytorch_grad_cam() -> None:
    model, images, maps, targets = _cross_check_setup()
    ours = confidence_change(images, maps, targets, softmax_scorer(model))
    grad_cam_targets = [ClassifierOutputSoftmaxTarget(int(t)) for t in targets]
    cams = maps.numpy()
    # pytorch-grad-cam reports max(0, Y - O) without dividing by Y, and O - Y > 0
    absolute_drop = DropInConfidence()(images, cams, grad_cam_targets, model)
    increase = IncreaseInConfidence()(images, cams, grad_cam_targets, model)
    with torch.no_grad():
        original = torch.softmax(model(images), dim=1).gather(1, targets[:, None])[:, 0]
    theirs = 100.0 * torch.from_numpy(absolute_drop) / original
    assert float(theirs.mean()) > 1.0
    assert 0 < int(increase.sum()) < len(increase)
    assert float(ours.drop.mean()) == pytest.approx(float(theirs.mean()), rel=0.02)
    torch.testing.assert_close(ours.drop, theirs, atol=0.05, rtol=0.02)
    assert ours.increase.float().tolist() == increase.tolist()


def _cv2_blur_imputer(image: Tensor, keep: Tensor) -> Tensor:
    """Keep pixels where ``keep`` is 1, take the rest from an OpenCV-blurred copy."""
    blurred = cv2.GaussianBlur(
        image.permute(1, 2, 0).numpy(), (11, 11), 5.0, borderType=cv2.BORDER_REPLICATE
    )
    blurred = torch.from_numpy(blurred).permute(2, 0, 1)
    return image * keep + blurred * (1 - keep)


def test_deletion_and_insertion_auc_match_pytorch_grad_cam_perturbations() -> None:
    model, images, maps, targets = _cross_check_setup()
    curves = deletion_insertion(images, maps, targets, softmax_scorer(model), steps=10)
    cams = maps.numpy()
    grad_cam_targets = [ClassifierOutputSoftmaxTarget(int(t)) for t in targets]
    with torch.no_grad():
        original = torch.softmax(model(images), dim=1).gather(1, targets[:, None])[:, 0]
    # percentile p keeps the (100 - p) % least salient pixels: deletion at 1 - p / 100;
    # the least-relevant-first variant keeps the p % most salient: insertion at p / 100.
    removed_all = PerturbationConfidenceMetric(RemoveMostRelevantFirst(0, _cv2_blur_imputer))
    blurred = torch.from_numpy(
        removed_all(images, cams, grad_cam_targets, model, return_diff=False)
    )
    for remover, ours in (
        (RemoveMostRelevantFirst, curves.deletion_auc),
        (RemoveLeastRelevantFirst, curves.insertion_auc),
    ):
        averager = AveragerAcrossThresholds(
            lambda p, remover=remover: PerturbationConfidenceMetric(remover(p, _cv2_blur_imputer)),
            percentiles=list(range(10, 100, 10)),
        )
        interior_mean = torch.from_numpy(averager(images, cams, grad_cam_targets, model)) + original
        theirs = 0.1 * (9 * interior_mean + (original + blurred) / 2)
        torch.testing.assert_close(ours, theirs, rtol=0.02, atol=1e-4)
    assert bool((curves.deletion_auc - curves.insertion_auc).abs().max() > 1e-3)
