"""Every trial's weights kept by a study run with keep_weights, and what `best` makes of them."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

import hypertune
from hypertune.cli import main
from hypertune.config import apply_overrides, from_dict, load_config
from hypertune.data import load_dataset
from hypertune.errors import ConfigError, StudyError
from hypertune.search import rerun, run_study
from hypertune.study.store import read_results
from hypertune.train import evaluate_on
from hypertune.weights import WEIGHTS_DIR


def _valid(trial_model: torch.nn.Module) -> tuple[float, float]:
    data = load_dataset("digits-seq")
    return evaluate_on(trial_model, data.x_valid, data.y_valid, data.lengths_valid)


@pytest.mark.parametrize("fuse", [True, False], ids=["fused-padded", "alone"])
def test_a_study_keeps_each_trials_weights_and_best_tests_them_without_training(
    ray_session: None,
    tiny_study: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    fuse: bool,
) -> None:
    config = dataclasses.replace(load_config(tiny_study), keep_weights=True, fuse=fuse)
    path = run_study(config, tmp_path / "runs")
    results = read_results(tmp_path / "runs", "tiny")
    ids = sorted(results["trial_id"].astype(str))
    assert len(ids) == 4
    assert sorted(p.stem for p in (path / WEIGHTS_DIR).glob("*.pt")) == ids
    assert not list((path / WEIGHTS_DIR).glob(".*"))  # no temporary file left
    # Fused, GRUs of one width and depths 1 and 2 train in one pack (a member's own layers
    # taken out of it; widths: tests/test_fused.py); each scores on the validation split as
    # recorded.
    for row in results.to_dict("records"):
        model = hypertune.load_best(tmp_path / "runs", "tiny", str(row["trial_id"]))
        assert model.rnn.hidden_size == row["hidden_size"]
        assert model.rnn.num_layers == row["num_layers"]
        loss, accuracy = _valid(model)
        assert loss == pytest.approx(row["valid_loss"], rel=1e-5)
        assert accuracy == pytest.approx(row["accuracy"], abs=1e-6)

    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("kept weights are tested, not trained again")

    monkeypatch.setattr(rerun, "fit_module", no_training)
    assert main(["best", "tiny", "--storage", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("testing the weights the study kept of the best trial by")
    assert out.splitlines()[2].split() == ["metric", "recorded", "kept"]
    best = hypertune.keep_best(tmp_path / "runs", "tiny")
    assert best.source == "kept"
    assert best.retrained["valid_loss"] == pytest.approx(best.recorded["valid_loss"], rel=1e-5)
    kept = hypertune.load_best(tmp_path / "runs", "tiny")
    same = hypertune.load_best(tmp_path / "runs", "tiny", best.trial_id)
    for name, tensor in kept.state_dict().items():
        assert torch.equal(tensor, same.state_dict()[name])

    # Without its file a trial is trained again, and loading its weights says how to get them.
    (path / WEIGHTS_DIR / f"{ids[0]}.pt").unlink()
    with pytest.raises(StudyError, match="--keep-weights"):
        hypertune.load_best(tmp_path / "runs", "tiny", ids[0])
    with pytest.raises(StudyError, match="trial 'nope' not in study 'tiny'"):
        hypertune.load_best(tmp_path / "runs", "tiny", "nope")
    monkeypatch.undo()
    again = hypertune.keep_best(tmp_path / "runs", "tiny", ids[0])
    assert again.source == "retrained"


def test_keep_weights_is_a_study_setting_and_refused_where_no_model_is_handed_back() -> None:
    raw = {"study": {"name": "s"}, "model": {"architecture": "mlp"}, "space": {"lr": [0.1, 0.01]}}
    assert not from_dict(raw).keep_weights
    config = from_dict(apply_overrides(raw, {"keep_weights": True}))
    assert config.keep_weights and config.to_dict()["study"]["keep_weights"] is True
    assert from_dict(config.to_dict()).keep_weights  # as study.json records it
    with pytest.raises(ConfigError, match=r"^study\.keep_weights: mltrainer"):
        from_dict({**raw, "study": {"name": "s", "trainer": "mltrainer", "keep_weights": True}})
    with pytest.raises(ConfigError, match=r"study\.keep_weights"):
        from_dict({**raw, "study": {"name": "s", "keep_weights": "yes"}})


def test_a_trial_id_that_is_a_path_is_refused(tmp_path: Path) -> None:
    from hypertune.weights import trial_file

    with pytest.raises(StudyError, match="is not a trial id"):
        trial_file(tmp_path, "study", "../../etc/passwd")


def test_a_pickled_keeper_keeps_weights_where_the_resumed_study_is(
    tiny_study: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import pickle
    from types import SimpleNamespace

    import pandas as pd

    from hypertune.search import recorder as rec
    from hypertune.search.keeper import WeightsKeeper
    from hypertune.study import store

    monkeypatch.setattr(store, "read_results", lambda *args: pd.DataFrame(columns=store.LEADING))
    data = pickle.dumps(WeightsKeeper(Path("runs") / "tiny"))  # as Tune saves it, cwd-relative
    moved = tmp_path / "elsewhere" / "tiny"
    live = rec.ResultRecorder(load_config(tiny_study), moved, rec.Progress(4), None)
    with rec.live_recorder(live):
        keeper = pickle.loads(data)
    assert keeper.path == moved
    # A checkpoint it cannot read is said once; the study goes on (Tune would swallow it).
    broken = SimpleNamespace(as_directory=lambda: (_ for _ in ()).throw(OSError("gone")))
    trial = SimpleNamespace(trial_id="t", config={})
    for _ in range(2):
        keeper.on_checkpoint(1, [], trial, broken)
    assert [r.getMessage() for r in caplog.records].count(
        f"trial weights not kept in {moved / WEIGHTS_DIR}: gone"
    ) == 1
