"""The study record (study.json) and the rows of results.csv, as typed values.

`StudyRecord` holds each fact of a study once; the keys external tools read (search, metric,
mode, direction, seeds, params, trials_planned) are derived from it when study.json is written,
so the file cannot disagree with itself. `StudyRecord.parse` reads every study.json written so
far: files without a `schema` key (version 0) carry the same keys, less the version.
`TrialRecord` is one results.csv row: built where a trial ends, read back with `from_row`.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from hypertune.config import Metric, StudyConfig, from_dict
from hypertune.errors import StudyError
from hypertune.metrics import METRICS
from hypertune.space import Value

SCHEMA = 1  # the study.json layout this version writes; 0: files from before the key existed
# results.csv's columns around the searched parameters and the metrics (DESIGN.md).
LEADING = ["trial_id", "status"]
TRAILING = ["epochs", "seed", "seconds", "error"]


class StudyState(enum.StrEnum):
    """Where a study stands; the values are the words study.json keeps."""

    RUNNING = "running"
    INTERRUPTED = "interrupted"  # stopped before every trial ended: `resume` finishes it
    FINISHED = "finished"


STUDY_STATES = tuple(state.value for state in StudyState)


class TrialStatus(enum.StrEnum):
    """How a trial ended; the values are the words results.csv keeps (DESIGN.md)."""

    FINISHED = "TERMINATED"  # trained its whole budget with finite metrics
    ERROR = "ERROR"  # raised, or was killed
    NAN = "NAN"  # trained, but a metric is NaN or infinite

    @property
    def failed(self) -> bool:
        """An ERROR or NAN trial: `resume --retry-failed` trains it again."""
        return self is not TrialStatus.FINISHED


STATUSES = tuple(status.value for status in TrialStatus)
FAILED = tuple(status.value for status in TrialStatus if status.failed)


@dataclass
class TrialRecord:
    """One results.csv row: how a trial ended, what it was given and what it reported."""

    trial_id: str
    status: TrialStatus
    params: dict[str, Value | None]  # the searched parameters, in results.csv's column order
    metrics: dict[str, float]  # each reported metric at the last epoch, and `<metric>_best`
    epochs: int  # training iterations done
    seed: int
    seconds: float  # the trial's own training time
    error: str | None = None  # an ERROR trial's message

    def to_row(self) -> dict[str, Any]:
        """The flat row results.csv is written from (`store.results_columns` orders it)."""
        row: dict[str, Any] = {"trial_id": self.trial_id, "status": self.status.value}
        row.update(self.params)
        row.update(self.metrics)
        row.update(epochs=self.epochs, seed=self.seed, seconds=self.seconds)
        if self.error is not None:
            row["error"] = self.error
        return row

    @classmethod
    def from_row(
        cls, row: Mapping[Any, Any], params: Sequence[str], where: str | Path = "results.csv"
    ) -> TrialRecord:
        """The record of a row read back from results.csv (`where`); an empty cell may be NaN.

        Raises:
            StudyError: a column is missing or holds a value of the wrong kind (the error names
                `where`, the trial and the column).
        """
        cells = _Cells(row, where)
        status = cells.word("status")
        if status not in STATUSES:
            cells.fail("status", f"'{status}'", f"one of {', '.join(STATUSES)}")
        fixed = {*LEADING, *TRAILING, *params}
        error = cells.value("error") if "error" in row else None
        return cls(
            trial_id=cells.trial,
            status=TrialStatus(status),
            params={name: cells.value(name) for name in params},
            metrics={str(key): cells.number(str(key)) for key in row if key not in fixed},
            epochs=cells.whole("epochs"),
            seed=cells.whole("seed"),
            seconds=cells.number("seconds"),
            error=None if error is None else str(error),
        )


@dataclass
class StudyRecord:
    """What study.json says of a study; `status` and `ended` change as it runs."""

    name: str
    status: StudyState
    config: dict[str, Any]  # the config as run (`StudyConfig.to_dict`)
    metric: Metric  # the objective
    search: str  # grid | random | bayes | hyperopt
    seeds: int  # each configuration ran with seeds 0..seeds-1
    params: list[str]  # the searched parameters, in results.csv's column order
    data: dict[str, Any]  # `DataBundle.summary()`: name, sizes, shapes, fingerprint
    trials_planned: int | None = None
    # How a grid or random study's trials were packed (`hypertune.search.packs.summary`):
    # the slots the plan was made for, the pack count and sizes; empty where none trained fused.
    packs: dict[str, Any] = field(default_factory=dict)
    mlflow: bool = False
    code: list[dict[str, Any]] = field(default_factory=list)  # the study's own modules
    attempts: list[dict[str, Any]] = field(default_factory=list)  # rows a retry replaced
    git: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, Any] = field(default_factory=dict)
    host: dict[str, Any] = field(default_factory=dict)
    started: str | None = None
    ended: str | None = None
    schema: int = SCHEMA

    @classmethod
    def new(
        cls, config: StudyConfig, data: dict[str, Any], code: list[dict[str, Any]], **facts: Any
    ) -> StudyRecord:
        """The record of a study about to run."""
        return cls(
            name=config.name,
            status=StudyState.RUNNING,
            config=config.to_dict(),
            metric=config.metric,
            search=config.search,
            seeds=config.seeds,
            params=list(config.space),
            data=dict(data),
            trials_planned=config.planned_trials(),
            code=list(code),
            **facts,
        )

    @property
    def direction(self) -> str:
        """min or max: which way the objective is better."""
        return self.metric.direction

    @property
    def objective_column(self) -> str:
        """The results column the study optimised."""
        return self.metric.objective_column

    @property
    def fingerprint(self) -> str | None:
        """The recorded data's fingerprint (None where none was recorded)."""
        value = self.data.get("fingerprint")
        return str(value) if value else None

    @property
    def report_settings(self) -> dict[str, Any]:
        """The study's [report] table: default metric, x, y and agg."""
        report = self.config.get("report")
        return dict(report) if isinstance(report, dict) else {}

    def study_config(self) -> StudyConfig:
        """The config as run, validated again (resume, retry and rerun run it)."""
        return from_dict(self.config)

    def to_json(self) -> dict[str, Any]:
        """study.json's contents: the record, with the derived keys external tools read."""
        return {
            "schema": self.schema,
            "name": self.name,
            "status": self.status.value,
            "config": self.config,
            "search": self.search,
            "metric": self.metric.name,
            "mode": self.metric.mode,
            "direction": self.direction,
            "seeds": list(range(self.seeds)),
            "params": list(self.params),
            "trials_planned": self.trials_planned,
            "packs": self.packs,
            "mlflow": self.mlflow,
            "data": self.data,
            "code": self.code,
            "attempts": self.attempts,
            "git": self.git,
            "versions": self.versions,
            "host": self.host,
            "started": self.started,
            "ended": self.ended,
        }

    @classmethod
    def parse(cls, raw: Any, path: Path) -> StudyRecord:
        """The record in `raw` (study.json's parsed contents, read from `path`).

        Raises:
            StudyError: a key is missing or of the wrong type, or the file is of a newer schema.
        """
        if not isinstance(raw, dict):
            raise StudyError(f"{path}: not a study record (expected a JSON object)")
        fields = _Fields(raw, path)
        schema = fields.get("schema", int, 0)
        if schema > SCHEMA:
            raise StudyError(
                f"{path}: 'schema' is {schema}; this hypertune reads study.json up to schema "
                f"{SCHEMA} (upgrade hypertune)"
            )
        name = fields.get("name", str)
        status = fields.get("status", str)
        if status not in STUDY_STATES:
            fields.fail("status", f"'{status}'", f"one of {', '.join(STUDY_STATES)}")
        config = fields.get("config", dict)
        metric = _metric(fields)
        study = config.get("study") if isinstance(config.get("study"), dict) else {}
        search = fields.get("search", str, study.get("search"))
        if not isinstance(search, str):
            fields.fail("search", "missing", "a str")
        seeds = fields.get("seeds", (list, int), study.get("seeds", 1))
        params = fields.get("params", list)
        if not all(isinstance(p, str) for p in params):
            fields.fail("params", "a list with a non-string", "a list of parameter names")
        return cls(
            name=name,
            status=StudyState(status),
            config=config,
            metric=metric,
            search=search,
            seeds=len(seeds) if isinstance(seeds, list) else int(seeds),
            params=list(params),
            data=fields.get("data", dict),
            trials_planned=fields.get("trials_planned", (int, type(None)), None),
            packs=fields.get("packs", dict, {}),
            mlflow=bool(fields.get("mlflow", bool, False)),
            code=fields.get("code", list, []),
            attempts=fields.get("attempts", list, []),
            git=fields.get("git", dict, {}),
            versions=fields.get("versions", dict, {}),
            host=fields.get("host", dict, {}),
            started=fields.get("started", (str, type(None)), None),
            ended=fields.get("ended", (str, type(None)), None),
            schema=SCHEMA,  # written back in this version's layout
        )


