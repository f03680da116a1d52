"""Configurable models from plain values: `create_model(config, input_shape, num_classes)`.

Each architecture registers a builder and its defaults (every key it reads, with its default
value). A config may hold trainer keys too (`TRAINER_KEYS`); any other unknown key is an error that
lists the valid ones, so a typo in a study file never silently trains the default.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from hypertune.errors import ConfigError

# Read by the training loop, not by a model; allowed beside model keys in one config.
TRAINER_KEYS = {
    "lr": 1e-3,  # learning rate
    "optimizer": "adam",  # adam | adamw | sgd
    "weight_decay": 0.0,  # L2 penalty (decoupled for adamw)
    "momentum": 0.9,  # sgd only
    "batch_size": 32,  # examples per step
}

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "silu": nn.SiLU,
    "leaky_relu": nn.LeakyReLU,
}

Builder = Callable[[Mapping[str, Any], tuple[int, ...], int], nn.Module]


@dataclass(frozen=True)
class Architecture:
    """A registered architecture: how to build it and every key it reads, with defaults."""

    name: str
    build: Builder
    defaults: Mapping[str, Any]
    doc: str


_REGISTRY: dict[str, Architecture] = {}


def register_model(name: str, defaults: Mapping[str, Any]) -> Callable[[Builder], Builder]:
    """Decorator: make `builder` available to `create_model` as `name`."""

    def add(builder: Builder) -> Builder:
        _REGISTRY[name] = Architecture(
            name, builder, dict(defaults), (builder.__doc__ or "").strip()
        )
        return builder

    return add


def architectures() -> dict[str, Architecture]:
    """The registered architectures by name."""
    return dict(_REGISTRY)


def resolve_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The architecture's defaults overlaid with `config`, after checking every key and type."""
    name = config.get("architecture", "mlp")
    if name not in _REGISTRY:
        raise ConfigError(f"model.architecture: '{name}' is unknown; known: {', '.join(_REGISTRY)}")
    arch = _REGISTRY[name]
    resolved: dict[str, Any] = {"architecture": name, **arch.defaults}
    for key, value in config.items():
        if key == "architecture" or key in TRAINER_KEYS:
            continue
        if key not in arch.defaults:
            known = ", ".join(sorted(arch.defaults))
            raise ConfigError(f"model.{key}: unknown key for architecture '{name}'; known: {known}")
        resolved[key] = _coerce(key, value, arch.defaults[key])
    return resolved


def create_model(
    config: Mapping[str, Any], input_shape: tuple[int, ...], num_classes: int
) -> nn.Module:
    """Build the model `config["architecture"]` describes for inputs of `input_shape`.

    Args:
        config: architecture name plus any of its keys (missing keys take their defaults);
            trainer keys such as `lr` are allowed and ignored.
        input_shape: shape of one example, without the batch dimension.
        num_classes: width of the output logits.

    Raises:
        ConfigError: unknown architecture or key, a value of the wrong type, or a shape the
            architecture cannot take.
    """
    resolved = resolve_config(config)
    if num_classes < 1:
        raise ConfigError(f"num_classes: expected >= 1, got {num_classes}")
    return _REGISTRY[resolved["architecture"]].build(resolved, tuple(input_shape), num_classes)


def _coerce(key: str, value: Any, default: Any) -> Any:
    """Check `value` against the default's type (ints pass for floats; whole floats for ints)."""
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"model.{key}: expected true or false, got {value!r}")
        return value
    if isinstance(default, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"model.{key}: expected a whole number >= 0, got {value!r}")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"model.{key}: expected a number, got {value!r}")
        return float(value)
    if not isinstance(value, str):
        raise ConfigError(f"model.{key}: expected a string, got {value!r}")
    return value


def _activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ConfigError(f"model.activation: '{name}' is unknown; known: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


class DenseBlock(nn.Module):
    """Linear -> (batchnorm) -> activation -> dropout, with an optional skip connection."""

    def __init__(self, width_in: int, width_out: int, cfg: Mapping[str, Any]) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Linear(width_in, width_out)]
        if cfg["batchnorm"]:
            layers.append(nn.BatchNorm1d(width_out))
        layers += [_activation(cfg["activation"]), nn.Dropout(cfg["dropout"])]
        self.body = nn.Sequential(*layers)
        self.residual = bool(cfg.get("residual")) and width_in == width_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return x + out if self.residual else out


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
    _require(
        0.0 <= cfg["dropout"] < 1.0, f"model.dropout: expected 0 <= p < 1, got {cfg['dropout']}"
    )
    _require(cfg["hidden_size"] >= 1, "model.hidden_size: expected >= 1")
    width = 1
    for size in input_shape:
        width *= size
    layers: list[nn.Module] = [nn.Flatten()]
    for _ in range(cfg["num_layers"]):
        layers.append(DenseBlock(width, cfg["hidden_size"], cfg))
        width = cfg["hidden_size"]
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)


RNN_DEFAULTS = {
    "num_layers": 1,  # stacked recurrent layers
    "hidden_size": 64,  # units per recurrent layer (per direction)
    "dropout": 0.0,  # between recurrent layers and before the head
    "bidirectional": False,  # read the sequence both ways
    "norm": "none",  # none | batchnorm | layernorm on the head's input
}


class SequenceClassifier(nn.Module):
    """GRU or LSTM over (batch, steps, features); the last valid step feeds a linear head.

    With `lengths`, sequences are packed, so padding after a sequence's end does not change its
    output.
    """

    def __init__(
        self, cell: str, cfg: Mapping[str, Any], input_shape: tuple[int, ...], num_classes: int
    ) -> None:
        super().__init__()
        _require(
            len(input_shape) == 2,
            f"input_shape: {cell} needs (steps, features) sequences, got {input_shape}",
        )
        _require(cfg["num_layers"] >= 1, f"model.num_layers: {cell} needs at least 1 layer")
        _require(cfg["hidden_size"] >= 1, "model.hidden_size: expected >= 1")
        _require(
            0.0 <= cfg["dropout"] < 1.0, f"model.dropout: expected 0 <= p < 1, got {cfg['dropout']}"
        )
        rnn_class = nn.GRU if cell == "gru" else nn.LSTM
        self.rnn = rnn_class(
            input_size=input_shape[1],
            hidden_size=cfg["hidden_size"],
            num_layers=cfg["num_layers"],
            batch_first=True,
            dropout=cfg["dropout"] if cfg["num_layers"] > 1 else 0.0,
            bidirectional=cfg["bidirectional"],
        )
        width = cfg["hidden_size"] * (2 if cfg["bidirectional"] else 1)
        norms = {"none": nn.Identity, "batchnorm": nn.BatchNorm1d, "layernorm": nn.LayerNorm}
        _require(
            cfg["norm"] in norms,
            f"model.norm: '{cfg['norm']}' is unknown; known: {', '.join(norms)}",
        )
        self.norm = norms[cfg["norm"]](width) if cfg["norm"] != "none" else nn.Identity()
        self.head = nn.Sequential(nn.Dropout(cfg["dropout"]), nn.Linear(width, num_classes))
        self.directions = 2 if cfg["bidirectional"] else 1

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
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


@register_model("gru", RNN_DEFAULTS)
def build_gru(cfg: Mapping[str, Any], input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """A GRU sequence classifier (see SequenceClassifier)."""
    return SequenceClassifier("gru", cfg, input_shape, num_classes)


@register_model("lstm", RNN_DEFAULTS)
def build_lstm(cfg: Mapping[str, Any], input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """An LSTM sequence classifier (see SequenceClassifier)."""
    return SequenceClassifier("lstm", cfg, input_shape, num_classes)
