"""A study's files on disk: runs/<study>/study.json and runs/<study>/results.csv.

Every write goes to a temporary file in the same folder and is renamed into place, so a crash
leaves either the old file or the new one, never half of one. The store knows tables and
metadata, nothing of pictures or of Ray.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from hypertune.errors import StudyError

STUDY_FILE = "study.json"
RESULTS_FILE = "results.csv"
RAY_DIR = "ray"
# Status values of a trial in results.csv.
TERMINATED, ERROR, NAN, RUNNING = "TERMINATED", "ERROR", "NAN", "RUNNING"
LEADING = ["trial_id", "status"]
TRAILING = ["epochs", "seed", "seconds", "error"]


def study_dir(storage: str | Path, name: str) -> Path:
    """Where a study named `name` lives under `storage`."""
    return Path(storage) / name


def known_studies(storage: str | Path) -> list[str]:
    """Names of the studies under `storage` (folders holding a study.json)."""
    root = Path(storage)
    if not root.is_dir():
        return []
    return sorted(p.parent.name for p in root.glob(f"*/{STUDY_FILE}"))


def check_new_study(storage: str | Path, name: str) -> None:
    """Refuse a study name that is taken (a study is never overwritten).

    Raises:
        StudyError: a study of that name exists in `storage`.
    """
    path = study_dir(storage, name)
    if (path / STUDY_FILE).exists():
        raise StudyError(
            f"study '{name}' already exists in {path}; pass --name NEW_NAME, "
            f"`resume {name}` to finish it, or remove the folder"
        )


def create_study_dir(storage: str | Path, name: str) -> Path:
    """Make the study's folder; refuse if a study of that name exists (never overwrite)."""
    check_new_study(storage, name)
    path = study_dir(storage, name)
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_study(path: Path, meta: Mapping[str, Any]) -> None:
    """Write study.json (metadata of the study) atomically."""
    write_atomic(path / STUDY_FILE, json.dumps(meta, indent=2, sort_keys=False, default=str) + "\n")


def read_study(storage: str | Path, name: str) -> dict[str, Any]:
    """Read a study's study.json.

    Raises:
        StudyError: no such study, or its study.json is unreadable.
    """
    path = study_dir(storage, name) / STUDY_FILE
    if not path.is_file():
        known = known_studies(storage)
        hint = f"; known: {', '.join(known)}" if known else f"; {storage}/ holds no studies"
        raise StudyError(f"study '{name}' not found in {storage}/{hint}")
    try:
        meta: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise StudyError(f"{path}: unreadable ({exc})") from exc
    return meta


def results_columns(rows: Iterable[Mapping[str, Any]], params: Sequence[str]) -> list[str]:
    """Column order: trial_id, status, params, metrics (sorted), epochs, seed, seconds, error."""
    seen: set[str] = set()
    for row in rows:
        seen.update(row)
    fixed = set(LEADING) | set(TRAILING) | set(params)
    metrics = sorted(seen - fixed)
    trailing = [c for c in TRAILING if c in seen or c != "error"]
    return LEADING + list(params) + metrics + trailing


def write_results(path: Path, rows: Sequence[Mapping[str, Any]], params: Sequence[str]) -> None:
    """Write results.csv (one row per trial, sorted by trial id) atomically."""
    frame = pd.DataFrame(list(rows), columns=results_columns(rows, params))
    frame = frame.sort_values("trial_id", kind="stable") if len(frame) else frame
    write_atomic(path / RESULTS_FILE, frame.to_csv(index=False))


def merge_rows(
    existing: Sequence[Mapping[str, Any]], new: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Rows of `existing` updated by `new`, matched on trial_id (new wins)."""
    merged = {str(row["trial_id"]): dict(row) for row in existing}
    for row in new:
        merged[str(row["trial_id"])] = dict(row)
    return list(merged.values())


def read_results(storage: str | Path, name: str) -> pd.DataFrame:
    """Read a study's results.csv (empty frame if no trial has finished yet).

    Raises:
        StudyError: no such study.
    """
    read_study(storage, name)  # a clear error for an unknown study
    path = study_dir(storage, name) / RESULTS_FILE
    if not path.is_file():
        return pd.DataFrame(columns=LEADING)
    return pd.read_csv(path, dtype={"trial_id": str})


def finite(value: Any) -> bool:
    """True for a real, finite number."""
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False
