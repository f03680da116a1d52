"""A local Ray started by hypertune: trials start in workers that have loaded torch already."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conftest import run_cli

# Run in a process of its own: it starts (and stops) a Ray of its own, with hypertune's options.
SCRIPT = """
import json, sys, time

import psutil
import ray
from hypertune.config import load_config
from hypertune.search import cluster

def workers(loaded_torch=False):
    # Worker processes of the Ray this process started (its raylet's children).
    found = []
    for proc in psutil.Process().children(recursive=True):
        try:
            args = proc.cmdline() + [""]
            if args[0].startswith("ray::IDLE") or args[1].endswith("default_worker.py"):
                if not loaded_torch or any("libtorch_cpu" in m.path for m in proc.memory_maps()):
                    found.append(proc.pid)
        except psutil.Error:
            continue
    return sorted(found)

if sys.argv[1] == "study":
    cluster.start(None)
    started = workers()
    # Like the CLI: the driver imports torch and Ray Tune while the workers load them.
    from hypertune.search import run_study
    # More trials than slots, so that Tune asks for more placement groups than fit at once.
    grid = {"params": ["hidden_size=4:1:11", "num_layers=1,2,3"]}
    path = run_study(load_config(sys.argv[2], grid), sys.argv[3])
    pids = set()
    for result in (path / "ray").glob("*/result.json"):
        pids |= {json.loads(line)["pid"] for line in result.read_text().splitlines() if line}
    cluster.stop()
    cluster.wait_stopped()
    print(json.dumps({"started": started, "trial_pids": sorted(pids),
                      "stopped": not ray.is_initialized()}))
else:
    # Two CPUs per trial on two CPUs: one trial at a time.
    cluster.start(None, load_config(sys.argv[2], {"cpus_per_trial": 2}), num_cpus=2)
    # Ray ends a surplus worker once it is idle, i.e. once it has loaded the preloaded modules:
    # seconds on a quiet machine, longer on a busy one.
    deadline = time.monotonic() + 60
    counts = (len(workers()), len(workers(loaded_torch=True)))
    while counts != (1, 1) and time.monotonic() < deadline:
        time.sleep(0.5)
        counts = (len(workers()), len(workers(loaded_torch=True)))
    print(*counts)
    cluster.stop()
    cluster.wait_stopped()  # and its session folder is removed
"""


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_trials_run_in_the_workers_ray_started_with_the_driver(
    tiny_study: Path, tmp_path: Path
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, "study", str(tiny_study), str(tmp_path / "runs")],
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    # Ray starts a worker per CPU with the driver, and Tune's trial actors start in exactly
    # those (which imported torch meanwhile), not in fresh processes. (With Ray's default
    # limit on idle workers, this failed in about a third of the runs.)
    assert len(seen["started"]) == 2
    assert seen["trial_pids"] and set(seen["trial_pids"]) <= set(seen["started"])
    # stop() shuts Ray down behind the caller; wait_stopped() waits for the end.
    assert seen["stopped"]


def test_trial_actors_keep_tunes_runtime_env_when_workers_lack_its_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ray import tune
    from ray.tune.execution.class_cache import _ActorClassCache

    from hypertune.search import cluster

    class Trainable(tune.Trainable):
        pass

    # The workers of a Ray started with this environment have PL_DISABLE_FORK=1 already.
    node = "node-1"
    monkeypatch.setattr(cluster, "_node_id", lambda: node)
    monkeypatch.setitem(cluster._local, "node", node)
    monkeypatch.setitem(cluster._local, "env", {"PL_DISABLE_FORK": "1"})
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)

    def runtime_env() -> object:
        remote = _ActorClassCache().get(Trainable)
        return remote._default_options.get("runtime_env")

    with cluster.trial_workers():
        assert not runtime_env()  # nothing to set: the prestarted workers fit
        # A variable Tune copies to its actors that the workers did not inherit ...
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "set-after-ray-started")
        assert runtime_env()["env_vars"]["AWS_ACCESS_KEY_ID"] == "set-after-ray-started"
        # ... and another Ray than the one started with that environment: Tune's way.
        monkeypatch.delenv("AWS_ACCESS_KEY_ID")
        node = "node-2"
        assert runtime_env()["env_vars"]["PL_DISABLE_FORK"] == "1"
    node = "node-1"
    assert runtime_env()["env_vars"]["PL_DISABLE_FORK"] == "1"  # outside: Tune's own get


def test_starting_ray_does_not_wait_for_torch() -> None:
    # The CLI starts Ray while a second thread imports torch and Ray Tune: the cluster module
    # must load without them, or the start would wait for the imports it overlaps.
    code = (
        "import sys\n"
        "from hypertune.search import cluster\n"
        "print(sorted(m for m in ('torch', 'ray.tune', 'pandas') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.slow
def test_a_preloaded_worker_has_paid_torchs_one_time_costs() -> None:
    # What each worker of hypertune's Ray imports as it starts (cluster.PRELOAD): the trainable,
    # and the warm-up that imports torch._dynamo, so a worker's first trial does not pay it.
    code = (
        "import importlib, sys\n"
        "from hypertune.search import cluster\n"
        "for name in cluster.PRELOAD: importlib.import_module(name)\n"
        "from hypertune.train import warm_up\n"
        "print('hypertune.search.run' in sys.modules, 'torch._dynamo' in sys.modules,"
        " warm_up.cache_info().currsize)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "True", "1"]


@pytest.mark.slow
def test_an_error_after_ray_started_leaves_no_ray_processes(
    tiny_study: Path, tmp_path: Path
) -> None:
    # An unknown dataset is found once Ray is starting; Ray must still go down with the run.
    tiny_study.write_text(tiny_study.read_text().replace('"digits-seq"', '"no-such-data"'))
    ray_tmp = Path(tempfile.mkdtemp(prefix="ht-", dir="/tmp"))  # Ray's socket paths stay short
    try:
        done = run_cli("run", str(tiny_study), cwd=tmp_path, env={"RAY_TMPDIR": str(ray_tmp)})
        assert done.returncode == 2
        assert done.stderr.strip().splitlines()[-1].startswith("error: data: 'no-such-data'")
        assert "Traceback" not in done.stderr
        assert not (tmp_path / "runs" / "tiny").exists()
        assert (ray_tmp / "ray").is_dir(), "Ray was expected to have started"
        assert not _processes_naming(str(ray_tmp))
        # The session folder of hypertune's own Ray (logs, copies of results) is gone too.
        assert not list((ray_tmp / "ray").glob("session_*"))
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)


def _processes_naming(text: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and text.encode() in (proc / "cmdline").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def test_expected_slots_count_what_the_study_can_use(tiny_study: Path) -> None:
    from hypertune.config import load_config
    from hypertune.search import cluster

    def slots(cpus: int, **overrides: object) -> int:
        return cluster.expected_slots(load_config(tiny_study, overrides), num_cpus=cpus)

    assert slots(16) == 4  # a 4-trial grid uses 4 of 16 CPUs
    assert slots(2) == 2
    assert slots(16, cpus_per_trial=8) == 2
    assert slots(16, cpus_per_trial=0.5) == 4
    assert slots(3, cpus_per_trial=2) == 1


@pytest.mark.slow
def test_a_local_ray_keeps_as_many_idle_workers_as_the_study_uses(tiny_study: Path) -> None:
    # Ray starts a worker per CPU, each loading torch: the ones a study cannot use must go.
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, "idle", str(tiny_study)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "1 1"  # one idle worker, torch loaded
