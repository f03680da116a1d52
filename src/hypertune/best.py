"""The best trial's model: trained again alone, its weights kept in runs/<study>/best/.

A study keeps each trial's record, not its weights (a few thousand trials of weights would
dwarf the study). `keep_best` trains the best trial by the objective (or a trial named) again
from its record, checks it against the record on the validation split, and evaluates it on the
dataset's held-out test split where the data has one: the validation split chose the trial, so
only the test split tells how well the chosen model does on data no choice has seen.
`load_best` gives the kept model back as a torch module.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hypertune import store
from hypertune.errors import StudyError
from hypertune.folders import clean_stale, swap_in, sync_files
from hypertune.record import StudyRecord

BEST_DIR = "best"
WEIGHTS_FILE = "model.pt"
SUMMARY_FILE = "best.json"


@dataclass(frozen=True)
class BestModel:
    """What `keep_best` kept: the trial, its recorded and retrained last-epoch metrics on the
    validation split, its test-split metrics (None: the data has no test split) and where the
    weights are."""

    study: str
    trial_id: str
    seed: int
    params: dict[str, Any]
    recorded: dict[str, float]
    retrained: dict[str, float]
    test: dict[str, float] | None
    folder: str


def best_trial_id(record: StudyRecord, storage: str | Path, name: str) -> str:
    """The study's best trial, by the report's one meaning of best (`report.best_trial`).

    Raises:
        StudyError: the study has no finished trial with a finite objective.
    """
    from hypertune.report import best_trial

    best = best_trial(store.read_results(storage, name), record)
    if best is None:
        raise StudyError(
            f"study '{name}' has no finished trial with a finite {record.objective_column}; "
            "there is no best model to keep"
        )
    return str(best["trial_id"])


def keep_best(storage: str | Path, name: str, trial_id: str | None = None) -> BestModel:
    """Train the best trial (or `trial_id`) again, alone, and keep its weights and metrics in
    runs/<name>/best/ (model.pt, best.json), replacing what an earlier call kept there only
    once the new set is complete.

    Raises:
        StudyError, ConfigError: as `rerun`; the study is being run by another process.
    """
    from hypertune.search.rerun import retrain_model
    from hypertune.train import evaluate_on

    record = store.read_study(storage, name)
    path = store.study_dir(storage, name)
    with store.study_lock(path):
        trial_id = trial_id or best_trial_id(record, storage, name)
        again = retrain_model(storage, name, trial_id)
        data = again.data
        test = None
        if data.x_test is not None and data.y_test is not None:
            loss, accuracy = evaluate_on(again.model, data.x_test, data.y_test, data.lengths_test)
            test = {"test_loss": loss, "test_accuracy": accuracy}
        best = BestModel(
            study=name,
            trial_id=trial_id,
            seed=again.recorded.seed,
            params=dict(again.recorded.params),
            recorded={k: v for k, v in again.recorded.metrics.items() if k in again.metrics},
            retrained=again.metrics,
            test=test,
            folder=str(path / BEST_DIR),
        )
        weights = {
            "state_dict": again.model.state_dict(),
            "config": dict(again.trial),
            "input_shape": list(data.input_shape),
            "num_classes": data.num_classes,
            "study": name,
            "trial_id": trial_id,
            "seed": again.recorded.seed,
        }
        _replace(path / BEST_DIR, weights, asdict(best))
    return best


def load_best(storage: str | Path, name: str) -> nn.Module:
    """The model `keep_best` kept for study `name`, with its weights, in eval mode.

    Raises:
        StudyError: nothing kept yet (run `best NAME` first).
        ConfigError: the study's own model module is gone or changed since it ran.
    """
    from hypertune.models import create_model
    from hypertune.search.code import use_recorded_models

    record = store.read_study(storage, name)
    file = store.study_dir(storage, name) / BEST_DIR / WEIGHTS_FILE
    if not file.is_file():
        raise StudyError(f"study '{name}' has no kept model; keep one with `best {name}`")
    kept = torch.load(file, map_location="cpu", weights_only=True)
    use_recorded_models(record)
    model = create_model(kept["config"], tuple(kept["input_shape"]), kept["num_classes"])
    model.load_state_dict(kept["state_dict"])
    return model.eval()


def _replace(folder: Path, weights: dict[str, Any], summary: dict[str, Any]) -> None:
    """Write the kept set in a hidden sibling of `folder`, then swap it in (as a report set
    is): a crash leaves the old set or the new one whole, never half of each."""
    clean_stale(folder)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.new-{os.getpid()}-"))
    try:
        staging.chmod(0o777 & ~store.current_umask())  # as any folder made here (mkdtemp: 0700)
        torch.save(weights, staging / WEIGHTS_FILE)
        text = json.dumps(_plain(summary), indent=2) + "\n"
        (staging / SUMMARY_FILE).write_text(text, encoding="utf-8")
        sync_files(staging)
        old = swap_in(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _plain(value: Any) -> Any:
    """JSON-safe: a non-finite number as null."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
