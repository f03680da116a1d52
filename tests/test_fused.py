"""Fused packs: a member trains exactly as the same trial alone, whatever else is in its pack."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from typing import Any

import pytest
import torch

from conftest import ROOT
from hypertune.config import from_dict, load_config
from hypertune.data import DataBundle, load_dataset
from hypertune.errors import ConfigError
from hypertune.models import TrainerKeys, create_model, resolve_config
from hypertune.search import packs
from hypertune.search.order import trial_points
from hypertune.space import SEED_KEY
from hypertune.train import TrainSettings, fit, fit_member, fit_module
from hypertune.train.fused import fit_pack, pack_key, padding
from hypertune.train.fused.pack import Pack
from hypertune.train.optim import OPTIMIZERS, StackedOptimizer, make_optimizer
from hypertune.train.settings import trainer_keys


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
    for shape in ({"hidden_size": 32}, {"num_layers": 3}):  # padded (hypertune.train.fused.padding)
        assert pack_key({**MLP, **shape}, data) == key
    for other in ({"batch_size": 32}, {"optimizer": "sgd"}, {"num_layers": 0}):
        assert pack_key({**MLP, **other}, data) != key
    assert pack_key({**cnn, "filters": 8}, data) != pack_key(cnn, data)  # CNNs: one shape
    with pytest.raises(ValueError, match="one pack"):
        fit_pack([MLP, {**MLP, "batch_size": 32}], data, TrainSettings(epochs=1), [0, 0])
    sequences = load_dataset("digits-seq")
    gru = {"architecture": "gru", "num_layers": 2}
    assert pack_key(gru, sequences) == pack_key({**gru, "hidden_size": 8}, sequences)
    # A pack draws the dropout between a GRU's layers as torch's module does alone...
    assert pack_key({**gru, "dropout": 0.2}, sequences) == pack_key(gru, sequences)
    assert pack_key({**gru, "dropout": 0.2, "num_layers": 1}, sequences) is not None
    lengths = torch.full((len(sequences.y_train),), 8)
    with_lengths = dataclasses.replace(sequences, lengths_train=lengths)
    assert pack_key(MLP, with_lengths) is None  # an MLP does not read lengths
    assert pack_key(gru, with_lengths) is not None
    # ...but not over packed sequences, whose valid steps torch's module drops in its own order.
    assert pack_key({**gru, "dropout": 0.2}, with_lengths) is None
    assert pack_key({**gru, "dropout": 0.2, "num_layers": 1}, with_lengths) is not None


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


def test_a_plan_shares_the_work_out_over_the_slots() -> None:
    config = study()
    data = digits()
    points = trial_points(config)
    plan = packs.plan(points, config, data, slots=2)
    assert sorted(str(m) for p in plan for m in p) == sorted(str(p) for p in points)
    # One width per pack: 16 units cost 2.2 x 8 units, beyond the CPU bound. The 8 trials of
    # 16 units are more than one slot's share of the work: split in two, listed first.
    assert [(len(p), {m["hidden_size"] for m in p}) for p in plan] == [
        (4, {16}),
        (4, {16}),
        (8, {8}),
    ]
    summary = packs.summary(plan, 2)
    assert {k: summary[k] for k in ("slots", "count", "largest")} == {
        "slots": 2,
        "count": 3,
        "largest": 8,
    }
    # The digest names which points each pack holds: another split reads otherwise.
    assert summary["digest"] == packs.summary([list(p) for p in plan], 2)["digest"]
    assert summary["digest"] != packs.summary([plan[1], plan[0], plan[2]], 2)["digest"]
    assert [len(p) for p in packs.plan(points, config, data, slots=1)] == [8, 8]
    alone = packs.plan(points, study(study={"fuse": False}), data, slots=2)
    assert [len(p) for p in alone] == [1] * 16


def test_trials_of_one_shape_split_once_over_two_slots() -> None:
    # benchmarks/same_shape.toml: 4 learning rates x 4 seeds of one MLP. A split pack pays its
    # steps' fixed cost twice, which the share of the work must not count: two packs of 8.
    config = load_config(ROOT / "benchmarks" / "same_shape.toml")
    plan = packs.plan(trial_points(config), config, digits(), slots=2)
    assert [len(p) for p in plan] == [8, 8]


def test_a_small_study_still_fuses_when_its_work_is_shared_out() -> None:
    config = study(space={"lr": [0.001, 0.01, 0.1], "hidden_size": [16]}, study={"seeds": 1})
    plan = packs.plan(trial_points(config), config, digits(), slots=2)
    # One pack is more than one slot's share of three trials' work, but splitting it would
    # leave a trial alone.
    assert [len(p) for p in plan] == [3]


def test_a_trial_that_cannot_be_built_does_not_stop_the_plan() -> None:
    config = study(space={"lr": [0.001, 0.01], "hidden_size": [8, 0]}, study={"seeds": 1})
    plan = packs.plan(trial_points(config), config, digits(), slots=2)
    # hidden_size 0 fails where it trains (ERROR rows), not the whole plan, and apart.
    assert sorted(sorted(m["hidden_size"] for m in p) for p in plan) == [[0, 0], [8, 8]]


def test_packs_of_one_cluster_are_even() -> None:
    config = study(space={"lr": [0.001, 0.01], "hidden_size": [1024, 8]}, study={"seeds": 2})
    plan = packs.plan(trial_points(config), config, digits(), slots=1)
    # 1024 units: the weight budget allows 3 to a pack; 4 such trials go 2 + 2, not 3 + 1.
    assert sorted(len(p) for p in plan if p[0]["hidden_size"] == 1024) == [2, 2]


def test_a_pack_pads_each_member_at_most_by_the_bound() -> None:
    config, data = study(space={"hidden_size": [8, 9, 512]}), digits()
    wide = {"lr": 0.001, "hidden_size": 512, SEED_KEY: 0}
    narrow = [{"lr": 0.01, "hidden_size": 8, SEED_KEY: k} for k in range(6)]
    nine = {"lr": 0.01, "hidden_size": 9, SEED_KEY: 0}
    plan = packs.plan([wide, *narrow, nine], config, data, slots=1)
    # 512 units: 301k weights; 8 units: 682; 9 units: 775, 1.14 x 682 (within the CPU bound).
    assert plan == [[wide], [*narrow, nine]]
    gpu = dataclasses.replace(config, gpus_per_trial=0.5)
    assert [len(p) for p in packs.plan([wide, *narrow, nine], gpu, data, slots=1)] == [1, 7]
    for pack in plan:
        models = [
            resolve_config({"architecture": "mlp", "hidden_size": m["hidden_size"]}) for m in pack
        ]
        own = [packs._weights(m, data) for m in models]
        template = padding.template_config(models)
        computed = [packs._weights(padding.computed_config(m, template), data) for m in models]
        assert padding.work_ratio(own, computed) <= packs.CPU_PADDING_BOUND


def test_recurrent_members_of_one_width_share_a_pack_whatever_their_depth() -> None:
    raw = study().to_dict()
    raw["model"] = {"architecture": "gru"}
    raw["space"] = {"num_layers": [1, 2, 3], "hidden_size": [8, 64]}
    raw["study"] = {**raw["study"], "data": "digits-seq", "seeds": 1}
    config, data = from_dict(raw), load_dataset("digits-seq")
    cells = [
        [(m["num_layers"], m["hidden_size"]) for m in p]
        for p in packs.plan(
            trial_points(config), dataclasses.replace(config, gpus_per_trial=0.5), data, slots=2
        )
    ]
    # A layer runs only for the members that have it: depth costs nothing, width does.
    assert cells == [[(1, 8), (2, 8), (3, 8)], [(1, 64), (2, 64), (3, 64)]]
    # On a CPU a GRU of more than 32 units trains faster alone (torch's module, in C++).
    cpu = packs.plan(trial_points(config), config, data, slots=2)
    # Listed by estimated time, the longest first: the pack steps through three layers of 8
    # units, longer than the 64-unit GRU of one layer takes alone.
    assert sorted(len(p) for p in cpu) == [1, 1, 1, 3]
    assert [(m["num_layers"], m["hidden_size"]) for m in cpu[-1]] == [(1, 64)]
    assert {m["hidden_size"] for p in cpu if len(p) == 3 for m in p} == {8}
    wide = [p for p in trial_points(config) if p["hidden_size"] == 64]
    assert packs.describe([], wide, config, data).endswith(
        "on a CPU a gru of more than 32 units trains faster alone"
    )
    # Dropout between the layers: fused on a CPU, alone on a GPU (cuDNN draws those masks).
    dropped = from_dict({**raw, "model": {"architecture": "gru", "dropout": 0.2}})
    narrow = [p for p in trial_points(dropped) if p["hidden_size"] == 8]
    assert [len(p) for p in packs.plan(narrow, dropped, data, slots=1)] == [3]
    on_gpu = dataclasses.replace(dropped, gpus_per_trial=0.5)
    assert [len(p) for p in packs.plan(narrow, on_gpu, data, slots=1)] == [1, 1, 1]
    deep = [p for p in narrow if p["num_layers"] > 1]
    assert packs.describe([], deep, on_gpu, data).endswith(
        "on a GPU a gru with dropout between its layers trains alone"
    )


def test_trials_with_and_without_dropout_share_their_packs() -> None:
    space = {"dropout": [0, 0.2, 0.5], "lr": [0.001, 0.01, 0.1, 0.3], "num_layers": [1, 2, 3]}
    config = from_dict({**study().to_dict(), "space": space})
    config = dataclasses.replace(config, seeds=1)
    plan = packs.plan(trial_points(config), config, digits(), slots=2)
    # One group (depths pad), at most 16 to a CPU pack: 36 trials in 3 packs of 12.
    assert sorted(len(p) for p in plan) == [12, 12, 12]
    assert all(len({m["dropout"] for m in p}) > 1 for p in plan)


def test_a_pack_never_exceeds_the_cpu_limits() -> None:
    config = study()
    assert packs.pack_size(100, 1_000, config) == packs.CPU_PACK
    assert packs.pack_size(100, packs.CPU_PACK_PARAMETERS // 3, config) == 3
    assert packs.pack_size(5, 10**9, config) == 1
    assert packs.pack_size(7, 1_000, config) == 7  # the slots' share: _balance


def test_a_study_says_how_its_trials_train() -> None:
    config, data = study(), digits()
    points = trial_points(config)
    plan = packs.plan(points, config, data, slots=2)
    assert packs.describe(plan, points, config, data) == "16 trials in 3 fused packs"
    off = study(study={"fuse": False})
    assert packs.describe([], points, off, data) == (
        "16 trials trained one by one: fusing is off (fuse = false or --no-fuse)"
    )
    user = from_dict({**config.to_dict(), "model": {"architecture": "mltrainer_mlp"}})
    assert packs.describe([], points, user, data).endswith(
        "mltrainer_mlp models do not fuse (mlp, cnn, gru and lstm do)"
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


def sequences(dtype: torch.dtype, varying: bool) -> DataBundle:
    """A slice of digits read as 8 steps of 8 features; `varying`: each sequence cut to a
    length of its own (2 to 8 steps, zeros after), as the gestures data are."""
    bundle = load_dataset("digits-seq")
    x_train, x_valid = bundle.x_train[:300].to(dtype), bundle.x_valid[:150].to(dtype)
    lengths: dict[str, Any] = {}
    if varying:
        generator = torch.Generator().manual_seed(0)
        for name, x in (("train", x_train), ("valid", x_valid)):
            cut = torch.randint(2, 9, (len(x),), generator=generator)
            x[torch.arange(8) >= cut.unsqueeze(1)] = 0.0
            lengths[f"lengths_{name}"] = cut
    return dataclasses.replace(
        bundle,
        x_train=x_train,
        y_train=bundle.y_train[:300],
        x_valid=x_valid,
        y_valid=bundle.y_valid[:150],
        **lengths,
    )


# Members of one pack in different widths and depths (and dropouts, learning rates).
SHAPES = [
    {"hidden_size": 16, "num_layers": 1, "dropout": 0.2},
    {"hidden_size": 32, "num_layers": 3, "lr": 1e-2},
    {"hidden_size": 24, "num_layers": 2},
]
PADDED = [
    pytest.param("digits", {"architecture": "mlp"}, id="mlp-adam"),
    pytest.param(
        "digits",
        # hidden 64 = the 64 input features: that member's first block adds its input too
        {
            "architecture": "mlp",
            "batchnorm": True,
            "residual": True,
            "optimizer": "adamw",
            "weight_decay": 1e-3,
            "widths": [64, 32, 48],
        },
        id="mlp-adamw-batchnorm-residual",
    ),
    pytest.param("seq", {"architecture": "gru"}, id="gru"),
    # Dropout between the layers of the 2- and 3-layer members (0.2 before the 1-layer head).
    pytest.param("seq", {"architecture": "gru", "dropout": 0.3}, id="gru-dropout"),
    pytest.param(
        "seq",
        {"architecture": "lstm", "bidirectional": True, "dropout": 0.25, "norm": "layernorm"},
        id="lstm-bidirectional-dropout",
    ),
    pytest.param("varying", {"architecture": "gru", "norm": "batchnorm"}, id="gru-lengths"),
    pytest.param("varying", {"architecture": "lstm", "norm": "layernorm"}, id="lstm-lengths"),
    pytest.param(
        "varying",
        {
            "architecture": "lstm",
            "bidirectional": True,
            "norm": "layernorm",
            "optimizer": "sgd",
            "momentum": 0.9,
            "lr": 0.05,
        },
        id="lstm-bidirectional-lengths",
    ),
]


@pytest.mark.parametrize(("dataset", "base"), PADDED)
def test_members_of_different_width_and_depth_train_as_they_would_alone_in_float64(
    dataset: str, base: dict[str, Any], float64: None
) -> None:
    data = (
        digits(torch.float64, 300)
        if dataset == "digits"
        else sequences(torch.float64, varying=dataset == "varying")
    )
    base = {"batch_size": 64, **base}
    widths = base.pop("widths", None)
    configs = [{**base, **shape} for shape in SHAPES]
    if widths:
        configs = [{**c, "hidden_size": w} for c, w in zip(configs, widths, strict=True)]
    assert len({pack_key(c, data) for c in configs}) == 1  # one pack
    settings = TrainSettings(epochs=2)
    kept: list[dict[str, torch.Tensor]] = []
    packed = fit_pack(configs, data, settings, [0, 1, 2], trained=kept.extend)
    # Alone: torch's own modules (nn.GRU over packed sequences), stepped by torch.optim.
    own_weights: list[dict[str, torch.Tensor]] = []
    alone = [
        fit_module(c, data, settings, seed=s, trained=own_weights.extend)
        for c, s in zip(configs, [0, 1, 2], strict=True)
    ]
    for mine, own in zip(packed, alone, strict=True):
        assert close(mine, own, 1e-9), (mine, own)
    assert len({round(m["train_loss"], 9) for m in packed}) == len(packed)
    # Each member's weights, cut out of the pack, are the ones it trained alone, by name.
    assert len(kept) == len(own_weights) == len(configs)
    for config, mine_state, own_state in zip(configs, kept, own_weights, strict=True):
        assert list(mine_state) == list(own_state)
        for name, tensor in own_state.items():
            torch.testing.assert_close(mine_state[name], tensor, rtol=1e-6, atol=1e-9)
        model = create_model(config, data.input_shape, data.num_classes)
        model.load_state_dict(mine_state)  # strict: exactly the model's own tensors


def test_a_padded_member_keeps_its_padding_at_zero() -> None:
    data = digits()
    configs = [{**MLP, "hidden_size": 8, "num_layers": 1}, {**MLP, "hidden_size": 16}]
    pack = Pack(configs, data, [0, 1], torch.device("cpu"))
    assert pack.mask is not None
    pack.train_epoch(len(data.y_train), 64)
    padded = pack.flat[~pack.mask]
    assert padded.numel() > 0 and bool((padded == 0).all())
    # The step never moves a padded weight, whatever gradient reaches it.
    for weight in pack.weights.values():
        weight.grad = torch.ones_like(weight)
    grad = pack.gradient()
    assert bool((grad[~pack.mask] == 0).all()) and bool((grad[pack.mask] == 1).all())


# Members that differ in decay and momentum, and members with none (a step that skips them).
MIXED = ((0.1, 0.0, 0.9), (0.01, 0.01, 0.5), (0.3, 0.1, 0.0))
PLAIN = ((0.1, 0.0, 0.0), (0.01, 0.0, 0.0), (0.3, 0.0, 0.0))


@pytest.mark.parametrize("members", [MIXED, PLAIN], ids=["mixed", "plain"])
@pytest.mark.parametrize("kind", OPTIMIZERS)
def test_each_optimizer_has_a_fused_step_equal_to_torchs(
    kind: str, members: tuple[tuple[float, float, float], ...]
) -> None:
    generator = torch.Generator().manual_seed(0)
    start = torch.randn(3, 5, generator=generator, dtype=torch.float64)
    keys = [
        TrainerKeys(optimizer=kind, lr=lr, weight_decay=wd, momentum=m) for lr, wd, m in members
    ]
    flat = start.clone()
    fused = StackedOptimizer(flat, keys)
    rows = [torch.nn.Parameter(start[k].clone()) for k in range(3)]
    torch_steps = [make_optimizer(torch.nn.ParameterList([rows[k]]), keys[k]) for k in range(3)]
    for _ in range(4):
        grad = torch.randn(3, 5, generator=generator, dtype=torch.float64)
        fused.step(grad)
        for k, optimizer in enumerate(torch_steps):
            rows[k].grad = grad[k].clone()
            optimizer.step()
    for k in range(3):
        torch.testing.assert_close(flat[k], rows[k].detach(), rtol=1e-12, atol=1e-12)
    assert type(torch_steps[0]).__name__.lower() == kind  # torch's optimizer of that name


def test_an_optimizer_without_a_fused_step_is_an_error() -> None:
    with pytest.raises(ValueError, match="no fused step for optimizer 'lion'"):
        StackedOptimizer(torch.zeros(1, 2), [TrainerKeys(optimizer="lion")])
    with pytest.raises(ConfigError) as refused:
        trainer_keys({"optimizer": "lion"})
    assert str(refused.value) == "model.optimizer: 'lion' is unknown; known: adam, adamw, sgd"


def test_the_models_page_names_every_registered_optimizer() -> None:
    readme = (ROOT / "docs" / "models.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith("| `optimizer` |"))
    listed = row.split("|")[4]
    assert sorted(name.strip(" `") for name in listed.split(",")) == sorted(OPTIMIZERS)
