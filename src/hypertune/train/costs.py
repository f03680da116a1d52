"""What a trial cost and how fast it converged: the columns results.csv keeps beside its metrics
(:data:`hypertune.metrics.COST_COLUMNS`), computed from the epochs it reported.

- ``parameters``: the model's weights, counted once per trial;
- ``epochs_to_best``: the epoch at which the objective's metric reached its best value;
- ``epochs_to_within_5pct``: the first epoch whose running best of that metric is within 5% of
  the trial's final running best (the epoch from which more training bought less than 5%);
- ``seconds_per_epoch``: the trial's training time over its epochs.

The same for either trainer: the numbers come from each epoch's reported metrics.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from hypertune.train.settings import SECONDS

WITHIN = 0.05  # epochs_to_within_5pct: the share of the final best that counts as "there"


def count_weights(config: Mapping[str, Any], input_shape: Sequence[int], classes: int) -> float:
    """The weights of the model `config` builds (NaN where it cannot be counted without data:
    a lazy module, or a model that cannot be built without memory)."""
    from torch.nn.parameter import is_lazy

    from hypertune.models import create_model

    try:
        with torch.device("meta"):
            model = create_model(config, tuple(input_shape), classes)
    except Exception:  # a model that builds only on real tensors: it trains, uncounted
        return math.nan
    params = list(model.parameters())
    if any(is_lazy(p) for p in params):
        return math.nan
    return float(sum(p.numel() for p in params))


def convergence(history: Sequence[float], direction: str) -> dict[str, float]:
    """``epochs_to_best`` and ``epochs_to_within_5pct`` of one metric's values, epoch by epoch
    (`direction`: min or max, which way is better); NaN where no value is finite."""
    better = min if direction == "min" else max
    running: list[float] = []
    for value in history:
        if math.isfinite(value):
            running.append(value if not running else better(running[-1], value))
        else:
            running.append(running[-1] if running else math.nan)
    finite = [v for v in running if math.isfinite(v)]
    if not finite:
        return {"epochs_to_best": math.nan, "epochs_to_within_5pct": math.nan}
    final = running[-1]
    first_best = next(e for e, v in enumerate(running, 1) if v == final)
    margin = WITHIN * abs(final)
    within = next(
        e for e, v in enumerate(running, 1) if math.isfinite(v) and abs(v - final) <= margin
    )
    return {"epochs_to_best": float(first_best), "epochs_to_within_5pct": float(within)}


class Costs:
    """One trial's cost columns, brought up to date with each epoch's metrics (`history`: the
    objective metric's values so far, as a checkpoint keeps them)."""

    def __init__(
        self, parameters: float, metric: str, direction: str, history: Sequence[float] = ()
    ) -> None:
        self.parameters = parameters
        self.metric = metric
        self.direction = direction
        self.history = list(history)

    def add(self, metrics: Mapping[str, float]) -> dict[str, float]:
        """The cost columns after one more epoch with `metrics`."""
        self.history.append(float(metrics.get(self.metric, math.nan)))
        seconds = float(metrics.get(SECONDS, math.nan))
        return {
            "parameters": self.parameters,
            **convergence(self.history, self.direction),
            "seconds_per_epoch": seconds / len(self.history),
        }
