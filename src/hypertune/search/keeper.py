"""A study's trained weights kept (`keep_weights`): runs/<study>/weights/<trial id>.pt.

A trial's last epoch hands Tune a checkpoint holding its weights (every member's, for a fused
pack; :mod:`hypertune.search.trainable`). Tune stores it in the trial's folder, where it would
go with the study's checkpoints once the study ends; this callback, in the driver, copies each
model into the study's weights/ folder under the trial id its results.csv row has, as soon as
Tune has it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from ray import tune

from hypertune import weights
from hypertune.search.packs import PACK_KEY, member_id
from hypertune.search.recorder import RETRY_OF, live
from hypertune.weights import WEIGHTS_DIR

log = logging.getLogger("hypertune")


def _restored(name: str, packs: Sequence[Sequence[Mapping[str, Any]]]) -> WeightsKeeper:
    """A pickled keeper, restored into the folder its study is in now."""
    return WeightsKeeper(live(name).path, packs)


class WeightsKeeper(tune.Callback):
    """Copies the weights a trial's last result carries into runs/<study>/weights/."""

    def __init__(self, path: Path, packs: Sequence[Sequence[Mapping[str, Any]]] = ()) -> None:
        self.path = path  # the study's folder
        self.packs = packs
        self.warned = False

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Tune pickles its callbacks with the experiment: a resumed study (run from another
        # folder, or moved) keeps its weights where the live recorder's study is.
        return _restored, (self.path.name, self.packs)

    def on_checkpoint(
        self, iteration: int, trials: list[Any], trial: Any, checkpoint: Any, **info: Any
    ) -> None:
        # Tune logs and swallows what a callback raises here: a failure is said once, and the
        # study goes on (its results matter more than its weights).
        try:
            self._keep(trial, checkpoint)
        except Exception as exc:
            if not self.warned:
                log.warning("trial weights not kept in %s: %s", self.path / WEIGHTS_DIR, exc)
                self.warned = True

    def _keep(self, trial: Any, checkpoint: Any) -> None:
        from hypertune.search.trainable import WEIGHTS_FILE

        with checkpoint.as_directory() as folder:
            file = Path(folder) / WEIGHTS_FILE
            if not file.is_file():  # a checkpoint to go on from, not the last epoch's
                return
            kept = torch.load(file, map_location="cpu", weights_only=True)
        for trial_id, contents in zip(self._ids(trial), kept, strict=True):
            contents.update(study=self.path.name, trial_id=trial_id)
            weights.write(weights.trial_file(self.path.parent, self.path.name, trial_id), contents)

    def _ids(self, trial: Any) -> list[str]:
        """The results.csv trial ids of what a Ray trial trains: a pack's members, or itself
        (a retried trial: the row it replaces)."""
        if PACK_KEY not in trial.config:
            return [str(trial.config.get(RETRY_OF, trial.trial_id))]
        size = len(self.packs[int(trial.config[PACK_KEY])])
        return [member_id(trial.trial_id, k) for k in range(size)]
