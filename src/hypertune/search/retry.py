"""`resume NAME --retry-failed`: train a study's ERROR and NAN trials again.

A trial that failed for a reason outside it (Ray's memory monitor killed it while another
process held the memory, a node went away) deserves another attempt without a new study. Each
failed row's configuration and seed are handed to a fresh Tuner as points to evaluate, under
`ray/retry-<n>/`; a retried trial's row replaces the failed one under the same trial id, the
earlier attempt is kept in study.json (`attempts`), and every finished row stays as it was.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ray import tune

from hypertune.config import StudyConfig
from hypertune.data import DataBundle
from hypertune.errors import StudyError
from hypertune.search import cluster
from hypertune.search.code import load_recorded_code
from hypertune.search.recorder import RETRY_OF, SEED_KEY, Progress, ProgressFn, ResultRecorder
from hypertune.search.trainable import make_trainable
from hypertune.search.tuner import loggers, make_tuner, remove_checkpoints
from hypertune.study import provenance, store
from hypertune.study.record import FAILED, StudyRecord, StudyState, TrialRecord


def retry_failed(
    storage: str | Path, name: str, address: str | None = None, progress: ProgressFn | None = None
) -> Path:
    """Train the study's ERROR and NAN trials again, replacing their rows.

    Raises:
        StudyError: no such study, it has not finished (resume it first), it has no failed
            trials, another process runs it, or its data changed since it ran.
    """
    path = store.study_dir(storage, name)
    store.read_study(storage, name)  # a clear error for an unknown study
    store.check_folder(path, "--storage")
    with store.study_lock(path):
        record = store.read_study(storage, name)
        if record.status is not StudyState.FINISHED:
            raise StudyError(f"study '{name}' has not finished; `resume {name}` finishes it first")
        results = store.read_results(storage, name)
        failed = results[results["status"].isin(FAILED)]
        if failed.empty:
            raise StudyError(f"study '{name}' has no ERROR or NAN trials to retry")
        config = record.study_config()
        cluster.check_address(address)
        cluster.check_local_resources(config, address)
        data, _ = load_recorded_code(config, record)
        where = path / store.RESULTS_FILE
        trials = [
            TrialRecord.from_row(row, list(config.space), where)
            for row in failed.to_dict("records")
        ]
        round_ = 1 + max((int(a.get("retry", 0)) for a in record.attempts), default=0)
        record.attempts.extend(_attempt(trial, round_) for trial in trials)
        record.status = StudyState.RUNNING
        store.write_study(path, record)
        _run(config, data, path, record, trials, round_, address, progress)
    return path


def _attempt(trial: TrialRecord, round_: int) -> dict[str, Any]:
    """What study.json keeps of an attempt that a retry replaces."""
    return {
        "trial_id": trial.trial_id,
        "status": trial.status.value,
        "error": trial.error,
        "epochs": trial.epochs,
        "seconds": trial.seconds if math.isfinite(trial.seconds) else None,
        "retry": round_,
    }


def _points(config: StudyConfig, trials: list[TrialRecord]) -> list[dict[str, Any]]:
    """Each failed trial's configuration, seed, and the row it replaces."""
    points = []
    for trial in trials:
        point: dict[str, Any] = dict(trial.params)
        for name, spec in config.space.items():
            if spec.integer and isinstance(point[name], float):
                point[name] = round(point[name])
        point[SEED_KEY] = trial.seed
        point[RETRY_OF] = trial.trial_id
        points.append(point)
    return points


def _run(
    config: StudyConfig,
    data: DataBundle,
    path: Path,
    record: StudyRecord,
    trials: list[TrialRecord],
    round_: int,
    address: str | None,
    progress: ProgressFn | None,
) -> None:
    from ray.tune.search.basic_variant import BasicVariantGenerator

    points = _points(config, trials)
    started_here = False
    try:
        started_here = cluster.start(address)
        slots = cluster.free_slots(config)
        ids = [trial.trial_id for trial in trials]
        recorder = ResultRecorder(config, path, Progress(len(points)), progress, retry=ids)
        space = {
            key: tune.choice(list(dict.fromkeys(point[key] for point in points)))
            for key in points[0]
        }
        tuner = make_tuner(
            config,
            make_trainable(config, data, {}, fused=bool(record.packs)),
            space,
            BasicVariantGenerator(points_to_evaluate=points, max_concurrent=slots),
            len(points),
            path / store.RAY_DIR,
            f"retry-{round_}",
            [recorder, *loggers(path, config, record)],
        )
        tuner.fit()
    finally:
        # The study had finished before the retry and still has: every trial has a row.
        record.status, record.ended = StudyState.FINISHED, provenance.now()
        store.write_study(path, record)
        if not config.keep_checkpoints:
            remove_checkpoints(path / store.RAY_DIR / f"retry-{round_}")
        if started_here:
            cluster.stop()
    if recorder.incomplete:
        raise KeyboardInterrupt(f"study '{record.name}': retry interrupted")
