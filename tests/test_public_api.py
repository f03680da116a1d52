"""hypertune uses Ray's, mltrainer's and tensorboardX's public API only, and the library changes
no environment variable (only the CLI does, before Ray starts)."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "hypertune"
# Libraries whose private parts hypertune must not touch.
LIBRARIES = ("ray", "mltrainer", "tensorboardX")
# Private names of those libraries that hypertune once used.
KNOWN_PRIVATE = {"_local_tuner", "_trial_writer", "_trial_result", "_ActorClassCache"}
KNOWN_PRIVATE |= {"_system_config", "_tune", "_internal"}
# Modules of Ray that are internal whatever their name says.
INTERNAL_MODULES = ("ray.tune.execution", "ray.air._internal", "ray._private", "ray._raylet")
ENVIRONMENT_WRITES = {"setdefault", "update", "pop", "clear", "__setitem__", "putenv"}


def _sources() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def _library(module: str) -> bool:
    return module.split(".")[0] in LIBRARIES


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def violations(source: str, name: str) -> list[str]:
    """What in `source` (a module of hypertune named `name`) breaks the rules."""
    tree = ast.parse(source)
    library_names, found = _imports(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            if node.attr in KNOWN_PRIVATE:
                found.append(f"line {node.lineno}: .{node.attr}")
            elif _private(node.attr) and _root(node.value) in library_names:
                found.append(f"line {node.lineno}: {_root(node.value)}...{node.attr}")
        elif isinstance(node, ast.keyword) and node.arg in KNOWN_PRIVATE:
            found.append(f"line {node.value.lineno}: {node.arg}=")
        elif isinstance(node, ast.Constant) and node.value == "disabled":
            found.append(f"line {node.lineno}: 'disabled' (Ray's authentication stays on)")
        if name != "cli/__init__.py":  # the command line sets Ray's settings (main)
            found.extend(_environment_writes(node))
    return found


def _imports(tree: ast.AST) -> tuple[set[str], list[str]]:
    """The local names bound to the libraries' modules or objects, and the private imports."""
    names: set[str] = set()
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _library(alias.name):
                    names.add((alias.asname or alias.name).split(".")[0])
                    _check_module(alias.name, node, found)
        elif isinstance(node, ast.ImportFrom) and node.module and _library(node.module):
            _check_module(node.module, node, found)
            for alias in node.names:
                if _private(alias.name):
                    found.append(f"line {node.lineno}: imports {node.module}.{alias.name}")
                names.add(alias.asname or alias.name)
    return names, found


def _check_module(module: str, node: ast.stmt, found: list[str]) -> None:
    parts = module.split(".")
    if any(_private(part) for part in parts) or module.startswith(INTERNAL_MODULES):
        found.append(f"line {node.lineno}: imports {module}")


def _root(node: ast.expr) -> str | None:
    while isinstance(node, ast.Attribute | ast.Call | ast.Subscript):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def _is_environ(node: ast.expr) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "environ") or (
        isinstance(node, ast.Name) and node.id == "environ"
    )


def _environment_writes(node: ast.AST) -> list[str]:
    """`os.environ[...] = ...`, `del os.environ[...]`, `os.environ.setdefault(...)`, ..."""
    targets: list[ast.expr] = []
    if isinstance(node, ast.Assign | ast.Delete):
        targets = node.targets
    elif isinstance(node, ast.AugAssign | ast.AnnAssign):
        targets = [node.target]
    found = [
        f"line {node.lineno}: writes os.environ"
        for target in targets
        if isinstance(target, ast.Subscript) and _is_environ(target.value)
    ]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        func = node.func
        if func.attr in ENVIRONMENT_WRITES and (_is_environ(func.value) or func.attr == "putenv"):
            found.append(f"line {node.lineno}: os.environ.{func.attr}(...)")
    return found


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(SRC)))
def test_hypertune_uses_only_public_api_and_leaves_the_environment_alone(path: Path) -> None:
    assert violations(path.read_text(), path.relative_to(SRC).as_posix()) == []


def _imports_ray(tree: ast.AST) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "ray" for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "ray":
            return True
    return False


def test_only_the_search_package_imports_ray() -> None:
    importers = {
        p.relative_to(SRC).parts[0] for p in _sources() if _imports_ray(ast.parse(p.read_text()))
    }
    assert importers == {"search"}
    assert _imports_ray(ast.parse("def f():\n    from ray import tune\n"))  # the check sees it


