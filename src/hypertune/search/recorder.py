"""results.csv as trials finish, and the progress a caller sees while a study runs."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ray import tune

from hypertune.config import StudyConfig
from hypertune.errors import StudyError
from hypertune.metrics import METRIC_COLUMNS, RESULT_COLUMNS
from hypertune.search.packs import EPOCHS, MEMBERS, PACK_KEY, member_id
from hypertune.space import SEED_KEY, ParamSpec, decode_config
from hypertune.study import store
from hypertune.study.record import FAILED, STATUSES, TrialRecord, TrialStatus
from hypertune.train import SECONDS

ERROR = "hypertune_error"  # a trial's last result: its own error (see search.trainable)
TRIAL_INDEX = "__trial_index__"  # set by Ray's Repeater on repeated searcher suggestions
RETRY_OF = "__retry_of__"  # a retried trial's config: the id of the row it replaces
# Ray's words for a trial that ended, in ours (the one place that reads Ray's trial states).
RAY_STATUS = {"TERMINATED": TrialStatus.FINISHED, "ERROR": TrialStatus.ERROR}
# What Ray's memory monitor, torch and Python say when memory runs out.
_OUT_OF_MEMORY = re.compile(
    r"running low on memory|NODE_OUT_OF_MEMORY|OutOfMemoryError|out of memory|MemoryError"
)
_NODE_MEMORY = re.compile(
    r"Memory on the node \(IP: ([^,)]+).*? was ([\d.]+ ?GB)(?: used)? / ([\d.]+ ?GB)", re.DOTALL
)


@dataclass
class Progress:
    """How far a study is; handed to the caller's progress function after every change."""

    total: int
    done: int = 0
    running: int = 0
    failed: int = 0
    best: float | None = None
    started: float = field(default_factory=time.monotonic)
    epochs: int = 0  # epochs trained by the trials of this run, finished or running
    epochs_total: int = 0  # epochs every trial of this run will train
    packing: str = ""  # how the trials train: in fused packs, or one by one and why
    # Ray trials restarted after their node, actor or worker was lost: why, by trial id.
    retried: dict[str, str] = field(default_factory=dict)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


ProgressFn = Callable[[Progress], None]


def seed_of(config: Mapping[str, Any]) -> int:
    """The seed of a trial: set by the grid/random space, or the Repeater's index."""
    return int(config.get(SEED_KEY, config.get(TRIAL_INDEX, 0)))


def trial_record(
    trial: Any, specs: Mapping[str, ParamSpec], status: TrialStatus | None = None
) -> TrialRecord:
    """The results.csv row of a Ray Tune trial that ended (`status`: as known to the caller,
    else from Ray's)."""
    result = dict(trial.last_result or {})
    return _row(
        str(trial.config.get(RETRY_OF, trial.trial_id)),
        decode_config(trial.config, specs),
        result,
        int(result.get(EPOCHS, result.get("training_iteration", 0)) or 0),
        _status(result, status or RAY_STATUS[trial.status]),
        trial,
        specs,
    )


def _status(result: Mapping[str, Any], status: TrialStatus) -> TrialStatus:
    """A trial that its own error ended finishes for Tune, but it is an ERROR here."""
    return TrialStatus.ERROR if ERROR in result else status


def trial_records(
    trial: Any,
    specs: Mapping[str, ParamSpec],
    packs: Sequence[Sequence[Mapping[str, Any]]],
    status: TrialStatus | None = None,
) -> list[TrialRecord]:
    """The results.csv rows of a Ray Tune trial that ended: its own, or one per member of the
    fused pack it trained, each with its member's metrics, epochs and seed."""
    if PACK_KEY not in trial.config:
        return [trial_record(trial, specs, status)]
    members = packs[int(trial.config[PACK_KEY])]
    last = dict(trial.last_result or {})
    results = last.get(MEMBERS, {})
    status = _status(last, status or RAY_STATUS[trial.status])
    rows = []
    for k, point in enumerate(members):
        result = dict(results.get(str(k), {}))
        trial_id = member_id(trial.trial_id, k)
        epochs = int(result.get(EPOCHS, 0))
        searched = decode_config(dict(point), specs)
        error = {ERROR: last[ERROR]} if ERROR in last else {}
        rows.append(_row(trial_id, searched, {**result, **error}, epochs, status, trial, specs))
    return rows


