"""The real uWave gestures set through the real loader, and the gestures study on it (slow;
skipped where ../shared/data/gestures-dataset.zip is absent)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pandas as pd
import pytest
import torch

from hypertune.cli import main
from hypertune.data import load_dataset

ROOT = Path(__file__).resolve().parents[1]
ZIP = ROOT.parent / "shared" / "data" / "gestures-dataset.zip"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not ZIP.is_file(), reason=f"{ZIP} is absent"),
]


@pytest.fixture(scope="module")
def datadir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The zip extracted where mads_datasets looks: <datadir>/gestures/gestures-dataset/."""
    root = tmp_path_factory.mktemp("mads")
    with zipfile.ZipFile(ZIP) as archive:
        archive.extractall(root / "gestures")
    return root


def test_the_real_gestures_load_through_mads_datasets(datadir: Path) -> None:
    bundle = load_dataset("gestures", datadir=str(datadir))
    labels = torch.cat([bundle.y_train, bundle.y_valid])
    assert len(labels) == 3251
    assert bundle.num_classes == 20 and sorted(set(labels.tolist())) == list(range(20))
    assert bundle.input_shape[1] == 3
    assert len(bundle.y_valid) == pytest.approx(0.2 * 3251, abs=20)
    assert bundle.lengths_train is not None and bundle.lengths_valid is not None
    lengths = torch.cat([bundle.lengths_train, bundle.lengths_valid])
    assert 1 <= int(lengths.min()) < int(lengths.max()) == bundle.input_shape[0]
    assert load_dataset("gestures", datadir=str(datadir)).fingerprint == bundle.fingerprint


def test_the_gestures_study_runs_on_them(
    ray_session: None, datadir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HYPERTUNE_DATA_DIR", str(datadir))
    study = ROOT / "configs" / "gestures.toml"
    dirs = ["--storage", str(tmp_path / "runs"), "--out", str(tmp_path / "reports")]
    assert main(["run", str(study), "--smoke", *dirs]) == 0
    results = pd.read_csv(tmp_path / "runs" / "gestures" / "results.csv")
    assert list(results["status"]) == ["TERMINATED", "TERMINATED"]
    assert (results["epochs"] == 1).all() and results["accuracy"].between(0, 1).all()
