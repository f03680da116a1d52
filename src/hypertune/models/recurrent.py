"""Sequence classifiers: `gru` and `lstm` (packed, so padding never changes a result), and
mltrainer's own course models (`mltrainer_gru`, `mltrainer_mlp`) under the same factory.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from hypertune.models.dense import flat_width
from hypertune.models.registry import check_choice, check_dropout, register_model, require

NORMS = ("none", "batchnorm", "layernorm")

SequenceInput = torch.Tensor | tuple[torch.Tensor, torch.Tensor]


def _split(x: SequenceInput, lengths: torch.Tensor | None) -> tuple[torch.Tensor, Any]:
    """Accept `(x, lengths)` as one argument too: mltrainer's Trainer calls `model(x)` only."""
    if isinstance(x, tuple):
        return x[0], x[1]
    return x, lengths


def _check_sequence(name: str, input_shape: tuple[int, ...]) -> None:
    require(
        len(input_shape) == 2,
        f"input_shape: {name} needs (steps, features) sequences, got {input_shape}; "
        'use data = "digits-seq" or "gestures"',
    )


class SequenceClassifier(nn.Module):
    """GRU or LSTM over (batch, steps, features); the last valid step feeds a linear head.

    With `lengths`, sequences are packed, so padding after a sequence's end does not change its
    output.
    """

    def __init__(
        self,
        cell: str,
        input_shape: tuple[int, ...],
        num_classes: int,
        *,
        num_layers: int,
        hidden_size: int,
        dropout: float,
        bidirectional: bool,
        norm: str,
    ) -> None:
        super().__init__()
        _check_sequence(cell, input_shape)
        require(num_layers >= 1, f"model.num_layers: {cell} needs at least 1 layer")
        require(hidden_size >= 1, "model.hidden_size: expected >= 1")
        check_dropout(dropout)
        check_choice("norm", norm, NORMS)
        rnn_class = nn.GRU if cell == "gru" else nn.LSTM
        self.rnn = rnn_class(
            input_size=input_shape[1],
            hidden_size=hidden_size,
            num_layers=num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
            bidirectional=bidirectional,
        )
        width = hidden_size * (2 if bidirectional else 1)
        norm_layer: nn.Module = nn.Identity()
        if norm == "batchnorm":
            norm_layer = nn.BatchNorm1d(width)
        elif norm == "layernorm":
            norm_layer = nn.LayerNorm(width)
        self.norm = norm_layer
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(width, num_classes))
        self.directions = 2 if bidirectional else 1

    def forward(self, x: SequenceInput, lengths: torch.Tensor | None = None) -> torch.Tensor:
        x, lengths = _split(x, lengths)
        packed: torch.Tensor | nn.utils.rnn.PackedSequence = x
        if lengths is not None:
            packed = nn.utils.rnn.pack_padded_sequence(
                x, lengths.cpu(), batch_first=True, enforce_sorted=False
            )
        _, hidden = self.rnn(packed)
        if isinstance(hidden, tuple):  # LSTM: (h_n, c_n)
            hidden = hidden[0]
        last = hidden[-self.directions :]  # the top layer, each direction
        features = torch.cat(list(last), dim=-1)
        return self.head(self.norm(features))


def _sequence_builder(cell: str) -> Callable[..., nn.Module]:
    """The builder of `cell` (gru | lstm): both read the same keys."""

    def build(
        input_shape: tuple[int, ...],
        num_classes: int,
        num_layers: int = 1,  # stacked recurrent layers
        hidden_size: int = 64,  # units per recurrent layer (per direction)
        dropout: float = 0.0,  # between recurrent layers and before the head
        bidirectional: bool = False,  # read the sequence both ways
        norm: str = "none",  # none | batchnorm | layernorm on the head's input
    ) -> nn.Module:
        return SequenceClassifier(
            cell,
            input_shape,
            num_classes,
            num_layers=num_layers,
            hidden_size=hidden_size,
            dropout=dropout,
            bidirectional=bidirectional,
            norm=norm,
        )

    build.__doc__ = f"A {cell.upper()} sequence classifier (see SequenceClassifier)."
    return build


build_gru = register_model("gru")(_sequence_builder("gru"))
build_lstm = register_model("lstm")(_sequence_builder("lstm"))


class IgnoresLengths(nn.Module):
    """Wraps a model that reads padded batches whole (mltrainer's course models).

    Such a model reads the padding too: its output for a sequence depends on the batch's
    padded length, as in the course's gestures notebooks.
    """

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: SequenceInput, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.inner(_split(x, lengths)[0])


@register_model("mltrainer_gru")
def build_mltrainer_gru(
    input_shape: tuple[int, ...],
    num_classes: int,
    num_layers: int = 1,  # stacked GRU layers
    hidden_size: int = 64,  # GRU units
    dropout: float = 0.0,  # between GRU layers
) -> nn.Module:
    """mltrainer's `rnn_models.GRUmodel` (last step of a padded batch feeds a linear head)."""
    from mltrainer.rnn_models import GRUmodel, ModelConfig  # torch only; no mlflow

    _check_sequence("mltrainer_gru", input_shape)
    require(num_layers >= 1, "model.num_layers: mltrainer_gru needs at least 1 layer")
    require(hidden_size >= 1, "model.hidden_size: expected >= 1")
    check_dropout(dropout)
    config = ModelConfig(
        input_size=input_shape[1],
        hidden_size=hidden_size,
        num_layers=num_layers,
        output_size=num_classes,
        dropout=dropout if num_layers > 1 else 0.0,
    )
    return IgnoresLengths(GRUmodel(config))


@register_model("mltrainer_mlp")
def build_mltrainer_mlp(
    input_shape: tuple[int, ...],
    num_classes: int,
    units1: int = 64,  # units of the first hidden layer
    units2: int = 32,  # units of the second hidden layer
) -> nn.Module:
    """mltrainer's `imagemodels.NeuralNetwork` (flatten, two ReLU layers, linear head)."""
    from mltrainer.imagemodels import NeuralNetwork  # torch only; no mlflow

    require(units1 >= 1, "model.units1: expected >= 1")
    require(units2 >= 1, "model.units2: expected >= 1")
    return NeuralNetwork(flat_width(input_shape), num_classes, units1, units2)
