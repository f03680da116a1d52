"""A folder's whole content replaced in one step: a set written in a hidden sibling is swapped
in, so a reader, or a writer killed midway, sees the old set or the new one, never a mix."""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
from pathlib import Path

_RENAME_EXCHANGE = 2  # renameat2 flag (Linux 3.15+): swap two paths atomically
_AT_FDCWD = -100


def swap_in(staging: Path, folder: Path) -> Path | None:
    """Put `staging` at `folder`; return the old set's folder to delete, if any."""
    if not folder.exists():
        os.rename(staging, folder)
        return None
    if exchange(staging, folder):
        return staging  # now holds the old set
    # Without an atomic exchange: two renames; the old set stays whole in `aside` meanwhile.
    aside = folder.parent / f".{folder.name}.old-{os.getpid()}-{staging.name[-8:]}"
    os.rename(folder, aside)
    os.rename(staging, folder)
    return aside


def exchange(a: Path, b: Path) -> bool:
    """Swap two folders in one step where the system can (Linux renameat2); False if not."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
        done = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
        return bool(done == 0)
    return False


def sync_files(folder: Path) -> None:
    """Flush the set's files to disk before they become visible (a crash keeps them whole)."""
    for path in folder.iterdir():
        with contextlib.suppress(OSError), open(path, "rb") as handle:
            os.fsync(handle.fileno())


def clean_stale(folder: Path) -> None:
    """Remove hidden staging folders of `folder` (`.<name>.new-PID-*`, `.<name>.old-PID-*`)
    left by writers that died."""
    for path in folder.parent.glob(f".{folder.name}.*-*-*"):
        kind, _, rest = path.name.removeprefix(f".{folder.name}.").partition("-")
        pid = rest.split("-")[0]
        ours = kind in ("new", "old") and path.is_dir() and not path.is_symlink()
        if ours and pid.isdigit() and not alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def alive(pid: int) -> bool:
    """Whether process `pid` runs (or may: another user's process cannot be probed)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OverflowError:  # beyond any process id
        return False
    return True
