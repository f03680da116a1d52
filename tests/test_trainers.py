"""mltrainer as the trainer: one report per epoch with the metric names the search expects."""

from __future__ import annotations

import math

import pytest

from hypertune.data import load_dataset
from hypertune.train import TrainSettings, fit

EXPECTED = {
    f"{name}{suffix}"
    for name in ("train_loss", "valid_loss", "accuracy")
    for suffix in ("", "_best")
}


@pytest.mark.parametrize(
    ("data", "config"),
    [
        ("digits-seq", {"architecture": "gru", "hidden_size": 8}),
        ("digits", {"architecture": "cnn", "filters": 4, "hidden_size": 8, "batchnorm": True}),
        ("digits-seq", {"architecture": "mltrainer_gru", "hidden_size": 8}),
    ],
)
def test_mltrainer_reports_every_epoch_with_our_names(data: str, config: dict) -> None:
    bundle = load_dataset(data)
    reports: list[dict[str, float]] = []
    settings = TrainSettings(epochs=2, trainer="mltrainer")
    last = fit({**config, "lr": 0.01, "batch_size": 256}, bundle, settings, report=reports.append)
    assert len(reports) == 2
    assert all(set(r) == EXPECTED for r in reports)
    assert last == reports[-1]
    assert all(math.isfinite(v) for r in reports for v in r.values())
    assert reports[1]["valid_loss_best"] == min(r["valid_loss"] for r in reports)
    assert reports[1]["accuracy_best"] == max(r["accuracy"] for r in reports)
    assert 0.0 <= reports[1]["accuracy"] <= 1.0
    assert reports[1]["train_loss"] < reports[0]["train_loss"]  # it does learn


def test_mltrainer_and_own_loop_are_each_repeatable() -> None:
    bundle = load_dataset("digits-seq")
    config = {"architecture": "gru", "hidden_size": 8, "lr": 0.01, "batch_size": 256}
    settings = TrainSettings(epochs=1, trainer="mltrainer")
    first = fit(config, bundle, settings, seed=3)
    assert fit(config, bundle, settings, seed=3) == first
    own = fit(config, bundle, TrainSettings(epochs=1), seed=3)
    assert set(own) == set(first)
