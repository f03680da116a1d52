"""How a study's Tuner is built: Tune's settings, the loggers, and the Tuner itself.

`run` (a new or resumed study) and `retry` (its failed trials again) build theirs here, so both
run with the same scheduling, failure handling, checkpoint period and logs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ray import tune

from hypertune.config import StudyConfig
from hypertune.record import StudyRecord
from hypertune.search.tblog import MetricsTensorBoard

# Seconds between Ray's experiment checkpoints (Ray's "auto" waits 10 s or more): a driver
# killed mid-study loses at most this much of the trial table that `resume` restores.
CHECKPOINT_PERIOD_S = "1"
# Tune's result buffering: a trial hands the driver its epochs in batches of up to 8, or what
# arrived within 8 s, in one remote call instead of one call per epoch (benchmarks/results.md
# has the gain). Every epoch is still reported and logged; a trial's end is never held back.
# Both settings are 8 because Ray 2.60 passes the two to the trial in swapped order.
RESULT_BUFFER = {"TUNE_RESULT_BUFFER_LENGTH": "8", "TUNE_RESULT_BUFFER_MIN_TIME_S": "8"}


def set_tune_environment() -> None:
    """Tune's checkpoint period and result buffering, unless the environment sets them."""
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", CHECKPOINT_PERIOD_S)
    for name, value in RESULT_BUFFER.items():
        os.environ.setdefault(name, value)


def loggers(path: Path, config: StudyConfig, record: StudyRecord) -> list[Any]:
    """TensorBoard logs of the metrics, and MLflow when the study asked for it.

    Ray adds its CSV and JSON loggers itself (progress.csv, result.json in each trial folder).
    """
    tensorboard: list[Any] = [MetricsTensorBoard()]
    if not record.mlflow:
        return tensorboard
    from ray.air.integrations.mlflow import MLflowLoggerCallback

    return [
        *tensorboard,
        MLflowLoggerCallback(
            tracking_uri=(path / "mlflow").resolve().as_uri(),
            experiment_name=config.name,
            tags={"study": config.name, "search": config.search},
            save_artifact=False,
        ),
    ]


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
    """The one way a study builds its Tuner: FIFO, reused actors, failed trials recorded and
    the study going on, the experiment in `parent`/`name`."""
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
            failure_config=tune.FailureConfig(max_failures=0, fail_fast=False),
        ),
    )
