"""The progress line: epochs across running trials, a clock that moves, a quiet log."""

from __future__ import annotations

import io

from hypertune.progress import LOG_PERIOD_S, ProgressLine
from hypertune.search.recorder import Progress


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_log_gets_a_line_at_most_every_few_seconds_and_the_last_state() -> None:
    out, clock = io.StringIO(), Clock()
    line = ProgressLine("valid_loss_best", "study s: 4 trials", out, live=False, clock=clock)
    state = Progress(total=4, epochs_total=40)
    for step in range(20):  # trials start, report epochs and end within two seconds
        clock.now = step * 0.1
        state.running, state.epochs = 2, step
        line(state)
    state.done, state.running, state.best, state.epochs = 4, 0, 0.25, 40
    line(state)
    line.close()
    lines = out.getvalue().splitlines()
    assert lines[0] == "study s: 4 trials"
    assert lines[1].startswith("trials 0/4 done, 2 running, 0 failed | best valid_loss_best - |")
    assert "epochs 0/40" in lines[1]
    assert len(lines) == 3, lines
    assert lines[2].startswith("trials 4/4 done, 0 running, 0 failed | best valid_loss_best 0.25")
    assert "| epochs 40/40 |" in lines[2]


def test_a_log_line_held_back_is_printed_once_the_period_has_passed() -> None:
    out, clock = io.StringIO(), Clock()
    line = ProgressLine("accuracy_best", stream=out, live=False, clock=clock)
    state = Progress(total=2, epochs_total=2)
    line(state)
    state.epochs = 1
    line(state)  # held back
    clock.now = LOG_PERIOD_S
    line._show()  # what the ticker does every second
    line.close()
    assert [x.split(" | ")[2] for x in out.getvalue().splitlines()] == ["epochs 0/2", "epochs 1/2"]


def test_a_terminal_line_redraws_its_clock_while_nothing_else_changes() -> None:
    out = io.StringIO()
    line = ProgressLine("valid_loss_best", stream=out, live=True)
    state = Progress(total=1, running=1, epochs_total=5)
    line(state)
    state.started -= 61  # a minute later, with no result in between
    line._show()
    line.close()
    draws = out.getvalue().split("\r")[1:]
    assert draws[0].rstrip("\x1b[K").endswith("| 0:00")
    assert draws[1].startswith("trials 0/1 done, 1 running") and "| 1:01" in draws[1]
