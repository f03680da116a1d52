"""The one-page report: reports/<study>/report.pdf (one A4 page) and report.md, with the PNGs.

`report_content` gathers every number the page shows (pure, from study.json and results.csv);
`write_report` draws the heatmaps, the pair grid and the page, and writes the markdown twin.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from hypertune.config import METRICS, objective_column
from hypertune.errors import ReportError
from hypertune.report.frame import HeatmapInfo, describe, heatmap_info, usable_trials
from hypertune.report.interaction import interaction_scores
from hypertune.report.plot import (
    caption_text,
    heatmap_path,
    plot_heatmap,
    plot_main_effect,
    title,
    write_heatmap,
    write_pairs,
)

A4_INCHES = (8.27, 11.69)
SMALL_HEATMAPS = 3
RANKED_ROWS = 6  # pairs listed on the page (report.md lists them all)
PAIRS_FILE = "pairs.png"


@dataclass
class ReportContent:
    """What the one-page report says, in the order it says it."""

    name: str
    question: str
    setup: str
    metric: str
    direction: str
    agg: str
    best: dict[str, Any]  # params, value, n, std, trial_id
    lead: tuple[str, str | None]
    others: list[tuple[str, str]]
    ranking: pd.DataFrame | None  # interaction_scores, or None for a single parameter
    excluded: dict[str, int]
    used: int
    total: int
    infos: dict[tuple[str, str | None], HeatmapInfo] = field(default_factory=dict)
    mains: dict[str, HeatmapInfo] = field(default_factory=dict)  # one row per parameter


def report_metric(meta: Mapping[str, Any], metric: str | None = None) -> tuple[str, str]:
    """The column a report colours by, and which way is better ('min' or 'max').

    Default: the study's [report] metric, else its objective (`<metric>_best` unless mode last).
    """
    objective = objective_column(meta)
    chosen = metric or meta.get("config", {}).get("report", {}).get("metric") or objective
    if chosen == objective:
        return chosen, str(meta["direction"])
    return chosen, METRICS.get(chosen.removesuffix("_best"), "min")


def report_content(
    meta: Mapping[str, Any],
    results: pd.DataFrame,
    x: str | None = None,
    y: str | None = None,
    metric: str | None = None,
    agg: str | None = None,
    full_budget_only: bool = False,
) -> ReportContent:
    """Every number of the report, computed from study.json (`meta`) and results.csv alone.

    The lead heatmap is the pair asked for (`x`, `y`, or the study's [report] x/y), otherwise
    the pair with the strongest interaction. With one searched parameter the lead is a one-row
    heatmap and there is no ranking.

    Raises:
        ReportError: the study searched no parameter, or its results cannot be drawn.
    """
    params = [str(p) for p in meta.get("params", [])]
    if not params:
        raise ReportError(
            f"study '{meta['name']}' searched no parameters; a heatmap needs at least one "
            "(add a [space] entry or --param NAME=SPEC)"
        )
    settings = meta.get("config", {}).get("report", {})
    metric, direction = report_metric(meta, metric)
    agg = agg or settings.get("agg", "mean")
    infos: dict[tuple[str, str | None], HeatmapInfo] = {}
    ranking = None
    if len(params) == 1:
        lead: tuple[str, str | None] = (params[0], None)
        others: list[tuple[str, str]] = []
    else:
        ranking = interaction_scores(results, metric, params, full_budget_only)
        ranked = [(str(r.x), str(r.y)) for r in ranking.itertuples()]
        wanted = (x, y) if x and y else (settings.get("x"), settings.get("y"))
        first = (str(wanted[0]), str(wanted[1])) if wanted[0] and wanted[1] else ranked[0]
        lead = first
        others = [pair for pair in ranked if set(pair) != set(first)]
        if x and y:  # one pair asked for: draw only that one
            others = []
    for px, py in [lead, *others]:
        infos[(px, py)] = heatmap_info(results, px, py, metric, agg, full_budget_only)
    mains = {p: heatmap_info(results, p, None, metric, agg, full_budget_only) for p in params}
    info = infos[lead]
    return ReportContent(
        name=str(meta["name"]),
        question=_question(lead, metric),
        setup=_setup(meta, info.used, len(results)),
        metric=metric,
        direction=direction,
        agg=agg,
        best=best_configuration(results, params, metric, direction, agg, full_budget_only),
        lead=lead,
        others=others,
        ranking=ranking,
        excluded=info.excluded,
        used=info.used,
        total=len(results),
        infos=infos,
        mains=mains,
    )


def best_configuration(
    results: pd.DataFrame,
    params: Sequence[str],
    metric: str,
    direction: str,
    agg: str = "mean",
    full_budget_only: bool = False,
) -> dict[str, Any]:
    """The best configuration: its trials (seeds, repeats) combined by `agg`, then compared."""
    frame, _ = usable_trials(results, metric, full_budget_only)
    grouped = frame.groupby(list(params), dropna=False, sort=False)[metric]
    table = pd.DataFrame(
        {
            "value": grouped.agg(agg),
            "std": grouped.std(ddof=1),
            "n": grouped.size(),
            "best_trial": grouped.idxmin() if direction == "min" else grouped.idxmax(),
        }
    )
    row = table.loc[table["value"].idxmin() if direction == "min" else table["value"].idxmax()]
    trial = frame.loc[row["best_trial"]]
    return {
        "params": {name: trial[name] for name in params},
        "value": float(row["value"]),
        "std": float(row["std"]),
        "n": int(row["n"]),
        "trial_id": str(trial.get("trial_id", "")),
    }


def write_report(
    meta: Mapping[str, Any],
    results: pd.DataFrame,
    folder: Path,
    x: str | None = None,
    y: str | None = None,
    metric: str | None = None,
    agg: str | None = None,
    full_budget_only: bool = False,
) -> list[Path]:
    """Write the heatmap PNGs, pairs.png, report.pdf (one A4 page) and report.md to `folder`.

    Returns:
        The files written, heatmaps first.
    """
    content = report_content(meta, results, x, y, metric, agg, full_budget_only)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for (px, py), info in content.infos.items():
        path = heatmap_path(folder, px, py) if py else folder / f"heatmap_{px}.png"
        written.append(write_heatmap(info, path, content.direction))
    params = [str(p) for p in meta["params"]]
    if len(params) >= 2 and not (x and y):
        pair_infos = {
            (px, py): content.infos.get((px, py))
            or heatmap_info(results, px, py, content.metric, content.agg, full_budget_only)
            for px, py in itertools.combinations(params, 2)
        }
        written.append(write_pairs(pair_infos, params, folder / PAIRS_FILE, content.direction))
    written.append(write_page(content, folder / "report.pdf"))
    written.append(write_markdown(content, folder / "report.md", written))
    return written


def write_page(content: ReportContent, path: Path) -> Path:
    """Draw the report on one A4 page and save it as a PDF (one figure, so one page)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=A4_INCHES)
    try:
        _draw_page(fig, content)
        fig.savefig(path, format="pdf")
    finally:
        plt.close(fig)
    return path


