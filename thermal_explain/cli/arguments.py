"""Command-line building blocks: one-line usage errors, shared flags, flags from dataclasses."""

from __future__ import annotations

import argparse
import sys
import types
import typing
from dataclasses import MISSING, fields
from typing import Any, NoReturn


class DefaultsFormatter(argparse.HelpFormatter):
    """Help that shows each option's default (when it has a meaningful one)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        shown = "%(default)" in text or "default:" in text
        empty = action.default in (None, False, (), argparse.SUPPRESS)
        if shown or empty or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are a single stderr line naming the fix.

    Its help shows every option's default.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", DefaultsFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message}; see '{self.prog} --help'", file=sys.stderr)
        sys.exit(2)


def add_image_source(parser: argparse.ArgumentParser, purpose: str) -> None:
    """``--image_path`` or ``--image_dir`` (exactly one), and ``--pattern`` for the folder.

    Args:
        parser: the command's parser.
        purpose: what the images are for, e.g. ``"analyze"`` ("one image to analyze").
    """
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--image_path", help=f"one image to {purpose}")
    source.add_argument("--image_dir", help=f"folder of images to {purpose}")
    parser.add_argument(
        "--pattern",
        default="*.jpg",
        help="glob under --image_dir: *.jpg, */*.jpg (class folders), **/*.png",
    )


def add_dataclass_options(parser: argparse.ArgumentParser, cls: type) -> None:
    """One flag per field of the dataclass ``cls``, with its help text and default.

    A ``bool`` field that defaults to ``False`` is a switch (``--overwrite``); one that
    defaults to ``True`` is switched off by the flag named in its metadata
    (``--no_figures``). Tuple fields take one or more values (a fixed number of floats
    for ``tuple[float, float]``); ``int | str`` fields read a number when they can
    (``--target 1`` or ``--target icas``).
    """
    hints = typing.get_type_hints(cls)
    for item in fields(cls):
        kind = hints[item.name]
        default = None if item.default is MISSING else item.default
        text = item.metadata.get("help", "")
        if kind is bool:
            if default:
                parser.add_argument(
                    f"--{item.metadata['flag']}",
                    dest=item.name,
                    action="store_false",
                    help=text,
                )
            else:
                parser.add_argument(f"--{item.name}", action="store_true", help=text)
            continue
        options: dict[str, Any] = {"default": default, "help": text}
        members = _members(kind)
        pairs = [m for m in members if typing.get_origin(m) is tuple]
        if pairs and set(typing.get_args(pairs[0])) == {float}:
            options.update(nargs=len(typing.get_args(pairs[0])), type=float)
        elif tuple in {typing.get_origin(member) or member for member in members}:
            options["nargs"] = "+"
        elif {int, str} <= set(members):
            options["type"] = _int_or_text
        elif int in members:
            options["type"] = int
        elif float in members:
            options["type"] = float
        for key in ("choices", "metavar"):
            if key in item.metadata:
                options[key] = item.metadata[key]
        parser.add_argument(f"--{item.name}", **options)


def dataclass_values(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The parsed values of the fields of ``cls`` (see :func:`add_dataclass_options`)."""
    return {item.name: getattr(args, item.name) for item in fields(cls)}


def _members(kind: Any) -> tuple[Any, ...]:
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        return tuple(member for member in typing.get_args(kind) if member is not type(None))
    return (kind,)


def _int_or_text(value: str) -> int | str:
    return int(value) if value.lstrip("-").isdigit() else value
