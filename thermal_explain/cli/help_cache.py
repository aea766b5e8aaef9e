"""``fit|validate|predict --help`` without importing torch: help rendered once, kept.

LightningCLI builds its help from the signatures of the Trainer, the model, the data
module and the callback, which means importing torch and Lightning (seconds). The text only
changes when the code or those libraries change, so it is kept under a key made of the
installed versions and a hash of this package's sources: the package ships the help for
the versions it is tested with (``thermal_explain/cli/help/``, written by
``python -m thermal_explain.cli.help_cache``), and any other installation renders it once
and keeps it in the user's cache folder. A key that does not match is never used.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

SHIPPED = Path(__file__).with_name("help")
PACKAGE = Path(__file__).resolve().parents[1]
LIBRARIES = ("lightning", "jsonargparse", "torch", "torchvision", "torchmetrics")
KEPT_COMMANDS = ("fit", "validate", "predict", "pretrain")
"""The LightningCLI commands whose help is kept."""
WIDTH = "100"
"""Terminal width the shipped help is rendered at."""


def cache_key() -> str:
    """Versions of the libraries the help depends on, and a hash of this package's code."""
    digest = hashlib.sha256()
    for library in LIBRARIES:
        try:
            version = metadata.version(library)
        except metadata.PackageNotFoundError:
            version = "-"
        digest.update(f"{library}={version}\n".encode())
    for path in sorted(PACKAGE.rglob("*.py")):
        digest.update(path.relative_to(PACKAGE).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def cached_help(command: str) -> str | None:
    """The help of ``command`` for this installation, or ``None`` when none is kept."""
    key = cache_key()
    for folder in (SHIPPED, user_cache()):
        text = _read(folder / f"{command}.txt", key)
        if text is not None:
            return text
    return None


def render_and_keep(command: str, render: Callable[[], object]) -> str:
    """Run ``render`` (which prints the help and exits), keep its text, and return it."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), contextlib.suppress(SystemExit):
        render()
    text = buffer.getvalue()
    with contextlib.suppress(OSError):
        _write(user_cache() / f"{command}.txt", text)
    return text


def user_cache() -> Path:
    """``$XDG_CACHE_HOME/thermal-explain/help`` (``~/.cache`` by default)."""
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "thermal-explain" / "help"


def render_help(command: str) -> None:
    """Print the LightningCLI help of ``command`` (imports torch and Lightning)."""
    if command == "pretrain":
        from thermal_explain.cli.pretrain import main as pretrain

        pretrain(["--help"])
        return
    from thermal_explain.cli.lightning import run_lightning_cli

    run_lightning_cli([command, "--help"])


def write_shipped(commands: tuple[str, ...] = KEPT_COMMANDS) -> None:
    """Render the help of ``commands`` at the shipped width into the package."""
    os.environ["COLUMNS"] = WIDTH
    for command in commands:
        text = render_and_keep(command, lambda c=command: render_help(c))
        _write(SHIPPED / f"{command}.txt", text)


def _read(path: Path, key: str) -> str | None:
    try:
        first, _, text = path.read_text(encoding="utf-8").partition("\n")
    except OSError:
        return None
    return text if first == f"# key {key}" and text else None


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"# key {cache_key()}\n{text}", encoding="utf-8")


if __name__ == "__main__":
    write_shipped()
