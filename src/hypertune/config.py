"""Study configuration: load a TOML study file, apply CLI overrides, validate everything.

The whole configuration is checked here before anything runs, so a typo costs a second, not a
study. A validated :class:`StudyConfig` can be turned back into a plain dict (`to_dict`) that
`from_dict` rebuilds exactly; study.json stores that dict so `resume` and `rerun` need nothing else.
"""

from __future__ import annotations

import copy
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hypertune import fields
from hypertune.errors import ConfigError
from hypertune.metrics import METRICS
from hypertune.searchers import get_searcher, searcher_names
from hypertune.space import ParamSpec, from_toml, grid_size, parse_assignment

MODES = ("min", "max", "last")
TRAINERS = ("hypertune", "mltrainer")
AGGREGATES = ("mean", "median", "min", "max")
# The most trials one study may plan; counted before any trial is built.
MAX_TRIALS = 100_000
# Schedulers that stop trials early give them unequal budgets, which cannot share a heatmap.
REFUSED_SCHEDULERS = ("hyperband", "asha", "median", "median_stopping", "pbt", "bohb")

_TABLES = {
    "study": {
        "name",
        "data",
        "epochs",
        "metric",
        "search",
        "samples",
        "seeds",
        "trainer",
        "scheduler",
        "fuse",
        "retries",
        "checkpoint_seconds",
        "keep_checkpoints",
        "keep_weights",
    },
    "model": None,  # any scalar; the model factory and trainer check the names
    "space": None,  # any parameter name; each value is a spec
    "data": None,  # options passed to load_dataset
    "resources": {"cpus_per_trial", "gpus_per_trial", "max_concurrent"},
    "report": {"metric", "x", "y", "agg"},
}

# Trials of a random, Bayesian or TPE study that does not say how many (`samples`).
SAMPLED_TRIALS = 16


@dataclass(frozen=True)
class Metric:
    """The objective: a reported metric and how it accumulates over epochs."""

    name: str  # a key of METRICS
    mode: str  # min | max: best value reached; last: value after the last epoch

    @property
    def direction(self) -> str:
        """min or max: which way is better."""
        return self.mode if self.mode != "last" else METRICS[self.name]

    @property
    def objective_column(self) -> str:
        """The results column the search optimises: the running best, or the last value."""
        return self.name if self.mode == "last" else f"{self.name}_best"

    def __str__(self) -> str:
        return f"{self.name}:{self.mode}"


@dataclass(frozen=True)
class StudyConfig:
    """A validated study: what to train, on what, searched how."""

    name: str  # runs/<name>/ and reports/<name>/
    data: str  # dataset name for hypertune.data.load_dataset
    epochs: int  # the same training budget for every trial
    metric: Metric  # the objective
    search: str  # a registered search algorithm (hypertune.searchers)
    samples: int  # trials for random/bayes/hyperopt (SAMPLED_TRIALS if unset); grid repeats
    seeds: int  # each configuration runs with seeds 0..seeds-1
    trainer: str  # hypertune (own loop) | mltrainer
    model: dict[str, Any]  # fixed hyperparameters (architecture, lr, ...)
    space: dict[str, ParamSpec]  # searched hyperparameters
    data_options: dict[str, Any] = field(default_factory=dict)
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    max_concurrent: int = 0  # 0: as many as the resources allow
    report: dict[str, Any] = field(default_factory=dict)  # default report metric/x/y/agg
    # Grid and random trials of one shape train together as fused packs (False: each alone).
    fuse: bool = True
    # A trial lost to the infrastructure (node, actor or worker gone) is retried this often.
    retries: int = 2
    # Trials checkpoint at the first epoch end this long after the last (0: every epoch).
    checkpoint_seconds: float = 10.0
    keep_checkpoints: bool = False  # False: a finished study's checkpoints are removed
    keep_weights: bool = False  # True: every trial's final weights in runs/<name>/weights/
    # Where `module:callable` references are looked up first (the study file's folder).
    code_dir: str | None = field(default=None, compare=False)
    # The space of the study a --smoke run stands for: preflight checks all of it.
    whole_space: dict[str, ParamSpec] = field(default_factory=dict, compare=False)

    def hyperparameters(self) -> dict[str, Any]:
        """Fixed model values with searched values left out (the trial fills them in)."""
        return {k: v for k, v in self.model.items() if k not in self.space}

    def planned_trials(self) -> int:
        """How many trials the study will run."""
        if self.search == "grid":
            return grid_size(list(self.space.values())) * self.samples * self.seeds
        return self.samples * self.seeds

    def to_dict(self) -> dict[str, Any]:
        """A plain, TOML-shaped dict that `from_dict` turns back into this config."""
        study = {
            "name": self.name,
            "data": self.data,
            "epochs": self.epochs,
            "metric": str(self.metric),
            "search": self.search,
            "samples": self.samples,
            "seeds": self.seeds,
            "trainer": self.trainer,
            "fuse": self.fuse,
            "retries": self.retries,
            "checkpoint_seconds": self.checkpoint_seconds,
            "keep_checkpoints": self.keep_checkpoints,
            "keep_weights": self.keep_weights,
        }
        resources = {
            "cpus_per_trial": self.cpus_per_trial,
            "gpus_per_trial": self.gpus_per_trial,
            "max_concurrent": self.max_concurrent,
        }
        return {
            "study": study,
            "model": dict(self.model),
            "space": {name: copy.deepcopy(spec.source) for name, spec in self.space.items()},
            "data": dict(self.data_options),
            "resources": resources,
            "report": dict(self.report),
        }


