"""A trial continued from a checkpoint ends with exactly the numbers of an uninterrupted run:
lone trials (GRU with dropout, MLP, CNN), fused packs (a GRU's with dropout between its
layers too), every optimizer."""

from __future__ import annotations

import io
from typing import Any

import pytest
import torch

from hypertune.train import State, TrainSettings, fit
from hypertune.train.fused import fit_pack
from test_fused import digits, members

EPOCHS = 4


def untimed(epochs: list[Any]) -> list[Any]:
    """Reports without their seconds (the only number a resumed run may differ in)."""
    if epochs and isinstance(epochs[0], list):  # a pack's epochs: one report per member
        return [untimed(epoch) for epoch in epochs]
    return [{k: v for k, v in (m or {}).items() if k != "train_seconds"} for m in epochs]


def saved_states(run: Any) -> dict[int, State]:
    """Run `run(save)` and keep every offered state, serialised as a checkpoint would be."""
    states: dict[int, State] = {}

    def save(snapshot: Any) -> None:
        buffer = io.BytesIO()
        torch.save(snapshot(), buffer)
        buffer.seek(0)
        state = torch.load(buffer, weights_only=False)
        states[state["epoch"]] = state

    run(save)
    return states


LONE = [
    pytest.param(
        {"architecture": "gru", "hidden_size": 8, "num_layers": 2, "dropout": 0.3}, "seq",
        id="gru-dropout",
    ),
    pytest.param({"architecture": "mlp", "hidden_size": 16, "dropout": 0.2}, "img", id="mlp"),
    pytest.param(
        {"architecture": "cnn", "filters": 4, "num_blocks": 1, "batchnorm": True,
         "optimizer": "sgd"}, "img", id="cnn-sgd-batchnorm",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("config", "kind"), LONE)
@pytest.mark.parametrize("fused", [False, True])
def test_a_lone_trial_continues_bit_for_bit(config: dict[str, Any], kind: str, fused: bool) -> None:
    from hypertune.data import load_dataset

    data = load_dataset("digits-seq") if kind == "seq" else digits()
    settings = TrainSettings(epochs=EPOCHS, fused=fused)
    config = {**config, "lr": 0.01, "batch_size": 128}
    whole: list[dict[str, float]] = []
    states = saved_states(lambda save: fit(config, data, settings, 3, whole.append, save=save))
    assert sorted(states) == [1, 2, 3]  # after every epoch but the last
    for epoch in (1, 3):
        rest: list[dict[str, float]] = []
        fit(config, data, settings, 3, rest.append, resume=states[epoch])
        assert len(rest) == EPOCHS - epoch
        assert rest[0]["train_seconds"] >= states[epoch]["seconds"]  # the clock goes on
        assert untimed(rest) == untimed(whole[epoch:])


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd"])
def test_a_fused_pack_continues_bit_for_bit(optimizer: str) -> None:
    data = digits()
    base = {"architecture": "mlp", "hidden_size": 16, "batchnorm": True, "optimizer": optimizer}
    configs, seeds = members({**base, "batch_size": 64})
    configs[3]["lr"] = 1e30  # diverges: ends early while the others train on
    settings = TrainSettings(epochs=EPOCHS)
    whole: list[list[dict[str, float] | None]] = []
    states = saved_states(
        lambda save: fit_pack(configs, data, settings, seeds, whole.append, save=save)
    )
    assert 2 in states
    rest: list[list[dict[str, float] | None]] = []
    last = fit_pack(configs, data, settings, seeds, rest.append, resume=states[2])
    assert untimed(rest) == untimed(whole[2:])
    assert not rest[-1][3]  # the diverged member stays ended
    assert last[0] == untimed([whole[-1][0]])[0]


def test_a_recurrent_pack_with_dropout_between_layers_continues_bit_for_bit() -> None:
    from hypertune.data import load_dataset

    data = load_dataset("digits-seq")
    base = {"architecture": "gru", "dropout": 0.3, "lr": 0.01, "batch_size": 128}
    shapes = [{"num_layers": 3, "hidden_size": 8}, {"num_layers": 2, "hidden_size": 12}]
    configs, seeds = [{**base, **shape} for shape in shapes], [3, 4]
    settings = TrainSettings(epochs=EPOCHS)
    whole: list[list[dict[str, float] | None]] = []
    states = saved_states(
        lambda save: fit_pack(configs, data, settings, seeds, whole.append, save=save)
    )
    rest: list[list[dict[str, float] | None]] = []
    fit_pack(configs, data, settings, seeds, rest.append, resume=states[2])
    assert untimed(rest) == untimed(whole[2:])


def test_a_members_seconds_are_its_share_of_its_packs_time() -> None:
    data = digits()
    configs, seeds = members({"architecture": "mlp", "hidden_size": 16, "batch_size": 64})
    configs[3]["lr"] = 1e30  # diverges after its first epoch
    whole: list[list[dict[str, float] | None]] = []
    states = saved_states(
        lambda save: fit_pack(
            configs, data, TrainSettings(epochs=EPOCHS), seeds, whole.append, save=save
        )
    )
    last = states[EPOCHS - 1]
    # The shares add up to the pack's time; a member that ended stops taking any.
    assert sum(last["shares"]) == pytest.approx(last["seconds"])
    assert whole[0][3] is not None and whole[1][3] is None
    ended = whole[0][3]["train_seconds"]
    assert last["shares"][3] == pytest.approx(ended)
    training = [whole[EPOCHS - 2][k]["train_seconds"] for k in range(3)]  # type: ignore[index]
    assert all(ended < share < last["seconds"] for share in training)
