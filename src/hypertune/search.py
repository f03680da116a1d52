"""Run a study with Ray Tune: `run_study(config) -> runs/<study>/`.

One `tune.Tuner` call wires the searcher, FIFO scheduling, resources and storage. Data reaches
the trials once, through `tune.with_parameters` (Ray's object store), never through the config;
fixed hyperparameters travel the same way, so only searched values become result columns.
Finished trials are written to results.csv as they complete, so a crash loses nothing finished,
and `resume_study` picks up the rest from Ray's experiment checkpoint.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray
from ray import tune

from hypertune import provenance, store
from hypertune.config import StudyConfig, from_dict
from hypertune.data import DataBundle, load_dataset
from hypertune.errors import ConfigError, StudyError
from hypertune.space import ParamSpec, decode_config, grid_size, sample_configs, to_domain
from hypertune.train import TrainSettings, check_config, fit

SEED_KEY = "seed"
TRIAL_INDEX = "__trial_index__"  # set by Ray's Repeater on repeated searcher suggestions
PREFLIGHT_LIMIT = 512  # configurations checked before Ray starts


@dataclass
class Progress:
    """How far a study is; handed to the caller's progress function after every change."""

    total: int
    done: int = 0
    running: int = 0
    failed: int = 0
    best: float | None = None
    started: float = field(default_factory=time.monotonic)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


ProgressFn = Callable[[Progress], None]


def run_study(
    config: StudyConfig,
    storage: str | Path = "runs",
    address: str | None = None,
    progress: ProgressFn | None = None,
) -> Path:
    """Run every trial of `config`; return the study folder (results.csv, study.json, ray/).

    Raises:
        StudyError: a study of that name exists already.
        ConfigError, DataError: the configuration or the data is unusable (before Ray starts).
    """
    data = load_dataset(config.data, **config.data_options)
    preflight(config, data)
    path = store.create_study_dir(storage, config.name)
    meta = {
        "name": config.name,
        "status": "running",
        "config": config.to_dict(),
        "search": config.search,
        "metric": config.metric.name,
        "mode": config.metric.mode,
        "direction": config.metric.direction,
        "seeds": list(range(config.seeds)),
        "params": list(config.space),
        "trials_planned": planned_trials(config),
        "data": data.summary(),
        "git": provenance.git_state(),
        "versions": provenance.versions(),
        "host": provenance.host(),
        "started": provenance.now(),
        "ended": None,
    }
    store.write_study(path, meta)
    _execute(config, data, path, meta, address, progress, restore=False)
    return path


def resume_study(
    storage: str | Path, name: str, address: str | None = None, progress: ProgressFn | None = None
) -> Path:
    """Finish a study whose driver stopped: finished trials are kept, the rest run."""
    meta = store.read_study(storage, name)
    config = from_dict(meta["config"])
    data = load_dataset(config.data, **config.data_options)
    if data.fingerprint != meta["data"]["fingerprint"]:
        raise StudyError(
            f"study '{name}': the data changed since it ran (fingerprint {data.fingerprint}, "
            f"recorded {meta['data']['fingerprint']}); start a new study instead"
        )
    path = store.study_dir(storage, name)
    _execute(config, data, path, meta, address, progress, restore=True)
    return path


def planned_trials(config: StudyConfig) -> int:
    """How many trials the study will run."""
    if config.search == "grid":
        return grid_size(list(config.space.values())) * config.samples * config.seeds
    return config.samples * config.seeds


def preflight(config: StudyConfig, data: DataBundle) -> None:
    """Build the model of every configuration (up to a limit) on the meta device.

    Catches unknown keys, wrong types and impossible shapes in a second, before Ray starts.
    """
    import torch

    from hypertune.models import create_model

    candidates = []
    for spec in config.space.values():
        values = spec.values if spec.values else (spec.low, spec.high)
        candidates.append([(spec.name, v) for v in values])
    for combo in itertools.islice(itertools.product(*candidates), PREFLIGHT_LIMIT):
        trial = decode_config({**config.hyperparameters(), **dict(combo)}, config.space)
        check_config(trial)
        with torch.device("meta"):
            create_model(trial, data.input_shape, data.num_classes)


def train_trial(
    config: dict[str, Any],
    data: DataBundle,
    fixed: Mapping[str, Any],
    specs: Mapping[str, ParamSpec],
    settings: TrainSettings,
) -> None:
    """The Ray Tune trainable: one configuration, one seed, one report per epoch."""
    searched = decode_config(config, specs)
    seed = int(searched.pop(SEED_KEY, searched.pop(TRIAL_INDEX, 0)))
    fit({**fixed, **searched}, data, settings, seed=seed, report=tune.report)


