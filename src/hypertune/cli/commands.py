"""`run` and `resume`: check, start Ray where needed, train, then summarise and report.

(`show`, `report` and `rerun` read a stored study: :mod:`hypertune.show`.)
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from hypertune.errors import OutputError, ReportError
from hypertune.progress import ProgressLine
from hypertune.show import report_folder, write_study_report
from hypertune.study.record import StudyState

if TYPE_CHECKING:
    from hypertune.config import StudyConfig
    from hypertune.study.stored import Study

EXIT_USER_ERROR = 2


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
        "keep_weights": args.keep_weights,
    }
    config = load_config(args.config, overrides)
    _check_code(config)
    args.name = config.name
    from hypertune.study import store

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
    from hypertune.search import resume_study
    from hypertune.study.record import FAILED, StudyState
    from hypertune.study.store import check_folder, read_study

    record = read_study(args.storage, args.name)
    check_folder(args.storage, "--storage")
    report_folder(args)
    path: Path | None = None
    if record.status is not StudyState.FINISHED or not args.retry_failed:
        with contextlib.closing(ProgressLine(record.objective_column)) as line:
            path = resume_study(args.storage, args.name, args.address, progress=line)
    if args.retry_failed:
        from hypertune.search import retry_failed
        from hypertune.study.store import read_results

        failed = read_results(args.storage, args.name)["status"].isin(FAILED).sum()
        if failed or path is None:
            header = f"study {args.name}: retrying {failed} failed trials"
            with contextlib.closing(ProgressLine(record.objective_column, header)) as line:
                path = retry_failed(args.storage, args.name, args.address, progress=line)
    return _finish(path or Path(args.storage) / args.name, args)


def _finish(path: Path, args: argparse.Namespace) -> int:
    """After a run: the best trial, the files, the heatmaps, and why fewer trials ran than
    planned (if they did)."""
    from hypertune.study.stored import load_study

    study = load_study(args.storage, path.name)
    record, results = study.record, study.results
    code = _summary(path, args, study)
    planned = record.trials_planned or 0
    if record.status is StudyState.FINISHED and len(results) < planned:
        from hypertune.searchers import known_searcher

        searcher = known_searcher(record.search)
        why = (searcher.exhausted if searcher else "") or (
            f"the {record.search} searcher suggested no more configurations"
        )
        print(f"warning: {len(results)} of {planned} trials ran: {why}", file=sys.stderr)
    return code


def _summary(path: Path, args: argparse.Namespace, study: Study) -> int:
    record, results = study.record, study.results
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
        where = "" if args.storage == "runs" else f" --storage {args.storage}"
        from hypertune import weights

        kept = weights.trial_file(args.storage, path.name, str(best["trial_id"]))
        if kept.is_file():
            print(f"its weights: {kept} (`best {path.name}{where}` tests them)")
        else:
            print(f"its weights: `best {path.name}{where}` trains it again and keeps them")
    print(f"results: {path / 'results.csv'}")
    try:
        written = write_study_report(study, args, None, None, None, None)
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
