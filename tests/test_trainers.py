"""mltrainer as the trainer: one report per epoch with the metric names the search expects."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch

from conftest import ROOT, run_cli
from hypertune.config import load_config
from hypertune.data import load_dataset
from hypertune.preflight import preflight
from hypertune.space import grid_configs, sample_configs
from hypertune.train import SECONDS, TrainSettings, fit, warm_up
from hypertune.train import settings as trial
from hypertune.train.settings import batch_count
from test_data import write_gestures

EXPECTED = {
    f"{name}{suffix}"
    for name in ("train_loss", "valid_loss", "accuracy")
    for suffix in ("", "_best")
}


@pytest.mark.parametrize(
    ("data", "config"),
    [
        ("digits-seq", {"architecture": "gru", "hidden_size": 8}),
        ("digits", {"architecture": "cnn", "filters": 4, "hidden_size": 8, "batchnorm": True}),
        ("digits-seq", {"architecture": "mltrainer_gru", "hidden_size": 8}),
    ],
)
def test_mltrainer_reports_every_epoch_with_our_names(data: str, config: dict) -> None:
    bundle = load_dataset(data)
    reports: list[dict[str, float]] = []
    settings = TrainSettings(epochs=2, trainer="mltrainer")
    last = fit({**config, "lr": 0.01, "batch_size": 256}, bundle, settings, report=reports.append)
    assert len(reports) == 2
    assert all(set(r) == EXPECTED | {SECONDS} for r in reports)
    assert last == {k: v for k, v in reports[-1].items() if k != SECONDS}
    assert all(math.isfinite(v) for r in reports for v in r.values())
    assert reports[1]["valid_loss_best"] == min(r["valid_loss"] for r in reports)
    assert reports[1]["accuracy_best"] == max(r["accuracy"] for r in reports)
    assert 0.0 <= reports[1]["accuracy"] <= 1.0
    assert reports[1]["train_loss"] < reports[0]["train_loss"]  # it does learn


@pytest.mark.parametrize(
    ("optimizer", "steps_of"), [("adam", "Adam"), ("adamw", "AdamW"), ("sgd", "SGD")]
)
@pytest.mark.parametrize("trainer", ["hypertune", "mltrainer"])
def test_each_trainer_steps_the_chosen_optimizer(
    optimizer: str, steps_of: str, trainer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    warm_up()  # the process's one-time warm-up steps an SGD of its own; not this trial's
    stepped: list[str] = []
    for cls in (torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD):

        def step(self: Any, *args: Any, _step: Any = cls.step, **kwargs: Any) -> Any:
            stepped.append(type(self).__name__)
            return _step(self, *args, **kwargs)

        monkeypatch.setattr(cls, "step", step)
    # Our own loop steps torch's optimizers for models that do not fuse (an MLP trains as a
    # fused pack of one, whose step test_fused.py checks against torch's).
    architecture = "gru" if trainer == "hypertune" else "mlp"
    bundle = load_dataset("digits-seq" if architecture == "gru" else "digits")
    config = {"architecture": architecture, "hidden_size": 16, "optimizer": optimizer}
    config |= {"lr": 0.05, "weight_decay": 1e-4, "batch_size": 512}
    fit(config, bundle, TrainSettings(epochs=1, trainer=trainer), seed=1)
    assert set(stepped) == {steps_of}


@pytest.mark.parametrize("trainer", ["hypertune", "mltrainer"])
def test_each_trainer_is_repeatable_and_its_seed_matters(trainer: str) -> None:
    bundle = load_dataset("digits-seq")
    config = {"architecture": "gru", "hidden_size": 8, "lr": 0.01, "batch_size": 256}
    settings = TrainSettings(epochs=1, trainer=trainer)
    first = fit(config, bundle, settings, seed=3)
    assert set(first) == EXPECTED
    assert fit(config, bundle, settings, seed=3) == first
    assert fit(config, bundle, settings, seed=4) != first


CONFIGS = sorted(p for p in (ROOT / "configs").glob("*.toml") if p.stem != "gestures")


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_example_config_smoke_trials_train_in_process(path: Path) -> None:
    """Each example study, shrunk as --smoke shrinks it, trains its trials (no Ray)."""
    config = load_config(path, {"smoke": True})
    data = load_dataset(config.data, **config.data_options)
    preflight(config, data)
    specs = list(config.space.values())
    combos = grid_configs(specs) if config.search == "grid" else sample_configs(specs, 2, seed=0)
    assert len(combos) == 2
    for combo in combos:
        trial = {**config.hyperparameters(), **combo}
        settings = TrainSettings(epochs=config.epochs, trainer=config.trainer)
        metrics = fit(trial, data, settings)
        assert set(metrics) == EXPECTED and math.isfinite(metrics["valid_loss"])


@pytest.mark.slow
def test_gestures_study_with_mltrainer_through_the_cli(tmp_path: Path) -> None:
    write_gestures(tmp_path / "cache")
    study = (ROOT / "configs" / "gestures.toml").read_text()
    study = study.replace(
        '# datadir = "~/.cache/mads_datasets"', f'datadir = "{tmp_path / "cache"}"'
    )
    study = study.replace('trainer = "hypertune"', 'trainer = "mltrainer"')
    (tmp_path / "gestures.toml").write_text(study)
    done = run_cli("run", "gestures.toml", "--smoke", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    results = pd.read_csv(tmp_path / "runs" / "gestures" / "results.csv")
    assert list(results["status"]) == ["TERMINATED", "TERMINATED"]
    assert sorted(results["num_layers"]) == [1, 2]
    assert (results["epochs"] == 1).all()
    assert results[sorted(EXPECTED)].notna().all().all()
    meta = json.loads((tmp_path / "runs" / "gestures" / "study.json").read_text())
    assert meta["config"]["study"]["trainer"] == "mltrainer"
    assert (
        meta["data"]["fingerprint"]
        == load_dataset("gestures", datadir=str(tmp_path / "cache")).fingerprint
    )
    assert not list(tmp_path.glob("2*"))  # mltrainer's timestamped log folders stay out


@pytest.mark.parametrize("trainer", ["hypertune", "mltrainer"])
def test_each_trainer_reports_its_own_training_seconds_after_the_warm_up(
    trainer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    monkeypatch.setattr(trial, "warm_up", lambda: time.sleep(0.3))  # a costly first step
    reports: list[dict[str, float]] = []
    config = {"architecture": "mlp", "hidden_size": 8, "batch_size": 512}
    begun = time.perf_counter()
    fit(
        config,
        load_dataset("digits"),
        TrainSettings(epochs=2, trainer=trainer),
        report=reports.append,
    )
    wall = time.perf_counter() - begun
    first, second = (r[SECONDS] for r in reports)
    assert 0 < first < second < wall - 0.3  # the warm-up ran before the clock started


def test_a_last_batch_of_one_is_left_out_unless_it_is_the_only_one() -> None:
    assert [batch_count(n, 4) for n in (1, 4, 5, 6, 9)] == [1, 1, 1, 2, 2]
    assert batch_count(3, 1) == 3


def test_own_loop_times_its_training_without_the_one_time_warm_up() -> None:
    # In a fresh process the first optimizer step imports torch._dynamo; a trial's reported
    # seconds leave that out, so a worker's first trial is timed fairly.
    code = (
        "import time\n"
        "from hypertune.data import load_dataset\n"
        "from hypertune.train import SECONDS, TrainSettings, fit\n"
        "data = load_dataset('digits')\n"
        "reports = []\n"
        "start = time.perf_counter()\n"
        "fit({'architecture': 'mlp', 'hidden_size': 8}, data, TrainSettings(epochs=2),\n"
        "    report=reports.append)\n"
        "wall = time.perf_counter() - start\n"
        "print(wall, *[r[SECONDS] for r in reports])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    wall, first, second = map(float, out.stdout.split())
    assert 0 < first < second < wall
    assert wall - second > 0.2  # the warm-up ran before the clock started


def test_results_take_the_loops_own_seconds_and_fall_back_to_rays_clock() -> None:
    from types import SimpleNamespace

    from hypertune.config import from_dict
    from hypertune.search import trial_record

    config = from_dict(
        {
            "study": {"name": "t", "data": "digits", "epochs": 1},
            "model": {"architecture": "mlp"},
            "space": {"hidden_size": [4, 8]},
        }
    )
    metrics = {"valid_loss": 0.5, "valid_loss_best": 0.5, "time_total_s": 9.0}

    def seconds(result: dict[str, float]) -> float:
        trial = SimpleNamespace(
            trial_id="a_00000",
            config={"hidden_size": 4},
            last_result={**result, "training_iteration": 1},
            status="TERMINATED",
            get_error=lambda: None,
        )
        return trial_record(trial, config.space).seconds

    assert seconds({**metrics, "train_seconds": 1.25}) == 1.25
    assert seconds(metrics) == 9.0  # a result without seconds of its own


def _imports(module: str) -> set[str]:
    """Every hypertune module `module` imports, at its top or inside a function."""
    import ast

    path = ROOT / "src" / Path(*module.split("."))
    tree = ast.parse(path.with_suffix(".py").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.startswith("hypertune")}


def test_the_training_modules_import_one_way() -> None:
    loop = {"hypertune.train", "hypertune.train.loop"}
    assert not loop & _imports("hypertune.train.mltrainer")
    assert not {*loop, "hypertune.train.mltrainer"} & _imports("hypertune.train.settings")
    assert not {*loop, "hypertune.train.settings"} & _imports("hypertune.train.optim")
    assert not _imports("hypertune.search.relay")
    assert "hypertune.search.recorder" not in _imports("hypertune.search.order")
