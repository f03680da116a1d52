"""Datasets as in-memory tensors: `load_dataset(name) -> DataBundle`.

Splits are seeded and stable, so every trial of a study, and every rerun of it, sees exactly the
same examples. The bundle's fingerprint hashes the tensors actually used; it changes when the data
or the split changes and is stored in study.json.
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hypertune.errors import DataError

SPLIT_SEED = 0  # fixed: the split is part of the data, not of a trial
VALID_FRACTION = 0.2


@dataclass(frozen=True)
class DataBundle:
    """Train and validation tensors plus what a model needs to know about them.

    Attributes:
        name: the dataset's name.
        x_train, y_train, x_valid, y_valid: features (float32) and class indices (int64).
        input_shape: the shape of one example (without the batch dimension).
        num_classes: number of classes.
        fingerprint: sha256 over the tensors (and lengths), first 16 hex digits.
        lengths_train, lengths_valid: true lengths of padded sequences, or None.
        x_test, y_test, lengths_test: a held-out test split that no trial sees (only `best`
            evaluates on it), or None where the dataset has none.
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_valid: torch.Tensor
    y_valid: torch.Tensor
    input_shape: tuple[int, ...]
    num_classes: int
    fingerprint: str
    lengths_train: torch.Tensor | None = None
    lengths_valid: torch.Tensor | None = None
    x_test: torch.Tensor | None = None
    y_test: torch.Tensor | None = None
    lengths_test: torch.Tensor | None = None

    def to(self, device: torch.device | str) -> DataBundle:
        """The same bundle with every tensor on `device`."""
        moved = {
            key: getattr(self, key).to(device)
            for key in ("x_train", "y_train", "x_valid", "y_valid")
        }
        for key in ("lengths_train", "lengths_valid", "x_test", "y_test", "lengths_test"):
            value = getattr(self, key)
            moved[key] = None if value is None else value.to(device)
        return DataBundle(
            name=self.name,
            input_shape=self.input_shape,
            num_classes=self.num_classes,
            fingerprint=self.fingerprint,
            **moved,
        )

    def summary(self) -> dict[str, Any]:
        """Plain facts about the bundle for study.json."""
        return {
            "name": self.name,
            "train": len(self.y_train),
            "valid": len(self.y_valid),
            **({} if self.y_test is None else {"test": len(self.y_test)}),
            "input_shape": list(self.input_shape),
            "num_classes": self.num_classes,
            "fingerprint": self.fingerprint,
        }


Loader = Callable[..., DataBundle]
_LOADERS: dict[str, Loader] = {}


def register_dataset(name: str) -> Callable[[Loader], Loader]:
    """Decorator: make a loader available to `load_dataset` under `name`."""

    def add(loader: Loader) -> Loader:
        _LOADERS[name] = loader
        return loader

    return add


def dataset_names() -> list[str]:
    """Names `load_dataset` knows."""
    return sorted(_LOADERS)


def load_dataset(name: str, **options: Any) -> DataBundle:
    """Load a dataset by name as a :class:`DataBundle`.

    `name` may also be `module:callable`, a loader of your own importable from the Python path
    (see :mod:`hypertune.data.user`).

    Raises:
        DataError: the name is unknown, an option is unknown, or the data is unavailable.
    """
    if ":" in name:
        from hypertune.data.user import use_data

        return use_data(name, options)[0]
    if name not in _LOADERS:
        raise DataError(
            f"data: '{name}' is unknown; known: {', '.join(dataset_names())}, or module:callable "
            "for a loader of your own"
        )
    try:
        return _LOADERS[name](**options)
    except TypeError as exc:
        raise DataError(f"data: bad option for '{name}' ({exc})") from exc


def make_bundle(
    name: str,
    features: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    lengths: np.ndarray | None = None,
    valid_fraction: float = VALID_FRACTION,
) -> DataBundle:
    """Split arrays with a seeded, stratified split and wrap them as tensors.

    Lengths are kept only where sequences really differ in length: when every sequence fills
    all its steps there is no padding to skip, and sequence models run unpacked (packing waits
    for the lengths to come back to the CPU, which stalls a GPU).
    """
    if lengths is not None and features.ndim == 3 and np.all(lengths == features.shape[1]):
        lengths = None
    if not 0.0 < valid_fraction < 1.0:
        raise DataError(f"data.valid_fraction: expected a number in (0, 1), got {valid_fraction}")
    train_idx, valid_idx = stratified_split(labels, valid_fraction, SPLIT_SEED)
    x = torch.as_tensor(np.ascontiguousarray(features), dtype=torch.float32)
    y = torch.as_tensor(labels, dtype=torch.int64)
    lens = None if lengths is None else torch.as_tensor(lengths, dtype=torch.int64)
    train, valid = torch.as_tensor(train_idx), torch.as_tensor(valid_idx)
    parts = [x[train], y[train], x[valid], y[valid]]
    if lens is not None:
        parts += [lens[train], lens[valid]]
    return DataBundle(
        name=name,
        x_train=parts[0],
        y_train=parts[1],
        x_valid=parts[2],
        y_valid=parts[3],
        input_shape=tuple(x.shape[1:]),
        num_classes=num_classes,
        fingerprint=fingerprint(parts),
        lengths_train=None if lens is None else parts[4],
        lengths_valid=None if lens is None else parts[5],
    )


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, ...]:
    """Indices of a seeded split that keeps each class's share in both parts."""
    rng = np.random.default_rng(seed)
    train, valid = [], []
    for label in np.unique(labels):
        idx = np.flatnonzero(labels == label)
        rng.shuffle(idx)
        cut = round(len(idx) * fraction)
        valid.append(idx[:cut])
        train.append(idx[cut:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(valid))


def fingerprint(tensors: list[torch.Tensor]) -> str:
    """A short hash of the exact tensors (values, shapes and order)."""
    digest = hashlib.sha256()
    for tensor in tensors:
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def _digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits, read from the file it ships without importing scikit-learn.

    Importing scikit-learn (and SciPy with it) would slow every study's start-up, and
    `load_digits` reads nothing but this CSV. Where the file is not found, it is used after all.
    """
    data_file = _sklearn_file("datasets", "data", "digits.csv.gz")
    if data_file is None:
        from sklearn.datasets import load_digits

        digits = load_digits()
        flat, target = digits.data, digits.target
    else:
        table = np.loadtxt(data_file, delimiter=",")
        flat, target = table[:, :-1], table[:, -1]
    return (flat / 16.0).astype(np.float32), target.astype(np.int64)


def _sklearn_file(*parts: str) -> Path | None:
    spec = importlib.util.find_spec("sklearn")  # finds the package without running it
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder).joinpath(*parts)
        if path.is_file():
            return path
    return None


@register_dataset("digits")
def load_digits_images(valid_fraction: float = VALID_FRACTION) -> DataBundle:
    """scikit-learn's 8x8 digits as 1x8x8 images (offline)."""
    features, labels = _digits()
    return make_bundle("digits", features.reshape(-1, 1, 8, 8), labels, 10, None, valid_fraction)


@register_dataset("digits-seq")
def load_digits_sequences(valid_fraction: float = VALID_FRACTION) -> DataBundle:
    """scikit-learn's digits read row by row: sequences of 8 steps of 8 features (offline)."""
    features, labels = _digits()
    lengths = np.full(len(labels), 8, dtype=np.int64)
    return make_bundle(
        "digits-seq", features.reshape(-1, 8, 8), labels, 10, lengths, valid_fraction
    )
