"""The model factory: every architecture and block builds, trains a step, and keeps its shapes."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import torch

from hypertune.errors import ConfigError
from hypertune.models import architectures, create_model, resolve_config

IMAGE = (1, 8, 8)
SEQUENCE = (8, 8)

CASES: list[tuple[dict[str, Any], tuple[int, ...]]] = []
for _bn, _res in itertools.product((False, True), (False, True)):
    CASES.append(({"architecture": "mlp", "batchnorm": _bn, "residual": _res}, IMAGE))
for _block, _bn in itertools.product(
    ("plain", "residual", "squeeze_excite", "inception"), (False, True)
):
    CASES.append(({"architecture": "cnn", "block": _block, "batchnorm": _bn}, IMAGE))
for _cell, _norm, _bi in itertools.product(
    ("gru", "lstm"), ("none", "batchnorm", "layernorm"), (False, True)
):
    CASES.append(({"architecture": _cell, "norm": _norm, "bidirectional": _bi}, SEQUENCE))
CASES += [({"architecture": "mltrainer_gru"}, SEQUENCE), ({"architecture": "mltrainer_mlp"}, IMAGE)]


@pytest.mark.parametrize(("config", "shape"), CASES, ids=lambda c: str(c))
def test_builds_runs_forward_and_backward(config: dict[str, Any], shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    small = {} if config["architecture"] == "mltrainer_mlp" else {"hidden_size": 8}
    model = create_model({**config, **small}, shape, 5)
    model.train()
    x = torch.randn(4, *shape)
    logits = model(x)
    assert logits.shape == (4, 5)
    logits.sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)


def test_every_registered_architecture_is_covered() -> None:
    # Built-in ones: a user's `module:callable` registers too, once a test has used one.
    assert {c["architecture"] for c, _ in CASES} == {a for a in architectures() if ":" not in a}


@pytest.mark.parametrize("arch", ["mlp", "cnn", "gru", "lstm"])
def test_parameter_count_grows_with_hidden_size(arch: str) -> None:
    shape = SEQUENCE if arch in ("gru", "lstm") else IMAGE
    counts = [
        sum(
            p.numel()
            for p in create_model({"architecture": arch, "hidden_size": h}, shape, 10).parameters()
        )
        for h in (8, 16, 32)
    ]
    assert counts[0] < counts[1] < counts[2]


def test_gru_parameter_count_matches_the_formula() -> None:
    model = create_model({"architecture": "gru", "hidden_size": 16}, SEQUENCE, 10)
    gates = 3 * (16 * 8 + 16 * 16 + 2 * 16)  # input, hidden weights and both biases per gate
    assert sum(p.numel() for p in model.parameters()) == gates + 16 * 10 + 10


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_padding_does_not_change_a_sequence_output(cell: str, bidirectional: bool) -> None:
    torch.manual_seed(0)
    model = create_model(
        {"architecture": cell, "hidden_size": 6, "num_layers": 2, "bidirectional": bidirectional},
        (5, 3),
        4,
    ).eval()
    seq = torch.randn(1, 5, 3)
    padded = torch.cat([seq, torch.randn(1, 7, 3)], dim=1)  # garbage after the end
    short = model(seq, lengths=torch.tensor([5]))
    long = model(padded, lengths=torch.tensor([5]))
    as_tuple = model((padded, torch.tensor([5])))
    torch.testing.assert_close(short, long)
    torch.testing.assert_close(short, as_tuple)
    assert not torch.allclose(model(padded), short)  # without lengths the padding is read


def test_too_much_pooling_is_refused_at_construction() -> None:
    with (
        pytest.raises(ConfigError, match=r"model.num_blocks: 4 blocks .* at most 3"),
        torch.device("meta"),
    ):
        create_model({"architecture": "cnn", "num_blocks": 4}, IMAGE, 10)
    model = create_model({"architecture": "cnn", "num_blocks": 4, "pool": "none"}, IMAGE, 10)
    assert model(torch.randn(2, *IMAGE)).shape == (2, 10)


@pytest.mark.parametrize(
    ("config", "shape", "message"),
    [
        ({"architecture": "transformer"}, IMAGE, "model.architecture: 'transformer' is unknown"),
        ({"architecture": "cnn", "hiden_size": 3}, IMAGE, "model.hiden_size: unknown key"),
        (
            {"architecture": "cnn", "block": "dense"},
            IMAGE,
            "model.block: 'dense' is unknown; choose one of plain, residual",
        ),
        ({"architecture": "cnn", "pool": "sum"}, IMAGE, "model.pool: 'sum'"),
        ({"architecture": "cnn"}, SEQUENCE, "input_shape: cnn needs"),
        ({"architecture": "gru"}, IMAGE, "input_shape: gru needs"),
        ({"architecture": "lstm", "norm": "group"}, SEQUENCE, "model.norm: 'group'"),
        ({"architecture": "mlp", "dropout": 1.0}, IMAGE, "model.dropout"),
        ({"architecture": "mlp", "activation": "swish"}, IMAGE, "model.activation: 'swish'"),
        ({"architecture": "cnn", "block": "inception", "filters": 2}, IMAGE, "model.filters"),
        ({"architecture": "mlp", "batchnorm": 1}, IMAGE, "model.batchnorm: expected true or false"),
    ],
)
def test_bad_configs_name_the_key(
    config: dict[str, Any], shape: tuple[int, ...], message: str
) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        create_model(config, shape, 10)


def test_resolve_fills_every_default_and_allows_trainer_keys() -> None:
    resolved = resolve_config({"architecture": "cnn", "filters": 8.0, "lr": 0.1})
    assert resolved["filters"] == 8 and isinstance(resolved["filters"], int)
    assert set(resolved) == {"architecture", *architectures()["cnn"].defaults}


def _toml(value: Any) -> str:
    """A default as a study file writes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return f'"{value}"' if isinstance(value, str) else repr(value)


def _readme_tables() -> dict[str, list[tuple[str, str, str]]]:
    """docs/models.md: (key, type, default) rows by the names heading each table."""
    from conftest import ROOT

    section = (ROOT / "docs" / "models.md").read_text()
    tables: dict[str, list[tuple[str, str, str]]] = {}
    names: list[str] = []
    for line in section.splitlines():
        if line.startswith("Trainer keys"):
            names = ["trainer"]
        elif line.startswith("`") and " — " in line:
            names = [n.strip("` ") for n in line.split(" — ")[0].split(",")]
        elif line.startswith("| `"):
            key, kind, default = (cell.strip() for cell in line.strip("|").split("|")[:3])
            for name in names:
                tables.setdefault(name, []).append((key.strip("`"), kind, default.strip("`")))
    return tables


def test_readme_model_tables_match_the_builders_signatures() -> None:
    from hypertune.models.registry import TRAINER_KEYS, TRAINER_TYPES

    expected = {
        name: [
            (key, arch.types[key].__name__, _toml(default))
            for key, default in arch.defaults.items()
        ]
        for name, arch in architectures().items()
        if ":" not in name
    }
    expected["trainer"] = [
        (key, TRAINER_TYPES[key].__name__, _toml(value)) for key, value in TRAINER_KEYS.items()
    ]
    tables = _readme_tables()
    for name, rows in expected.items():
        table = "\n".join(f"| `{k}` | {t} | `{d}` | ... |" for k, t, d in rows)
        assert tables.get(name) == rows, f"docs/models.md's table for {name} should read:\n{table}"
    assert set(tables) == set(expected)