def load_config(path: str | Path, overrides: Mapping[str, Any] | None = None) -> StudyConfig:
    """Read a study file, apply CLI overrides and validate the result.

    `module:callable` references in it are looked up beside the file first.

    Raises:
        ConfigError: the file is missing or unreadable, or any value is invalid.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such study file")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from exc
    raw.setdefault("study", {}).setdefault("name", path.stem)
    return build_config(raw, overrides, code_dir=path.resolve().parent)


def build_config(
    raw: Mapping[str, Any],
    overrides: Mapping[str, Any] | None = None,
    code_dir: str | Path | None = None,
) -> StudyConfig:
    """Validate a TOML-shaped dict with CLI-style overrides applied (see `apply_overrides`).

    With `smoke`, the whole study is validated first, and its space kept for preflight, so a
    smoke run fails wherever the full run would.
    """
    overrides = dict(overrides or {})
    whole = from_dict(apply_overrides(raw, {**overrides, "smoke": False}))
    config = whole
    if overrides.get("smoke"):
        config = replace(from_dict(apply_overrides(raw, overrides)), whole_space=whole.space)
    folder = str(Path(code_dir).resolve()) if code_dir is not None else None
    return replace(config, code_dir=folder)


def apply_overrides(raw: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy of `raw` with CLI flags applied (None means: not given).

    Keys: name, search, samples, metric, epochs, seeds, fuse, keep_weights, cpus_per_trial,
    gpus_per_trial, params (a list of NAME=SPEC strings), drop_params (names to remove from
    [space]), smoke (bool). A parameter given one value (`--param num_layers=2`, or one value in
    `[space]`) is fixed: it moves to [model] and is not searched.
    """
    out = copy.deepcopy(dict(raw))
    study = out.setdefault("study", {})
    study_keys = ("name", "search", "samples", "metric", "epochs", "seeds", "fuse", "keep_weights")
    for key in study_keys:
        if overrides.get(key) is not None:
            study[key] = overrides[key]
    resources = out.setdefault("resources", {})
    for key in ("cpus_per_trial", "gpus_per_trial"):
        if overrides.get(key) is not None:
            resources[key] = overrides[key]
    space = out.setdefault("space", {})
    for name in overrides.get("drop_params") or ():
        if name not in space:
            searched = ", ".join(space) or "none"
            raise ConfigError(f"--drop-param: '{name}' is not in [space]; searched: {searched}")
        del space[name]
    for assignment in overrides.get("params") or ():
        spec = parse_assignment(assignment)
        space[spec.name] = spec.source
    _fix_single_values(out)
    if overrides.get("smoke"):
        _shrink_to_smoke(out)
    return out


def _fix_single_values(raw: dict[str, Any]) -> None:
    """A searched parameter with one value is a fixed one: a 1x1 grid has nothing to compare."""
    space = raw.get("space")
    if not isinstance(space, dict):
        return
    for name, source in list(space.items()):
        spec = from_toml(name, source)
        if len(spec.values) == 1 and (not spec.is_range or spec.low == spec.high):
            model = raw.setdefault("model", {})
            if isinstance(model, dict):
                model[name] = spec.values[0]
                del space[name]


def _shrink_to_smoke(raw: dict[str, Any]) -> None:
    """At most 2 trials of 1 epoch: the whole path, checked quickly."""
    study = raw["study"]
    study["epochs"] = 1
    study["seeds"] = 1
    study["samples"] = min(int(study.get("samples", 1) or 1), 2)
    if study.get("search", "grid") != "grid":
        return
    study["samples"] = 1
    kept = 2  # grid points left for the first parameter; the others keep one
    for name, source in list(raw.get("space", {}).items()):
        values = from_toml(name, source).grid_values()
        raw["space"][name] = values[:kept]
        kept = 1


