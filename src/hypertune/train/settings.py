"""What both trainers share for one trial: settings, the trainer keys, seeding, the clock, the
batches and the running best (the optimizers: :mod:`hypertune.train.optim`).

Both `hypertune.train.loop` (our own loop) and `hypertune.train.mltrainer` (mltrainer's) import
this module and nothing of each other, so one contract holds for both: the same checks, the
same warm-up before the clock starts, and the same `train_seconds` in every report.
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

from hypertune.errors import ConfigError
from hypertune.metrics import METRICS
from hypertune.metrics import SECONDS as SECONDS  # reported with each epoch (metrics.py)
from hypertune.models import TRAINER_KEYS, TrainerKeys
from hypertune.train.optim import OPTIMIZERS

Report = Callable[[dict[str, float]], None]
# A training loop's whole state after an epoch (weights, optimizer, generators, best so far),
# enough to continue bit for bit; see `Save`.
State = dict[str, Any]
# Offered a thunk of the state after each epoch but the last, before that epoch is reported;
# it calls the thunk only when it keeps a checkpoint (the state is not copied otherwise).
Save = Callable[[Callable[[], State]], None]
# Handed, once training is done and before its last epoch is reported, the state dict of each
# model trained (one for a lone trial, each member's for a pack; on the CPU).
Trained = Callable[[list[dict[str, torch.Tensor]]], None]


@dataclass(frozen=True)
class TrainSettings:
    """What every trial of a study shares (not searched, not a hyperparameter)."""

    epochs: int  # the same budget for every trial
    device: str = "cpu"
    threads: int = 1  # torch intra-op threads per trial
    trainer: str = "hypertune"  # hypertune (own loop) | mltrainer (the course's Trainer)
    # The study trains in fused packs: a trial that fuses trains alone as a pack of one, so
    # that it trains (and reruns) as its pack's members do.
    fused: bool = False


def trainer_keys(config: Mapping[str, Any]) -> TrainerKeys:
    """The trainer keys of one configuration, defaults filled in and every value checked."""
    name = config.get("optimizer", TRAINER_KEYS["optimizer"])
    if name not in OPTIMIZERS:
        raise ConfigError(f"model.optimizer: '{name}' is unknown; known: {', '.join(OPTIMIZERS)}")
    numbers: dict[str, float] = {}
    for key in ("lr", "weight_decay", "momentum"):
        value = config.get(key, TRAINER_KEYS[key])
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ConfigError(f"model.{key}: expected a number >= 0, got {value!r}")
        numbers[key] = float(value)
    if not numbers["lr"] > 0:
        raise ConfigError(f"model.lr: expected > 0, got {config.get('lr')!r}")
    batch = config.get("batch_size", TRAINER_KEYS["batch_size"])
    if isinstance(batch, float) and batch.is_integer():
        batch = int(batch)  # a whole number read back from a table
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ConfigError(f"model.batch_size: expected a whole number >= 1, got {batch!r}")
    return TrainerKeys(optimizer=name, batch_size=batch, **numbers)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch so a trial is repeatable on CPU."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def random_state() -> State:
    """Every global generator a training step may draw from (dropout of torch's own layers)."""
    state: State = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": np.random.get_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_random_state(state: State) -> None:
    """Put back what :func:`random_state` took."""
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def start(settings: TrainSettings, seed: int) -> float:
    """Warm up, seed and set the threads; return when the trial's clock started."""
    warm_up()
    started = time.perf_counter()
    seed_everything(seed)
    torch.set_num_threads(max(1, settings.threads))
    return started


@functools.cache  # once per process
def warm_up() -> None:
    """Pay torch's one-time costs once per process, before any trial's clock starts.

    The first optimizer step of a process imports torch._dynamo; without this, the first trial
    of every Ray worker would be timed slower than the others.
    """
    weight = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.SGD([weight], lr=0.0)
    (weight * 2.0).sum().backward()
    optimizer.step()


def batch_count(count: int, batch_size: int) -> int:
    """Batches in one pass over `count` examples: a last batch of one is left out when others
    came before it (it breaks batchnorm and adds nothing)."""
    full, rest = divmod(count, batch_size)
    return full + (1 if rest >= 2 or full == 0 else 0)


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
