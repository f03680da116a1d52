"""Command line: run | show | report | resume | rerun. User errors: one `error:` line, exit 2.

Heavy libraries (torch, Ray, matplotlib) are imported inside the commands that need them, so
`--help` and argument errors answer at once.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import importlib
import logging
import os
import shlex
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from hypertune.config import AGGREGATES
from hypertune.errors import HypertuneError, OutputError, ReportError, one_line
from hypertune.interrupts import sigterm_interrupts
from hypertune.progress import ProgressLine
from hypertune.record import StudyState
from hypertune.show import cmd_report, cmd_rerun, cmd_show, report_folder, write_study_report

if TYPE_CHECKING:
    import pandas as pd

    from hypertune.config import StudyConfig
    from hypertune.record import StudyRecord

DEFAULT_CONFIG = Path("configs/default.toml")
EXIT_USER_ERROR = 2
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hypertune",
        description="Hyperparameter studies of PyTorch models with Ray Tune, and heatmaps of "
        "how two hyperparameters interact. Without a command: run configs/default.toml.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = commands.add_parser("run", help="run a study from a TOML file")
    run.add_argument("config", type=Path, help="study file, e.g. configs/default.toml")
    run.add_argument("--name", help="study name (runs/NAME/); default: the file's [study] name")
    run.add_argument("--search", help="grid | random | bayes | hyperopt")
    run.add_argument("--samples", type=int, help="trials for random/bayes/hyperopt")
    run.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=SPEC",
        help="add or replace a searched parameter, e.g. lr=1e-5:l5:0.1 or act=relu,gelu; "
        "one value (num_layers=2) fixes it instead",
    )
    run.add_argument(
        "--drop-param",
        action="append",
        default=[],
        metavar="NAME",
        help="remove NAME from [space]; it takes its [model] value or its default",
    )
    run.add_argument("--metric", help="objective NAME:min|max|last, e.g. valid_loss:min")
    run.add_argument("--epochs", type=int, help="training epochs of every trial")
    run.add_argument("--seeds", type=int, help="repeat each configuration with seeds 0..S-1")
    run.add_argument("--cpus-per-trial", type=float)
    run.add_argument("--gpus-per-trial", type=float, help="fractions pack trials on a GPU")
    run.add_argument("--smoke", action="store_true", help="at most 2 trials of 1 epoch")
    run.add_argument(
        "--no-fuse",
        dest="fuse",
        action="store_false",
        default=None,
        help="train every trial alone (by default trials of one shape train as a fused pack)",
    )
    run.add_argument(
        "--mlflow", action="store_true", help="also log trials to MLflow (runs/NAME/mlflow)"
    )
    _add_cluster(run)
    _add_storage(run)
    _add_reports(run)

    show = commands.add_parser("show", help="table of a study's trials, best first")
    show.add_argument("name")
    show.add_argument("--sort", help="column to sort by (default: the study's metric)")
    show.add_argument("--top", type=int, help="only the first N rows")
    show.add_argument("--format", choices=("table", "csv", "json"), default="table")
    _add_storage(show)

    report = commands.add_parser(
        "report", help="heatmaps, interaction ranking and a one-page report.pdf of a study"
    )
    report.add_argument("name")
    report.add_argument("--x", help="parameter on the horizontal axis")
    report.add_argument("--y", help="parameter on the vertical axis")
    report.add_argument("--metric", help="column to colour by (default: the study's)")
    report.add_argument("--agg", choices=AGGREGATES)
    report.add_argument(
        "--full-budget", action="store_true", help="keep only trials with the full budget"
    )
    _add_storage(report)
    _add_reports(report)

    resume = commands.add_parser("resume", help="finish a study whose run stopped")
    resume.add_argument("name")
    resume.add_argument(
        "--retry-failed",
        action="store_true",
        help="also train the ERROR and NAN trials again, replacing their rows",
    )
    _add_cluster(resume)
    _add_storage(resume)
    _add_reports(resume)

    rerun = commands.add_parser("rerun", help="retrain one trial from its record")
    rerun.add_argument("name")
    rerun.add_argument("trial_id")
    _add_storage(rerun)
    return parser


def _add_storage(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--storage", default="runs", help="folder of studies (default: runs)")


def _add_reports(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="reports", help="folder of reports (default: reports)")


def _add_cluster(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--address", help="Ray cluster address (default: $RAY_ADDRESS or local)")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.command is None:
        args = build_parser().parse_args(["run", str(DEFAULT_CONFIG)])
    handlers = {
        "run": cmd_run,
        "show": cmd_show,
        "report": cmd_report,
        "resume": cmd_resume,
        "rerun": cmd_rerun,
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
        from hypertune.store import is_disk_full

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
    from hypertune.record import StudyState
    from hypertune.store import read_study

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


def cmd_run(args: argparse.Namespace) -> int:
    from hypertune.config import load_config

    overrides = {
        "name": args.name,
        "search": args.search,
        "samples": args.samples,
        "metric": args.metric,
        "epochs": args.epochs,
        "seeds": args.seeds,
        "cpus_per_trial": args.cpus_per_trial,
        "gpus_per_trial": args.gpus_per_trial,
        "params": args.param,
        "drop_params": args.drop_param,
        "smoke": args.smoke,
        "fuse": args.fuse,
    }
    config = load_config(args.config, overrides)
    _check_code(config)
    args.name = config.name
    from hypertune import store

    store.check_new_study(args.storage, config.name)
    store.check_folder(args.storage, "--storage")
    report_folder(args)  # a report that could not replace what is there is refused now
    started = _start_local_ray(config, args)
    try:
        from hypertune.search import run_study

        # Said once the study has passed every check and its first trial starts.
        header = (
            f"study {config.name}: {config.planned_trials()} trials, {config.search} search "
            f"over {', '.join(config.space) or 'no parameters'}, {config.epochs} epochs, "
            f"metric {config.metric}"
        )
        # Closed however the study ends: no progress line comes after an error or the hint.
        with contextlib.closing(ProgressLine(config.metric.objective_column, header)) as line:
            path = run_study(config, args.storage, args.address, progress=line, mlflow=args.mlflow)
    finally:
        if started:
            from hypertune.search import cluster

            cluster.stop()
    return _finish(path, args)


def _check_code(config: StudyConfig) -> None:
    """Import the study's own modules now: a broken reference is refused before Ray starts."""
    from hypertune.usercode import is_reference, load

    spec = config.space.get("architecture")
    named = [config.model.get("architecture"), *(spec.values if spec else ())]
    for reference in dict.fromkeys(n for n in named if is_reference(n)):
        load(str(reference), "model.architecture", config.code_dir)
    if is_reference(config.data):
        load(config.data, "study.data", config.code_dir)


