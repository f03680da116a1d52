"""results.csv rows as `TrialRecord`s: a row read back is the row written, and a row that does
not match names the file, the trial and the column."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from hypertune.errors import StudyError
from hypertune.study.record import TrialRecord, TrialStatus
from hypertune.study.store import RESULTS_FILE, parse_results, write_results

PARAMS = ["lr", "hidden_size"]
ROW = {
    "trial_id": "t0",
    "status": "TERMINATED",
    "lr": 0.30000000000000004,
    "hidden_size": 16,
    "valid_loss": 1 / 3,
    "valid_loss_best": 2 / 3,
    "epochs": 2,
    "seed": 1,
    "seconds": 0.123456789,
}
ERRORED = {**ROW, "trial_id": "t1", "status": "ERROR", "epochs": 1, "error": "ValueError: boom"}


def test_a_row_becomes_a_record_and_the_same_row_again() -> None:
    record = TrialRecord.from_row(ROW, PARAMS)
    assert record == TrialRecord(
        trial_id="t0",
        status=TrialStatus.FINISHED,
        params={"lr": 0.30000000000000004, "hidden_size": 16},
        metrics={"valid_loss": 1 / 3, "valid_loss_best": 2 / 3},
        epochs=2,
        seed=1,
        seconds=0.123456789,
    )
    assert record.to_row() == ROW
    assert list(record.to_row()) == list(ROW)  # the column order results_columns keeps
    assert TrialRecord.from_row(ERRORED, PARAMS).to_row() == ERRORED


def test_rows_read_back_from_results_csv_are_records_written_byte_for_byte(
    tmp_path: Path,
) -> None:
    write_results(tmp_path, [ROW, ERRORED], PARAMS)
    before = (tmp_path / RESULTS_FILE).read_bytes()
    frame = parse_results(before.decode(), tmp_path / RESULTS_FILE)
    records = [TrialRecord.from_row(row, PARAMS) for row in frame.to_dict("records")]
    assert records[0].error is None and records[1].error == "ValueError: boom"
    assert isinstance(records[0].params["hidden_size"], int)
    write_results(tmp_path, [record.to_row() for record in records], PARAMS)
    assert (tmp_path / RESULTS_FILE).read_bytes() == before


def test_empty_cells_read_back_as_nan_metrics_and_no_error() -> None:
    row = {**ROW, "valid_loss": math.nan, "hidden_size": math.nan, "error": math.nan}
    record = TrialRecord.from_row(row, PARAMS)
    assert math.isnan(record.metrics["valid_loss"])
    assert record.params["hidden_size"] is None and record.error is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"status": "DONE"}, "'status' is 'DONE'; expected one of TERMINATED, ERROR, NAN"),
        ({"epochs": "two"}, "'epochs' is 'two'; expected a whole number"),
        ({"epochs": 1.5}, "'epochs' is 1.5; expected a whole number"),
        ({"seed": math.nan}, "'seed' is empty; expected a whole number"),
        ({"valid_loss": "low"}, "'valid_loss' is 'low'; expected a number"),
        ({"trial_id": math.nan}, "trial '?': 'trial_id' is empty; expected a value"),
    ],
)
def test_a_row_that_does_not_match_names_the_file_trial_and_column(
    change: dict[str, object], message: str
) -> None:
    where = Path("runs/s/results.csv")
    with pytest.raises(StudyError, match=r"^runs/s/results\.csv: trial '.*': ") as caught:
        TrialRecord.from_row({**ROW, **change}, PARAMS, where)
    assert message in str(caught.value)


def test_a_missing_column_is_named() -> None:
    row = {key: value for key, value in ROW.items() if key != "hidden_size"}
    with pytest.raises(StudyError, match="trial 't0': 'hidden_size' is missing"):
        TrialRecord.from_row(row, PARAMS)
