"""``thermal-explain analyze``: the original tool's flags over the shared engine and writer."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from thermal_explain.cli.arguments import OneLineParser, add_image_source
from thermal_explain.errors import ConfigurationError
from thermal_explain.metrics.suite import MetricOptions
from thermal_explain.pipeline.analyzer import ThermalInterpretabilityAnalyzer


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="thermal-explain analyze",
        description="Grad-CAM heatmaps, overlays, statistics and a report for thermal images.",
    )
    parser.add_argument("--model_path", required=True, help="trained model (.pth or .ckpt)")
    add_image_source(parser, "analyze")
    parser.add_argument(
        "--use_asymmetry",
        action="store_true",
        default=None,
        help="6-channel left/mirrored-right mode (default: as the checkpoint)",
    )
    parser.add_argument("--output_dir", default="interpretability_analysis")
    parser.add_argument(
        "--mask_dir",
        default=None,
        help="masks mirroring --image_dir as <stem>.png, for localization metrics",
    )
    parser.add_argument(
        "--method", default="gradcam", help="gradcam, gradcam++, xgradcam, layercam or hirescam"
    )
    parser.add_argument(
        "--layers",
        nargs="+",
        default=None,
        help="dotted layer names (default: last conv of each ResNet stage)",
    )
    parser.add_argument(
        "--target",
        default=None,
        help="class index or name to explain (default: the predicted class)",
    )
    parser.add_argument("--image_size", type=int, default=224)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda if available)")
    parser.add_argument("--colormap", default="jet", help="any OpenCV or matplotlib colormap")
    parser.add_argument("--original_alpha", type=float, default=0.3)
    parser.add_argument("--heatmap_alpha", type=float, default=0.7)
    parser.add_argument(
        "--no_figures",
        action="store_true",
        help="skip the 300-DPI matplotlib figures (*_overlay_plt.png)",
    )
    parser.add_argument("--num_workers", type=int, default=0, help="image-decoding processes")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="start over instead of resuming what --output_dir holds",
    )
    parser.add_argument(
        "--allow_pickle",
        action="store_true",
        help="allow checkpoints that pickle a whole model (trusted files only)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument(
        "--class_names",
        nargs="+",
        default=None,
        help="class names by index, for checkpoints that do not store them",
    )
    parser.add_argument(
        "--metrics",
        nargs="+",
        default=[],
        help="quality metrics: deletion insertion confidence localization sanity "
        "(or faithfulness, all); localization needs --mask_dir",
    )
    parser.add_argument("--metric_steps", type=int, default=16, help="deletion/insertion steps")
    parser.add_argument(
        "--perturbation",
        default="blur",
        choices=["blur", "zero", "mean"],
        help="how deletion/insertion remove pixels",
    )
    parser.add_argument(
        "--fuse",
        action="store_true",
        help="add a 'fused' map: every layer combined (element-wise max)",
    )
    return parser


def _target(value: str | None) -> int | str | None:
    if value is None:
        return None
    return int(value) if value.lstrip("-").isdigit() else value


def main(argv: list[str]) -> int:
    """Run the analysis; 0 when every image worked, 1 when some failed (recorded)."""
    args = build_parser().parse_args(argv)
    if args.batch_size < 1:
        raise ConfigurationError(f"--batch_size must be >= 1 but got {args.batch_size}")
    analyzer = ThermalInterpretabilityAnalyzer(
        args.model_path,
        args.use_asymmetry,
        output_dir=args.output_dir,
        layers=args.layers,
        method=args.method,
        target=_target(args.target),
        image_size=args.image_size,
        batch_size=args.batch_size,
        device=args.device,
        colormap=args.colormap,
        original_alpha=args.original_alpha,
        heatmap_alpha=args.heatmap_alpha,
        save_figures=not args.no_figures,
        overwrite=args.overwrite,
        allow_pickle=args.allow_pickle,
        num_workers=args.num_workers,
        quiet=args.quiet,
        class_names=args.class_names,
        mask_dir=args.mask_dir,
        metrics=args.metrics,
        fuse=args.fuse,
        metric_options=MetricOptions(steps=args.metric_steps, perturbation=args.perturbation),
    )
    if args.image_path:
        records = [analyzer.analyze_single_image(args.image_path)]
    else:
        records = analyzer.batch_analyze(args.image_dir, args.pattern)
    failed = [record for record in records if record.get("status") != "ok"]
    output = Path(args.output_dir)
    run = analyzer.last_run
    speed = f" at {run.analyzed / run.seconds:.1f} img/s" if run and run.seconds > 0 else ""
    skipped = f", {run.skipped} already done" if run and run.skipped else ""
    print(
        f"analyzed {len(records)} images ({len(failed)} failed{skipped}){speed}; "
        f"results: {output / 'analysis_results.json'}, report: {output / 'summary_report.txt'}",
        file=sys.stderr if args.quiet else sys.stdout,
    )
    for record in failed:
        print(f"failed: {record['image_path']}: {record.get('error')}", file=sys.stderr)
    return 1 if failed else 0
