"""Convolutional networks: `cnn` with plain, residual, squeeze-excite or inception blocks.

Convolutions keep the spatial size ("same" padding); each block's pooling halves it. Shapes are
computed arithmetically at construction, so a configuration with more pooling than the image
allows is refused before any tensor exists (the search builds every model on the meta device).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from hypertune.models.dense import dense_stack
from hypertune.models.registry import (
    activation,
    check_choice,
    check_dropout,
    register_model,
    require,
)

BLOCKS = ("plain", "residual", "squeeze_excite", "inception")
POOLS = ("max", "avg", "none")


@dataclass(frozen=True)
class Conv:
    """What every convolution of one network shares."""

    filters: int  # output channels of every block
    kernel_size: int
    batchnorm: bool
    activation: str


def _conv(channels_in: int, channels_out: int, kernel: int, conv: Conv) -> nn.Module:
    """Conv ("same" padding) -> (batchnorm) -> activation."""
    layers: list[nn.Module] = [
        nn.Conv2d(channels_in, channels_out, kernel, padding="same", bias=not conv.batchnorm)
    ]
    if conv.batchnorm:
        layers.append(nn.BatchNorm2d(channels_out))
    layers.append(activation(conv.activation))
    return nn.Sequential(*layers)


class ResidualBlock(nn.Module):
    """Two convolutions with a skip connection (a 1x1 projection where channels change)."""

    def __init__(self, channels_in: int, conv: Conv) -> None:
        super().__init__()
        filters, kernel = conv.filters, conv.kernel_size
        second: list[nn.Module] = [
            nn.Conv2d(filters, filters, kernel, padding="same", bias=not conv.batchnorm)
        ]
        if conv.batchnorm:
            second.append(nn.BatchNorm2d(filters))
        self.body = nn.Sequential(_conv(channels_in, filters, kernel, conv), *second)
        self.skip = nn.Identity() if channels_in == filters else nn.Conv2d(channels_in, filters, 1)
        self.out = activation(conv.activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(x) + self.skip(x))


class SqueezeExciteBlock(nn.Module):
    """A convolution whose channels are reweighted by a squeeze-and-excitation gate."""

    def __init__(self, channels_in: int, conv: Conv) -> None:
        super().__init__()
        filters = conv.filters
        squeezed = max(1, filters // 4)
        self.conv = _conv(channels_in, filters, conv.kernel_size, conv)
        self.gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(filters, squeezed),
            nn.ReLU(),
            nn.Linear(squeezed, filters),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        return out * self.gate(out)[:, :, None, None]


class InceptionBlock(nn.Module):
    """Parallel 1x1, kxk, (2k-1)x(2k-1) and pool-projection branches, concatenated."""

    def __init__(self, channels_in: int, conv: Conv) -> None:
        super().__init__()
        filters, kernel = conv.filters, conv.kernel_size
        require(filters >= 4, f"model.filters: inception blocks need >= 4 filters, got {filters}")
        widths = [filters // 4] * 4
        widths[0] += filters - sum(widths)  # the remainder goes to the 1x1 branch
        self.branches = nn.ModuleList(
            [
                _conv(channels_in, widths[0], 1, conv),
                _conv(channels_in, widths[1], kernel, conv),
                _conv(channels_in, widths[2], 2 * kernel - 1, conv),
                nn.Sequential(
                    nn.MaxPool2d(3, stride=1, padding=1), _conv(channels_in, widths[3], 1, conv)
                ),
            ]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self.branches], dim=1)


def _block(channels_in: int, block: str, conv: Conv) -> nn.Module:
    if block == "residual":
        return ResidualBlock(channels_in, conv)
    if block == "squeeze_excite":
        return SqueezeExciteBlock(channels_in, conv)
    if block == "inception":
        return InceptionBlock(channels_in, conv)
    return _conv(channels_in, conv.filters, conv.kernel_size, conv)


def _check_pooling(num_blocks: int, pool: str, input_shape: tuple[int, ...]) -> None:
    require(
        len(input_shape) == 3,
        f"input_shape: cnn needs (channels, height, width) images, got {input_shape}; "
        'use data = "digits" (1x8x8) or an image dataset',
    )
    require(num_blocks >= 1, "model.num_blocks: cnn needs at least 1 block")
    if pool != "none":
        height, width = input_shape[1:]
        most = 0
        while min(height, width) >= 2:
            height, width, most = height // 2, width // 2, most + 1
        require(
            num_blocks <= most,
            f"model.num_blocks: {num_blocks} blocks pool {input_shape[1]}x"
            f"{input_shape[2]} images below 1x1; at most {most} with pool = "
            f'"{pool}" (or pool = "none")',
        )


@register_model("cnn")
def build_cnn(
    input_shape: tuple[int, ...],
    num_classes: int,
    num_blocks: int = 2,  # convolution blocks, each followed by 2x2 pooling
    filters: int = 16,  # output channels of every block
    kernel_size: int = 3,  # convolution kernel (height = width)
    block: str = "plain",  # plain | residual | squeeze_excite | inception
    pool: str = "max",  # max | avg | none: 2x2 pooling after each block
    batchnorm: bool = False,  # BatchNorm after each convolution and hidden dense layer
    dropout: float = 0.0,  # after each block and each hidden dense layer
    activation: str = "relu",  # relu | gelu | tanh | silu | leaky_relu
    hidden_size: int = 64,  # units per hidden layer of the dense head
    num_layers: int = 1,  # hidden layers of the dense head (0: linear head)
) -> nn.Module:
    """`num_blocks` convolution blocks with pooling, then a dense head (see module doc)."""
    check_dropout(dropout)
    check_choice("block", block, BLOCKS)
    check_choice("pool", pool, POOLS)
    _check_pooling(num_blocks, pool, input_shape)
    require(filters >= 1, f"model.filters: expected >= 1, got {filters}")
    require(kernel_size >= 1, f"model.kernel_size: expected >= 1, got {kernel_size}")
    conv = Conv(filters, kernel_size, batchnorm, activation)
    channels, height, width = input_shape
    layers: list[nn.Module] = []
    for _ in range(num_blocks):
        layers.append(_block(channels, block, conv))
        channels = filters
        if pool != "none":
            layers.append(nn.MaxPool2d(2) if pool == "max" else nn.AvgPool2d(2))
            height, width = height // 2, width // 2
        # Kept at 0 as well (an identity), so that trials with and without dropout share a
        # shape and may train in one fused pack.
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Flatten())
    head = dense_stack(
        channels * height * width,
        num_classes,
        num_layers=num_layers,
        hidden_size=hidden_size,
        batchnorm=batchnorm,
        activation_name=activation,
        dropout=dropout,
    )
    return nn.Sequential(*layers, *head)
