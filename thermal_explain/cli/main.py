"""``thermal-explain``: dispatches to LightningCLI sub-commands and the tool's own commands."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence

from thermal_explain.cli.noise import filter_library_noise
from thermal_explain.errors import ThermalExplainError

LIGHTNING_COMMANDS = ("fit", "validate", "predict")

USAGE = """usage: thermal-explain COMMAND [ARGS]

Grad-CAM explainability for contrastive thermal-image classifiers.

Lightning commands (LightningCLI; see `thermal-explain COMMAND --help`):
  fit        train a ThermalClassifier (configs/fit.yaml), heatmaps of a probe set per epoch
  validate   validate a checkpoint
  predict    explain every image of a folder (configs/predict.yaml)
  pretrain   self-supervised two-view contrastive pretraining on unlabeled images
             (configs/pretrain.yaml); its checkpoint goes to fit --model.pretrained

Tool commands:
  analyze    the original tool's flags: --model_path P (--image_path I | --image_dir D)
  demo       offline demo on synthetic thermal faces with known lesions
  synth      write a synthetic thermal-face data set with lesion masks (--realistic:
             several images per subject, for subject-disjoint validation)
  quickstart find the newest checkpoint and a data set here, then analyze
  compare    compare two models' heatmaps on the same images
  configs    write the shipped configs (fit, predict, pretrain, demo) into a folder

`thermal-explain COMMAND --help` shows each command's options with their defaults;
`thermal-explain predict --print_config` shows a run's whole configuration.
"""


TOOL_COMMANDS = {
    "analyze": "thermal_explain.cli.analyze",
    "demo": "thermal_explain.cli.demo",
    "synth": "thermal_explain.cli.synth",
    "quickstart": "thermal_explain.cli.quickstart",
    "compare": "thermal_explain.cli.compare",
    "configs": "thermal_explain.cli.configs",
    "pretrain": "thermal_explain.cli.pretrain",
}


def _tool_command(name: str) -> Callable[[list[str]], int]:
    """The ``main(argv) -> int`` of a tool command, imported only when used."""
    module = importlib.import_module(TOOL_COMMANDS[name])
    return module.main


def _lightning_help(command: str) -> int:
    """``fit|validate|predict|pretrain --help``: the kept text when it fits, else rendered
    and kept."""
    from thermal_explain.cli.help_cache import cached_help, render_and_keep, render_help

    text = cached_help(command)
    if text is None:
        text = render_and_keep(command, lambda: render_help(command))
    print(text, end="")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0 if args else 2
    if args[0] == "--version":
        from thermal_explain import __version__

        print(f"thermal-explain {__version__}")
        return 0
    command, rest = args[0], args[1:]
    filter_library_noise()
    try:
        if command in (*LIGHTNING_COMMANDS, "pretrain") and rest in (["--help"], ["-h"]):
            return _lightning_help(command)
        if command in LIGHTNING_COMMANDS:
            from thermal_explain.cli.lightning import run_lightning_cli

            return run_lightning_cli([command, *rest])
        if command not in TOOL_COMMANDS:
            known = ", ".join([*LIGHTNING_COMMANDS, *TOOL_COMMANDS])
            print(
                f"thermal-explain: error: unknown command '{command}'; use one of: {known}",
                file=sys.stderr,
            )
            return 2
        return _tool_command(command)(rest)
    except ThermalExplainError as error:
        print(f"thermal-explain: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("thermal-explain: interrupted; re-run the same command to resume", file=sys.stderr)
        return 130


def entry() -> None:
    """Console-script wrapper: exits with :func:`main`'s status."""
    sys.exit(main())
