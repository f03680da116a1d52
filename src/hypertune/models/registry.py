"""The architecture registry: `register_model`, `resolve_config`, `create_model`.

A builder's signature is its schema (as in timm's `@register_model`): it is called as
``build(input_shape=..., num_classes=..., **keys)``, and each other keyword parameter is a key
that `[model]` and `[space]` may set, its default the value used when neither does and its
annotation (or its default's type) the type a value must have. Built-in and user builders are
read the same way (:func:`describe`). A config may hold trainer keys too (`TRAINER_KEYS`); any
other unknown key is an error that lists the valid ones, so a typo in a study file never silently
trains the default.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from torch import nn

from hypertune.errors import ConfigError


@dataclass(frozen=True)
class TrainerKeys:
    """Keys the training loop reads, not a model; allowed beside model keys in one config."""

    optimizer: str = "adam"  # one of hypertune.train.optim.OPTIMIZERS (adam, adamw, sgd)
    lr: float = 1e-3  # learning rate
    weight_decay: float = 0.0  # L2 penalty (decoupled for adamw)
    momentum: float = 0.9  # sgd only
    batch_size: int = 32  # examples per step


TRAINER_KEYS: dict[str, Any] = {f.name: f.default for f in dataclasses.fields(TrainerKeys)}
TRAINER_TYPES: dict[str, type] = {f.name: type(f.default) for f in dataclasses.fields(TrainerKeys)}

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "silu": nn.SiLU,
    "leaky_relu": nn.LeakyReLU,
}

SHAPE_KEYS = ("input_shape", "num_classes")
WHERE = "model.architecture"
_SCALARS: dict[str, type] = {"bool": bool, "int": int, "float": float, "str": str}


@dataclass(frozen=True)
class Architecture:
    """A registered architecture: its builder and the keys its signature declares."""

    name: str
    build: Callable[..., nn.Module]  # build(input_shape=..., num_classes=..., **keys)
    defaults: Mapping[str, Any]
    types: Mapping[str, type] = dataclasses.field(default_factory=dict)  # checked on resolve
    required: tuple[str, ...] = ()  # keys without a default (a user's builder may have them)
    any_key: bool = False  # the builder takes **kwargs: every key is passed on

    def create(
        self, cfg: Mapping[str, Any], input_shape: tuple[int, ...], num_classes: int
    ) -> nn.Module:
        """Call the builder with the shape and the keys it takes from a resolved `cfg`."""
        skip = {"architecture", *TRAINER_KEYS}
        keys = (
            [k for k in cfg if k not in skip] if self.any_key else [*self.defaults, *self.required]
        )
        kwargs = {key: cfg[key] for key in keys if key in cfg}
        return self.build(input_shape=tuple(input_shape), num_classes=num_classes, **kwargs)


_REGISTRY: dict[str, Architecture] = {}


def describe(name: str, build: Callable[..., Any]) -> Architecture:
    """The architecture a builder's signature defines (keys, defaults, types, required keys).

    Raises:
        ConfigError: it cannot take input_shape and num_classes as keywords, has
            positional-only parameters, or uses a trainer key's name.
    """
    try:
        signature = inspect.signature(build)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{WHERE}: '{name}' has no signature to read ({exc})") from exc
    params = signature.parameters
    any_key = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    missing = [k for k in SHAPE_KEYS if k not in params and not any_key]
    if missing:
        raise ConfigError(
            f"{WHERE}: '{name}' must take {' and '.join(missing)} as keyword "
            "parameters; it is called as build(input_shape=..., num_classes=..., **keys)"
        )
    keyed = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    defaults: dict[str, Any] = {}
    types: dict[str, type] = {}
    required: list[str] = []
    for key, param in params.items():
        if key in SHAPE_KEYS or param.kind is inspect.Parameter.VAR_KEYWORD:
            continue
        if param.kind not in keyed:
            raise ConfigError(f"{WHERE}: '{name}': parameter '{key}' cannot be passed by keyword")
        if key in TRAINER_KEYS:
            raise ConfigError(
                f"{WHERE}: '{name}': parameter '{key}' is a trainer key "
                f"({', '.join(sorted(TRAINER_KEYS))}); give it another name"
            )
        if param.default is inspect.Parameter.empty:
            required.append(key)
        else:
            defaults[key] = param.default
        kind = _scalar_type(param)
        if kind is not None:
            types[key] = kind
    return Architecture(name, build, defaults, types, tuple(required), any_key)


def _scalar_type(param: inspect.Parameter) -> type | None:
    """bool, int, float or str from the annotation (a name, as postponed annotations are), or
    else from the default; None where neither names one (such a key is passed on unchecked)."""
    annotation = param.annotation
    if isinstance(annotation, str):
        return _SCALARS.get(annotation)
    if annotation in _SCALARS.values():
        return annotation
    if annotation is inspect.Parameter.empty and type(param.default) in _SCALARS.values():
        return type(param.default)
    return None


def register_model(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator: make `builder` available to `create_model` as `name`; its signature is the
    architecture's schema (see :func:`describe`)."""

    def add(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        _REGISTRY[name] = describe(name, builder)
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
        resolved[key] = _coerce(key, value, arch.types.get(key))
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
    return _REGISTRY[resolved["architecture"]].create(resolved, tuple(input_shape), num_classes)


def _coerce(key: str, value: Any, kind: type | None) -> Any:
    """Check `value` against the key's type (ints pass for floats; whole floats for ints)."""
    if kind is None:
        return value  # no type to check against (e.g. a user's `norm=None`)
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"model.{key}: expected true or false, got {value!r}")
        return value
    if kind is int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"model.{key}: expected a whole number >= 0, got {value!r}")
        return value
    if kind is float:
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


def check_dropout(dropout: float) -> None:
    """Dropout must be a probability below 1."""
    require(0.0 <= dropout < 1.0, f"model.dropout: expected 0 <= p < 1, got {dropout}")


def check_choice(key: str, value: str, choices: Sequence[str]) -> None:
    """`value` of `key` must be one of `choices`; the error lists them."""
    require(
        value in choices, f"model.{key}: '{value}' is unknown; choose one of {', '.join(choices)}"
    )


def count_parameters(model: nn.Module) -> int:
    """The model's weights; a lazy module's (`nn.LazyLinear`) count 0 until a batch shaped
    them."""
    from torch.nn.parameter import is_lazy

    return sum(p.numel() for p in model.parameters() if not is_lazy(p))
