"""The numbers results.csv keeps of each trial, each with the way it improves and its range:
the metrics every trainer reports per epoch, and what a trial cost (:mod:`hypertune.train.costs`).
"""

from __future__ import annotations

import math

# Metrics every trainer reports each epoch, with the direction in which they improve.
METRICS = {"train_loss": "min", "valid_loss": "min", "accuracy": "max"}
# Reported with each epoch: seconds of the trial's training so far, the warm-up left out.
SECONDS = "train_seconds"
# What a trial cost and how fast it converged (hypertune.train.costs), kept beside its metrics;
# each is better low.
COST_COLUMNS = {
    "parameters": "min",
    "epochs_to_best": "min",
    "epochs_to_within_5pct": "min",
    "seconds_per_epoch": "min",
}
# The range each column a report may colour by can take (its `_best` too); others: unbounded.
METRIC_BOUNDS = {
    "train_loss": (0.0, math.inf),
    "valid_loss": (0.0, math.inf),
    "accuracy": (0.0, 1.0),
    "seconds": (0.0, math.inf),
    "epochs": (0.0, math.inf),
    **{name: (0.0, math.inf) for name in COST_COLUMNS},
}
# What every trial reports and results.csv keeps: each metric's last value and its running best.
METRIC_COLUMNS = frozenset(f"{name}{suffix}" for name in METRICS for suffix in ("", "_best"))
# Every number results.csv keeps of a trial's training: its metrics and its costs.
RESULT_COLUMNS = METRIC_COLUMNS | frozenset(COST_COLUMNS)


def column_direction(column: str) -> str:
    """Which way a results column is better (min or max): a metric's (or its `_best`'s), a
    cost's (lower), else lower."""
    base = column.removesuffix("_best")
    return METRICS.get(base) or COST_COLUMNS.get(column) or "min"
