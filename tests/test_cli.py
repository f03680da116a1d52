"""The command line as a user runs it: a real 2-trial study, show, report, and error paths."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from conftest import run_cli


def test_smoke_study_end_to_end(tiny_study: Path, tmp_path: Path) -> None:
    done = run_cli("run", str(tiny_study), "--smoke", "--mlflow", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "trials 2/2 done, 0 running, 0 failed | best valid_loss_best" in done.stderr
    assert re.search(r"trials 0/2 done, [012] running", done.stderr), done.stderr
    results = pd.read_csv(tmp_path / "runs" / "tiny" / "results.csv")
    assert len(results) == 2
    assert set(results["status"]) == {"TERMINATED"}
    assert list(results.columns[:4]) == ["trial_id", "status", "num_layers", "hidden_size"]
    assert not any(c.startswith("config/") for c in results.columns)
    assert (results["epochs"] == 1).all()
    # What each trial cost: its GRU's weights (8 features in, 10 classes out), its epochs to
    # converge (its one epoch) and its time per epoch.
    for row in results.to_dict("records"):
        h, layers = row["hidden_size"], row["num_layers"]
        gru = 3 * (8 * h + h * h + 2 * h) + (layers - 1) * 3 * (2 * h * h + 2 * h)
        assert row["parameters"] == gru + h * 10 + 10
        assert row["epochs_to_best"] == row["epochs_to_within_5pct"] == 1
        assert row["seconds_per_epoch"] == pytest.approx(row["seconds"], abs=1e-3)
    # MLflow: a run per trial, every setting of it a param, only hypertune's metrics.
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=(tmp_path / "runs" / "tiny" / "mlflow").as_uri())
    experiment = client.get_experiment_by_name("tiny")
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(r.data.tags["trial_id"] for r in runs) == sorted(results["trial_id"])
    for run in runs:
        params = run.data.params
        assert {"lr", "batch_size", "optimizer", "epochs", "seed", "dropout", "data"} <= set(params)
        assert (params["lr"], params["epochs"], params["architecture"]) == ("0.01", "1", "gru")
        assert set(run.data.metrics) == {
            f"{m}{s}" for m in ("train_loss", "valid_loss", "accuracy") for s in ("", "_best")
        }
        assert run.info.status == "FINISHED"
    meta = json.loads((tmp_path / "runs" / "tiny" / "study.json").read_text())
    assert meta["status"] == "finished"
    assert meta["data"]["fingerprint"]
    assert meta["versions"]["torch"].startswith("2.13")
    assert (tmp_path / "reports" / "tiny" / "heatmap_num_layers__hidden_size.png").stat().st_size

    show = run_cli("show", "tiny", cwd=tmp_path)
    assert show.returncode == 0, show.stderr
    lines = show.stdout.strip().splitlines()
    assert lines[0].split()[:4] == ["trial_id", "status", "num_layers", "hidden_size"]
    losses = [float(line.split()[lines[0].split().index("valid_loss_best")]) for line in lines[1:]]
    assert losses == sorted(losses)

    trial = str(results["trial_id"].iloc[0])
    rerun = run_cli("rerun", "tiny", trial, cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    row = next(line.split() for line in rerun.stdout.splitlines() if line.startswith("valid_loss "))
    assert float(row[1]) == pytest.approx(float(row[2]), rel=1e-5)
    assert float(row[1]) == pytest.approx(results["valid_loss"].iloc[0], rel=1e-5)
    assert rerun.stdout.strip().endswith("reproduced: every metric as recorded")

    assert not (tmp_path / "runs" / "tiny" / "weights").exists()  # kept only when asked
    best = run_cli("best", "tiny", cwd=tmp_path)
    assert best.returncode == 0, best.stderr
    assert best.stdout.startswith("training the best trial by valid_loss_best of tiny again")
    assert "no test split: the data has none" in best.stdout
    assert (tmp_path / "runs" / "tiny" / "best" / "model.pt").stat().st_size
    none = run_cli("best", "tiny", "--trial", "nope", cwd=tmp_path)
    assert none.returncode == 2
    assert none.stderr.strip().splitlines()[-1].startswith("error: trial 'nope' not in study")

    again = run_cli("run", str(tiny_study), "--smoke", cwd=tmp_path)
    assert again.returncode == 2
    assert again.stderr.strip().splitlines()[-1].startswith("error: study 'tiny' already exists")


def test_the_entry_point_exits_early_but_runs_exit_handlers_and_flushes(tmp_path: Path) -> None:
    # entry() skips Python's teardown of the loaded libraries: what a normal exit does before
    # that (exit handlers, buffered output, the exit code) must still happen.
    code = (
        "import atexit, sys\n"
        "from hypertune.cli import entry\n"
        "atexit.register(print, 'exit handler ran')\n"
        "sys.argv = ['hypertune', 'show', 'nothing']\n"
        "entry()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and "nothing" in done.stderr
    assert done.stdout == "exit handler ran\n"


def test_missing_config_is_one_error_line(tmp_path: Path) -> None:
    done = run_cli("run", "configs/missing.toml", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == "error: configs/missing.toml: no such study file"


def test_unknown_key_is_one_error_line(tiny_study: Path, tmp_path: Path) -> None:
    tiny_study.write_text(tiny_study.read_text().replace("epochs = 1", "epochs = 1\nepoch = 2"))
    done = run_cli("run", str(tiny_study), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().startswith("error: study.epoch: unknown key")
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


def test_unknown_study_and_bad_param(
    tiny_study: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from hypertune.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["show", "nosuch"]) == 2
    assert capsys.readouterr().err.startswith("error: study 'nosuch' not found")
    assert main(["run", str(tiny_study), "--param", "lr=1:l:3"]) == 2
    assert capsys.readouterr().err.startswith("error: 'lr=1:l:3'")
    assert main(["run", str(tiny_study), "--param", "hidden_sise=2,4"]) == 2
    assert "model.hidden_sise: unknown key for architecture 'gru'" in capsys.readouterr().err
    assert not (tmp_path / "runs" / "tiny").exists()
