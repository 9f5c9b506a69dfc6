"""A YAML value that knows where it came from, with typed accessors whose errors name the file and
the field (`models.yaml: inception_v4: files[0].size: expected a non-negative integer, got -1`):
what the registry is parsed with."""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable
from typing import Any

from omzconv.errors import ConfigError

#: A model name, alias or dataset name becomes a folder or file name: letters, digits, '.', '_', '-',
#: not starting with '.' or '-' (so never '..', a hidden file or an option), at most 100 characters.
IDENTIFIER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,99}")
#: Folders omzconv keeps beside the models' own in the output and cache directories.
RESERVED_NAMES = ("synthetic", "reports", "cache")
MAX_INTEGER = 2**53  # any count or size in models.yaml; beyond it floats lose integers


class Node:
    """A YAML value plus where it came from, with typed accessors that raise ConfigError."""

    def __init__(self, value: Any, file: str, where: str) -> None:
        self.value, self.file, self.where = value, file, where

    def error(self, message: str) -> ConfigError:
        where = self.where.rstrip(":")
        place = f"{self.file}: {where}" if where else self.file
        return ConfigError(f"{place}: {message}")

    def child(self, key: str | int, value: Any) -> Node:
        if isinstance(key, int):
            where = f"{self.where}[{key}]"
        elif not self.where:
            where = key
        elif self.where.endswith(":"):  # directly under a model or dataset name
            where = f"{self.where} {key}"
        else:
            where = f"{self.where}.{key}"
        return Node(value, self.file, where)

    def mapping(self, required: Iterable[str], optional: Iterable[str] = ()) -> dict[str, Node]:
        if not isinstance(self.value, dict):
            raise self.error(f"expected a mapping, got {describe(self.value)}")
        required, optional = tuple(required), tuple(optional)
        unknown = [k for k in self.value if k not in required + optional]
        if unknown:
            close = difflib.get_close_matches(str(unknown[0]), required + optional, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise self.error(f"unknown key {unknown[0]!r}{hint} (allowed: {', '.join(required + optional)})")
        missing = [k for k in required if k not in self.value]
        if missing:
            raise self.error(f"missing key {missing[0]!r}")
        return {k: self.child(k, v) for k, v in self.value.items()}

    def items(self, what: str = "") -> list[tuple[str, Node]]:
        """The entries of a non-empty mapping; with `what` (e.g. "a model name"), each key must be an
        identifier (see IDENTIFIER) that is not reserved."""
        if not isinstance(self.value, dict) or not self.value:
            raise self.error(f"expected a non-empty mapping, got {describe(self.value)}")
        if what:
            for key in self.value:
                Node(key, self.file, f"{key}:").identifier(what)
        return [(str(k), Node(v, self.file, f"{k}:")) for k, v in self.value.items()]

    def identifier(self, what: str) -> str:
        text = self.string()
        if not IDENTIFIER.fullmatch(text):
            raise self.error(f"expected {what} of letters, digits, '.', '_' or '-', not starting with '.' "
                             f"or '-' (at most 100 characters), got {text!r}")
        if text in RESERVED_NAMES:
            raise self.error(f"{text!r} is reserved: omzconv keeps its own folder of that name")
        return text

    def sequence(self, allow_empty: bool = False) -> list[Node]:
        if not isinstance(self.value, list) or (not self.value and not allow_empty):
            raise self.error(f"expected a {'' if allow_empty else 'non-empty '}list, got {describe(self.value)}")
        return [self.child(i, v) for i, v in enumerate(self.value)]

    def string(self, choices: Iterable[str] | None = None) -> str:
        if not isinstance(self.value, str) or not self.value.strip():
            raise self.error(f"expected a non-empty string, got {describe(self.value)}")
        if choices is not None and self.value not in (choices := tuple(choices)):
            raise self.error(f"expected one of {', '.join(choices)}, got {self.value!r}")
        return self.value.strip()

    def integer(self, minimum: int = 0, maximum: int = MAX_INTEGER) -> int:
        value = self.value
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            kind = "a non-negative integer" if minimum == 0 else f"an integer >= {minimum}"
            raise self.error(f"expected {kind}, got {describe(value)}")
        if value > maximum:
            raise self.error(f"expected at most {maximum}, got {describe(value)}")
        return value

    def number(self, positive: bool = True, minimum: float | None = None, maximum: float | None = None) -> float:
        """A finite number (no NaN, no infinity): > 0 if `positive`, within [minimum, maximum] if given."""
        value = self.value
        if not isinstance(value, (int, float)) or isinstance(value, bool) or (positive and value <= 0):
            raise self.error(f"expected a {'positive ' if positive else ''}number, got {describe(value)}")
        try:
            finite = math.isfinite(value)
        except OverflowError:  # an int too large for a float
            finite = False
        if not finite:
            raise self.error(f"expected a finite number, got {describe(value)}")
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            low = "-inf" if minimum is None else f"{minimum:g}"
            high = "inf" if maximum is None else f"{maximum:g}"
            raise self.error(f"expected a number in [{low}, {high}], got {describe(value)}")
        return float(value)

    def boolean(self) -> bool:
        if not isinstance(self.value, bool):
            raise self.error(f"expected true or false, got {describe(self.value)}")
        return self.value

    def numbers(self, maximum: float | None = None) -> tuple[float, ...]:
        """A positive number or a list of three (one per channel), each at most `maximum`."""
        if isinstance(self.value, list):
            values = tuple(n.number(maximum=maximum) for n in self.sequence())
            if len(values) != 3:
                raise self.error(f"expected one number or three (per channel), got {len(values)}")
            return values
        return (self.number(maximum=maximum),)


def describe(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, (dict, list)):
        return f"a {type(value).__name__}"
    if isinstance(value, int) and abs(value) > MAX_INTEGER:
        return f"an integer of {len(str(abs(value)))} digits"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
