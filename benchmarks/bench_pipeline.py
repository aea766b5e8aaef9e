"""Throughput of the whole thermal-explain pipeline, from image files to every output on disk.

The benchmark makes its own data and model: ``--images`` synthetic thermal faces
(:func:`thermal_explain.data.synthetic.make_synthetic_dataset`, JPEG, ``--size`` pixels, in the
``icas``/``normal`` class folders) or random-noise JPEGs (``--data random``), and a randomly
initialized ResNet-18 ``ThermalEncoder`` whose state dict is saved with ``torch.save`` together
with its class names ``icas``/``normal``. Every contestant explains the predicted class at the
4 default layers (the last conv of each ResNet stage), model input ``--input-size``, batch 16:

- ``engine``: the images read and preprocessed in memory beforehand, then ``CAMEngine`` over
  every batch of 16: the compute floor of the product (no decoding, no writing);
- ``e2e_no_figures``: ``ThermalInterpretabilityAnalyzer(save_figures=False, overwrite=True,
  quiet=True).batch_analyze``: model loading, decoding, engine, heatmaps, overlays, feature
  maps, the journal, ``analysis_results.json`` and ``summary_report.txt``;
- ``e2e``: the same with the 300-DPI matplotlib figures as well (every output);
- ``seed``: what the original tool did: pytorch-grad-cam ``GradCAM`` called once per layer per
  batch, then for every image and layer cv2 heatmap and overlay PNGs, the raw map as ``.npy``,
  numpy statistics and a fresh matplotlib 300-DPI figure (original, map at 70 %, colorbar,
  title, ``savefig`` with ``bbox_inches="tight"``), all written inside the loop, and the JSON
  results at the end;
- ``predict`` (and ``predict_no_figures``): ``thermal-explain predict --config
  configs/predict.yaml`` run in-process through :func:`thermal_explain.cli.main.main` with the
  settings of the analyze run it is compared with: the same images, input size, batch size,
  device and outputs, ``--overwrite``, TensorBoard only with ``--tensorboard`` (for both) and no
  data-loader processes (as the analyze run). With ``--shipped-config`` one more run,
  ``predict_shipped``, keeps the config's own TensorBoard logging and data-loader workers.

Everything runs in this process (interpreter and import start-up are not counted; one small
warm-up run of each contestant comes first), each contestant from the constructor or command
to the last file, outputs checked afterwards. Rounds are interleaved because the machine's 2
cores may be shared and its load drifts: each round runs every contestant once, in a chain where
the two sides of every ratio run back to back (predict_no_figures, e2e_no_figures, engine, e2e,
predict, seed; only e2e and seed are one run apart), forwards in odd rounds and backwards in
even ones. Throughputs are medians over rounds and each ratio is the median over rounds of the
ratio of its two runs.
Every run writes into a folder of its own and nothing is deleted until the rounds are over:
on ext4, creating a file is several times slower for a while after thousands of files were
deleted (the allocator scans the recently freed inodes; on this project's 2-core machine
0.36 ms against 0.02 ms per empty file), which would charge the cleanup of one run to the
file-writing contestant after it. A 64-image run with figures keeps about 110 MB until then.

CPU seconds (this process plus reaped children, e.g. writer worker processes) are printed beside
the wall times, and the last line repeats the ratios in CPU seconds (``cpu_*``): less sensitive
to other load, blind to what threads and processes overlap.

Ratios in the last line (targets on CPU): ``e2e_no_figures_vs_engine`` = e2e-without-figures
throughput / engine throughput (>= 0.8: writing every output but the figures costs at most 20 %
of the throughput), ``e2e_vs_engine`` = e2e throughput (every output, 300-DPI figures included)
/ engine throughput (>= 0.5), ``e2e_vs_seed`` = e2e throughput / seed throughput (>= 5) and
``predict_overhead`` = predict time / analyze time - 1 for the same outputs (<= 0.10).
``--precision bf16-mixed`` runs the engine, analyze and predict (``--trainer.precision``) in
that precision.

Before the rounds, a per-stage cost table (``stage_costs.py``: decode, preprocess, engine,
colorize/blend, PNG encode, figure, ``.npy``, journal, TensorBoard, end-of-run files) shows
where the CPU time of a run goes; its figures are in the JSON line as ``stage_ms``.

``--rss`` adds a memory check: the analyze path (figures off) over 200 and over 2,000 small
images (``--rss-size``, also the model input size) in fresh subprocesses, each reporting its
own peak RSS (``VmHWM``; ``ru_maxrss`` of a child would start from this process's peak).
``rss_2000_vs_200`` (target <= 1.15) says whether memory stays flat with the run's length;
``--rss-only`` runs the memory check alone. The timed rounds also print this process's RSS
after each run, which shows memory kept across repeated in-process runs.

Usage::

    .venv/bin/python benchmarks/bench_pipeline.py                  # 64 images, 3 rounds, CPU
    .venv/bin/python benchmarks/bench_pipeline.py --rss            # plus the memory check
    .venv/bin/python benchmarks/bench_pipeline.py --device cuda --threads 8

Heavy modules are imported inside functions: writer worker processes are started with
``spawn`` and re-import this script as their main module, and they should pay what they pay
under the ``thermal-explain`` console script, not this script's imports.
"""

