"""``thermal-explain compare``: two models' heatmaps on the same images, side by side."""

from __future__ import annotations

import argparse
import sys

from thermal_explain.cli.arguments import OneLineParser, add_image_source

DEFAULT_OUTPUT_DIR = "model_comparison"


def build_parser() -> argparse.ArgumentParser:
    """The ``compare`` command's flags."""
    parser = OneLineParser(
        prog="thermal-explain compare",
        description=(
            "Explain the same images with two models and measure how alike their Grad-CAM "
            "maps are (Spearman rank correlation, IoU of the hottest regions)."
        ),
    )
    parser.add_argument("--model_a", required=True, help="first model (.pth or .ckpt)")
    parser.add_argument("--model_b", required=True, help="second model (.pth or .ckpt)")
    add_image_source(parser, "compare on")
    parser.add_argument(
        "--output_dir",
        default=DEFAULT_OUTPUT_DIR,
        help="folder of every output",
    )
    parser.add_argument(
        "--layers",
        nargs="+",
        default=None,
        help="dotted layer names present in both models (default: each model's last conv "
        "of each ResNet stage, paired by stage)",
    )
    parser.add_argument(
        "--method", default="gradcam", help="gradcam, gradcam++, xgradcam, layercam or hirescam"
    )
    parser.add_argument("--image_size", type=int, default=224, help="side of the model input")
    parser.add_argument("--batch_size", type=int, default=16, help="images per engine call")
    parser.add_argument("--num_workers", type=int, default=0, help="image-decoding processes")
    parser.add_argument(
        "--top_fraction",
        type=float,
        default=0.2,
        help="share of the hottest pixels whose overlap (IoU) is measured, in (0, 1]",
    )
    parser.add_argument(
        "--device", default=None, help="cpu, cuda or cuda:N (default: a GPU if any)"
    )
    parser.add_argument("--colormap", default="jet", help="any OpenCV or matplotlib colormap")
    parser.add_argument(
        "--overwrite", action="store_true", help="start over instead of resuming --output_dir"
    )
    parser.add_argument(
        "--allow_pickle",
        action="store_true",
        help="allow checkpoints that pickle a whole model (trusted files only)",
    )
    parser.add_argument(
        "--no_html",
        dest="html_report",
        action="store_false",
        help="do not write output_dir/comparison_report.html",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str]) -> int:
    """Run the comparison; 0 when every image worked, 1 when some failed (recorded)."""
    args = build_parser().parse_args(argv)
    from thermal_explain.data.files import find_images
    from thermal_explain.output.colormaps import get_colormap
    from thermal_explain.output.html import COMPARISON_HTML
    from thermal_explain.pipeline.comparison import ModelComparison

    paths = find_images(args.image_dir, args.pattern, args.image_path, exclude=[args.output_dir])
    get_colormap(args.colormap)
    comparison = ModelComparison(
        args.model_a,
        args.model_b,
        layers=args.layers,
        method=args.method,
        image_size=args.image_size,
        top_fraction=args.top_fraction,
        device=args.device,
        allow_pickle=args.allow_pickle,
    )
    run = comparison.run(
        paths,
        args.output_dir,
        batch_size=args.batch_size,
        colormap=args.colormap,
        quiet=args.quiet,
        overwrite=args.overwrite,
        num_workers=args.num_workers,
        html_report=args.html_report,
    )
    compared = len(run.records) - run.failed
    agreeing = sum(1 for record in run.records if record.get("agree"))
    agreement = f", predictions agree on {agreeing}/{compared}" if compared else ""
    html = run.output_dir / COMPARISON_HTML
    page = f", page: {html}" if args.html_report and html.is_file() else ""
    print(
        f"compared {compared} images ({run.failed} failed){agreement}; "
        f"results: {run.results_path}, report: {run.report_path}{page}",
        file=sys.stderr if args.quiet else sys.stdout,
    )
    for record in run.records:
        if record["status"] != "ok":
            print(f"failed: {record['image_path']}: {record.get('error')}", file=sys.stderr)
    return 1 if run.failed else 0
