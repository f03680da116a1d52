"""report.md: the page's content as text, with the PNGs linked and the full interaction table."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from hypertune.report.curves import CELL_COSTS, CURVES_PNG, level_text
from hypertune.report.frame import describe
from hypertune.report.plot import caption_text, title
from hypertune.report.tradeoff import TRADEOFF_FILE
from hypertune.study.store import write_atomic

if TYPE_CHECKING:
    from hypertune.report.page import ReportContent

TABLE_HEADER = ["pair (x, y)", "interaction", "95% interval", "p (Holm)", "verdict", "method",
                "cells"]  # fmt: skip
MAINS_HEADER = ["parameter", "main effect", "95% interval", "p", "method"]


def write_markdown(content: ReportContent, path: Path, files: Sequence[Path]) -> Path:
    """Write report.md beside the pictures `files` (the lead heatmap first)."""
    from hypertune.report.page import best_line

    info = content.infos[content.lead]
    note = content.notes.get(content.lead, "")
    lines = [
        f"# Study {content.name}",
        "",
        f"**Question:** {content.question}",
        "",
        f"**Setup:** {content.setup}",
        "",
        f"**Best trial:** {best_line(content, digits=6)}",
        "",
    ]
    if content.summary:
        lines += [f"**Verdict:** {content.summary}", ""]
    lines += [
        f"![{title(info)}]({files[0].name})",
        "",
        f"Cells: {info.metric}, {caption_text(info)}"
        + (f"; binned: {', '.join(info.binned)} (quantile bins)" if info.binned else "")
        + (f"; log-spaced: {', '.join(info.log_axes)}" if info.log_axes else "")
        + (f". {note[0].upper()}{note[1:]}" if note else "")
        + f". Red outline: the best cell mean of {info.metric}"
        + (" (pooled over the other parameters)" if len(content.mains) > 2 else "")
        + "; star: the cell of the best trial.",
        "",
    ]
    lines += estimate_lines(content, files)
    lines += [
        "## Which parameters matter?",
        "",
        "Each parameter's main effect from one fit of all trials: its share of the metric's "
        "variance beyond what noise alone would give, with a 95% interval; p: its F test "
        "(unadjusted: it ranks, the pairs below decide). Method: the model fitted (see "
        "`hypertune.report.importance`).",
        "",
        "| " + " | ".join(MAINS_HEADER) + " |",
        "|" + "---|" * len(MAINS_HEADER),
        *["| " + " | ".join(main_cells(row)) + " |" for row in content.importance.itertuples()],
        "",
    ]
    if content.ranking is not None:
        lines += [
            "## Which pairs interact?",
            "",
            "Each pair's interaction: its share of the metric's variance over the trials "
            "beyond what noise alone would give, with its 95% interval. p: its F test, "
            "Holm-adjusted for the pairs tested; a pair interacts when p < 0.01. Method: the "
            "linear model the test used (see `hypertune.report.interaction`).",
            "",
            "| " + " | ".join(TABLE_HEADER) + " |",
            "|" + "---|" * len(TABLE_HEADER),
        ]
        lines += ["| " + " | ".join(table_cells(row, 3)) + " |"
                  for row in content.ranking.itertuples()]  # fmt: skip
        lines.append("")
    shown_apart = (TRADEOFF_FILE, CURVES_PNG)
    pictures = [
        f
        for f in files[1:]
        if f.suffix == ".png" and f.name not in shown_apart and not f.name.startswith("estimate_")
    ]
    if pictures:
        lines += ["## More heatmaps", ""]
        lines += [f"- [{f.name}]({f.name})" for f in pictures]
        lines.append("")
    if content.tradeoffs and any(f.name == TRADEOFF_FILE for f in files):
        lines += tradeoff_lines(content)
    if content.curves is not None and any(f.name == CURVES_PNG for f in files):
        lines += curve_lines(content)
    excluded = describe(content.excluded) if content.excluded else "none"
    lines += [
        "## Trials",
        "",
        f"{content.trials_drawn()}; excluded: {excluded}."
        + (f" The {content.scale.note(content.direction)}." if content.scale.clipped else ""),
        "",
        "The one-page version is [report.pdf](report.pdf).",
        "",
    ]
    write_atomic(path, "\n".join(lines))
    return path


def estimate_lines(content: ReportContent, files: Sequence[Path]) -> list[str]:
    """Where a sparse search leaves most cells empty: the model estimate, said to be one."""
    estimate = content.estimate
    shown = [f for f in files if f.name.startswith("estimate_")]
    if estimate is None or not shown:
        return []
    counts = content.infos[content.lead].counts.to_numpy()
    return [
        f"## {estimate.x.name} x {estimate.y.name} between the trials: a model estimate",
        "",
        f"Only {int((counts > 0).sum())} of the {counts.size} cells above hold a trial, so the "
        f"surface is also estimated from all {estimate.trials} trials, and drawn as an estimate, "
        f"never as measured cells: {estimate.method}, with a 95% interval of the averaged "
        "surface at each point (its width beside it; dots: the trials, in the colour of what "
        "they measured). The verdict above does not come from it; hypertune's docs/report.md "
        "says how far it can be trusted.",
        "",
        f"![{estimate.metric}: model estimate, not measured]({shown[0].name})",
        "",
    ]


def tradeoff_lines(content: ReportContent) -> list[str]:
    """The trade-off section: the picture, and each view's Pareto front as a table."""
    from hypertune.report.page import value_text

    metric = content.tradeoffs[0].metric
    lines = [
        "## What the trials cost",
        "",
        f"![{metric} against what each trial cost]({TRADEOFF_FILE})",
        "",
        f"Every finished trial's {metric} against its model's weights and its training seconds. "
        "On the Pareto front (red): the trials no other trial beats at the same cost or less; "
        "past them, paying more bought nothing in these trials. The front is what the trials "
        "show, not tested against noise.",
        "",
    ]
    for view in content.tradeoffs:
        header = ["trial", *view.params, view.cost, metric]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for row in view.front.to_dict("records"):
            cells = [row["trial_id"], *(value_text(row[p]) for p in view.params)]
            cells += [f"{row['cost']:.6g}", f"{row['metric']:.4g}"]
            lines.append("| " + " | ".join(str(c) for c in cells) + " |")
        lines.append("")
    return lines


