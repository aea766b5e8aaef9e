"""``thermal-explain analyze``: the original tool's flags over the shared run.

The flags come from :class:`~thermal_explain.pipeline.options.AnalysisOptions`, the same
definition the Python API takes; torch loads only when a run starts.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from thermal_explain.cli.arguments import (
    OneLineParser,
    add_dataclass_options,
    add_image_source,
    dataclass_values,
)
from thermal_explain.pipeline.options import AnalysisOptions


def build_parser() -> argparse.ArgumentParser:
    """The ``analyze`` command's flags."""
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
    add_dataclass_options(parser, AnalysisOptions)
    return parser


def main(argv: list[str]) -> int:
    """Run the analysis; 0 when every image worked, 1 when some failed (recorded)."""
    args = build_parser().parse_args(argv)
    options = AnalysisOptions(**dataclass_values(args, AnalysisOptions))
    from thermal_explain.pipeline.analyzer import ThermalInterpretabilityAnalyzer

    analyzer = ThermalInterpretabilityAnalyzer(args.model_path, args.use_asymmetry, options=options)
    if args.image_path:
        records = [analyzer.analyze_single_image(args.image_path)]
    else:
        records = analyzer.batch_analyze(args.image_dir, args.pattern)
    failed = [record for record in records if record.get("status") != "ok"]
    output = Path(options.output_dir)
    run = analyzer.last_run
    speed = f" at {run.analyzed / run.seconds:.1f} img/s" if run and run.seconds > 0 else ""
    skipped = f", {run.skipped} already done" if run and run.skipped else ""
    html = output / "report.html"
    page = f", page: {html}" if options.html_report and html.is_file() else ""
    print(
        f"analyzed {len(records)} images ({len(failed)} failed{skipped}){speed}; "
        f"results: {output / 'analysis_results.json'}, report: {output / 'summary_report.txt'}"
        f"{page}",
        file=sys.stderr if options.quiet else sys.stdout,
    )
    for record in failed:
        print(f"failed: {record['image_path']}: {record.get('error')}", file=sys.stderr)
    return 1 if failed else 0
