"""A full disk never leaves a study that cannot be resumed: one `error:` line, the study kept
as interrupted, and `resume` goes on from the study record where Ray's state is damaged."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from conftest import run_cli
from hypertune.cli import main
from hypertune.config import load_config
from hypertune.errors import DiskFullError
from hypertune.search import resume_study, run_study
from hypertune.study.record import StudyState
from hypertune.study.store import is_disk_full, read_study, write_atomic, write_study


def test_a_write_on_a_full_disk_is_one_error_and_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "study.json"
    target.write_text("old")

    def full(fd: int) -> None:
        raise OSError(28, os.strerror(28))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(DiskFullError, match="no space left on the device of"):
        write_atomic(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["study.json"]  # no temporary file left


def test_a_full_disk_is_recognised_through_what_tune_wraps_it_in() -> None:
    class TuneError(Exception):
        pass

    try:
        try:
            raise OSError(28, "No space left on device")
        except OSError as exc:
            raise TuneError("Traceback ... OSError: [Errno 28] No space left on device") from exc
    except TuneError as wrapped:
        assert is_disk_full(wrapped)
    assert is_disk_full(TuneError("OSError: [Errno 28] No space left on device"))
    assert not is_disk_full(ValueError("overflow"))


def test_show_of_a_study_without_finished_trials_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from test_report_page import study_record

    path = tmp_path / "tf2"
    path.mkdir()
    record = study_record("tf2", ["lr"])
    record.status = StudyState.RUNNING
    write_study(path, record)
    assert main(["show", "tf2", "--storage", str(tmp_path)]) == 0
    assert capsys.readouterr().err.strip() == "study tf2: no finished trials yet (running)"


@pytest.mark.parametrize("damage", ["empty tuner.pkl", "no ray folder", "other packs"])
@pytest.mark.usefixtures("ray_session")
def test_resume_runs_the_rest_from_the_record_where_rays_state_is_damaged(
    tiny_study: Path, tmp_path: Path, damage: str
) -> None:
    storage = tmp_path / "runs"
    path = run_study(load_config(tiny_study), storage)
    whole = pd.read_csv(path / "results.csv")
    kept = whole.iloc[:2]
    kept.to_csv(path / "results.csv", index=False)  # two trials ended before the crash
    record = read_study(storage, "tiny")
    record.status = StudyState.INTERRUPTED
    write_study(path, record)
    if damage == "empty tuner.pkl":
        (path / "ray" / "tuner.pkl").write_bytes(b"")  # as a full disk left it
    elif damage == "other packs":  # as another version of hypertune planned them
        record.packs = {"slots": 2, "count": 3, "largest": 2}
        write_study(path, record)
    else:
        shutil.move(path / "ray", tmp_path / "ray-elsewhere")
    resume_study(storage, "tiny")
    after = pd.read_csv(path / "results.csv")
    assert len(after) == 4 and after["trial_id"].is_unique
    # Kept rows stay as recorded, found by id: rows sort by trial id, and the new experiment's
    # ids start with a random prefix that may sort before theirs.
    again = after.set_index("trial_id").loc[kept["trial_id"]].reset_index()
    pd.testing.assert_frame_equal(again[kept.columns], kept)
    key = ["num_layers", "hidden_size", "seed"]
    assert sorted(map(tuple, after[key].values)) == sorted(map(tuple, whole[key].values))
    assert set(after["status"]) == {"TERMINATED"}
    assert read_study(storage, "tiny").status is StudyState.FINISHED
    assert (path / "ray" / "resume-1").is_dir()


@contextlib.contextmanager
def small_disk(folder: Path, kilobytes: int) -> Iterator[Path]:
    """A tmpfs of `kilobytes` at `folder` (needs root: skipped where it cannot be mounted)."""
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={kilobytes}k", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({mounted.stderr.strip()})")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


@pytest.mark.slow
def test_a_study_stopped_by_a_full_disk_is_resumed_once_space_is_freed(
    tiny_study: Path, tmp_path: Path
) -> None:
    with small_disk(tmp_path / "disk", 3072) as disk:
        filler = disk / "filler"
        filler.write_bytes(b"\0" * (2900 * 1024))  # what is left fills up during the study
        storage, out = str(disk / "runs"), str(tmp_path / "reports")
        args = ["--storage", storage, "--out", out]
        study = tmp_path / "big.toml"
        study.write_text(tiny_study.read_text().replace("epochs = 1", "epochs = 3"))
        done = run_cli("run", str(study), *args, cwd=tmp_path)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2, done.stderr
        errors = [line for line in lines if line.startswith("error:")]
        assert len(errors) == 1, lines
        assert errors[0].startswith("error: study 'tiny': no space left on the device"), lines
        assert "Traceback" not in done.stderr
        meta = json.loads((disk / "runs" / "tiny" / "study.json").read_text())
        assert meta["status"] in ("interrupted", "running")
        filler.unlink()
        resumed = run_cli("resume", "tiny", *args, cwd=tmp_path)
        assert resumed.returncode == 0, resumed.stderr
        results = pd.read_csv(disk / "runs" / "tiny" / "results.csv")
        assert len(results) == 4 and results["trial_id"].is_unique
        assert set(results["status"]) == {"TERMINATED"} and set(results["epochs"]) == {3}


@pytest.mark.slow
def test_a_report_to_a_full_disk_is_one_error_line(tiny_study: Path, tmp_path: Path) -> None:
    done = run_cli("run", str(tiny_study), "--smoke", "--out", str(tmp_path / "r"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    with small_disk(tmp_path / "disk", 64) as disk:
        report = run_cli("report", "tiny", "--out", str(disk), cwd=tmp_path)
        assert report.returncode == 2
        assert report.stderr.strip().startswith("error: --out: no space left on the device")
        assert len(report.stderr.strip().splitlines()) == 1
        assert list(disk.iterdir()) == []  # no staging folder left
