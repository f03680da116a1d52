"""The command line's progress line: trials, epochs, the best metric and a running clock.

On a terminal it is one line, redrawn in place at least every second, so the clock moves even
while a long trial trains. In a log (stderr not a terminal) a line is printed when something
other than the clock changed, at most once every :data:`LOG_PERIOD_S` seconds, and the last
state is always printed when the study ends.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from hypertune.search import Progress

TICK_S = 1.0  # a terminal's line is redrawn this often
LOG_PERIOD_S = 5.0  # at most one line this often in a log


class ProgressLine:
    """One live status line on stderr instead of Ray's scrolling tables."""

    def __init__(
        self,
        metric: str,
        header: str | None = None,
        stream: TextIO | None = None,
        live: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.metric = metric
        self.header = header  # printed once, when the first trial starts
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self.clock = clock
        self.state: Progress | None = None
        self.last = ""  # the last line shown (without its clock, in a log)
        self.pending = ""  # a log line held back by LOG_PERIOD_S
        self.shown_at = float("-inf")
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.ticker: threading.Thread | None = None

    def __call__(self, state: Progress) -> None:
        with self.lock:
            if self.header:
                print(self.header, file=self.stream, flush=True)
                if state.packing:
                    print(state.packing, file=self.stream, flush=True)
                self.header = None
            self.state = state
            self._show()
        if self.ticker is None:
            self.ticker = threading.Thread(target=self._tick, name="hypertune-progress")
            self.ticker.daemon = True
            self.ticker.start()

    def text(self, state: Progress, clock: bool = True) -> str:
        """The line for `state` (`clock=False`: without the elapsed time)."""
        best = f"{state.best:.4g}" if state.best is not None else "-"
        text = (
            f"trials {state.done}/{state.total} done, {state.running} running, "
            f"{state.failed} failed | best {self.metric} {best}"
        )
        if state.retried:
            text = text.replace(" failed |", f" failed, {len(state.retried)} retried |")
        if state.epochs_total:
            text += f" | epochs {state.epochs}/{state.epochs_total}"
        if clock:
            minutes, seconds = divmod(int(state.elapsed), 60)
            text += f" | {minutes}:{seconds:02d}"
        return text

    def _show(self, final: bool = False) -> None:
        if self.state is None:
            return
        if self.live:
            text = self.text(self.state)
            if text != self.last:
                self.last = text
                print(f"\r{text}\x1b[K", end="", file=self.stream, flush=True)
            return
        key = self.text(self.state, clock=False)
        if key != self.last:
            self.pending = self.text(self.state)
        now = self.clock()
        if self.pending and (final or now - self.shown_at >= LOG_PERIOD_S):
            print(self.pending, file=self.stream, flush=True)
            self.last, self.pending, self.shown_at = key, "", now

    def _tick(self) -> None:
        while not self.stopped.wait(TICK_S):
            with self.lock:
                self._show()

    def close(self) -> None:
        """Stop the clock and end the line (in a log: print the last state if held back)."""
        self.stopped.set()
        if self.ticker is not None:
            self.ticker.join()
        with self.lock:
            self._show(final=True)
            if self.live and self.last:
                print(file=self.stream, flush=True)
            if self.state is not None and self.state.retried:
                print(retried_summary(self.state.retried), file=self.stream, flush=True)


def retried_summary(retried: dict[str, str]) -> str:
    """One line: how many trials were restarted from their last checkpoint, and why."""
    reasons = Counter(retried.values()).most_common()
    why = "; ".join(f"{reason} ({n}x)" if n > 1 else reason for reason, n in reasons[:3])
    more = f"; and {len(reasons) - 3} other reasons" if len(reasons) > 3 else ""
    return (
        f"retried {len(retried)} trials from their last checkpoint after the infrastructure "
        f"failed them: {why}{more}"
    )
