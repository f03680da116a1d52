"""The Ray Tune trainables: one trial, or one fused pack of trials, per Ray trial.

Data reaches them once, through `tune.with_parameters` (Ray's object store), never through the
config; fixed hyperparameters travel the same way, so only searched values become result
columns. A fused pack's result holds every member's metrics under `members` (by its place in
the pack, with the epochs it trained), the pack's best objective at the top for Tune, and the
pack's seconds. A member that ended keeps its last metrics there, so the pack's last result
holds every member's final row (:func:`hypertune.search.recorder.trial_records`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ray import tune

from hypertune.config import Metric, StudyConfig
from hypertune.data import DataBundle
from hypertune.fused import fit_pack
from hypertune.models import Architecture, register_architecture
from hypertune.search.code import user_architectures
from hypertune.search.packs import EPOCHS, MEMBERS, PACK_KEY, member_id
from hypertune.search.recorder import seed_of
from hypertune.search.relay import relay
from hypertune.space import SEED_KEY, ParamSpec, decode_config
from hypertune.train import SECONDS, TrainSettings, fit

Finished = Mapping[str, Mapping[str, float]]  # recorded trials: id -> metrics


def make_trainable(
    config: StudyConfig,
    data: DataBundle,
    finished: Finished,
    packs: Sequence[Sequence[Mapping[str, Any]]] = (),
    fused: bool = False,
) -> Any:
    """The study's trainable with its data, fixed values, settings and resources bound:
    :func:`train_pack` where the study trains in `packs`, else :func:`train_trial` (which
    trains as a pack of one where the study is `fused`: failed members trained again)."""
    settings = TrainSettings(
        epochs=config.epochs,
        device="cuda" if config.gpus_per_trial > 0 else "cpu",
        threads=max(1, int(config.cpus_per_trial)),
        trainer=config.trainer,
        fused=fused or bool(packs),
    )
    bound: dict[str, Any] = {
        "data": data,
        "fixed": config.hyperparameters(),
        "specs": config.space,
        "settings": settings,
        "finished": finished,
        "models": user_architectures(config),
    }
    trainable: Callable[..., None] = train_trial
    if packs:
        trainable = train_pack
        bound.update(packs=[[dict(m) for m in p] for p in packs], metric=config.metric)
    return tune.with_resources(
        tune.with_parameters(trainable, **bound),
        {"cpu": config.cpus_per_trial, "gpu": config.gpus_per_trial},
    )


def train_trial(
    config: dict[str, Any],
    data: DataBundle,
    fixed: Mapping[str, Any],
    specs: Mapping[str, ParamSpec],
    settings: TrainSettings,
    finished: Finished | None = None,
    models: Mapping[str, Architecture] | None = None,
) -> None:
    """The Ray Tune trainable: one configuration, one seed, one report per epoch.

    A trial in `finished` (recorded in results.csv before the driver stopped, but after Ray's
    last experiment checkpoint) is not trained twice: it reports its recorded metrics once, so
    the searcher learns them, and its row in results.csv stands as recorded. `models` are the
    study's own architectures, registered in this worker before the model is built.
    """
    _register(models)
    recorded = (finished or {}).get(tune.get_context().get_trial_id())
    if recorded is not None:
        tune.report(dict(recorded))
        return
    trial, seed = _trial(config, fixed, specs)
    relay(lambda put: fit(trial, data, settings, seed=seed, report=put), tune.report)


def train_pack(
    config: dict[str, Any],
    data: DataBundle,
    fixed: Mapping[str, Any],
    specs: Mapping[str, ParamSpec],
    settings: TrainSettings,
    finished: Finished,
    models: Mapping[str, Architecture],
    packs: Sequence[Sequence[Mapping[str, Any]]],
    metric: Metric,
) -> None:
    """The Ray Tune trainable of a fused study: the pack `config[PACK_KEY]` names, every member
    reported each epoch. A pack of one trains alone (`fit`, as a pack of one where it fuses).

    A pack whose members all have rows in results.csv (recorded before the driver stopped, but
    after Ray's last experiment checkpoint) is not trained again: it reports their recorded
    metrics once.
    """
    _register(models)
    members = packs[int(config[PACK_KEY])]
    ids = [member_id(tune.get_context().get_trial_id(), k) for k in range(len(members))]
    if all(i in finished for i in ids):
        recorded = [{**finished[i], EPOCHS: settings.epochs} for i in ids]
        tune.report(pack_result(recorded, metric, 0.0))
        return
    trials = [_trial(dict(point), fixed, specs) for point in members]
    latest: list[dict[str, float]] = [{EPOCHS: 0} for _ in members]

    def epoch(results: Sequence[dict[str, float] | None]) -> dict[str, Any]:
        seconds = 0.0
        for k, metrics in enumerate(results):
            if metrics is not None:
                latest[k] = {**metrics, EPOCHS: latest[k][EPOCHS] + 1}
                seconds = metrics[SECONDS]
        return pack_result(latest, metric, seconds)

    def train(put: Callable[[dict[str, Any]], None]) -> None:
        if len(trials) == 1:
            ((trial, seed),) = trials
            fit(trial, data, settings, seed=seed, report=lambda m: put(epoch([m])))
            return
        configs, seeds = zip(*trials, strict=True)
        fit_pack(configs, data, settings, seeds, report=lambda ms: put(epoch(ms)))

    relay(train, tune.report)


def pack_result(
    members: Sequence[Mapping[str, float]], metric: Metric, seconds: float
) -> dict[str, Any]:
    """One epoch's result of a pack: each member's metrics, and the best objective among them."""
    column = metric.objective_column
    values = [m[column] for m in members if column in m and math.isfinite(m[column])]
    best = (min if metric.direction == "min" else max)(values) if values else float("nan")
    by_place = {str(k): dict(m) for k, m in enumerate(members)}
    return {MEMBERS: by_place, column: best, SECONDS: seconds}


def _trial(
    config: Mapping[str, Any], fixed: Mapping[str, Any], specs: Mapping[str, ParamSpec]
) -> tuple[dict[str, Any], int]:
    """A trial's full configuration (fixed values and its searched ones) and its seed."""
    searched = decode_config(dict(config), specs)
    trial = {k: v for k, v in searched.items() if not k.startswith("__") and k != SEED_KEY}
    return {**fixed, **trial}, seed_of(searched)


def _register(models: Mapping[str, Architecture] | None) -> None:
    """The study's own architectures, registered in this worker before a model is built."""
    for architecture in (models or {}).values():
        register_architecture(architecture)