def _draw_page(fig: Any, content: ReportContent) -> None:
    fig.text(0.06, 0.965, f"Study {content.name}", fontsize=17, weight="bold", va="top")
    fig.text(0.06, 0.935, content.question, fontsize=11.5, va="top", style="italic")
    fig.text(0.06, 0.913, content.setup, fontsize=7.5, va="top")
    fig.text(0.06, 0.893, "Best: " + _best_line(content, digits=4), fontsize=9.5, va="top")
    info = content.infos[content.lead]
    one_row = info.values.shape[0] == 1
    lead_ax = fig.add_axes((0.14, 0.70, 0.70, 0.12) if one_row else (0.14, 0.58, 0.70, 0.27))
    plot_heatmap(info, lead_ax, content.direction, fontsize=9)
    lead_ax.set_title(title(info), fontsize=11)
    small = content.others[:SMALL_HEATMAPS]
    for index, pair in enumerate(small):
        ax = fig.add_axes(_small_slot(index))
        other = content.infos[pair]
        cells = other.values.size
        plot_heatmap(
            other, ax, content.direction, annotate=cells <= 20, colorbar=False, fontsize=6,
            caption=False,
        )  # fmt: skip
        ax.set_title(title(other), fontsize=8)
        ax.xaxis.label.set_size(7)
        ax.yaxis.label.set_size(7)
    # Slots no other pair needs show each parameter's main effect (the others pooled).
    for index, name in enumerate(list(content.mains)[: SMALL_HEATMAPS - len(small)]):
        ax = fig.add_axes(_small_slot(len(small) + index))
        plot_main_effect(content.mains[name], ax, content.direction)
        ax.set_title(f"main effect of {name}\n(others pooled, ± std)", fontsize=8)
    table_ax = fig.add_axes((0.06, 0.05, 0.88, 0.13))
    table_ax.set_axis_off()
    _draw_ranking(table_ax, content)
    excluded = describe(content.excluded) if content.excluded else "none"
    fig.text(
        0.06,
        0.03,
        f"Trials: {content.used} of {content.total} drawn; excluded: {excluded}. "
        "Red outline: best cell. Colour: bright is better.",
        fontsize=7.5,
    )


def _small_slot(index: int) -> tuple[float, float, float, float]:
    return (0.08 + index * 0.31, 0.29, 0.23, 0.15)


