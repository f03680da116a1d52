"""The temporary folders a trial writes its checkpoints to before Tune stores them.

A trial process removes its folder once `tune.report` has copied it, but a process killed in
between (kill -9, a lost node's OOM killer) leaves the folder, weights and all, in the system's
temporary directory. So each folder names the process that made it, and a trial starting on the
same machine removes the folders of processes that are gone. A folder must also be old
(:data:`STALE_SECONDS`) before it goes: a process id that looks dead from here may be alive in
another pid namespace that shares the directory.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from pathlib import Path

from hypertune.folders import alive

PREFIX = "hypertune-checkpoint-"
STALE_SECONDS = 3600.0  # a live trial holds its folder for seconds; an hour is far beyond that


def staging_folder() -> Path:
    """A new private folder for one checkpoint, named for this process."""
    return Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-"))


def sweep(root: Path | None = None) -> list[Path]:
    """Remove the checkpoint folders under `root` (the system's temporary directory) left by
    processes that no longer run and older than :data:`STALE_SECONDS`; the folders removed."""
    root = Path(tempfile.gettempdir()) if root is None else root
    removed = []
    for folder in root.glob(f"{PREFIX}*"):
        pid = _owner(folder.name)
        with contextlib.suppress(OSError):  # gone already, or another user's: leave it
            if pid is None or alive(pid) or time.time() - folder.stat().st_mtime < STALE_SECONDS:
                continue
            shutil.rmtree(folder)
            removed.append(folder)
    return removed


def _owner(name: str) -> int | None:
    """The process id in a folder's name, None where it names none (not one of ours)."""
    pid, dash, _ = name.removeprefix(PREFIX).partition("-")
    return int(pid) if dash and pid.isdigit() else None
