"""A dense model's forward over the stacked weights of a pack, without `vmap`.

For the layers an MLP is made of, running every member at once is plain batched arithmetic:
a linear layer is one `baddbmm` over the members' weights, an activation or a dropout mask acts
element by element, a batchnorm is one `batch_norm` over every member's features side by side.
Written out, forward and backward cost about half of what `vmap` adds around the same products.
Models with any other layer (convolutions) go through `vmap` (:mod:`hypertune.train.fused`).

Members of different width and depth (:mod:`.padding`) run as the pack's widest and
deepest member; each reads its output at its own last block (:func:`forward_padded`).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from hypertune.models.dense import DenseBlock
from hypertune.models.registry import ACTIVATIONS
from hypertune.train.fused.dropout import Noise

# The activations' classes: each acts element by element, whatever the shape.
ELEMENTWISE: tuple[type[nn.Module], ...] = tuple(
    cls for cls in ACTIVATIONS.values() if isinstance(cls, type)
)


def supported(model: nn.Module) -> bool:
    """Whether every layer of `model` is one :func:`forward` runs."""
    plain = (
        nn.Sequential,
        nn.Flatten,
        nn.Linear,
        nn.BatchNorm1d,
        nn.Identity,
        Noise,
        DenseBlock,
        *ELEMENTWISE,
    )
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
    if isinstance(model, nn.BatchNorm1d):
        return batch_norm(model, tensors, x, prefix)
    if isinstance(model, Noise):
        return x * tensors[f"{prefix}noise"] if model.training else x
    if isinstance(model, (nn.Identity, *ELEMENTWISE)):
        return model(x)
    raise TypeError(f"no stacked forward for {type(model).__name__}")


def forward_padded(
    model: nn.Sequential,
    tensors: Mapping[str, torch.Tensor],
    x: torch.Tensor,
    depth: torch.Tensor,
    residual: torch.Tensor,
) -> torch.Tensor:
    """An MLP template (flatten, dense blocks, head) over members of different width and depth.

    `depth` `[members]`: each member's own number of blocks (at least one); `residual`
    `[blocks, members]`: 1 where that member's block adds its input (its widths there agree),
    else 0. The head reads each member's output of its own last block.
    """
    children = list(model.named_children())
    x = forward(children[0][1], tensors, x, f"{children[0][0]}.")
    outputs = []
    for number, (name, block) in enumerate(children[1:-1]):
        if not isinstance(block, DenseBlock):
            raise TypeError(f"no padded forward for {type(block).__name__}")
        out = forward(block.body, tensors, x, f"{name}.body.")
        if bool(residual[number].any()):
            skip = (
                nn.functional.pad(x, (0, out.shape[-1] - x.shape[-1]))
                if x.shape[-1] < out.shape[-1]
                else x
            )
            out = out + skip * residual[number].view(-1, 1, 1).to(out.dtype)
        outputs.append(out)
        x = out
    members = torch.arange(x.shape[0], device=x.device)
    last = torch.stack(outputs)[depth.to(x.device) - 1, members]
    head_name, head = children[-1]
    return forward(head, tensors, last, f"{head_name}.")


def batch_norm(
    model: nn.BatchNorm1d, tensors: Mapping[str, torch.Tensor], x: torch.Tensor, prefix: str
) -> torch.Tensor:
    """Every member's features side by side in one `batch_norm`: `[members, batch, width]`."""
    members, batch, width = x.shape
    side = x.transpose(0, 1).reshape(batch, members * width)
    running_mean = tensors[f"{prefix}running_mean"]
    running_var = tensors[f"{prefix}running_var"]
    if model.training:
        tensors[f"{prefix}num_batches_tracked"].add_(1)
    out = nn.functional.batch_norm(
        side,
        running_mean.view(-1),
        running_var.view(-1),
        tensors[f"{prefix}weight"].reshape(-1),
        tensors[f"{prefix}bias"].reshape(-1),
        model.training,
        0.1 if model.momentum is None else model.momentum,
        model.eps,
    )
    return out.view(batch, members, width).transpose(0, 1)
