"""mltrainer, the course's trainer, as an alternative to hypertune's own loop.

`trainer = "mltrainer"` in `[study]` trains with mltrainer's `Trainer`, with its early stopping
and its learning-rate scheduler off, so every trial gets the same budget. mltrainer hands each
epoch to every reporter in `Trainer.reporters` in its own names (`test_loss`, `Accuracy`); a small
reporter of ours, added there, renames them to the metrics every hypertune study reports
(train_loss, valid_loss, accuracy, `<name>_best` and the trial's training seconds) and passes them
on to Ray Tune. mltrainer imports mlflow when loaded, so it is imported only on this path.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hypertune.data import DataBundle
from hypertune.errors import ConfigError
from hypertune.models import create_model
from hypertune.train.optim import make_optimizer
from hypertune.train.settings import (
    SECONDS,
    Report,
    TrainSettings,
    batch_count,
    start,
    trainer_keys,
    update_best,
)

Batch = tuple[torch.Tensor | tuple[torch.Tensor, torch.Tensor], torch.Tensor]


class TensorBatches:
    """One pass over a split in batches, reshuffled (seeded) on every pass.

    mltrainer's Trainer re-`iter`s a loader when it runs dry, so one pass is one epoch. Sequence
    batches go through mltrainer's `PaddedPreprocessor`, which pads each batch only to its own
    longest sequence, and come with their lengths as `(x, lengths)`.
    """

    def __init__(
        self, data: DataBundle, part: str, batch_size: int, generator: torch.Generator | None
    ) -> None:
        self.x: torch.Tensor = getattr(data, f"x_{part}")
        self.y: torch.Tensor = getattr(data, f"y_{part}")
        self.lengths: torch.Tensor | None = getattr(data, f"lengths_{part}")
        self.batch_size = batch_size
        self.generator = generator  # None: in order (validation)

    def __len__(self) -> int:
        return batch_count(len(self.y), self.batch_size)

    def __iter__(self) -> Iterator[Batch]:
        count = len(self.y)
        if self.generator is None:
            order = torch.arange(count)
        else:
            order = torch.randperm(count, generator=self.generator)
        for step in range(len(self)):
            yield self._batch(order[step * self.batch_size : (step + 1) * self.batch_size])

    def _batch(self, idx: torch.Tensor) -> Batch:
        if self.lengths is None:
            return self.x[idx], self.y[idx]
        from mltrainer.preprocessors import PaddedPreprocessor

        lengths = self.lengths[idx]
        items = [
            (self.x[i, :n], self.y[i]) for i, n in zip(idx.tolist(), lengths.tolist(), strict=True)
        ]
        x, y = PaddedPreprocessor()(items)
        return (x, lengths), y


class MetricBridge:
    """An mltrainer reporter (its `Reporter.report` interface) that renames mltrainer's metrics
    to hypertune's and hands them to `report` (in a trial: Ray Tune's)."""

    def __init__(self, report: Report | None, started: float) -> None:
        self.forward = report
        self.started = started  # the trial's clock, as our own loop keeps it
        self.best: dict[str, float] = {}
        self.metrics: dict[str, float] = {}

    def report(
        self, epoch: int, train_loss: float, test_loss: float, metric_dict: dict[str, float]
    ) -> None:
        metrics = {
            "train_loss": float(train_loss),
            "valid_loss": float(test_loss),
            "accuracy": float(metric_dict["Accuracy"]),
        }
        self.best = update_best(self.best, metrics)
        metrics.update({f"{k}_best": v for k, v in self.best.items()})
        self.metrics = metrics
        if self.forward is not None:
            self.forward({**metrics, SECONDS: time.perf_counter() - self.started})


def _optimizer_kwargs(optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """The settings mltrainer passes back to the optimizer class (defaults hold internal keys)."""
    keys = (
        ("lr", "weight_decay", "momentum")
        if isinstance(optimizer, torch.optim.SGD)
        else ("lr", "weight_decay")
    )
    return {key: optimizer.defaults[key] for key in keys}


def fit_mltrainer(
    config: Mapping[str, Any],
    data: DataBundle,
    settings: TrainSettings,
    seed: int = 0,
    report: Report | None = None,
) -> dict[str, float]:
    """Train one configuration with mltrainer's Trainer; same contract as `train.fit`."""
    try:
        from loguru import logger
        from mltrainer import Trainer, TrainerSettings
        from mltrainer.metrics import Accuracy
    except ImportError as exc:
        raise ConfigError(f"study.trainer: mltrainer cannot be imported ({exc})") from exc
    logger.disable("mltrainer")
    keys = trainer_keys(config)
    started = start(settings, seed)
    model = create_model(config, data.input_shape, data.num_classes)
    optimizer = make_optimizer(model, keys)  # its class and settings; mltrainer builds its own
    train = TensorBatches(data, "train", keys.batch_size, torch.Generator().manual_seed(seed))
    valid = TensorBatches(data, "valid", max(1, len(data.y_valid)), None)  # one exact pass
    bridge = MetricBridge(report, started)
    with tempfile.TemporaryDirectory(prefix="mltrainer-") as logdir:
        trainer_settings = TrainerSettings(
            epochs=settings.epochs,
            metrics=[Accuracy()],
            logdir=Path(logdir),
            train_steps=len(train),
            valid_steps=len(valid),
            reporttypes=[],  # the one reporter is ours (below), not mltrainer's Ray reporter
            optimizer_kwargs=_optimizer_kwargs(optimizer),
            scheduler_kwargs=None,
            earlystop_kwargs=None,  # early stopping would give trials unequal budgets
        )
        trainer = Trainer(
            model=model,
            settings=trainer_settings,
            loss_fn=nn.CrossEntropyLoss(),
            optimizer=type(optimizer),
            traindataloader=train,
            validdataloader=valid,
            scheduler=None,
            device=settings.device,
        )
        trainer.reporters.append(bridge)  # mltrainer reports each epoch to its reporters
        # tqdm bars would interleave with the CLI's progress line; the metrics come via `report`.
        with contextlib.redirect_stderr(io.StringIO()):
            trainer.loop()
    return bridge.metrics
