"""Grid and random studies hand out their costliest trials first; only the order changes."""

from __future__ import annotations

from hypertune.config import from_dict
from hypertune.data import load_dataset
from hypertune.search import order
from hypertune.search.order import costliest_first, estimated_cost, trial_points
from hypertune.space import grid_configs


def grid(space: dict, **model: object) -> object:
    return from_dict(
        {
            "study": {"name": "o", "data": "digits-seq", "search": "grid"},
            "model": {"architecture": "gru", "batch_size": 64, **model},
            "space": space,
        }
    )


def test_larger_models_come_first_and_ties_keep_their_order() -> None:
    config = grid({"num_layers": [1, 3], "hidden_size": [8, 64], "lr": [0.1, 0.01]})
    points = [{**c, "seed": s} for c in grid_configs(list(config.space.values())) for s in (0, 1)]
    ordered = costliest_first(points, config, load_dataset("digits-seq"))
    assert sorted(map(str, ordered)) == sorted(map(str, points))  # the same trials
    shapes = [(p["num_layers"], p["hidden_size"]) for p in ordered]
    assert shapes[:4] == [(3, 64)] * 4
    assert shapes[-4:] == [(1, 8)] * 4
    # Equal cost keeps the grid's order: learning rate as listed, then seed 0 before seed 1.
    assert [(p["lr"], p["seed"]) for p in ordered[:4]] == [(0.1, 0), (0.1, 1), (0.01, 0), (0.01, 1)]


def test_a_recurrent_layer_costs_its_steps_whatever_its_width() -> None:
    # A GRU's layer runs its gates once a time step: three layers of 8 units train longer than
    # one of 64 (on this project's CPU, 0.69 s against 0.45 s for 4 epochs of digits).
    config = grid({"num_layers": [1, 3], "hidden_size": [8, 64]})
    points = [dict(c) for c in grid_configs(list(config.space.values()))]
    ordered = costliest_first(points, config, load_dataset("digits-seq"))
    shapes = [(p["num_layers"], p["hidden_size"]) for p in ordered]
    assert shapes == [(3, 64), (3, 8), (1, 64), (1, 8)]


def test_small_batches_cost_more_steps() -> None:
    config = grid({"batch_size": [256, 16]}, hidden_size=8)
    data = load_dataset("digits-seq")
    fixed = config.hyperparameters()
    cheap = estimated_cost({**fixed, "batch_size": 256}, config, data)
    assert estimated_cost({**fixed, "batch_size": 16}, config, data) > cheap
    ordered = costliest_first([{"batch_size": 256}, {"batch_size": 16}], config, data)
    assert ordered == [{"batch_size": 16}, {"batch_size": 256}]


def test_a_configuration_that_cannot_be_built_goes_last() -> None:
    config = grid({"num_layers": [0, 2]})
    data = load_dataset("digits-seq")
    assert estimated_cost({**config.hyperparameters(), "num_layers": 0}, config, data) == 0.0
    ordered = costliest_first([{"num_layers": 0}, {"num_layers": 2}], config, data)
    assert ordered == [{"num_layers": 2}, {"num_layers": 0}]


def test_a_very_large_grid_keeps_its_own_order(monkeypatch) -> None:
    monkeypatch.setattr(order, "ORDER_LIMIT", 2)
    config = grid({"hidden_size": [4, 8, 16]})
    points = [{"hidden_size": h} for h in (4, 8, 16)]
    assert costliest_first(points, config, load_dataset("digits-seq")) == points


def test_trial_points_are_every_trial_with_its_seed() -> None:
    config = from_dict(
        {
            "study": {"name": "p", "data": "digits-seq", "samples": 2, "seeds": 2},
            "space": {"num_layers": [1, 2], "hidden_size": [4, 8]},
        }
    )
    points = trial_points(config)
    assert len(points) == config.planned_trials() == 16
    assert points[:2] == [{"num_layers": 1, "hidden_size": 4, "seed": s} for s in (0, 1)]
    drawn = from_dict(
        {**config.to_dict(), "study": {**config.to_dict()["study"], "search": "random"}}
    )
    points = trial_points(drawn)
    # Seeded: the same study built anew draws the same trials.
    assert trial_points(from_dict(drawn.to_dict())) == points
    assert len(points) == 4 and sorted(p["seed"] for p in points) == [0, 0, 1, 1]
    assert all(p["num_layers"] in (1, 2) and p["hidden_size"] in (4, 8) for p in points)
