"""Multi-layer perceptrons: `mlp` (flatten, dense blocks, linear head)."""

from __future__ import annotations

import math

import torch
from torch import nn

from hypertune.models.registry import activation, check_dropout, register_model, require


class DenseBlock(nn.Module):
    """Linear -> (batchnorm) -> activation -> dropout, with an optional skip connection."""

    def __init__(
        self,
        width_in: int,
        width_out: int,
        *,
        batchnorm: bool,
        activation_name: str,
        dropout: float,
        residual: bool = False,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Linear(width_in, width_out)]
        if batchnorm:
            layers.append(nn.BatchNorm1d(width_out))
        layers += [activation(activation_name), nn.Dropout(dropout)]
        self.body = nn.Sequential(*layers)
        self.residual = residual and width_in == width_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return x + out if self.residual else out


def dense_stack(
    width: int,
    num_classes: int,
    *,
    num_layers: int,
    hidden_size: int,
    batchnorm: bool,
    activation_name: str,
    dropout: float,
    residual: bool = False,
) -> nn.Sequential:
    """`num_layers` dense blocks of `hidden_size` from `width` inputs, then a linear head."""
    require(hidden_size >= 1, f"model.hidden_size: expected >= 1, got {hidden_size}")
    layers: list[nn.Module] = []
    for _ in range(num_layers):
        layers.append(
            DenseBlock(
                width,
                hidden_size,
                batchnorm=batchnorm,
                activation_name=activation_name,
                dropout=dropout,
                residual=residual,
            )
        )
        width = hidden_size
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)


def flat_width(input_shape: tuple[int, ...]) -> int:
    """Features of one example once flattened."""
    return math.prod(input_shape)


@register_model("mlp")
def build_mlp(
    input_shape: tuple[int, ...],
    num_classes: int,
    num_layers: int = 2,  # hidden layers (0: a linear model)
    hidden_size: int = 64,  # units per hidden layer
    dropout: float = 0.0,  # dropout after each hidden layer
    batchnorm: bool = False,  # BatchNorm1d after each hidden linear layer
    activation: str = "relu",  # relu | gelu | tanh | silu | leaky_relu
    residual: bool = False,  # skip connections between equal-width hidden layers
) -> nn.Module:
    """Flatten, then `num_layers` dense blocks of `hidden_size`, then a linear head."""
    check_dropout(dropout)
    head = dense_stack(
        flat_width(input_shape),
        num_classes,
        num_layers=num_layers,
        hidden_size=hidden_size,
        batchnorm=batchnorm,
        activation_name=activation,
        dropout=dropout,
        residual=residual,
    )
    return nn.Sequential(nn.Flatten(), *head)
