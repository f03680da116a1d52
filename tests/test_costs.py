"""The cost columns: model size, epochs to converge and seconds per epoch, from a trial's epochs."""

from __future__ import annotations

import math

from hypertune.metrics import COST_COLUMNS, RESULT_COLUMNS, column_direction
from hypertune.report import searched_params
from hypertune.train import SECONDS
from hypertune.train.costs import Costs, convergence, count_weights


def test_convergence_counts_epochs_to_the_best_and_to_within_five_percent() -> None:
    # A loss that falls to 1.0 at epoch 4 and wobbles: within 5% (<= 1.05) from epoch 3.
    losses = [2.0, 1.5, 1.04, 1.0, 1.2, 1.01]
    assert convergence(losses, "min") == {"epochs_to_best": 4.0, "epochs_to_within_5pct": 3.0}
    # An accuracy: the best 0.9 first at epoch 5; 0.86 is within 5% of it (>= 0.855).
    accuracies = [0.2, 0.5, 0.86, 0.8, 0.9, 0.9]
    assert convergence(accuracies, "max") == {"epochs_to_best": 5.0, "epochs_to_within_5pct": 3.0}
    # A diverged epoch does not count; nothing finite at all: unknown.
    assert convergence([1.0, math.nan, 0.5], "min")["epochs_to_best"] == 3.0
    assert all(math.isnan(v) for v in convergence([math.nan], "min").values())


def test_costs_follow_the_objective_epoch_by_epoch_and_continue_from_a_checkpoint() -> None:
    costs = Costs(1242.0, "valid_loss", "min")
    costs.add({"valid_loss": 2.0, SECONDS: 1.0})
    row = costs.add({"valid_loss": 1.0, SECONDS: 3.0})
    assert row == {
        "parameters": 1242.0,
        "epochs_to_best": 2.0,
        "epochs_to_within_5pct": 2.0,
        "seconds_per_epoch": 1.5,
    }
    resumed = Costs(1242.0, "valid_loss", "min", history=[2.0])  # as a checkpoint keeps it
    assert resumed.add({"valid_loss": 1.0, SECONDS: 3.0}) == row
    assert set(row) == set(COST_COLUMNS)


def test_the_weights_of_a_model_are_counted_without_building_it() -> None:
    # 64 inputs -> 16 (weights, biases, batchnorm's scale and shift) -> 10 classes.
    config = {"architecture": "mlp", "hidden_size": 16, "num_layers": 1, "batchnorm": True}
    assert count_weights(config, (64,), 10) == 64 * 16 + 16 + 2 * 16 + 16 * 10 + 10
    gru = {"architecture": "gru", "hidden_size": 8, "num_layers": 1}
    assert count_weights(gru, (8, 8), 10) == 3 * (8 * 8 + 8 * 8 + 2 * 8) + 8 * 10 + 10


def test_cost_columns_are_results_better_low_and_never_taken_for_parameters() -> None:
    import pandas as pd

    assert all(column_direction(c) == "min" for c in COST_COLUMNS)
    assert column_direction("accuracy_best") == "max"
    assert set(COST_COLUMNS) <= RESULT_COLUMNS
    table = pd.DataFrame(
        {"trial_id": ["a"], "status": ["TERMINATED"], "lr": [0.1], "accuracy": [0.5]}
        | {c: [1.0] for c in COST_COLUMNS}
        | {"epochs": [2], "seed": [0], "seconds": [1.0]}
    )
    assert searched_params(table) == ["lr"]
