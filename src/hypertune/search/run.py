"""Run a study with Ray Tune: `run_study(config) -> runs/<study>/`.

One `tune.Tuner` call wires the searcher, FIFO scheduling, resources and storage; the
trainables are in :mod:`hypertune.search.trainable`. A grid or random study trains its trials
in fused packs (:mod:`hypertune.search.packs`) unless it asked for `fuse = false`. Finished
trials are written to results.csv as they complete, so a crash loses nothing finished, and
`resume_study` picks up the rest from Ray's experiment checkpoint.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import pickle
from pathlib import Path
from typing import Any

from ray import tune

from hypertune.config import StudyConfig
from hypertune.data import DataBundle
from hypertune.errors import DiskFullError, HypertuneError, StudyError
from hypertune.preflight import preflight
from hypertune.search import cluster, packs
from hypertune.search.code import load_recorded_code, load_study_code
from hypertune.search.domains import bayes_domains, to_domain
from hypertune.search.packs import PACK_KEY
from hypertune.search.plan import is_replanned, study_plan
from hypertune.search.recorder import SEED_KEY, Progress, ProgressFn, ResultRecorder, live_recorder
from hypertune.search.rest import experiment_name, mark_origin, moved_from, remaining
from hypertune.search.trainable import make_trainable
from hypertune.search.tuner import loggers, make_tuner, remove_checkpoints
from hypertune.searchers import get_searcher
from hypertune.study import provenance, store
from hypertune.study.record import FAILED, StudyRecord, StudyState

log = logging.getLogger("hypertune")


def run_study(
    config: StudyConfig,
    storage: str | Path = "runs",
    address: str | None = None,
    progress: ProgressFn | None = None,
    mlflow: bool = False,
) -> Path:
    """Run every trial of `config`; return the study folder (results.csv, study.json, ray/).

    Args:
        config: the validated study.
        storage: folder of studies; this one lives in storage/<name>/. On a Ray cluster it
            must be a path every node can reach (a shared filesystem).
        address: a Ray cluster to join (default: $RAY_ADDRESS, else a local Ray).
        progress: called with a :class:`Progress` whenever a trial starts or ends.
        mlflow: also log every trial to MLflow (a file store in storage/<name>/mlflow).

    Raises:
        StudyError: a study of that name exists already.
        ConfigError, DataError: the configuration or the data is unusable (before Ray starts).
    """
    data, code = load_study_code(config)
    preflight(config, data)
    cluster.check_address(address)
    cluster.check_local_resources(config, address)
    # A cluster is joined before anything is written: one that refuses this client (its token)
    # leaves no study behind, and the name stays free. A taken name is refused first.
    store.check_new_study(storage, config.name)
    joined = cluster.start(address) if cluster.ray_address(address) else False
    try:
        path = store.create_study_dir(storage, config.name)
        with store.study_lock(path):
            _first_run(config, data, path, address, progress, mlflow, code)
    finally:
        if joined:
            cluster.stop()
    return path


def _first_run(
    config: StudyConfig,
    data: DataBundle,
    path: Path,
    address: str | None,
    progress: ProgressFn | None,
    mlflow: bool,
    code: list[dict[str, Any]],
) -> None:
    record = StudyRecord.new(
        config,
        data.summary(),
        code,  # the study's own modules: file and sha256 (rerun refuses a change)
        mlflow=mlflow,
        git=provenance.git_state(),
        versions=provenance.versions(),
        host=provenance.host(),
        started=provenance.now(),
    )
    store.write_study(path, record)
    _execute(config, data, path, record, address, progress, restore=False)


def resume_study(
    storage: str | Path, name: str, address: str | None = None, progress: ProgressFn | None = None
) -> Path:
    """Finish a study whose driver stopped: finished trials are kept, the rest run.

    Raises:
        StudyError: no such study, it has finished, another process runs it, or its data
            changed since it ran.
    """
    path = store.study_dir(storage, name)
    store.read_study(storage, name)  # a clear error for an unknown study
    store.check_folder(path, "--storage")
    with store.study_lock(path):
        record = store.read_study(storage, name)  # as the last owner left it
        results = store.read_results(storage, name)  # a damaged table is refused here
        if record.status is StudyState.FINISHED:
            failed = int(results["status"].isin(FAILED).sum()) if len(results) else 0
            hint = f"resume {name} --retry-failed"
            retry = f" (to train its {failed} ERROR and NAN trials again: {hint})" if failed else ""
            raise StudyError(f"study '{name}' has finished; nothing to resume{retry}")
        config = record.study_config()
        cluster.check_address(address)
        cluster.check_local_resources(config, address)
        data, _ = load_recorded_code(config, record)
        # Running again, as `run` records it: a resume killed outright (kill -9, a power cut)
        # leaves "running", which only a driver that stopped cleanly turns into "interrupted".
        record.status = StudyState.RUNNING
        store.write_study(path, record)
        _execute(config, data, path, record, address, progress, restore=True)
    return path


def _execute(
    config: StudyConfig,
    data: DataBundle,
    path: Path,
    record: StudyRecord,
    address: str | None,
    progress: ProgressFn | None,
    restore: bool,
) -> None:
    started_here = False
    try:
        started_here = cluster.start(address)
        slots = cluster.free_slots(config)
        recorder = _run_trials(config, data, path, record, slots, restore, progress)
    except BaseException as exc:
        # Whatever stopped the study, it is not running any more and can be resumed.
        record.status = StudyState.INTERRUPTED
        with contextlib.suppress(OSError, StudyError):  # a full disk may refuse this too
            store.write_study(path, record)
        if store.is_disk_full(exc):
            raise DiskFullError(
                f"study '{record.name}': no space left on the device of {path}; the study "
                f"stopped and its finished trials are kept: free space, then `resume "
                f"{record.name}`"
            ) from None
        raise
    finally:
        if started_here:
            cluster.stop()
    # Ray ends fit() quietly on Ctrl-C; an unfinished study must stay resumable.
    short = get_searcher(config.search).planned and recorder.finished < config.planned_trials()
    if recorder.incomplete or short:
        record.status = StudyState.INTERRUPTED
        store.write_study(path, record)
        raise KeyboardInterrupt(f"study '{record.name}' interrupted")
    record.status, record.ended = StudyState.FINISHED, provenance.now()
    store.write_study(path, record)
    if not config.keep_checkpoints:
        remove_checkpoints(path / store.RAY_DIR)


def _run_trials(
    config: StudyConfig,
    data: DataBundle,
    path: Path,
    record: StudyRecord,
    slots: int,
    restore: bool,
    progress: ProgressFn | None,
) -> ResultRecorder:
    """Train the study's trials (a resumed study: those left); return the recorder.

    A resumed study goes on from Ray's experiment state; where that is missing or damaged
    (it cannot be restored, or the restored experiment fails in Ray's own code), the trials
    that results.csv does not hold run as a new experiment (`_rest`).
    """
    points, plan = study_plan(config, data, path, record, slots, restore)

    def recorder_of(plan: list[list[dict[str, Any]]]) -> tuple[ResultRecorder, Any]:
        recorder = ResultRecorder(
            config, path, Progress(config.planned_trials()), progress, packs=plan
        )
        recorder.state.packing = packs.describe(plan, points, config, data)
        return recorder, make_trainable(config, data, recorder.kept, plan)

    recorder, trainable = recorder_of(plan)
    origin = moved_from(path / store.RAY_DIR, path) if restore else None
    if origin is not None:
        log.warning(
            "study '%s' ran in %s, and Ray's state names that folder: the trials results.csv "
            "does not hold run here from their start",
            record.name,
            origin,
        )
    replanned = restore and is_replanned(plan, record, slots)
    if replanned:
        log.warning(
            "study '%s' started with other fused packs (%s; now %s, planned by another version "
            "of hypertune): the trials results.csv does not hold run as a new experiment",
            record.name,
            record.packs,
            packs.summary(plan, int(record.packs.get("slots", slots))),
        )
    restorable = restore and not origin and not replanned
    tuner = _restored(path / store.RAY_DIR, trainable, recorder) if restorable else None
    if tuner is not None:
        try:
            tuner.fit()  # errored trials are recorded, not raised (fail_fast=False)
            return recorder
        except Exception as exc:
            if store.is_disk_full(exc) or isinstance(exc, HypertuneError):
                raise
            log.warning("Ray's experiment state of study '%s' failed (%s)", record.name, exc)
    experiment = store.RAY_DIR
    if restore:  # Ray's state is missing or damaged: the record says what is left
        recorder, _ = recorder_of(plan)  # results.csv read again
        points, plan, experiment = _rest(
            config, data, path, record, recorder, slots, points, origin
        )
        recorder, trainable = recorder_of(plan)
    # A new experiment: trials that results.csv lacks train from their start, under new ids.
    callbacks = [recorder, *loggers(path, config, record, plan, kept=set(recorder.rows))]
    tuner = _new_tuner(config, trainable, path, slots, callbacks, points, plan, experiment)
    tuner.fit()
    return recorder


def _restored(ray_dir: Path, trainable: Any, recorder: ResultRecorder) -> Any:
    """The study's Tuner restored from Ray's experiment state; None where that state is
    missing or cannot be read (its unfinished trials then run from the record: `_rest`)."""
    if not tune.Tuner.can_restore(str(ray_dir.resolve())):
        return None
    try:
        with live_recorder(recorder):  # the pickled recorder comes back as this one
            return tune.Tuner.restore(
                str(ray_dir.resolve()),
                trainable=trainable,
                resume_unfinished=True,
                resume_errored=False,
                restart_errored=False,
            )
    except (EOFError, pickle.UnpicklingError, OSError, ValueError, KeyError) as exc:
        log.warning("Ray's experiment state in %s cannot be read (%s)", ray_dir, exc)
        return None


def _rest(
    config: StudyConfig,
    data: DataBundle,
    path: Path,
    record: StudyRecord,
    recorder: ResultRecorder,
    slots: int,
    points: list[dict[str, Any]],
    origin: str | None = None,
) -> tuple[list[dict[str, Any]], list[list[dict[str, Any]]], str]:
    """The trials that results.csv does not hold, their packs, and the new experiment to run
    them in (`ray/resume-<n>/`), for a study whose Ray state is missing, damaged, or of the
    folder `origin` the study was moved from.

    Raises:
        StudyError: a Bayesian or TPE study (its searcher's state lived in Ray's).
    """
    ray_dir = path / store.RAY_DIR
    if not get_searcher(config.search).planned and origin is not None:
        raise StudyError(
            f"study '{record.name}': a {config.search} searcher's state names the folder the "
            f"study ran in, {origin}; move the study back there to resume it (results.csv "
            f"keeps its {recorder.finished} finished trials)"
        )
    if not get_searcher(config.search).planned:
        raise StudyError(
            f"study '{record.name}': Ray's experiment state in {ray_dir} is missing or damaged, "
            f"and a {config.search} searcher cannot go on without it; results.csv keeps its "
            f"{recorder.finished} finished trials: start a new study with --name"
        )
    rest = remaining(points, recorder.rows.values(), config.space)
    plan = packs.plan(rest, config, data, slots) if record.packs else []
    if all(len(pack) == 1 for pack in plan):
        plan = []
    log.warning(
        "study '%s': %d trials in results.csv are kept; the other %d run as a new experiment",
        record.name, recorder.finished, len(rest),
    )  # fmt: skip
    return rest, plan, f"{store.RAY_DIR}/{experiment_name(ray_dir)}"


def _new_tuner(
    config: StudyConfig,
    trainable: Any,
    path: Path,
    slots: int,
    callbacks: list[Any],
    points: list[dict[str, Any]],
    plan: list[list[dict[str, Any]]],
    experiment: str = store.RAY_DIR,
) -> Any:
    space: dict[str, Any] = {
        name: to_domain(spec, config.search) for name, spec in config.space.items()
    }
    metric = config.metric.objective_column
    mode = config.metric.direction
    search_alg, num_samples = _searcher(config, space, metric, mode, slots, points, plan)
    parent, _, name = f"{path}/{experiment}".rpartition("/")
    if experiment == store.RAY_DIR:
        mark_origin(path / store.RAY_DIR, path)
    return make_tuner(
        config, trainable, space, search_alg, num_samples, Path(parent), name, callbacks
    )


def _searcher(
    config: StudyConfig,
    space: dict[str, Any],
    metric: str,
    mode: str,
    slots: int,
    points: list[dict[str, Any]],
    plan: list[list[dict[str, Any]]],
) -> tuple[Any, int]:
    """The search algorithm and the number of samples Tune must draw.

    Grid and random search hand Tune every trial (or every fused pack of trials) as a point to
    evaluate, the costliest first (:mod:`hypertune.search.order`), at most `slots` at once
    (fractional CPUs per trial would otherwise let Tune start far more trial processes than the
    memory holds).

    Bayesian and TPE search run under a ConcurrencyLimiter sized to the free slots: a
    model-based searcher suggests from what has finished, so more pending suggestions than
    slots would only be guesses made with less information.
    """
    chosen = get_searcher(config.search)
    if chosen.build is None:  # Tune's variant generator runs the points planned
        from ray.tune.search.basic_variant import BasicVariantGenerator

        if plan:  # a fused study: a Ray trial's config is the index of its pack
            space.clear()
            space[PACK_KEY] = tune.choice(list(range(len(plan))))
            points = [{PACK_KEY: n} for n in range(len(plan))]
        else:
            if config.search == "grid":
                space.update({s.name: tune.choice(s.grid_values()) for s in config.space.values()})
            space[SEED_KEY] = tune.choice(list(range(config.seeds)))
        generator = BasicVariantGenerator(points_to_evaluate=points, max_concurrent=slots)
        return generator, len(points)
    from ray.tune.search import ConcurrencyLimiter

    if chosen.floats_only:
        for name in config.space:
            del space[name]
        space.update(bayes_domains(config.space))  # log ranges on their exponent
    module, _, name = chosen.build.partition(":")
    build = getattr(importlib.import_module(module), name)
    searcher = build(metric=metric, mode=mode, **chosen.options)
    if config.seeds > 1:
        from ray.tune.search import Repeater

        searcher = Repeater(searcher, repeat=config.seeds, set_index=True)
    return ConcurrencyLimiter(searcher, max_concurrent=slots), config.samples * config.seeds
