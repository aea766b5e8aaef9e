"""Throughput of the CAM engine against the one-pass floor and the common CAM libraries.

Every contestant explains the predicted class of a ResNet-18 encoder batch at the 4 default
layers (the last conv of each stage) and returns maps on the input grid:

- ``floor``: one forward and ``torch.autograd.grad`` of the summed scores with respect to
  the 4 hooked outputs, nothing else (no weights, no maps): the least any one-pass method pays;
- ``engine``: ``CAMEngine`` (maps, raw maps, normalization, statistics);
- ``torchcam``: ``GradCAM`` with the 4 layers in one call, maps upsampled;
- ``pytorch_grad_cam``: ``GradCAM`` called once per layer, as its users do;
- ``captum``: ``LayerGradCam`` once per layer, maps upsampled.

Rounds are interleaved: in each round the engine runs back to back with every other
contestant (order alternating, contestants rotating), and each ratio is the median over
rounds of these paired ratios, since a shared machine's load drifts. The last line is JSON
with the engine's median throughput and its throughput ratio to each other contestant
(``> 1``: the engine is faster). On CPU, process CPU-time ratios are printed as well.

Usage::

    python benchmarks/bench_cam.py --device cpu --batch 16 --size 224 --threads 2 --rounds 5
    python benchmarks/bench_cam.py --device cuda --batch 64
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import resnet18

from thermal_explain.cam import CAMEngine, default_target_layers


class Encoder(nn.Module):
    """A ``ThermalEncoder``-shaped model: ResNet-18 backbone without fc, head, classifier."""

    def __init__(self, num_classes: int = 2) -> None:
        super().__init__()
        self.backbone = resnet18(weights=None)
        self.backbone.fc = nn.Identity()
        self.projection_head = nn.Sequential(nn.Linear(512, 128), nn.ReLU(), nn.Linear(128, 64))
        self.classifier = nn.Linear(512, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.backbone(x))


def make_floor(
    model: nn.Module, layers: list[nn.Module], images: torch.Tensor
) -> Callable[[], object]:
    def run() -> object:
        outputs: list[torch.Tensor] = []
        handles = [
            layer.register_forward_hook(lambda m, i, o: outputs.append(o)) for layer in layers
        ]
        try:
            with torch.enable_grad():
                logits = model(images)
                score = logits.gather(1, logits.argmax(1, keepdim=True)).sum()
                return torch.autograd.grad(score, outputs)
        finally:
            for handle in handles:
                handle.remove()

    return run


def make_torchcam(model: nn.Module, names: list[str], images: torch.Tensor) -> Callable[[], object]:
    from torchcam.methods import GradCAM

    size = images.shape[-2:]

    def run() -> object:
        with GradCAM(model, names) as extractor:
            scores = model(images)
            cams = extractor(class_idx=scores.argmax(1).tolist(), scores=scores)
        return [F.interpolate(cam.unsqueeze(1), size, mode="bilinear") for cam in cams]

    return run


def make_pytorch_grad_cam(
    model: nn.Module, layers: list[nn.Module], images: torch.Tensor
) -> Callable[[], object]:
    from pytorch_grad_cam import GradCAM

    def run() -> object:
        maps = []
        for layer in layers:
            with GradCAM(model, [layer]) as extractor:
                maps.append(extractor(images, targets=None))
        return maps

    return run


def make_captum(
    model: nn.Module, layers: list[nn.Module], images: torch.Tensor, targets: torch.Tensor
) -> Callable[[], object]:
    from captum.attr import LayerAttribution, LayerGradCam

    size = tuple(images.shape[-2:])

    def run() -> object:
        maps = []
        for layer in layers:
            attribution = LayerGradCam(model, layer).attribute(
                images, target=targets, relu_attributions=True
            )
            maps.append(LayerAttribution.interpolate(attribution, size, "bilinear"))
        return maps

    return run


def timed(run: Callable[[], object], device: torch.device) -> tuple[float, float]:
    """Wall-clock and process CPU seconds of one call (CUDA work synchronized)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    model = Encoder().to(device).eval()
    images = torch.randn(args.batch, 3, args.size, args.size, device=device)
    names = default_target_layers(model)
    modules = dict(model.named_modules())
    layers = [modules[name] for name in names]
    engine = CAMEngine(model, names)
    with torch.no_grad():
        predicted = model(images).argmax(1)

    others: dict[str, Callable[[], object]] = {"floor": make_floor(model, layers, images)}
    peers = {
        "torchcam": lambda: make_torchcam(model, names, images),
        "pytorch_grad_cam": lambda: make_pytorch_grad_cam(model, layers, images),
        "captum": lambda: make_captum(model, layers, images, predicted),
    }
    for name, factory in peers.items():
        try:
            others[name] = factory()
        except ImportError as error:
            print(f"skipping {name}: {error}")
    contestants = {"engine": lambda: engine(images), **others}

    for run in contestants.values():  # warm-up: allocator, kernels, lazy imports
        run()
    # Each round pairs the engine with every other contestant, back to back (order
    # alternating, contestants rotating), so a ratio compares runs under the same load.
    wall: dict[str, list[float]] = {name: [] for name in contestants}
    cpu: dict[str, list[float]] = {name: [] for name in contestants}
    ratios: dict[str, list[float]] = {name: [] for name in others}
    cpu_ratios: dict[str, list[float]] = {name: [] for name in others}
    order = list(others)
    for round_index in range(args.rounds):
        shift = round_index % len(order)
        for position, name in enumerate(order[shift:] + order[:shift]):
            pair = ["engine", name] if (round_index + position) % 2 == 0 else [name, "engine"]
            for member in pair:
                seconds, cpu_seconds = timed(contestants[member], device)
                wall[member].append(seconds)
                cpu[member].append(cpu_seconds)
            ratios[name].append(wall[name][-1] / wall["engine"][-1])
            cpu_ratios[name].append(cpu[name][-1] / max(cpu["engine"][-1], 1e-9))

    median = statistics.median
    print(f"device={device} batch={args.batch} size={args.size} threads={args.threads}", end=" ")
    print(f"rounds={args.rounds} (ratios: engine throughput / other's, paired per round)")
    for name in contestants:
        line = (
            f"{name:>18}: median {median(wall[name]) * 1000:8.1f} ms "
            f"{args.batch / median(wall[name]):7.2f} img/s "
            f"(min {min(wall[name]) * 1000:.1f}, max {max(wall[name]) * 1000:.1f})"
        )
        if name in ratios:
            line += f"  ratio {median(ratios[name]):.3f}"
            if device.type == "cpu":
                line += f"  cpu-time ratio {median(cpu_ratios[name]):.3f}"
        print(line)
    summary: dict[str, float | None] = {
        "engine_img_s": round(args.batch / median(wall["engine"]), 2)
    }
    for name in ("floor", "torchcam", "pytorch_grad_cam", "captum"):
        summary[f"engine_vs_{name}"] = round(median(ratios[name]), 3) if name in ratios else None
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
