"""The trade-off view: the metric against each trial's cost, and its Pareto front."""

from __future__ import annotations

import numpy as np
import pandas as pd

from hypertune.report.tradeoff import pareto_front, tradeoffs


def test_the_front_holds_the_trials_no_cheaper_or_equal_trial_beats() -> None:
    costs = np.array([1.0, 2.0, 2.0, 3.0, 4.0, 4.0])
    accuracy = np.array([0.5, 0.7, 0.6, 0.65, 0.9, 0.9])
    # 0.6 at cost 2 loses to 0.7 at the same cost; 0.65 at 3 to 0.7 at 2; of the two 0.9s at
    # cost 4 neither beats the other.
    assert pareto_front(costs, accuracy, "max").tolist() == [True, True, False, False, True, True]
    loss = -accuracy
    assert pareto_front(costs, loss, "min").tolist() == [True, True, False, False, True, True]
    # Lower is better: a cheaper trial with as low a loss hides a dearer one.
    assert pareto_front(np.array([1.0, 2.0]), np.array([0.3, 0.3]), "min").tolist() == [True, False]


def test_each_cost_of_the_finished_trials_is_one_view_with_its_parameters() -> None:
    results = pd.DataFrame(
        {
            "trial_id": ["a", "b", "c", "d"],
            "status": ["TERMINATED", "TERMINATED", "TERMINATED", "ERROR"],
            "hidden_size": [8, 16, 32, 64],
            "accuracy": [0.8, 0.9, 0.85, 0.99],
            "parameters": [100.0, 200.0, 400.0, 800.0],
            "seconds": [3.0, 1.0, 2.0, 0.5],
        }
    )
    views = tradeoffs(results, "accuracy", "max", ("hidden_size",))
    assert [v.cost for v in views] == ["parameters", "seconds"]
    by_size, by_time = views
    assert by_size.points["trial_id"].tolist() == ["a", "b", "c"]  # the ERROR trial left out
    assert by_size.front["trial_id"].tolist() == ["a", "b"]
    assert by_size.front["hidden_size"].tolist() == [8, 16]
    assert by_time.front["trial_id"].tolist() == ["b"]  # fastest and best
    # No cost columns (a study from before they existed), or the metric is the cost: no view.
    assert tradeoffs(results.drop(columns=["parameters", "seconds"]), "accuracy", "max") == []
    assert [v.cost for v in tradeoffs(results, "parameters", "min")] == ["seconds"]
