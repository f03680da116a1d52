"""Fused training: the trials of a pack trained as one batched model.

Members of a pack share the data, the epochs, the batch size, the optimizer kind and every model
key but dropout; they may differ in seed, learning rate, weight decay, momentum and dropout.
Their weights are stacked and one step trains them all (an MLP's layers as batched products,
:mod:`hypertune.stacked`; other models through `torch.func.vmap`), so a pack of 16 small models
costs little more per step than one.

Every member keeps its own randomness: its weights are initialised from its seed as a lone trial's
are, its batch order comes from its own generator, and its dropout masks from another, drawn for
it alone (:mod:`hypertune.masks`). Its optimizer step is torch's, with its own learning rate,
weight decay and momentum. So a member trains as it would alone, whatever else is in its pack
(`hypertune.train.fit_member` trains one as a pack of one), and a member whose loss stops being
finite is left out of the pack's loss and reported no more, while the others train on.
"""

from __future__ import annotations

import copy
import functools
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from hypertune import stacked as stacked_forward
from hypertune.data import DataBundle
from hypertune.masks import DropoutMasks
from hypertune.models import create_model, resolve_config
from hypertune.trial import (
    SECONDS,
    Save,
    State,
    TrainSettings,
    batch_count,
    random_state,
    set_random_state,
    start,
    trainer_keys,
    update_best,
)

# Architectures whose models fuse exactly (every layer has a batching rule; no packed sequences).
FUSED_ARCHITECTURES = ("mlp", "cnn")
# What members of one pack may differ in (besides the seed).
MEMBER_KEYS = ("lr", "weight_decay", "momentum", "dropout")
ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8  # torch's defaults, as the lone trial uses them

# One epoch of a pack: each member's metrics, or None for a member that has ended.
PackReport = Callable[[list[dict[str, float] | None]], None]


def pack_key(config: Mapping[str, Any], data: DataBundle) -> tuple[Any, ...] | None:
    """Trials with equal keys may train in one pack; None: this trial trains alone.

    The key is every model and trainer key of the trial but :data:`MEMBER_KEYS`. The fused
    architectures keep their dropout layers at dropout 0, so a member without dropout shares
    its pack's shape (its masks are all ones, which changes no number).
    """
    if data.lengths_train is not None:
        return None  # sequences of varying length: their models take lengths, not fused
    resolved = resolve_config(config)
    if resolved["architecture"] not in FUSED_ARCHITECTURES:
        return None
    keys = trainer_keys(config)
    model = tuple(sorted((k, v) for k, v in resolved.items() if k not in MEMBER_KEYS))
    return (*model, ("optimizer", keys.optimizer), ("batch_size", keys.batch_size))


def fit_pack(
    configs: Sequence[Mapping[str, Any]],
    data: DataBundle,
    settings: TrainSettings,
    seeds: Sequence[int],
    report: PackReport | None = None,
    resume: State | None = None,
    save: Save | None = None,
) -> list[dict[str, float]]:
    """Train every configuration of one pack (equal :func:`pack_key`) for `settings.epochs`.

    Returns each member's last metrics (those of its last epoch), in the order given. Each epoch
    reports, per member, what `hypertune.train.fit` reports for a lone trial. `resume` and
    `save`: as for `fit`, one state for the whole pack.
    """
    if len(configs) != len(seeds) or not configs:
        raise ValueError("fit_pack: one seed per configuration, and at least one configuration")
    keys = {pack_key(c, data) for c in configs}
    if len(keys) != 1 or None in keys:
        raise ValueError("fit_pack: these configurations cannot train as one pack")
    started = start(settings, seeds[0])
    device = torch.device(settings.device)
    data = data.to(device)
    pack = _Pack(configs, data, seeds, device)
    count, size = len(data.y_train), pack.batch_size
    last: list[dict[str, float]] = [{} for _ in configs]
    best: list[dict[str, float]] = [{} for _ in configs]
    done = 0
    if resume is not None:
        pack.set_state(resume["pack"])
        set_random_state(resume["random"])
        last, best, done = list(resume["metrics"]), list(resume["best"]), resume["epoch"]
        started -= resume["seconds"]

    def state(epoch: int, seconds: float) -> State:
        return {
            "epoch": epoch,
            "seconds": seconds,
            "pack": pack.get_state(),
            "random": random_state(),
            "best": best,
            "metrics": last,
        }

    for number in range(done + 1, settings.epochs + 1):
        train_losses = pack.train_epoch(count, size)
        valid_losses, accuracies = pack.evaluate()
        seconds = time.perf_counter() - started
        epoch: list[dict[str, float] | None] = []
        for k in range(len(configs)):
            if not pack.active[k]:
                epoch.append(None)
                continue
            metrics = {
                "train_loss": train_losses[k],
                "valid_loss": valid_losses[k],
                "accuracy": accuracies[k],
            }
            best[k] = update_best(best[k], metrics)
            metrics.update({f"{name}_best": v for name, v in best[k].items()})
            last[k] = metrics
            epoch.append({**metrics, SECONDS: seconds})
            if not all(math.isfinite(metrics[name]) for name in ("train_loss", "valid_loss")):
                pack.active[k] = False  # ends after this report, as a lone trial does
        if save is not None and any(pack.active) and number < settings.epochs:
            save(functools.partial(state, number, seconds))
        if report is not None:
            report(epoch)
        if not any(pack.active):
            break
    return last


