"""interaction_scores on synthetic results whose structure is known exactly."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from hypertune.errors import ReportError
from hypertune.report import interaction_scores
from hypertune.report.interaction import decompose


def grid(metric, seeds: int = 1, noise: float = 0.0) -> pd.DataFrame:
    """A full 3 x 4 x 2 grid over a, b, c with valid_loss = metric(a, b, c) (+ noise)."""
    rng = np.random.default_rng(0)
    rows = []
    levels = itertools.product([1, 2, 3], [0.125, 0.25, 0.5, 1.0], ["x", "y"], range(seeds))
    for n, (a, b, c, seed) in enumerate(levels):
        value = metric(a, b, c) + noise * rng.standard_normal()
        rows.append(
            {"trial_id": f"t{n}", "status": "TERMINATED", "a": a, "b": b, "c": c,
             "valid_loss": value, "epochs": 3, "seed": seed}
        )  # fmt: skip
    return pd.DataFrame(rows)


def row(table: pd.DataFrame, x: str, y: str) -> pd.Series:
    return table[(table["x"] == x) & (table["y"] == y)].iloc[0]


def test_additive_metric_has_no_interaction() -> None:
    results = grid(lambda a, b, c: 2.0 * a + np.log(b) + (c == "y"))
    table = interaction_scores(results, "valid_loss", ["a", "b", "c"])
    assert len(table) == 3
    assert table["interaction"].to_numpy() == pytest.approx([0, 0, 0], abs=1e-12)
    ab = row(table, "a", "b")
    # On a complete grid the shares add up to one.
    assert ab["main_x"] + ab["main_y"] == pytest.approx(1.0)
    assert ab["cells"] == 12


def test_product_pattern_ranks_first_with_a_high_share() -> None:
    # Centred product: no main effect of a or b at all, only their interaction.
    results = grid(lambda a, b, c: (a - 2) * (np.log2(b) + 1.5) + 0.1 * (c == "y"))
    table = interaction_scores(results, "valid_loss", ["a", "b", "c"])
    assert (table.iloc[0]["x"], table.iloc[0]["y"]) == ("a", "b")
    assert table.iloc[0]["interaction"] == pytest.approx(1.0)
    assert row(table, "a", "c")["interaction"] == pytest.approx(0.0, abs=1e-12)


def test_xor_is_all_interaction_and_matches_the_anova_by_hand() -> None:
    means = np.array([[0.0, 1.0], [1.0, 0.0]])
    shares = decompose(means, np.full((2, 2), np.nan), np.ones((2, 2), dtype=int))
    assert shares["interaction"] == pytest.approx(1.0)
    assert shares["main_x"] == pytest.approx(0.0)
    # Cell means 1, 2 / 3, 8: grand mean 3.5, SS_total 29.
    means = np.array([[1.0, 2.0], [3.0, 8.0]])
    shares = decompose(means, np.full((2, 2), np.nan), np.ones((2, 2), dtype=int))
    # rows: means 1.5, 5.5 -> effects -2, 2 -> SS 16; cols: 2, 5 -> -1.5, 1.5 -> SS 9; rest 4
    assert shares["main_y"] == pytest.approx(16 / 29)
    assert shares["main_x"] == pytest.approx(9 / 29)
    assert shares["interaction"] == pytest.approx(4 / 29)


def test_noise_level_is_reported_when_cells_hold_repeats() -> None:
    additive = grid(lambda a, b, c: a + b, seeds=3, noise=0.05)
    table = interaction_scores(additive, "valid_loss", ["a", "b"])
    assert table.iloc[0]["noise"] > 0
    # Pure noise around an additive surface: the interaction stays near the noise level.
    assert table.iloc[0]["interaction"] < 5 * table.iloc[0]["noise"]
    one_per_cell = grid(lambda a, b, c: a + b).query("c == 'x'")
    single = interaction_scores(one_per_cell, "valid_loss", ["a", "b"])
    assert np.isnan(single.iloc[0]["noise"])


def test_params_default_to_the_non_metric_columns() -> None:
    table = interaction_scores(grid(lambda a, b, c: a * b), "valid_loss")
    assert sorted(zip(table["x"], table["y"], strict=True)) == [("a", "b"), ("a", "c"), ("b", "c")]


def test_constant_metric_gives_nan_shares_and_one_parameter_is_refused() -> None:
    table = interaction_scores(grid(lambda a, b, c: 1.0), "valid_loss", ["a", "b"])
    assert np.isnan(table.iloc[0]["interaction"])
    with pytest.raises(ReportError, match="two searched parameters"):
        interaction_scores(grid(lambda a, b, c: a), "valid_loss", ["a"])
