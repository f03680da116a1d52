"""The commands that read a stored study: show (the results table), report, rerun and best."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Hashable
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from hypertune.errors import ReportError
from hypertune.metrics import column_direction
from hypertune.study.record import StudyRecord, TrialStatus

if TYPE_CHECKING:
    import pandas as pd

    from hypertune.study.stored import Study

# Relative difference under which a rerun counts as the recorded trial (CSV keeps 17 digits).
REPRODUCED = 1e-9
# ... and under which a fused member trained alone as one torch module agrees with its pack
# (float32 arithmetic in another order; unstable training drifts further).
ROUNDING = 1e-4
# Rows of `show` formatted at a time: a long table is printed in parts of this many.
CHUNK_ROWS = 10_000


def cmd_show(args: argparse.Namespace) -> int:
    import pandas as pd

    from hypertune.study.store import read_results, read_study

    record = read_study(args.storage, args.name)
    results = read_results(args.storage, args.name)
    if not len(results):
        print(f"study {args.name}: no finished trials yet ({record.status.value})", file=sys.stderr)
        return 0
    table = sort_results(results, record, args.sort)
    if args.top is not None:
        table = table.head(args.top)
    if args.format == "csv":
        table.to_csv(sys.stdout, index=False, chunksize=CHUNK_ROWS)
    elif args.format == "json":
        print_json(table, sys.stdout)
    else:
        print_table(table, sys.stdout)
        counts = results["status"].value_counts() if len(results) else pd.Series(dtype=int)
        summary = ", ".join(f"{n} {s}" for s, n in counts.items())
        print(f"{len(results)} trials: {summary or 'none finished yet'}", file=sys.stderr)
    return 0


def print_table(table: pd.DataFrame, stream: TextIO, chunk: int = CHUNK_ROWS) -> None:
    """`table` as aligned text, `chunk` rows formatted at a time (a million rows at once would
    take gigabytes). Up to `chunk` rows it is pandas' `to_string` as it is; a longer table is
    printed in parts whose columns are set to one width, a space wider than the widest cell."""
    if len(table) <= chunk:
        print(table.to_string(index=False, float_format=_number), file=stream)
        return
    widths: dict[Hashable, int] = {name: _width(name, table[name]) for name in table.columns}
    for start in range(0, len(table), chunk):
        part = table.iloc[start : start + chunk]
        text = part.to_string(
            index=False, header=start == 0, float_format=_number, col_space=widths
        )
        print(text, file=stream)


def _number(value: float) -> str:
    return f"{value:.4g}"


def _width(name: object, column: pd.Series) -> int:
    """The widest of `column`'s name and cells as `to_string` shows them, and one (pandas puts
    a space before a number, and before the name of a column of numbers)."""
    if column.dtype.kind == "f":
        cells = (_number(v) if v == v else "NaN" for v in column.to_numpy())
    elif column.dtype.kind in "iub":
        cells = (str(v) for v in column.to_numpy())
    else:  # as pandas shows text: tabs and line breaks escaped
        cells = (
            str(v).replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
            for v in column.to_numpy()
        )
    return 1 + max(len(str(name)), max(map(len, cells), default=0))


def print_json(table: pd.DataFrame, stream: TextIO, chunk: int = CHUNK_ROWS) -> None:
    """`table` as a JSON list of records (indented), `chunk` records encoded at a time; the
    same text as pandas' `to_json(orient="records", indent=2)` of the whole table."""
    if len(table) <= chunk:
        print(table.to_json(orient="records", indent=2), file=stream)
        return
    stream.write("[\n")
    for start in range(0, len(table), chunk):
        part = table.iloc[start : start + chunk].to_json(orient="records", indent=2)
        stream.write((",\n" if start else "") + part[2:-2])  # without its "[\n" and "\n]"
    stream.write("\n]\n")


def sort_results(results: pd.DataFrame, record: StudyRecord, column: str | None) -> pd.DataFrame:
    """Finished trials best first by `column` (default: the objective); others after them."""
    import pandas as pd

    objective = record.objective_column
    column = column or objective
    if column not in results.columns:
        raise ReportError(
            f"--sort: unknown column '{column}'; available: {', '.join(results.columns)}"
        )
    direction = record.direction if column == objective else column_direction(column)
    ascending = direction == "min"
    ok = results["status"] == TrialStatus.FINISHED
    ordered = results[ok].sort_values(
        column, ascending=ascending, na_position="last", kind="stable"
    )
    return pd.concat([ordered, results[~ok]]) if (~ok).any() else ordered


def cmd_report(args: argparse.Namespace) -> int:
    from hypertune.study.stored import load_study

    study = load_study(args.storage, args.name)
    if (args.x is None) != (args.y is None):
        raise ReportError("--x and --y go together; give both, or neither for every pair")
    written = write_study_report(study, args, args.x, args.y, args.metric, args.agg)
    for item in written:
        print(item)
    return 0


def write_study_report(
    study: Study,
    args: argparse.Namespace,
    x: str | None,
    y: str | None,
    metric: str | None,
    agg: str | None,
) -> list[Path]:
    """Heatmaps (one pair, or every pair and pairs.png), report.pdf and report.md."""
    from hypertune.report import write_report

    folder = report_folder(args)
    full_budget = getattr(args, "full_budget", False)
    return write_report(study, folder, x, y, metric, agg, full_budget)


