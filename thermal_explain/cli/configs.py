"""``thermal-explain configs``: write the shipped LightningCLI configs where a user wants them.

A user who installed the package (no clone) gets ``fit.yaml``, ``predict.yaml`` and
``demo.yaml`` with ``thermal-explain configs --out configs``; ``thermal-explain predict
--print_config`` shows every option of a run with its current value.
"""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

from thermal_explain.cli.arguments import OneLineParser
from thermal_explain.errors import ThermalExplainError


def shipped_configs() -> list[Path]:
    """The YAML configs that ship with the package, by name."""
    folder = resources.files("thermal_explain") / "configs"
    return sorted(Path(str(entry)) for entry in folder.iterdir() if entry.name.endswith(".yaml"))


def main(argv: list[str]) -> int:
    """Copy the shipped configs into ``--out``; existing files stay unless ``--force``."""
    parser = OneLineParser(
        prog="thermal-explain configs",
        description="Write the shipped configs (fit, predict, pretrain, demo) into a folder.",
    )
    parser.add_argument("--out", default="configs", help="folder to write them into")
    parser.add_argument("--force", action="store_true", help="replace files that exist")
    args = parser.parse_args(argv)
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ThermalExplainError(
            f"--out '{out}' cannot be created ({error.strerror or error}); choose another --out"
        ) from error
    for source in shipped_configs():
        target = out / source.name
        if target.exists() and not args.force:
            print(f"kept {target} (exists; --force replaces it)")
            continue
        shutil.copyfile(source, target)
        print(f"wrote {target}")
    return 0
