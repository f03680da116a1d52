"""Run a study with Ray Tune: `run_study(config) -> runs/<study>/`, `resume_study`, `rerun_trial`.

One `tune.Tuner` call wires the searcher, FIFO scheduling, resources and storage (`run`). Data
reaches the trials once, through `tune.with_parameters` (Ray's object store), never through the
config. Finished trials are written to results.csv as they complete (`recorder`), so a crash
loses nothing finished, and `resume_study` picks up the rest from Ray's experiment checkpoint.
`rerun_trial` retrains one recorded trial without Ray (`rerun`).

The names below load on first use: `cluster` (starting Ray) must not wait for torch and Ray
Tune, which the CLI imports in a second thread while Ray starts.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hypertune.search.recorder import Progress, ProgressFn, ResultRecorder, trial_record
    from hypertune.search.rerun import rerun_trial
    from hypertune.search.retry import retry_failed
    from hypertune.search.run import resume_study, run_study
    from hypertune.search.trainable import train_trial

_HOMES = {
    "Progress": "recorder",
    "ProgressFn": "recorder",
    "ResultRecorder": "recorder",
    "trial_record": "recorder",
    "rerun_trial": "rerun",
    "retry_failed": "retry",
    "resume_study": "run",
    "run_study": "run",
    "train_trial": "trainable",
}

__all__ = [
    "Progress",
    "ProgressFn",
    "ResultRecorder",
    "rerun_trial",
    "resume_study",
    "retry_failed",
    "run_study",
    "train_trial",
    "trial_record",
]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