def _draw_ranking(ax: Any, content: ReportContent) -> None:
    if content.ranking is None:
        ax.text(0, 0.8, "One searched parameter: no pairs to rank for interaction.", fontsize=9)
        return
    ax.set_title(
        "Which pairs interact? Share of the cell means' variance (two-way decomposition)",
        fontsize=9,
        loc="left",
    )
    rows = [_ranking_cells(r, digits=2) for r in content.ranking.head(RANKED_ROWS).itertuples()]
    table = ax.table(
        cellText=rows,
        colLabels=["pair (x, y)", "interaction", "main x", "main y", "95% interval", "verdict"],
        loc="upper left",
        cellLoc="center",
        colWidths=[0.3, 0.12, 0.1, 0.1, 0.16, 0.2],
    )
    table.auto_set_font_size(False)
    table.set_fontsize(8)


def _ranking_cells(row: Any, digits: int) -> list[str]:
    def share(value: float) -> str:
        return "-" if pd.isna(value) else f"{value:.{digits}f}"

    return [
        f"{row.x} x {row.y}",
        share(row.interaction),
        share(row.main_x),
        share(row.main_y),
        f"{share(row.low)}–{share(row.high)}",
        str(row.verdict),
    ]


def write_markdown(content: ReportContent, path: Path, files: Sequence[Path]) -> Path:
    """report.md: the page's content as text, with the PNGs linked."""
    info = content.infos[content.lead]
    lines = [
        f"# Study {content.name}",
        "",
        f"**Question:** {content.question}",
        "",
        f"**Setup:** {content.setup}",
        "",
        f"**Best configuration:** {_best_line(content, digits=6)}",
        "",
        f"![{title(info)}]({files[0].name})",
        "",
        f"Cells: {info.metric}, {caption_text(info)}"
        + (f"; binned: {', '.join(info.binned)} (quantile bins)" if info.binned else "")
        + (f"; log-spaced: {', '.join(info.log_axes)}" if info.log_axes else "")
        + ". Red outline: the best cell.",
        "",
    ]
    if content.ranking is not None:
        lines += [
            "## Which pairs interact?",
            "",
            "Share of the variance of the cell means that is interaction rather than the two "
            "main effects (additive model fitted by least squares; `noise level` is the share "
            "trial-to-trial spread alone would give, where cells hold repeats).",
            "",
            "| pair (x, y) | interaction | main x | main y | 95% interval | verdict | cells |",
            "|---|---|---|---|---|---|---|",
        ]
        for row, cells in zip(
            content.ranking.itertuples(), content.ranking["cells"].astype(int), strict=True
        ):
            lines.append(f"| {' | '.join(_ranking_cells(row, digits=3))} | {cells} |")
        lines.append("")
    pictures = [f for f in files[1:] if f.suffix == ".png"]
    if pictures:
        lines += ["## More heatmaps", ""]
        lines += [f"- [{f.name}]({f.name})" for f in pictures]
        lines.append("")
    excluded = describe(content.excluded) if content.excluded else "none"
    lines += [
        "## Trials",
        "",
        f"{content.used} of {content.total} trials drawn; excluded: {excluded}.",
        "",
        "The one-page version is [report.pdf](report.pdf).",
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _best_line(content: ReportContent, digits: int) -> str:
    best = content.best
    params = ", ".join(f"{k}={_value(v)}" for k, v in best["params"].items())
    spread = f" ± {best['std']:.{digits}g}" if best["n"] > 1 else ""
    over = f"{content.agg} of {best['n']} trials" if best["n"] > 1 else f"trial {best['trial_id']}"
    return f"{params}: {content.metric} = {best['value']:.{digits}g}{spread} ({over})"


def _value(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _question(lead: tuple[str, str | None], metric: str) -> str:
    x, y = lead
    if y is None:
        return f"How does {x} change {metric}?"
    return f"How do {x} and {y} interact on {metric}?"


def _setup(meta: Mapping[str, Any], used: int, total: int) -> str:
    config = meta.get("config", {})
    study, model = config.get("study", {}), config.get("model", {})
    data = meta.get("data", {})
    data_text = str(data.get("name", study.get("data", "?")))
    if "train" in data:
        data_text += f" ({data['train']} train / {data.get('valid', '?')} valid)"
    seeds = meta.get("seeds", [0])
    n_seeds = len(seeds) if isinstance(seeds, list) else int(seeds)
    objective = f"{meta.get('metric')}:{meta.get('mode')}"
    return (
        f"Data {data_text} · model {model.get('architecture', '?')} · {meta.get('search')} search,"
        f" objective {objective} · {study.get('epochs', '?')} epochs per trial · "
        f"{total} of {meta.get('trials_planned', total)} trials ran · "
        f"{n_seeds} seed{'s' if n_seeds != 1 else ''}"
    )