class _Cells:
    """Typed reads of one results.csv row, each failure naming the file, trial and column."""

    def __init__(self, row: Mapping[Any, Any], where: str | Path) -> None:
        self.row, self.where = row, where
        self.trial = "?"
        self.trial = self.word("trial_id")

    def value(self, key: str) -> Any:
        """The cell as a plain Python value; None for an empty cell."""
        if key not in self.row:
            self.fail(key, "missing", "a column of results.csv")
        value = self.row[key]
        if hasattr(value, "item"):  # a numpy scalar, as pandas hands them out
            value = value.item()
        return None if isinstance(value, float) and math.isnan(value) else value

    def word(self, key: str) -> str:
        value = self.value(key)
        if value is None or value == "":
            self.fail(key, "empty", "a value")
        return str(value)

    def number(self, key: str) -> float:
        value = self.value(key)
        if value is None:
            return math.nan
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(key, repr(value), "a number")
        return float(value)

    def whole(self, key: str) -> int:
        value = self.value(key)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(key, "empty" if value is None else repr(value), "a whole number")
        return value

    def fail(self, key: str, found: str, expected: str) -> NoReturn:
        raise StudyError(
            f"{self.where}: trial '{self.trial}': '{key}' is {found}; expected {expected}"
        )


_REQUIRED = object()


