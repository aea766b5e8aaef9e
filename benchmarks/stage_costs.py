"""Per-stage cost of the pipeline, per image: where a run's CPU time goes.

Each stage is timed on its own, in this thread, on the benchmark's images and the engine's
maps for them, with the functions the writer's workers call: reading and decoding the file,
preprocessing, the engine, colorizing and blending, PNG encoding (and writing) of heatmaps
and overlays, the 300-DPI figures, the ``.npy`` feature maps, the journal, TensorBoard
previews, and the end-of-run files (results, report, summary plots) spread over the run's
images. The table gives CPU milliseconds per image (every layer) and the share of the sum;
whichever stage leads is the next bottleneck. The engine's figure is CPU time over all its
threads (on a GPU only what the host spends launching it); the rest runs on one thread (the
writer's workers spread it over the cores).

Imported by ``bench_pipeline.py``; heavy modules are imported inside functions.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BATCH = 16


def _cpu_ms(run: Callable[[], object], repeats: int) -> float:
    """Median CPU milliseconds of ``run`` over ``repeats`` calls after one warm-up call."""
    run()
    samples = []
    for _ in range(repeats):
        started = time.process_time()
        run()
        samples.append((time.process_time() - started) * 1000)
    return statistics.median(samples)


def measure_stage_costs(
    checkpoint: Path,
    paths: list[Path],
    input_size: int,
    device: str,
    precision: str = "32-true",
    repeats: int = 3,
) -> dict[str, float]:
    """CPU milliseconds per image of every stage, on the first ``BATCH`` images of ``paths``.

    Returns:
        ``{stage: ms per image}`` in pipeline order.
    """
    import cv2
    import numpy as np
    import torch

    from thermal_explain.cam import CAMEngine
    from thermal_explain.data.images import read_image
    from thermal_explain.data.preprocessing import to_model_input
    from thermal_explain.modeling.classifier import ThermalClassifier
    from thermal_explain.output.colormaps import get_colormap
    from thermal_explain.output.figures import FigureRenderer, figure_title
    from thermal_explain.output.journal import JournalWriter
    from thermal_explain.output.render import blend, colorize, encode_png, resize_map, write_file

    chunk = paths[:BATCH]
    count = len(chunk)
    model = ThermalClassifier(model_path=str(checkpoint)).eval().to(device)
    engine = CAMEngine(model.encoder, class_names=model.class_names, precision=precision)
    originals = [read_image(path) for path in chunk]
    grays = [cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) for image in originals]
    backgrounds = [cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB) for gray in grays]
    tensor = torch.stack([to_model_input(image, input_size) for image in originals]).to(device)
    sizes = [image.shape[:2] for image in originals]
    result = engine(tensor, original_sizes=sizes)
    layers = result.layers
    maps = {name: result.display_maps[name][:, 0].float().cpu().numpy() for name in layers}
    raw = {name: result.raw_maps[name][:, 0].float().cpu().numpy() for name in layers}
    confidence = result.probabilities.max(1).values.tolist()
    lut = get_colormap("jet")

    def heatmaps() -> list[list[np.ndarray]]:
        return [
            [colorize(resize_map(maps[name][i], sizes[i]), lut) for name in layers]
            for i in range(count)
        ]

    colored = heatmaps()
    overlays = [
        [blend(backgrounds[i], heat, 0.3, 0.7) for heat in colored[i]] for i in range(count)
    ]
    renderer = FigureRenderer(lut)
    costs: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="stage_costs_") as folder:
        root = Path(folder)

        def colorize_blend() -> None:
            for i, heats in enumerate(heatmaps()):
                for heat in heats:
                    blend(backgrounds[i], heat, 0.3, 0.7)

        def png() -> None:
            for i in range(count):
                for j in range(len(layers)):
                    write_file(str(root / f"h{i}_{j}.png"), encode_png(colored[i][j]))
                    write_file(str(root / f"o{i}_{j}.png"), encode_png(overlays[i][j]))

        def figures() -> None:
            for i in range(count):
                confidence[i] = (confidence[i] + 0.001) % 1  # a new title line per image
                for j, name in enumerate(layers):
                    title = figure_title(name, "ICAS", confidence[i], "ICAS", "NORMAL")
                    data = renderer.render_png(overlays[i][j], title)
                    write_file(str(root / f"f{i}_{j}.png"), data)

        def feature_maps() -> None:
            for i in range(count):
                for j, name in enumerate(layers):
                    np.save(root / f"m{i}_{j}.npy", raw[name][i])

        journal = JournalWriter(root / "journal.jsonl")
        record = _sample_record(layers)

        def journal_append() -> None:
            journal.append([{"stem": f"s{i}", "record": record} for i in range(count)])

        stages: dict[str, Callable[[], object]] = {
            "decode": lambda: [read_image(path) for path in chunk],
            "preprocess": lambda: [to_model_input(image, input_size) for image in originals],
            "engine": lambda: engine(tensor, original_sizes=sizes),
            "colorize/blend": colorize_blend,
            "PNG encode+write": png,
            "figure (300 DPI)": figures,
            ".npy": feature_maps,
            "journal": journal_append,
        }
        for name, run in stages.items():
            costs[name] = _cpu_ms(run, repeats) / count
        journal.close()
        costs["TensorBoard"] = _tensorboard_ms(root, overlays, repeats)
        costs["end of run (64 images)"] = _end_of_run_ms(root, layers, repeats, 64)
    return costs


def _tensorboard_ms(root: Path, overlays: list[list[Any]], repeats: int) -> float:
    """CPU ms per image of logging every layer's overlay preview to TensorBoard."""
    from torch.utils.tensorboard import SummaryWriter

    try:
        from thermal_explain.output.board import log_image
    except ImportError:  # versions that log with add_image

        def log_image(logger: Any, tag: str, image: Any, step: int | None = None) -> None:
            logger.add_image(tag, image, global_step=step, dataformats="HWC")

    board = SummaryWriter(str(root / "tensorboard"))
    step = [0]

    def log() -> None:
        step[0] += 1
        for i, previews in enumerate(overlays):
            for j, image in enumerate(previews):
                log_image(board, f"o/{i}/{j}", image, step[0])

    try:
        return _cpu_ms(log, repeats) / len(overlays)
    finally:
        board.close()


