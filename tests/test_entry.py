"""`python3 hypertuner.py` from a Python outside .venv finds .venv by itself."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SYSTEM = shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin")


@pytest.mark.skipif(
    SYSTEM is None or Path(sys.prefix).resolve() != (ROOT / ".venv").resolve(),
    reason="needs a system python3 and the checkout's .venv",
)
def test_a_python_without_the_packages_runs_under_the_venv(tmp_path: Path) -> None:
    assert SYSTEM is not None
    has_pandas = subprocess.run([SYSTEM, "-c", "import pandas"], capture_output=True)
    if has_pandas.returncode == 0:
        pytest.skip("the system python3 has the packages itself")
    done = subprocess.run(
        [SYSTEM, str(ROOT / "hypertuner.py"), "show", "nothing"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "error: study 'nothing' not found in runs/; runs/ holds no studies"
    )
