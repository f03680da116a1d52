"""A study's files on disk: runs/<study>/study.json and runs/<study>/results.csv.

Every write goes to a temporary file in the same folder and is renamed into place, so a crash
leaves either the old file or the new one, never half of one; files get the permissions the
umask allows, like any other file the user writes. A study has one owner: creating it claims
its folder (an exclusive mkdir), and whoever runs or resumes it holds its lock. The store knows
tables and metadata, nothing of pictures or of Ray.
"""

from __future__ import annotations

import csv
import errno
import fcntl
import io
import json
import logging
import math
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import pandas as pd

from hypertune.errors import DiskFullError, StudyError
from hypertune.fields import check_name
from hypertune.study.record import LEADING, STATUSES, TRAILING, StudyRecord, StudyState

STUDY_FILE = "study.json"
RESULTS_FILE = "results.csv"
RAY_DIR = "ray"
LOCK_FILE = ".lock"

log = logging.getLogger("hypertune")


def study_dir(storage: str | Path, name: str) -> Path:
    """Where a study named `name` lives under `storage`.

    Raises:
        ConfigError: `name` is not a study name (a path, `..`, too long, odd characters).
    """
    return Path(storage) / check_name(name)


def check_folder(folder: str | Path, flag: str) -> Path:
    """Make sure `folder` is, or can become, a folder this process can write into (it is not
    created here: a refused command leaves nothing behind).

    Raises:
        StudyError: it or a folder above it is a file, or it cannot be written to.
    """
    path = Path(folder)
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise StudyError(f"{flag}: {existing} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".probe.")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise StudyError(f"{flag}: cannot write to {existing} ({exc.strerror or exc})") from exc
    return path


def check_out(out: str | Path, storage: str | Path) -> Path:
    """Make sure reports written to `out` can never replace a study: `out` is neither the
    storage folder nor inside it (reports/<name>/ would then be the study's own folder).

    Raises:
        StudyError: `out` is `storage` or a folder inside it.
    """
    where, studies = Path(out).resolve(), Path(storage).resolve()
    if where == studies or studies in where.parents:
        raise StudyError(
            f"--out: {out} is inside --storage {storage}; a report there would replace a "
            "study's folder: give --out a folder of its own (default: reports)"
        )
    return Path(out)


def known_studies(storage: str | Path) -> list[str]:
    """Names of the studies under `storage` (folders holding a study.json)."""
    root = Path(storage)
    if not root.is_dir():
        return []
    return sorted(p.parent.name for p in root.glob(f"*/{STUDY_FILE}"))


def check_new_study(storage: str | Path, name: str) -> None:
    """Refuse a study name that is taken (a study is never overwritten); an early check, the
    claim itself is :func:`create_study_dir`.

    Raises:
        StudyError: a study or another folder of that name exists in `storage`.
    """
    path = study_dir(storage, name)
    if path.exists():
        raise _taken(storage, name, path)


def create_study_dir(storage: str | Path, name: str) -> Path:
    """Claim the study's folder: created here, or refused (never shared, never overwritten).

    Raises:
        StudyError: the folder exists already (a study, or anything else).
    """
    path = study_dir(storage, name)
    check_folder(path.parent, "--storage")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir()
    except FileExistsError:
        raise _taken(storage, name, path) from None
    return path


def _taken(storage: str | Path, name: str, path: Path) -> StudyError:
    where = "" if Path(storage) == Path("runs") else f" --storage {storage}"
    owner = _lock_holder(path)
    if owner is not None:
        return StudyError(
            f"study '{name}' is being run by another process (pid {owner}); pass --name NEW_NAME"
        )
    if not (path / STUDY_FILE).is_file():
        return StudyError(
            f"{path} exists and holds no study (no {STUDY_FILE}); pass --name NEW_NAME or "
            "remove the folder"
        )
    try:
        finished = read_study(storage, name).status is StudyState.FINISHED
    except StudyError:
        finished = False
    if finished:
        return StudyError(
            f"study '{name}' already exists in {path} and has finished; pass --name NEW_NAME "
            "or remove the folder"
        )
    return StudyError(
        f"study '{name}' already exists in {path}; pass --name NEW_NAME, or finish it with "
        f"`resume {name}{where}`"
    )


@contextmanager
def study_lock(path: Path) -> Iterator[None]:
    """Hold the study's lock while it runs: a second run or resume of it is refused.

    The lock is the operating system's (`flock`), so a process that dies, even by kill -9,
    releases it.

    Raises:
        StudyError: another process holds the lock.
    """
    fd = os.open(path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        owner = _owner(fd)
        os.close(fd)
        raise StudyError(
            f"study '{path.name}' is being run by another process (pid {owner}); wait for it to end"
        ) from None
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


def _lock_holder(path: Path) -> str | None:
    """The pid of the process that holds the study's lock; None if nobody does."""
    try:
        fd = os.open(path / LOCK_FILE, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return _owner(fd)
    finally:
        os.close(fd)  # also releases the probe's own lock
    return None


def _owner(fd: int) -> str:
    return os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"


def current_umask() -> int:
    """The process's umask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file and a rename (mode as the umask says).

    Raises:
        DiskFullError: no space left on the device (the old file, if any, stays as it was).
    """
    try:
        _write_atomic(path, text)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFullError(f"no space left on the device of {path.parent}") from None
        raise


def is_disk_full(exc: BaseException | None) -> bool:
    """Whether `exc`, or an exception it was raised from or during, says the disk is full
    (Tune re-raises a callback's error as a TuneError with the original's text)."""
    seen = 0
    while exc is not None and seen < 20:
        if isinstance(exc, DiskFullError) or getattr(exc, "errno", None) in (
            errno.ENOSPC,
            errno.EDQUOT,
        ):
            return True
        if "No space left on device" in str(exc) or "no space left on the device" in str(exc):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_study(path: Path, record: StudyRecord) -> None:
    """Write study.json (the study's record) atomically."""
    text = json.dumps(record.to_json(), indent=2, sort_keys=False, default=str)
    write_atomic(path / STUDY_FILE, text + "\n")


def read_study(storage: str | Path, name: str) -> StudyRecord:
    """Read a study's study.json.

    Raises:
        StudyError: no such study, or its study.json is unreadable or not a study record
            (the error names the file and the key).
    """
    path = study_dir(storage, name) / STUDY_FILE
    if not path.is_file():
        known = known_studies(storage)
        hint = f"; known: {', '.join(known)}" if known else f"; {storage}/ holds no studies"
        raise StudyError(f"study '{name}' not found in {storage}/{hint}")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StudyError(f"{path}: unreadable ({exc})") from exc
    return StudyRecord.parse(meta, path)


def results_columns(rows: Iterable[Mapping[str, Any]], params: Sequence[str]) -> list[str]:
    """Column order: trial_id, status, params, metrics (sorted), epochs, seed, seconds, error."""
    seen: set[str] = set()
    for row in rows:
        seen.update(row)
    fixed = set(LEADING) | set(TRAILING) | set(params)
    metrics = sorted(seen - fixed)
    trailing = [c for c in TRAILING if c in seen or c != "error"]
    return LEADING + list(params) + metrics + trailing


def write_results(path: Path, rows: Sequence[Mapping[str, Any]], params: Sequence[str]) -> None:
    """Write results.csv (one row per trial, sorted by trial id) atomically."""
    frame = pd.DataFrame(list(rows), columns=results_columns(rows, params))
    frame = frame.sort_values("trial_id", kind="stable") if len(frame) else frame
    write_atomic(path / RESULTS_FILE, frame.to_csv(index=False))


def read_results(
    storage: str | Path, name: str, columns: Sequence[str] | None = None
) -> pd.DataFrame:
    """Read a study's results.csv (empty frame if no trial has finished yet).

    Floats are read back exactly (round trip), so a row once written is written again byte for
    byte. A torn or malformed row (a crash of another writer, an edit by hand) is dropped with
    a warning, never taken as a finished trial. The file is checked row by row, then read
    straight into the frame: at its peak, reading holds about 2.5 times the file's size (a
    copy of the text and its rows as lists of strings took 14).

    Args:
        columns: read only these columns (and trial_id and status); those the table lacks are
            left out. Default: every column.

    Raises:
        StudyError: no such study, or results.csv is not a results table.
    """
    read_study(storage, name)  # a clear error for an unknown study
    path = study_dir(storage, name) / RESULTS_FILE
    if not path.is_file():
        return pd.DataFrame(columns=LEADING)
    try:
        with path.open("rb") as raw:
            ended = raw.seek(0, os.SEEK_END) == 0 or _last_byte(raw) in (b"\n", b"\r")
        return _read_table(lambda: path.open(encoding="utf-8", newline=""), path, ended, columns)
    except (OSError, UnicodeDecodeError) as exc:
        raise StudyError(f"{path}: unreadable ({exc})") from exc
    except pd.errors.ParserError as exc:  # what the row check let through, pandas refused
        raise StudyError(f"{path}: not a results table ({exc})") from exc


def _last_byte(raw: IO[bytes]) -> bytes:
    raw.seek(-1, os.SEEK_END)
    return raw.read(1)


def parse_results(text: str, path: Path, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """The results table in `text` (the contents of `path`), less its damaged rows."""
    return _read_table(lambda: io.StringIO(text, newline=""), path, text.endswith("\n"), columns)


def _read_table(
    open_text: Callable[[], IO[str]], path: Path, ended: bool, columns: Sequence[str] | None
) -> pd.DataFrame:
    """The table `open_text()` reads (twice where rows are damaged), less its damaged rows;
    `ended`: the text ends with a line break (else its last row is torn)."""
    with open_text() as handle:
        header, rows, malformed = _check_rows(csv.reader(handle), path)
    torn = rows > 0 and not ended
    if torn and rows + 1 in malformed:
        malformed.remove(rows + 1)
    for number in malformed:
        log.warning("%s: row %d is malformed; left out", path, number)
    if torn:
        log.warning("%s: row %d is cut short (torn write); left out", path, rows + 1)
    wanted = None if columns is None else {*LEADING, *columns}
    options: dict[str, Any] = {
        "usecols": None if wanted is None else [c for c in header if c in wanted],
        "dtype": {"trial_id": str},
        "float_precision": "round_trip",
    }
    if not malformed:  # the text as it is; a torn last row is never reached
        with open_text() as handle:
            return pd.read_csv(handle, nrows=rows - torn, **options)
    # The rows kept, written out again one by one (a temporary file, not a copy in memory).
    skip = {*malformed, rows + 1} if torn else set(malformed)
    with open_text() as handle, tempfile.TemporaryFile("w+", encoding="utf-8", newline="") as clean:
        writer = csv.writer(clean, lineterminator="\n")
        for number, row in enumerate(csv.reader(handle), start=1):
            if number not in skip:
                writer.writerow(row)
        clean.seek(0)
        return pd.read_csv(clean, **options)


def _check_rows(reader: Iterator[list[str]], path: Path) -> tuple[list[str], int, list[int]]:
    """The header, the number of rows under it, and the numbers of the malformed rows (the
    header is row 1, as in the warnings)."""
    try:
        header = next(reader, None)
        if header is None or header[: len(LEADING)] != LEADING:
            raise StudyError(
                f"{path}: not a results table (its first line must start with "
                f"{','.join(LEADING)}); remove the file to start the study's table anew"
            )
        rows, malformed, width = 0, [], len(header)
        for rows, row in enumerate(reader, start=1):
            if len(row) != width or not row[0] or row[1] not in STATUSES:
                malformed.append(rows + 1)
    except csv.Error as exc:
        raise StudyError(f"{path}: not a results table ({exc})") from exc
    return header, rows, malformed


def finite(value: Any) -> bool:
    """True for a real, finite number."""
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False
