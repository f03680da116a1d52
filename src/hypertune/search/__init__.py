"""Run a study with Ray Tune: `run_study(config) -> runs/<study>/`, `resume_study`, `rerun_trial`.

One `tune.Tuner` call wires the searcher, FIFO scheduling, resources and storage (`run`). Data
reaches the trials once, through `tune.with_parameters` (Ray's object store), never through the
config. Finished trials are written to results.csv as they complete (`recorder`), so a crash
loses nothing finished, and `resume_study` picks up the rest from Ray's experiment checkpoint.
`rerun_trial` retrains one recorded trial without Ray (`rerun`).
"""

from hypertune.search.recorder import Progress, ProgressFn, ResultRecorder, trial_row
from hypertune.search.rerun import rerun_trial
from hypertune.search.run import planned_trials, preflight, resume_study, run_study, train_trial

__all__ = [
    "Progress",
    "ProgressFn",
    "ResultRecorder",
    "planned_trials",
    "preflight",
    "rerun_trial",
    "resume_study",
    "run_study",
    "train_trial",
    "trial_row",
]
