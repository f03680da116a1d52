"""curves.csv: every trial's metrics epoch by epoch, kept by the driver and read by the report."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from types import SimpleNamespace

import pytest

from hypertune.search.curves import CurveRecorder
from hypertune.search.packs import EPOCHS, MEMBERS
from hypertune.search.recorder import ERROR, RETRY_OF
from hypertune.study.curves import CURVE_COLUMNS, CURVES_FILE, curve_row, load_curves, write_curves
from hypertune.train import SECONDS


def test_curves_round_trip_exactly_sorted_by_trial_and_epoch(tmp_path: Path) -> None:
    rows = [
        curve_row("b", 1, {"valid_loss": 0.1 + 0.2, "accuracy": 0.5, SECONDS: 1.25}),
        curve_row("a", 2, {"valid_loss": 1 / 3, "train_loss": True, "accuracy": "x"}),
        curve_row("a", 1, {"valid_loss": 2.0}),
    ]
    write_curves(tmp_path, rows)
    curves = load_curves(tmp_path)
    assert list(curves.columns) == list(CURVE_COLUMNS)
    assert list(zip(curves["trial_id"], curves["epoch"], strict=True)) == [
        ("a", 1),
        ("a", 2),
        ("b", 1),
    ]
    assert curves["valid_loss"].tolist() == [2.0, 1 / 3, 0.1 + 0.2]  # floats read back exactly
    # A value that is not a number (a flag, a word) is unknown, not 1 or an error.
    assert math.isnan(curves.loc[1, "train_loss"]) and math.isnan(curves.loc[1, "accuracy"])
    assert list((tmp_path).iterdir()) == [tmp_path / CURVES_FILE]  # no temporary file left


def test_a_study_without_curves_or_with_a_broken_file_has_none(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert load_curves(tmp_path).empty  # a study from before curves were kept: no warning
    assert not caplog.records
    (tmp_path / CURVES_FILE).write_text("what,ever\n1,2\n")
    with caplog.at_level(logging.WARNING, logger="hypertune"):
        assert load_curves(tmp_path).empty
    assert "not a curves table (no trial_id, epoch column)" in caplog.text


def _trial(trial_id: str, **config: object) -> SimpleNamespace:
    return SimpleNamespace(trial_id=trial_id, config=config)


def _metrics(epoch: int, loss: float, seconds: float | None = None) -> dict[str, object]:
    metrics: dict[str, object] = {EPOCHS: epoch, "valid_loss": loss, "accuracy": 1 - loss}
    if seconds is not None:
        metrics[SECONDS] = seconds
    return metrics


def test_the_recorder_keeps_one_row_per_trial_and_epoch_and_writes_on_checkpoint(
    tmp_path: Path,
) -> None:
    recorder = CurveRecorder(tmp_path)
    lone, pack, retried = _trial("t1"), _trial("p1"), _trial("t9", **{RETRY_OF: "t2"})
    for epoch in (1, 2):
        recorder.on_trial_result(epoch, [], lone, _metrics(epoch, 1 / epoch, 0.5 * epoch))
        members = {"0": _metrics(epoch, 0.9 / epoch), "1": _metrics(min(epoch, 1), 0.7)}
        recorder.on_trial_result(epoch, [], pack, {MEMBERS: members})
    recorder.on_trial_result(1, [], retried, _metrics(1, 0.4, 2.0))
    recorder.on_trial_result(2, [], lone, {ERROR: "boom", **_metrics(2, 9.0)})  # kept already
    assert not (tmp_path / CURVES_FILE).exists()  # written when a trial checkpoints or ends
    recorder.on_checkpoint(2, [], lone, None)
    curves = load_curves(tmp_path).set_index(["trial_id", "epoch"])
    # A pack's members by their own ids; a member that ended reports its last epoch once; a
    # retried trial under the id of the row it replaces.
    assert curves.index.tolist() == [
        ("p1-0", 1),
        ("p1-0", 2),
        ("p1-1", 1),
        ("t1", 1),
        ("t1", 2),
        ("t2", 1),
    ]
    assert curves.loc[("t1", 2), "valid_loss"] == 0.5 and curves.loc[("t1", 2), SECONDS] == 1.0
    assert curves.loc[("p1-0", 2), "accuracy"] == pytest.approx(0.55)

    # Restarted (resume), the trial reports epoch 2 again: its new values replace the row's,
    # and a metric the new result lacks keeps the value the epoch had.
    again = CurveRecorder(tmp_path)
    again.on_trial_result(2, [], lone, _metrics(2, 0.25))
    again.on_trial_complete(2, [], lone)
    row = load_curves(tmp_path).set_index(["trial_id", "epoch"]).loc[("t1", 2)]
    assert row["valid_loss"] == 0.25 and row[SECONDS] == 1.0
    assert len(load_curves(tmp_path)) == 6


def test_a_new_experiment_drops_the_epochs_of_trials_it_trains_again(tmp_path: Path) -> None:
    # Before a crash, t1 finished (results.csv holds it) and t2 had trained one epoch.
    write_curves(tmp_path, [curve_row("t1", 1, {"valid_loss": 0.5}), curve_row("t2", 1, {})])
    # The rest run as a new experiment: t2 trains again from its start as t7.
    recorder = CurveRecorder(tmp_path, kept={"t1"})
    recorder.on_experiment_end([])  # nothing new reported: the file still loses t2
    assert load_curves(tmp_path)["trial_id"].tolist() == ["t1"]
    recorder.on_trial_result(1, [], _trial("t7"), _metrics(1, 0.3))
    recorder.on_trial_complete(1, [], _trial("t7"))
    assert load_curves(tmp_path)["trial_id"].tolist() == ["t1", "t7"]
    # Restored by Ray (the same ids go on), every stored epoch stays.
    assert len(CurveRecorder(tmp_path).rows) == 2


def test_a_recorder_that_cannot_write_says_so_once_and_the_study_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "study").write_text("a file where the study's folder should be")
    recorder = CurveRecorder(tmp_path / "study")
    with caplog.at_level(logging.WARNING, logger="hypertune"):
        for epoch in (1, 2):
            recorder.on_trial_result(epoch, [], _trial("t1"), _metrics(epoch, 0.5))
            recorder.on_checkpoint(epoch, [], _trial("t1"), None)
    assert caplog.text.count("learning curves not kept") == 1
