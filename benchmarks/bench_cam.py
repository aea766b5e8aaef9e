"""Throughput of the CAM engine against the one-pass floor and the common CAM libraries.

Every contestant explains the predicted class of a ResNet-18 encoder batch at the 4 default
layers (the last conv of each stage) and returns maps on the input grid:

- ``floor``: one forward and ``torch.autograd.grad`` of the summed scores with respect to
  the 4 hooked outputs, nothing else (no weights, no maps), in float32 and the default
  (contiguous) memory order: the least any one-pass method pays as CAM libraries run it;
- ``engine``: ``CAMEngine`` as it runs by default (float32, channels-last input, eval-mode
  BatchNorms folded into the convolutions before them: maps, raw maps, normalization,
  statistics);
- ``engine_contiguous``: the same without channels-last (what the memory order gains);
- ``engine_unfolded``: the same without BatchNorm folding (what folding gains);
- ``engine_bf16``: ``CAMEngine(precision="bf16-mixed")`` where bfloat16 is native (and
  ``engine_fp16``, ``precision="16-mixed"``, on CUDA);
- ``torchcam``: ``GradCAM`` with the 4 layers in one call, maps upsampled;
- ``pytorch_grad_cam``: ``GradCAM`` called once per layer, as its users do;
- ``captum``: ``LayerGradCam`` once per layer, maps upsampled.

Rounds are interleaved: in each round every pair (the engine with each other contestant,
and each reduced-precision engine with torchcam) runs back to back (order alternating,
pairs rotating), and each ratio is the median over rounds of these paired ratios, since a
shared machine's load drifts. On CPU, process CPU-time ratios are printed as well.

Reduced precision is also checked for what it changes: on ``--agreement-batches`` further
batches, the per-image Pearson correlation of its maps with the float32 maps (both
explaining the float32 prediction; the minimum over images, per layer) and the share of
images whose predicted class stays the same.

The last line is JSON: the engine's median throughput, its throughput ratio to each other
contestant (``> 1``: the engine is faster), ``engine_vs_contiguous`` (the channels-last
gain), ``engine_vs_unfolded`` (the BatchNorm-folding gain), ``engine_bf16_vs_torchcam``,
``bf16_map_r_min`` (the lowest per-layer minimum) with ``bf16_map_r_min_per_layer``, and
``bf16_prediction_agreement`` (likewise ``fp16_*`` on CUDA). Targets on a CPU with bfloat16:
``engine_vs_torchcam >= 1.2``, ``engine_bf16_vs_torchcam >= 2``, ``bf16_map_r_min >= 0.98``,
``bf16_prediction_agreement >= 0.99``.

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
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import resnet18

from thermal_explain.cam import CAMEngine, default_target_layers
from thermal_explain.cam.precision import bfloat16_is_native


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


REDUCED = {"bf16": "bf16-mixed", "fp16": "16-mixed"}
"""Reduced-precision engines: JSON key prefix -> precision."""

TARGETS = {
    "engine_vs_torchcam": 1.2,
    "engine_bf16_vs_torchcam": 2.0,
    "bf16_map_r_min": 0.98,
    "bf16_prediction_agreement": 0.99,
}


@dataclass
class Agreement:
    """How closely a reduced-precision engine follows the float32 one."""

    map_r_min: dict[str, float]  # per layer, minimum over images of the maps' Pearson r
    prediction_agreement: float  # share of images with the same predicted class
    confidence_max_diff: float  # largest difference of a predicted-class probability
    flat: int  # float32 maps left out of the correlations (flat: no pattern to compare)


def map_agreement(
    model: nn.Module, names: list[str], precision: str, batches: list[torch.Tensor]
) -> Agreement:
    """Reduced precision against float32 on ``batches``.

    Both engines explain the float32 prediction, so the maps compare like with like;
    images whose float32 map is flat (all zero after the ReLU) have no spatial pattern
    to compare and are left out of the correlations.
    """
    exact_engine = CAMEngine(model, names)
    reduced_engine = CAMEngine(model, names, precision=precision)
    lowest = dict.fromkeys(names, 1.0)
    same = total = flat = 0
    confidence = 0.0
    for images in batches:
        exact = exact_engine(images)
        reduced = reduced_engine(images, target=exact.predicted)
        same += int((reduced_engine(images).predicted == exact.predicted).sum())
        total += images.shape[0]
        rows = torch.arange(images.shape[0], device=images.device)
        difference = exact.probabilities - reduced.probabilities
        confidence = max(confidence, float(difference[rows, exact.predicted].abs().max()))
        for name in names:
            a, b = exact.maps[name].flatten(1).double(), reduced.maps[name].flatten(1).double()
            live = a.std(1) > 0
            flat += int((~live).sum())
            if live.any():
                lowest[name] = min(lowest[name], float(correlation(a[live], b[live]).min()))
    return Agreement(lowest, same / total, confidence, flat)


def correlation(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pearson r of each row pair of ``(N, P)`` maps (0 where one of them is flat)."""
    a = a - a.mean(1, keepdim=True)
    b = b - b.mean(1, keepdim=True)
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1)).clamp_min(1e-300)


def reduced_precisions(device: torch.device) -> dict[str, str]:
    """The reduced precisions worth timing on ``device`` (bfloat16 only where native)."""
    chosen = {}
    if bfloat16_is_native(device):
        chosen["bf16"] = REDUCED["bf16"]
    else:
        print(f"no native bfloat16 on this {device.type}: bf16-mixed would run float32; skipped")
    if device.type == "cuda":
        chosen["fp16"] = REDUCED["fp16"]
    return chosen


