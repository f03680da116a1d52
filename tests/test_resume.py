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
from hypertune.study.curves import load_curves

STUDY = """
[study]
name = "crash"
data = "digits-seq"
epochs = 3
metric = "valid_loss:min"
search = "grid"
fuse = false  # lone trials, recorded one by one (fused packs: FUSED_STUDY)

[model]
architecture = "gru"
lr = 0.01
batch_size = 128

[space]
num_layers = [1, 2]
hidden_size = [4, 8, 16]
"""


# 12 MLP members of three widths in fused packs: one width to a pack (padding 16 units to 32
# would double their work), the widest split in two so that two slots share the work: 4 packs.
FUSED_STUDY = """
[study]
name = "crash"
data = "digits"
epochs = 120
metric = "valid_loss:min"
search = "grid"
seeds = 2
checkpoint_seconds = 0

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

    def first_row() -> bool:
        return results.is_file() and len(pd.read_csv(results)) >= 1

    _drive_cli(tmp_path, ["run", str(config)], first_row, stop)
    return results


def _drive_cli(
    tmp_path: Path,
    args: list[str],
    ready: Callable[[], bool],
    stop: Callable[[subprocess.Popen[str]], None],
) -> None:
    """Run `hypertuner.py ARGS` as a subprocess; call `stop` once `ready()` holds."""
    # Its own session, so that killing its process group takes the driver and its Ray.
    driver = subprocess.Popen(
        [sys.executable, str(ROOT / "hypertuner.py"), *args],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and driver.poll() is None:
            if ready():
                break
            time.sleep(0.2)
        assert driver.poll() is None, f"`{args[0]}` ended before it could be stopped"
        stop(driver)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()


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
def test_a_study_moved_to_another_storage_resumes_there(tmp_path: Path) -> None:
    results = _start_and_stop(tmp_path, _power_cut)
    before = pd.read_csv(results)
    (tmp_path / "runs").rename(tmp_path / "moved")
    moved = tmp_path / "moved" / "crash" / "results.csv"
    done = _resume_and_check(tmp_path, moved, before, "--storage", "moved")
    assert f"study 'crash' ran in {tmp_path / 'runs' / 'crash'}" in done.stderr
    assert not (tmp_path / "runs").exists()  # nothing written where it used to be


@pytest.mark.slow
def test_resume_after_sigkill_finishes_each_member_of_a_fused_study_once(tmp_path: Path) -> None:
    def cut_once_packs_checkpointed(driver: subprocess.Popen[str]) -> None:
        # Once Tune's experiment state names a running pack's checkpoint.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not _running_with_checkpoint(experiment):
            time.sleep(0.05)
        _power_cut(driver)

    experiment = tmp_path / "runs" / "crash" / "ray"
    results = _start_and_stop(tmp_path, cut_once_packs_checkpointed, FUSED_STUDY)
    before = pd.read_csv(results, dtype={"trial_id": str})
    assert 1 <= len(before) < 12
    record = json.loads((results.parent / "study.json").read_text())
    assert record["status"] == "running" and record["packs"]["count"] == 4
    done = run_cli("resume", "crash", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    after = pd.read_csv(results, dtype={"trial_id": str})
    assert len(after) == 12 and after["trial_id"].is_unique
    assert not after.duplicated(["hidden_size", "lr", "seed"]).any()
    assert set(after["status"]) == {"TERMINATED"} and (after["epochs"] == 120).all()
    kept = after.set_index("trial_id").loc[before["trial_id"]].reset_index()
    pd.testing.assert_frame_equal(kept[before.columns], before, check_dtype=False)
    _check_curves(results, after)
    # Packs that were training when the driver died went on from their last checkpoint (where
    # Tune's saved state named one: the kill lands at a moment the test cannot pin down).
    restored = _restored_trials(results.parent / "ray")
    assert not list((results.parent / "ray").glob("*/checkpoint_*"))  # removed at the end
    # A member trained after the crash (from a checkpoint, where one was), rerun alone from
    # scratch, gives its recorded metrics exactly.
    fresh = sorted(set(after["trial_id"]) - set(before["trial_id"]))
    member = next((i for i in fresh if i.rsplit("-", 1)[0] in restored), fresh[0])
    rerun = run_cli("rerun", "crash", member, cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    assert "reproduced: every metric as recorded" in rerun.stdout


def _check_curves(results: Path, after: pd.DataFrame) -> None:
    """Every epoch of every trial once in curves.csv, the last one as results.csv has it
    (epochs trained before the crash and kept, or trained again after it)."""
    curves = load_curves(results.parent)
    epochs = int(after["epochs"].iloc[0])
    assert len(curves) == len(after) * epochs
    assert not curves.duplicated(["trial_id", "epoch"]).any()
    last = curves[curves["epoch"] == epochs].set_index("trial_id")["valid_loss"]
    recorded = pd.read_csv(results, dtype={"trial_id": str}, float_precision="round_trip")
    assert last.to_dict() == recorded.set_index("trial_id")["valid_loss"].to_dict()


def _running_with_checkpoint(experiment: Path) -> bool:
    """Whether Tune's saved experiment state names a checkpoint of a trial still running."""
    import cloudpickle

    for path in sorted(experiment.glob("experiment_state-*.json"))[-1:]:
        try:
            trials = json.loads(path.read_text())["trial_data"]
        except (OSError, ValueError, KeyError):
            return False  # being written
        for meta, state in trials:
            meta, state = json.loads(meta), json.loads(state)
            manager = cloudpickle.loads(bytes.fromhex(state["checkpoint_manager"]["value"]))
            if meta["status"] == "RUNNING" and manager.latest_checkpoint_result is not None:
                return True
    return False


