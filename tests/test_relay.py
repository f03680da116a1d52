"""Epoch metrics reach Ray in order while training goes on; stops and errors cross threads."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from hypertune.search.relay import Report, relay


def epochs(count: int, done: list[float] | None = None) -> Callable[[Report], None]:
    def train(put: Report) -> None:
        for epoch in range(count):
            put({"epoch": float(epoch)})
        if done is not None:
            done.append(time.perf_counter())

    return train


def test_every_result_is_reported_in_order_and_training_does_not_wait() -> None:
    reported: list[tuple[float, float]] = []

    def slow_report(metrics: dict[str, float]) -> None:
        time.sleep(0.05)  # a driver busy with each result
        reported.append((metrics["epoch"], time.perf_counter()))

    done: list[float] = []
    relay(epochs(5, done), slow_report)
    assert [epoch for epoch, _ in reported] == [0, 1, 2, 3, 4]
    assert done[0] < reported[0][1]  # all five epochs trained before the first report returned


def test_an_error_in_training_is_raised_after_the_results_before_it() -> None:
    reported: list[dict[str, float]] = []

    def train(put: Report) -> None:
        put({"epoch": 0.0})
        put({"epoch": 1.0})
        raise OverflowError("value cannot be converted to type float without overflow")

    with pytest.raises(OverflowError, match="overflow"):
        relay(train, reported.append)
    assert reported == [{"epoch": 0.0}, {"epoch": 1.0}]


def test_a_stop_from_outside_ends_training_before_relay_returns() -> None:
    trained: list[int] = []

    def train(put: Report) -> None:
        for epoch in range(1000):
            trained.append(epoch)
            put({"epoch": float(epoch)})
            time.sleep(0.01)

    def report(metrics: dict[str, float]) -> None:
        if metrics["epoch"] == 2:
            raise SystemExit(0)  # what tune.report does when Ray stops the trial

    with pytest.raises(SystemExit):
        relay(train, report)
    assert len(trained) < 100  # stopped at its next epoch, not trained to the end
    assert not any(t.name == "hypertune-train" for t in threading.enumerate())
