"""The range syntax of the README ("Range strings"), spec by spec."""

from __future__ import annotations

import pytest

from hypertune.errors import SpaceError
from hypertune.search.domains import to_domain
from hypertune.space import (
    decode_config,
    from_toml,
    parse_assignment,
    parse_param,
    sample_configs,
)

CASES = [
    ("n=2,5,6", [2, 5, 6]),
    ("lr=0.1", [0.1]),
    ("act=relu,gelu", ["relu", "gelu"]),
    ("n=:3", [0, 1, 2, 3]),
    ("n=1:4", [1, 2, 3, 4]),
    ("x=0:0.3:1", [0.0, 0.3, 0.6, 0.9]),
    ("x=0.01:0.01:0.1", [0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.09, 0.1]),
    ("n=1:2:3", [1, 3]),
    ("n=10:-1:0", [10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0]),
    ("lr=1e-5:l5:0.1", [1e-5, 1e-4, 1e-3, 1e-2, 0.1]),
    ("h=16:l4:128", [16, 32, 64, 128]),
    ("h=8:4l:64", [8, 16, 32, 64]),
    ("x=0:u3:1", [0.0, 0.5, 1.0]),
    ("x=0:5:1", [0.0, 0.25, 0.5, 0.75, 1.0]),
    ("units=16:16:64", [16, 32, 48, 64]),
    ("x=1.0:3", [1.0, 2.0, 3.0]),
    # The examples: 16 is not more than 512 - 16 points, so it is a step.
    ("units=16:16:512", list(range(16, 513, 16))),
    ("no_layers=2,5,6", [2, 5, 6]),
    ("x=0:2.5:10", [0.0, 2.5, 5.0, 7.5, 10.0]),
    ("x=1:0.5:2.2", [1.0, 1.5, 2.0]),
    ("n=5:-2:0", [5, 3, 1]),
]


@pytest.mark.parametrize(("spec", "expected"), CASES)
def test_parse_param_values(spec: str, expected: list[object]) -> None:
    name, values = parse_param(spec)
    assert name == spec.split("=")[0]
    if all(isinstance(v, str) for v in expected):
        assert values == expected
    else:
        assert values == pytest.approx(expected, rel=1e-9)
    assert [type(v) for v in values] == [type(v) for v in expected]


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("n=1:l:3", "neither a step"),
        ("n=2,5,6,", "empty item"),
        ("x=", "empty spec"),
        ("x=0:0:1", "step is zero"),
        ("x=0:-1:5", "cannot count up"),
        ("x=5:1", "cannot count down"),
        ("lr=0:l5:1", "log range needs both ends > 0"),
        ("lr=-1:l3:1", "log range"),
        ("nothing", "expected NAME=SPEC"),
        ("1x=3", "not a parameter name"),
        ("x=1:2:3:4", "a range is"),
        ("x=a:3", "not a number"),
    ],
)
def test_malformed_specs_name_the_problem(spec: str, fragment: str) -> None:
    with pytest.raises(SpaceError, match=fragment) as info:
        parse_param(spec)
    assert "\n" not in str(info.value)


def test_toml_forms() -> None:
    assert from_toml("n", [1, 2, 3]).values == (1, 2, 3)
    table = from_toml("lr", {"low": 1e-4, "high": 1e-2, "log": True, "num": 3})
    assert table.values == pytest.approx((1e-4, 1e-3, 1e-2))
    assert table.is_range and table.log
    with pytest.raises(SpaceError, match="grid search needs explicit values"):
        from_toml("lr", {"low": 1e-4, "high": 1e-2}).grid_values()
    with pytest.raises(SpaceError, match="low < high"):
        from_toml("lr", {"low": 1.0, "high": 0.5})
    with pytest.raises(SpaceError, match="unknown key"):
        from_toml("lr", {"low": 1.0, "high": 2.0, "steps": 3})


def test_decode_rounds_integers_and_snaps_lists() -> None:
    specs = {"h": from_toml("h", "16:l4:128"), "n": from_toml("n", [1, 2, 4])}
    assert decode_config({"h": 40.7, "n": 2.8, "x": 1.5}, specs) == {"h": 41, "n": 2, "x": 1.5}


def test_sampling_is_seeded_and_in_bounds() -> None:
    specs = [from_toml("lr", {"low": 1e-4, "high": 1e-1, "log": True}), from_toml("h", "8:64")]
    first = sample_configs(specs, 20, seed=3)
    assert first == sample_configs(specs, 20, seed=3)
    assert first != sample_configs(specs, 20, seed=4)
    assert all(1e-4 <= c["lr"] <= 1e-1 and 8 <= c["h"] <= 64 for c in first)
    assert all(isinstance(c["h"], int) for c in first)


@pytest.mark.parametrize(
    ("spec", "search", "kind", "bounds"),
    [
        ("lr=1e-5:l5:0.1", "random", "Float LogUniform", (1e-5, 0.1)),
        ("lr=1e-5:l5:0.1", "bayes", "Float LogUniform", (1e-5, 0.1)),
        ("units=16:16:512", "random", "Integer Uniform", (16, 513)),
        ("units=16:16:512", "hyperopt", "Integer Uniform", (16, 513)),
        ("units=16:16:512", "bayes", "Float Uniform", (16.0, 512.0)),
        ("x=10:-1:0", "random", "Integer Uniform", (0, 11)),
        ("h=8:l4:64", "random", "Integer LogUniform", (8, 65)),
        ("act=relu,gelu", "random", None, ("relu", "gelu")),
    ],
)
def test_ranges_become_domains_over_the_same_bounds(
    spec: str, search: str, kind: str | None, bounds: tuple
) -> None:
    from ray.tune.search.sample import Categorical

    parsed = parse_assignment(spec)
    domain = to_domain(parsed, search)
    if kind is None:
        assert isinstance(domain, Categorical)
        assert tuple(domain.categories) == bounds
        return
    assert (domain.lower, domain.upper) == pytest.approx(bounds)
    sampler = type(domain.get_sampler()).__name__.lstrip("_")
    assert f"{type(domain).__name__} {sampler}" == kind


def test_grid_domain_lists_every_point() -> None:
    assert to_domain(parse_assignment("n=1:2:3"), "grid") == {"grid_search": [1, 3]}
    with pytest.raises(SpaceError, match="Bayesian search cannot sample categories"):
        to_domain(parse_assignment("act=relu,gelu"), "bayes")