from __future__ import annotations

import argparse
import inspect
import json
import logging
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stage_costs import format_stage_costs, measure_stage_costs

if TYPE_CHECKING:
    import numpy as np

REPO = Path(__file__).resolve().parents[1]
PREDICT_CONFIG = REPO / "configs" / "predict.yaml"
CLASS_NAMES = ["icas", "normal"]
PATTERN = "*/*.jpg"
BATCH_SIZE = 16
WARMUP_IMAGES = 4
SEED_FIGSIZE = (5.0, 4.5)
"""Inches of the seed's figures: at 300 DPI, cropped tight, about the product figure's pixels."""

SEED_DPI = 300
ORIGINAL_ALPHA = 0.3
HEATMAP_ALPHA = 0.7
RSS_COUNTS = (200, 2000)

TARGETS = {
    "e2e_no_figures_vs_engine": (">=", 0.8),
    "e2e_vs_engine": (">=", 0.5),
    "e2e_vs_seed": (">=", 5.0),
    "predict_overhead": ("<=", 0.10),
    "rss_2000_vs_200": ("<=", 1.15),
}


# --------------------------------------------------------------------------- fixtures
@dataclass
class Fixture:
    """The data set and checkpoint every contestant works on."""

    image_dir: Path
    paths: list[Path]
    checkpoint: Path
    work: Path
    input_size: int
    device: str
    tensorboard: bool = False
    layers: list[str] = field(default_factory=list)
    precision: str = "32-true"