class _Fields:
    """Typed reads of study.json's keys, each failure naming the file and the key."""

    def __init__(self, raw: dict[str, Any], path: Path) -> None:
        self.raw, self.path = raw, path

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = _REQUIRED) -> Any:
        if key not in self.raw or (self.raw[key] is None and default is not _REQUIRED):
            if default is _REQUIRED:
                self.fail(key, "missing", _names(kind))
            return default
        value = self.raw[key]
        if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _kinds(kind)):
            self.fail(key, f"a {type(value).__name__}", _names(kind))
        return value

    def fail(self, key: str, found: str, expected: str) -> NoReturn:
        raise StudyError(f"{self.path}: '{key}' is {found}; expected {expected}")


def _kinds(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _names(kind: type | tuple[type, ...]) -> str:
    names = [k.__name__ for k in _kinds(kind) if k is not type(None)]
    return " or ".join(f"{'an' if n[0] in 'aeiou' else 'a'} {n}" for n in names)


def _metric(fields: _Fields) -> Metric:
    name, mode = fields.get("metric", str), fields.get("mode", str)
    if name not in METRICS:
        fields.fail("metric", f"'{name}'", f"one of {', '.join(METRICS)}")
    if mode not in ("min", "max", "last"):
        fields.fail("mode", f"'{mode}'", "min, max or last")
    metric = Metric(name, mode)
    direction = fields.get("direction", str, metric.direction)
    if direction != metric.direction:
        fields.fail("direction", f"'{direction}'", f"'{metric.direction}' (metric {metric})")
    return metric
