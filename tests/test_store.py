"""A study's files: one owner, exact round trips, damaged files named in one error line."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from conftest import ROOT, run_cli
from hypertune.cli import main
from hypertune.config import Metric
from hypertune.errors import StudyError
from hypertune.study.record import SCHEMA, StudyRecord, StudyState
from hypertune.study.store import (
    create_study_dir,
    read_results,
    read_study,
    study_lock,
    write_atomic,
    write_results,
    write_study,
)

PARAMS = ["lr", "hidden_size"]


def record(name: str = "s") -> StudyRecord:
    """The record of a small finished study."""
    return StudyRecord(
        name=name,
        status=StudyState.FINISHED,
        config={"study": {"name": name, "epochs": 2}, "space": {"lr": [0.1, 0.3]}},
        metric=Metric("valid_loss", "min"),
        search="grid",
        seeds=1,
        params=PARAMS,
        data={"fingerprint": "abc"},
    )


def study(storage: Path, name: str = "s", rows: list[dict] | None = None) -> Path:
    """A finished study folder as `run` leaves it."""
    path = create_study_dir(storage, name)
    write_study(path, record(name))
    write_results(path, rows if rows is not None else ROWS, PARAMS)
    return path


ROWS = [
    {
        "trial_id": f"t{n}",
        "status": "TERMINATED",
        "lr": 0.1 + 0.2 * n,  # 0.30000000000000004: needs all 17 digits back
        "hidden_size": 8 * (n + 1),
        "valid_loss": 1 / 3 + n,
        "valid_loss_best": 2 / 3 + n,
        "epochs": 2,
        "seed": 0,
        "seconds": 0.123456789,
    }
    for n in range(3)
]


def test_rows_read_back_are_written_again_byte_for_byte(tmp_path: Path) -> None:
    path = study(tmp_path)
    before = (path / "results.csv").read_bytes()
    again = read_results(tmp_path, "s")
    write_results(path, again.to_dict("records"), PARAMS)
    assert (path / "results.csv").read_bytes() == before
    assert again["epochs"].dtype.kind == "i" and again["seed"].dtype.kind == "i"


def test_a_torn_last_row_is_dropped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = study(tmp_path)
    text = (path / "results.csv").read_text()
    (path / "results.csv").write_text(text + "t9,TERMINATED,0.5,8,0.")  # cut mid-write
    results = read_results(tmp_path, "s")
    assert list(results["trial_id"]) == ["t0", "t1", "t2"]
    assert results["epochs"].dtype.kind == "i"
    assert "row 5 is cut short" in caplog.text
    (path / "results.csv").write_text(text + "t9,TERMINATED,0.5\n")  # too few fields
    assert list(read_results(tmp_path, "s")["trial_id"]) == ["t0", "t1", "t2"]
    assert "row 5 is malformed" in caplog.text


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_files_get_the_mode_the_umask_allows(tmp_path: Path, mask: int) -> None:
    old = os.umask(mask)
    try:
        write_atomic(tmp_path / "f.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "f.txt").stat().st_mode) == 0o666 & ~mask


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "results.csv: not a results table"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "results.csv: unreadable"),
        (b"a,b,c\n1,2,3\n", "results.csv: not a results table"),
    ],
)
@pytest.mark.parametrize("command", ["show", "report", "resume"])
def test_damaged_results_are_one_error_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: str, content: bytes, message: str
) -> None:
    path = study(tmp_path)
    (path / "results.csv").write_bytes(content)
    if command == "resume":
        write_study(path, replace(read_study(tmp_path, "s"), status=StudyState.INTERRUPTED))
    code = main(
        [command, "s", "--storage", str(tmp_path), "--out", str(reports_beside(tmp_path))][
            : 4 + 2 * (command != "show")
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: ") and message in err, err
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"[]", "not a study record (expected a JSON object)"),
        (b"{}", "'name' is missing; expected a str"),
        (b"\xff\xfe\x00binary", "study.json: unreadable"),
        (
            b'{"name": "s", "status": "finished", "config": []}',
            "'config' is a list; expected a dict",
        ),
    ],
)
@pytest.mark.parametrize("command", ["show", "report", "resume", "rerun"])
def test_damaged_study_records_are_one_error_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: str, content: bytes, message: str
) -> None:
    path = study(tmp_path)
    (path / "study.json").write_bytes(content)
    args = [command, "s"] + (["t0"] if command == "rerun" else []) + ["--storage", str(tmp_path)]
    code = main(args)
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: ") and message in err, err


# study.json as hypertune wrote it before the record had a schema version.
OLD_STUDY = {
    "name": "s",
    "status": "finished",
    "config": {"study": {"name": "s", "epochs": 2, "search": "grid"}, "space": {}},
    "search": "random",
    "metric": "accuracy",
    "mode": "last",
    "direction": "max",
    "seeds": [0, 1, 2],
    "params": PARAMS,
    "trials_planned": 12,
    "mlflow": True,
    "data": {"fingerprint": "abc"},
    "code": [{"where": "model.architecture", "reference": "m:build"}],
    "attempts": [{"trial_id": "t1", "status": "ERROR", "retry": 1}],
    "git": {"commit": "0" * 40, "dirty": False},
    "versions": {"torch": "2.13"},
    "host": {"node": "n"},
    "started": "2026-01-01T00:00:00Z",
    "ended": None,
}


def test_a_study_record_from_before_the_schema_is_read_and_written_back_whole(
    tmp_path: Path,
) -> None:
    path = create_study_dir(tmp_path, "s")
    (path / "study.json").write_text(json.dumps(OLD_STUDY))
    old = read_study(tmp_path, "s")
    assert (old.metric, old.direction, old.objective_column) == (
        Metric("accuracy", "last"),
        "max",
        "accuracy",
    )
    assert (old.search, old.seeds, old.trials_planned, old.mlflow) == ("random", 3, 12, True)
    assert old.code == OLD_STUDY["code"] and old.attempts == OLD_STUDY["attempts"]
    write_study(path, old)
    written = json.loads((path / "study.json").read_text())
    # Every key kept; the version added, and how it was packed (it was not).
    assert written == {**OLD_STUDY, "schema": SCHEMA, "packs": {}}
    assert read_study(tmp_path, "s") == old


def test_the_derived_keys_follow_the_record(tmp_path: Path) -> None:
    path = create_study_dir(tmp_path, "s")
    write_study(path, replace(record(), metric=Metric("accuracy", "max"), seeds=2))
    written = json.loads((path / "study.json").read_text())
    assert written["schema"] == SCHEMA
    assert (written["metric"], written["mode"], written["direction"]) == ("accuracy", "max", "max")
    assert written["seeds"] == [0, 1]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"schema": SCHEMA + 1}, f"'schema' is {SCHEMA + 1}; this hypertune reads"),
        ({"direction": "max"}, "'direction' is 'max'; expected 'min' (metric valid_loss:min)"),
        ({"metric": "loss"}, "'metric' is 'loss'; expected one of"),
        ({"status": "done"}, "'status' is 'done'; expected one of running, interrupted"),
        ({"params": ["lr", 3]}, "'params' is a list with a non-string"),
        ({"seeds": "3"}, "'seeds' is a str; expected a list or an int"),
    ],
)
def test_a_study_record_that_does_not_match_names_file_and_key(
    tmp_path: Path, change: dict, message: str
) -> None:
    path = create_study_dir(tmp_path, "s")
    (path / "study.json").write_text(json.dumps({**record().to_json(), **change}))
    with pytest.raises(StudyError) as caught:
        read_study(tmp_path, "s")
    assert str(caught.value).startswith(f"{path / 'study.json'}: ") and message in str(caught.value)


def test_a_folder_without_a_study_is_never_taken_over(tmp_path: Path) -> None:
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "results.csv").write_text("trial_id,status\nold,TERMINATED\n")
    with pytest.raises(StudyError, match="exists and holds no study"):
        create_study_dir(tmp_path, "s")
    assert (tmp_path / "s" / "results.csv").read_text().endswith("old,TERMINATED\n")


def test_a_finished_study_is_not_offered_to_resume(tmp_path: Path) -> None:
    study(tmp_path)
    with pytest.raises(StudyError, match="has finished; pass --name NEW_NAME") as caught:
        create_study_dir(tmp_path, "s")
    assert "resume" not in str(caught.value)


def test_a_study_in_use_cannot_be_resumed_or_locked_twice(tmp_path: Path) -> None:
    path = study(tmp_path)
    write_study(path, replace(read_study(tmp_path, "s"), status=StudyState.INTERRUPTED))
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom pathlib import Path\n"
            "from hypertune.study.store import study_lock\n"
            f"with study_lock(Path({str(path)!r})):\n    print('held', flush=True)\n"
            "    time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with (
            pytest.raises(StudyError, match=f"being run by another process \\(pid {holder.pid}\\)"),
            study_lock(path),
        ):
            pass
        out = str(reports_beside(tmp_path))
        done = run_cli("resume", "s", "--storage", str(tmp_path), "--out", out, cwd=tmp_path)
        assert done.returncode == 2
        assert done.stderr.strip().startswith("error: study 's' is being run by another process")
    finally:
        holder.kill()
        holder.wait()
    # A killed owner releases the lock.
    with study_lock(path):
        pass


def reports_beside(storage: Path) -> Path:
    """A folder of reports beside `storage` (one inside it is refused)."""
    return storage.parent / f"{storage.name}-reports"


def test_a_report_is_named_by_the_command_not_by_the_study_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = study(tmp_path, "original")
    shutil.copytree(path, tmp_path / "copy")
    write_study(tmp_path / "copy", replace(read_study(tmp_path, "copy"), name="../../escaped"))
    out = reports_beside(tmp_path)
    assert main(["report", "copy", "--storage", str(tmp_path), "--out", str(out)]) == 0
    capsys.readouterr()
    assert sorted(p.name for p in out.iterdir()) == ["copy"]
    assert not (tmp_path.parent / "escaped").exists()


@pytest.mark.slow
def test_two_runs_of_one_name_leave_one_intact_study(tiny_study: Path, tmp_path: Path) -> None:
    # git as slow as in a large repository: the first run holds its claim for seconds.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    real_git = shutil.which("git")
    (bin_dir / "git").write_text(f'#!/bin/sh\nsleep 2\nexec {real_git} "$@"\n')
    (bin_dir / "git").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, str(ROOT / "hypertuner.py"), "run", str(tiny_study), "--smoke"]
    first = subprocess.Popen(command, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    time.sleep(0.3)
    second = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
    _, first_err = first.communicate(timeout=300)
    # Either may claim the study first (start-up time varies): exactly one runs it.
    codes = sorted([first.returncode, second.returncode])
    assert codes == [0, 2], (first_err, second.stderr)
    refused = first_err if first.returncode == 2 else second.stderr
    # Refused either while the other run holds the study or once it has written study.json.
    assert re.match(
        r"error: study 'tiny' (is being run by another process|already exists in runs/tiny)",
        refused,
    ), refused
    meta = json.loads((tmp_path / "runs" / "tiny" / "study.json").read_text())
    assert meta["status"] == "finished"
    results = read_results(tmp_path / "runs", "tiny")
    assert len(results) == 2 and set(results["status"]) == {"TERMINATED"}


def test_a_report_folder_that_is_a_file_is_one_error_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    study(tmp_path)
    afile = reports_beside(tmp_path)
    afile.write_text("")
    code = main(["report", "s", "--storage", str(tmp_path), "--out", str(afile)])
    assert code == 2
    assert capsys.readouterr().err.strip() == f"error: --out: {afile} is a file, not a folder"


@pytest.mark.parametrize("mask", [0o022, 0o077])
def test_a_report_folder_gets_the_mode_the_umask_allows(tmp_path: Path, mask: int) -> None:
    from hypertune.report.files import publish

    def build(staging: Path) -> list[Path]:
        (staging / "report.md").write_text("x")
        return [staging / "report.md"]

    old = os.umask(mask)
    try:
        publish(tmp_path / "reports" / "s", build, "s")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "reports" / "s").stat().st_mode) == 0o777 & ~mask
