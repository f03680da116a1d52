"""The per-trial training loop: seeded, whole-tensor batching, one report per epoch.

`fit` knows nothing of Ray: it calls `report(metrics)` after every epoch. The search wraps it in a
Ray Tune trainable; `rerun` and the benchmarks call it directly. Batches are indexed from tensors
already in memory (and on the device): for small in-memory data that beats a DataLoader.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from hypertune.data import DataBundle
from hypertune.models import create_model, resolve_config
from hypertune.train.fused import RECURRENT, fit_pack, pack_key
from hypertune.train.fused.dropout import DropoutMasks
from hypertune.train.optim import make_optimizer
from hypertune.train.settings import (
    SECONDS,
    Report,
    Save,
    State,
    Trained,
    TrainSettings,
    batch_count,
    random_state,
    set_random_state,
    start,
    trainer_keys,
    update_best,
)


def check_config(config: Mapping[str, Any]) -> None:
    """Check trainer keys and model keys of one trial's configuration without building it."""
    resolve_config(config)
    trainer_keys(config)


def fit(
    config: Mapping[str, Any],
    data: DataBundle,
    settings: TrainSettings,
    seed: int = 0,
    report: Report | None = None,
    resume: State | None = None,
    save: Save | None = None,
    trained: Trained | None = None,
) -> dict[str, float]:
    """Train one configuration for `settings.epochs` epochs; return the last epoch's metrics.

    Each epoch reports train_loss, valid_loss and accuracy (on the validation split), the
    running best of each (`<name>_best`) and the trial's training seconds so far (`SECONDS`),
    whichever trainer `settings` names. A non-finite loss ends the trial after reporting it:
    further epochs cannot recover, and the store marks such a trial NAN.

    A model that fuses (:func:`hypertune.train.fused.pack_key`) draws its dropout masks from its
    own generator (:mod:`.fused.dropout`), as a member of a fused pack does (the dropout between
    a GRU's or LSTM's layers stays torch's, which a pack draws alike); in a fused study
    (`settings.fused`) it trains as a pack of one (:func:`fit_member`), but for a GRU or LSTM.

    `save` is offered the loop's whole state after every epoch but the last; training resumed
    from such a state (`resume`) goes on with the next epoch and ends with exactly the numbers
    of an uninterrupted run. mltrainer's loop offers none and always starts at epoch 0.

    `trained` is handed the model's state dict once its last epoch is trained, before that
    epoch is reported (the study keeps it with that result); mltrainer's loop hands none.
    """
    if settings.trainer == "mltrainer":
        from hypertune.train.mltrainer import fit_mltrainer  # imports mlflow: only when asked for

        return fit_mltrainer(config, data, settings, seed, report)
    if settings.fused and pack_key(config, data) is not None and not _recurrent(config):
        return fit_member(config, data, settings, seed, report, resume, save, trained)
    return fit_module(config, data, settings, seed, report, resume, save, trained)


def _recurrent(config: Mapping[str, Any]) -> bool:
    """A GRU or LSTM: alone it trains as torch's own module, which runs its steps in C++ and
    skips the padding of short sequences (its pack arithmetic would give the same numbers to
    float32 rounding, not bit for bit, so nothing is gained by training it as a pack of one)."""
    return resolve_config(config)["architecture"] in RECURRENT


def fit_member(
    config: Mapping[str, Any],
    data: DataBundle,
    settings: TrainSettings,
    seed: int = 0,
    report: Report | None = None,
    resume: State | None = None,
    save: Save | None = None,
    trained: Trained | None = None,
) -> dict[str, float]:
    """`fit` as a fused pack of one: how a member of a fused study trains alone (`rerun`), bit
    for bit as it trained in its pack where the pack's arithmetic allows (MLPs)."""

    def each(epoch: list[dict[str, float] | None]) -> None:
        if report is not None and epoch[0] is not None:
            report(epoch[0])

    return fit_pack([config], data, settings, [seed], each, resume, save, trained)[0]


