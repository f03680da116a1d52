"""The A4 page: header, the lead heatmap, three small panels, the interaction table, a footer.

Bands are matplotlib subfigures under constrained layout, so tick labels and axis names get
the room they need instead of lying over a neighbour; every heatmap uses the page's one colour
scale, shown by the lead heatmap's colour bar.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hypertune.report.estimate_plot import LABEL, plot_estimate
from hypertune.report.frame import describe
from hypertune.report.labels import fit_cell_labels
from hypertune.report.plot import (
    axis_label,
    bar_label,
    plot_heatmap,
    plot_main_effect,
    plot_surface,
    pyplot,
    title,
)

if TYPE_CHECKING:
    from hypertune.report.page import ReportContent

A4_INCHES = (8.27, 11.69)
SMALL_PANELS = 3
RANKED_ROWS = 6  # pairs listed on the page (report.md lists them all)
WRAP = 108  # characters per line of small header text
# Shares of the page below the header: the table's footer, and one row of the table.
TABLE_FOOT, TABLE_ROW = 0.057, 0.029


def write_page(content: ReportContent, path: Path) -> Path:
    """Draw the report on one A4 page and save it as a PDF (one figure, so one page).

    The PDF carries no creation date, so the same results give the same bytes.
    """
    plt = pyplot()
    fig = draw_page(content)
    try:
        fig.savefig(path, format="pdf", metadata={"CreationDate": None})
    finally:
        plt.close(fig)
    return path


def draw_page(content: ReportContent) -> Any:
    """The page as a matplotlib figure (cell labels already fitted)."""
    plt = pyplot()
    fig = plt.figure(figsize=A4_INCHES, layout="constrained")
    lines = _header_lines(content)
    top = (sum(size * 1.4 for _, size, _, _ in lines) / 72 + 0.3) / A4_INCHES[1]
    one_row = content.infos[content.lead].values.shape[0] == 1
    rest = 1 - top
    footing = TABLE_FOOT
    if content.ranking is not None:
        # The table's band fits its rows; what a short table leaves goes to the lead heatmap.
        shown = min(len(content.ranking), RANKED_ROWS)
        band = TABLE_FOOT + TABLE_ROW * (shown + 1)
        spare = TABLE_FOOT + TABLE_ROW * (RANKED_ROWS + 1) - band
        bands = [(0.27 if one_row else 0.44) + spare, 0.30, band]
        footing = TABLE_FOOT / band
    else:
        bands = [0.32, 0.50, 0.18]
    ratios = [top, *(rest * b / sum(bands) for b in bands)]
    header, lead, small, table = fig.subfigures(4, 1, height_ratios=ratios)
    y = 1 - 0.15 / (top * A4_INCHES[1])
    for text, size, weight, style in lines:
        header.text(0.06, y, text, fontsize=size, weight=weight, style=style, va="top")
        y -= size * 1.4 / 72 / (top * A4_INCHES[1])  # points to a fraction of the band
    _draw_lead(lead, content)
    _draw_small(small, content)
    _draw_table(table, content, footing)
    fit_cell_labels(fig)
    return fig


def _header_lines(content: ReportContent) -> list[tuple[str, float, str, str]]:
    from hypertune.report.page import best_line
    from hypertune.report.verdicts import importance_line

    return [
        (f"Study {content.name}", 16, "bold", "normal"),
        (content.question, 11.5, "normal", "italic"),
        *[(line, 7.5, "normal", "normal") for line in textwrap.wrap(content.setup, WRAP)],
        *[(line, 8.5, "bold", "normal") for line in
          textwrap.wrap("Best: " + best_line(content, digits=4), WRAP - 12)],
        *[(line, 8.5, "normal", "normal") for line in textwrap.wrap(content.summary, WRAP - 12)],
        *[(line, 7.5, "normal", "normal") for line in
          textwrap.wrap(importance_line(content.importance), WRAP)],
    ]  # fmt: skip


def _draw_lead(sub: Any, content: ReportContent) -> None:
    info = content.infos[content.lead]
    x, y = content.lead
    surface = content.surfaces.get((x, y)) if y is not None else None
    if content.estimate is not None:
        _draw_estimate(sub, content, surface)
        return
    if surface is not None:  # the model the verdict was tested on, beside the bins
        ax, right = sub.subplots(1, 2, width_ratios=[3, 2])
        plot_surface(surface, right, content.direction, limits=content.limits, fontsize=7)
        heading = f"the fitted model the verdict was tested on ({surface.method})"
        right.set_title("\n".join(textwrap.wrap(heading, 44)), fontsize=7)
    else:
        ax = sub.subplots()
    plot_heatmap(info, ax, content.direction, fontsize=9, limits=content.limits,
                 best_trial=_marked(content, content.lead))  # fmt: skip
    note = content.notes.get(content.lead, "")
    if surface is not None:  # three fifths of the band's width: the caption wraps
        note = "\n".join(textwrap.wrap(note, 64))
        if x in info.binned:  # and a bin's two edges stand upright
            ax.tick_params(axis="x", rotation=90)
    ax.set_title(title(info) + (f"\n{note}" if note else ""), fontsize=10)
    ax.collections[-1].colorbar.set_label(
        ax.collections[-1].colorbar.ax.get_ylabel() + "\none scale for every heatmap on the page",
        fontsize=8,
    )


def _draw_estimate(sub: Any, content: ReportContent, surface: Any) -> None:
    """A sparse study's lead band: what the verdict was tested on (the fitted surface, or the
    binned cells where no axis was fitted as a quadratic) beside the model estimate; the
    mostly empty binned cells are left to their PNG."""
    info, estimate = content.infos[content.lead], content.estimate
    assert estimate is not None
    x, y = content.lead
    left, right = sub.subplots(1, 2, width_ratios=[1, 1.3])
    if surface is not None:
        plot_surface(surface, left, content.direction, limits=content.limits, fontsize=7)
        heading = f"the fitted model the verdict was tested on ({surface.method})"
    else:
        plot_heatmap(info, left, content.direction, fontsize=7, limits=content.limits,
                     colorbar=False, best_trial=_marked(content, content.lead))  # fmt: skip
        heading = "the binned cells the verdict was tested on"
    left.set_title("\n".join(textwrap.wrap(heading, 48)), fontsize=7)
    mesh = plot_estimate(estimate, right, content.direction, limits=content.limits, fontsize=7)
    bar = sub.colorbar(mesh, ax=right)
    bar.set_label(bar_label(info, content.direction) + "\none scale for every heatmap on the page",
                  fontsize=7)  # fmt: skip
    bar.ax.tick_params(labelsize=7)
    heading = f"{LABEL}: {estimate.method}; white lines: ± of the model's 95% interval"
    right.set_title("\n".join(textwrap.wrap(heading, 60)), fontsize=7)
    counts = info.counts.to_numpy()
    sparse = (
        f"{int((counts > 0).sum())} of {counts.size} binned cells hold a trial, so the page "
        f"draws models; the cells are in heatmap_{x}__{y}.png"
    )
    note = content.notes.get(content.lead, "")
    lines = [title(info), *textwrap.wrap(note, 100), *textwrap.wrap(sparse, 100)]
    sub.suptitle("\n".join(lines), fontsize=9)


def _draw_small(sub: Any, content: ReportContent) -> None:
    axes = sub.subplots(1, SMALL_PANELS)
    pairs = content.others[:SMALL_PANELS]
    for ax, pair in zip(axes, pairs, strict=False):
        info = content.infos[pair]
        plot_heatmap(info, ax, content.direction, colorbar=False, fontsize=6, caption=False,
                     limits=content.limits, best_trial=_marked(content, pair))  # fmt: skip
        note = content.notes.get(pair, "")
        ax.set_title(title(info) + ("\n" + "\n".join(textwrap.wrap(note, 46)) if note else ""),
                     fontsize=7)  # fmt: skip
        ax.xaxis.label.set_size(7)
        ax.yaxis.label.set_size(7)
    # Panels no other pair needs show main effects, strongest first (the others pooled).
    # A parameter that took one value has no effect to show (a --smoke study's page).
    varied = [n for n in content.mains if len(content.mains[n]) > 1]
    names = [n for n in varied if content.lead[1] is None or n not in content.lead]
    names = (names or varied)[: SMALL_PANELS - len(pairs)]
    for ax, name in zip(axes[len(pairs) :], names, strict=False):
        effect = content.mains[name]
        label = axis_label(content.infos[content.lead], name)
        plot_main_effect(effect, ax, content.direction, label=label, metric=content.metric)
        ax.set_title(f"main effect of {name}\n(others pooled; mean, 95% interval)", fontsize=7)
    for ax in axes[len(pairs) + len(names) :]:
        ax.set_axis_off()


def _draw_table(sub: Any, content: ReportContent, footing: float = 0.22) -> None:
    """The interaction table, its rows at one height however many, above the footer (the
    band's lowest `footing`)."""
    from hypertune.report.markdown import table_cells

    ax = sub.subplots()
    ax.set_axis_off()
    excluded = describe(content.excluded) if content.excluded else "none"
    pooled = " (pooled over the other parameters)" if len(content.mains) > 2 else ""
    best_id = content.best.get("trial_id", "-")
    footer = (
        f"Trials: {content.trials_drawn()}; excluded: {excluded}. Red outline: "
        f"the best cell mean of {content.metric}{pooled}; star: the cell of the best trial "
        f"{best_id}. Colour: bright is better"
        + (f"; {content.scale.note(content.direction)}." if content.scale.clipped else ".")
    )
    ax.text(0, 0, "\n".join(textwrap.wrap(footer, WRAP)), fontsize=7, va="bottom",
            transform=ax.transAxes)  # fmt: skip
    if content.ranking is None:
        ax.text(0, 0.8, "One searched parameter: no pairs to rank for interaction.", fontsize=9,
                transform=ax.transAxes)  # fmt: skip
        return
    ax.set_title(
        "Which pairs interact? Shares of the metric's variance beyond noise; p Holm-adjusted",
        fontsize=9,
        loc="left",
    )
    rows = [table_cells(r, 2, method=False) for r in content.ranking.head(RANKED_ROWS).itertuples()]
    table = ax.table(
        cellText=rows,
        colLabels=["pair (x, y)", "interaction", "95% interval", "p", "verdict"],
        bbox=(0.0, footing, 1.0, 1.0 - footing),
        cellLoc="center",
        colWidths=[0.36, 0.13, 0.17, 0.11, 0.23],
    )  # fmt: skip
    table.auto_set_font_size(False)
    table.set_fontsize(7.5)
    if len(content.ranking) > RANKED_ROWS:
        ax.text(1, 0.12, f"{len(content.ranking) - RANKED_ROWS} more pairs in report.md",
                fontsize=7, ha="right", transform=ax.transAxes)  # fmt: skip


def _marked(content: ReportContent, pair: tuple[str, str | None]) -> tuple[Any, Any] | None:
    from hypertune.report.page import _best_levels

    return _best_levels(content).get(pair)