def _execute(
    config: StudyConfig,
    data: DataBundle,
    path: Path,
    meta: dict[str, Any],
    address: str | None,
    progress: ProgressFn | None,
    restore: bool,
) -> None:
    started_here = _init_ray(address)
    try:
        slots = _free_slots(config)
        settings = TrainSettings(
            epochs=config.epochs,
            device="cuda" if config.gpus_per_trial > 0 else "cpu",
            threads=max(1, int(config.cpus_per_trial)),
            trainer=config.trainer,
        )
        trainable = tune.with_resources(
            tune.with_parameters(
                train_trial,
                data=data,
                fixed=config.hyperparameters(),
                specs=config.space,
                settings=settings,
            ),
            {"cpu": config.cpus_per_trial, "gpu": config.gpus_per_trial},
        )
        recorder = ResultRecorder(config, path, Progress(planned_trials(config)), progress)
        ray_dir = path / store.RAY_DIR
        if restore and tune.Tuner.can_restore(str(ray_dir.resolve())):
            tuner = tune.Tuner.restore(
                str(ray_dir.resolve()),
                trainable=trainable,
                resume_unfinished=True,
                resume_errored=False,
                restart_errored=False,
            )
            # The pickled recorder comes back without its progress function and rows.
            tuner._local_tuner.get_run_config().callbacks = [recorder]  # type: ignore[union-attr]
        else:
            tuner = _new_tuner(config, trainable, path, slots, recorder)
        tuner.fit()
    finally:
        if started_here:
            ray.shutdown()
    meta.update(status="finished", ended=provenance.now())
    store.write_study(path, meta)


def _new_tuner(config: StudyConfig, trainable: Any, path: Path, slots: int, recorder: Any) -> Any:
    space: dict[str, Any] = {
        name: to_domain(spec, config.search) for name, spec in config.space.items()
    }
    metric = config.metric.tune_metric
    mode = config.metric.direction
    search_alg, num_samples = _searcher(config, space, metric, mode, slots)
    return tune.Tuner(
        trainable,
        param_space=space,
        tune_config=tune.TuneConfig(
            metric=metric,
            mode=mode,
            search_alg=search_alg,
            num_samples=num_samples,
            reuse_actors=True,
            max_concurrent_trials=slots if config.search in ("bayes", "hyperopt") else None,
        ),
        run_config=tune.RunConfig(
            name=store.RAY_DIR,
            storage_path=str(path.resolve()),
            verbose=0,
            callbacks=[recorder],
            log_to_file=True,
        ),
    )


def _searcher(
    config: StudyConfig, space: dict[str, Any], metric: str, mode: str, slots: int
) -> tuple[Any, int]:
    """The search algorithm and the number of samples Tune must draw."""
    seeds = list(range(config.seeds))
    if config.search == "grid":
        if config.seeds > 1:
            space[SEED_KEY] = tune.grid_search(seeds)
        return None, config.samples
    if config.search == "random":
        # Sampled here, seeded, so every seed of a configuration trains the same values and a
        # rerun of the study draws the same configurations.
        from ray.tune.search.basic_variant import BasicVariantGenerator

        configs = sample_configs(list(config.space.values()), config.samples, seed=0)
        points = [{**c, SEED_KEY: s} for c in configs for s in seeds]
        space[SEED_KEY] = tune.choice(seeds)
        return BasicVariantGenerator(points_to_evaluate=points), len(points)
    if config.search == "bayes":
        from ray.tune.search.bayesopt import BayesOptSearch

        searcher: Any = BayesOptSearch(random_state=0)
    else:
        from ray.tune.search.hyperopt import HyperOptSearch

        searcher = HyperOptSearch(random_state_seed=0)
    if config.seeds > 1:
        from ray.tune.search import Repeater

        searcher = Repeater(searcher, repeat=config.seeds, set_index=True)
    return searcher, config.samples * config.seeds


def _init_ray(address: str | None) -> bool:
    """Start (or join, with `address` or RAY_ADDRESS) Ray; True if this call started it."""
    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    # The classic reporter honours verbose=0; the CLI shows its own progress line.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    try:
        ray.init(
            address=address or os.environ.get("RAY_ADDRESS"),
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.ERROR,
            configure_logging=True,
        )
    except ConnectionError as exc:
        raise StudyError(f"--address: cannot reach a Ray cluster at {address} ({exc})") from exc
    return True


