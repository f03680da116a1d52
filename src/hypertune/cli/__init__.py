"""Command line: run | show | report | resume | rerun | best. User errors: one `error:`
line, exit 2.

:func:`main` parses (:mod:`.parser`), sets Ray's settings, and turns every `HypertuneError`,
a full disk and Ctrl-C into one line and an exit code; the commands are in :mod:`.commands`
and :mod:`hypertune.show`.

Heavy libraries (torch, Ray, matplotlib) are imported inside the commands that need them, so
`--help` and argument errors answer at once.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import logging
import os
import shlex
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from hypertune.cli.commands import EXIT_USER_ERROR, cmd_resume, cmd_run
from hypertune.cli.parser import build_parser
from hypertune.errors import HypertuneError, one_line
from hypertune.interrupts import sigterm_interrupts
from hypertune.show import cmd_best, cmd_compare, cmd_report, cmd_rerun, cmd_show

DEFAULT_CONFIG = Path("configs/default.toml")
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report Ctrl-C
EXIT_TERMINATED = 143  # 128 + SIGTERM
# Ray's and Tune's settings the command line chooses, set before Ray starts unless the user's
# environment sets them (the library itself changes no environment variable; Python users may
# set these themselves, see README "Ray's settings").
RAY_ENVIRONMENT = {
    "RAY_USAGE_STATS_ENABLED": "0",  # no usage statistics sent unless the user opts in
    "RAY_AIR_NEW_OUTPUT": "0",  # Tune's classic reporter honours verbose=0; we draw progress
    "RAY_DEDUP_LOGS": "0",
    # Ray's experiment checkpoint every second (its "auto" waits 10 s or more): a driver killed
    # mid-study loses at most this much of the trial table that `resume` restores.
    "TUNE_GLOBAL_CHECKPOINT_S": "1",
    # A trial hands the driver its epochs in batches of up to 8, or what arrived within 8 s, in
    # one remote call instead of one per epoch (benchmarks/results.md has the gain); every epoch
    # is still reported. Both are 8 because Ray 2.60 passes the two to the trial swapped.
    "TUNE_RESULT_BUFFER_LENGTH": "8",
    "TUNE_RESULT_BUFFER_MIN_TIME_S": "8",
    # Tune collects each trial's errors itself (results.csv, the retried count); without this
    # Ray's driver also prints the traceback of every trial call Tune stopped waiting for (the
    # calls of a lost node's trials, once they are retried elsewhere).
    "RAY_IGNORE_UNHANDLED_ERRORS": "1",
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.command is None:
        args = build_parser().parse_args(["run", str(DEFAULT_CONFIG)])
    handlers = {
        "run": cmd_run,
        "show": cmd_show,
        "report": cmd_report,
        "compare": cmd_compare,
        "resume": cmd_resume,
        "rerun": cmd_rerun,
        "best": cmd_best,
    }
    _show_warnings()
    _quiet_ray()
    for name, value in RAY_ENVIRONMENT.items():  # before any command starts Ray
        os.environ.setdefault(name, value)
    terminated = threading.Event()
    stopping = sigterm_interrupts(terminated) if args.command in ("run", "resume") else None
    try:
        with stopping or contextlib.nullcontext():
            return handlers[args.command](args)
    except HypertuneError as exc:
        print(f"error: {one_line(str(exc))}", file=sys.stderr)
        return EXIT_USER_ERROR
    except OSError as exc:
        from hypertune.study.store import is_disk_full

        if not is_disk_full(exc):
            raise
        name = getattr(args, "name", None) or "the study"
        print(
            f"error: study '{name}': no space left on the device ({exc}); free space, then "
            f"`{_resume_hint(args).rpartition('Continue with: ')[2] or 'resume'}`",
            file=sys.stderr,
        )
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"\ninterrupted; {_resume_hint(args)}", file=sys.stderr)
        return EXIT_TERMINATED if terminated.is_set() else EXIT_INTERRUPTED


def _quiet_ray() -> None:
    """Tune's controller logs every failed trial with Ray's traceback; a retried trial is
    counted on the progress line and a failed one has its error in results.csv instead."""
    # Its experiment state's failed saves (a full disk) end the study with one error line.
    for name in ("ray.tune.execution.tune_controller", "ray.tune.execution.experiment_state"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def _show_warnings() -> None:
    """hypertune's own warnings (a damaged row left out, ...) as `warning:` lines on stderr."""
    logger = logging.getLogger("hypertune")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("warning: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.WARNING)
        logger.propagate = False


def _resume_hint(args: argparse.Namespace) -> str:
    """What to do after Ctrl-C: a command that works when followed."""
    from hypertune.errors import HypertuneError
    from hypertune.study.record import StudyState
    from hypertune.study.store import read_study

    name = getattr(args, "name", None)
    storage = getattr(args, "storage", "runs")
    where = "" if storage == "runs" else f" --storage {shlex.quote(str(storage))}"
    address = getattr(args, "address", None)
    where += f" --address {shlex.quote(address)}" if address else ""
    try:
        status = read_study(storage, name).status if name else None
    except HypertuneError:
        status = None
    if status is None:
        return "no study was stored; run it again"
    if status is StudyState.FINISHED and getattr(args, "retry_failed", False):
        return (
            "trials not yet retried keep their rows. Continue with: "
            f"resume {name}{where} --retry-failed"
        )
    if status is StudyState.FINISHED:
        return f"study '{name}' had finished and is kept"
    return f"finished trials are kept. Continue with: resume {name}{where}"


def entry() -> NoReturn:
    """`python hypertuner.py` and the `hypertune` script: run :func:`main`, then exit at once.

    Once a command is done, Python's own teardown of the libraries it loaded takes a while:
    measured here, 0.3 s after importing torch, 0.7 s with Ray Tune, and more with the plotting
    libraries. Nothing is left to save by then, so the process ends with `os._exit`, after
    what a normal exit does first: waiting for the threads that are not daemons (Ray's
    shutdown), running the exit handlers, and flushing the output.
    """
    code = main()
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe or stream
            stream.flush()
    os._exit(code)
