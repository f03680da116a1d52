"""Fused packs: a member trains exactly as the same trial alone, whatever else is in its pack."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from typing import Any

import pytest
import torch

from hypertune.config import from_dict
from hypertune.data import DataBundle, load_dataset
from hypertune.fused import fit_pack, pack_key
from hypertune.search import packs
from hypertune.search.order import trial_points
from hypertune.train import TrainSettings, fit, fit_member


@pytest.fixture
def float64() -> Iterator[None]:
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


def digits(dtype: torch.dtype = torch.float32, rows: int = 400) -> DataBundle:
    """A slice of digits (1x8x8 images), so that float64 runs stay short."""
    bundle = load_dataset("digits")
    return dataclasses.replace(
        bundle,
        x_train=bundle.x_train[:rows].to(dtype),
        y_train=bundle.y_train[:rows],
        x_valid=bundle.x_valid[:200].to(dtype),
        y_valid=bundle.y_valid[:200],
    )


def members(base: dict[str, Any]) -> tuple[list[dict[str, Any]], list[int]]:
    """Four members of one pack: different seeds, learning rates, weight decays, dropouts."""
    varied = [
        {"lr": 1e-3, "weight_decay": 0.0, "dropout": 0.2},
        {"lr": 1e-2, "weight_decay": 1e-3, "dropout": 0.3},
        {"lr": 3e-3, "weight_decay": 0.0, "dropout": 0.0},  # no dropout: the same shape
        {"lr": 5e-2, "weight_decay": 1e-4, "dropout": 0.5},
    ]
    return [{**base, **v} for v in varied], [0, 1, 2, 0]


MLP = {"architecture": "mlp", "hidden_size": 24, "num_layers": 2, "batch_size": 64}
FAMILIES = [
    pytest.param({**MLP, "optimizer": "adam"}, id="mlp-adam"),
    pytest.param({**MLP, "optimizer": "adamw", "batchnorm": True}, id="mlp-adamw-batchnorm"),
    pytest.param({**MLP, "optimizer": "sgd", "momentum": 0.9, "residual": True}, id="mlp-sgd"),
    pytest.param(
        {
            "architecture": "cnn",
            "num_blocks": 1,
            "filters": 4,
            "block": "residual",
            "batchnorm": True,
            "hidden_size": 16,
            "batch_size": 64,
        },
        id="cnn-residual",
    ),
    pytest.param(
        {
            "architecture": "cnn",
            "num_blocks": 1,
            "filters": 4,
            "block": "inception",
            "hidden_size": 16,
            "batch_size": 64,
            "optimizer": "sgd",
        },
        id="cnn-inception-sgd",
    ),
]


def close(a: dict[str, float], b: dict[str, float], rel: float, accuracy: float = 0.0) -> bool:
    """Equal keys; losses within `rel`, accuracies within `accuracy` (or `rel`)."""
    return set(a) == set(b) and all(
        a[k] == pytest.approx(b[k], rel=rel, abs=max(rel, accuracy if "accuracy" in k else 0))
        for k in a
    )


@pytest.mark.parametrize("base", FAMILIES)
def test_a_member_trains_as_it_would_alone_in_float64(base: dict[str, Any], float64: None) -> None:
    data = digits(torch.float64)
    configs, seeds = members(base)
    settings = TrainSettings(epochs=2)
    reports: list[list[dict[str, float] | None]] = []
    packed = fit_pack(configs, data, settings, seeds, report=reports.append)
    # Alone: one nn.Module stepped by torch.optim, its dropout masks from its own generator.
    alone = [fit(c, data, settings, seed=s) for c, s in zip(configs, seeds, strict=True)]
    for mine, own in zip(packed, alone, strict=True):
        # Equal but for the order of float64 sums (batched matrix products, batchnorm).
        assert close(mine, own, 1e-9), (mine, own)
    # Members differ: each trained its own configuration.
    assert len({round(m["train_loss"], 9) for m in packed}) == len(packed)
    assert len(reports) == 2 and all(m is not None for epoch in reports for m in epoch)


def test_an_mlp_member_trains_bit_for_bit_as_a_pack_of_one_in_float32() -> None:
    # How `rerun` trains a member of a fused study alone: bit for bit the same numbers.
    data = digits()
    configs, seeds = members(dict(MLP))
    settings = TrainSettings(epochs=2)
    packed = fit_pack(configs, data, settings, seeds)
    for config, seed, mine in zip(configs, seeds, packed, strict=True):
        assert mine == fit_member(config, data, settings, seed=seed)


def test_in_float32_members_agree_with_themselves_alone_within_tolerance() -> None:
    data = digits()
    for base in (MLP, FAMILIES[3].values[0]):
        configs, seeds = members(dict(base))  # type: ignore[arg-type]
        settings = TrainSettings(epochs=2)
        packed = fit_pack(configs, data, settings, seeds)
        for config, seed, mine in zip(configs, seeds, packed, strict=True):
            # float32 sums in another order: near-equal losses; near-ties of the argmax may
            # flip a validation example or two in early epochs.
            own = fit(config, data, settings, seed=seed)
            assert close(mine, own, 1e-3, accuracy=2 / len(data.y_valid)), (mine, own)


def test_a_member_that_diverges_is_reported_once_and_the_rest_train_on() -> None:
    data = digits()
    base = {**MLP, "optimizer": "sgd", "momentum": 0.0}
    configs = [{**base, "lr": 0.05}, {**base, "lr": 1e12}, {**base, "lr": 0.01}]
    settings = TrainSettings(epochs=3)
    reports: list[list[dict[str, float] | None]] = []
    packed = fit_pack(configs, data, settings, [0, 1, 2], report=reports.append)
    diverged = [epoch[1] for epoch in reports]
    first_nan = next(i for i, m in enumerate(diverged) if m is not None and _nan(m))
    assert all(m is None for m in diverged[first_nan + 1 :])  # reported no more
    assert _nan(packed[1])
    for k in (0, 2):
        assert all(epoch[k] is not None for epoch in reports)
        # Unaffected, bit for bit.
        assert packed[k] == fit_member(configs[k], data, settings, seed=k)


def _nan(metrics: dict[str, float]) -> bool:
    return not all(math.isfinite(metrics[k]) for k in ("train_loss", "valid_loss"))


def test_what_may_differ_within_a_pack_and_what_may_not() -> None:
    data = digits()
    key = pack_key(MLP, data)
    assert key is not None
    for same in ({"lr": 0.5}, {"weight_decay": 0.1}, {"momentum": 0.5}, {"dropout": 0.2}):
        assert pack_key({**MLP, **same}, data) == key
    cnn = {"architecture": "cnn", "filters": 4}
    assert pack_key({**cnn, "dropout": 0.0}, data) == pack_key({**cnn, "dropout": 0.3}, data)
    for other in ({"hidden_size": 32}, {"batch_size": 32}, {"optimizer": "sgd"}):
        assert pack_key({**MLP, **other}, data) != key
    with pytest.raises(ValueError, match="one pack"):
        fit_pack([MLP, {**MLP, "hidden_size": 32}], data, TrainSettings(epochs=1), [0, 0])
    sequences = load_dataset("digits-seq")
    assert pack_key({"architecture": "gru"}, sequences) is None
    lengths = torch.full((len(sequences.y_train),), 8)
    with_lengths = dataclasses.replace(sequences, lengths_train=lengths)
    assert pack_key(MLP, with_lengths) is None  # sequences of varying length do not fuse


def study(**extra: Any) -> Any:
    space = {"lr": [0.001, 0.01, 0.1, 0.3], "hidden_size": [8, 16]}
    raw = {
        "study": {"name": "p", "data": "digits", "epochs": 1, "search": "grid", "seeds": 2},
        "model": {"architecture": "mlp"},
        "space": space,
    }
    for table, values in extra.items():
        raw[table] = {**raw.get(table, {}), **values}
    return from_dict(raw)


def test_a_plan_shares_each_group_out_over_the_slots() -> None:
    config = study()
    data = digits()
    points = trial_points(config)
    plan = packs.plan(points, config, data, slots=2)
    # Two shapes (hidden 8 and 16), 4 learning rates x 2 seeds each: two packs per shape.
    assert sorted(len(p) for p in plan) == [4, 4, 4, 4]
    assert sorted(str(m) for p in plan for m in p) == sorted(str(p) for p in points)
    for pack in plan:
        assert len({m["hidden_size"] for m in pack}) == 1
    assert packs.summary(plan, 2) == {"slots": 2, "count": 4, "largest": 4}
    assert [len(p) for p in packs.plan(points, config, data, slots=1)] == [8, 8]
    alone = packs.plan(points, study(study={"fuse": False}), data, slots=2)
    assert [len(p) for p in alone] == [1] * 16


def test_trials_with_and_without_dropout_share_their_packs() -> None:
    space = {"dropout": [0, 0.2, 0.5], "lr": [0.001, 0.01, 0.1, 0.3], "num_layers": [1, 2, 3]}
    config = from_dict({**study().to_dict(), "space": space})
    config = dataclasses.replace(config, seeds=1)
    plan = packs.plan(trial_points(config), config, digits(), slots=2)
    # One shape per depth, each shared out over the two slots: 36 trials in 6 packs of 6.
    assert sorted(len(p) for p in plan) == [6] * 6
    assert all(len({m["dropout"] for m in p}) > 1 for p in plan)


def test_a_pack_never_exceeds_the_cpu_limits() -> None:
    config = study()
    assert packs.pack_size(100, 1_000, config, slots=1) == packs.CPU_PACK
    assert packs.pack_size(100, packs.CPU_PACK_PARAMETERS // 3, config, slots=1) == 3
    assert packs.pack_size(5, 10**9, config, slots=1) == 1
    assert packs.pack_size(7, 1_000, config, slots=2) == 4


def test_a_study_says_how_its_trials_train() -> None:
    config, data = study(), digits()
    points = trial_points(config)
    plan = packs.plan(points, config, data, slots=2)
    assert packs.describe(plan, points, config, data) == "16 trials in 4 fused packs"
    off = study(study={"fuse": False})
    assert packs.describe([], points, off, data) == (
        "16 trials trained one by one: fusing is off (fuse = false or --no-fuse)"
    )
    gru = from_dict({**config.to_dict(), "model": {"architecture": "gru"}, "data": {}})
    sequences = load_dataset("digits-seq")
    assert packs.describe([], points, gru, sequences).endswith(
        "gru models do not fuse (mlp and cnn do)"
    )


# The trials where fused float32 and alone float32 parted most in a 16-trial study (MLP 2x64
# with batchnorm on digits, lr 1e-3:l4:1e-1 x dropout x 2 seeds, 15 epochs): lr, dropout, seed.
DIVERGING = [(0.02154, 0.1, 0), (0.1, 0.1, 1), (0.1, 0.2, 1)]


def test_the_trials_where_float32_modes_part_agree_in_float64(float64: None) -> None:
    """The same arithmetic fused and alone: in float64 the members end where the trials alone
    do (to 1e-9), so the float32 differences are rounding that unstable training amplifies."""
    bundle = load_dataset("digits")
    data = dataclasses.replace(
        bundle, x_train=bundle.x_train.double(), x_valid=bundle.x_valid.double()
    )
    base = {"architecture": "mlp", "hidden_size": 64, "num_layers": 2, "batch_size": 64,
            "batchnorm": True, "optimizer": "adam"}  # fmt: skip
    configs = [{**base, "lr": lr, "dropout": dropout} for lr, dropout, _ in DIVERGING]
    seeds = [seed for *_, seed in DIVERGING]
    settings = TrainSettings(epochs=15)
    packed = fit_pack(configs, data, settings, seeds)
    alone = [fit(c, data, settings, seed=s) for c, s in zip(configs, seeds, strict=True)]
    for mine, own in zip(packed, alone, strict=True):
        assert close(mine, own, 1e-9), (mine, own)