class _Pack:
    """The stacked weights, buffers, generators and optimizer state of one pack."""

    def __init__(
        self,
        configs: Sequence[Mapping[str, Any]],
        data: DataBundle,
        seeds: Sequence[int],
        device: torch.device,
    ) -> None:
        self.data = data
        models = []
        for config, seed in zip(configs, seeds, strict=True):
            torch.manual_seed(seed)  # the weights a lone trial with this seed starts from
            models.append(create_model(config, data.input_shape, data.num_classes).to(device))
        self.template = copy.deepcopy(models[0]).to("meta")
        dropout = [float(resolve_config(c).get("dropout", 0.0)) for c in configs]
        self.masks = DropoutMasks(self.template, dropout, seeds, data.input_shape)
        stacked, self.buffers = stack_module_state(models)
        # Every member's weights in one row of one tensor, which the optimizer steps whole;
        # each weight is a view into it, a leaf of its own for autograd.
        rows = [p.detach().reshape(len(models), -1) for p in stacked.values()]
        self.flat = torch.cat(rows, dim=1)
        self.weights: dict[str, torch.Tensor] = {}
        at = 0
        for name, p in stacked.items():
            size = p[0].numel()
            view = self.flat[:, at : at + size].view(p.shape)
            self.weights[name] = view.requires_grad_()
            at += size
        self.shuffle = [torch.Generator().manual_seed(int(s)) for s in seeds]
        self.active = [True] * len(configs)
        keys = [trainer_keys(c) for c in configs]
        self.batch_size = keys[0].batch_size
        self.optimizer = _StackedOptimizer(self.flat, keys)

        def forward(
            params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor], x: torch.Tensor
        ) -> torch.Tensor:
            return functional_call(self.template, (params, buffers), (x,))

        if stacked_forward.supported(self.template):  # an MLP: batched products, no vmap
            members = len(configs)

            def plain(
                params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor], x: torch.Tensor
            ) -> torch.Tensor:
                return stacked_forward.forward(self.template, {**params, **buffers}, x)

            def shared(
                params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor], x: torch.Tensor
            ) -> torch.Tensor:
                return plain(params, buffers, x.expand(members, *x.shape))

            self.forward, self.forward_shared = plain, shared
        else:
            self.forward = vmap(forward, in_dims=(0, 0, 0), randomness="error")
            self.forward_shared = vmap(forward, in_dims=(0, 0, None), randomness="error")

    def get_state(self) -> State:
        """The weights, buffers, generators, optimizer state and members still training."""
        return {
            "flat": self.flat,
            "buffers": self.buffers,
            "shuffle": [g.get_state() for g in self.shuffle],
            "masks": self.masks.get_state(),
            "optimizer": self.optimizer.get_state(),
            "active": list(self.active),
        }

    @torch.no_grad()
    def set_state(self, state: State) -> None:
        """Put back what :meth:`get_state` took (in place: the weights stay views of one
        tensor)."""
        self.flat.copy_(state["flat"])
        for name, buffer in self.buffers.items():
            buffer.copy_(state["buffers"][name])
        for generator, saved in zip(self.shuffle, state["shuffle"], strict=True):
            generator.set_state(saved)
        self.masks.set_state(state["masks"])
        self.optimizer.set_state(state["optimizer"])
        self.active = list(state["active"])

    def params(self) -> dict[str, torch.Tensor]:
        """Each weight of the model, stacked over members: views into :attr:`flat`."""
        return self.weights

    def gradient(self) -> torch.Tensor:
        """The weights' gradients laid out as :attr:`flat` (zero where a weight has none)."""
        members = self.flat.shape[0]
        parts = [
            torch.zeros_like(w).reshape(members, -1)
            if w.grad is None
            else w.grad.reshape(members, -1)
            for w in self.weights.values()
        ]
        return torch.cat(parts, dim=1)

    def train_epoch(self, count: int, size: int) -> list[float]:
        self.template.train()
        device = self.data.x_train.device
        orders = torch.stack([torch.randperm(count, generator=g) for g in self.shuffle]).to(device)
        active = torch.tensor(self.active, device=device)
        total = torch.zeros(len(self.active), device=device, dtype=torch.float64)
        for step in range(batch_count(count, size)):
            idx = orders[:, step * size : (step + 1) * size]
            x, y = self.data.x_train[idx], self.data.y_train[idx]
            noise = self.masks.draw(idx.shape[1], x.dtype, x.device)
            buffers = {**self.buffers, **noise}
            logits = self.forward(self.params(), buffers, x)
            losses = _member_losses(logits, y)
            for weight in self.weights.values():
                weight.grad = None
            losses[active].sum().backward()
            self.optimizer.step(self.gradient())
            total += losses.detach().to(torch.float64) * idx.shape[1]
        return (total / count).tolist()  # one device sync per epoch

    @torch.no_grad()
    def evaluate(self) -> tuple[list[float], list[float]]:
        self.template.eval()
        logits = self.forward_shared(self.params(), self.buffers, self.data.x_valid)
        y = self.data.y_valid.expand(logits.shape[0], -1)
        losses = _member_losses(logits, y)
        accuracy = (logits.argmax(dim=2) == y).float().mean(dim=1)
        return losses.tolist(), accuracy.tolist()