def run_rounds(
    contestants: dict[str, Callable[[], object]],
    pairs: list[tuple[str, str]],
    rounds: int,
    device: torch.device,
) -> tuple[dict[str, list[float]], dict[tuple[str, str], list[float]], dict]:
    """Every pair back to back in each round; returns wall times and paired ratios."""
    wall: dict[str, list[float]] = {name: [] for name in contestants}
    cpu: dict[str, list[float]] = {name: [] for name in contestants}
    ratios: dict[tuple[str, str], list[float]] = {pair: [] for pair in pairs}
    cpu_ratios: dict[tuple[str, str], list[float]] = {pair: [] for pair in pairs}
    for round_index in range(rounds):
        shift = round_index % len(pairs)
        for position, (first, second) in enumerate(pairs[shift:] + pairs[:shift]):
            order = [first, second] if (round_index + position) % 2 == 0 else [second, first]
            for member in order:
                seconds, cpu_seconds = timed(contestants[member], device)
                wall[member].append(seconds)
                cpu[member].append(cpu_seconds)
            ratios[(first, second)].append(wall[second][-1] / wall[first][-1])
            cpu_ratios[(first, second)].append(cpu[second][-1] / max(cpu[first][-1], 1e-9))
    return wall, ratios, cpu_ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--agreement-batches", type=int, default=8, help="batches for the map/class agreement"
    )
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device available")
    model = Encoder().to(device).eval()
    images = torch.randn(args.batch, 3, args.size, args.size, device=device)
    names = default_target_layers(model)
    modules = dict(model.named_modules())
    layers = [modules[name] for name in names]
    engines = {
        "engine": CAMEngine(model, names),
        "engine_contiguous": CAMEngine(model, names, channels_last=False),
        "engine_unfolded": CAMEngine(model, names, fold_batchnorm=False),
    }
    reduced = reduced_precisions(device)
    for key, precision in reduced.items():
        engines[f"engine_{key}"] = CAMEngine(model, names, precision=precision)
    with torch.no_grad():
        predicted = model(images).argmax(1)

    contestants: dict[str, Callable[[], object]] = {
        name: (lambda engine=engine: engine(images)) for name, engine in engines.items()
    }
    contestants["floor"] = make_floor(model, layers, images)
    peers = {
        "torchcam": lambda: make_torchcam(model, names, images),
        "pytorch_grad_cam": lambda: make_pytorch_grad_cam(model, layers, images),
        "captum": lambda: make_captum(model, layers, images, predicted),
    }
    for name, factory in peers.items():
        try:
            contestants[name] = factory()
        except ImportError as error:
            print(f"skipping {name}: {error}")
    others = [name for name in contestants if name != "engine"]
    pairs = [("engine", name) for name in others]
    if "torchcam" in contestants:
        pairs += [(f"engine_{key}", "torchcam") for key in reduced]

    for run in contestants.values():  # warm-up: allocator, kernels, lazy imports
        run()
    wall, ratios, cpu_ratios = run_rounds(contestants, pairs, args.rounds, device)

    median = statistics.median
    print(f"device={device} batch={args.batch} size={args.size} threads={args.threads}", end=" ")
    print(f"rounds={args.rounds} (ratios: first's throughput / second's, paired per round)")
    for name in contestants:
        print(
            f"{name:>18}: median {median(wall[name]) * 1000:8.1f} ms "
            f"{args.batch / median(wall[name]):7.2f} img/s "
            f"(min {min(wall[name]) * 1000:.1f}, max {max(wall[name]) * 1000:.1f})"
        )
    for first, second in pairs:
        line = f"{first:>18} / {second:<18} {median(ratios[(first, second)]):6.3f}"
        if device.type == "cpu":
            line += f"  cpu-time ratio {median(cpu_ratios[(first, second)]):.3f}"
        print(line)

    summary: dict[str, object] = {"engine_img_s": round(args.batch / median(wall["engine"]), 2)}
    for name in ("floor", "contiguous", "unfolded", "torchcam", "pytorch_grad_cam", "captum"):
        pair = ("engine", f"engine_{name}" if name in ("contiguous", "unfolded") else name)
        summary[f"engine_vs_{name}"] = round(median(ratios[pair]), 3) if pair in ratios else None
    batches = [
        torch.randn(args.batch, 3, args.size, args.size, device=device)
        for _ in range(args.agreement_batches)
    ]
    for key, precision in reduced.items():
        engine_name = f"engine_{key}"
        summary[f"{engine_name}_img_s"] = round(args.batch / median(wall[engine_name]), 2)
        pair = (engine_name, "torchcam")
        summary[f"{engine_name}_vs_torchcam"] = (
            round(median(ratios[pair]), 3) if pair in ratios else None
        )
        agreement = map_agreement(model, names, precision, [images, *batches])
        for name, value in agreement.map_r_min.items():
            print(f"{precision} vs float32: {name:<26} minimum map r {value:.4f}")
        print(
            f"{precision} vs float32: same predicted class for "
            f"{agreement.prediction_agreement:.1%} of {args.batch * (1 + args.agreement_batches)}"
            f" images, confidence within {agreement.confidence_max_diff:.4f} ({agreement.flat} "
            "flat float32 maps left out of the correlations)"
        )
        lowest = agreement.map_r_min
        summary[f"{key}_map_r_min"] = round(min(lowest.values()), 4)
        summary[f"{key}_map_r_min_per_layer"] = {k: round(v, 4) for k, v in lowest.items()}
        summary[f"{key}_prediction_agreement"] = round(agreement.prediction_agreement, 4)
        summary[f"{key}_confidence_max_diff"] = round(agreement.confidence_max_diff, 4)
    if device.type == "cpu":
        for key, bound in TARGETS.items():
            if summary.get(key) is not None:
                met = "met" if summary[key] >= bound else "MISSED"
                print(f"target {key} >= {bound}: {summary[key]} {met}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
