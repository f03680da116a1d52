"""Hand each epoch's metrics to Ray Tune without making training wait for the driver.

A function trainable blocks in `tune.report` until the driver has processed the result and asked
for the next one. With epochs of a few milliseconds, that round trip idles the trial: on the
80-epoch MLP grid (2 cores) training in its own thread cut the study's wall time by about a tenth.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

from hypertune.train import Report

_DONE = object()


class _Stopped(Exception):
    """Raised inside training when the trial was stopped from outside."""


def relay(train: Callable[[Report], object], report: Report) -> None:
    """Run `train(put)` in a thread and pass what it puts to `report`, in order, from here.

    When `report` raises (Ray stops the trial), training ends at its next epoch and this returns
    only after it has: a reused Ray actor must not start its next trial beside a stale one. An
    exception in training is raised here once every result before it has been reported.
    """
    results: queue.SimpleQueue[object] = queue.SimpleQueue()
    stop = threading.Event()
    failure: list[BaseException] = []

    def put(metrics: dict[str, float]) -> None:
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
            report(item)  # type: ignore[arg-type]
    finally:
        stop.set()
        worker.join()
    if failure:
        raise failure[0]
