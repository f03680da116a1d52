"""Multi-layer perceptrons: `mlp` (flatten, dense blocks, linear head)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from hypertune.models.registry import activation, check_dropout, register_model, require


class DenseBlock(nn.Module):
    """Linear -> (batchnorm) -> activation -> dropout, with an optional skip connection."""

    def __init__(self, width_in: int, width_out: int, cfg: Mapping[str, Any]) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Linear(width_in, width_out)]
        if cfg["batchnorm"]:
            layers.append(nn.BatchNorm1d(width_out))
        layers += [activation(cfg["activation"]), nn.Dropout(cfg["dropout"])]
        self.body = nn.Sequential(*layers)
        self.residual = bool(cfg.get("residual")) and width_in == width_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return x + out if self.residual else out


def dense_stack(width: int, cfg: Mapping[str, Any], num_classes: int) -> nn.Sequential:
    """`num_layers` dense blocks of `hidden_size` from `width` inputs, then a linear head."""
    require(cfg["hidden_size"] >= 1, f"model.hidden_size: expected >= 1, got {cfg['hidden_size']}")
    layers: list[nn.Module] = []
    for _ in range(cfg["num_layers"]):
        layers.append(DenseBlock(width, cfg["hidden_size"], cfg))
        width = cfg["hidden_size"]
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)


MLP_DEFAULTS = {
    "num_layers": 2,  # hidden layers (0: a linear model)
    "hidden_size": 64,  # units per hidden layer
    "dropout": 0.0,  # dropout after each hidden layer
    "batchnorm": False,  # BatchNorm1d after each hidden linear layer
    "activation": "relu",  # relu | gelu | tanh | silu | leaky_relu
    "residual": False,  # skip connections between equal-width hidden layers
}


@register_model("mlp", MLP_DEFAULTS)
def build_mlp(cfg: Mapping[str, Any], input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """Flatten, then `num_layers` dense blocks of `hidden_size`, then a linear head."""
    check_dropout(cfg)
    width = 1
    for size in input_shape:
        width *= size
    return nn.Sequential(nn.Flatten(), *dense_stack(width, cfg, num_classes))
