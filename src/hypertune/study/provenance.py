"""Where a study came from: git commit and dirty state, package versions, host, time."""

from __future__ import annotations

import hashlib
import platform
import socket
import subprocess
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("hypertune", "torch", "ray", "numpy", "pandas", "scikit-learn")


def now() -> str:
    """The current time, ISO 8601 in UTC."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def git_state(cwd: str | Path = ".") -> dict[str, Any]:
    """Commit, dirty flag and a hash of the uncommitted diff; nulls outside a git checkout."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=True
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "dirty": None, "diff_sha256": None}
    diff = git("diff", "HEAD") or ""
    untracked = git("ls-files", "--others", "--exclude-standard") or ""
    dirty = bool(diff.strip() or untracked.strip())
    digest = hashlib.sha256((diff + untracked).encode()).hexdigest()[:16] if dirty else None
    return {"commit": commit.strip(), "dirty": dirty, "diff_sha256": digest}


def versions() -> dict[str, str | None]:
    """Versions of python and the packages that decide a trial's numbers."""
    found: dict[str, str | None] = {"python": sys.version.split()[0]}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def host() -> dict[str, str]:
    """The machine a study ran on."""
    return {"hostname": socket.gethostname(), "platform": platform.platform()}