def _free_slots(config: StudyConfig) -> int:
    """Trials that fit at once on the cluster's CPUs and GPUs."""
    resources = ray.cluster_resources()
    limits = []
    if config.cpus_per_trial > 0:
        limits.append(int(resources.get("CPU", 1) // config.cpus_per_trial))
    if config.gpus_per_trial > 0:
        gpus = resources.get("GPU", 0)
        if gpus <= 0:
            raise ConfigError("resources.gpus_per_trial: no GPU in the Ray cluster; use 0")
        limits.append(int(gpus // config.gpus_per_trial))
    slots = max(1, min(limits) if limits else 1)
    return min(slots, config.max_concurrent) if config.max_concurrent else slots


def trial_row(
    trial: Any, specs: Mapping[str, ParamSpec], status: str | None = None
) -> dict[str, Any]:
    """One results.csv row from a Ray Tune trial (`status`: as known to the caller)."""
    result = dict(trial.last_result or {})
    searched = decode_config(trial.config, specs)
    row: dict[str, Any] = {"trial_id": trial.trial_id}
    metrics = {k: v for k, v in result.items() if k in _METRIC_COLUMNS}
    status = status or trial.status
    if status == store.TERMINATED and not all(store.finite(v) for v in metrics.values()):
        status = store.NAN
    row["status"] = status
    row.update({name: searched.get(name) for name in specs})
    row.update(metrics)
    row["epochs"] = int(result.get("training_iteration", 0) or 0)
    row["seed"] = int(searched.get(SEED_KEY, searched.get(TRIAL_INDEX, 0)))
    row["seconds"] = round(float(result.get("time_total_s", 0.0) or 0.0), 3)
    if status == store.ERROR:
        row["error"] = _last_line(trial.get_error())
    return row


_METRIC_COLUMNS = {
    f"{name}{suffix}"
    for name in ("train_loss", "valid_loss", "accuracy")
    for suffix in ("", "_best")
}


def _last_line(text: Any) -> str:
    lines = [line.strip() for line in str(text or "").splitlines() if line.strip()]
    return lines[-1][:300] if lines else "error"


class ResultRecorder(tune.Callback):
    """Writes results.csv as trials finish and feeds the progress function."""

    def __init__(
        self, config: StudyConfig, path: Path, state: Progress, progress: ProgressFn | None
    ) -> None:
        self.config = config
        self.path = path
        self.state = state
        self.progress = progress
        self.rows: dict[str, dict[str, Any]] = {}
        existing = store.read_results(path.parent, path.name)
        for row in existing.to_dict("records"):
            self.rows[str(row["trial_id"])] = {str(k): v for k, v in row.items()}
        self.state.done = sum(1 for r in self.rows.values() if r["status"] != store.RUNNING)

    def __getstate__(self) -> dict[str, Any]:
        # Ray pickles its callbacks with the experiment; a progress function (a closure over
        # the terminal) need not survive that, and resume hands in a fresh recorder.
        state = dict(self.__dict__)
        state["progress"] = None
        return state

    def _record(self, trial: Any, status: str) -> None:
        row = trial_row(trial, self.config.space, status)
        self.rows[row["trial_id"]] = row
        store.write_results(self.path, list(self.rows.values()), list(self.config.space))
        value: Any = row.get(self.config.metric.tune_metric)
        if row["status"] == store.TERMINATED and store.finite(value):
            better = min if self.config.metric.direction == "min" else max
            best = self.state.best
            self.state.best = float(value) if best is None else better(best, float(value))

    def _tell(self, trials: list[Any]) -> None:
        if self.progress is None:
            return
        self.state.running = sum(
            1 for t in trials if t.status == "RUNNING" and t.trial_id not in self.rows
        )
        self.state.done = sum(1 for r in self.rows.values() if r["status"] != store.RUNNING)
        self.state.failed = sum(
            1 for r in self.rows.values() if r["status"] in (store.ERROR, store.NAN)
        )
        self.progress(self.state)

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._tell(trials)

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._record(trial, store.TERMINATED)
        self._tell(trials)

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._record(trial, store.ERROR)
        self._tell(trials)

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        for trial in trials:
            if trial.status in ("TERMINATED", "ERROR"):
                row = trial_row(trial, self.config.space)
                self.rows[row["trial_id"]] = row
        store.write_results(self.path, list(self.rows.values()), list(self.config.space))
        self._tell(trials)


def rerun_trial(
    storage: str | Path, name: str, trial_id: str
) -> tuple[dict[str, float], dict[str, Any]]:
    """Retrain one recorded trial from study.json and results.csv alone, without Ray.

    Returns the new last-epoch metrics and the recorded row.
    """
    meta = store.read_study(storage, name)
    config = from_dict(meta["config"])
    results = store.read_results(storage, name)
    match = results[results["trial_id"].astype(str) == str(trial_id)]
    if match.empty:
        known = ", ".join(results["trial_id"].astype(str).head(10))
        raise StudyError(f"trial '{trial_id}' not in study '{name}'; trials: {known}")
    row = {str(k): v for k, v in match.iloc[0].to_dict().items()}
    data = load_dataset(config.data, **config.data_options)
    searched = {p: _native(row[p]) for p in config.space}
    trial = decode_config({**config.hyperparameters(), **searched}, config.space)
    settings = TrainSettings(epochs=config.epochs, threads=max(1, int(config.cpus_per_trial)))
    metrics = fit(trial, data, settings, seed=int(row.get("seed", 0)))
    return metrics, row


def _native(value: Any) -> Any:
    """pandas/numpy scalars back to Python values (whole floats read from CSV to ints)."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return value
