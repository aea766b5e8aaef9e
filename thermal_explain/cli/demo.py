"""``thermal-explain demo``: synthetic faces, a fit with the callback on, a held-out analysis."""

from __future__ import annotations

from pathlib import Path

from thermal_explain.cli.arguments import OneLineParser
from thermal_explain.pipeline.options import DemoSettings


def main(argv: list[str]) -> int:
    """Run the demo; torch and Lightning load only once the arguments are read."""
    parser = OneLineParser(
        prog="thermal-explain demo",
        description="Offline demo: synthetic thermal faces with known lesions, a short fit with "
        "the Grad-CAM callback on, then every output for a held-out set.",
    )
    parser.add_argument("--output_dir", default="demo_output", help="folder of everything")
    parser.add_argument("--n", type=int, default=DemoSettings.n_train, help="training faces")
    parser.add_argument(
        "--heldout", type=int, default=DemoSettings.n_heldout, help="held-out faces explained"
    )
    parser.add_argument(
        "--size",
        type=int,
        default=DemoSettings.face_size,
        help="side of the synthetic faces in pixels",
    )
    parser.add_argument(
        "--image_size",
        type=int,
        default=DemoSettings.image_size,
        help="model input side (faces are resized to it)",
    )
    parser.add_argument("--epochs", type=int, default=DemoSettings.epochs, help="training epochs")
    parser.add_argument("--seed", type=int, default=DemoSettings.seed, help="random seed")
    parser.add_argument(
        "--rgb", action="store_true", help="3-channel input instead of the 6-channel asymmetry mode"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    settings = DemoSettings(
        n_train=args.n,
        n_heldout=args.heldout,
        face_size=args.size,
        image_size=args.image_size,
        epochs=args.epochs,
        seed=args.seed,
        use_asymmetry=not args.rgb,
    )
    from thermal_explain.pipeline.demo import run_demo

    run_demo(Path(args.output_dir), settings, quiet=args.quiet)
    return 0
