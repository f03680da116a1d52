"""A user's own model: `[model] architecture = "mynet:build"`.

The builder is called as ``build(input_shape=..., num_classes=..., **keys)`` and returns a
``torch.nn.Module``. Its signature is its schema, as for the built-in models: each keyword
parameter (other than `input_shape` and `num_classes`) is a key that `[model]` and `[space]` may
set, its default the value used when neither does; a parameter without a default must be set.
Trainer keys (`lr`, `batch_size`, ...) stay the trainer's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hypertune.errors import ConfigError
from hypertune.models.registry import WHERE, Architecture, describe, register_architecture
from hypertune.usercode import CodeRecord, load, load_recorded


class UserBuilder:
    """Calls a user's builder and turns what goes wrong into an error naming the values."""

    def __init__(self, reference: str, build: Callable[..., Any]):
        self.reference = reference
        self.build = build

    def __call__(self, input_shape: tuple[int, ...], num_classes: int, **kwargs: Any) -> nn.Module:
        try:
            model = self.build(input_shape=tuple(input_shape), num_classes=num_classes, **kwargs)
        except ConfigError:
            raise
        except Exception as exc:
            if torch.get_default_device().type == "meta":
                # A builder may compute on real tensors (a dummy forward pass, .item()): build
                # it for real when the meta device cannot.
                with torch.device("cpu"):
                    return self(input_shape, num_classes, **kwargs)
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


def user_architecture(reference: str, build: Callable[..., Any]) -> Architecture:
    """The architecture a user's builder's signature defines, its errors named (see
    :func:`hypertune.models.registry.describe`)."""
    return dataclasses.replace(describe(reference, build), build=UserBuilder(reference, build))


def use_model(reference: str, search_dir: str | Path | None = None) -> CodeRecord:
    """Import the builder `reference` names and register it under that name.

    Raises:
        ConfigError: the reference is broken (see :func:`hypertune.usercode.load`) or the
            builder's signature cannot serve as a schema (see :func:`user_architecture`).
    """
    build, record = load(reference, WHERE, search_dir)
    register_architecture(user_architecture(record.reference, build))
    return record


def use_recorded_model(record: Mapping[str, Any]) -> CodeRecord:
    """Register the builder a study.json record names, refusing a changed file."""
    build, found = load_recorded(record, WHERE)
    register_architecture(user_architecture(found.reference, build))
    return found
