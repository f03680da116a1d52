"""A study's Ray keeps strangers out: token authentication stays on, and nothing is left behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import run_cli


@pytest.mark.slow  # Ray's client retries for about 20 s before it gives up
def test_a_client_without_the_token_cannot_run_code_on_a_study_ray(
    ray_session: None, tmp_path: Path
) -> None:
    import ray

    # The GCS address is the machine's own address, as a stranger on the network would use it.
    gcs = ray.get_runtime_context().gcs_address
    target = tmp_path / "written-by-a-stranger"
    code = (
        "import ray\n"
        f"ray.init(address={gcs!r}, log_to_driver=False)\n"
        "@ray.remote\n"
        f"def write():\n    open({str(target)!r}, 'w').write('x')\n"
        "ray.get(write.remote(), timeout=30)\n"
    )
    # A stranger's client as Ray sets it up by default: no token file, no RAY_* variables.
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(HOME=str(tmp_path))
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=180
    )
    assert done.returncode != 0
    assert "InvalidAuthToken" in done.stderr
    assert not target.exists()


@pytest.mark.parametrize("address", [(), ("--address", "local")])
def test_a_local_ray_with_authentication_disabled_is_refused(
    tiny_study: Path, tmp_path: Path, address: tuple[str, ...]
) -> None:
    done = run_cli(
        "run", str(tiny_study), "--smoke", *address, cwd=tmp_path, env={"RAY_AUTH_MODE": "disabled"}
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("error: RAY_AUTH_MODE=disabled: ")
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "runs" / "tiny").exists()
