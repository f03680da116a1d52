"""Shared fixtures: one Ray instance for the in-process studies, small study files."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

os.environ.setdefault("TUNE_DISABLE_STRICT_METRIC_CHECKING", "0")


def _cli_environment() -> None:
    # In-process studies run with the settings the CLI gives Ray and Tune before Ray starts.
    from hypertune.cli import RAY_ENVIRONMENT

    for name, value in RAY_ENVIRONMENT.items():
        os.environ.setdefault(name, value)


_cli_environment()


TINY_STUDY = """
[study]
name = "tiny"
data = "digits-seq"
epochs = 1
metric = "valid_loss:min"
search = "grid"

[model]
architecture = "gru"
lr = 0.01
batch_size = 128

[space]
num_layers = [1, 2]
hidden_size = [4, 8]
"""


@pytest.fixture(scope="session")
def ray_session() -> Iterator[None]:
    """One local Ray for every in-process study of the session (starting Ray costs seconds),
    started the way hypertune starts its own."""
    from hypertune.search import cluster

    cluster.start(None, num_cpus=2)
    yield
    cluster.stop()
    cluster.wait_stopped()


@pytest.fixture
def tiny_study(tmp_path: Path) -> Path:
    """A 4-trial, 1-epoch GRU grid study file."""
    path = tmp_path / "tiny.toml"
    path.write_text(TINY_STUDY)
    return path


def run_cli(
    *args: str, cwd: Path, timeout: float = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `python hypertuner.py ARGS` in `cwd` as a user would (`env`: extra variables)."""
    return subprocess.run(
        [sys.executable, str(ROOT / "hypertuner.py"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    )
