"""What is left of a grid or random study, known from its record alone.

`resume` continues a study from Ray's experiment state. Where that state is missing or
damaged (a full disk left `tuner.pkl` empty, a copy lost `ray/`), the study record still says
everything: study.json holds the study as run, so its trials can be listed again in the same
order, and results.csv holds every trial that ended. The rest runs as a new Ray experiment,
`ray/resume-<n>/`, beside the damaged one, which is left as it was.

A study moved to another folder (another `--storage`, a copy to another machine) goes the same
way: Ray's state names the folder it ran in, and trials Ray would start from it would write
there. The folder a study's Ray state belongs to is kept beside it (:data:`ORIGIN`).
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from hypertune.space import SEED_KEY, ParamSpec, decode_config
from hypertune.study.store import write_atomic

RESUME_PREFIX = "resume-"
ORIGIN = "hypertune-folder.txt"  # in ray/: the study folder, resolved, that Ray's state is of


def mark_origin(ray_dir: Path, study: Path) -> None:
    """Note in `ray_dir` that its Ray state is of the study folder `study`."""
    write_atomic(ray_dir / ORIGIN, f"{study.resolve()}\n")


def moved_from(ray_dir: Path, study: Path) -> str | None:
    """The folder the study ran in when its Ray state is of another folder than `study`; None
    where it is not, or the state predates the mark."""
    try:
        origin = (ray_dir / ORIGIN).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    if not origin or origin == str(study.resolve()):
        return None
    try:  # the same folder by another path (a bind mount, a link above it)
        return None if os.path.samefile(origin, study) else origin
    except OSError:
        return origin  # the folder it ran in is gone (or unreachable): it moved


def remaining(
    points: Sequence[Mapping[str, Any]],
    rows: Iterable[Mapping[str, Any]],
    specs: Mapping[str, ParamSpec],
) -> list[dict[str, Any]]:
    """The `points` (searched values and seed) that no row of results.csv stands for, in their
    order; a configuration planned twice (grid repeats) needs two rows."""
    done = Counter(_key({n: row.get(n) for n in specs}, row.get("seed", 0)) for row in rows)
    rest = []
    for point in points:
        searched = decode_config(dict(point), specs)
        key = _key({n: searched.get(n) for n in specs}, point.get(SEED_KEY, 0))
        if done[key]:
            done[key] -= 1
        else:
            rest.append(dict(point))
    return rest


def experiment_name(ray_dir: Path) -> str:
    """The next `resume-<n>` experiment under the study's ray/ folder."""
    taken = [p.name.removeprefix(RESUME_PREFIX) for p in ray_dir.glob(f"{RESUME_PREFIX}*")]
    numbers = [int(n) for n in taken if n.isdigit()]
    return f"{RESUME_PREFIX}{max(numbers, default=0) + 1}"


def _key(values: Mapping[str, Any], seed: Any) -> tuple[Any, ...]:
    return (*(_plain(values[n]) for n in sorted(values)), _plain(seed))


def _plain(value: Any) -> Any:
    """A value as results.csv and the plan both spell it (numbers to 12 digits)."""
    if isinstance(value, bool) or str(value).lower() in ("true", "false"):
        return str(value).lower()
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return float(f"{number:.12g}") if math.isfinite(number) else str(number)
