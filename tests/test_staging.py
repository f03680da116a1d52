"""Checkpoint folders left behind by killed trials are removed by the next trial on the machine."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from hypertune.search import staging
from hypertune.search.trainable import _Checkpoints


def dead_pid() -> int:
    """The id of a process that has ended."""
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(done.stdout)


def left(root: Path, pid: int, age: float) -> Path:
    """A checkpoint folder as process `pid` leaves it, last written `age` seconds ago."""
    folder = root / f"{staging.PREFIX}{pid}-abc123"
    folder.mkdir()
    (folder / "state.pt").write_bytes(b"weights")
    then = time.time() - age
    os.utime(folder, (then, then))
    return folder


def test_a_folder_names_the_process_that_made_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    folder = staging.staging_folder()
    assert folder.parent == tmp_path
    assert staging._owner(folder.name) == os.getpid()


def test_only_old_folders_of_ended_processes_are_removed(tmp_path: Path) -> None:
    old = staging.STALE_SECONDS + 60
    gone = left(tmp_path, dead_pid(), old)
    fresh = left(tmp_path, dead_pid(), 10.0)  # its process ended a moment ago: may be alive
    live = left(tmp_path, os.getpid(), old)  # a long-running trial of this process
    unnamed = tmp_path / f"{staging.PREFIX}k3j2h1g0"  # no process in its name: not ours to judge
    unnamed.mkdir()
    other = tmp_path / "someone-elses-123-folder"
    other.mkdir()
    os.utime(other, (time.time() - old,) * 2)

    assert staging.sweep(tmp_path) == [gone]
    assert not gone.exists()
    assert fresh.exists() and live.exists() and unnamed.exists() and other.exists()


def test_a_trial_clears_what_killed_trials_left(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    gone = left(tmp_path, dead_pid(), staging.STALE_SECONDS + 60)
    _Checkpoints(every=0.0)
    assert not gone.exists()
