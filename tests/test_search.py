"""Each search strategy on a tiny study, faulty trials, identical reruns, and refusals.

The studies run in-process on the session's one Ray (the `ray_session` fixture); each trains
small GRUs for one epoch on the embedded digits data.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from hypertune.cli import main
from hypertune.config import from_dict
from hypertune.errors import SpaceError, StudyError
from hypertune.search import rerun_trial, run_study
from hypertune.search.domains import to_domain
from hypertune.study import store

BASE = {
    "study": {"data": "digits-seq", "epochs": 1, "metric": "valid_loss:min"},
    "model": {"architecture": "gru", "hidden_size": 8, "lr": 0.01, "batch_size": 128},
    "resources": {"cpus_per_trial": 1},
}


def study(name: str, search: str, space: dict, **study_keys: object) -> object:
    raw = json.loads(json.dumps(BASE))
    raw["study"].update(name=name, search=search, **study_keys)
    raw["space"] = space
    return from_dict(raw)


def scalar_tags(event_file: Path) -> dict[str, list[int]]:
    """Tag -> steps of the scalars in one TensorBoard event file (TFRecord framing)."""
    from tensorboardX.proto import event_pb2

    tags: dict[str, list[int]] = {}
    data = event_file.read_bytes()
    at = 0
    while at < len(data):
        length = int.from_bytes(data[at : at + 8], "little")
        event = event_pb2.Event.FromString(data[at + 12 : at + 12 + length])
        at += 12 + length + 4
        for value in event.summary.value:
            if value.HasField("simple_value"):
                tags.setdefault(value.tag, []).append(event.step)
    return tags


@pytest.mark.slow
@pytest.mark.usefixtures("ray_session")
def test_each_trial_logs_its_metrics_per_epoch_to_tensorboard(tmp_path: Path) -> None:
    path = run_study(study("tb", "grid", {"hidden_size": [4, 8]}, epochs=2), tmp_path)
    event_files = sorted((path / "ray").glob("*/metrics/events.out.tfevents.*"))
    assert len(event_files) == 2  # one per trial, in a subfolder of the trial's folder
    # and no other: Tune adds no TensorBoard logger of its own (each curve drawn once)
    assert sorted((path / "ray").rglob("events.out.tfevents.*")) == event_files
    for event_file in event_files:
        tags = scalar_tags(event_file)
        assert tags["valid_loss"] == [1, 2]
        assert tags["accuracy_best"] == [1, 2]
        # Ray's timers and counters are left out; only hypertune's metrics are logged.
        assert set(tags) == {
            f"{m}{s}" for m in ("train_loss", "valid_loss", "accuracy") for s in ("", "_best")
        }


@pytest.mark.usefixtures("ray_session")
def test_failed_trials_are_recorded_and_the_study_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Plain SGD with lr=1e37 overflows the loss to inf (a non-finite trial); lr=1e39 cannot
    # even be applied to float32 weights, so torch raises inside optimizer.step() at train time.
    config = study("faults", "grid", {"lr": [0.05, 1e37, 1e39]})
    config.model["optimizer"] = "sgd"
    path = run_study(config, tmp_path)
    results = pd.read_csv(path / "results.csv").set_index("lr")
    assert results.loc[0.05, "status"] == "TERMINATED"
    assert results.loc[1e37, "status"] == "NAN"
    assert results.loc[1e39, "status"] == "ERROR"
    assert "overflow" in results.loc[1e39, "error"]
    assert len(results.loc[1e39, "error"].splitlines()) == 1
    meta = json.loads((path / "study.json").read_text())
    assert meta["status"] == "finished"
    assert (meta["search"], meta["metric"], meta["mode"], meta["seeds"]) == (
        "grid",
        "valid_loss",
        "min",
        [0],
    )
    assert from_dict(meta["config"]) == config  # the config as run, complete
    assert {"commit", "dirty", "diff_sha256"} <= set(meta["git"])
    assert {"python", "torch", "ray", "hypertune"} <= set(meta["versions"])
    assert meta["data"]["fingerprint"]

    assert main(["show", "faults", "--storage", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[1].split()[1] == "TERMINATED"  # finished trials first
    assert "3 trials: 1 TERMINATED, 1 NAN, 1 ERROR" in err


@pytest.mark.slow
@pytest.mark.usefixtures("ray_session")
def test_random_search_is_seeded_and_reruns_identically(tmp_path: Path) -> None:
    space = {"lr": {"low": 1e-3, "high": 1e-1, "log": True}, "hidden_size": "4:16"}
    runs = []
    for name in ("first", "second"):
        path = run_study(study(name, "random", space, samples=2, seeds=2), tmp_path)
        runs.append(pd.read_csv(path / "results.csv"))
    first, second = runs
    assert len(first) == 4 and set(first["status"]) == {"TERMINATED"}
    assert first["lr"].between(1e-3, 1e-1).all()
    assert first["hidden_size"].between(4, 16).all()
    assert pd.api.types.is_integer_dtype(first["hidden_size"])
    # Each configuration runs once per seed, with the same values.
    assert sorted(first.groupby(["lr", "hidden_size"])["seed"].apply(sorted)) == [[0, 1]] * 2

    key = ["lr", "hidden_size", "seed"]
    merged = first.merge(second, on=key, suffixes=("_a", "_b"))
    assert len(merged) == 4
    for metric in ("train_loss", "valid_loss", "accuracy"):
        assert (merged[f"{metric}_a"] == merged[f"{metric}_b"]).all(), metric

    recorded = first.iloc[-1]
    metrics, row = rerun_trial(tmp_path, "first", str(recorded["trial_id"]))
    assert row.seed == int(recorded["seed"])
    assert metrics["valid_loss"] == pytest.approx(recorded["valid_loss"], rel=1e-6)


@pytest.mark.slow
@pytest.mark.usefixtures("ray_session")
def test_bayes_rounds_integers_within_the_range(tmp_path: Path) -> None:
    # A range string becomes a domain over its bounds; BayesOpt samples floats, the trainable
    # rounds them for the integer parameter, and results.csv records what was trained.
    space = {"hidden_size": "4:4:16", "lr": {"low": 1e-3, "high": 1e-1, "log": True}}
    path = run_study(study("bayes", "bayes", space, samples=3), tmp_path)
    results = pd.read_csv(path / "results.csv")
    assert len(results) == 3 and set(results["status"]) == {"TERMINATED"}
    assert pd.api.types.is_integer_dtype(results["hidden_size"])
    assert results["hidden_size"].between(4, 16).all()
    assert results["lr"].between(1e-3, 1e-1).all()
    assert len(set(results["lr"])) == 3  # suggestions, not one repeated point


@pytest.mark.slow
@pytest.mark.usefixtures("ray_session")
def test_hyperopt_repeats_each_suggestion_per_seed(tmp_path: Path) -> None:
    space = {"num_layers": [1, 2], "lr": {"low": 1e-3, "high": 1e-1, "log": True}}
    path = run_study(study("tpe", "hyperopt", space, samples=2, seeds=2), tmp_path)
    results = pd.read_csv(path / "results.csv")
    assert len(results) == 4 and set(results["status"]) == {"TERMINATED"}
    assert set(results["num_layers"]) <= {1, 2}
    groups = results.groupby(["num_layers", "lr"])["seed"].apply(sorted).tolist()
    assert groups == [[0, 1]] * 2 or groups == [[0, 1, 0, 1]]


def test_model_based_searchers_are_limited_to_the_free_slots() -> None:
    from ray.tune.search import ConcurrencyLimiter

    from hypertune.search.run import _searcher

    for search in ("bayes", "hyperopt"):
        config = study("s", search, {"lr": {"low": 1e-3, "high": 1e-1}}, samples=5, seeds=2)
        space = {n: to_domain(s, search) for n, s in config.space.items()}
        searcher, samples = _searcher(config, space, "valid_loss_best", "min", 3, [], [])
        assert isinstance(searcher, ConcurrencyLimiter)
        assert searcher.max_concurrent == 3
        assert samples == 10


def test_a_registered_searcher_is_a_study_search_everywhere(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.hyperopt import HyperOptSearch

    from hypertune import searchers
    from hypertune.cli.parser import build_parser
    from hypertune.errors import ConfigError
    from hypertune.search.run import _searcher

    with pytest.raises(ConfigError, match=r"^study\.search: 'toy' is unknown; choose one of grid"):
        study("s", "toy", {"lr": [0.1, 0.01]})
    toy = searchers.Searcher(
        name="toy",
        label="Toy",
        build="ray.tune.search.hyperopt:HyperOptSearch",
        options={"random_state_seed": 3},
        adaptive=True,
    )
    monkeypatch.setitem(searchers._REGISTRY, "toy", toy)
    config = study("s", "toy", {"lr": {"low": 1e-3, "high": 1e-1}}, samples=3)
    space = {n: to_domain(s, "toy") for n, s in config.space.items()}
    searcher, samples = _searcher(config, space, "valid_loss_best", "min", 2, [], [])
    assert isinstance(searcher, ConcurrencyLimiter) and samples == 3
    assert isinstance(searcher.searcher, HyperOptSearch)
    assert (searcher.searcher.metric, searcher.searcher.mode) == ("valid_loss_best", "min")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--help"])
    assert "grid | random | bayes | hyperopt | toy" in capsys.readouterr().out


def test_bayes_refuses_categories_before_anything_runs(tmp_path: Path) -> None:
    config = study("cats", "bayes", {"norm": ["none", "layernorm"]})
    with pytest.raises(SpaceError, match=r"space\.norm: Bayesian search cannot sample categories"):
        run_study(config, tmp_path)
    assert not (tmp_path / "cats").exists()
    assert store.known_studies(tmp_path) == []


def test_unreachable_cluster_is_refused_before_the_study_exists(tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = study("far", "grid", {"num_layers": [1]})
    with pytest.raises(
        StudyError, match=rf"--address: cannot reach a Ray cluster at 127\.0\.0\.1:{port}"
    ):
        run_study(config, tmp_path, address=f"127.0.0.1:{port}")
    assert not (tmp_path / "far").exists()


@pytest.mark.slow
@pytest.mark.usefixtures("ray_session")
def test_grid_runs_every_combination_once_per_seed(tmp_path: Path) -> None:
    # Trials alone: fused packs are handed out by their work instead (tests/test_fused.py).
    config = study("seeds", "grid", {"num_layers": [1, 2]}, seeds=2, fuse=False)
    path = run_study(config, tmp_path)
    results = pd.read_csv(path / "results.csv")
    assert sorted(zip(results["num_layers"], results["seed"], strict=True)) == [
        (1, 0),
        (1, 1),
        (2, 0),
        (2, 1),
    ]
    # The seed changes the initial weights and batch order, so the metrics differ.
    one = results[results["num_layers"] == 1]
    assert one["valid_loss"].nunique() == 2
    # The larger model was handed out first (its trials have the lowest numbers), seed 0 first.
    first = results.sort_values("trial_id").iloc[0]
    assert (first["num_layers"], first["seed"]) == (2, 0)


def test_rays_trial_states_become_hypertunes_in_the_recorder_alone() -> None:
    from types import SimpleNamespace

    from hypertune.search import trial_record
    from hypertune.study.record import FAILED, STATUSES, TrialRecord, TrialStatus

    config = from_dict({**BASE, "study": {**BASE["study"], "name": "s"}, "space": {"lr": [0.1]}})

    def row(status: str, loss: float, parameters: float = 10.0) -> TrialRecord:
        trial = SimpleNamespace(
            trial_id="a_00000",
            config={"lr": 0.1},
            last_result={"valid_loss": loss, "parameters": parameters, "training_iteration": 1},
            status=status,
            get_error=lambda: "Traceback ...\nValueError: boom",
        )
        return trial_record(trial, config.space)

    assert row("TERMINATED", 0.5).status is TrialStatus.FINISHED
    assert row("TERMINATED", 0.5).to_row()["status"] == "TERMINATED"
    assert row("TERMINATED", float("nan")).status is TrialStatus.NAN
    # A cost that could not be counted (a lazy layer's weights) is unknown, not a diverged trial.
    uncounted = row("TERMINATED", 0.5, parameters=float("nan"))
    assert uncounted.status is TrialStatus.FINISHED and math.isnan(uncounted.metrics["parameters"])
    errored = row("ERROR", float("nan"))
    assert (errored.status, errored.error) == (TrialStatus.ERROR, "ValueError: boom")
    assert STATUSES == ("TERMINATED", "ERROR", "NAN") and FAILED == ("ERROR", "NAN")  # DESIGN.md


def test_tensorboard_logs_metrics_by_their_names_and_leaves_out_nan() -> None:
    from hypertune.search.tblog import MetricsTensorBoard

    logged: list[tuple[str, float, int]] = []
    writer = SimpleNamespace(
        add_scalar=lambda tag, v, global_step: logged.append((tag, v, global_step))
    )
    metrics = {"valid_loss": float("nan"), "accuracy": 0.5, "train_loss": float("inf"), "pid": 7}
    MetricsTensorBoard._log(writer, metrics, 3)  # type: ignore[arg-type]
    assert logged == [("accuracy", 0.5, 3)]


def test_mlflow_failing_costs_the_study_only_its_mlflow_runs(
    tiny_study: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from hypertune.config import load_config
    from hypertune.search.mlflowlog import MetricsMLflow

    class Broken:
        def __getattr__(self, name: str) -> object:
            raise OSError(28, "No space left on device")

    logger = MetricsMLflow(tmp_path, load_config(tiny_study), [])
    logger._client = Broken()
    trial = SimpleNamespace(trial_id="t1", config={"num_layers": 1, "hidden_size": 4, "seed": 0})
    with caplog.at_level("WARNING", logger="hypertune"):
        logger.log_trial_start(trial)
        logger.log_trial_result(1, trial, {"valid_loss": 1.0, "training_iteration": 1})
        logger.log_trial_end(trial)
    assert [r.getMessage() for r in caplog.records] == [
        "MLflow logging stopped (OSError: [Errno 28] No space left on device); the study goes on"
    ]
