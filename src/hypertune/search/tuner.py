"""How a study's Tuner is built: the loggers and the Tuner itself.

`run` (a new or resumed study) and `retry` (its failed trials again) build theirs here, so both
run with the same scheduling, failure handling and logs.
"""

from __future__ import annotations

import shutil
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from ray import tune

from hypertune.config import StudyConfig
from hypertune.search.curves import CurveRecorder
from hypertune.search.keeper import WeightsKeeper
from hypertune.search.tblog import MetricsTensorBoard
from hypertune.study.record import StudyRecord


def loggers(
    path: Path,
    config: StudyConfig,
    record: StudyRecord,
    packs: Sequence[Sequence[Mapping[str, Any]]] = (),
    kept: Collection[str] | None = None,
) -> list[Any]:
    """Every trial's curves (storage/<name>/curves.csv), TensorBoard logs of the metrics (in
    each trial folder's metrics/), MLflow runs (in
    storage/<name>/mlflow) when the study asked for them, and every trial's weights (in
    storage/<name>/weights) when it keeps them; `packs`: the study's fused packs; `kept`:
    where given, the trials whose curves stay in curves.csv (those results.csv holds).

    Tune adds its own CSV and JSON loggers beside these (progress.csv, result.json in each
    trial folder); the TensorBoard logger here takes the place of Tune's own.
    """
    callbacks: list[Any] = [CurveRecorder(path, kept), MetricsTensorBoard()]
    if config.keep_weights:
        callbacks.append(WeightsKeeper(path, packs))
    if record.mlflow:
        from hypertune.search.mlflowlog import MetricsMLflow

        callbacks.append(MetricsMLflow(path, config, packs))
    return callbacks


# Checkpoints Tune keeps per trial: the experiment state saved last may name an older one than
# the newest (see search.trainable._spacing).
KEPT_CHECKPOINTS = 3


def remove_checkpoints(experiment: Path) -> None:
    """Remove the trials' checkpoints of a finished experiment and of the experiments inside it
    (Tune's `checkpoint_*` folders, which the trainables wrote); they only serve a trial that
    has not finished."""
    for folder in [*experiment.glob("*/checkpoint_*"), *experiment.glob("*/*/checkpoint_*")]:
        if folder.is_dir() and not folder.is_symlink():
            shutil.rmtree(folder, ignore_errors=True)


def make_tuner(
    config: StudyConfig,
    trainable: Any,
    space: dict[str, Any],
    search_alg: Any,
    num_samples: int,
    parent: Path,
    name: str,
    callbacks: list[Any] | None = None,
) -> Any:
    """The one way a study builds its Tuner: FIFO, reused actors, the experiment in
    `parent`/`name`. A trial lost to the infrastructure is retried up to `config.retries`
    times from its last checkpoint (the last few kept per trial); one whose retries are spent,
    or whose own code failed (an ERROR result, never retried), is recorded and the study goes
    on."""
    return tune.Tuner(
        trainable,
        param_space=space,
        tune_config=tune.TuneConfig(
            metric=config.metric.objective_column,
            mode=config.metric.direction,
            search_alg=search_alg,
            num_samples=num_samples,
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name=name,
            storage_path=str(parent.resolve()),
            verbose=0,
            callbacks=callbacks,
            log_to_file=True,
            failure_config=tune.FailureConfig(max_failures=config.retries, fail_fast=False),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=KEPT_CHECKPOINTS),
        ),
    )