def from_dict(raw: Mapping[str, Any]) -> StudyConfig:
    """Validate a TOML-shaped dict into a :class:`StudyConfig`."""
    _check_tables(raw)
    study = raw.get("study", {})
    given = fields.text(study, "study.name", study.get("name", "study"))
    name = fields.check_name(given, "study.name")
    scheduler = study.get("scheduler", "fifo")
    if str(scheduler).lower() != "fifo":
        raise ConfigError(
            f"study.scheduler: '{scheduler}' is refused; only FIFO runs here, because early "
            "stopping gives trials unequal budgets and those cannot share a heatmap"
        )
    search = str(study.get("search", "grid")).lower()
    if search in REFUSED_SCHEDULERS:
        raise ConfigError(
            f"study.search: '{search}' stops trials early; unequal budgets cannot share a "
            f"heatmap. Choose one of {', '.join(searcher_names())}"
        )
    get_searcher(search)  # a known one
    model = raw.get("model", {})
    for key, value in model.items():
        if not isinstance(value, bool | int | float | str):
            raise ConfigError(f"model.{key}: expected a number, string or boolean, got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"model.{key}: {value} is not a finite number")
    space = {name: from_toml(name, spec) for name, spec in raw.get("space", {}).items()}
    resources = raw.get("resources", {})
    config = StudyConfig(
        name=name,
        data=fields.text(study, "study.data", study.get("data", "digits-seq")),
        epochs=fields.positive_int(study, "study.epochs", 10),
        metric=parse_metric(str(study.get("metric", "valid_loss:min"))),
        search=search,
        # A grid's samples repeat it; a sampled search without `samples` gets a study's worth.
        samples=fields.positive_int(
            study, "study.samples", 1 if search == "grid" else SAMPLED_TRIALS
        ),
        seeds=fields.positive_int(study, "study.seeds", 1),
        trainer=fields.choice(study, "study.trainer", "hypertune", TRAINERS),
        model=dict(model),
        space=space,
        data_options=dict(raw.get("data", {})),
        cpus_per_trial=fields.resource(resources, "cpus_per_trial", 1.0, minimum=0.0),
        gpus_per_trial=fields.resource(resources, "gpus_per_trial", 0.0, minimum=0.0),
        max_concurrent=fields.whole(resources, "max_concurrent"),
        report=_report_settings(raw.get("report", {})),
        fuse=fields.flag(study, "study.fuse", True),
        retries=fields.count(study, "study.retries", 2),
        checkpoint_seconds=fields.seconds(study, "study.checkpoint_seconds", 10.0),
        keep_checkpoints=fields.flag(study, "study.keep_checkpoints", False),
        keep_weights=fields.flag(study, "study.keep_weights", False),
    )
    if config.keep_weights and config.trainer == "mltrainer":
        raise ConfigError(
            "study.keep_weights: mltrainer's loop hands back no model to keep; "
            "use trainer = 'hypertune' or leave keep_weights off"
        )
    _check_size(config)
    return config


def _check_size(config: StudyConfig) -> None:
    """Refuse what could never be run: too many trials, or trials that hold no resources."""
    planned = config.planned_trials()
    if planned > MAX_TRIALS:
        hint = (
            "use random search with --samples"
            if config.search == "grid"
            else "use fewer samples or seeds"
        )
        raise ConfigError(
            f"study: {config.search} search has {planned:,} trials; the limit is "
            f"{MAX_TRIALS:,}; {hint}"
        )
    if config.cpus_per_trial <= 0 and config.gpus_per_trial <= 0:
        raise ConfigError(
            "resources.cpus_per_trial: 0 with no GPUs would start every trial at once; "
            "give each trial at least a fraction of a CPU"
        )


def parse_metric(text: str) -> Metric:
    """Parse `NAME:min|max|last` (the mode defaults to the metric's natural direction)."""
    name, _, mode = text.partition(":")
    name = name.strip()
    if name not in METRICS:
        raise ConfigError(f"metric: '{name}' is not reported; choose one of {', '.join(METRICS)}")
    mode = mode.strip() or METRICS[name]
    if mode not in MODES:
        raise ConfigError(f"metric: mode '{mode}' is unknown; use {name}:min, :max or :last")
    return Metric(name, mode)


def _check_tables(raw: Mapping[str, Any]) -> None:
    for table, value in raw.items():
        if table not in _TABLES:
            raise ConfigError(f"[{table}]: unknown table; known: {', '.join(_TABLES)}")
        if not isinstance(value, Mapping):
            raise ConfigError(f"{table}: expected a table")
        allowed = _TABLES[table]
        if allowed is None:
            continue
        for key in value:
            if key not in allowed:
                raise ConfigError(
                    f"{table}.{key}: unknown key; known: {', '.join(sorted(allowed))}"
                )


def _report_settings(table: Mapping[str, Any]) -> dict[str, Any]:
    settings = dict(table)
    if "agg" in settings:
        fields.choice(settings, "report.agg", "mean", AGGREGATES)
    for key in ("metric", "x", "y"):
        if key in settings:
            fields.text(settings, f"report.{key}", settings[key])
    return settings