def fit_module(
    config: Mapping[str, Any],
    data: DataBundle,
    settings: TrainSettings,
    seed: int = 0,
    report: Report | None = None,
    resume: State | None = None,
    save: Save | None = None,
    trained: Trained | None = None,
) -> dict[str, float]:
    """`fit` as one `nn.Module` stepped by torch's optimizer: how a trial trains alone (and,
    in float64, what a fused member's training equals)."""
    keys = trainer_keys(config)
    started = start(settings, seed)
    device = torch.device(settings.device)
    data = data.to(device)  # once per trial, not per batch
    model = create_model(config, data.input_shape, data.num_classes).to(device)
    masks = None
    # A checkpoint saved without masks (an earlier version's, which left a deep GRU's dropout
    # to torch) goes on as it began: every mask from the global generator.
    older = resume is not None and resume.get("masks") is None
    if pack_key(config, data) is not None and not older:  # masks as a fused member draws them
        dropout = float(resolve_config(config).get("dropout", 0.0))
        masks = DropoutMasks(model, [dropout], [seed], data.input_shape)
    optimizer = make_optimizer(model, keys)
    loss_fn = nn.CrossEntropyLoss()
    generator = torch.Generator(device="cpu").manual_seed(seed)
    best: dict[str, float] = {}
    metrics: dict[str, float] = {}
    done = 0
    if resume is not None:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        generator.set_state(resume["shuffle"])
        if masks is not None:
            masks.set_state(resume["masks"])
        set_random_state(resume["random"])
        best, metrics, done = dict(resume["best"]), dict(resume["metrics"]), resume["epoch"]
        started -= resume["seconds"]

    def state(epoch: int, seconds: float) -> State:
        return {
            "epoch": epoch,
            "seconds": seconds,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "shuffle": generator.get_state(),
            "masks": masks.get_state() if masks is not None else None,
            "random": random_state(),
            "best": best,
            "metrics": metrics,
        }

    for epoch in range(done + 1, settings.epochs + 1):
        train_loss = _train_epoch(
            model, optimizer, loss_fn, data, keys.batch_size, generator, masks
        )
        valid_loss, accuracy = evaluate(model, data, loss_fn)
        metrics = {"train_loss": train_loss, "valid_loss": valid_loss, "accuracy": accuracy}
        best = update_best(best, metrics)
        metrics.update({f"{k}_best": v for k, v in best.items()})
        seconds = time.perf_counter() - started
        finite = all(math.isfinite(v) for v in (train_loss, valid_loss))
        if save is not None and finite and epoch < settings.epochs:
            save(functools.partial(state, epoch, seconds))
        if trained is not None and (epoch == settings.epochs or not finite):
            trained([{k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}])
        if report is not None:
            report({**metrics, SECONDS: seconds})
        if not finite:
            break
    return metrics


def _forward(model: nn.Module, x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    return model(x) if lengths is None else model(x, lengths=lengths)


def _train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: nn.Module,
    data: DataBundle,
    batch_size: int,
    generator: torch.Generator,
    masks: DropoutMasks | None = None,
) -> float:
    model.train()
    count = len(data.y_train)
    order = torch.randperm(count, generator=generator).to(data.x_train.device)
    total = torch.zeros((), device=data.x_train.device)
    for step in range(batch_count(count, batch_size)):
        idx = order[step * batch_size : (step + 1) * batch_size]
        lengths = None if data.lengths_train is None else data.lengths_train[idx]
        x = data.x_train[idx]
        for name, mask in (masks.draw(len(idx), x.dtype, x.device) if masks else {}).items():
            model.get_submodule(name.removesuffix(".noise")).noise = mask[0]
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(_forward(model, x, lengths), data.y_train[idx])
        loss.backward()
        optimizer.step()
        total += loss.detach() * len(idx)
    return float(total) / count  # one device sync per epoch


def evaluate(model: nn.Module, data: DataBundle, loss_fn: nn.Module) -> tuple[float, float]:
    """Validation loss and accuracy over the whole validation split."""
    return evaluate_on(model, data.x_valid, data.y_valid, data.lengths_valid, loss_fn)


@torch.no_grad()
def evaluate_on(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    lengths: torch.Tensor | None = None,
    loss_fn: nn.Module | None = None,
) -> tuple[float, float]:
    """Loss (cross-entropy unless `loss_fn`) and accuracy of `model` on the examples `x`."""
    model.eval()
    logits = _forward(model, x, lengths)
    loss = float((loss_fn or nn.CrossEntropyLoss())(logits, y))
    accuracy = float((logits.argmax(dim=1) == y).float().mean())
    return loss, accuracy
