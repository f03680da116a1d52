"""Hand each epoch's metrics to Ray Tune without making training wait for the driver.

A function trainable blocks in `tune.report` until the driver has processed the result and asked
for the next one; with short epochs that round trip idles the trial, so training runs in its own
thread (measured in benchmarks/results.md).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

Report = Callable[[Any], None]  # one epoch's result (and what goes with it), handed on

_DONE = object()


class _Stopped(Exception):
    """Raised inside training when the trial was stopped from outside."""


def relay(
    train: Callable[[Report], object],
    report: Report,
    failed: Callable[[BaseException], None] | None = None,
) -> None:
    """Run `train(put)` in a thread and pass what it puts to `report`, in order, from here.

    When `report` raises (Ray stops the trial), training ends at its next epoch and this returns
    only after it has: a reused Ray actor must not start its next trial beside a stale one. An
    exception in training is handed to `failed` (raised where there is none) once every result
    before it has been reported.
    """
    results: queue.SimpleQueue[object] = queue.SimpleQueue()
    stop = threading.Event()
    failure: list[BaseException] = []

    def put(metrics: dict[str, Any]) -> None:
        if stop.is_set():
            raise _Stopped
        results.put(metrics)

    def run() -> None:
        try:
            train(put)
        except _Stopped:
            pass
        except BaseException as exc:  # handed to the reporting thread, which raises it
            failure.append(exc)
        finally:
            results.put(_DONE)

    worker = threading.Thread(target=run, name="hypertune-train", daemon=True)
    worker.start()
    try:
        while (item := results.get()) is not _DONE:
            report(item)
    finally:
        stop.set()
        worker.join()
    if failure and failed is not None:
        failed(failure[0])
    elif failure:
        raise failure[0]
