"""A user's own data: `[study] data = "mydata:load"`.

The loader is called with the `[data]` table's options as keywords and returns the train and
validation split, as NumPy arrays or torch tensors, in one of these forms:

- ``(x_train, y_train, x_valid, y_valid)``,
- a dict with those four keys, and optionally ``lengths_train``/``lengths_valid`` (true
  lengths of padded sequences), ``num_classes``, and a held-out test split ``x_test``/``y_test``
  (and ``lengths_test``) that no trial sees: only ``hypertune best`` evaluates on it,
- a :class:`~hypertune.data.DataBundle`.

Labels are class indices 0..C-1; the number of classes (unless given), the input shape and the
fingerprint are derived from the arrays.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hypertune.data.core import DataBundle, fingerprint
from hypertune.errors import DataError
from hypertune.usercode import CodeRecord, load, load_recorded

WHERE = "study.data"
PARTS = ("x_train", "y_train", "x_valid", "y_valid")
OPTIONAL = ("lengths_train", "lengths_valid", "x_test", "y_test", "lengths_test")


def use_data(
    reference: str, options: Mapping[str, Any], search_dir: str | Path | None = None
) -> tuple[DataBundle, CodeRecord]:
    """Call the loader `reference` names with `options`; its result as a DataBundle.

    Raises:
        ConfigError: the reference is broken.
        DataError: an option the loader does not take, the loader raised, or it returned
            something that is not a train/valid split.
    """
    loader, record = load(reference, WHERE, search_dir)
    return call_loader(record.reference, loader, options), record


def use_recorded_data(
    record: Mapping[str, Any], options: Mapping[str, Any]
) -> tuple[DataBundle, CodeRecord]:
    """The data of the loader a study.json record names, refusing a changed file."""
    loader, found = load_recorded(record, WHERE)
    return call_loader(found.reference, loader, options), found


def call_loader(
    reference: str, loader: Callable[..., Any], options: Mapping[str, Any]
) -> DataBundle:
    """Run `loader(**options)` and turn what it returns into a DataBundle."""
    _check_options(reference, loader, options)
    try:
        result = loader(**options)
    except Exception as exc:
        detail = str(exc).strip().splitlines()
        reason = f"{type(exc).__name__}: {detail[0]}" if detail else type(exc).__name__
        raise DataError(f"data: '{reference}' raised {reason}") from exc
    return to_bundle(reference, result)


def _check_options(reference: str, loader: Callable[..., Any], options: Mapping[str, Any]) -> None:
    try:
        params = inspect.signature(loader).parameters
    except (TypeError, ValueError):
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    known = [n for n, p in params.items() if p.kind is not inspect.Parameter.VAR_POSITIONAL]
    for key in options:
        if key not in known:
            raise DataError(
                f"data.{key}: '{reference}' takes no option '{key}'; its options: "
                f"{', '.join(known) or 'none'}"
            )


def to_bundle(reference: str, result: Any) -> DataBundle:
    """A DataBundle from a loader's result (see the module doc for the forms accepted).

    Raises:
        DataError: naming the part that is wrong and how.
    """
    if isinstance(result, DataBundle):
        return result
    if isinstance(result, Mapping):
        missing = [k for k in PARTS if k not in result]
        if missing:
            raise DataError(
                f"data: '{reference}' returned a dict without {', '.join(missing)}; expected "
                f"the keys {', '.join(PARTS)}"
            )
        parts = {k: result[k] for k in PARTS}
        extra = {k: result.get(k) for k in (*OPTIONAL, "num_classes")}
    elif isinstance(result, tuple | list) and len(result) == 4:
        parts, extra = dict(zip(PARTS, result, strict=True)), {}
    else:
        shown = f"a {len(result)}-tuple" if isinstance(result, tuple) else type(result).__name__
        raise DataError(
            f"data: '{reference}' returned {shown}; expected (x_train, y_train, x_valid, "
            "y_valid), a dict of those, or a DataBundle"
        )
    if (extra.get("x_test") is None) != (extra.get("y_test") is None):
        raise DataError(f"data: '{reference}': x_test and y_test go together; give both or neither")
    if extra.get("x_test") is not None:
        parts.update(x_test=extra["x_test"], y_test=extra["y_test"])
    splits = [s for s in ("train", "valid", "test") if f"x_{s}" in parts]
    xs = {s: _features(reference, f"x_{s}", parts[f"x_{s}"]) for s in splits}
    ys = {s: _labels(reference, f"y_{s}", parts[f"y_{s}"]) for s in splits}
    for part in splits:
        if len(xs[part]) != len(ys[part]):
            raise DataError(
                f"data: '{reference}': x_{part} has {len(xs[part])} examples but y_{part} "
                f"{len(ys[part])}"
            )
        if len(xs[part]) == 0:
            raise DataError(f"data: '{reference}': x_{part} is empty")
        if xs[part].shape[1:] != xs["train"].shape[1:]:
            raise DataError(
                f"data: '{reference}': x_train's examples are {tuple(xs['train'].shape[1:])} but "
                f"x_{part}'s {tuple(xs[part].shape[1:])}; they must have one shape"
            )
    num_classes = _num_classes(reference, extra.get("num_classes"), *ys.values())
    lengths = {
        s: _lengths(reference, f"lengths_{s}", extra.get(f"lengths_{s}"), xs[s]) for s in splits
    }
    if any(v is None for v in lengths.values()):
        lengths = dict.fromkeys(splits)
    # Without a test split, the hash of the days before one could be given.
    tensors = [t for s in splits for t in (xs[s], ys[s])]
    tensors += [t for t in lengths.values() if t is not None]
    return DataBundle(
        name=reference,
        x_train=xs["train"],
        y_train=ys["train"],
        x_valid=xs["valid"],
        y_valid=ys["valid"],
        input_shape=tuple(xs["train"].shape[1:]),
        num_classes=num_classes,
        fingerprint=fingerprint(tensors),
        lengths_train=lengths["train"],
        lengths_valid=lengths["valid"],
        x_test=xs.get("test"),
        y_test=ys.get("test"),
        lengths_test=lengths.get("test"),
    )


def _array(reference: str, key: str, value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise DataError(f"data: '{reference}': {key} is not an array ({exc})") from exc
    if not (np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.bool_)):
        raise DataError(f"data: '{reference}': {key} holds {array.dtype} values, not numbers")
    return array


def _features(reference: str, key: str, value: Any) -> torch.Tensor:
    array = _array(reference, key, value)
    if array.ndim < 2:
        raise DataError(
            f"data: '{reference}': {key} has shape {array.shape}; expected (examples, ...) "
            "with at least one feature axis"
        )
    if not np.isfinite(array).all():
        raise DataError(f"data: '{reference}': {key} holds NaN or infinite values")
    return torch.as_tensor(np.ascontiguousarray(array), dtype=torch.float32)


def _labels(reference: str, key: str, value: Any) -> torch.Tensor:
    array = _array(reference, key, value)
    if array.ndim != 1:
        raise DataError(
            f"data: '{reference}': {key} has shape {array.shape}; expected one class index "
            "per example (1-D)"
        )
    if array.size and (
        not np.all(np.isfinite(array)) or not np.all(array == np.round(array)) or array.min() < 0
    ):
        raise DataError(
            f"data: '{reference}': {key} must hold class indices 0, 1, 2, ... (whole numbers)"
        )
    return torch.as_tensor(array.astype(np.int64))


def _num_classes(reference: str, given: Any, *labels: torch.Tensor) -> int:
    largest = max(int(y.max()) for y in labels) + 1
    if given is None:
        if largest < 2:
            raise DataError(f"data: '{reference}': every label is 0; a classifier needs 2 classes")
        return largest
    if isinstance(given, bool) or not isinstance(given, int | np.integer) or given < largest:
        raise DataError(
            f"data: '{reference}': num_classes {given!r} must be a whole number >= {largest} "
            "(the largest label + 1)"
        )
    return int(given)


def _lengths(reference: str, key: str, value: Any, x: torch.Tensor) -> torch.Tensor | None:
    if value is None:
        return None
    array = _array(reference, key, value)
    steps = x.shape[1] if x.ndim == 3 else 0
    if array.shape != (len(x),) or array.min() < 1 or array.max() > steps:
        raise DataError(
            f"data: '{reference}': {key} must hold one length in 1..{steps} per example of "
            "a (examples, steps, features) array"
        )
    return torch.as_tensor(array.astype(np.int64))
