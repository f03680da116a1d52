"""MLflow runs of a study (`run --mlflow`): one run per trial, as an MLflow user compares them.

Ray's MLflow callback logs a trial's searched values only (no learning rate where it is
fixed, no epochs) and every numeric field of every result (pid, timestamps, Tune's counters).
This one logs each trial's every setting as a param — its model's keys with the architecture's
defaults, its trainer's keys, its seed, the epochs and the data — and only hypertune's
metrics, one point per epoch. A fused pack's members each get a run of their own, named by the
trial id results.csv gives them. It uses MLflow's public client only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ray.tune.logger import LoggerCallback

from hypertune.config import StudyConfig
from hypertune.models import resolve_config
from hypertune.search.epochs import finite_metrics, reported_epochs
from hypertune.search.recorder import RETRY_OF, live, trial_records
from hypertune.study.record import TrialStatus
from hypertune.train.settings import trainer_keys

TRIAL_TAG = "trial_id"  # the run's tag: the trial's id in results.csv
FOLDER = "mlflow"  # the study's MLflow file store, in its folder
log = logging.getLogger("hypertune")


def _restored(config: StudyConfig, packs: Sequence[Sequence[Mapping[str, Any]]]) -> MetricsMLflow:
    """A pickled MLflow logger, restored into the folder its study is in now."""
    return MetricsMLflow(live(config.name).path, config, packs)


class MetricsMLflow(LoggerCallback):
    """Each trial, and each member of a fused pack, as an MLflow run in the study's experiment."""

    def __init__(
        self, study: Path, config: StudyConfig, packs: Sequence[Sequence[Mapping[str, Any]]]
    ) -> None:
        self.uri = (study / FOLDER).resolve().as_uri()
        self.config = config
        self.packs = packs
        self.runs: dict[str, str] = {}  # trial id (a member's) -> MLflow run id
        self.known: dict[str, str] | None = None  # the experiment's runs, read once
        self.steps: dict[str, int] = {}  # a member's last logged epoch
        self.failed = False  # MLflow raised once: the study goes on without it
        self._client: Any = None

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Tune pickles its callbacks with the experiment: a restored one logs to the folder the
        # study is in now (it may have moved), through the live recorder's study folder.
        return _restored, (self.config, self.packs)

    @property
    def client(self) -> Any:
        if self._client is None:
            from mlflow.tracking import MlflowClient

            self._client = MlflowClient(tracking_uri=self.uri)
        return self._client

    def settings(self, trial: Any) -> dict[str, dict[str, Any]]:
        """Every setting of each of `trial`'s trials (its members, for a pack), by trial id."""
        config = self.config
        out = {}
        for row in trial_records(trial, config.space, self.packs, TrialStatus.FINISHED):
            values = {**config.hyperparameters(), **row.params}
            out[row.trial_id] = {
                **resolve_config(values),
                **asdict(trainer_keys(values)),
                "seed": row.seed,
                "epochs": config.epochs,
                "data": config.data,
                **{f"data.{k}": v for k, v in config.data_options.items()},
            }
        return out

    def log_trial_start(self, trial: Any) -> None:
        self._safely(self._start, trial)

    def log_trial_result(self, iteration: int, trial: Any, result: dict[str, Any]) -> None:
        self._safely(self._result, iteration, trial, result)

    def log_trial_end(self, trial: Any, failed: bool = False) -> None:
        self._safely(self._end, trial, failed)

    def _safely(self, step: Any, *args: Any) -> None:
        """Run `step`; MLflow failing (a full disk, a broken store) costs the study its MLflow
        runs, said once, and nothing else."""
        if self.failed:
            return
        try:
            step(*args)
        except Exception as exc:
            self.failed = True
            log.warning(
                "MLflow logging stopped (%s: %s); the study goes on", type(exc).__name__, exc
            )

    def _start(self, trial: Any) -> None:
        experiment = self._experiment()
        if self.known is None:  # a resumed or retried trial goes on in its run
            runs = self.client.search_runs([experiment], max_results=50_000)
            self.known = {r.data.tags.get(TRIAL_TAG, ""): r.info.run_id for r in runs}
        for trial_id, settings in self.settings(trial).items():
            if trial_id in self.runs:
                continue
            if trial_id in self.known:
                self.runs[trial_id] = self.known[trial_id]
                continue
            tags = {"study": self.config.name, "search": self.config.search, TRIAL_TAG: trial_id}
            run = self.client.create_run(experiment, tags=tags, run_name=trial_id)
            self.runs[trial_id] = self.known[trial_id] = run.info.run_id
            from mlflow.entities import Param

            params = [Param(k, str(v)) for k, v in sorted(settings.items())]
            self.client.log_batch(run.info.run_id, params=params)

    def _result(self, iteration: int, trial: Any, result: dict[str, Any]) -> None:
        for member, metrics, step in reported_epochs(trial, result, iteration, self.steps):
            trial_id = member or str(trial.config.get(RETRY_OF, trial.trial_id))
            self._log(trial_id, metrics, step)

    def _end(self, trial: Any, failed: bool) -> None:
        # Each row's status as results.csv has it (a trial whose metrics stopped being finite
        # is NAN, one that its own error ended is ERROR).
        status = TrialStatus.ERROR if failed else TrialStatus.FINISHED
        for row in trial_records(trial, self.config.space, self.packs, status):
            run = self.runs.pop(row.trial_id, None)
            if run is not None:
                self.client.set_tag(run, "status", row.status.value)
                self.client.set_terminated(run, "FAILED" if row.status.failed else "FINISHED")

    def _experiment(self) -> str:
        found = self.client.get_experiment_by_name(self.config.name)
        if found is not None:
            return str(found.experiment_id)
        return str(self.client.create_experiment(self.config.name))

    def _log(self, trial_id: str, metrics: Mapping[str, Any], step: int) -> None:
        run = self.runs.get(trial_id)
        if run is None:
            return
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        points = [Metric(k, v, now, step) for k, v in finite_metrics(metrics).items()]
        if points:
            self.client.log_batch(run, metrics=points)
