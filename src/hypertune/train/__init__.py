"""Training, with no Ray: one trial's loop, mltrainer's, and fused packs of trials.

- :mod:`~hypertune.train.settings`: what every trial shares (settings, trainer keys, seeding,
  the clock, the running best);
- :mod:`~hypertune.train.optim`: the optimizers, each with torch's optimizer and a fused step;
- :mod:`~hypertune.train.loop`: hypertune's own loop (:func:`fit`, re-exported here);
- :mod:`~hypertune.train.mltrainer`: the course's Trainer, behind the same contract;
- :mod:`hypertune.train.fused`: many trials trained as one batched model.
"""

from hypertune.train.loop import check_config, evaluate, evaluate_on, fit, fit_member, fit_module
from hypertune.train.settings import (
    SECONDS,
    Report,
    Save,
    State,
    Trained,
    TrainSettings,
    warm_up,
)

__all__ = [
    "SECONDS",
    "Report",
    "Save",
    "State",
    "TrainSettings",
    "Trained",
    "check_config",
    "evaluate",
    "evaluate_on",
    "fit",
    "fit_member",
    "fit_module",
    "warm_up",
]
