"""A study run on an existing Ray cluster through `--address` (a local head on 127.0.0.1)."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from conftest import ROOT, run_cli

RAY = str(Path(sys.executable).with_name("ray"))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _processes_under(folder: str) -> list[int]:
    """Ids of the processes whose command line names `folder` (this head's session)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if folder.encode() in (proc / "cmdline").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def _stop_head(folder: str) -> None:
    """Stop this head's processes by id (`ray stop` would stop every Ray on the machine)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in _processes_under(folder):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + 10
        while _processes_under(folder) and time.monotonic() < deadline:
            time.sleep(0.2)


@pytest.fixture
def ray_head() -> Iterator[tuple[str, Path, dict[str, str]]]:
    """`ray start --head` with token authentication on a free port, as the README tells a
    cluster user to start one; yields its address, session folder and the variables a client
    needs (the token), then stops it."""
    # A short folder of its own: Ray's socket paths must stay under 108 characters.
    temp = tempfile.mkdtemp(prefix="ht-ray-", dir="/tmp")
    port = _free_port()
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    env = {**os.environ, **auth}
    started = subprocess.run(
        [
            RAY,
            "start",
            "--head",
            f"--port={port}",
            "--num-cpus=2",
            "--node-ip-address=127.0.0.1",
            "--disable-usage-stats",
            "--include-dashboard=false",
            f"--temp-dir={temp}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    address = f"127.0.0.1:{port}"
    try:
        assert started.returncode == 0, started.stderr
        yield address, Path(temp), auth
    finally:
        _stop_head(temp)
        shutil.rmtree(temp, ignore_errors=True)


@pytest.mark.slow
def test_study_runs_on_a_cluster_through_address(
    ray_head: tuple[str, Path, dict[str, str]], tiny_study: Path, tmp_path: Path
) -> None:
    address, session, auth = ray_head
    args = ("run", str(tiny_study), "--smoke", "--address", address)
    done = run_cli(*args, cwd=tmp_path, env=auth)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    results = pd.read_csv(tmp_path / "runs" / "tiny" / "results.csv")
    assert len(results) == 2 and set(results["status"]) == {"TERMINATED"}
    # The trials ran in workers of the cluster's node, not on a Ray the driver started itself.
    assert list(session.glob("session_*/logs/worker-*"))


@pytest.mark.slow  # Ray's client retries for about 20 s before it gives up
@pytest.mark.parametrize("mode", [{}, {"RAY_AUTH_MODE": "token"}], ids=["plain", "token-mode"])
def test_a_cluster_that_refuses_the_token_is_one_line_and_leaves_no_study(
    ray_head: tuple[str, Path, dict[str, str]],
    tiny_study: Path,
    tmp_path: Path,
    mode: dict[str, str],
) -> None:
    address, _, _ = ray_head
    # A client as a user's machine without the head's token: no RAY_AUTH_TOKEN, no token file.
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(HOME=str(tmp_path), **mode)
    done = subprocess.run(
        [sys.executable, str(ROOT / "hypertuner.py"), "run", str(tiny_study), "--smoke",
         "--address", address],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: --address: the Ray cluster at {address} did not accept")
    assert "(no token here;" in last and "cannot reach" not in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "runs" / "tiny").exists()  # the name stays free


CLUSTER_STUDY = """
[study]
name = "nodes"
data = "digits-seq"
epochs = 40
checkpoint_seconds = 0
retries = 5

[model]
architecture = "gru"
lr = 0.01
batch_size = 64

[space]
num_layers = [1, 2, 3]
hidden_size = [32, 48]
"""


WORKER_IP = "127.0.0.2"


def _training_on(experiment: Path, node_ip: str, epochs: int) -> bool:
    """True once a trial on the node `node_ip` has reported `epochs` epochs."""
    for results in experiment.glob("*/result.json"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            lines = results.read_text().splitlines()
            if len(lines) >= epochs and json.loads(lines[-1]).get("node_ip") == node_ip:
                return True
    return False


@pytest.mark.slow
def test_a_lost_worker_node_costs_no_trial(
    ray_head: tuple[str, Path, dict[str, str]], tmp_path: Path
) -> None:
    address, _, auth = ray_head
    # The worker node on an address of its own (127.0.0.2 is loopback too), so that the driver
    # attaches to the head node's raylet and losing the worker node does not take the driver.
    worker_temp = tempfile.mkdtemp(prefix="ht-node-", dir="/tmp")
    env = {**os.environ, **auth}
    joined = subprocess.run(
        [RAY, "start", f"--address={address}", "--num-cpus=2", f"--node-ip-address={WORKER_IP}",
         "--disable-usage-stats", f"--temp-dir={worker_temp}"],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    try:
        assert joined.returncode == 0, joined.stderr
        (tmp_path / "nodes.toml").write_text(CLUSTER_STUDY)
        study = subprocess.Popen(
            [sys.executable, str(Path(__file__).parents[1] / "hypertuner.py"), "run",
             "nodes.toml", "--address", address],
            cwd=tmp_path, env={**env, "PYTHONUNBUFFERED": "1"}, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        # Once a trial of the worker node is two epochs in, the node goes: killed outright.
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and study.poll() is None:
            if _training_on(tmp_path / "runs/nodes/ray", WORKER_IP, epochs=2):
                break
            time.sleep(0.2)
        assert study.poll() is None, "the study ended before the node could be lost"
        assert _processes_under(worker_temp)
        for pid in _processes_under(worker_temp):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        _, err = study.communicate(timeout=900)
    finally:
        _stop_head(worker_temp)
        shutil.rmtree(worker_temp, ignore_errors=True)
    assert study.returncode == 0, err
    results = pd.read_csv(tmp_path / "runs" / "nodes" / "results.csv")
    assert len(results) == 6 and results["trial_id"].is_unique
    why = results.get("error", pd.Series(dtype=str)).dropna().tolist()
    assert set(results["status"]) == {"TERMINATED"}, (why, err[-4000:])
    assert set(results["epochs"]) == {40}
    # A trial of the lost node went on from its checkpoint on the head node, not from epoch 0.
    last = [
        json.loads(p.read_text().splitlines()[-1])
        for p in (tmp_path / "runs/nodes/ray").glob("*/result.json")
    ]
    assert any(r["iterations_since_restore"] < r["training_iteration"] == 40 for r in last), last
    assert "retried" in err, err
    assert "Traceback" not in err, err


@pytest.mark.slow
def test_without_an_address_a_study_starts_its_own_ray(tiny_study: Path, tmp_path: Path) -> None:
    """The machine's latest cluster (a user's `ray start`, recorded in Ray's temporary folder,
    which every user of the machine shares) is neither joined nor touched."""
    temp = tempfile.mkdtemp(prefix="ht-tmp-", dir="/tmp")  # Ray's folder is <TMPDIR>/ray
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32), "TMPDIR": temp}
    auth["RAY_ADDRESS"] = ""  # no address anywhere: neither given nor in the environment
    env = {**os.environ, **auth}
    started = subprocess.run(
        [RAY, "start", "--head", f"--port={_free_port()}", "--num-cpus=1",
         "--node-ip-address=127.0.0.1", "--disable-usage-stats", "--include-dashboard=false"],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    try:
        assert started.returncode == 0, started.stderr
        ray_temp = Path(temp) / "ray"
        assert (ray_temp / "ray_current_cluster").is_file()
        theirs = {p.name for p in ray_temp.glob("session_2*")}
        assert len(theirs) == 1
        done = run_cli("run", str(tiny_study), "--smoke", cwd=tmp_path, env=auth)
        assert done.returncode == 0, done.stderr
        results = pd.read_csv(tmp_path / "runs" / "tiny" / "results.csv")
        assert set(results["status"]) == {"TERMINATED"}
        # Their session is as it was: still there, no worker of the study's trials in it, its
        # cluster still running; the study's own session is gone.
        assert {p.name for p in ray_temp.glob("session_2*")} == theirs
        assert not list(ray_temp.glob(f"{theirs.pop()}/logs/worker-*"))
        assert _processes_under(temp)
    finally:
        _stop_head(temp)
        shutil.rmtree(temp, ignore_errors=True)
