"""The Ray Tune trainables: one trial, or one fused pack of trials, per Ray trial.

Data reaches them once, through `tune.with_parameters` (Ray's object store), never through the
config; fixed hyperparameters travel the same way, so only searched values become result
columns. A fused pack's result holds every member's metrics under `members` (by its place in
the pack, with the epochs it trained), the pack's best objective at the top for Tune, and the
pack's seconds. A member that ended keeps its last metrics there, so the pack's last result
holds every member's final row (:func:`hypertune.search.recorder.trial_records`).

With `keep_weights`, the result of a trial's last epoch carries a checkpoint holding its
trained weights (every member's, for a pack), which the driver copies into the study's
weights/ folder (:mod:`hypertune.search.keeper`).

Both checkpoint as they train, through Tune's checkpoint API: every `checkpoint_seconds` (0:
every epoch) the training loop's whole state goes with that epoch's result, and a trial that
Tune restarts (its node or worker was lost, or `resume` picked the study up) continues from
its last checkpoint, bit for bit. A trial's own error (its code raised) ends it with an
:data:`ERROR` result instead of an exception, so that Tune's failure handling
(`FailureConfig.max_failures`) retries only what the infrastructure broke.
"""

from __future__ import annotations

import math
import os
import shutil
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from ray import tune

from hypertune import weights
from hypertune.config import Metric, StudyConfig
from hypertune.data import DataBundle
from hypertune.models import Architecture, register_architecture
from hypertune.search.code import user_architectures
from hypertune.search.packs import EPOCHS, MEMBERS, PACK_KEY, member_id
from hypertune.search.recorder import ERROR, seed_of
from hypertune.search.relay import relay
from hypertune.search.staging import staging_folder, sweep
from hypertune.space import SEED_KEY, ParamSpec, decode_config
from hypertune.train import SECONDS, State, Trained, TrainSettings, fit
from hypertune.train.costs import Costs, count_weights
from hypertune.train.fused import fit_pack

