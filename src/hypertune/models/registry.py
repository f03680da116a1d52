"""The architecture registry: `register_model`, `resolve_config`, `create_model`.

Each architecture registers a builder and its defaults (every key it reads, with its default
value). A config may hold trainer keys too (`TRAINER_KEYS`); any other unknown key is an error that
lists the valid ones, so a typo in a study file never silently trains the default.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

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
    required: tuple[str, ...] = ()  # keys without a default (a user's builder may have them)
    any_key: bool = False  # the builder takes **kwargs: every key is passed on


_REGISTRY: dict[str, Architecture] = {}


def register_model(name: str, defaults: Mapping[str, Any]) -> Callable[[Builder], Builder]:
    """Decorator: make `builder` available to `create_model` as `name`."""

    def add(builder: Builder) -> Builder:
        _REGISTRY[name] = Architecture(
            name, builder, dict(defaults), (builder.__doc__ or "").strip()
        )
        return builder

    return add


def register_architecture(arch: Architecture) -> None:
    """Make `arch` available to `create_model` under `arch.name` (replacing one of that name)."""
    _REGISTRY[arch.name] = arch


def architectures() -> dict[str, Architecture]:
    """The registered architectures by name."""
    return dict(_REGISTRY)


def resolve_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The architecture's defaults overlaid with `config`, after checking every key and type."""
    name = config.get("architecture", "mlp")
    if name not in _REGISTRY and isinstance(name, str) and ":" in name:
        from hypertune.models.user import use_model  # a user's builder, from the Python path

        use_model(name)
    if name not in _REGISTRY:
        known = ", ".join(n for n in _REGISTRY if ":" not in n)
        raise ConfigError(
            f"model.architecture: '{name}' is unknown; known: {known}, or module:callable "
            "for your own builder"
        )
    arch = _REGISTRY[name]
    resolved: dict[str, Any] = {"architecture": name, **arch.defaults}
    for key in arch.required:
        if key not in config:
            raise ConfigError(
                f"model.{key}: '{name}' needs it (it has no default); set it in [model] or [space]"
            )
    for key, value in config.items():
        if key == "architecture" or key in TRAINER_KEYS:
            continue
        if key in arch.required or (arch.any_key and key not in arch.defaults):
            resolved[key] = value
            continue
        if key not in arch.defaults:
            known = ", ".join(sorted([*arch.defaults, *arch.required]))
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
    if default is None or not isinstance(default, bool | int | float | str):
        return value  # no type to check against (e.g. a user's `norm=None`)
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


def activation(name: str) -> nn.Module:
    """A fresh activation module by name."""
    if name not in ACTIVATIONS:
        raise ConfigError(f"model.activation: '{name}' is unknown; known: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def require(condition: bool, message: str) -> None:
    """Raise ConfigError(message) unless `condition` holds (asserts vanish under -O)."""
    if not condition:
        raise ConfigError(message)


def check_dropout(cfg: Mapping[str, Any]) -> None:
    """Dropout must be a probability below 1."""
    require(
        0.0 <= cfg["dropout"] < 1.0, f"model.dropout: expected 0 <= p < 1, got {cfg['dropout']}"
    )


def check_choice(cfg: Mapping[str, Any], key: str, choices: Sequence[str]) -> None:
    """`cfg[key]` must be one of `choices`; the error lists them."""
    require(
        cfg[key] in choices,
        f"model.{key}: '{cfg[key]}' is unknown; choose one of {', '.join(choices)}",
    )
