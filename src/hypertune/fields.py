"""Typed reads of one TOML table's values: each refuses a wrong value with the field's name.

`where` names the field as the error message shows it (`study.epochs`); the key read is its last
part. Each returns the value (or `default` where the key is absent), checked.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from hypertune.errors import ConfigError

# A study name is one folder name: no path, no `..`, no hidden folder, short enough for any
# filesystem.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def text(table: Mapping[str, Any], where: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: expected a non-empty string, got {value!r}")
    return value.strip()


def positive_int(table: Mapping[str, Any], where: str, default: int) -> int:
    value = table.get(where.split(".")[-1], default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{where}: expected a whole number >= 1, got {value!r}")
    return value


def flag(table: Mapping[str, Any], where: str, default: bool) -> bool:
    """A true/false key."""
    key = where.rpartition(".")[2]
    value = table.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    return value


def count(table: Mapping[str, Any], where: str, default: int) -> int:
    """A whole number >= 0."""
    value = table.get(where.rpartition(".")[2], default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{where}: expected a whole number >= 0, got {value!r}")
    return value


def seconds(table: Mapping[str, Any], where: str, default: float) -> float:
    """A finite number of seconds >= 0."""
    value = table.get(where.rpartition(".")[2], default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ConfigError(f"{where}: expected a number of seconds >= 0, got {value!r}")
    if not math.isfinite(value):
        raise ConfigError(f"{where}: {value} is not a finite number")
    return float(value)


def choice(table: Mapping[str, Any], where: str, default: str, choices: Sequence[str]) -> str:
    value = table.get(where.split(".")[-1], default)
    if value not in choices:
        raise ConfigError(f"{where}: '{value}' is unknown; choose one of {', '.join(choices)}")
    return str(value)


def whole(table: Mapping[str, Any], key: str) -> int:
    value = table.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"resources.{key}: expected a whole number >= 0, got {value!r}")
    return value


def resource(table: Mapping[str, Any], key: str, default: float, minimum: float) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        raise ConfigError(f"resources.{key}: expected a number >= {minimum:g}, got {value!r}")
    if not math.isfinite(value):
        raise ConfigError(f"resources.{key}: {value} is not a finite number")
    return float(value)


def check_name(name: str, where: str = "study name") -> str:
    """Return `name` if it can name a study's folder; the same rule for every command.

    Raises:
        ConfigError: a path, `.` or `..`, more than 100 characters, or characters other than
            letters, digits, '-', '_' and '.'.
    """
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        shown = name if len(str(name)) <= 40 else f"{str(name)[:40]}..."
        raise ConfigError(
            f"{where}: '{shown}' is not a study name; use up to 100 letters, digits, '-', '_' "
            "and '.', starting with a letter or digit"
        )
    return name
