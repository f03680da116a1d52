"""Datasets: seeded stable splits, fingerprints, and the mads_datasets paths (gestures, offline)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import requests
import torch

from hypertune.data import load_dataset, make_bundle
from hypertune.errors import DataError

USERS, CLASSES, REPEATS = 2, 3, 3


def write_gestures(root: Path) -> dict[str, tuple[int, int]]:
    """A small tree in mads_datasets' cache layout; returns {relative file: (length, label)}."""
    rng = np.random.default_rng(0)
    written = {}
    base = root / "gestures" / "gestures-dataset"
    for user in range(1, USERS + 1):
        for label in range(1, CLASSES + 1):
            for rep in range(1, REPEATS + 1):
                folder = base / f"U{user:02d}" / f"{label:02d}"
                folder.mkdir(parents=True, exist_ok=True)
                steps = int(rng.integers(4, 12))
                # six numeric columns a line; mads_datasets keeps the last three
                rows = np.column_stack([np.arange(steps)] * 3 + [rng.normal(size=(steps, 3))])
                np.savetxt(folder / f"{rep:02d}.txt", rows, fmt="%.5f")
                written[f"U{user:02d}/{label:02d}/{rep:02d}.txt"] = (steps, label - 1)
    (base / "gestures.png").write_bytes(b"not a picture")  # mads moves this aside
    return written


def test_gestures_load_through_mads_datasets(tmp_path: Path) -> None:
    written = write_gestures(tmp_path)
    bundle = load_dataset("gestures", datadir=str(tmp_path), valid_fraction=1 / 3)
    total = USERS * CLASSES * REPEATS
    assert len(bundle.y_train) + len(bundle.y_valid) == total
    assert len(bundle.y_valid) == CLASSES * 2  # stratified: a third of each class's six
    longest = max(length for length, _ in written.values())
    assert bundle.input_shape == (longest, 3)
    assert bundle.num_classes == 20
    assert bundle.lengths_train is not None and bundle.lengths_valid is not None
    lengths = sorted(torch.cat([bundle.lengths_train, bundle.lengths_valid]).tolist())
    assert lengths == sorted(length for length, _ in written.values())
    labels = sorted(torch.cat([bundle.y_train, bundle.y_valid]).tolist())
    assert labels == sorted(label for _, label in written.values())
    # padding past each sequence's end is zero, the columns kept are the random ones
    for x, n in zip(bundle.x_train, bundle.lengths_train, strict=True):
        assert torch.all(x[n:] == 0)
        assert not torch.all(x[:n, 0] == torch.arange(int(n), dtype=torch.float32))


def test_gestures_split_is_seeded_and_stable(tmp_path: Path) -> None:
    write_gestures(tmp_path)
    first = load_dataset("gestures", datadir=str(tmp_path))
    second = load_dataset("gestures", datadir=str(tmp_path))  # mads shuffles unseeded inside
    assert first.fingerprint == second.fingerprint
    torch.testing.assert_close(first.x_valid, second.x_valid)
    other_split = load_dataset("gestures", datadir=str(tmp_path), valid_fraction=0.5)
    assert other_split.fingerprint != first.fingerprint
    changed = tmp_path / "gestures" / "gestures-dataset" / "U01" / "01" / "01.txt"
    changed.write_text(changed.read_text() + "9 9 9 0.5 0.5 0.5\n")  # one more step
    assert load_dataset("gestures", datadir=str(tmp_path)).fingerprint != first.fingerprint


@pytest.mark.parametrize(
    ("name", "folder", "place"),
    [
        ("gestures", "gestures", "gestures-dataset"),
        ("fashion", "fashionmnist", "fashionmnist.pt"),
        ("flowers", "flowers", "flower_photos"),
    ],
)
def test_offline_is_one_error_line_and_leaves_no_empty_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, folder: str, place: str
) -> None:
    def offline(*args: object, **kwargs: object) -> None:
        raise requests.ConnectionError("Name resolution failed")

    monkeypatch.setattr(requests, "get", offline)
    (tmp_path / folder).mkdir()  # what an earlier failed attempt leaves behind
    for _ in range(2):  # the second call must fail the same way, not on the leftover folder
        with pytest.raises(DataError) as caught:
            load_dataset(name, datadir=str(tmp_path))
        message = str(caught.value)
        assert message.startswith(f"data: '{name}' is not available offline")
        assert "Name resolution failed" in message
        assert f"{tmp_path / folder}" in message and place in message
        assert "\n" not in message
        assert not (tmp_path / folder).exists()


