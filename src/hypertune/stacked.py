"""A dense model's forward over the stacked weights of a pack, without `vmap`.

For the layers an MLP is made of, running every member at once is plain batched arithmetic:
a linear layer is one `baddbmm` over the members' weights, an activation or a dropout mask acts
element by element. Written out, forward and backward cost about half of what `vmap` adds
around the same products. Models with any other layer (batchnorm, convolutions) go through
`vmap` (:mod:`hypertune.fused`).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from hypertune.masks import Noise
from hypertune.models.dense import DenseBlock
from hypertune.models.registry import ACTIVATIONS

# The activations' classes: each acts element by element, whatever the shape.
ELEMENTWISE: tuple[type[nn.Module], ...] = tuple(
    cls for cls in ACTIVATIONS.values() if isinstance(cls, type)
)


def supported(model: nn.Module) -> bool:
    """Whether every layer of `model` is one :func:`forward` runs."""
    plain = (nn.Sequential, nn.Flatten, nn.Linear, nn.Identity, Noise, DenseBlock, *ELEMENTWISE)
    if not all(isinstance(m, plain) for m in model.modules()):
        return False
    return all(
        m.start_dim == 1 and m.end_dim == -1 for m in model.modules() if isinstance(m, nn.Flatten)
    )


def forward(
    model: nn.Module,
    tensors: Mapping[str, torch.Tensor],
    x: torch.Tensor,
    prefix: str = "",
) -> torch.Tensor:
    """`model` applied to `x` `[members, batch, ...]` with each member's weights and noise
    (`tensors`, stacked over members, by the names `model.named_parameters` gives)."""
    if isinstance(model, nn.Sequential):
        for name, child in model.named_children():
            x = forward(child, tensors, x, f"{prefix}{name}.")
        return x
    if isinstance(model, DenseBlock):
        out = forward(model.body, tensors, x, f"{prefix}body.")
        return x + out if model.residual else out
    if isinstance(model, nn.Flatten):
        return x.flatten(2)
    if isinstance(model, nn.Linear):
        weight = tensors[f"{prefix}weight"]
        bias = tensors.get(f"{prefix}bias")
        if bias is None:
            return torch.bmm(x, weight.transpose(1, 2))
        return torch.baddbmm(bias.unsqueeze(1), x, weight.transpose(1, 2))
    if isinstance(model, Noise):
        return x * tensors[f"{prefix}noise"] if model.training else x
    if isinstance(model, (nn.Identity, *ELEMENTWISE)):
        return model(x)
    raise TypeError(f"no stacked forward for {type(model).__name__}")