def _member_losses(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Each member's mean cross-entropy over its batch: [members, batch, classes] -> [members]."""
    members, batch, classes = logits.shape
    each = nn.functional.cross_entropy(
        logits.reshape(members * batch, classes), y.reshape(-1), reduction="none"
    )
    return each.view(members, batch).mean(dim=1)


class _StackedOptimizer:
    """torch's Adam, AdamW or SGD step, member by member within stacked weights.

    The arithmetic is torch's single-tensor step, element by element in the same order; only
    the learning rate, weight decay and momentum come per member (one row each).
    """

    def __init__(self, flat: torch.Tensor, keys: Sequence[Any]) -> None:
        self.flat = flat
        self.kind = keys[0].optimizer
        self.lr = [k.lr for k in keys]
        self.weight_decay = [k.weight_decay for k in keys]
        self.momentum = [k.momentum for k in keys]
        self.steps = 0
        self.state: dict[str, torch.Tensor] = {}
        self._tensors: dict[tuple[Any, ...], torch.Tensor] = {}

    def get_state(self) -> State:
        return {"steps": self.steps, "state": self.state}

    def set_state(self, state: State) -> None:
        self.steps = int(state["steps"])
        self.state = {k: v.to(self.flat.device).clone() for k, v in state["state"].items()}

    def _per_member(self, values: Sequence[float], like: torch.Tensor) -> torch.Tensor:
        """`values` (one per member) shaped to scale each member's slice of `like`."""
        key = (tuple(values), like.dim(), like.dtype, like.device)
        if key not in self._tensors:
            shape = (len(values),) + (1,) * (like.dim() - 1)
            tensor = torch.tensor(values, dtype=like.dtype, device=like.device)
            self._tensors[key] = tensor.view(shape)
        return self._tensors[key]

    @torch.no_grad()
    def step(self, grad: torch.Tensor) -> None:
        """One step of every member, `grad` laid out as the weights are."""
        self.steps += 1
        if self.kind == "sgd":
            self._sgd(self.flat, grad, self.state)
        else:
            self._adam(self.flat, grad, self.state)

    def _sgd(self, param: torch.Tensor, grad: torch.Tensor, state: dict[str, torch.Tensor]) -> None:
        grad = grad + param * self._per_member(self.weight_decay, param)
        if "buffer" not in state:
            state["buffer"] = grad.clone()
        else:
            state["buffer"].mul_(self._per_member(self.momentum, param)).add_(grad)
        param.add_(self._per_member([-lr for lr in self.lr], param) * state["buffer"])

    def _adam(
        self, param: torch.Tensor, grad: torch.Tensor, state: dict[str, torch.Tensor]
    ) -> None:
        beta1, beta2 = ADAM_BETAS
        if self.kind == "adamw":
            decay = [1 - lr * wd for lr, wd in zip(self.lr, self.weight_decay, strict=True)]
            param.mul_(self._per_member(decay, param))
        else:
            grad = grad + param * self._per_member(self.weight_decay, param)
        if not state:
            state["exp_avg"] = torch.zeros_like(param)
            state["exp_avg_sq"] = torch.zeros_like(param)
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        bias_correction1 = 1 - beta1**self.steps
        bias_correction2_sqrt = (1 - beta2**self.steps) ** 0.5
        step_size = self._per_member([-lr / bias_correction1 for lr in self.lr], param)
        denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(ADAM_EPS)
        param.add_(step_size * exp_avg / denom)