Finished = Mapping[str, Mapping[str, float]]  # recorded trials: id -> metrics
STATE_FILE = "state.pt"  # in a checkpoint: the training loop's state (and the trainable's)
WEIGHTS_FILE = "weights.pt"  # in the last epoch's checkpoint: the trained weights, by place
FINAL = "final"  # the state of the last epoch's checkpoint: that epoch's result, nothing to train
# Errors that say the machine, not the trial, failed: raised to Tune, which retries the trial.
_INFRASTRUCTURE = (MemoryError, torch.OutOfMemoryError)


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
        "every": config.checkpoint_seconds,
        "metric": config.metric,
        "keep": config.keep_weights,
    }
    trainable: Callable[..., None] = train_trial
    if packs:
        trainable = train_pack
        bound.update(packs=[[dict(m) for m in p] for p in packs])
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
    every: float | None = None,
    metric: Metric | None = None,
    keep: bool = False,
) -> None:
    """The Ray Tune trainable: one configuration, one seed, one report per epoch, a checkpoint
    every `every` seconds (None: never), and with the last epoch its weights where it `keep`s
    them.

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
    saved = _restored()
    if saved is not None and FINAL in saved:  # restored after its last epoch: it is done
        tune.report(saved[FINAL])
        return
    (costs,) = _costs([trial], data, metric, saved)
    checkpoints = _Checkpoints(every, lambda: {"history": [costs.history]})
    keeper = checkpoints.keeper([(trial, seed)], data) if keep else None
    last: dict[str, Any] = {EPOCHS: int(saved["train"]["epoch"]) if saved else 0}

    def train(put: Callable[[Any], None]) -> None:
        def each(metrics: dict[str, float]) -> None:
            metrics = {**metrics, **costs.add(metrics)}
            last.update(metrics, **{EPOCHS: last[EPOCHS] + 1})
            put(checkpoints.attach({**metrics, EPOCHS: last[EPOCHS]}))

        resume = saved["train"] if saved else None
        fit(trial, data, settings, seed, each, resume, checkpoints.save(), keeper)

    def failed(exc: BaseException) -> None:
        if isinstance(exc, _INFRASTRUCTURE):
            raise exc
        tune.report({**last, **_failure(exc, metric)})

    relay(train, checkpoints.report, failed)


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
    every: float | None = None,
    keep: bool = False,
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
    saved = _restored()
    if saved is not None and FINAL in saved:  # restored after its last epoch: it is done
        tune.report(saved[FINAL])
        return
    latest: list[dict[str, float]] = saved["latest"] if saved else [{EPOCHS: 0} for _ in members]
    costs = _costs([trial for trial, _ in trials], data, metric, saved)

    def extra() -> dict[str, Any]:  # its epochs counted, and each member's curve
        return {"latest": latest, "history": [c.history for c in costs]}

    checkpoints = _Checkpoints(every, extra)
    keeper = checkpoints.keeper(trials, data) if keep else None

    def epoch(results: Sequence[dict[str, float] | None]) -> dict[str, Any]:
        for k, metrics in enumerate(results):
            if metrics is not None:
                latest[k] = {**metrics, **costs[k].add(metrics), EPOCHS: latest[k][EPOCHS] + 1}
        # The pack's own time: the sum of its members' shares (those that ended included).
        seconds = sum(float(m.get(SECONDS, 0.0)) for m in latest)
        return pack_result(latest, metric, seconds)

    def train(put: Callable[[Any], None]) -> None:
        resume = saved["train"] if saved else None
        save = checkpoints.save()
        if len(trials) == 1:
            ((trial, seed),) = trials
            each = lambda m: put(checkpoints.attach(epoch([m])))  # noqa: E731
            fit(trial, data, settings, seed, each, resume, save, keeper)
            return
        configs, seeds = zip(*trials, strict=True)
        report = lambda ms: put(checkpoints.attach(epoch(ms)))  # noqa: E731
        fit_pack(configs, data, settings, seeds, report, resume, save, keeper)

    def failed(exc: BaseException) -> None:
        if isinstance(exc, _INFRASTRUCTURE):
            raise exc
        tune.report({**pack_result(latest, metric, 0.0), **_failure(exc, metric)})

    relay(train, checkpoints.report, failed)


def pack_result(
    members: Sequence[Mapping[str, float]], metric: Metric, seconds: float
) -> dict[str, Any]:
    """One epoch's result of a pack: each member's metrics, and the best objective among them."""
    column = metric.objective_column
    values = [m[column] for m in members if column in m and math.isfinite(m[column])]
    best = (min if metric.direction == "min" else max)(values) if values else float("nan")
    by_place = {str(k): dict(m) for k, m in enumerate(members)}
    return {MEMBERS: by_place, column: best, SECONDS: seconds}


class _Checkpoints:
    """When an epoch's state is kept, and handing it to Tune with that epoch's result.

    The training loop offers each epoch's state before it reports the epoch; once the epoch is
    reported (and the trainable's own state brought up to it), a checkpoint that is due is
    written to a folder of its own at once, before training goes on and changes the state, and
    the epoch's result carries that folder to Tune, which stores it in the trial's folder. The
    temporary folder is removed once Tune has it. The last epoch's result carries the trained
    weights where the trial keeps them (:meth:`keeper`), in a checkpoint of their own.
    """

    def __init__(self, every: float | None, extra: Callable[[], Mapping[str, Any]] = dict) -> None:
        self.every = every
        self.extra = extra  # the trainable's own state, kept beside the loop's
        self.last = -math.inf  # the first epoch end may keep one
        self.offered: Callable[[], State] | None = None
        self.trained: list[dict[str, Any]] | None = None  # the weights, by place in the pack
        sweep()  # the folders of trials killed before Tune had their checkpoint

    def keeper(self, trials: Sequence[tuple[dict[str, Any], int]], data: DataBundle) -> Trained:
        """The training loop's `trained`: the weights of `trials` (config, seed), by place,
        go with the next result."""

        def keep(states: list[dict[str, torch.Tensor]]) -> None:
            self.trained = [
                {**weights.payload(state, trial, data.input_shape, data.num_classes), "seed": seed}
                for state, (trial, seed) in zip(states, trials, strict=True)
            ]

        return keep

    def save(self) -> Callable[[Callable[[], State]], None] | None:
        """The training loop's `save`; None where the study keeps no checkpoints."""
        if self.every is None:
            return None

        def offer(state: Callable[[], State]) -> None:
            self.offered = state

        return offer

    def attach(self, result: dict[str, Any]) -> tuple[dict[str, Any], Path | None]:
        """`result` with the checkpoint of its epoch, where one is due."""
        state, self.offered = self.offered, None
        trained, self.trained = self.trained, None
        spacing = max(self.every or 0.0, _spacing())
        due = state is not None and time.monotonic() - self.last >= spacing
        if not due and trained is None:
            return result, None
        folder = staging_folder()
        if state is not None and due:
            torch.save({"train": state(), **self.extra()}, folder / STATE_FILE)
            self.last = time.monotonic()
        if trained is not None:  # the last epoch: a restore from here reports it again
            torch.save(trained, folder / WEIGHTS_FILE)
            torch.save({FINAL: result}, folder / STATE_FILE)
        return result, folder

    @staticmethod
    def report(item: tuple[dict[str, Any], Path | None]) -> None:
        result, folder = item
        if folder is None:
            tune.report(result)
            return
        try:
            tune.report(result, checkpoint=tune.Checkpoint.from_directory(str(folder)))
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def _spacing() -> float:
    """The least time between two checkpoints of a trial. Tune's experiment state, saved at
    most this often, names a trial's checkpoint, and Tune keeps only a trial's last few
    (`tuner.KEPT_CHECKPOINTS`): spaced so, the one the saved state names is still there."""
    period = os.environ.get("TUNE_GLOBAL_CHECKPOINT_S", "auto")
    try:
        return max(1.0, float(period))
    except ValueError:
        return 10.0  # Tune's "auto": about every 10 s or more


def _restored() -> dict[str, Any] | None:
    """The state of the trial's last checkpoint, where Tune restarted it from one."""
    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as folder:
        state: dict[str, Any] = torch.load(
            Path(folder) / STATE_FILE, map_location="cpu", weights_only=False
        )
    return state


def _failure(exc: BaseException, metric: Metric | None) -> dict[str, Any]:
    """What the last result of a trial that its own error ended adds: the error's last line,
    and no objective (searchers learn nothing from it)."""
    lines = "".join(traceback.format_exception_only(type(exc), exc)).strip().splitlines()
    result: dict[str, Any] = {ERROR: lines[-1][:300] if lines else type(exc).__name__}
    if metric is not None:
        result[metric.objective_column] = float("nan")
    return result


def _trial(
    config: Mapping[str, Any], fixed: Mapping[str, Any], specs: Mapping[str, ParamSpec]
) -> tuple[dict[str, Any], int]:
    """A trial's full configuration (fixed values and its searched ones) and its seed."""
    searched = decode_config(dict(config), specs)
    trial = {k: v for k, v in searched.items() if not k.startswith("__") and k != SEED_KEY}
    return {**fixed, **trial}, seed_of(searched)


def _costs(
    trials: Sequence[Mapping[str, Any]],
    data: DataBundle,
    metric: Metric | None,
    saved: Mapping[str, Any] | None,
) -> list[Costs]:
    """Each trial's cost columns (:mod:`hypertune.train.costs`), its objective's curve so far
    taken back from the checkpoint it continues from."""
    name, direction = (metric.name, metric.direction) if metric else ("valid_loss", "min")
    history = (saved or {}).get("history") or [[] for _ in trials]
    return [
        Costs(count_weights(trial, data.input_shape, data.num_classes), name, direction, curve)
        for trial, curve in zip(trials, history, strict=True)
    ]


def _register(models: Mapping[str, Architecture] | None) -> None:
    """The study's own architectures, registered in this worker before a model is built."""
    for architecture in (models or {}).values():
        register_architecture(architecture)
