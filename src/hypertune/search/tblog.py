"""TensorBoard logs of each trial's metrics, written without a disk flush per epoch."""

from __future__ import annotations

from typing import Any

from ray.tune.logger import TBXLoggerCallback

from hypertune.config import METRIC_COLUMNS


class MetricsTensorBoard(TBXLoggerCallback):
    """Ray's TensorBoard logger, kept to hypertune's metrics and flushed when a trial ends.

    Ray's own logger writes every numeric field of every result (timers, pids, counters) under
    `ray/tune/` and flushes the event file after each epoch; with epochs of a few milliseconds
    that disk traffic runs in the driver on the same cores as the trials. The tags stay Ray's
    (`ray/tune/valid_loss`), so TensorBoard views of Ray experiments read these logs unchanged.
    """

    def log_trial_result(self, iteration: int, trial: Any, result: dict[str, Any]) -> None:
        if trial not in self._trial_writer:
            self.log_trial_start(trial)
        step = result.get("training_iteration", iteration)
        writer = self._trial_writer[trial]
        kept = {}
        for name in sorted(METRIC_COLUMNS & result.keys()):
            value = result[name]
            if isinstance(value, int | float):
                writer.add_scalar(f"ray/tune/{name}", value, global_step=step)
                kept[f"ray/tune/{name}"] = value
        self._trial_result[trial] = kept