def cmd_compare(args: argparse.Namespace) -> int:
    from hypertune.report.compare import comparison
    from hypertune.report.compare_files import comparison_name, comparison_owner, write_comparison
    from hypertune.report.files import check_target
    from hypertune.study.store import check_folder, check_out, study_dir
    from hypertune.study.stored import load_study

    if (args.x is None) != (args.y is None):
        raise ReportError("--x and --y go together; give both, or neither for the studies' pair")
    if args.a == args.b:
        raise ReportError(f"compare: A and B are both '{args.a}'; name two studies")
    studies = tuple(load_study(args.storage, name) for name in (args.a, args.b))
    check_out(check_folder(args.out, "--out"), args.storage)
    folder = study_dir(args.out, comparison_name(args.a, args.b))
    check_target(folder, comparison_owner(args.a, args.b))
    result = comparison(studies[0], studies[1], args.x, args.y, args.metric, args.full_budget)
    for item in write_comparison(result, (studies[0], studies[1]), folder):
        print(item)
    return 0


def report_folder(args: argparse.Namespace) -> Path:
    """Where the report of the study `args.name` goes: `args.out`/<name>, checked before
    anything is written (or, for `run`, before anything runs).

    Named by the command, never by study.json: a copied or edited study cannot write over
    another study's report, nor outside --out.

    Raises:
        StudyError, OutputError: `--out` cannot be written, lies inside `--storage`, or
            <name> there holds something other than an earlier report of this study.
    """
    from hypertune.report.files import check_target
    from hypertune.study.store import check_folder, check_out, study_dir

    check_out(check_folder(args.out, "--out"), args.storage)
    folder = study_dir(args.out, args.name)
    check_target(folder, args.name)
    return folder


def cmd_rerun(args: argparse.Namespace) -> int:
    from hypertune.search import rerun_trial
    from hypertune.study.store import read_study

    record = read_study(args.storage, args.name)
    metrics, row = rerun_trial(args.storage, args.name, args.trial_id)
    print(f"trial {args.trial_id} of {args.name} (seed {row.seed}):")
    print(_agreement(_compare(record, row.metrics, metrics, "rerun")))
    return 0


def cmd_best(args: argparse.Namespace) -> int:
    from hypertune import weights
    from hypertune.best import WEIGHTS_FILE, best_trial_id, keep_best
    from hypertune.study.store import read_study

    record = read_study(args.storage, args.name)
    trial = args.trial or best_trial_id(record, args.storage, args.name)
    which = f"trial {trial}" if args.trial else f"the best trial by {record.objective_column}"
    if weights.trial_file(args.storage, args.name, trial).is_file():
        print(f"testing the weights the study kept of {which} of {args.name} ...", flush=True)
    else:
        print(f"training {which} of {args.name} again, alone ...", flush=True)
    best = keep_best(args.storage, args.name, trial)
    params = ", ".join(f"{k}={v}" for k, v in best.params.items())
    print(f"trial {best.trial_id} (seed {best.seed}; {params}):")
    gap = _compare(record, best.recorded, best.retrained, best.source)
    if record.packs and gap is not None and REPRODUCED < gap <= ROUNDING:
        how = "trained here again" if best.source == "retrained" else "is evaluated here"
        print(f"agrees with the record to float rounding (up to {gap:.2g} relative): it trained "
              f"in a fused pack, and {how} alone as one torch module")  # fmt: skip
    else:
        print(_agreement(gap))
    if best.test is None:
        print(
            "no test split: the data has none, so the validation metrics that chose this trial "
            "are the only estimate, and they flatter it (a data module can return x_test, y_test)"
        )
    else:
        shown = ", ".join(f"{k} {v:.6g}" for k, v in best.test.items())
        print(f"test split (held out, seen by no trial): {shown}")
    print(f"weights: {Path(best.folder) / WEIGHTS_FILE} "
          f"(hypertune.load_best({args.storage!r}, {args.name!r}))")  # fmt: skip
    return 0


def _compare(
    record: StudyRecord, recorded: dict[str, float], metrics: dict[str, float], label: str
) -> float | None:
    """Print the recorded and the new last-epoch metrics side by side; return their largest
    relative difference (None: nothing finite to compare)."""
    names = [record.metric.name, f"{record.metric.name}_best", "accuracy", "valid_loss"]
    print(f"{'metric':<18}{'recorded':>12}{label:>12}")
    for name in dict.fromkeys(names):
        if name in metrics:
            value = recorded.get(name, float("nan"))
            print(f"{name:<18}{value:>12.6g}{metrics[name]:>12.6g}")
    gaps = [
        abs(metrics[k] - v) / max(abs(v), 1e-12)
        for k, v in recorded.items()
        if k in metrics and math.isfinite(v) and math.isfinite(metrics[k])
    ]
    return max(gaps) if gaps else None


def _agreement(gap: float | None) -> str:
    if gap is None:
        return "nothing to compare: the recorded metrics are not finite"
    if gap <= REPRODUCED:
        return "reproduced: every metric as recorded"
    return f"not reproduced: metrics differ from the record by up to {gap:.2g} (relative)"