def _restored_trials(experiment: Path) -> set[str]:
    """Ray trials whose results went on after a restore from a checkpoint (Tune counts their
    iterations since the restore from 1 again, from a training iteration above 1)."""
    restored = set()
    for path in experiment.glob("*/result.json"):
        for line in path.read_text().splitlines():
            row = json.loads(line) if line.strip() else {}
            if row and row["iterations_since_restore"] < row["training_iteration"]:
                restored.add(str(row["trial_id"]))
    return restored


def _interrupt(how: signal.Signals, stopped: dict[str, object]) -> Callable[..., None]:
    """A `stop` that sends the driver alone `how` (as Ctrl-C or `kill PID` do) and keeps its
    exit code and stderr in `stopped`."""

    def send(driver: subprocess.Popen[str]) -> None:
        driver.send_signal(how)
        _, err = driver.communicate(timeout=120)
        stopped.update(code=driver.returncode, err=err)

    return send


@pytest.mark.slow
@pytest.mark.parametrize(
    ("how", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"]
)
def test_ctrl_c_or_sigterm_leaves_a_resumable_study(
    tmp_path: Path, how: signal.Signals, code: int
) -> None:
    stopped: dict[str, object] = {}
    results = _start_and_stop(tmp_path, _interrupt(how, stopped))
    err = str(stopped["err"])
    assert stopped["code"] == code, err
    # The hint is the last word: no Traceback, no stack dump of Ray's (SIGTERM printed two),
    # no progress line after it.
    assert err.strip().splitlines()[-1] == (
        "interrupted; finished trials are kept. Continue with: resume crash"
    )
    assert "Traceback" not in err and "SIGTERM received" not in err
    assert json.loads((results.parent / "study.json").read_text())["status"] == "interrupted"
    before = pd.read_csv(results)
    assert 1 <= len(before) < 6
    assert (before["epochs"] == 3).all()  # trials cut short by Ctrl-C are not recorded
    _resume_and_check(tmp_path, results, before)


@pytest.mark.slow
def test_a_resume_says_running_while_it_runs_so_kill_9_leaves_running(tmp_path: Path) -> None:
    stopped: dict[str, object] = {}
    results = _start_and_stop(tmp_path, _interrupt(signal.SIGTERM, stopped))
    study = results.parent / "study.json"
    assert json.loads(study.read_text())["status"] == "interrupted"
    before = pd.read_csv(results)

    def running() -> bool:
        return bool(json.loads(study.read_text())["status"] == "running")

    # Killed outright once it says so (it holds the lock; its Ray starts, then training).
    _drive_cli(tmp_path, ["resume", "crash"], running, _power_cut)
    assert json.loads(study.read_text())["status"] == "running"
    _resume_and_check(tmp_path, results, before)


def _resume_and_check(
    tmp_path: Path, results: Path, before: pd.DataFrame, *where: str
) -> subprocess.CompletedProcess[str]:
    done = run_cli("resume", "crash", *where, cwd=tmp_path)
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
    _check_curves(results, after)

    again = run_cli("resume", "crash", *where, cwd=tmp_path)
    assert again.returncode == 2
    # Every trial finished, so there is nothing for --retry-failed either: no hint to it.
    assert again.stderr.strip() == "error: study 'crash' has finished; nothing to resume"
    return done


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
