"""A local Ray started by hypertune: it starts without waiting for torch, and goes down with
the run."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conftest import run_cli


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
