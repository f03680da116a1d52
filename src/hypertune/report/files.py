"""A report's files appear as one complete set or not at all.

`publish` builds the whole set (heatmaps, pairs.png, report.pdf, report.md) in a hidden sibling
folder and swaps it with reports/<study>/ in one step, so a reader, or a report killed midway,
never leaves a mix of an old and a new set or a half-written file under the study's folder.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from hypertune.store import current_umask

_RENAME_EXCHANGE = 2  # renameat2 flag (Linux 3.15+): swap two paths atomically
_AT_FDCWD = -100


def publish(folder: Path, build: Callable[[Path], list[Path]]) -> list[Path]:
    """Run `build(staging)` to write a set of files, then make them `folder`'s content at once.

    Returns:
        The files, at their place in `folder`.
    """
    parent = folder.parent
    parent.mkdir(parents=True, exist_ok=True)
    clean_stale(folder)
    staging = Path(tempfile.mkdtemp(dir=parent, prefix=f".{folder.name}.new-{os.getpid()}-"))
    try:
        # mkdtemp makes the folder private (0700); the report folder gets what the umask allows.
        staging.chmod(0o777 & ~current_umask())
        written = build(staging)
        _sync(staging)
        old = _swap(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return [folder / path.name for path in written]


def clean_stale(folder: Path) -> None:
    """Remove hidden staging folders of `folder` left by report processes that died."""
    for path in folder.parent.glob(f".{folder.name}.*-*-*"):
        pid = path.name.split("-")[1] if path.is_dir() else ""
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _swap(staging: Path, folder: Path) -> Path | None:
    """Put `staging` at `folder`; return the old set's folder to delete, if any."""
    if not folder.exists():
        os.rename(staging, folder)
        return None
    if _exchange(staging, folder):
        return staging  # now holds the old set
    # Without an atomic exchange: two renames; the old set stays whole in `aside` meanwhile.
    aside = folder.parent / f".{folder.name}.old-{os.getpid()}-{staging.name[-8:]}"
    os.rename(folder, aside)
    os.rename(staging, folder)
    return aside


def _exchange(a: Path, b: Path) -> bool:
    """Swap two folders in one step where the system can (Linux renameat2); False if not."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
        done = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
        return bool(done == 0)
    return False


def _sync(folder: Path) -> None:
    """Flush the set's files to disk before they become visible (a crash keeps them whole)."""
    for path in folder.iterdir():
        with contextlib.suppress(OSError), open(path, "rb") as handle:
            os.fsync(handle.fileno())


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
