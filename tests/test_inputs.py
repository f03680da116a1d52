"""Inputs an attacker or a slip of the keyboard gives: one readable `error:` line each, before
anything trains."""

from __future__ import annotations

import argparse
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from hypertune import cli
from hypertune.config import load_config
from hypertune.data import DataBundle
from hypertune.errors import LINE, ConfigError, SpaceError, one_line
from hypertune.preflight import preflight
from hypertune.search.code import load_study_code
from hypertune.space import from_toml
from hypertune.study.record import StudyState


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = cli.main(list(args))
    return code, capsys.readouterr().err.strip()


def test_an_error_line_cuts_what_it_echoes() -> None:
    assert one_line("model.lr: got 'a\nb'") == "model.lr: got 'a b'"
    cut = one_line(f"model.lr: got '{'a' * 10_000}'; use a number")
    assert cut.startswith("model.lr: got 'aaa") and cut.endswith(
        "(10,000 characters)'; use a number"
    )
    long = one_line("study.x: " + "word " * 5_000 + "do this")
    assert len(long) == LINE and long.startswith("study.x: word") and long.endswith("do this")
    assert one_line("/a/path/" + "p" * 200) == "/a/path/" + "p" * 200  # a path stays whole


def test_a_megabyte_value_in_a_study_file_is_one_short_line(
    capsys: pytest.CaptureFixture[str], tiny_study: Path
) -> None:
    text = tiny_study.read_text()
    tiny_study.write_text(text.replace("lr = 0.01", f"lr = '{'9x' * 500_000}'"))
    code, err = _run(capsys, "run", str(tiny_study))
    assert code == 2 and "\n" not in err and len(err) < 400, err[:500]
    assert err.startswith("error: model.lr: ") and "(1,000,000 characters)" in err


@pytest.mark.parametrize(
    ("architecture", "extra", "message"),
    [
        ("m" * 300 + ":build", (), "cannot be a file: a file name has at most 255 characters"),
        ("gru", ("--param", "a/b=1,2"), "error: 'a/b=1,2': 'a/b' is not a parameter name"),
    ],
)
def test_names_that_cannot_be_files_or_keywords_are_refused(
    capsys: pytest.CaptureFixture[str],
    tiny_study: Path,
    tmp_path: Path,
    architecture: str,
    extra: tuple[str, ...],
    message: str,
) -> None:
    text = tiny_study.read_text()
    tiny_study.write_text(text.replace('"gru"', f'"{architecture}"', 1))
    code, err = _run(capsys, "run", str(tiny_study), "--storage", str(tmp_path / "runs"), *extra)
    assert code == 2 and message in err, err
    assert "\n" not in err and not (tmp_path / "runs" / "tiny").exists()


def _own_model_study(tmp_path: Path, module: str, source: str) -> tuple[Path, DataBundle]:
    """A study file of `module:build` (written beside it) over width 4, 8; and its data."""
    (tmp_path / f"{module}.py").write_text(source)
    study = tmp_path / "s.toml"
    study.write_text(
        f'[study]\nname = "{module}"\ndata = "digits"\nepochs = 1\n'
        f'[model]\narchitecture = "{module}:build"\n[space]\nwidth = [4, 8]\n'
    )
    return study, load_study_code(load_config(study, {}))[0]


WRONG_MODEL = """
from torch import nn

def build(input_shape, num_classes, width=8, extra=3):
    return nn.Sequential(nn.Flatten(), nn.LazyLinear(width), nn.ReLU(),
                         nn.Linear(width, num_classes + extra))
"""


def test_a_model_with_the_wrong_number_of_outputs_is_refused_before_training(
    tmp_path: Path,
) -> None:
    study, data = _own_model_study(tmp_path, "wrongnet", WRONG_MODEL)
    config = load_config(study, {})
    with pytest.raises(ConfigError, match=r"returned shape \[2, 13\] for a batch of 2 examples"):
        preflight(config, data)
    right = load_config(study, {"params": ["extra=0"]})
    preflight(right, data)  # ten classes, ten scores: no error


LAZY_MODEL = """
from torch import nn

def build(input_shape, num_classes, width=8):
    layers = [nn.Flatten(), nn.LazyLinear(width), nn.ReLU(), nn.Linear(width, num_classes)]
    return nn.Sequential(*layers)
"""


def test_a_lazy_model_is_counted_once_shaped(tmp_path: Path) -> None:
    study, data = _own_model_study(tmp_path, "lazynet", LAZY_MODEL)
    config = load_config(study, {})
    preflight(config, data)  # shaped on the meta device, run for real: no error
    huge = load_config(study, {"params": ["width=4,3000000"]})
    with pytest.raises(ConfigError, match=r"225,000,010 parameters with width=3000000"):
        preflight(huge, data)


def test_the_resume_hint_names_the_storage_and_the_cluster(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        "hypertune.study.store.read_study",
        lambda storage, name: SimpleNamespace(status=StudyState.INTERRUPTED),
    )
    args = argparse.Namespace(name="s1", storage="my runs", address="10.0.0.5:6379")
    assert cli._resume_hint(args).endswith(
        "Continue with: resume s1 --storage 'my runs' --address 10.0.0.5:6379"
    )
    args = argparse.Namespace(name="s1", storage="runs", address=None)
    assert cli._resume_hint(args).endswith("Continue with: resume s1")


@pytest.mark.parametrize("name", ["a/b", "../x", "x" * 101, "1st", "with space"])
def test_a_space_entry_needs_a_parameter_name(name: str) -> None:
    with pytest.raises(SpaceError, match="not a parameter name; use up to 100 letters"):
        from_toml(name, [1, 2])
    assert from_toml("x" * 100, [1, 2]).values == (1, 2)


BROKEN_MODEL = """
from torch import nn

class Broken(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.layer = nn.LazyLinear(10)

    def forward(self, x):
        if self.training:
            raise RuntimeError("my model broke")
        return self.layer(x.flatten(1))

def build(input_shape, num_classes, width=8):
    return Broken(width)
"""


@pytest.mark.slow
def test_a_study_whose_every_trial_fails_ends_quietly_with_their_errors(tmp_path: Path) -> None:
    from conftest import run_cli

    (tmp_path / "brokennet.py").write_text(BROKEN_MODEL)
    (tmp_path / "s.toml").write_text(
        '[study]\nname = "broken"\ndata = "digits"\nepochs = 1\n'
        '[model]\narchitecture = "brokennet:build"\n[space]\nwidth = [4, 8]\n'
    )
    done = run_cli("run", "s.toml", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "NaN or Inf" not in done.stderr, done.stderr
    warning = "warning: no report drawn: no usable trials for valid_loss_best (excluded: 2 error)"
    assert warning in done.stderr.splitlines(), done.stderr
    results = pd.read_csv(tmp_path / "runs" / "broken" / "results.csv")
    assert list(results["status"]) == ["ERROR", "ERROR"]
    assert results["error"].str.contains("my model broke").all(), results["error"]


def test_a_study_reached_by_another_path_has_not_moved(tmp_path: Path) -> None:
    from hypertune.search.rest import mark_origin, moved_from

    study = tmp_path / "runs" / "s"
    (study / "ray").mkdir(parents=True)
    mark_origin(study / "ray", study)
    assert moved_from(study / "ray", study) is None
    (tmp_path / "link").symlink_to(tmp_path / "runs")
    assert moved_from(study / "ray", tmp_path / "link" / "s") is None  # the same folder
    (tmp_path / "runs").rename(tmp_path / "moved")
    assert moved_from(tmp_path / "moved" / "s" / "ray", tmp_path / "moved" / "s") == str(study)