def _start_local_ray(config: StudyConfig, args: argparse.Namespace) -> bool:
    """Start a new CPU study's local Ray now, while a second thread imports torch, Ray Tune and
    the trainable; True if started here (the caller stops it).

    Starting Ray is mostly waiting for its processes, about two seconds, and the imports take
    about as long, so doing both at once shortens every run. A taken study name is refused
    before Ray starts; with a cluster address or GPUs, run_study starts Ray after its checks.
    """
    from hypertune.search import cluster

    if cluster.ray_address(args.address) or config.gpus_per_trial > 0:
        return False
    cluster.check_local_resources(config, None)
    loading = threading.Thread(target=_import_quietly, args=("hypertune.search.run",))
    loading.daemon = True
    loading.start()
    started = cluster.start(None)
    loading.join()
    return started


def _import_quietly(module: str) -> None:
    """Import `module` if it imports; if not, the importer in the main thread will say why."""
    with contextlib.suppress(Exception):
        importlib.import_module(module)


def cmd_resume(args: argparse.Namespace) -> int:
    from hypertune.record import FAILED, StudyState
    from hypertune.search import resume_study
    from hypertune.store import check_folder, read_study

    record = read_study(args.storage, args.name)
    check_folder(args.storage, "--storage")
    report_folder(args)
    path: Path | None = None
    if record.status is not StudyState.FINISHED or not args.retry_failed:
        with contextlib.closing(ProgressLine(record.objective_column)) as line:
            path = resume_study(args.storage, args.name, args.address, progress=line)
    if args.retry_failed:
        from hypertune.search import retry_failed
        from hypertune.store import read_results

        failed = read_results(args.storage, args.name)["status"].isin(FAILED).sum()
        if failed or path is None:
            header = f"study {args.name}: retrying {failed} failed trials"
            with contextlib.closing(ProgressLine(record.objective_column, header)) as line:
                path = retry_failed(args.storage, args.name, args.address, progress=line)
    return _finish(path or Path(args.storage) / args.name, args)


def _finish(path: Path, args: argparse.Namespace) -> int:
    """After a run: the best trial, the files, the heatmaps, and why fewer trials ran than
    planned (if they did)."""
    from hypertune.store import read_results, read_study

    record = read_study(args.storage, path.name)
    results = read_results(args.storage, path.name)
    code = _summary(path, args, record, results)
    planned = record.trials_planned or 0
    if record.status is StudyState.FINISHED and len(results) < planned:
        why = (
            "the Bayesian searcher kept suggesting configurations it had already tried"
            if record.search == "bayes"
            else f"the {record.search} searcher suggested no more configurations"
        )
        print(f"warning: {len(results)} of {planned} trials ran: {why}", file=sys.stderr)
    return code


def _summary(
    path: Path, args: argparse.Namespace, record: StudyRecord, results: pd.DataFrame
) -> int:
    counts = results["status"].value_counts().to_dict() if len(results) else {}
    print(f"{len(results)} trials: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
    # The one meaning of "best", and its values printed as the page prints them.
    from hypertune.report import best_trial, value_text

    best = best_trial(results, record)
    if best is not None:
        objective = record.objective_column
        values = ", ".join(f"{p}={value_text(best[p])}" for p in record.params)
        score = float(best[objective])
        print(f"best: {values} -> {objective} = {score:.4g} (trial {best['trial_id']})")
    print(f"results: {path / 'results.csv'}")
    try:
        written = write_study_report(record, results, args, None, None, None, None)
    except ReportError as exc:
        # The study itself is complete and stored; only its pictures cannot be drawn.
        print(f"warning: no report drawn: {exc}", file=sys.stderr)
        return 0
    except OutputError as exc:
        print(f"error: {exc}; the study is stored: `report {path.name}` draws it", file=sys.stderr)
        return EXIT_USER_ERROR
    for item in written:
        print(f"report: {item}")
    return 0
