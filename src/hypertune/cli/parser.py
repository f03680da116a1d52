"""The command line's arguments: one subcommand per verb, each with its options."""

from __future__ import annotations

import argparse
from pathlib import Path

from hypertune.config import AGGREGATES
from hypertune.searchers import searcher_names


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
    run.add_argument("--search", help=" | ".join(searcher_names()))
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
        "--keep-weights",
        dest="keep_weights",
        action="store_true",
        default=None,
        help="keep every trial's final weights in runs/NAME/weights/ (`best --trial ID` "
        "then tests them without training again)",
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

    compare = commands.add_parser(
        "compare",
        help="two studies over the same pair: B - A per cell with intervals, both studies' "
        "verdicts, and how their main-effect rankings agree (into OUT/A-vs-B/)",
    )
    compare.add_argument("a", metavar="A", help="the study compared against")
    compare.add_argument("b", metavar="B", help="the study compared with it")
    compare.add_argument("--x", help="parameter on the horizontal axis")
    compare.add_argument("--y", help="parameter on the vertical axis")
    compare.add_argument("--metric", help="column to compare (default: A's report metric)")
    compare.add_argument(
        "--full-budget", action="store_true", help="keep only trials with the full budget"
    )
    _add_storage(compare)
    _add_reports(compare)

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

    best = commands.add_parser(
        "best",
        help="train the best trial again and keep its weights (runs/<name>/best/); evaluate "
        "it on the data's test split where there is one",
    )
    best.add_argument("name")
    best.add_argument("--trial", help="keep this trial instead of the best by the objective")
    _add_storage(best)
    return parser


def _add_storage(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--storage", default="runs", help="folder of studies (default: runs)")


def _add_reports(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="reports", help="folder of reports (default: reports)")


def _add_cluster(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--address", help="Ray cluster address (default: $RAY_ADDRESS or local)")
