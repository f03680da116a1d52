"""The driver's side of curves.csv (:mod:`hypertune.study.curves`): every epoch each trial reports,
kept by trial and epoch and written out when a trial ends or checkpoints."""

from __future__ import annotations

import logging
import math
from collections.abc import Collection
from pathlib import Path
from typing import Any

from ray import tune

from hypertune.search.epochs import reported_epochs
from hypertune.search.packs import EPOCHS
from hypertune.search.recorder import ERROR, RETRY_OF, live
from hypertune.study.curves import CURVES_FILE, curve_row, load_curves, write_curves

log = logging.getLogger("hypertune")


def _restored(name: str) -> CurveRecorder:
    """A pickled curve recorder, restored into the folder its study is in now."""
    return CurveRecorder(live(name).path)


class CurveRecorder(tune.Callback):
    """Keeps the metrics of every epoch of every trial in runs/<study>/curves.csv.

    An epoch reported again (a trial restarted from an earlier checkpoint, or from its start
    after its node was lost) replaces the row it had: one row per trial and epoch. The file is
    rewritten after a trial's checkpoint (Tune calls `on_checkpoint` after that epoch's
    `on_trial_result`), so every epoch a restored trial does not train again is on disk.
    """

    def __init__(self, path: Path, kept: Collection[str] | None = None) -> None:
        self.path = path  # the study's folder
        stored = load_curves(path).to_dict("records")
        # With `kept` (the trials results.csv holds, when the rest run as a new experiment
        # under new ids), the epochs of trials cut off by the crash go: they train again.
        self.rows: dict[tuple[str, int], dict[str, Any]] = {
            (str(row["trial_id"]), int(row["epoch"])): {str(k): v for k, v in row.items()}
            for row in stored
            if kept is None or str(row["trial_id"]) in kept
        }
        self.changed = len(self.rows) < len(stored)
        self.warned = False

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Tune pickles its callbacks with the experiment: a resumed study (run from another
        # folder, or moved) writes its curves where the live recorder's study is.
        return _restored, (self.path.name,)

    def on_trial_result(
        self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any], **info: Any
    ) -> None:
        if ERROR in result:  # a trial's own error: its last epoch's metrics, already kept
            return
        for member, metrics, step in reported_epochs(trial, result, iteration, {}):
            if member is None:  # a trial alone: its row's id (a retried trial's, the one before)
                member = str(trial.config.get(RETRY_OF, trial.trial_id))
                step = int(result.get(EPOCHS, step))
            if step < 1:
                continue
            # A metric the result lacks keeps what the epoch had (a finished trial's recorded
            # result, reported again on resume, has no training seconds).
            row = self.rows.setdefault((member, step), curve_row(member, step, {}))
            row.update(
                {k: v for k, v in curve_row(member, step, metrics).items() if not _missing(v)}
            )
            self.changed = True

    def on_checkpoint(
        self, iteration: int, trials: list[Any], trial: Any, checkpoint: Any, **info: Any
    ) -> None:
        self._write()

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._write()

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._write()

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        self._write()

    def _write(self) -> None:
        # Tune logs and swallows what a callback raises: a failure is said once, and the study
        # goes on (its results matter more than its curves).
        if not self.changed:
            return
        try:
            write_curves(self.path, self.rows.values())
            self.changed = False
        except Exception as exc:
            if not self.warned:
                log.warning("learning curves not kept in %s: %s", self.path / CURVES_FILE, exc)
                self.warned = True


def _missing(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)
