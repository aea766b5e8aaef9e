"""Argument checks at the boundary, all in one message style.

Every check raises :class:`~thermal_explain.errors.ConfigurationError` with one line:
"Expected argument `name` to be <what> but got <value>", followed by a hint where one helps.
Inner code trusts what these functions return.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Sequence
from typing import TypeVar

from thermal_explain.errors import ConfigurationError

T = TypeVar("T")


def expect(ok: bool, name: str, what: str, value: object, hint: str = "") -> None:
    """Raise unless ``ok``: "Expected argument `name` to be ``what`` but got ``value``"."""
    if not ok:
        raise ConfigurationError(argument_message(name, what, value, hint))


def argument_message(name: str, what: str, value: object, hint: str = "") -> str:
    """The one message style of a bad argument."""
    message = f"Expected argument `{name}` to be {what} but got {value!r}"
    return f"{message}; {hint}" if hint else message


def describe_shape(value: object, dtype: bool = False) -> str:
    """How a value that should be a tensor looks: ``shape (2, 3)`` (with its dtype when
    asked), else its type's name. Duck-typed, so this module imports no torch."""
    shape = getattr(value, "shape", None)
    if shape is None or not hasattr(value, "dtype"):
        return type(value).__name__
    if dtype:
        return f"a {value.dtype} tensor of shape {tuple(shape)}"  # type: ignore[attr-defined]
    return f"shape {tuple(shape)}"


def check_int(
    name: str, value: object, minimum: int | None = None, maximum: int | None = None
) -> int:
    """``value`` as an ``int`` within ``[minimum, maximum]`` (booleans are refused)."""
    ok = isinstance(value, int) and not isinstance(value, bool)
    ok = ok and (minimum is None or value >= minimum) and (maximum is None or value <= maximum)
    expect(ok, name, _int_range(minimum, maximum), value)
    return int(value)  # type: ignore[arg-type]


def check_number(
    name: str,
    value: object,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """``value`` as a finite ``float`` within the bounds (open where asked)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    ok = ok and math.isfinite(value)  # type: ignore[arg-type]
    if ok and low is not None:
        ok = value > low if low_open else value >= low  # type: ignore[operator]
    if ok and high is not None:
        ok = value < high if high_open else value <= high  # type: ignore[operator]
    expect(ok, name, _number_range(low, high, low_open, high_open), value)
    return float(value)  # type: ignore[arg-type]


def check_choice(name: str, value: object, choices: Iterable[T]) -> T:
    """``value`` when it is one of ``choices``, else an error naming them (and a close match)."""
    options = list(choices)
    if value in options:
        return value  # type: ignore[return-value]
    words = [str(option) for option in options]
    close = difflib.get_close_matches(str(value), words, n=1) if isinstance(value, str) else []
    hint = f"did you mean {close[0]}?" if close else ""
    expect(False, name, f"one of {', '.join(words)}", value, hint)
    raise AssertionError  # unreachable: expect raised


def check_names(name: str, value: object, *, minimum: int = 1) -> list[str]:
    """A list of at least ``minimum`` unique, non-empty strings (a single string is refused)."""
    ok = isinstance(value, Sequence) and not isinstance(value, str)
    names = [item for item in value] if ok else []  # type: ignore[union-attr]
    ok = ok and all(isinstance(item, str) and item.strip() for item in names)
    what = f"a list of at least {minimum} non-empty names" if minimum > 1 else "a list of names"
    expect(ok and len(names) >= minimum, name, what, value)
    duplicates = sorted({item for item in names if names.count(item) > 1})
    if duplicates:
        expect(False, name, "a list of unique names", value, f"{duplicates[0]!r} repeats")
    return list(names)


def check_class_names(value: object, name: str = "class_names") -> list[str]:
    """The one rule for class names: two or more unique, non-empty names, by class index."""
    return check_names(name, value, minimum=2)


def _int_range(minimum: int | None, maximum: int | None) -> str:
    if minimum is not None and maximum is not None:
        return f"an integer in [{minimum}, {maximum}]"
    if minimum is not None:
        return f"an integer >= {minimum}"
    if maximum is not None:
        return f"an integer <= {maximum}"
    return "an integer"


def _number_range(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        return f"a number in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f"a number {'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f"a number {'<' if high_open else '<='} {high:g}"
    return "a finite number"
