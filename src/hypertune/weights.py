"""Trained weights on disk: a study's kept trials (runs/<study>/weights/<trial id>.pt, with
`keep_weights`) and its best model (runs/<study>/best/model.pt).

Each file holds one model: its state dict, the configuration, input shape and class count that
`create_model` builds it from, and the study, trial and seed it came from. A file is written to
a temporary name, flushed and renamed: a crash leaves the old file or the new one.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hypertune.errors import DiskFullError, StudyError
from hypertune.study import store

WEIGHTS_DIR = "weights"
# A trial id as Ray and the fused packs make them (a file name: no path, no `..`).
_TRIAL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,199}")


def payload(
    state: dict[str, torch.Tensor], config: dict[str, Any], input_shape: Any, num_classes: int
) -> dict[str, Any]:
    """One model's file contents, without the study and trial it belongs to (added by whoever
    knows them: :func:`write`)."""
    return {
        "state_dict": state,
        "config": dict(config),
        "input_shape": [int(n) for n in input_shape],
        "num_classes": int(num_classes),
    }


def trial_file(storage: str | Path, name: str, trial_id: str) -> Path:
    """Where trial `trial_id` of study `name` keeps its weights.

    Raises:
        StudyError: `trial_id` is not a trial id (a path, odd characters).
    """
    if not _TRIAL_ID.fullmatch(str(trial_id)) or ".." in str(trial_id):
        raise StudyError(f"trial '{trial_id}' is not a trial id of study '{name}'")
    return store.study_dir(storage, name) / WEIGHTS_DIR / f"{trial_id}.pt"


def write(file: Path, contents: dict[str, Any]) -> None:
    """Save `contents` to `file` through a temporary file, a flush and a rename.

    Raises:
        DiskFullError: no space left (the old file, if any, stays as it was).
    """
    file.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=file.parent, prefix=f".{file.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~store.current_umask())
        with os.fdopen(fd, "wb") as handle:
            torch.save(contents, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, file)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        if store.is_disk_full(exc):
            raise DiskFullError(f"no space left on the device of {file.parent}") from None
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read(file: Path) -> dict[str, Any]:
    """A weights file's contents (tensors on the CPU; nothing but tensors and plain values is
    unpickled)."""
    contents: dict[str, Any] = torch.load(file, map_location="cpu", weights_only=True)
    return contents


def build(contents: dict[str, Any]) -> nn.Module:
    """The model a weights file holds, with its weights, in eval mode (the study's own
    architectures registered first: `hypertune.search.code.use_recorded_models`)."""
    from hypertune.models import create_model

    shape = tuple(contents["input_shape"])
    model = create_model(contents["config"], shape, contents["num_classes"])
    model.load_state_dict(contents["state_dict"])
    return model.eval()
