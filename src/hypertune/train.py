"""The per-trial training loop: seeded, whole-tensor batching, one report per epoch.

`fit` knows nothing of Ray: it calls `report(metrics)` after every epoch. The search wraps it in a
Ray Tune trainable; `rerun` and the benchmarks call it directly. For small in-memory data, index
batching over tensors already in memory (and on the device) is several times faster than a
DataLoader.
"""

from __future__ import annotations

import functools
import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from hypertune.config import METRICS
from hypertune.data import DataBundle
from hypertune.errors import ConfigError
from hypertune.models import TRAINER_KEYS, create_model, resolve_config

Report = Callable[[dict[str, float]], None]
# Reported with each epoch: seconds of training so far (the per-process warm-up left out).
SECONDS = "train_seconds"
OPTIMIZERS = ("adam", "adamw", "sgd")


@dataclass(frozen=True)
class TrainSettings:
    """What every trial of a study shares (not searched, not a hyperparameter)."""

    epochs: int  # the same budget for every trial
    device: str = "cpu"
    threads: int = 1  # torch intra-op threads per trial
    trainer: str = "hypertune"  # hypertune (own loop) | mltrainer (the course's Trainer)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch so a trial is repeatable on CPU."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def check_config(config: Mapping[str, Any]) -> None:
    """Check trainer keys and model keys of one trial's configuration without building it."""
    resolve_config(config)
    name = config.get("optimizer", TRAINER_KEYS["optimizer"])
    if name not in OPTIMIZERS:
        raise ConfigError(f"model.optimizer: '{name}' is unknown; known: {', '.join(OPTIMIZERS)}")
    for key in ("lr", "weight_decay", "momentum"):
        value = config.get(key, TRAINER_KEYS[key])
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ConfigError(f"model.{key}: expected a number >= 0, got {value!r}")
    if not float(config.get("lr", TRAINER_KEYS["lr"])) > 0:
        raise ConfigError(f"model.lr: expected > 0, got {config.get('lr')!r}")
    batch = config.get("batch_size", TRAINER_KEYS["batch_size"])
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ConfigError(f"model.batch_size: expected a whole number >= 1, got {batch!r}")


def make_optimizer(model: nn.Module, config: Mapping[str, Any]) -> torch.optim.Optimizer:
    """The optimizer `config` names, with its learning rate and weight decay."""
    name = config.get("optimizer", TRAINER_KEYS["optimizer"])
    lr = float(config.get("lr", TRAINER_KEYS["lr"]))
    decay = float(config.get("weight_decay", TRAINER_KEYS["weight_decay"]))
    if not lr > 0:
        raise ConfigError(f"model.lr: expected > 0, got {lr}")
    params = model.parameters()
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=decay)
    if name == "sgd":
        momentum = float(config.get("momentum", TRAINER_KEYS["momentum"]))
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=decay)
    raise ConfigError(f"model.optimizer: '{name}' is unknown; known: {', '.join(OPTIMIZERS)}")


def fit(
    config: Mapping[str, Any],
    data: DataBundle,
    settings: TrainSettings,
    seed: int = 0,
    report: Report | None = None,
) -> dict[str, float]:
    """Train one configuration for `settings.epochs` epochs; return the last epoch's metrics.

    Each epoch reports train_loss, valid_loss and accuracy (on the validation split), and the
    running best of each (`<name>_best`). A non-finite loss ends the trial after reporting it:
    further epochs cannot recover, and the store marks such a trial NAN.
    """
    if settings.trainer == "mltrainer":
        from hypertune.trainers import fit_mltrainer  # imports mlflow: only when asked for

        return fit_mltrainer(dict(config), data, settings, seed, report)
    warm_up()
    started = time.perf_counter()
    seed_everything(seed)
    torch.set_num_threads(max(1, settings.threads))
    device = torch.device(settings.device)
    data = data.to(device)  # once per trial, not per batch
    model = create_model(config, data.input_shape, data.num_classes).to(device)
    optimizer = make_optimizer(model, config)
    batch_size = int(config.get("batch_size", TRAINER_KEYS["batch_size"]))
    if batch_size < 1:
        raise ConfigError(f"model.batch_size: expected >= 1, got {batch_size}")
    loss_fn = nn.CrossEntropyLoss()
    generator = torch.Generator(device="cpu").manual_seed(seed)
    best: dict[str, float] = {}
    metrics: dict[str, float] = {}
    for _ in range(settings.epochs):
        train_loss = _train_epoch(model, optimizer, loss_fn, data, batch_size, generator)
        valid_loss, accuracy = evaluate(model, data, loss_fn)
        metrics = {"train_loss": train_loss, "valid_loss": valid_loss, "accuracy": accuracy}
        best = update_best(best, metrics)
        metrics.update({f"{k}_best": v for k, v in best.items()})
        if report is not None:
            report({**metrics, SECONDS: time.perf_counter() - started})
        if not all(math.isfinite(v) for v in (train_loss, valid_loss)):
            break
    return metrics


@functools.cache  # once per process
def warm_up() -> None:
    """Pay torch's one-time costs once per process, before any trial's clock starts.

    The first optimizer step of a process imports torch._dynamo (about a second); without this,
    the first trial of every Ray worker would be timed that much slower than the others.
    """
    weight = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.SGD([weight], lr=0.0)
    (weight * 2.0).sum().backward()
    optimizer.step()


def _forward(model: nn.Module, x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    return model(x) if lengths is None else model(x, lengths=lengths)


def _train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: nn.Module,
    data: DataBundle,
    batch_size: int,
    generator: torch.Generator,
) -> float:
    model.train()
    count = len(data.y_train)
    order = torch.randperm(count, generator=generator).to(data.x_train.device)
    total = torch.zeros((), device=data.x_train.device)
    for start in range(0, count, batch_size):
        idx = order[start : start + batch_size]
        if len(idx) < 2 and count > 1:
            continue  # a batch of one breaks batchnorm and adds nothing
        lengths = None if data.lengths_train is None else data.lengths_train[idx]
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(_forward(model, data.x_train[idx], lengths), data.y_train[idx])
        loss.backward()
        optimizer.step()
        total += loss.detach() * len(idx)
    return float(total) / count  # one device sync per epoch


@torch.no_grad()
def evaluate(model: nn.Module, data: DataBundle, loss_fn: nn.Module) -> tuple[float, float]:
    """Validation loss and accuracy over the whole validation split."""
    model.eval()
    logits = _forward(model, data.x_valid, data.lengths_valid)
    loss = float(loss_fn(logits, data.y_valid))
    accuracy = float((logits.argmax(dim=1) == data.y_valid).float().mean())
    return loss, accuracy


def update_best(best: dict[str, float], metrics: dict[str, float]) -> dict[str, float]:
    """The running best of each metric (non-finite values never replace a finite best)."""
    out = dict(best)
    for name, value in metrics.items():
        if not math.isfinite(value):
            out.setdefault(name, value)
            continue
        previous = out.get(name)
        if previous is None or not math.isfinite(previous):
            out[name] = value
        else:
            out[name] = min(previous, value) if METRICS[name] == "min" else max(previous, value)
    return out
