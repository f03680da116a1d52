"""TensorBoard logs of each trial's metrics, written without a disk flush per epoch."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ray.tune.logger import TBXLoggerCallback
from tensorboardX import SummaryWriter

from hypertune.search.epochs import finite_metrics, reported_epochs

# Each trial's event file lives in this subfolder of the trial's folder (where earlier versions
# also had Tune's own event file of every result field).
SUBFOLDER = "metrics"


class MetricsTensorBoard(TBXLoggerCallback):
    """hypertune's metrics of every trial as TensorBoard scalars, flushed when a trial ends.

    It stands in for Ray's own TensorBoard logger: Tune adds its :class:`TBXLoggerCallback` to a
    run only where none is among the callbacks, and with both every curve was drawn twice
    (``valid_loss`` and ``ray/tune/valid_loss``). Ray's logger writes every numeric field of
    every result (timers, pids, counters) and flushes the event file after each epoch; with
    epochs of a few milliseconds that disk traffic runs in the driver on the same cores as the
    trials. This one writes only :data:`~hypertune.config.METRIC_COLUMNS` to
    `<trial folder>/metrics/`, tagged with the metric's name (``valid_loss``, as results.csv
    calls it), and lets tensorboardX flush in the background. A value that is not finite (a
    diverged trial's NaN loss) is left out: a NaN point draws nothing, and tensorboardX would
    warn of each one on stderr. The members of a fused pack each get their own folder,
    `<trial folder>/metrics/<member's trial id>/`.
    """

    def __init__(self) -> None:  # not Ray's: its writers and results by trial go unused
        # Open writers by trial id and subfolder (one trial may keep several event files).
        self.writers: dict[tuple[str, str], SummaryWriter] = {}
        self.steps: dict[str, int] = {}  # a pack member's last logged epoch, by its trial id

    def __getstate__(self) -> dict[str, Any]:
        return {}  # Tune pickles its callbacks with the experiment: open files stay here

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Restored by Tune.restore: no writers yet, each opens again on its trial's next result.
        self.writers, self.steps = {}, {}

    def writer(self, trial: Any, subfolder: str = SUBFOLDER) -> SummaryWriter:
        """The open writer of `trial` in `<trial folder>/<subfolder>`, created on first use."""
        key = (trial.trial_id, subfolder)
        writer = self.writers.get(key)
        if writer is None:
            folder = Path(trial.local_path) / subfolder
            writer = self.writers[key] = SummaryWriter(logdir=str(folder), flush_secs=30)
        return writer

    def close(self, trial: Any) -> None:
        """Flush and close every writer of `trial`."""
        for key in [key for key in self.writers if key[0] == trial.trial_id]:
            self.writers.pop(key).close()

    def log_trial_start(self, trial: Any) -> None:
        pass  # a writer opens with the trial's first result (Ray's would open one here)

    def log_trial_result(self, iteration: int, trial: Any, result: dict[str, Any]) -> None:
        # A fused pack: each member's curves in a folder of its own, named by its trial id.
        for member, metrics, step in reported_epochs(trial, result, iteration, self.steps):
            folder = SUBFOLDER if member is None else f"{SUBFOLDER}/{member}"
            self._log(self.writer(trial, folder), metrics, step)

    @staticmethod
    def _log(writer: SummaryWriter, metrics: Mapping[str, Any], step: int) -> None:
        for name, value in finite_metrics(metrics).items():
            writer.add_scalar(name, value, global_step=step)

    def log_trial_end(self, trial: Any, failed: bool = False) -> None:
        self.close(trial)

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        while self.writers:  # trials that never ended (an interrupted study)
            self.writers.popitem()[1].close()