def test_fashion_loads_from_the_cached_file(tmp_path: Path) -> None:
    folder = tmp_path / "fashionmnist"
    folder.mkdir()
    gen = torch.Generator().manual_seed(0)
    data = {
        "traindata": torch.randint(0, 256, (40, 28, 28), dtype=torch.uint8, generator=gen),
        "trainlabels": torch.arange(40) % 10,
        "testdata": torch.randint(0, 256, (10, 28, 28), dtype=torch.uint8, generator=gen),
        "testlabels": torch.arange(10),
    }
    torch.save(data, folder / "fashionmnist.pt")
    bundle = load_dataset("fashion", datadir=str(tmp_path))
    assert bundle.input_shape == (1, 28, 28)
    assert len(bundle.y_train) + len(bundle.y_valid) == 50
    assert float(bundle.x_train.min()) >= 0.0 and float(bundle.x_train.max()) <= 1.0


def test_digits_split_is_stratified_and_fingerprinted() -> None:
    images = load_dataset("digits")
    sequences = load_dataset("digits-seq")
    assert images.input_shape == (1, 8, 8) and sequences.input_shape == (8, 8)
    assert images.fingerprint != sequences.fingerprint
    assert load_dataset("digits").fingerprint == images.fingerprint
    counts = torch.bincount(images.y_valid, minlength=10).float()
    assert counts.min() / counts.max() > 0.9


def test_bad_names_and_options() -> None:
    with pytest.raises(DataError, match="data: 'mnist' is unknown; known: digits"):
        load_dataset("mnist")
    with pytest.raises(DataError, match="data: bad option for 'digits'"):
        load_dataset("digits", colour=True)
    with pytest.raises(DataError, match=r"data\.valid_fraction"):
        make_bundle("x", np.zeros((4, 2)), np.array([0, 1, 0, 1]), 2, valid_fraction=1.0)


def test_flowers_load_through_mads_datasets_with_sorted_classes(tmp_path: Path) -> None:
    from PIL import Image

    photos = tmp_path / "flowers" / "flower_photos"
    colours = {"tulips": (250, 10, 10), "daisy": (10, 250, 10), "roses": (10, 10, 250)}
    for name, colour in colours.items():
        (photos / name).mkdir(parents=True)
        for i in range(5):
            Image.new("RGB", (20 + i, 16), colour).save(photos / name / f"{i}.jpg")
    (photos / "LICENSE.txt").write_text("not a picture")
    bundle = load_dataset("flowers", datadir=str(tmp_path), img_size=8)
    assert bundle.input_shape == (3, 8, 8)
    assert bundle.num_classes == 3
    assert len(bundle.y_train) + len(bundle.y_valid) == 15
    # classes are the sorted folder names: daisy 0 (green), roses 1 (blue), tulips 2 (red)
    x = torch.cat([bundle.x_train, bundle.x_valid])
    y = torch.cat([bundle.y_train, bundle.y_valid])
    strongest = x.mean(dim=(2, 3)).argmax(dim=1)
    assert torch.equal(strongest, torch.tensor([1, 2, 0])[y])
    with pytest.raises(DataError, match=r"data\.img_size"):
        load_dataset("flowers", datadir=str(tmp_path), img_size=2)


def test_lengths_are_kept_only_where_sequences_differ() -> None:
    features = np.zeros((20, 5, 2), dtype=np.float32)
    labels = np.arange(20) % 2
    full = make_bundle("full", features, labels, 2, np.full(20, 5))
    assert full.lengths_train is None and full.lengths_valid is None
    ragged = make_bundle("ragged", features, labels, 2, np.arange(20) % 5 + 1)
    assert ragged.lengths_train is not None
    assert sorted(torch.cat([ragged.lengths_train, ragged.lengths_valid]).tolist()) == sorted(
        (np.arange(20) % 5 + 1).tolist()
    )


def test_digits_are_scikit_learns_digits_read_without_importing_it() -> None:
    from sklearn.datasets import load_digits

    from hypertune.data import core

    features, labels = core._digits()
    digits = load_digits()
    np.testing.assert_array_equal(features, (digits.data / 16.0).astype(np.float32))
    np.testing.assert_array_equal(labels, digits.target)
    # In a fresh interpreter, loading the embedded dataset leaves scikit-learn unimported.
    code = (
        "import sys; from hypertune.data import load_dataset; load_dataset('digits-seq'); "
        "print('sklearn' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
