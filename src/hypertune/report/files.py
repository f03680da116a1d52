"""A report's files appear as one complete set or not at all, and replace only a report.

`publish` builds the whole set (heatmaps, pairs.png, report.pdf, report.md) in a hidden sibling
folder and swaps it with reports/<study>/ in one step, so a reader, or a report killed midway,
never leaves a mix of an old and a new set or a half-written file under the study's folder.

Every set carries a small manifest (:data:`MANIFEST`) naming its study. A folder in the way is
replaced only where it is an earlier report of the same study (its manifest says so, or, from
before manifests, it holds nothing but report files); anything else is refused
(:func:`check_target`), so hypertune never deletes what it did not write.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from hypertune.errors import OutputError
from hypertune.folders import clean_stale, swap_in, sync_files
from hypertune.study.store import current_umask, is_disk_full

MANIFEST = ".hypertune-report.json"  # in every report set: which study it is a report of
# What a report set holds, for folders written before the manifest existed.
_REPORT_FILES = re.compile(r"(heatmap_.+\.png|pairs\.png|report\.pdf|report\.md)")


def publish(folder: Path, build: Callable[[Path], list[Path]], study: str) -> list[Path]:
    """Run `build(staging)` to write a set of files, then make them `folder`'s content at once.

    `folder` may be a link to a folder: the set then replaces the folder it points to.

    Returns:
        The files, at their place in `folder`.

    Raises:
        OutputError: `folder` holds something other than a report of `study`
            (:func:`check_target`), or the disk is full.
    """
    target = check_target(folder, study)
    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        clean_stale(target)
        staging = Path(tempfile.mkdtemp(dir=parent, prefix=f".{target.name}.new-{os.getpid()}-"))
    except OSError as exc:
        raise _output_error(exc, parent) from exc
    try:
        # mkdtemp makes the folder private (0700); the report folder gets what the umask allows.
        staging.chmod(0o777 & ~current_umask())
        written = build(staging)
        _write_manifest(staging, study)
        sync_files(staging)
        check_target(target, study)  # still a report of this study, just before the swap
        old = swap_in(staging, target)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, OSError):
            raise _output_error(exc, target) from exc
        if isinstance(exc, Exception) and (is_disk_full(exc) or _nearly_full(parent)):
            # A writer that hit the full disk may say so in its own words (zlib's, for a PDF).
            raise _output_error(OSError(errno.ENOSPC, "no space"), target) from exc
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return [folder / path.name for path in written]


def check_target(folder: Path, study: str) -> Path:
    """The folder a report of `study` may replace: `folder`, or the folder it links to.

    Raises:
        OutputError: `folder` is a file or a broken link, or a folder that is not a report of
            `study` (another study's report, or files hypertune did not write).
    """
    target = folder.resolve() if folder.is_symlink() else folder
    if folder.is_symlink() and not target.is_dir():
        raise OutputError(f"--out: {folder} is a link to {target}, which is not a folder")
    if not target.exists():
        return target
    if not target.is_dir():
        raise OutputError(f"--out: {folder} is a file, not a report folder; move it first")
    owner = report_of(target)
    if owner == study:
        return target
    if owner is not None:
        raise OutputError(
            f"--out: {folder} holds the report of study '{owner}'; choose another --out"
        )
    foreign = sorted(p.name for p in target.iterdir() if not _REPORT_FILES.fullmatch(p.name))
    if foreign:
        more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
        shown = ", ".join(foreign[:3]) + more
        raise OutputError(
            f"--out: {folder} holds files that are not a report of study '{study}' ({shown}); "
            "nothing was replaced: choose another --out or move them"
        )
    return target  # empty, or a report from before manifests


def report_of(folder: Path) -> str | None:
    """The study whose report `folder` is, by its manifest; None without a readable one."""
    try:
        study = json.loads((folder / MANIFEST).read_text(encoding="utf-8")).get("study")
    except (OSError, ValueError, AttributeError):
        return None
    return study if isinstance(study, str) else None


def _write_manifest(staging: Path, study: str) -> None:
    text = json.dumps({"study": study, "files": sorted(p.name for p in staging.iterdir())})
    (staging / MANIFEST).write_text(text + "\n", encoding="utf-8")


def _nearly_full(folder: Path) -> bool:
    """Less than one MiB is left on the device of `folder`."""
    try:
        stats = os.statvfs(folder)
    except OSError:
        return False
    return stats.f_bavail * stats.f_frsize < 1 << 20


def _output_error(exc: OSError, folder: Path) -> OutputError:
    """One line for a report that could not be written (the earlier report stays as it was)."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return OutputError(f"--out: no space left on the device of {folder}; no report written")
    return OutputError(f"--out: cannot write the report to {folder} ({exc.strerror or exc})")
