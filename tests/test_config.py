"""Study files: loading, overrides and the errors a typo earns."""

from __future__ import annotations

from pathlib import Path

import pytest

from hypertune.config import from_dict, load_config
from hypertune.errors import ConfigError


def test_default_study_file_is_valid() -> None:
    config = load_config(Path(__file__).parents[1] / "configs" / "default.toml")
    assert config.name == "default"
    assert config.model["architecture"] == "gru"
    assert list(config.space) == ["num_layers", "hidden_size"]
    assert len(config.space["num_layers"].values) >= 3
    assert len(config.space["hidden_size"].values) >= 4
    assert str(config.metric) == "valid_loss:min"


def test_round_trip_through_dict(tiny_study: Path) -> None:
    config = load_config(tiny_study, {"params": ["lr=1e-3:l3:1e-1"], "seeds": 2})
    again = from_dict(config.to_dict())
    assert again == config
    assert again.space["lr"].values == pytest.approx((1e-3, 1e-2, 1e-1))


def test_overrides_replace_file_values(tiny_study: Path) -> None:
    config = load_config(
        tiny_study, {"epochs": 3, "search": "random", "samples": 5, "metric": "accuracy:max"}
    )
    assert (config.epochs, config.search, config.samples) == (3, "random", 5)
    assert config.metric.objective_column == "accuracy_best"
    assert config.metric.direction == "max"


def test_smoke_keeps_two_trials_of_one_epoch(tiny_study: Path) -> None:
    config = load_config(tiny_study, {"smoke": True, "seeds": 3})
    assert config.epochs == 1 and config.seeds == 1
    assert [len(s.values) for s in config.space.values()] == [2, 1]


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({"study": {"epoch": 3}}, "study.epoch: unknown key"),
        ({"studdy": {}}, r"\[studdy\]: unknown table"),
        ({"study": {"epochs": 0}}, "study.epochs: expected a whole number >= 1"),
        ({"study": {"search": "hyperband"}}, "unequal budgets"),
        ({"study": {"scheduler": "asha"}}, "refused"),
        ({"study": {"search": "annealing"}}, "study.search: 'annealing' is unknown"),
        ({"study": {"metric": "f1:max"}}, "metric: 'f1' is not reported"),
        ({"study": {"metric": "valid_loss:lowest"}}, "mode 'lowest' is unknown"),
        ({"model": {"lr": [1, 2]}}, "model.lr: expected a number"),
        ({"resources": {"cpus_per_trial": -1}}, "resources.cpus_per_trial"),
        ({"space": {"lr": "1:l:3"}}, "neither a step"),
        ({"study": {"name": "a b"}}, "study.name"),
    ],
)
def test_invalid_configs_raise_config_error(raw: dict, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        from_dict(raw)


def test_missing_file_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such study file"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[study\nname=")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)


@pytest.mark.parametrize(("search", "trials"), [("grid", 4), ("random", 16), ("bayes", 16)])
def test_a_sampled_search_without_samples_runs_a_study_s_worth(
    tiny_study: Path, search: str, trials: int
) -> None:
    config = load_config(tiny_study, {"search": search})
    assert config.planned_trials() == trials
    assert load_config(tiny_study, {"search": search, "samples": 3}).planned_trials() == (
        12 if search == "grid" else 3
    )
