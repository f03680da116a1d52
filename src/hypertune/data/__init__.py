"""Datasets as in-memory tensors: `load_dataset(name) -> DataBundle`.

`digits` and `digits-seq` ship with scikit-learn (offline); `gestures`, `fashion` and `flowers`
come through mads_datasets and its cache (see `hypertune.data.mads`).
"""

from hypertune.data import mads  # noqa: F401  (registers the mads_datasets loaders)
from hypertune.data.core import (
    SPLIT_SEED,
    VALID_FRACTION,
    DataBundle,
    dataset_names,
    fingerprint,
    load_dataset,
    make_bundle,
    register_dataset,
    stratified_split,
)

__all__ = [
    "SPLIT_SEED",
    "VALID_FRACTION",
    "DataBundle",
    "dataset_names",
    "fingerprint",
    "load_dataset",
    "make_bundle",
    "register_dataset",
    "stratified_split",
]
