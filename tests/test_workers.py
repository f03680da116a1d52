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
import json, os, sys, time
from pathlib import Path

import ray
from hypertune.config import load_config
from hypertune.search import cluster, run_study

def idle_workers(with_torch=True):
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and (proc / "cmdline").read_bytes().startswith(b"ray::IDLE"):
                if not with_torch or "libtorch_cpu" in (proc / "maps").read_text():
                    found.append(int(proc.name))
        except OSError:
            continue
    return found

cluster.start(None, num_cpus=2)
deadline = time.monotonic() + 60
while len(preloaded := idle_workers()) < 2 and time.monotonic() < deadline:
    time.sleep(0.2)
path = run_study(load_config(sys.argv[1]), sys.argv[2])
pids = set()
for result in (path / "ray").glob("*/result.json"):
    pids |= {json.loads(line)["pid"] for line in result.read_text().splitlines() if line}
cluster.stop()
cluster.wait_stopped()
print(json.dumps({"preloaded": preloaded, "trial_pids": sorted(pids),
                  "stopped": not ray.is_initialized()}))
"""


@pytest.mark.timeout(300)
def test_trials_run_in_the_workers_ray_started_with_torch_loaded(
    tiny_study: Path, tmp_path: Path
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tiny_study), str(tmp_path / "runs")],
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    # Ray prestarts a worker per CPU, and each imports torch before it takes work ...
    assert len(seen["preloaded"]) == 2
    # ... and Tune's trial actors are started in exactly those, not in fresh processes.
    assert seen["trial_pids"] and set(seen["trial_pids"]) <= set(seen["preloaded"])
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
        assert list(ray_tmp.glob("ray/session_*")), "Ray was expected to have started"
        assert not _processes_naming(str(ray_tmp))
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


def test_a_local_ray_keeps_as_many_idle_workers_as_the_study_uses() -> None:
    # Ray starts a worker per CPU, each loading torch: the ones a study cannot use must go.
    code = SCRIPT.split("cluster.start(None, num_cpus=2)")[0] + (
        "cluster.start(None, num_cpus=2, workers=1)\n"
        "time.sleep(8)\n"
        "print(len(idle_workers(with_torch=False)), len(idle_workers()))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "1 1"  # one idle worker, torch loaded
