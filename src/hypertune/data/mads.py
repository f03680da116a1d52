"""Datasets from mads_datasets (`gestures`, `fashion`, `flowers`), through its real loaders.

mads_datasets keeps each dataset under `<datadir>/<name>/` (default `~/.cache/mads_datasets`,
overridable with the `datadir` option or `HYPERTUNE_DATA_DIR`). Offline, its download fails after
creating that folder empty, and every later call then breaks on the empty folder: we remove such a
folder and say in one line which files to place where. Its train/valid split is unseeded; we pool
its parts, sort them by file, and split with our seeded, stratified split instead.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hypertune.data.core import VALID_FRACTION, DataBundle, make_bundle, register_dataset
from hypertune.errors import DataError

GESTURE_CLASSES = 20  # folders 01..20 in the uWave gestures set


def data_dir(datadir: str | Path | None = None) -> Path:
    """Where mads_datasets keeps its files: `datadir`, `$HYPERTUNE_DATA_DIR`, or its default."""
    if datadir is not None:
        return Path(datadir).expanduser()
    env = os.environ.get("HYPERTUNE_DATA_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "mads_datasets"


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence mads_datasets' log lines and progress bars (the CLI shows its own progress)."""
    from loguru import logger

    logger.disable("mads_datasets")
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        logger.enable("mads_datasets")


def _has_files(folder: Path) -> bool:
    return any(path.is_file() for path in folder.rglob("*"))


def _create(factory: Any, name: str, folder: Path, place: str) -> Mapping[str, Any]:
    """Run the factory's `create_dataset`; on failure, clean up and raise one DataError line."""
    if folder.exists() and not _has_files(folder):
        shutil.rmtree(folder)  # left empty by an earlier offline attempt; it blocks the loader
    try:
        with _quiet():
            return factory.create_dataset()
    # mads_datasets fails offline in many ways (ConnectionError, FileNotFoundError, ValueError,
    # a bad zip); each means the same to the user: the files are not there.
    except Exception as exc:
        if folder.exists() and not _has_files(folder):
            shutil.rmtree(folder)
        # Whole: the first line names the URL that was tried.
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(
            f"data: '{name}' is not available offline and could not be downloaded ({reason}); "
            f"place {place}"
        ) from exc


def _items(datasets: Mapping[str, Any], root: Path) -> list[tuple[str, Any]]:
    """(file path, example) over every part, sorted by path: an order mads cannot shuffle."""
    items = []
    for part in datasets.values():
        # AbstractDataset shuffles `paths` once, then builds `dataset` in that same order.
        for path, example in zip(part.paths, part.dataset, strict=True):
            items.append((Path(path).resolve().relative_to(root.resolve()).as_posix(), example))
    return sorted(items, key=lambda item: item[0])


@register_dataset("gestures")
def load_gestures(
    datadir: str | Path | None = None, valid_fraction: float = VALID_FRACTION
) -> DataBundle:
    """uWave gestures: variable-length sequences of 3 accelerometer axes, 20 classes.

    Each `gestures-dataset/U<user>/<class>/<n>.txt` holds one gesture, one time step a line;
    mads_datasets keeps columns 4 to 6 (the first three are dropped) and reads the class from the
    folder name. Sequences are zero-padded to the longest; `lengths` holds their true lengths.
    """
    from mads_datasets import DatasetFactoryProvider, DatasetType

    root = data_dir(datadir)
    folder = root / "gestures"
    factory = DatasetFactoryProvider.create_factory(DatasetType.GESTURES, datadir=root)
    place = (
        f"the extracted gestures-dataset folder (U01/01/01.txt, ...) at "
        f"{folder / 'gestures-dataset'}/ (from gestures-dataset.zip)"
    )
    items = _items(_create(factory, "gestures", folder, place), root)
    if not items:
        raise DataError(f"data: 'gestures' found no .txt files; place {place}")
    lengths = np.array([len(x) for _, (x, _) in items], dtype=np.int64)
    features = np.zeros((len(items), int(lengths.max()), 3), dtype=np.float32)
    for row, (_, (x, _)) in enumerate(items):
        features[row, : len(x)] = x.numpy()
    labels = np.array([int(y) for _, (_, y) in items], dtype=np.int64)
    return make_bundle("gestures", features, labels, GESTURE_CLASSES, lengths, valid_fraction)


@register_dataset("fashion")
def load_fashion(
    datadir: str | Path | None = None, valid_fraction: float = VALID_FRACTION
) -> DataBundle:
    """Fashion-MNIST: 70,000 grayscale 1x28x28 images, 10 classes (pooled, then split)."""
    from mads_datasets import DatasetFactoryProvider, DatasetType

    root = data_dir(datadir)
    folder = root / "fashionmnist"
    factory = DatasetFactoryProvider.create_factory(DatasetType.FASHION, datadir=root)
    place = f"fashionmnist.pt at {folder / 'fashionmnist.pt'}"
    datasets = _create(factory, "fashion", folder, place)
    images = torch.cat([part.data for part in datasets.values()])
    labels = torch.cat([part.labels for part in datasets.values()])
    features = (images.float() / 255.0).unsqueeze(1).numpy()
    return make_bundle("fashion", features, labels.long().numpy(), 10, None, valid_fraction)


@register_dataset("flowers")
def load_flowers(
    datadir: str | Path | None = None,
    img_size: int = 64,
    valid_fraction: float = VALID_FRACTION,
) -> DataBundle:
    """TensorFlow's flower photos: RGB images resized to `img_size` square, 5 classes.

    Classes are the sorted folder names (mads_datasets numbers them in directory order, which
    differs between machines).
    """
    from mads_datasets.factories import FlowersDatasetFactory
    from mads_datasets.settings import flowersdatasetsettings

    if isinstance(img_size, bool) or not isinstance(img_size, int) or img_size < 8:
        raise DataError(f"data.img_size: expected a whole number >= 8, got {img_size!r}")
    root = data_dir(datadir)
    folder = root / "flowers"
    settings = flowersdatasetsettings.model_copy(update={"img_size": (img_size, img_size)})
    factory = FlowersDatasetFactory(settings, datadir=root)
    place = f"the extracted flower_photos folder (<class>/*.jpg) at {folder / 'flower_photos'}/"
    items = _items(_create(factory, "flowers", folder, place), root)
    if not items:
        raise DataError(f"data: 'flowers' found no .jpg files; place {place}")
    classes = sorted({Path(path).parent.name for path, _ in items})
    features = np.stack([x.numpy() for _, (x, _) in items]).astype(np.float32)
    labels = np.array([classes.index(Path(path).parent.name) for path, _ in items])
    return make_bundle("flowers", features, labels, len(classes), None, valid_fraction)
