"""Each trial's learning curve: runs/<study>/curves.csv, one row per trial and epoch.

The columns are `trial_id` (as results.csv names the trial: a fused pack's member by its own
id), `epoch` (from 1) and the metrics every trainer reports each epoch (:data:`CURVE_METRICS`:
the epoch's value, not the running best, and the trial's training seconds so far). The study's
driver rewrites the whole file, through a temporary file and a rename, whenever a trial ends or
checkpoints (:mod:`hypertune.search.curves`): a crash leaves the epochs a resumed trial does not
train again, and never a torn row.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from hypertune.metrics import METRICS, SECONDS
from hypertune.study.store import write_atomic

CURVES_FILE = "curves.csv"
CURVE_METRICS = (*METRICS, SECONDS)
CURVE_COLUMNS = ("trial_id", "epoch", *CURVE_METRICS)

log = logging.getLogger("hypertune")


def curve_row(trial_id: str, epoch: int, metrics: Mapping[str, Any]) -> dict[str, Any]:
    """The row of one trial's epoch (NaN for a metric it did not report, or not as a number)."""
    row: dict[str, Any] = {"trial_id": trial_id, "epoch": int(epoch)}
    for name in CURVE_METRICS:
        value: Any = metrics.get(name)
        number = isinstance(value, int | float) and not isinstance(value, bool)
        row[name] = float(value) if number else float("nan")
    return row


def write_curves(path: Path, rows: Iterable[Mapping[str, Any]]) -> None:
    """Write `path`/curves.csv (`path`: the study's folder) atomically, sorted by trial and
    epoch."""
    frame = pd.DataFrame(list(rows), columns=list(CURVE_COLUMNS))
    frame = frame.sort_values(["trial_id", "epoch"], kind="stable")
    write_atomic(path / CURVES_FILE, frame.to_csv(index=False))


def load_curves(path: Path) -> pd.DataFrame:
    """The curves in `path`/curves.csv (`path`: the study's folder); empty where the study
    kept none (it ran before curves were kept) or the file is not a curves table (a warning
    says so: the curves are an extra, never a reason to lose the rest)."""
    file = path / CURVES_FILE
    empty = pd.DataFrame(columns=list(CURVE_COLUMNS))
    if not file.is_file():
        return empty
    try:
        frame = pd.read_csv(file, dtype={"trial_id": str}, float_precision="round_trip")
        missing = [name for name in ("trial_id", "epoch") if name not in frame.columns]
        if missing:
            raise ValueError(f"no {', '.join(missing)} column")
        frame["epoch"] = pd.to_numeric(frame["epoch"], errors="raise").astype(int)
    except (OSError, UnicodeDecodeError, ValueError, pd.errors.ParserError) as exc:
        log.warning("%s: not a curves table (%s); curves left out", file, exc)
        return empty
    for name in CURVE_METRICS:
        frame[name] = pd.to_numeric(frame[name], errors="coerce") if name in frame else float("nan")
    return frame[list(CURVE_COLUMNS)].reset_index(drop=True)
