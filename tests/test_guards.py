"""Sizes, resources and inputs are checked before anything is built: one `error:` line, exit 2,
in seconds and in little memory, with no study folder left behind."""

from __future__ import annotations

import resource
import sys
from pathlib import Path

import pytest

from conftest import run_cli
from hypertune.cli import main
from hypertune.errors import SpaceError
from hypertune.space import MAX_RANGE_POINTS, parse_param


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("hidden_size=1:1e-12:2", "1,000,000,000,001 values; a range may spell out at most"),
        ("lr=1:l100000000:10", "100,000,000 values; a range may spell out at most"),
        ("x=1:1000000000:2", "1,000,000,000 values"),
        ("lr=-1e308:1e308", "more values than can be counted"),
        ("lr=inf", "'inf' is not a finite number"),
        ("lr=0.1,nan", "'nan' is not a finite number"),
    ],
)
def test_a_range_is_counted_before_its_values_are_built(spec: str, message: str) -> None:
    with pytest.raises(SpaceError, match=message):
        parse_param(spec)


def test_a_range_at_the_limit_is_built() -> None:
    _, values = parse_param(f"x=1:{MAX_RANGE_POINTS}")
    assert len(values) == MAX_RANGE_POINTS
    with pytest.raises(SpaceError):
        parse_param(f"x=1:{MAX_RANGE_POINTS + 1}")


def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    return code, capsys.readouterr().err.strip()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--param", "hidden_size=1:1e-12:2"], "error: 'hidden_size=1:1e-12:2': "),
        (["--cpus-per-trial", "64"], "error: resources.cpus_per_trial: 64 CPUs per trial, but"),
        (["--cpus-per-trial", "0"], "error: resources.cpus_per_trial: 0 with no GPUs"),
        (["--name", "x" * 300], "error: study.name: 'xxxx"),
        (["--name", "../elsewhere"], "error: study.name: '../elsewhere' is not a study name"),
        (["--samples", "2", "--seeds", "100001", "--search", "random"], "error: study: random"),
    ],
)
def test_impossible_runs_are_one_error_line_before_anything_starts(
    capsys: pytest.CaptureFixture[str],
    tiny_study: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    extra: list[str],
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    code, err = run_main(capsys, "run", str(tiny_study), *extra)
    assert code == 2
    assert err.startswith(message) and len(err.splitlines()) == 1, err
    assert not (tmp_path / "runs").exists()


def test_a_huge_grid_is_refused_by_arithmetic_in_little_memory(tmp_path: Path) -> None:
    # Eleven parameters, 181,440,000 combinations: counted, never listed.
    params = [f"{name}=1:6" for name in ("num_layers", "hidden_size")]
    params += ["lr=1e-4:l5:1e-1", "dropout=0:0.1:0.4", "batch_size=16,32,64"]
    params += ["weight_decay=0,1e-5,1e-4,1e-3", "epochs_x=1:8", "delta=1:28"]
    study = tmp_path / "big.toml"
    study.write_text(
        "[study]\nname = 'big'\nepochs = 1\n[model]\narchitecture = 'mlp'\n"
        "[space]\nmomentum = [0.0, 0.5, 0.9]\nbeta = [1, 2, 3, 4, 5]\ngamma = [1, 2, 3, 4, 5]\n"
    )
    args = ["run", str(study)]
    for param in params:
        args += ["--param", param]
    done = run_cli(*args, cwd=tmp_path, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "error: study: grid search has 181,440,000 trials; the limit is 100,000; "
        "use random search with --samples"
    )
    assert not (tmp_path / "runs").exists()
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    assert peak * (1024 if sys.platform != "darwin" else 1) < 2.5 * 2**30


def test_non_finite_values_in_a_study_file_are_refused(
    capsys: pytest.CaptureFixture[str], tiny_study: Path
) -> None:
    text = tiny_study.read_text()
    tiny_study.write_text(text.replace("lr = 0.01", "lr = inf"))
    code, err = run_main(capsys, "run", str(tiny_study))
    assert (code, err) == (2, "error: model.lr: inf is not a finite number")
    tiny_study.write_text(
        text.replace("hidden_size = [4, 8]", "hidden_size = [4, 8]\nlr = [0.1, nan]")
    )
    code, err = run_main(capsys, "run", str(tiny_study))
    assert (code, err) == (2, "error: space.lr: nan is not a finite number")


def test_a_model_too_large_to_train_is_refused_before_ray_starts(
    capsys: pytest.CaptureFixture[str],
    tiny_study: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    code, err = run_main(capsys, "run", str(tiny_study), "--param", "hidden_size=8,100000")
    assert code == 2
    assert err.startswith("error: model: ") and "hidden_size=100000" in err, err
    assert "a trial's model may have at most 100,000,000" in err


@pytest.mark.parametrize("command", ["show", "report", "resume"])
@pytest.mark.parametrize("name", ["../x", "/etc", "a/b", ".", "x" * 300])
def test_every_command_validates_study_names(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: str, name: str
) -> None:
    code, err = run_main(capsys, command, name, "--storage", str(tmp_path))
    assert code == 2
    assert err.startswith("error: study name: '") and "is not a study name" in err, err


def test_storage_and_out_that_are_files_are_refused(
    capsys: pytest.CaptureFixture[str],
    tiny_study: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("afile").write_text("")
    code, err = run_main(capsys, "run", str(tiny_study), "--storage", "afile")
    assert (code, err) == (2, "error: --storage: afile is a file, not a folder")
    code, err = run_main(capsys, "run", str(tiny_study), "--out", "afile")
    assert (code, err) == (2, "error: --out: afile is a file, not a folder")
    assert not Path("runs", "tiny").exists()
