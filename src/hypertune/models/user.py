"""A user's own model: `[model] architecture = "mynet:build"`.

The builder is called as ``build(input_shape=..., num_classes=..., **keys)`` and returns a
``torch.nn.Module``. Its signature is its schema: each keyword parameter (other than
`input_shape` and `num_classes`) is a key that `[model]` and `[space]` may set, its default the
value used when neither does; a parameter without a default must be set. Trainer keys (`lr`,
`batch_size`, ...) stay the trainer's.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hypertune.errors import ConfigError
from hypertune.models.registry import TRAINER_KEYS, Architecture, register_architecture
from hypertune.usercode import CodeRecord, load, load_recorded

SHAPE_KEYS = ("input_shape", "num_classes")
WHERE = "model.architecture"


class UserBuilder:
    """Calls a user's builder with the keys it declares and checks what it returns."""

    def __init__(self, reference: str, build: Callable[..., Any], keys: tuple[str, ...] | None):
        self.reference = reference
        self.build = build
        self.keys = keys  # None: the builder takes **kwargs, every key goes to it

    def __call__(
        self, cfg: Mapping[str, Any], input_shape: tuple[int, ...], num_classes: int
    ) -> nn.Module:
        skip = {"architecture", *TRAINER_KEYS}
        keys = self.keys if self.keys is not None else [k for k in cfg if k not in skip]
        kwargs = {key: cfg[key] for key in keys if key in cfg}
        try:
            model = self.build(input_shape=tuple(input_shape), num_classes=num_classes, **kwargs)
        except ConfigError:
            raise
        except Exception as exc:
            if torch.get_default_device().type == "meta":
                # A builder may compute on real tensors (a dummy forward pass, .item()): build
                # it for real when the meta device cannot.
                with torch.device("cpu"):
                    return self(cfg, input_shape, num_classes)
            chosen = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
            detail = str(exc).strip().splitlines()
            reason = f"{type(exc).__name__}: {detail[0]}" if detail else type(exc).__name__
            raise ConfigError(
                f"{WHERE}: '{self.reference}' raised {reason} (with input_shape="
                f"{tuple(input_shape)}, num_classes={num_classes}{', ' if chosen else ''}{chosen})"
            ) from exc
        if not isinstance(model, nn.Module):
            raise ConfigError(
                f"{WHERE}: '{self.reference}' returned a {type(model).__name__}; it must return "
                "a torch.nn.Module"
            )
        return model


def describe(reference: str, build: Callable[..., Any]) -> Architecture:
    """The architecture a builder's signature defines (keys, defaults, required keys).

    Raises:
        ConfigError: it cannot take input_shape and num_classes as keywords, has
            positional-only parameters, or uses a trainer key's name.
    """
    try:
        params = inspect.signature(build).parameters
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{WHERE}: '{reference}' has no signature to read ({exc})") from exc
    any_key = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    missing = [k for k in SHAPE_KEYS if k not in params and not any_key]
    if missing:
        raise ConfigError(
            f"{WHERE}: '{reference}' must take {' and '.join(missing)} as keyword "
            "parameters; it is called as build(input_shape=..., num_classes=..., **keys)"
        )
    keyed = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    defaults: dict[str, Any] = {}
    required: list[str] = []
    for name, param in params.items():
        if name in SHAPE_KEYS or param.kind is inspect.Parameter.VAR_KEYWORD:
            continue
        if param.kind not in keyed:
            raise ConfigError(
                f"{WHERE}: '{reference}': parameter '{name}' cannot be passed by keyword"
            )
        if name in TRAINER_KEYS:
            raise ConfigError(
                f"{WHERE}: '{reference}': parameter '{name}' is a trainer key "
                f"({', '.join(sorted(TRAINER_KEYS))}); give it another name"
            )
        if param.default is inspect.Parameter.empty:
            required.append(name)
        else:
            defaults[name] = param.default
    keys = None if any_key else (*defaults, *required)
    return Architecture(
        name=reference,
        build=UserBuilder(reference, build, keys),
        defaults=defaults,
        doc=(inspect.getdoc(build) or "").strip(),
        required=tuple(required),
        any_key=any_key,
    )


def use_model(reference: str, search_dir: str | Path | None = None) -> CodeRecord:
    """Import the builder `reference` names and register it under that name.

    Raises:
        ConfigError: the reference is broken (see :func:`hypertune.usercode.load`) or the
            builder's signature cannot serve as a schema (see :func:`describe`).
    """
    build, record = load(reference, WHERE, search_dir)
    register_architecture(describe(record.reference, build))
    return record


def use_recorded_model(record: Mapping[str, Any]) -> CodeRecord:
    """Register the builder a study.json record names, refusing a changed file."""
    build, found = load_recorded(record, WHERE)
    register_architecture(describe(found.reference, build))
    return found