def _row(
    trial_id: str,
    searched: Mapping[str, Any],
    result: Mapping[str, Any],
    epochs: int,
    status: TrialStatus,
    trial: Any,
    specs: Mapping[str, ParamSpec],
) -> TrialRecord:
    metrics = {k: v for k, v in result.items() if k in RESULT_COLUMNS}
    # A metric that is not finite: the trial diverged (a cost that is not: it was not counted).
    reported = [v for k, v in metrics.items() if k in METRIC_COLUMNS]
    if status is TrialStatus.FINISHED and not all(store.finite(v) for v in reported):
        status = TrialStatus.NAN
    # Both trainers time their own training; Ray's clock covers a result without it.
    seconds = result.get(SECONDS, result.get("time_total_s", 0.0))
    return TrialRecord(
        trial_id=trial_id,
        status=status,
        params={name: searched.get(name) for name in specs},
        metrics=metrics,
        epochs=epochs,
        seed=seed_of(searched),
        seconds=round(float(seconds or 0.0), 3),
        error=error_text(result.get(ERROR) or trial.get_error())
        if status is TrialStatus.ERROR
        else None,
    )


def error_text(text: Any) -> str:
    """The error column: the error's last line, or "out of memory: ..." where memory ran out
    (Ray's memory monitor explains itself in a paragraph of advice; the row keeps the facts)."""
    raw = str(text or "")
    if not _OUT_OF_MEMORY.search(raw):
        return _last_line(raw)
    usage = _NODE_MEMORY.search(raw)
    if usage:
        node, used, limit = usage.groups()
        return (
            f"out of memory: Ray's memory monitor killed the trial with {used} of {limit} in use "
            f"on node {node}"
        )
    if "running low on memory" in raw or "NODE_OUT_OF_MEMORY" in raw:
        return "out of memory: Ray's memory monitor killed the trial"
    lines = [line.strip() for line in raw.splitlines() if _OUT_OF_MEMORY.search(line)]
    return f"out of memory: {lines[-1][:300]}"


def lost_reason(text: Any) -> str:
    """Why the infrastructure failed a trial, in a word: Ray's error name (ActorDiedError,
    NodeDiedError, ...) or out of memory."""
    raw = str(text or "")
    if _OUT_OF_MEMORY.search(raw):
        return "out of memory"
    names = re.findall(r"\b(\w+(?:Error|Exception))\b", raw)
    return names[-1] if names else "the trial's worker was lost"


def _number(value: Any) -> float:
    return float(value) if store.finite(value) else float("nan")


def _last_line(text: Any) -> str:
    lines = [line.strip() for line in str(text or "").splitlines() if line.strip()]
    return lines[-1][:300] if lines else "error"


# The recorder of each study running in this process, by its folder (see live_recorder).
_LIVE: dict[str, ResultRecorder] = {}


def _key(path: Path) -> str:
    # The study's name, not its folder: a study moved to another --storage is still itself.
    return Path(path).name


@contextmanager
def live_recorder(recorder: ResultRecorder) -> Iterator[None]:
    """Within the block, a recorder of the same study that Ray unpickles is `recorder`."""
    _LIVE[_key(recorder.path)] = recorder
    try:
        yield
    finally:
        _LIVE.pop(_key(recorder.path), None)


def live(name: str) -> ResultRecorder:
    """The live recorder of the study `name` (how a pickled recorder comes back).

    Raises:
        StudyError: no recorder of that study is live (Ray's state restored by other means
            than :func:`hypertune.resume_study`).
    """
    study = Path(name).name
    recorder = _LIVE.get(study)
    if recorder is None:
        raise StudyError(
            f"study '{study}': its Ray state is restored only through `hypertune resume "
            f"{study}` (or hypertune.resume_study)"
        )
    return recorder


