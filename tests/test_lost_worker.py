"""A trial whose worker process dies is the infrastructure's failure, not the trial's: Tune
retries it from its last checkpoint, and it ends with the numbers of an uninterrupted run."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from hypertune.config import load_config
from hypertune.search import run_study
from hypertune.search.recorder import Progress

KILLER = '''
import os
import time
from pathlib import Path

from torch import nn


class Net(nn.Module):
    """A small MLP whose worker process dies once, at training step `die_at`."""

    def __init__(self, features, classes, width, die_at, marker):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(features, width), nn.ReLU(),
                                  nn.Dropout(0.2), nn.Linear(width, classes))
        self.steps, self.die_at, self.marker = 0, die_at, Path(marker)

    def forward(self, x):
        if self.training:
            self.steps += 1
            if self.steps == self.die_at - 12 and not self.marker.exists():
                time.sleep(1.5)  # epoch 2 ends a while after epoch 1: both checkpoint
            if self.steps == self.die_at and self.first_to_die():
                time.sleep(3)  # long enough for the driver to take the last checkpoint
                os._exit(1)  # as a lost node or a killed worker ends it: no exception
        return self.body(x)

    def first_to_die(self):
        """True in one trial only: both reach `die_at` together, one creates the marker."""
        try:
            os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            return False
        return True


def build(input_shape, num_classes, width=16, die_at=0, marker=""):
    features = 1
    for size in input_shape:
        features *= size
    return Net(features, num_classes, width, die_at, marker)
'''


def study_file(folder: Path, name: str, die_at: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "killer.py").write_text(KILLER)
    path = folder / f"{name}.toml"
    path.write_text(
        f"""
[study]
name = "{name}"
data = "digits"
epochs = 4
checkpoint_seconds = 0

[model]
architecture = "killer:build"
lr = 0.01
batch_size = 128
die_at = {die_at}
marker = "{folder / (name + ".died")}"

[space]
width = [8, 16]
"""
    )
    return path


@pytest.mark.slow
@pytest.mark.usefixtures("ray_session")
def test_a_lost_worker_is_retried_from_its_checkpoint_with_unchanged_numbers(
    tmp_path: Path,
) -> None:
    steps = 11  # batches per epoch of digits' 1,437 training examples at 128
    states: list[Progress] = []
    lost = run_study(
        load_config(study_file(tmp_path, "lost", die_at=2 * steps + 5)),  # in epoch 3
        tmp_path / "runs",
        progress=states.append,
    )
    whole = run_study(load_config(study_file(tmp_path, "whole", die_at=0)), tmp_path / "runs")
    assert (tmp_path / "lost.died").exists()
    assert len(states[-1].retried) == 1 and states[-1].failed == 0
    a = pd.read_csv(lost / "results.csv").sort_values("width").reset_index(drop=True)
    b = pd.read_csv(whole / "results.csv").sort_values("width").reset_index(drop=True)
    assert list(a["status"]) == ["TERMINATED", "TERMINATED"]
    assert list(a["epochs"]) == [4, 4]
    metrics = ["train_loss", "valid_loss", "accuracy", "valid_loss_best", "accuracy_best"]
    pd.testing.assert_frame_equal(a[["width", *metrics]], b[["width", *metrics]])
    # The lost trial went on from its checkpoint after epoch 2, not from epoch 0.
    logged = sorted(restarts(lost / "ray").values())
    assert [(1, 1), (2, 2), (3, 1), (4, 2)] in logged, logged
    assert not list((lost / "ray").glob("*/checkpoint_*"))  # removed once the study finished


def restarts(experiment: Path) -> dict[str, list[tuple[int, int]]]:
    """Each trial's (training_iteration, iterations_since_restore) as Tune logged them."""
    import json

    out = {}
    for results in experiment.glob("*/result.json"):
        rows = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
        out[results.parent.name] = [
            (r["training_iteration"], r["iterations_since_restore"]) for r in rows
        ]
    return out
