"""Search-space entries: Studio-style range strings, lists and range tables.

A :class:`ParamSpec` is what one searched parameter may take. It knows its grid points (for grid
search) and, where it is a range, its bounds (for random, Bayesian and TPE search). This module
knows nothing of Ray: Tune's domains are built from specs in :mod:`hypertune.search.domains`.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hypertune.errors import SpaceError, shorten

Value = int | float | str | bool

# The most values one range may spell out; counted before any value is built.
MAX_RANGE_POINTS = 10_000
# A parameter's name: a Python keyword argument (it reaches the model as one), and part of
# results.csv's columns and the report's file names.
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
_FLOAT_WRITTEN = re.compile(r"[.eE]|inf|nan", re.IGNORECASE)
_POINTS = re.compile(r"^(?:([lu])(\d+)|(\d+)([lu]))$")
# How a range string writes a boolean (as TOML does, in any case): `batchnorm=true,false`.
_BOOLEANS = {"true": True, "false": False}
EXPONENT_PREFIX = "__log10__"  # see hypertune.search.domains.bayes_domains
# A search point's seed, beside its searched values (not a hyperparameter of the model).
SEED_KEY = "seed"


@dataclass(frozen=True)
class ParamSpec:
    """One searched parameter.

    Attributes:
        name: the parameter's name, as the model and trainer read it.
        values: the grid points, in the order written (empty for a range table without `num`).
        low: lower bound of a range (None for a list of choices).
        high: upper bound of a range (None for a list of choices).
        log: the range is log-spaced (sampled log-uniformly by random/Bayesian/TPE search).
        integer: every value is a whole number and must reach the trainer as an int.
        source: the spec as written (a range string, list or table), kept for study.json.
    """

    name: str
    values: tuple[Value, ...]
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False
    source: Any = None

    @property
    def is_range(self) -> bool:
        return self.low is not None and self.high is not None

    def grid_values(self) -> list[Value]:
        """The grid points; a range table needs `num` to have them."""
        if not self.values:
            raise SpaceError(
                f"{self.name}: grid search needs explicit values; add num = N to the range "
                "table or give a list or range string"
            )
        return list(self.values)


def parse_param(spec: str) -> tuple[str, list[Value]]:
    """Parse `NAME=SPEC` into the name and its grid values (the README's range syntax).

    >>> parse_param("lr=1e-5:l5:0.1")
    ('lr', [1e-05, 0.0001, 0.001, 0.01, 0.1])
    """
    parsed = parse_assignment(spec)
    return parsed.name, list(parsed.values)


def parse_assignment(spec: str) -> ParamSpec:
    """Parse `NAME=SPEC` into a :class:`ParamSpec`."""
    name, sep, body = spec.partition("=")
    name = name.strip()
    if not sep:
        raise SpaceError(f"'{spec}': expected NAME=SPEC, e.g. lr=1e-5:l5:0.1")
    if not _NAME.match(name):
        raise SpaceError(f"'{spec}': '{name}' is not a parameter name")
    return parse_range_string(name, body)


def parse_range_string(name: str, spec: str) -> ParamSpec:
    """Parse a range string (`2,5,6`, `0.1`, `a:b`, `a:m:b`, `a:lN:b`, `a:uN:b`)."""
    text = spec.strip()
    if not text:
        raise SpaceError(f"'{name}={spec}': empty spec")
    if ":" in text:
        return _parse_range(name, text)
    items = [item.strip() for item in text.split(",")]
    if any(not item for item in items):
        raise SpaceError(f"'{name}={spec}': empty item in list")
    values = [_scalar(item) for item in items]
    for value in values:
        if isinstance(value, float) and not math.isfinite(value):
            raise SpaceError(f"'{name}={spec}': '{value}' is not a finite number")
    if any(isinstance(v, float) for v in values):
        values = [float(v) if _is_number(v) else v for v in values]
    return ParamSpec(name, tuple(values), source=text)


def from_toml(name: str, spec: Any) -> ParamSpec:
    """Turn one `[space]` entry of a study file into a :class:`ParamSpec`."""
    if not _NAME.match(name):
        raise SpaceError(
            f"space.{shorten(name)}: not a parameter name; use up to 100 letters, digits and '_', "
            "starting with a letter or '_'"
        )
    if isinstance(spec, str):
        return parse_range_string(name, spec)
    if isinstance(spec, bool | int | float):
        _check_finite(name, spec)
        return ParamSpec(name, (spec,), source=spec)
    if isinstance(spec, list):
        return _from_list(name, spec)
    if isinstance(spec, Mapping):
        return _from_table(name, spec)
    raise SpaceError(f"space.{name}: expected a list, range string or {{low, high}} table")


def check_searchable(spec: ParamSpec, floats_only: bool, search: str) -> None:
    """Refuse what a search that samples only floats (`floats_only`; `search`: its name in the
    message) cannot sample: categories."""
    if floats_only and not spec.is_range:
        numeric = [v for v in spec.values if _is_number(v)]
        if len(numeric) != len(spec.values):
            raise SpaceError(
                f"space.{spec.name}: {search} cannot sample categories {list(spec.values)}; "
                "use --search random or hyperopt, or fix it in [model]"
            )


def numeric_bounds(spec: ParamSpec) -> tuple[float, float]:
    """The lowest and highest of a numeric list (what Bayesian search samples between)."""
    return float(min(spec.values)), float(max(spec.values))


def exponent_key(name: str) -> str:
    """The config key under which Bayesian search samples a log range's base-10 exponent."""
    return f"{EXPONENT_PREFIX}{name}"


def decode_config(config: Mapping[str, Any], specs: Mapping[str, ParamSpec]) -> dict[str, Any]:
    """Values as the trainer must see them: ints rounded, Bayesian samples snapped to the list,
    a Bayesian log range's exponent turned back into its value."""
    decoded = dict(config)
    for name, spec in specs.items():
        exponent = decoded.pop(exponent_key(name), None)
        if exponent is not None and spec.is_range:
            low, high = float(spec.low), float(spec.high)  # type: ignore[arg-type]
            decoded[name] = min(max(10 ** float(exponent), low), high)
        if name not in decoded or isinstance(decoded[name], str | bool):
            continue
        value = decoded[name]
        if not spec.is_range and spec.values and value not in spec.values:
            value = min(spec.values, key=lambda v: abs(float(v) - float(value)))
        if spec.integer:
            value = round(float(value))
        decoded[name] = value
    return decoded


def sample_configs(specs: Sequence[ParamSpec], count: int, seed: int) -> list[dict[str, Value]]:
    """`count` seeded random configurations (uniform, log-uniform, integer or choice)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    configs = []
    for _ in range(count):
        config: dict[str, Value] = {}
        for spec in specs:
            if not spec.is_range:
                config[spec.name] = spec.values[int(rng.integers(len(spec.values)))]
                continue
            low, high = float(spec.low), float(spec.high)  # type: ignore[arg-type]
            if spec.log:
                value = math.exp(rng.uniform(math.log(low), math.log(high)))
            else:
                value = rng.uniform(low, high)
            config[spec.name] = round(value) if spec.integer else _tidy(value)
        configs.append(config)
    return configs


def grid_configs(specs: Sequence[ParamSpec]) -> list[dict[str, Value]]:
    """Every combination of the grid points, the last parameter varying fastest."""
    combos = itertools.product(*[[(s.name, v) for v in s.grid_values()] for s in specs])
    return [dict(combo) for combo in combos]


def grid_size(specs: Sequence[ParamSpec]) -> int:
    """Number of grid combinations (1 for an empty space)."""
    return math.prod(len(spec.grid_values()) for spec in specs)


def _parse_range(name: str, text: str) -> ParamSpec:
    where = f"'{name}={text}'"
    parts = [part.strip() for part in text.split(":")]
    if len(parts) not in (2, 3):
        raise SpaceError(f"{where}: a range is a:b, a:m:b or a:lN:b")
    start = _number(parts[0] or "0", where)
    stop = _number(parts[-1], where) if parts[-1] else None
    if stop is None:
        raise SpaceError(f"{where}: the range has no end")
    written_float = any(_FLOAT_WRITTEN.search(p) for p in (parts[0], parts[-1]))
    log = False
    if len(parts) == 2:
        values = _stepped(start, stop, 1, where)
    else:
        middle = parts[1]
        points = _POINTS.match(middle)
        if points:
            kind = points.group(1) or points.group(4)
            count = int(points.group(2) or points.group(3))
            log = kind == "l"
            values = _spaced(start, stop, count, log, where)
        elif not middle or not _is_number_text(middle):
            raise SpaceError(f"{where}: '{middle}' is neither a step, a count nor lN/uN")
        else:
            m = _number(middle, where)
            written_float = written_float or bool(_FLOAT_WRITTEN.search(middle))
            if float(m).is_integer() and m > abs(stop - start):
                values = _spaced(start, stop, int(m), False, where)
            else:
                values = _stepped(start, stop, m, where)
    integer = not written_float and all(float(v).is_integer() for v in values)
    typed: tuple[Value, ...] = tuple(round(v) if integer else float(v) for v in values)
    low, high = min(start, stop), max(start, stop)
    return ParamSpec(name, typed, low=low, high=high, log=log, integer=integer, source=text)


def _stepped(start: float, stop: float, step: float, where: str) -> list[float]:
    if step == 0:
        raise SpaceError(f"{where}: the step is zero")
    if start != stop and (stop - start) * step < 0:
        direction = "up" if stop > start else "down"
        raise SpaceError(
            f"{where}: step {step:g} cannot count {direction} from {start:g} to {stop:g}"
        )
    steps = (stop - start) / step  # inf when the span or the count overflows a float
    if not math.isfinite(steps) or steps + 1 > MAX_RANGE_POINTS:
        raise SpaceError(f"{where}: {_count_text(steps + 1)}; {_range_limit()}")
    count = math.floor(steps + 1e-9) + 1
    return [_tidy(start + i * step) for i in range(count)]


def _spaced(start: float, stop: float, count: int, log: bool, where: str) -> list[float]:
    if count < 2:
        raise SpaceError(f"{where}: {count} point(s); a spaced range needs at least 2")
    if count > MAX_RANGE_POINTS:
        raise SpaceError(f"{where}: {_count_text(count)}; {_range_limit()}")
    if not log:
        return [_tidy(start + (stop - start) * i / (count - 1)) for i in range(count)]
    if start <= 0 or stop <= 0:
        raise SpaceError(f"{where}: a log range needs both ends > 0")
    lo, hi = math.log10(start), math.log10(stop)
    return [_tidy(10 ** (lo + (hi - lo) * i / (count - 1))) for i in range(count)]


def _count_text(count: float) -> str:
    return f"{count:,.0f} values" if math.isfinite(count) else "more values than can be counted"


def _range_limit() -> str:
    return f"a range may spell out at most {MAX_RANGE_POINTS:,} values; use fewer points"


def _check_finite(where: str, value: Any) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise SpaceError(f"space.{where}: {value} is not a finite number")


def _tidy(value: float) -> float:
    """Drop float noise (0.30000000000000004 -> 0.3) by keeping 12 significant digits."""
    return float(f"{value:.12g}")


def _from_list(name: str, items: list[Any]) -> ParamSpec:
    if not items:
        raise SpaceError(f"space.{name}: the list is empty")
    for item in items:
        if not isinstance(item, bool | int | float | str):
            raise SpaceError(f"space.{name}: {item!r} is not a number, string or boolean")
        _check_finite(name, item)
    if len(set(map(repr, items))) != len(items):
        raise SpaceError(f"space.{name}: the list repeats a value")
    return ParamSpec(name, tuple(items), source=list(items))


def _from_table(name: str, table: Mapping[str, Any]) -> ParamSpec:
    allowed = {"low", "high", "log", "num", "integer"}
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise SpaceError(f"space.{name}: unknown key(s) {unknown}; allowed: {sorted(allowed)}")
    if "low" not in table or "high" not in table:
        raise SpaceError(f"space.{name}: a range table needs low and high")
    low, high = table["low"], table["high"]
    if not (_is_number(low) and _is_number(high)):
        raise SpaceError(f"space.{name}: low and high must be numbers")
    _check_finite(f"{name}.low", low)
    _check_finite(f"{name}.high", high)
    if not low < high:
        raise SpaceError(f"space.{name}: low < high must hold, got low={low}, high={high}")
    log = bool(table.get("log", False))
    if log and low <= 0:
        raise SpaceError(f"space.{name}: a log range needs low > 0, got {low}")
    integer = bool(table.get("integer", isinstance(low, int) and isinstance(high, int)))
    values: tuple[Value, ...] = ()
    if "num" in table:
        num = table["num"]
        if not isinstance(num, int) or isinstance(num, bool):
            raise SpaceError(f"space.{name}: num must be a whole number")
        points = _spaced(float(low), float(high), num, log, f"space.{name}")
        values = tuple(round(v) if integer else v for v in points)
    return ParamSpec(name, values, float(low), float(high), log, integer, dict(table))


def _scalar(text: str) -> Value:
    if text.lower() in _BOOLEANS:
        return _BOOLEANS[text.lower()]
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def _number(text: str, where: str) -> float:
    if not _is_number_text(text):
        raise SpaceError(f"{where}: '{text}' is not a number")
    value = float(text)
    if not math.isfinite(value):
        raise SpaceError(f"{where}: '{text}' is not a finite number")
    return value


def _is_number_text(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
