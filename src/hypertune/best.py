"""The best trial's model, its weights kept in runs/<study>/best/.

A study keeps each trial's record, and its weights only where it was run with `keep_weights`
(a few thousand trials of weights would dwarf the study). `keep_best` takes the best trial by
the objective (or a trial named): its kept weights where the study has them, else the trial
trained again from its record. It checks the model against the record on the validation split,
and evaluates it on the dataset's held-out test split where the data has one: the validation
split chose the trial, so only the test split tells how well the chosen model does on data no
choice has seen. `load_best` gives the kept model back as a torch module.
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

from hypertune import weights
from hypertune.data import DataBundle
from hypertune.errors import StudyError
from hypertune.folders import clean_stale, swap_in, sync_files
from hypertune.study import store
from hypertune.study.record import StudyRecord, TrialRecord

BEST_DIR = "best"
WEIGHTS_FILE = "model.pt"
SUMMARY_FILE = "best.json"


@dataclass(frozen=True)
class BestModel:
    """What `keep_best` kept: the trial, its recorded and its model's last-epoch metrics on the
    validation split, its test-split metrics (None: the data has no test split), where the
    weights are, and where they came from (`source`: "kept" by the study, or "retrained")."""

    study: str
    trial_id: str
    seed: int
    params: dict[str, Any]
    recorded: dict[str, float]
    retrained: dict[str, float]
    test: dict[str, float] | None
    folder: str
    source: str = "retrained"


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
    """Keep the best trial's (or `trial_id`'s) model and metrics in runs/<name>/best/
    (model.pt, best.json), replacing what an earlier call kept there only once the new set is
    complete: the weights the study kept of it (`keep_weights`), else the trial trained again,
    alone.

    Raises:
        StudyError, ConfigError: as `rerun`; the study is being run by another process.
    """
    from hypertune.train import evaluate_on

    record = store.read_study(storage, name)
    path = store.study_dir(storage, name)
    with store.study_lock(path):
        trial_id = trial_id or best_trial_id(record, storage, name)
        file = weights.trial_file(storage, name, trial_id)
        model = (
            _kept(storage, name, trial_id, file)
            if file.is_file()
            else _retrained(storage, name, trial_id)
        )
        data = model.data
        test = None
        if data.x_test is not None and data.y_test is not None:
            loss, accuracy = evaluate_on(model.model, data.x_test, data.y_test, data.lengths_test)
            test = {"test_loss": loss, "test_accuracy": accuracy}
        best = BestModel(
            study=name,
            trial_id=trial_id,
            seed=model.recorded.seed,
            params=dict(model.recorded.params),
            recorded={k: v for k, v in model.recorded.metrics.items() if k in model.metrics},
            retrained=model.metrics,
            test=test,
            folder=str(path / BEST_DIR),
            source=model.source,
        )
        contents = {
            **weights.payload(model.state, model.trial, data.input_shape, data.num_classes),
            "study": name,
            "trial_id": trial_id,
            "seed": model.recorded.seed,
        }
        _replace(path / BEST_DIR, contents, asdict(best))
    return best


@dataclass(frozen=True)
class _Model:
    """One trial's trained model, its validation metrics now, its record, config and data."""

    model: nn.Module
    state: dict[str, torch.Tensor]
    metrics: dict[str, float]
    recorded: TrialRecord
    trial: dict[str, Any]
    data: DataBundle
    source: str


def _retrained(storage: str | Path, name: str, trial_id: str) -> _Model:
    from hypertune.search.rerun import retrain_model

    again = retrain_model(storage, name, trial_id)
    state = again.model.state_dict()
    return _Model(again.model, state, again.metrics, again.recorded, again.trial, again.data,
                  "retrained")  # fmt: skip


def _kept(storage: str | Path, name: str, trial_id: str, file: Path) -> _Model:
    """The weights the study kept of `trial_id`, tested again on the validation split."""
    from hypertune.search.rerun import recorded_trial
    from hypertune.train import evaluate

    again = recorded_trial(storage, name, trial_id)
    contents = weights.read(file)
    model = weights.build(contents)
    valid_loss, accuracy = evaluate(model, again.data, nn.CrossEntropyLoss())
    metrics = {"valid_loss": valid_loss, "accuracy": accuracy}
    return _Model(model, contents["state_dict"], metrics, again.recorded, again.trial,
                  again.data, "kept")  # fmt: skip


def load_best(storage: str | Path, name: str, trial_id: str | None = None) -> nn.Module:
    """The model `keep_best` kept for study `name` (or the weights the study kept of trial
    `trial_id`, run with `keep_weights`), with its weights, in eval mode.

    Raises:
        StudyError: nothing kept yet (run `best NAME` first, or the study with keep_weights).
        ConfigError: the study's own model module is gone or changed since it ran.
    """
    from hypertune.search.code import use_recorded_models

    record = store.read_study(storage, name)
    if trial_id is None:
        file = store.study_dir(storage, name) / BEST_DIR / WEIGHTS_FILE
        if not file.is_file():
            raise StudyError(f"study '{name}' has no kept model; keep one with `best {name}`")
    else:
        file = weights.trial_file(storage, name, trial_id)
        ids = set(store.read_results(storage, name)["trial_id"].astype(str))
        if str(trial_id) not in ids:
            raise StudyError(f"trial '{trial_id}' not in study '{name}'")
        if not file.is_file():
            raise StudyError(
                f"study '{name}' kept no weights of trial '{trial_id}' (a study keeps every "
                f"trial's with --keep-weights); `best {name} --trial {trial_id}` trains it again"
            )
    use_recorded_models(record)
    return weights.build(weights.read(file))


def _replace(folder: Path, contents: dict[str, Any], summary: dict[str, Any]) -> None:
    """Write the kept set in a hidden sibling of `folder`, then swap it in (as a report set
    is): a crash leaves the old set or the new one whole, never half of each."""
    clean_stale(folder)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.new-{os.getpid()}-"))
    try:
        staging.chmod(0o777 & ~store.current_umask())  # as any folder made here (mkdtemp: 0700)
        torch.save(contents, staging / WEIGHTS_FILE)
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