def curve_lines(content: ReportContent) -> list[str]:
    """The convergence section: the lead pair's learning curves, and per cell its trials'
    mean final metric, model size, epochs to converge and seconds per epoch."""
    from hypertune.report.page import value_text

    view = content.curves
    assert view is not None
    pair = view.x if view.y is None else f"{view.x} x {view.y}"
    lines = [
        f"## How fast each cell of {pair} converged",
        "",
        f"![{view.metric} epoch by epoch]({CURVES_PNG})",
        "",
        f"Each cell's {view.metric} epoch by epoch: the mean of its trials, the band from the "
        "lowest to the highest (where it has more than one). Below, the means of its trials "
        "from results.csv; epochs_to_within_5pct: the first epoch within 5% of the trial's "
        "final best objective. Described, not tested against noise.",
        "",
    ]
    columns = [c for c in (content.metric, *CELL_COSTS) if c in view.costs.columns]
    axes = [view.x] if view.y is None else [view.x, view.y]
    header = [*axes, "trials", *columns]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in view.costs.to_dict("records"):
        cells = [level_text(row["x"])] + ([] if view.y is None else [level_text(row["y"])])
        cells += [
            str(row["trials"]),
            *("–" if pd.isna(row[c]) else value_text(row[c]) for c in columns),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return [*lines, ""]


def table_cells(row: Any, digits: int, method: bool = True) -> list[str]:
    """One ranking row as text: shares, interval, p, verdict (and method and cells)."""

    def share(value: float) -> str:
        return "–" if pd.isna(value) else f"{value:.{digits}f}"

    cells = [
        f"{row.x} x {row.y}",
        share(row.interaction),
        f"{share(row.low)}–{share(row.high)}",
        "–" if pd.isna(row.p_value) else f"{row.p_value:.2g}",
        str(row.verdict),
    ]
    return [*cells, row.method or "–", str(int(row.cells))] if method else cells


def main_cells(row: Any) -> list[str]:
    """One row of the main-effect ranking as text."""
    share = "–" if pd.isna(row.share) else f"{row.share:.3f}"
    p = "–" if pd.isna(row.p_value) else f"{row.p_value:.2g}"
    span = "–" if pd.isna(row.low) else f"{row.low:.3f}–{row.high:.3f}"
    return [str(row.parameter), share, span, p, row.method or "–"]
