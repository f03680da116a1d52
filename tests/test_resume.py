"""A driver killed with SIGKILL mid-study, then `resume`: every trial present exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from conftest import ROOT, run_cli

STUDY = """
[study]
name = "crash"
data = "digits-seq"
epochs = 3
metric = "valid_loss:min"
search = "grid"

[model]
architecture = "gru"
lr = 0.01
batch_size = 128

[space]
num_layers = [1, 2]
hidden_size = [4, 8, 16]
"""


# The same shape for every trial: 12 members in fused packs (two slots, so 2 packs per shape).
FUSED_STUDY = """
[study]
name = "crash"
data = "digits"
epochs = 40
metric = "valid_loss:min"
search = "grid"
seeds = 2

[model]
architecture = "mlp"
batch_size = 64
dropout = 0.1

[space]
hidden_size = [16, 32, 64]
lr = [0.003, 0.03]
"""


def _start_and_stop(
    tmp_path: Path, stop: Callable[[subprocess.Popen[str]], None], study: str = STUDY
) -> Path:
    """Run the study as a CLI subprocess; call `stop` once the first trial is recorded."""
    config = tmp_path / "crash.toml"
    config.write_text(study)
    results = tmp_path / "runs" / "crash" / "results.csv"
    # Its own session, so that killing its process group takes the driver and its Ray.
    driver = subprocess.Popen(
        [sys.executable, str(ROOT / "hypertuner.py"), "run", str(config)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and driver.poll() is None:
            if results.is_file() and len(pd.read_csv(results)) >= 1:
                break
            time.sleep(0.2)
        assert driver.poll() is None, "the study ended before it could be stopped"
        stop(driver)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()
    return results


def _power_cut(driver: subprocess.Popen[str]) -> None:
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()


@pytest.mark.slow
def test_resume_after_sigkill_finishes_the_rest_once(tmp_path: Path) -> None:
    results = _start_and_stop(tmp_path, _power_cut)
    before = pd.read_csv(results)
    assert 1 <= len(before) < 6
    assert json.loads((results.parent / "study.json").read_text())["status"] == "running"
    _resume_and_check(tmp_path, results, before)


@pytest.mark.slow
def test_resume_after_sigkill_finishes_each_member_of_a_fused_study_once(tmp_path: Path) -> None:
    results = _start_and_stop(tmp_path, _power_cut, FUSED_STUDY)
    before = pd.read_csv(results, dtype={"trial_id": str})
    assert 1 <= len(before) < 12
    record = json.loads((results.parent / "study.json").read_text())
    assert record["status"] == "running" and record["packs"]["count"] == 6
    done = run_cli("resume", "crash", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    after = pd.read_csv(results, dtype={"trial_id": str})
    assert len(after) == 12 and after["trial_id"].is_unique
    assert not after.duplicated(["hidden_size", "lr", "seed"]).any()
    assert set(after["status"]) == {"TERMINATED"} and (after["epochs"] == 40).all()
    kept = after.set_index("trial_id").loc[before["trial_id"]].reset_index()
    pd.testing.assert_frame_equal(kept[before.columns], before, check_dtype=False)
    # A member trained after the crash, rerun alone, gives its recorded metrics.
    member = sorted(set(after["trial_id"]) - set(before["trial_id"]))[0]
    rerun = run_cli("rerun", "crash", member, cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    assert "reproduced: every metric as recorded" in rerun.stdout


@pytest.mark.slow
def test_ctrl_c_leaves_a_resumable_study(tmp_path: Path) -> None:
    stopped: dict[str, object] = {}

    def ctrl_c(driver: subprocess.Popen[str]) -> None:
        driver.send_signal(signal.SIGINT)
        _, err = driver.communicate(timeout=120)
        stopped.update(code=driver.returncode, err=err)

    results = _start_and_stop(tmp_path, ctrl_c)
    assert stopped["code"] == 130
    assert "Continue with: resume crash" in str(stopped["err"])
    assert "Traceback" not in str(stopped["err"])
    assert json.loads((results.parent / "study.json").read_text())["status"] == "interrupted"
    before = pd.read_csv(results)
    assert 1 <= len(before) < 6
    assert (before["epochs"] == 3).all()  # trials cut short by Ctrl-C are not recorded
    _resume_and_check(tmp_path, results, before)


def _resume_and_check(tmp_path: Path, results: Path, before: pd.DataFrame) -> None:
    done = run_cli("resume", "crash", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    after = pd.read_csv(results)
    assert len(after) == 6
    assert after["trial_id"].is_unique
    assert not after.duplicated(["num_layers", "hidden_size"]).any()
    assert set(after["status"]) == {"TERMINATED"}
    assert (after["epochs"] == 3).all()
    # Rows finished before the crash are kept as recorded, not retrained (same seconds).
    kept = after.set_index("trial_id").loc[before["trial_id"]].reset_index()
    pd.testing.assert_frame_equal(kept[before.columns], before, check_dtype=False)
    assert json.loads((results.parent / "study.json").read_text())["status"] == "finished"

    again = run_cli("resume", "crash", cwd=tmp_path)
    assert again.returncode == 2
    # Every trial finished, so there is nothing for --retry-failed either: no hint to it.
    assert again.stderr.strip() == "error: study 'crash' has finished; nothing to resume"


def test_resume_retry_and_rerun_refuse_changed_data_by_one_check() -> None:
    from dataclasses import replace
    from types import SimpleNamespace

    from hypertune.errors import StudyError
    from hypertune.search.code import check_same_data
    from test_store import record

    recorded = record("s")  # fingerprint abc
    check_same_data(recorded, SimpleNamespace(fingerprint="abc"))
    check_same_data(replace(recorded, data={}), SimpleNamespace(fingerprint="x"))
    with pytest.raises(StudyError, match="study 's': the data changed since it ran"):
        check_same_data(recorded, SimpleNamespace(fingerprint="xyz"))
