"""Command-line overrides: booleans, one value fixes a parameter, --drop-param, and --smoke
checking the whole space."""

from __future__ import annotations

from pathlib import Path

import pytest

from hypertune.cli import main
from hypertune.config import load_config
from hypertune.errors import ConfigError
from hypertune.space import parse_param


@pytest.mark.parametrize(
    ("spec", "values"),
    [
        ("batchnorm=false", [False]),
        ("bidirectional=true,false", [True, False]),
        ("residual=True", [True]),
        ("mixed=1,true", [1, True]),
        ("lr=1,0.5", [1.0, 0.5]),
    ],
)
def test_booleans_in_param(spec: str, values: list[object]) -> None:
    _, parsed = parse_param(spec)
    assert parsed == values
    assert [type(v) for v in parsed] == [type(v) for v in values]


def test_one_value_fixes_a_parameter(tiny_study: Path) -> None:
    config = load_config(tiny_study, {"params": ["num_layers=2", "bidirectional=true,false"]})
    assert list(config.space) == ["hidden_size", "bidirectional"]
    assert config.model["num_layers"] == 2
    assert config.space["bidirectional"].values == (True, False)
    fixed = load_config(tiny_study, {"params": ["hidden_size=3:3"]})
    assert "hidden_size" not in fixed.space and fixed.model["hidden_size"] == 3


def test_drop_param_removes_a_space_entry(tiny_study: Path) -> None:
    config = load_config(tiny_study, {"drop_params": ["hidden_size"]})
    assert list(config.space) == ["num_layers"]
    assert "hidden_size" not in config.model
    with pytest.raises(ConfigError, match="--drop-param: 'width' is not in"):
        load_config(tiny_study, {"drop_params": ["width"]})


def test_smoke_keeps_the_whole_space_for_preflight(tiny_study: Path) -> None:
    config = load_config(tiny_study, {"smoke": True, "params": ["num_layers=1:5"]})
    assert config.planned_trials() == 2
    assert config.whole_space["num_layers"].values == (1, 2, 3, 4, 5)


def test_smoke_refuses_what_the_full_run_refuses(
    ray_session: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    study = Path(__file__).parents[1] / "configs" / "cnn.toml"
    for smoke in (["--smoke"], []):
        code = main(
            ["run", str(study), "--param", "num_blocks=1:5", "--storage", str(tmp_path), *smoke]
        )
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1, err
        assert err[0].startswith("error: model.num_blocks") or "num_blocks" in err[0], err
    assert not any(tmp_path.iterdir())