class ResultRecorder(tune.Callback):
    """Writes results.csv as trials finish and feeds the progress function.

    Rows already in results.csv (from before a crash) are kept as they are: a resumed study
    never rewrites or duplicates a finished trial.
    """

    def __init__(
        self,
        config: StudyConfig,
        path: Path,
        state: Progress,
        progress: ProgressFn | None,
        retry: Collection[str] = (),
        packs: Sequence[Sequence[Mapping[str, Any]]] = (),
    ) -> None:
        self.config = config
        self.packs = packs  # the study's fused packs (a pack's Ray trial writes its members)
        # Failed trials trained again: their rows are replaced, and only they are counted.
        self.retry = set(retry)
        self.replaced: set[str] = set()
        self.epochs: dict[str, int] = {}  # epochs reported by each trial of this run
        state.epochs_total = state.total * config.epochs
        self.path = path
        self.state = state
        self.progress = progress
        self.rows: dict[str, dict[str, Any]] = {}
        existing = store.read_results(path.parent, path.name)
        for row in existing.to_dict("records"):
            self.rows[str(row["trial_id"])] = {str(k): v for k, v in row.items()}
        # Finished trials and their recorded metrics (NaN where none was recorded).
        self.kept: dict[str, dict[str, float]] = {
            key: {m: _number(row.get(m)) for m in sorted(RESULT_COLUMNS)}
            for key, row in self.rows.items()
            if row["status"] in STATUSES
        }
        if not self.retry:  # a resumed study: its finished trials spent their budget
            self.epochs.update({key: config.epochs for key in self.kept})
        self.incomplete: set[str] = set()  # trials stopped before their budget was done
        self.active: dict[str, int] = {}  # Ray trials started and not yet ended: their trials
        for kept in self.rows.values():
            self._track_best(kept)
        self._count()

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        # Ray pickles its callbacks with the experiment, and Tuner.restore unpickles them: a
        # recorder pickles as its study's name and restores as the live one (live_recorder).
        return live, (_key(self.path),)

    def _record(self, trial: Any, status: TrialStatus | None) -> None:
        for record in trial_records(trial, self.config.space, self.packs, status):
            # Recorded before a crash: a lone Ray trial by its own id (a retried trial's row
            # keeps the id of the row it replaces), a pack's member by its member id.
            recorded = record.trial_id if PACK_KEY in trial.config else trial.trial_id
            if recorded in self.kept:
                continue
            if record.status is TrialStatus.FINISHED and record.epochs < self.config.epochs:
                # Stopped by an interrupt (Ray marks such trials TERMINATED): not a result of
                # the full budget. Left out, so that `resume` trains it again.
                self.incomplete.add(record.trial_id)
                continue
            self.rows[record.trial_id] = record.to_row()
            if record.trial_id in self.retry:
                self.replaced.add(record.trial_id)
            self._track_best(self.rows[record.trial_id])

    def _size(self, trial: Any) -> int:
        """Trials a Ray trial trains: the members of its pack, or itself."""
        if PACK_KEY not in trial.config:
            return 1
        return len(self.packs[int(trial.config[PACK_KEY])])

    def _fresh(self, trial: Any) -> int:
        """Trials a Ray trial trains that have no row yet (a resumed pack's recorded members
        were counted from results.csv; a lone trial's count shares its key with its row)."""
        if PACK_KEY not in trial.config:
            return 1
        size = self._size(trial)
        return sum(member_id(trial.trial_id, k) not in self.kept for k in range(size))

    def _track_best(self, row: Mapping[str, Any]) -> None:
        value: Any = row.get(self.config.metric.objective_column)
        if row["status"] == TrialStatus.FINISHED and store.finite(value):
            better = min if self.config.metric.direction == "min" else max
            best = self.state.best
            self.state.best = float(value) if best is None else better(best, float(value))

    @property
    def finished(self) -> int:
        """Trials with a final row (finished, error or nan)."""
        return sum(1 for r in self.rows.values() if r["status"] in STATUSES)

    def _save(self) -> None:
        store.write_results(self.path, list(self.rows.values()), list(self.config.space))

    def _count(self) -> None:
        # Ray calls on_trial_start before it marks the trial RUNNING, so count our own set.
        self.state.running = sum(self.active.values())
        self.state.epochs = sum(self.epochs.values())
        counted = [r for k, r in self.rows.items() if not self.retry or k in self.replaced]
        self.state.done = sum(1 for r in counted if r["status"] in STATUSES)
        self.state.failed = sum(1 for r in counted if r["status"] in FAILED)

    def _tell(self) -> None:
        self._count()
        if self.progress is not None:
            self.progress(self.state)

    def setup(
        self,
        stop: Any = None,
        num_samples: int | None = None,
        total_num_samples: int | None = None,
        **info: Any,
    ) -> None:
        # Tune starts: the study passed every check, so its first line is shown now, not once
        # its first trial's process is up (seconds later; a log redirected to a file otherwise
        # stays empty that long).
        self._tell()

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self.active[trial.trial_id] = self._size(trial)
        self._tell()

    def on_trial_result(
        self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any], **info: Any
    ) -> None:
        epochs = min(int(result.get("training_iteration", 0) or 0), self.config.epochs)
        epochs *= self._fresh(trial)
        if epochs > self.epochs.get(trial.trial_id, 0):
            self.epochs[trial.trial_id] = epochs
            self._tell()

    def on_trial_recover(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        # Tune restarts it (from its last checkpoint) after its node, actor or worker was lost.
        self.state.retried[trial.trial_id] = lost_reason(trial.get_error())
        self._tell()

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self.active.pop(trial.trial_id, None)
        # Its budget is spent (or it failed).
        self.epochs[trial.trial_id] = self.config.epochs * self._fresh(trial)
        self._record(trial, TrialStatus.FINISHED)
        self._save()
        self._tell()

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self.active.pop(trial.trial_id, None)
        self.epochs[trial.trial_id] = self.config.epochs * self._fresh(trial)
        self._record(trial, TrialStatus.ERROR)
        self._save()
        self._tell()

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        for trial in trials:
            if trial.status in RAY_STATUS:
                self._record(trial, None)
            else:
                self.incomplete.add(trial.trial_id)
        self.active.clear()
        self._save()
        self._tell()
