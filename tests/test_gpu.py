"""The GPU path: the same code on CPU here, on a CUDA GPU where one is present."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from hypertune.config import from_dict
from hypertune.data import load_dataset
from hypertune.errors import ConfigError
from hypertune.train import TrainSettings, fit

HAS_GPU = torch.cuda.is_available()
DEVICE = "cuda" if HAS_GPU else "cpu"


def study(gpus: float) -> dict:
    return {
        "study": {"name": "gpu", "data": "digits-seq", "epochs": 1},
        "model": {"architecture": "gru", "batch_size": 128, "lr": 0.01},
        "space": {"hidden_size": [4, 8], "num_layers": [1, 2]},
        "resources": {"cpus_per_trial": 0.5, "gpus_per_trial": gpus},
    }


def test_fit_runs_on_the_available_device() -> None:
    data = load_dataset("digits-seq")
    config = {"architecture": "gru", "hidden_size": 8, "batch_size": 128}
    reports: list[dict[str, float]] = []
    metrics = fit(
        config, data, TrainSettings(epochs=2, device=DEVICE), seed=0, report=reports.append
    )
    assert len(reports) == 2
    assert all(math.isfinite(v) for v in metrics.values())
    assert data.x_train.device.type == "cpu"  # the caller's bundle is left where it was


@pytest.mark.skipif(HAS_GPU, reason="checks the refusal on a machine without a GPU")
def test_gpus_per_trial_without_a_gpu_is_refused(ray_session: None, tmp_path: Path) -> None:
    from hypertune.search import run_study

    with pytest.raises(ConfigError, match=r"resources\.gpus_per_trial: no GPU"):
        run_study(from_dict(study(0.25)), tmp_path)


@pytest.mark.skipif(HAS_GPU, reason="checks the refusal on a machine without a GPU")
def test_cli_refuses_gpus_before_the_study_folder_exists(tiny_study: Path, tmp_path: Path) -> None:
    from conftest import run_cli

    done = run_cli("run", str(tiny_study), "--gpus-per-trial", "0.25", cwd=tmp_path)
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert last == "error: resources.gpus_per_trial: no GPU on this machine; use 0"
    assert not (tmp_path / "runs").exists()


@pytest.mark.skipif(not HAS_GPU, reason="needs a CUDA GPU")
def test_fractional_gpus_pack_trials_on_one_gpu(ray_session: None, tmp_path: Path) -> None:
    import pandas as pd

    from hypertune.search import run_study

    path = run_study(from_dict(study(0.25)), tmp_path)
    results = pd.read_csv(path / "results.csv")
    assert len(results) == 4
    assert set(results["status"]) == {"TERMINATED"}
