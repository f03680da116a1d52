"""Retrain one recorded trial from study.json and results.csv alone, without Ray."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from hypertune.config import StudyConfig
from hypertune.data import DataBundle
from hypertune.errors import StudyError
from hypertune.models import create_model
from hypertune.search.code import load_recorded_code
from hypertune.search.plan import planned
from hypertune.space import SEED_KEY, decode_config
from hypertune.study import store
from hypertune.study.record import TrialRecord
from hypertune.train import TrainSettings, fit, fit_member, fit_module

SHOWN_IDS = 10  # trial ids an error lists before "..."


def rerun_trial(
    storage: str | Path, name: str, trial_id: str
) -> tuple[dict[str, float], TrialRecord]:
    """Retrain one recorded trial from study.json and results.csv alone, without Ray.

    Returns the new last-epoch metrics and the trial's recorded row.

    Raises:
        StudyError: no such study or trial, or the data changed since the study ran.
        ConfigError: the study's own model or data module is gone or changed since it ran.
    """
    again = recorded_trial(storage, name, trial_id)
    point = {**again.searched, SEED_KEY: again.recorded.seed}
    config, data = again.config, again.data
    if again.settings.fused and _in_a_pack(point, config, data, again.slots):
        # As its pack trained it (a GRU or LSTM member too, which alone trains as torch's module).
        metrics = fit_member(again.trial, data, again.settings, again.recorded.seed)
    else:
        metrics = fit(again.trial, data, again.settings, seed=again.recorded.seed)
    return metrics, again.recorded


@dataclass(frozen=True)
class Retrained:
    """One recorded trial trained again as one torch module: its model (trained), metrics,
    recorded row, configuration and data."""

    model: nn.Module
    metrics: dict[str, float]
    recorded: TrialRecord
    trial: dict[str, Any]
    data: DataBundle


def retrain_model(storage: str | Path, name: str, trial_id: str) -> Retrained:
    """Train one recorded trial again, alone, as one `nn.Module` stepped by torch's optimizer,
    and keep the model: what `best` saves. A member of a fused pack trained so equals its
    pack's training to float rounding (:func:`rerun_trial` reruns it bit for bit instead).

    Raises:
        StudyError, ConfigError: as :func:`rerun_trial`; StudyError also for a study trained
            with mltrainer, whose loop hands back no model.
    """
    again = recorded_trial(storage, name, trial_id)
    if again.settings.trainer == "mltrainer":
        raise StudyError(
            f"study '{name}' trained with mltrainer, whose loop keeps no model; its trials "
            "can be rerun (rerun), not kept"
        )
    kept: list[list[dict[str, Any]]] = []
    metrics = fit_module(again.trial, again.data, again.settings, again.recorded.seed,
                         trained=kept.append)  # fmt: skip
    data = again.data
    model = create_model(again.trial, data.input_shape, data.num_classes)
    model.load_state_dict(kept[0][0])
    return Retrained(model.eval(), metrics, again.recorded, again.trial, data)


@dataclass(frozen=True)
class RecordedTrial:
    """One recorded trial as its study's files tell it: the study's config, the trial's row,
    searched values, full configuration, the study's data (checked unchanged), and how it
    trained."""

    config: StudyConfig
    recorded: TrialRecord
    searched: dict[str, Any]
    trial: dict[str, Any]
    data: DataBundle
    settings: TrainSettings
    slots: int


def recorded_trial(storage: str | Path, name: str, trial_id: str) -> RecordedTrial:
    """What training one recorded trial again needs, read from its study's files."""
    record = store.read_study(storage, name)
    config = record.study_config()
    results = store.read_results(storage, name)
    match = results[results["trial_id"].astype(str) == str(trial_id)]
    if match.empty:
        ids = results["trial_id"].astype(str).tolist()
        known = ", ".join(ids[:SHOWN_IDS]) + (", ..." if len(ids) > SHOWN_IDS else "")
        raise StudyError(
            f"trial '{trial_id}' not in study '{name}'; its {len(ids)} trials: {known or 'none'}"
        )
    where = store.study_dir(storage, name) / store.RESULTS_FILE
    recorded = TrialRecord.from_row(match.iloc[0].to_dict(), list(config.space), where)
    data, _ = load_recorded_code(config, record)
    searched = {p: _native(value) for p, value in recorded.params.items()}
    trial = decode_config({**config.hyperparameters(), **searched}, config.space)
    settings = TrainSettings(
        epochs=config.epochs,
        threads=max(1, int(config.cpus_per_trial)),
        trainer=config.trainer,
        fused=bool(record.packs),  # a member of a fused study reruns as a pack of one
    )
    slots = int(record.packs.get("slots", 1)) if record.packs else 1
    return RecordedTrial(config, recorded, searched, trial, data, settings, slots)


def _in_a_pack(point: dict[str, Any], config: StudyConfig, data: DataBundle, slots: int) -> bool:
    """Whether the study's plan (made again as it was made) put `point` in a pack with others."""
    _, plan = planned(config, data, slots)
    return any(len(pack) > 1 and point in pack for pack in plan)


def _native(value: Any) -> Any:
    """Whole floats read from CSV back to ints."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return value