def make_images(
    root: Path, count: int, size: int, kind: str, seed: int = 0
) -> tuple[Path, list[Path]]:
    """``count`` JPEGs in ``root/images/{icas,normal}/`` (synthetic faces or random noise).

    Returns:
        The image folder and the image paths.
    """
    folder = root / "images"
    if kind == "synthetic":
        from thermal_explain.data.synthetic import make_synthetic_dataset

        dataset = make_synthetic_dataset(root, n=count, size=size, seed=seed, ext="jpg")
        return dataset.image_dir, list(dataset.paths)
    import cv2
    import numpy as np

    rng = np.random.default_rng(seed)
    paths = []
    for index in range(count):
        label = CLASS_NAMES[index % 2]
        (folder / label).mkdir(parents=True, exist_ok=True)
        path = folder / label / f"noise_{index:05d}.jpg"
        cv2.imwrite(str(path), rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
        paths.append(path)
    return folder, paths


def make_checkpoint(path: Path, seed: int = 0) -> None:
    """A random ResNet-18 ``ThermalEncoder`` state dict with its class names."""
    import torch

    from thermal_explain.modeling.encoder import ThermalEncoder

    torch.manual_seed(seed)
    encoder = ThermalEncoder(backbone="resnet18", in_channels=3, num_classes=len(CLASS_NAMES))
    torch.save({"state_dict": encoder.state_dict(), "class_names": CLASS_NAMES}, path)


def default_layers(checkpoint: Path) -> list[str]:
    from thermal_explain.cam import default_target_layers
    from thermal_explain.modeling.classifier import ThermalClassifier

    return list(default_target_layers(ThermalClassifier(model_path=str(checkpoint)).encoder))


# --------------------------------------------------------------------------- contestants
def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def prepare_engine(fixture: Fixture, paths: list[Path]) -> Callable[[], int]:
    """(a) ``CAMEngine`` over in-memory batches; returns the number of images explained."""
    import torch

    from thermal_explain.cam import CAMEngine
    from thermal_explain.data.images import read_image
    from thermal_explain.data.preprocessing import to_model_input
    from thermal_explain.modeling.classifier import ThermalClassifier

    model = ThermalClassifier(model_path=str(fixture.checkpoint)).eval().to(fixture.device)
    engine = CAMEngine(
        model.encoder, class_names=model.class_names, **precision_argument(fixture.precision)
    )
    images = [read_image(path) for path in paths]
    batches = []
    for start in range(0, len(images), BATCH_SIZE):
        chunk = images[start : start + BATCH_SIZE]
        tensor = torch.stack([to_model_input(image, fixture.input_size) for image in chunk])
        batches.append((tensor.to(fixture.device), [image.shape[:2] for image in chunk]))

    def run() -> int:
        explained = 0
        for tensor, sizes in batches:
            result = engine(tensor, original_sizes=sizes)
            explained += int(result.predicted.shape[0])
        sync(fixture.device)
        return explained

    return run


def run_analyze(fixture: Fixture, image_dir: Path, out: Path, figures: bool) -> int:
    """(b)/(c) the Python API end to end; returns the number of successful records."""
    from thermal_explain import ThermalInterpretabilityAnalyzer

    analyzer = ThermalInterpretabilityAnalyzer(
        fixture.checkpoint,
        **analyzer_tensorboard(fixture.tensorboard),
        output_dir=out,
        image_size=fixture.input_size,
        batch_size=BATCH_SIZE,
        device=fixture.device,
        save_figures=figures,
        overwrite=True,
        quiet=True,
        **precision_argument(fixture.precision),
    )
    records = analyzer.batch_analyze(image_dir, PATTERN)
    return sum(1 for record in records if record.get("status") == "ok")


def precision_argument(precision: str) -> dict[str, str]:
    """``precision=...`` where it is not the default (versions before it have no such option)."""
    return {} if precision == "32-true" else {"precision": precision}


def analyzer_tensorboard(wanted: bool) -> dict[str, bool]:
    """The analyzer's TensorBoard argument when it has one (later versions log by default).

    Newer analyzers take their options as keyword overrides of ``AnalysisOptions``, whose
    fields (not the signature) name them.
    """
    from thermal_explain import ThermalInterpretabilityAnalyzer

    names = set(inspect.signature(ThermalInterpretabilityAnalyzer).parameters)
    try:
        from thermal_explain.pipeline.options import AnalysisOptions
    except ImportError:
        pass
    else:
        names |= {item.name for item in fields(AnalysisOptions)}
    if "log_to_tensorboard" in names:
        return {"log_to_tensorboard": wanted}
    if wanted:
        raise SystemExit("--tensorboard: this ThermalInterpretabilityAnalyzer cannot log to it")
    return {}


def run_predict(
    fixture: Fixture, image_dir: Path, out: Path, figures: bool, shipped: bool = False
) -> int:
    """(e) ``thermal-explain predict`` in-process; returns the number of successful records.

    Unless ``shipped``, TensorBoard logging follows ``fixture.tensorboard`` and there are no
    data-loader processes, as in the analyze run it is compared with; ``shipped`` keeps the
    config's own values.
    """
    from thermal_explain.cli.main import main

    accelerator = "gpu" if fixture.device.startswith("cuda") else "cpu"
    args = [
        "predict",
        "--config",
        str(PREDICT_CONFIG),
        "--model.model_path",
        str(fixture.checkpoint),
        "--data.image_dir",
        str(image_dir),
        "--data.pattern",
        PATTERN,
        "--data.image_size",
        str(fixture.input_size),
        "--data.batch_size",
        str(BATCH_SIZE),
        "--output_dir",
        str(out),
        "--overwrite",
        "true",
        "--gradcam.save_figures",
        "true" if figures else "false",
        "--trainer.accelerator",
        accelerator,
        "--trainer.enable_progress_bar",
        "false",
    ]
    if fixture.precision != "32-true":
        args += ["--trainer.precision", fixture.precision]
    if not shipped:
        tensorboard = "true" if fixture.tensorboard else "false"
        args += ["--data.num_workers", "0", "--gradcam.log_to_tensorboard", tensorboard]
    status = main(args)
    if status != 0:
        raise RuntimeError(f"thermal-explain predict exited with {status}")
    records = json.loads((out / "analysis_results.json").read_text(encoding="utf-8"))
    return sum(1 for record in records if record.get("status") == "ok")


def _seed_statistics(cam: np.ndarray) -> dict[str, Any]:
    import numpy as np

    total = float(cam.sum())
    ys, xs = np.indices(cam.shape)
    com = (
        [round(float((xs * cam).sum()) / total), round(float((ys * cam).sum()) / total)]
        if total > 0
        else [cam.shape[1] // 2, cam.shape[0] // 2]
    )
    return {
        "max_activation": round(float(cam.max()), 4),
        "mean_activation": round(float(cam.mean()), 4),
        "std_activation": round(float(cam.std()), 4),
        "activation_area": round(float((cam >= 0.5).mean()), 4),
        "center_of_mass": com,
    }


def run_seed(fixture: Fixture, paths: list[Path], out: Path) -> int:
    """(d) the original tool's loop; returns the number of images written."""
    import cv2
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import torch
    from pytorch_grad_cam import GradCAM

    from thermal_explain.modeling.classifier import ThermalClassifier

    shutil.rmtree(out, ignore_errors=True)
    folders = {name: out / name for name in ("gradcam_heatmaps", "overlay_images", "feature_maps")}
    for folder in folders.values():
        folder.mkdir(parents=True)
    model = ThermalClassifier(model_path=str(fixture.checkpoint)).eval().to(fixture.device)
    encoder = model.encoder
    modules = dict(encoder.named_modules())
    mean = np.array([0.485, 0.456, 0.406], dtype=np.float32)
    std = np.array([0.229, 0.224, 0.225], dtype=np.float32)
    size = fixture.input_size
    records = []
    for start in range(0, len(paths), BATCH_SIZE):
        chunk = paths[start : start + BATCH_SIZE]
        originals = [cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB) for path in chunk]
        inputs = np.stack(
            [(cv2.resize(image, (size, size)) / 255.0 - mean) / std for image in originals]
        )
        tensor = torch.from_numpy(inputs.astype(np.float32)).permute(0, 3, 1, 2)
        tensor = tensor.to(fixture.device)
        with torch.no_grad():
            probabilities = encoder(tensor).softmax(1).cpu().numpy()
        cams = {}
        for layer in fixture.layers:
            with GradCAM(model=encoder, target_layers=[modules[layer]]) as method:
                cams[layer] = method(input_tensor=tensor, targets=None)
        for i, (path, original) in enumerate(zip(chunk, originals, strict=True)):
            predicted = int(probabilities[i].argmax())
            label = CLASS_NAMES[predicted].upper()
            confidence = float(probabilities[i, predicted])
            height, width = original.shape[:2]
            gray = cv2.cvtColor(cv2.cvtColor(original, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2BGR)
            results = {}
            for layer in fixture.layers:
                cam = cams[layer][i]
                resized = cv2.resize(cam, (width, height))
                heatmap = cv2.applyColorMap(np.uint8(255 * resized), cv2.COLORMAP_JET)
                overlay = cv2.addWeighted(gray, ORIGINAL_ALPHA, heatmap, HEATMAP_ALPHA, 0)
                stem = f"{path.stem}_{layer.replace('.', '_')}_{label}"
                heatmap_path = folders["gradcam_heatmaps"] / f"{stem}_heatmap.png"
                overlay_path = folders["overlay_images"] / f"{stem}_overlay.png"
                figure_path = folders["overlay_images"] / f"{stem}_overlay_plt.png"
                cv2.imwrite(str(heatmap_path), heatmap)
                cv2.imwrite(str(overlay_path), overlay)
                np.save(folders["feature_maps"] / f"{stem}.npy", cam.astype(np.float32))
                plt.figure(figsize=SEED_FIGSIZE)
                plt.imshow(original)
                plt.imshow(resized, cmap="jet", alpha=HEATMAP_ALPHA)
                plt.colorbar()
                plt.title(f"Grad-CAM {layer}\nPredicted: {label} ({confidence:.1%})")
                plt.axis("off")
                plt.savefig(figure_path, dpi=SEED_DPI, bbox_inches="tight")
                plt.close()
                results[layer] = {
                    "heatmap_path": str(heatmap_path),
                    "overlay_path": str(overlay_path),
                    "overlay_plt_path": str(figure_path),
                    "feature_statistics": _seed_statistics(resized),
                }
            records.append(
                {
                    "image_path": str(path),
                    "predicted_class": predicted,
                    "confidence": round(confidence, 4),
                    "gradcam_results": results,
                }
            )
    (out / "analysis_results.json").write_text(json.dumps(records, indent=2), encoding="utf-8")
    confidences = [record["confidence"] for record in records]
    (out / "summary_report.txt").write_text(
        f"images: {len(records)}\nmean confidence: {statistics.fmean(confidences):.4f}\n",
        encoding="utf-8",
    )
    return len(records)


# --------------------------------------------------------------------------- checks
def count_files(out: Path, suffix: str) -> int:
    return sum(1 for path in out.rglob(f"*{suffix}") if path.is_file())


def check_outputs(name: str, out: Path | None, images: int, layers: int, figures: bool) -> None:
    """Raise unless ``out`` holds one heatmap, overlay, map (and figure) per image and layer."""
    if out is None:
        return
    expected = images * layers
    counts = {
        "_heatmap.png": count_files(out, "_heatmap.png"),
        "_overlay.png": count_files(out, "_overlay.png"),
        ".npy": count_files(out, ".npy"),
        "_overlay_plt.png": count_files(out, "_overlay_plt.png"),
    }
    wanted = {key: expected for key in counts}
    wanted["_overlay_plt.png"] = expected if figures else 0
    if counts != wanted:
        raise RuntimeError(f"{name}: expected files {wanted} in {out}, found {counts}")
    for required in ("analysis_results.json", "summary_report.txt"):
        if not (out / required).is_file():
            raise RuntimeError(f"{name}: {required} missing in {out}")


# --------------------------------------------------------------------------- timing
@dataclass
class Contestant:
    """One timed path: ``run(image_dir, paths, out)`` returns the images it explained.

    ``prepare(paths)``, when given, runs untimed before the rounds (the engine's in-memory
    batches).
    """

    name: str
    run: Callable[[Path, list[Path], Path], int]
    figures: bool | None  # None: writes nothing
    prepare: Callable[[list[Path]], None] | None = None
    times: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)


def cpu_seconds() -> float:
    """User + system CPU of this process and its reaped children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(
    contestant: Contestant, image_dir: Path, paths: list[Path], out: Path, layers: int
) -> tuple[float, float]:
    """Run once; returns (wall seconds, CPU seconds) after checking what it produced."""
    if out.exists():
        shutil.rmtree(out)
    cpu = cpu_seconds()
    started = time.perf_counter()
    done = contestant.run(image_dir, paths, out)
    wall = time.perf_counter() - started
    cpu = cpu_seconds() - cpu
    if done != len(paths):
        raise RuntimeError(f"{contestant.name}: {done} of {len(paths)} images explained")
    check_outputs(
        contestant.name,
        out if contestant.figures is not None else None,
        len(paths),
        layers,
        bool(contestant.figures),
    )
    return wall, cpu


def make_contestants(fixture: Fixture, args: argparse.Namespace) -> list[Contestant]:
    engines: dict[tuple[Path, ...], Callable[[], int]] = {}

    def prepare(paths: list[Path]) -> None:
        if tuple(paths) not in engines:
            engines[tuple(paths)] = prepare_engine(fixture, paths)

    def engine(image_dir: Path, paths: list[Path], out: Path) -> int:
        prepare(paths)  # a no-op after the untimed call before the rounds
        return engines[tuple(paths)]()

    # In chain order: both sides of every reported ratio are neighbours (but e2e and seed).
    contestants = [
        Contestant(
            "predict_no_figures",
            lambda d, p, o: run_predict(fixture, d, o, figures=False),
            False,
        ),
        Contestant(
            "e2e_no_figures", lambda d, p, o: run_analyze(fixture, d, o, figures=False), False
        ),
        Contestant("engine", engine, None, prepare),
        Contestant("e2e", lambda d, p, o: run_analyze(fixture, d, o, figures=True), True),
        Contestant("predict", lambda d, p, o: run_predict(fixture, d, o, figures=True), True),
        Contestant("seed", lambda d, p, o: run_seed(fixture, p, o), True),
    ]
    if args.shipped_config:
        contestants.insert(
            5,
            Contestant(
                "predict_shipped",
                lambda d, p, o: run_predict(fixture, d, o, figures=True, shipped=True),
                True,
            ),
        )
    return contestants


def paired(a: Contestant, b: Contestant, cpu: bool = False) -> float:
    """Median over rounds of a's wall (or CPU) seconds / b's."""
    first, second = (a.cpu, b.cpu) if cpu else (a.times, b.times)
    return statistics.median(x / y for x, y in zip(first, second, strict=True))


# --------------------------------------------------------------------------- memory
def _status_mib(field_name: str) -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field_name} in /proc/self/status")


def peak_rss_mib() -> float:
    """This process's peak resident set since it started (``VmHWM``), in MiB.

    Not ``getrusage``: on Linux a child's ``ru_maxrss`` starts from its parent's peak (the
    memory it was forked or vforked from), which would hide the child's own figure.
    """
    return _status_mib("VmHWM")


def rss_mib() -> float:
    """This process's resident set now (``VmRSS``), in MiB."""
    return _status_mib("VmRSS")


def rss_child(image_dir: str, size: int, device: str, threads: int, out: str) -> None:
    """Body of a ``--rss-child`` subprocess: one analyze run, figures off; prints JSON."""
    import torch

    from thermal_explain import ThermalInterpretabilityAnalyzer

    torch.set_num_threads(threads)
    started = time.perf_counter()
    analyzer = ThermalInterpretabilityAnalyzer(
        Path(image_dir).parent / "model.pth",
        **analyzer_tensorboard(False),
        output_dir=out,
        image_size=size,
        batch_size=BATCH_SIZE,
        device=device,
        save_figures=False,
        overwrite=True,
        quiet=True,
    )
    loaded = peak_rss_mib()
    records = analyzer.batch_analyze(image_dir, PATTERN)
    ok = sum(1 for record in records if record.get("status") == "ok")
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    report = {
        "ok": ok,
        "seconds": round(time.perf_counter() - started, 2),
        "peak_mib": round(max(peak_rss_mib(), children), 1),
        "loaded_mib": round(loaded, 1),
    }
    print(json.dumps(report))


def measure_rss(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Peak RSS of the analyze path (figures off) over 200 and 2,000 images, in subprocesses."""
    roots = {}
    for count in RSS_COUNTS:
        root = work / f"rss_{count}"
        make_images(root, count, args.rss_size, args.data)
        make_checkpoint(root / "model.pth")
        roots[count] = root
    peaks: dict[int, list[float]] = {count: [] for count in RSS_COUNTS}
    for round_index in range(args.rss_rounds):
        order = RSS_COUNTS if round_index % 2 == 0 else RSS_COUNTS[::-1]
        for count in order:
            root = roots[count]
            command = [
                sys.executable,
                str(Path(__file__).resolve()),
                "--rss-child",
                str(root / "images"),
                "--rss-size",
                str(args.rss_size),
                "--device",
                args.device,
                "--threads",
                str(args.threads),
                "--rss-out",
                str(root / "out"),
            ]
            child = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
            if child.returncode != 0:
                raise RuntimeError(
                    f"RSS run over {count} images failed ({child.returncode}): "
                    f"{child.stderr.strip()[-2000:]}"
                )
            report = json.loads(child.stdout.strip().splitlines()[-1])
            if report["ok"] != count:
                raise RuntimeError(f"RSS run: {report['ok']} of {count} images explained")
            peaks[count].append(report["peak_mib"])
            print(
                f"rss round {round_index + 1}: {count:5d} images ({args.rss_size} px) "
                f"{report['seconds']:6.1f} s, peak RSS {report['peak_mib']:7.1f} MiB "
                f"(after loading the model {report['loaded_mib']:.1f} MiB)",
                flush=True,
            )
    small, large = (statistics.median(peaks[count]) for count in RSS_COUNTS)
    return {
        f"rss_{RSS_COUNTS[0]}_mb": round(small, 1),
        f"rss_{RSS_COUNTS[1]}_mb": round(large, 1),
        f"rss_{RSS_COUNTS[1]}_vs_{RSS_COUNTS[0]}": round(large / small, 3),
    }


# --------------------------------------------------------------------------- main
def quiet_libraries() -> None:
    """Keep Lightning's start-up banners and known warnings out of the report."""
    import lightning.fabric
    import lightning.pytorch  # noqa: F401  (sets its loggers' levels when imported)

    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*No seed found.*")
    warnings.filterwarnings("ignore", category=DeprecationWarning)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--images", type=int, default=64, help="images per timed run")
    parser.add_argument("--size", type=int, default=224, help="side of the generated images")
    parser.add_argument("--input-size", type=int, default=224, help="model input side")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument(
        "--precision",
        choices=("32-true", "bf16-mixed", "16-mixed"),
        default="32-true",
        help="the engine's precision in every contestant but the seed",
    )
    parser.add_argument("--data", choices=("synthetic", "random"), default="synthetic")
    parser.add_argument(
        "--shipped-config",
        action="store_true",
        help="also time predict with the config's TensorBoard logging and loader workers",
    )
    parser.add_argument(
        "--tensorboard",
        action="store_true",
        help="analyze and predict both log overlays to TensorBoard (default: neither)",
    )
    parser.add_argument("--rss", action="store_true", help="add the 200 vs 2,000 memory check")
    parser.add_argument("--rss-size", type=int, default=64, help="image and input side (--rss)")
    parser.add_argument("--rss-rounds", type=int, default=1, help="rounds of the memory check")
    parser.add_argument("--rss-only", action="store_true", help="the memory check alone")
    parser.add_argument("--workdir", type=Path, default=None, help="keep data and outputs here")
    parser.add_argument("--rss-child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--rss-out", default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def benchmark(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    import torch

    torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device available")
    quiet_libraries()
    started = time.perf_counter()
    image_dir, paths = make_images(work / "data", args.images, args.size, args.data)
    warm_dir, warm_paths = make_images(work / "warmup", WARMUP_IMAGES, args.size, args.data, 1)
    checkpoint = work / "model.pth"
    make_checkpoint(checkpoint)
    fixture = Fixture(
        image_dir, paths, checkpoint, work, args.input_size, args.device, args.tensorboard
    )
    fixture.layers = default_layers(checkpoint)
    fixture.precision = args.precision
    print(
        f"{len(paths)} {args.data} images of {args.size} px, input {args.input_size}, "
        f"batch {BATCH_SIZE}, layers {fixture.layers}, device {args.device}, "
        f"{args.threads} torch threads, {os.cpu_count()} CPUs, TensorBoard "
        f"{'on' if args.tensorboard else 'off'}; setup "
        f"{time.perf_counter() - started:.1f} s",
        flush=True,
    )
    stages = measure_stage_costs(checkpoint, paths, args.input_size, args.device, args.precision)
    print(format_stage_costs(stages), flush=True)
    contestants = make_contestants(fixture, args)
    layers = len(fixture.layers)
    for contestant in contestants:  # imports, font caches, first allocations
        timed(contestant, warm_dir, warm_paths, work / "out" / "warmup", layers)
    for contestant in contestants:
        if contestant.prepare is not None:
            contestant.prepare(paths)
    for round_index in range(args.rounds):
        order = contestants if round_index % 2 == 0 else contestants[::-1]
        for contestant in order:
            out = work / "out" / f"round{round_index + 1}" / contestant.name
            wall, cpu = timed(contestant, image_dir, paths, out, layers)
            contestant.times.append(wall)
            contestant.cpu.append(cpu)
            print(
                f"round {round_index + 1}: {contestant.name:<20} {wall:7.2f} s "
                f"({len(paths) / wall:6.2f} img/s, CPU {cpu:6.1f} s, RSS {rss_mib():6.0f} MiB)",
                flush=True,
            )
    by_name = {contestant.name: contestant for contestant in contestants}
    print("\nmedians over rounds:")
    for contestant in contestants:
        wall = statistics.median(contestant.times)
        print(
            f"  {contestant.name:<20} {wall:7.2f} s  {len(paths) / wall:7.2f} img/s  "
            f"CPU {statistics.median(contestant.cpu):6.1f} s  "
            f"(min {min(contestant.times):.2f}, max {max(contestant.times):.2f})"
        )

    def throughput(name: str) -> float:
        return round(len(paths) / statistics.median(by_name[name].times), 3)

    result: dict[str, Any] = {
        "images": len(paths),
        "engine_img_s": throughput("engine"),
        "e2e_no_figures_img_s": throughput("e2e_no_figures"),
        "e2e_img_s": throughput("e2e"),
        "seed_img_s": throughput("seed"),
        "predict_img_s": throughput("predict"),
        "e2e_no_figures_vs_engine": round(paired(by_name["engine"], by_name["e2e_no_figures"]), 3),
        "e2e_vs_engine": round(paired(by_name["engine"], by_name["e2e"]), 3),
        "e2e_vs_seed": round(paired(by_name["seed"], by_name["e2e"]), 3),
        "predict_overhead": round(paired(by_name["predict"], by_name["e2e"]) - 1, 3),
        "predict_no_figures_img_s": throughput("predict_no_figures"),
        "predict_no_figures_overhead": round(
            paired(by_name["predict_no_figures"], by_name["e2e_no_figures"]) - 1, 3
        ),
    }
    # The same ratios in CPU seconds (this process and reaped worker processes): less
    # sensitive to other load on the machine, blind to overlap between threads.
    result["cpu_e2e_no_figures_vs_engine"] = round(
        paired(by_name["engine"], by_name["e2e_no_figures"], cpu=True), 3
    )
    result["cpu_e2e_vs_engine"] = round(paired(by_name["engine"], by_name["e2e"], cpu=True), 3)
    result["cpu_e2e_vs_seed"] = round(paired(by_name["seed"], by_name["e2e"], cpu=True), 3)
    result["cpu_predict_overhead"] = round(
        paired(by_name["predict"], by_name["e2e"], cpu=True) - 1, 3
    )
    if "predict_shipped" in by_name:
        result["predict_shipped_img_s"] = throughput("predict_shipped")
        result["predict_shipped_overhead"] = round(
            paired(by_name["predict_shipped"], by_name["e2e"]) - 1, 3
        )
    result["stage_ms"] = {name: round(value, 2) for name, value in stages.items()}
    result.update(
        device=args.device,
        threads=args.threads,
        rounds=args.rounds,
        tensorboard=args.tensorboard,
        precision=args.precision,
    )
    return result


def report_targets(result: dict[str, Any]) -> None:
    if result.get("device") != "cpu":
        return
    for key, (sense, bound) in TARGETS.items():
        if key not in result:
            continue
        value = result[key]
        met = value >= bound if sense == ">=" else value <= bound
        print(f"target {key} {sense} {bound}: {value} {'met' if met else 'MISSED'}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.rss_child is not None:
        rss_child(args.rss_child, args.rss_size, args.device, args.threads, args.rss_out)
        return 0
    if args.images < 1 or args.rounds < 1 or args.rss_rounds < 1:
        raise SystemExit("--images, --rounds and --rss-rounds must be >= 1")
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        work = args.workdir.resolve()
        result = run_all(args, work)
    else:
        with tempfile.TemporaryDirectory(prefix="bench_pipeline_") as folder:
            result = run_all(args, Path(folder))
    report_targets(result)
    print(json.dumps(result))
    return 0


def run_all(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    if args.rss_only:
        return measure_rss(args, work)
    result = benchmark(args, work)
    if args.rss:
        print(flush=True)
        result.update(measure_rss(args, work))
    return result


if __name__ == "__main__":
    sys.exit(main())
