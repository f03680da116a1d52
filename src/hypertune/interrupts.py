"""SIGTERM for the CLI's long commands: the same clean stop as Ctrl-C."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType


@contextlib.contextmanager
def sigterm_interrupts(terminated: threading.Event) -> Iterator[None]:
    """While open, SIGTERM (`kill PID`, a scheduler ending a job) stops a run or resume as
    Ctrl-C does: trials stop, finished ones are kept, study.json says interrupted, and the CLI
    says how to resume; `terminated` is set so the CLI can exit with 143 rather than 130.

    The handler hands the signal on as SIGINT: to Tune's handler while a study trains (Tune
    stops the trials and saves its state), else to Python's (KeyboardInterrupt). The handlers
    `ray.init` installs (an exit, and its core worker's C++ stack dump and abort) would replace
    it; :func:`hypertune.search.cluster.start` puts it back. Outside the main thread nothing is
    installed (Python allows signal handlers only there).
    """

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        terminated.set()
        handler = signal.getsignal(signal.SIGINT)
        if not callable(handler):
            raise KeyboardInterrupt
        handler(signal.SIGINT, frame)

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
