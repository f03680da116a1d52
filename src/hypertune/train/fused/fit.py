"""Fused training: the trials of a pack trained as one batched model.

Members of a pack share the data, the epochs, the batch size, the optimizer kind and every model
key but those of :func:`member_keys`: they may differ in seed, learning rate, weight decay,
momentum and dropout, and (MLPs, GRUs, LSTMs) in width and depth. Their weights are stacked,
padded to the pack's widest and deepest member (:mod:`.padding`), and one step trains
them all (:mod:`.pack`), so a pack of 16 small models costs little more per step than
one.

Every member keeps its own randomness: its weights are initialised from its seed as a lone trial's
are, its batch order comes from its own generator, and its dropout masks from another, drawn for
it alone (:mod:`.dropout`). Its optimizer step is torch's, with its own learning rate,
weight decay and momentum (:mod:`hypertune.train.optim`). So a member trains as it would
alone, whatever else is in its pack (`hypertune.train.fit_member` trains one as a pack of one),
and a member whose loss stops being finite is left out of the pack's loss and reported no more,
while the others train on.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from hypertune.data import DataBundle
from hypertune.models import resolve_config
from hypertune.train.fused import padding
from hypertune.train.fused.pack import Pack
from hypertune.train.settings import (
    SECONDS,
    Save,
    State,
    Trained,
    TrainSettings,
    random_state,
    set_random_state,
    start,
    trainer_keys,
    update_best,
)

# Architectures whose models fuse exactly (every layer has a stacked forward or a batching rule).
FUSED_ARCHITECTURES = ("mlp", "cnn", "gru", "lstm")
RECURRENT = ("gru", "lstm")  # the only ones that read sequences of varying length
# What members of one pack may differ in (besides the seed), whatever the architecture.
MEMBER_KEYS = ("lr", "weight_decay", "momentum", "dropout")
FLOAT32_MAX = float(torch.finfo(torch.float32).max)

# One epoch of a pack: each member's metrics, or None for a member that has ended.
PackReport = Callable[[list[dict[str, float] | None]], None]


def pack_key(config: Mapping[str, Any], data: DataBundle) -> tuple[Any, ...] | None:
    """Trials with equal keys may train in one pack; None: this trial trains alone.

    The key is every model and trainer key of the trial but :func:`member_keys`. The fused
    architectures keep their dropout layers at dropout 0, so a member without dropout shares
    its pack's shape (its masks are all ones, which changes no number).
    """
    resolved = resolve_config(config)
    architecture = resolved["architecture"]
    if architecture not in FUSED_ARCHITECTURES:
        return None
    if data.lengths_train is not None and architecture not in RECURRENT:
        return None  # sequences of varying length: the model would take lengths
    if drops_between_layers(resolved) and data.lengths_train is not None:
        # torch's module drops its packed outputs (only the valid steps, sorted by length)
        return None
    keys = trainer_keys(config)
    if max(keys.lr, keys.weight_decay, keys.momentum) > FLOAT32_MAX:
        return None  # torch's optimizer refuses such a number at its first step: alone, it fails
    free = member_keys(resolved)
    model = tuple(sorted((k, v) for k, v in resolved.items() if k not in free))
    return (*model, ("optimizer", keys.optimizer), ("batch_size", keys.batch_size))


def drops_between_layers(resolved: Mapping[str, Any]) -> bool:
    """A GRU or LSTM whose module drops out between its layers: a pack draws its masks as torch
    draws them alone, on a CPU (:class:`~hypertune.train.fused.dropout.LayerMasks`)."""
    return (
        resolved.get("architecture") in RECURRENT
        and float(resolved.get("dropout", 0.0)) > 0
        and int(resolved.get("num_layers", 1)) > 1
    )


def member_keys(resolved: Mapping[str, Any]) -> tuple[str, ...]:
    """The keys in which members of one pack may differ: :data:`MEMBER_KEYS`, and width and
    depth where the architecture pads (an MLP with hidden layers, a GRU, an LSTM)."""
    shape = padding.SHAPE_KEYS.get(resolved["architecture"], ())
    if resolved["architecture"] == "mlp" and resolved["num_layers"] == 0:
        shape = ()  # a linear model: its head reads the input, not a hidden layer
    return (*MEMBER_KEYS, *shape)


def fit_pack(
    configs: Sequence[Mapping[str, Any]],
    data: DataBundle,
    settings: TrainSettings,
    seeds: Sequence[int],
    report: PackReport | None = None,
    resume: State | None = None,
    save: Save | None = None,
    trained: Trained | None = None,
) -> list[dict[str, float]]:
    """Train every configuration of one pack (equal :func:`pack_key`) for `settings.epochs`.

    Returns each member's last metrics (those of its last epoch), in the order given. Each epoch
    reports, per member, what `hypertune.train.fit` reports for a lone trial, its training time
    being its share of the pack's (each epoch's time split evenly among the members that trained
    in it). `resume`, `save` and `trained`: as for `fit`, one state for the whole pack, and
    each member's weights (a member that ended early: as they were when the pack ended).
    """
    if len(configs) != len(seeds) or not configs:
        raise ValueError("fit_pack: one seed per configuration, and at least one configuration")
    keys = {pack_key(c, data) for c in configs}
    if len(keys) != 1 or None in keys:
        raise ValueError("fit_pack: these configurations cannot train as one pack")
    started = start(settings, seeds[0])
    device = torch.device(settings.device)
    data = data.to(device)
    pack = Pack(configs, data, seeds, device)
    count, size = len(data.y_train), pack.batch_size
    last: list[dict[str, float]] = [{} for _ in configs]
    best: list[dict[str, float]] = [{} for _ in configs]
    done, seconds = 0, 0.0
    # Each member's share of the pack's time: every epoch's seconds split evenly among the
    # members that trained in it (what a member reports as its training time).
    shares = [0.0] * len(configs)
    if resume is not None:
        pack.set_state(resume["pack"])
        set_random_state(resume["random"])
        last, best, done = list(resume["metrics"]), list(resume["best"]), resume["epoch"]
        seconds = resume["seconds"]
        shares = list(resume.get("shares", [seconds / len(configs)] * len(configs)))
        started -= seconds

    def state(epoch: int, seconds: float) -> State:
        return {
            "epoch": epoch,
            "seconds": seconds,
            "shares": list(shares),
            "pack": pack.get_state(),
            "random": random_state(),
            "best": best,
            "metrics": last,
        }

    for number in range(done + 1, settings.epochs + 1):
        train_losses = pack.train_epoch(count, size)
        valid_losses, accuracies = pack.evaluate()
        previous, seconds = seconds, time.perf_counter() - started
        training = [k for k in range(len(configs)) if pack.active[k]]
        for k in training:
            shares[k] += (seconds - previous) / len(training)
        epoch = [
            _member_epoch(pack, k, (train_losses[k], valid_losses[k], accuracies[k]), best, last)
            for k in range(len(configs))
        ]
        epoch = [None if m is None else {**m, SECONDS: shares[k]} for k, m in enumerate(epoch)]
        if save is not None and any(pack.active) and number < settings.epochs:
            save(functools.partial(state, number, seconds))
        ends = number == settings.epochs or not any(pack.active)
        if trained is not None and ends:
            trained([pack.member_state(k) for k in range(len(configs))])
        if report is not None:
            report(epoch)
        if not any(pack.active):
            break
    return last


def _member_epoch(
    pack: Pack,
    k: int,
    numbers: tuple[float, float, float],
    best: list[dict[str, float]],
    last: list[dict[str, float]],
) -> dict[str, float] | None:
    """Member `k`'s metrics after an epoch (its running best and last updated), or None for a
    member that had ended; a member whose loss stops being finite ends after this report, as a
    lone trial does."""
    if not pack.active[k]:
        return None
    metrics = dict(zip(("train_loss", "valid_loss", "accuracy"), numbers, strict=True))
    best[k] = update_best(best[k], metrics)
    metrics.update({f"{name}_best": v for name, v in best[k].items()})
    last[k] = metrics
    if not all(math.isfinite(metrics[name]) for name in ("train_loss", "valid_loss")):
        pack.active[k] = False
    return metrics