def test_the_check_finds_what_hypertune_once_did() -> None:
    # Each of these was in hypertune before it kept to Ray's public API.
    cases = {
        "from ray.tune.execution import class_cache\n": "imports ray.tune.execution",
        "from ray.air._internal import usage\n": "imports ray.air._internal",
        "tuner._local_tuner.get_run_config().callbacks = []\n": "._local_tuner",
        "w = self._trial_writer[trial]\n": "._trial_writer",
        "reporter._tune = bridge\n": "._tune",
        "ray.init(_system_config={'a': 1})\n": "_system_config=",
        "import ray\nray._private.worker.global_worker\n": "ray..._private",
        "import os\nos.environ.setdefault('RAY_DEDUP_LOGS', '0')\n": "os.environ.setdefault",
        "import os\nos.environ['TUNE_GLOBAL_CHECKPOINT_S'] = '1'\n": "writes os.environ",
        "import os\nos.environ.update({'A': '1'})\n": "os.environ.update",
        "env = {'RAY_AUTH_MODE': 'disabled'}\n": "'disabled'",
    }
    for source, expected in cases.items():
        found = violations(source, "cluster.py")
        assert any(expected in line for line in found), (source, found)
    # Reading the environment is fine, and so is the CLI setting it before Ray starts.
    assert violations("import os\nos.environ.get('RAY_ADDRESS')\n", "cluster.py") == []
    assert violations("import os\nos.environ.setdefault('A', '1')\n", "cli/__init__.py") == []


def test_the_cli_sets_rays_settings_before_ray_starts_unless_the_user_did(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from hypertune import cli

    for name in cli.RAY_ENVIRONMENT:
        monkeypatch.setenv(name, "")  # so that the test's end restores what was there
        monkeypatch.delenv(name)
    monkeypatch.setenv("TUNE_RESULT_BUFFER_LENGTH", "1")  # the user's value wins
    code = cli.main(["show", "no-such-study", "--storage", str(SRC / "no-such-folder")])
    assert code == cli.EXIT_USER_ERROR
    assert os.environ["TUNE_RESULT_BUFFER_LENGTH"] == "1"
    assert os.environ["TUNE_GLOBAL_CHECKPOINT_S"] == "1"
    assert os.environ["RAY_USAGE_STATS_ENABLED"] == "0"
    assert "RAY_AUTH_MODE" not in cli.RAY_ENVIRONMENT


def test_a_pickled_recorder_comes_back_as_the_live_one(
    tiny_study: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tune pickles its callbacks with the experiment and Tuner.restore unpickles them: the
    # recorder a resumed study gets back is the live one, with its progress function.
    import pickle

    import pandas as pd

    from hypertune.config import load_config
    from hypertune.errors import StudyError
    from hypertune.search import recorder as rec
    from hypertune.study import store

    monkeypatch.setattr(store, "read_results", lambda *args: pd.DataFrame(columns=store.LEADING))
    path = tmp_path / "tiny"
    told: list[object] = []
    live = rec.ResultRecorder(load_config(tiny_study), path, rec.Progress(4), told.append)
    data = pickle.dumps(live)
    assert len(data) < 500  # the study's folder, not the recorder's state
    with pytest.raises(StudyError, match="hypertune resume"):
        pickle.loads(data)  # no live recorder of that study in this process
    with rec.live_recorder(live):
        assert pickle.loads(data) is live
    assert not rec._LIVE

    # The same study moved to another storage folder is still itself.
    config = load_config(tiny_study)
    moved = rec.ResultRecorder(
        config, tmp_path / "elsewhere" / "tiny", rec.Progress(4), told.append
    )
    with rec.live_recorder(moved):
        assert pickle.loads(data) is moved

    # Tune's start shows the first progress line, before any trial's process is up.
    told.clear()
    moved.setup(stop=None, num_samples=4)
    assert told == [moved.state] and moved.state.running == 0


def test_the_tensorboard_logger_pickles_without_its_open_files(tmp_path: Path) -> None:
    import pickle
    from types import SimpleNamespace

    from hypertune.search.tblog import SUBFOLDER, MetricsTensorBoard

    logger = MetricsTensorBoard()
    trial = SimpleNamespace(trial_id="t1", local_path=str(tmp_path / "t1"))
    logger.log_trial_result(1, trial, {"valid_loss": 0.5, "pid": 7, "training_iteration": 1})
    assert list(logger.writers) == [("t1", SUBFOLDER)]
    assert not pickle.loads(pickle.dumps(logger)).writers
    logger.log_trial_end(trial)
    assert not logger.writers
    assert list((tmp_path / "t1" / SUBFOLDER).glob("events.out.tfevents.*"))
