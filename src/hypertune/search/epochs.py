"""What one Tune result reports, epoch by epoch, for the loggers (TensorBoard, MLflow)."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

from hypertune.metrics import METRIC_COLUMNS
from hypertune.search.packs import EPOCHS, MEMBERS, member_id


def reported_epochs(
    trial: Any, result: Mapping[str, Any], iteration: int, seen: MutableMapping[str, int]
) -> Iterator[tuple[str | None, Mapping[str, Any], int]]:
    """The epochs `result` reports: ``(None, result, epoch)`` for a trial alone; for a fused
    pack, ``(member's trial id, its metrics, its epoch)`` for each member with a new epoch
    (`seen`: the last epoch logged per member, updated here; a member that has ended reports
    its last epoch again)."""
    members = result.get(MEMBERS)
    if not isinstance(members, dict):
        yield None, result, int(result.get("training_iteration", iteration))
        return
    for place, metrics in members.items():
        trial_id = member_id(trial.trial_id, int(place))
        step = int(metrics.get(EPOCHS, 0))
        if step <= seen.get(trial_id, 0):
            continue
        seen[trial_id] = step
        yield trial_id, metrics, step


def finite_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """hypertune's metrics in `metrics` that are finite numbers (a NaN point draws nothing)."""
    return {
        name: float(value)
        for name, value in sorted(metrics.items())
        if name in METRIC_COLUMNS
        and isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
    }
