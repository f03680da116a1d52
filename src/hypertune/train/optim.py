"""The optimizers a trial may name, each with torch's optimizer and a fused pack's step.

A registry, in the style of timm's `register_model`: each kind is one :func:`register` call with
the torch optimizer a lone trial builds (:func:`make_optimizer`) and the step that trains a fused
pack's members with it (:class:`StackedOptimizer`). Validation (`model.optimizer`), the help text
and the README's list read :data:`OPTIMIZERS`, so adding an optimizer is one entry here and its
test (tests/test_fused.py checks every kind's fused step against torch's).

In a pack, every member's weights are one row of one flat tensor. A fused step's arithmetic is
torch's single-tensor step, element by element in the same order, with the learning rate,
weight decay and momentum taken per member. A kind without a step cannot be registered, and an
unknown kind is an error, never another optimizer's step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from hypertune.models import TrainerKeys

ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8  # torch's defaults, as the lone trial uses them

Moments = dict[str, torch.Tensor]  # a fused step's state (momentum buffer, Adam's averages)
Build = Callable[[Iterable[nn.Parameter], TrainerKeys], torch.optim.Optimizer]


@dataclass(frozen=True)
class Kind:
    """One optimizer: the torch optimizer a lone trial builds, the step a fused pack takes."""

    build: Build
    step: Callable[[StackedOptimizer, torch.Tensor, torch.Tensor, Moments], None]


OPTIMIZERS: dict[str, Kind] = {}


def register(name: str, build: Build) -> Callable[[Any], Any]:
    """Register optimizer `name`: `build` makes torch's optimizer, the decorated function is its
    fused step (`step(optimizer, weights, grad, moments)`)."""

    def add(step: Any) -> Any:
        OPTIMIZERS[name] = Kind(build, step)
        return step

    return add


def make_optimizer(model: nn.Module, keys: TrainerKeys) -> torch.optim.Optimizer:
    """The optimizer `keys` name, with its learning rate, weight decay and momentum."""
    return OPTIMIZERS[keys.optimizer].build(model.parameters(), keys)


class StackedOptimizer:
    """torch's Adam, AdamW or SGD step, member by member within stacked weights.

    The arithmetic is torch's single-tensor step, element by element in the same order; only
    the learning rate, weight decay and momentum come per member (one row each).
    """

    def __init__(self, flat: torch.Tensor, keys: Sequence[Any]) -> None:
        self.flat = flat
        self.kind = keys[0].optimizer
        if self.kind not in OPTIMIZERS:
            raise ValueError(f"no fused step for optimizer '{self.kind}'")
        self.lr = [k.lr for k in keys]
        self.weight_decay = [k.weight_decay for k in keys]
        self.momentum = [k.momentum for k in keys]
        self.steps = 0
        self.state: Moments = {}
        self._tensors: dict[tuple[Any, ...], torch.Tensor] = {}

    def get_state(self) -> dict[str, Any]:
        return {"steps": self.steps, "state": self.state}

    def set_state(self, state: dict[str, Any]) -> None:
        self.steps = int(state["steps"])
        self.state = {k: v.to(self.flat.device).clone() for k, v in state["state"].items()}

    def per_member(
        self, values: Sequence[float], like: torch.Tensor, dtype: torch.dtype | None = None
    ) -> torch.Tensor:
        """`values` (one per member) shaped to scale each member's slice of `like` (in `dtype`,
        or `like`'s); made once for each set of values, so these must not change step by step."""
        dtype = like.dtype if dtype is None else dtype
        key = (tuple(values), like.dim(), dtype, like.device)
        if key not in self._tensors:
            shape = (len(values),) + (1,) * (like.dim() - 1)
            tensor = torch.tensor(values, dtype=dtype, device=like.device)
            self._tensors[key] = tensor.view(shape)
        return self._tensors[key]

    @torch.no_grad()
    def step(self, grad: torch.Tensor) -> None:
        """One step of every member, `grad` laid out as the weights are."""
        self.steps += 1
        OPTIMIZERS[self.kind].step(self, self.flat, grad, self.state)


@register("adam", lambda params, k: torch.optim.Adam(params, lr=k.lr, weight_decay=k.weight_decay))
def _adam(opt: StackedOptimizer, param: torch.Tensor, grad: torch.Tensor, state: Moments) -> None:
    """torch's Adam: weight decay added to the gradient (none where no member decays)."""
    if any(opt.weight_decay):
        grad = grad + param * opt.per_member(opt.weight_decay, param)
    _adam_moments(opt, param, grad, state)


@register(
    "adamw", lambda params, k: torch.optim.AdamW(params, lr=k.lr, weight_decay=k.weight_decay)
)
def _adamw(opt: StackedOptimizer, param: torch.Tensor, grad: torch.Tensor, state: Moments) -> None:
    """torch's AdamW: the weights decay first, apart from the gradient."""
    if any(opt.weight_decay):
        decay = [1 - lr * wd for lr, wd in zip(opt.lr, opt.weight_decay, strict=True)]
        param.mul_(opt.per_member(decay, param))
    _adam_moments(opt, param, grad, state)


@register(
    "sgd",
    lambda params, k: torch.optim.SGD(
        params, lr=k.lr, momentum=k.momentum, weight_decay=k.weight_decay
    ),
)
def _sgd(opt: StackedOptimizer, param: torch.Tensor, grad: torch.Tensor, state: Moments) -> None:
    """torch's SGD: weight decay added to the gradient, a momentum buffer where any member has
    momentum (a member without: its buffer is its gradient)."""
    if any(opt.weight_decay):
        grad = grad + param * opt.per_member(opt.weight_decay, param)
    if not any(opt.momentum):
        param.add_(opt.per_member([-lr for lr in opt.lr], param) * grad)
        return
    if "buffer" not in state:
        state["buffer"] = grad.clone()
    else:
        state["buffer"].mul_(opt.per_member(opt.momentum, param)).add_(grad)
    param.add_(opt.per_member([-lr for lr in opt.lr], param) * state["buffer"])


def _adam_moments(
    opt: StackedOptimizer, param: torch.Tensor, grad: torch.Tensor, state: Moments
) -> None:
    beta1, beta2 = ADAM_BETAS
    if not state:
        state["exp_avg"] = torch.zeros_like(param)
        state["exp_avg_sq"] = torch.zeros_like(param)
    exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
    exp_avg.lerp_(grad, 1 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    bias_correction1 = 1 - beta1**opt.steps
    bias_correction2_sqrt = (1 - beta2**opt.steps) ** 0.5
    # torch's `param.addcdiv_(exp_avg, denom, value=-step_size)`, each member's step size its
    # own: -lr / bias_correction1 in double, then in the weights' dtype, as torch's scalar is.
    lr = opt.per_member(opt.lr, param, torch.float64)
    step_size = (-lr / bias_correction1).to(param.dtype)
    denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(ADAM_EPS)
    param.addcmul_(exp_avg / denom, step_size)