def _end_of_run_ms(root: Path, layers: list[str], repeats: int, images: int) -> float:
    """CPU ms per image of the end-of-run files of a run of ``images`` images."""
    import numpy as np

    from thermal_explain.output import journal
    from thermal_explain.output.results import finalize_results
    from thermal_explain.output.summary_plots import write_summary_plots

    out = root / "run"
    writer = journal.JournalWriter(journal.journal_path(out, 0))
    records = []
    (out / "feature_maps").mkdir(parents=True)
    for i in range(images):
        record = _sample_record(layers, f"img{i:04d}.jpg")
        for j, layer in enumerate(layers):
            stem = f"img{i:04d}_{j}"
            np.save(out / "feature_maps" / f"{stem}.npy", np.full((7, 7), i + j, np.float32))
            heatmap = out / "gradcam_heatmaps" / f"{stem}_heatmap.png"
            record["gradcam_results"][layer]["heatmap_path"] = str(heatmap)
        records.append(record)
    writer.append([{"stem": None, "record": record} for record in records])
    writer.close()

    def finish() -> None:
        merged = finalize_results(out, ["icas", "normal"], layers)
        write_summary_plots(out, merged, ["icas", "normal"], layers)

    return _cpu_ms(finish, repeats) / images


def _sample_record(layers: list[str], path: str = "image.jpg") -> dict[str, Any]:
    statistics_ = {
        "max_activation": 1.0,
        "mean_activation": 0.3245,
        "std_activation": 0.2156,
        "activation_area": 0.1234,
        "center_of_mass": [112, 89],
    }
    return {
        "image_path": path,
        "predicted_class": 1,
        "predicted_label": "icas",
        "confidence": 0.8542,
        "true_label": "icas",
        "status": "ok",
        "gradcam_results": {
            layer: {
                "heatmap_path": f"{path}_{layer}_heatmap.png",
                "overlay_path": f"{path}_{layer}_overlay.png",
                "overlay_plt_path": f"{path}_{layer}_overlay_plt.png",
                "feature_statistics": dict(statistics_),
            }
            for layer in layers
        },
    }


def format_stage_costs(costs: dict[str, float]) -> str:
    """The cost table: stage, CPU ms per image, share of the sum."""
    total = sum(costs.values())
    lines = ["per-stage cost (CPU ms per image, every layer):"]
    for name, value in costs.items():
        lines.append(f"  {name:<24} {value:8.2f} ms  {100 * value / total:5.1f} %")
    lines.append(f"  {'sum':<24} {total:8.2f} ms")
    return "\n".join(lines)
