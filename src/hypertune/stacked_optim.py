"""The optimizer step of a fused pack: torch's own step, member by member.

Every member's weights are one row of one flat tensor. Each optimizer that `make_optimizer`
offers has a step here (:data:`STEPS`) whose arithmetic is torch's single-tensor step, element by
element in the same order, with the learning rate, weight decay and momentum taken per member.
A kind without a step is an error, never another optimizer's step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from hypertune.trial import OPTIMIZERS, State

ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8  # torch's defaults, as the lone trial uses them


class StackedOptimizer:
    """torch's Adam, AdamW or SGD step, member by member within stacked weights.

    The arithmetic is torch's single-tensor step, element by element in the same order; only
    the learning rate, weight decay and momentum come per member (one row each).
    """

    def __init__(self, flat: torch.Tensor, keys: Sequence[Any]) -> None:
        self.flat = flat
        self.kind = keys[0].optimizer
        if self.kind not in STEPS:
            raise ValueError(f"no fused step for optimizer '{self.kind}'")
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
        STEPS[self.kind](self, self.flat, grad, self.state)

    def sgd(self, param: torch.Tensor, grad: torch.Tensor, state: dict[str, torch.Tensor]) -> None:
        grad = grad + param * self._per_member(self.weight_decay, param)
        if "buffer" not in state:
            state["buffer"] = grad.clone()
        else:
            state["buffer"].mul_(self._per_member(self.momentum, param)).add_(grad)
        param.add_(self._per_member([-lr for lr in self.lr], param) * state["buffer"])

    def adam(self, param: torch.Tensor, grad: torch.Tensor, state: dict[str, torch.Tensor]) -> None:
        """torch's Adam: weight decay added to the gradient."""
        grad = grad + param * self._per_member(self.weight_decay, param)
        self._adam_moments(param, grad, state)

    def adamw(
        self, param: torch.Tensor, grad: torch.Tensor, state: dict[str, torch.Tensor]
    ) -> None:
        """torch's AdamW: the weights decay first, apart from the gradient."""
        decay = [1 - lr * wd for lr, wd in zip(self.lr, self.weight_decay, strict=True)]
        param.mul_(self._per_member(decay, param))
        self._adam_moments(param, grad, state)

    def _adam_moments(
        self, param: torch.Tensor, grad: torch.Tensor, state: dict[str, torch.Tensor]
    ) -> None:
        beta1, beta2 = ADAM_BETAS
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


Step = Callable[[StackedOptimizer, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]], None]
# The fused step of each optimizer kind (`hypertune.trial.OPTIMIZERS`).
STEPS: dict[str, Step] = {
    "adam": StackedOptimizer.adam,
    "adamw": StackedOptimizer.adamw,
    "sgd": StackedOptimizer.sgd,
}
if set(STEPS) != set(OPTIMIZERS):  # an optimizer added without its fused step
    raise ImportError(f"fused steps {sorted(STEPS)} do not match the optimizers {OPTIMIZERS}")
