"""`resume NAME --retry-failed`: failed trials trained again, their rows replaced, the rest
untouched; and what an out-of-memory kill leaves in the error column."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import hypertune
from hypertune.cli import main
from hypertune.search.recorder import error_text

# A model that fails in training while the flag file exists, for width 8 only.
FLAKY = """
import os

from torch import nn

FLAG = {flag!r}


class Flaky(nn.Module):
    def __init__(self, features, num_classes, width):
        super().__init__()
        self.width = width
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(features, num_classes))

    def forward(self, x, lengths=None):
        if self.width == 8 and os.path.exists(FLAG):
            raise RuntimeError("flaky: the flag is up")
        return self.body(x)


def build(input_shape, num_classes, width=4):
    features = 1
    for size in input_shape:
        features *= size
    return Flaky(features, num_classes, width)
"""

STUDY = """
[study]
name = "flaky"
data = "digits"
epochs = 1
[model]
architecture = "flaky:build"
batch_size = 256
[space]
width = [4, 8]
"""


@pytest.mark.slow  # two studies through Ray
def test_retry_failed_replaces_only_the_failed_rows(
    ray_session: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flag = tmp_path / "flag"
    flag.touch()
    (tmp_path / "flaky.py").write_text(FLAKY.format(flag=str(flag)))
    (tmp_path / "flaky.toml").write_text(STUDY)
    dirs = ["--storage", str(tmp_path / "runs"), "--out", str(tmp_path / "reports")]
    hypertune.run_study(tmp_path / "flaky.toml", tmp_path / "runs", reports=None)
    results = tmp_path / "runs" / "flaky" / "results.csv"
    before = pd.read_csv(results).set_index("width")
    assert list(before["status"].sort_index()) == ["TERMINATED", "ERROR"]
    assert "flaky: the flag is up" in before.loc[8, "error"]
    good = results.read_text().splitlines()[1:]
    good = [line for line in good if ",TERMINATED," in line]

    assert main(["resume", "flaky", *dirs]) == 2
    assert "--retry-failed" in capsys.readouterr().err
    flag.unlink()
    assert main(["resume", "flaky", "--retry-failed", *dirs]) == 0
    after = pd.read_csv(results).set_index("width")
    assert list(after["status"]) == ["TERMINATED", "TERMINATED"]
    assert list(after["trial_id"].sort_index()) == list(before["trial_id"].sort_index())
    assert set(good) <= set(results.read_text().splitlines())  # untouched, byte for byte
    meta = json.loads((results.parent / "study.json").read_text())
    assert meta["status"] == "finished"
    [attempt] = meta["attempts"]
    assert attempt["trial_id"] == before.loc[8, "trial_id"] and attempt["status"] == "ERROR"
    assert "flaky: the flag is up" in attempt["error"] and attempt["retry"] == 1

    assert main(["resume", "flaky", "--retry-failed", *dirs]) == 2
    assert "no ERROR or NAN trials to retry" in capsys.readouterr().err
    # With nothing left to retry, plain resume no longer points to --retry-failed.
    assert main(["resume", "flaky", *dirs]) == 2
    assert capsys.readouterr().err.strip() == "error: study 'flaky' has finished; nothing to resume"


RAY_OOM = """ray.exceptions.ActorDiedError: The actor died unexpectedly before finishing this task.
\tclass_name: ImplicitFunc
The actor is dead because its worker process has died. Worker exit type: NODE_OUT_OF_MEMORY \
Worker exit detail: Task was killed due to the node running low on memory.
Memory on the node (IP: 10.0.0.5, ID: 4f2a) where the task (actor ID: 9c, name=ImplicitFunc.\
__init__, pid=1234, memory used=1.20GB) was running was 7.42GB / 7.77GB (0.955), which exceeds \
the memory usage threshold of 0.95. Ray killed this worker (ID: 77) because it was the most \
recently scheduled task.
Refer to the documentation on how to address the out of memory issue: https://docs.ray.io/. \
Consider provisioning more memory on this node or reducing task parallelism.
"""


def test_an_out_of_memory_kill_is_named_in_the_error_column() -> None:
    assert error_text(RAY_OOM) == (
        "out of memory: Ray's memory monitor killed the trial with 7.42GB of 7.77GB in use on "
        "node 10.0.0.5"
    )
    assert error_text("Traceback...\ntorch.OutOfMemoryError: CUDA out of memory. Tried 2 GiB") == (
        "out of memory: torch.OutOfMemoryError: CUDA out of memory. Tried 2 GiB"
    )
    assert error_text("Traceback...\nValueError: bad\n") == "ValueError: bad"
