"""`compare A B`'s files: compare.png (A's and B's heatmaps on one colour scale, and B − A per
cell with its interval) and compare.md (the numbers), in <out>/<A>-vs-<B>/, as one set."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hypertune.report.compare import Comparison
from hypertune.report.files import publish
from hypertune.report.labels import CELL_LABEL, fit_cell_labels
from hypertune.report.plot import axis_label, plot_heatmap, pyplot, shared_scale, ticks
from hypertune.study.store import write_atomic
from hypertune.study.stored import Study

COMPARE_PNG = "compare.png"
COMPARE_MD = "compare.md"


def comparison_name(a: str, b: str) -> str:
    """The folder of a comparison under --out: '<A>-vs-<B>'."""
    return f"{a}-vs-{b}"


def comparison_owner(a: str, b: str) -> str:
    """Whose set the folder holds, in its manifest ('A vs B': no study is named so)."""
    return f"{a} vs {b}"


def write_comparison(
    comparison: Comparison, studies: tuple[Study, Study], folder: Path
) -> list[Path]:
    """Write compare.png and compare.md into `folder` as one set (see `files.publish`)."""

    def build(staging: Path) -> list[Path]:
        png = draw_comparison(comparison, staging / COMPARE_PNG)
        return [png, write_comparison_markdown(comparison, studies, staging / COMPARE_MD)]

    return publish(folder, build, comparison_owner(*comparison.names))


def draw_comparison(comparison: Comparison, path: Path) -> Path:
    """Three panels: A's cells, B's cells (one colour scale, bright is better), and B − A,
    blue where B is better, each cell with its 95% interval where the seeds give one."""
    import seaborn as sns

    plt = pyplot()
    a, b = comparison.names
    first = comparison.infos[0].values
    width = max(4.5, 0.9 * first.shape[1] + 2.2)
    height = max(3.0 if first.shape[0] == 1 else 4.0, 0.7 * first.shape[0] + 2.0)
    fig, axes = plt.subplots(1, 3, figsize=(3 * width, height), layout="constrained")
    try:
        scale = shared_scale(comparison.infos, comparison.direction)
        for ax, info, name in zip(axes[:2], comparison.infos, comparison.names, strict=True):
            plot_heatmap(info, ax, comparison.direction, limits=scale.limits, caption=False)
            ax.set_title(f"{name}: {comparison.metric}", fontsize=10)
        diff = comparison.grid("diff").astype(float)
        reach = float(np.nanmax(np.abs(diff.to_numpy()))) or 1.0
        sns.heatmap(
            diff,
            ax=axes[2],
            cmap="RdBu" if comparison.direction == "max" else "RdBu_r",
            vmin=-reach,
            vmax=reach,
            annot=_difference_labels(comparison),
            fmt="",
            annot_kws={"fontsize": 9, "gid": CELL_LABEL},
            linewidths=0.5,
            linecolor="white",
            cbar_kws={"label": f"{b} − {a} (blue: {b} better)"},
            xticklabels=ticks(list(diff.columns)),
            yticklabels=ticks(list(diff.index)),
        )
        for text in axes[2].texts:
            text.set_gid(CELL_LABEL)
        axes[2].invert_yaxis()
        axes[2].tick_params(length=0, axis="both", labelsize=9)
        axes[2].tick_params(axis="y", rotation=0)
        axes[2].set_xlabel(axis_label(comparison.infos[0], comparison.x))
        axes[2].set_ylabel("" if comparison.y is None else axis_label(comparison.infos[0],
                                                                        comparison.y))  # fmt: skip
        spread = comparison.cells["low"].notna().any()
        axes[2].set_title(
            f"{b} − {a} per cell"
            + (", 95% interval" if spread else " (one trial per cell: no intervals)"),
            fontsize=10,
        )
        fit_cell_labels(fig)
        fig.savefig(path, dpi=110, format="png")
    finally:
        plt.close(fig)
    return path


def _difference_labels(comparison: Comparison) -> np.ndarray:
    diff = comparison.grid("diff").to_numpy(float)
    low, high = comparison.grid("low").to_numpy(float), comparison.grid("high").to_numpy(float)
    labels = np.full(diff.shape, "", dtype=object)
    for (i, j), value in np.ndenumerate(diff):
        if math.isnan(value):
            continue
        labels[i, j] = f"{value:+.3g}"
        if not math.isnan(low[i, j]):
            labels[i, j] += f"\n[{low[i, j]:+.2g}, {high[i, j]:+.2g}]"
    return labels


def shift_sentence(comparison: Comparison) -> str:
    """The level shift in words: B − A averaged over the cells both ran, against its interval."""
    mean, low, high, cells = comparison.shift
    a, b = comparison.names
    text = f"Over the {cells} cell{'s' if cells != 1 else ''} both studies ran, {b} − {a} of "
    text += f"{comparison.metric} averages {mean:+.4g}"
    if math.isnan(low):
        return text + " (no interval: it needs two or more cells that differ)."
    text += f" (95% {low:+.3g} to {high:+.3g}, the cells as pairs): "
    if low <= 0 <= high:
        return text + "no shift beyond what the cells' spread allows."
    better = (mean > 0) == (comparison.direction == "max")
    return text + f"{b} is {'better' if better else 'worse'} on the whole."


def agreement_sentence(comparison: Comparison) -> str:
    """How well the two main-effect rankings agree, or why no number says so."""
    tau, p, count = comparison.agreement
    if count < 3:
        shared = comparison.mains.dropna(subset=["share_a", "share_b"])
        if count == 2:
            same = (shared["share_a"].diff().iloc[1] > 0) == (shared["share_b"].diff().iloc[1] > 0)
            order = "the same" if same else "the reverse"
            return (
                f"Both studies rank 2 parameters; {order} order in each. Two parameters are "
                "too few for a rank correlation to mean anything."
            )
        return f"{count} parameter(s) ranked in both studies: too few to compare rankings."
    if math.isnan(tau):
        return f"Kendall's tau is undefined over {count} parameters (a ranking with all ties)."
    return (
        f"Rank agreement of the main effects: Kendall's tau = {tau:.2f} over the {count} "
        f"parameters both ranked (p = {p:.2g}; 1 is the same order, −1 the reverse)."
    )


def write_comparison_markdown(
    comparison: Comparison, studies: tuple[Study, Study], path: Path
) -> Path:
    from hypertune.report.page import setup_text, value_text

    a, b = comparison.names
    pair = comparison.x if comparison.y is None else f"{comparison.x} x {comparison.y}"
    lines = [
        f"# Study {b} compared with study {a}",
        "",
        f"**Question:** Did {comparison.metric} over {pair} change from {a} to {b}?",
        "",
        *(f"**{s.name}:** {setup_text(s.record, len(s.results))}\n" for s in studies),
        f"**What differs:** {differences(studies[0], studies[1])}",
        "",
        f"**Shift:** {shift_sentence(comparison)}",
        "",
        f"![{a}, {b} and {b} − {a} over {pair}]({COMPARE_PNG})",
        "",
        "Each study's cells pool its trials of every other parameter; a cell's interval is a "
        "95% Welch interval from the trials that share it (its seeds), not adjusted for the "
        "number of cells; none where either study has one trial there (run with --seeds 2).",
        "",
        "## Cell by cell",
        "",
    ]
    axes = [comparison.x] if comparison.y is None else [comparison.x, comparison.y]
    header = [*axes, f"{a} (n)", f"{b} (n)", f"{b} − {a}", "95% interval"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in comparison.cells.to_dict("records"):
        cells = [value_text(row["x"])] + ([] if comparison.y is None else [value_text(row["y"])])
        cells += [_mean(row["mean_a"], row["n_a"]), _mean(row["mean_b"], row["n_b"])]
        cells += [_number(row["diff"], "+.4g"), _span(row["low"], row["high"], "+.3g")]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "## Which pairs interact, in each", ""]
    if comparison.verdicts.empty:
        lines += ["Neither study searched two parameters.", ""]
    else:
        header = ["pair", *(f"{s} {c}" for s in (a, b) for c in ("interaction", "95%", "verdict"))]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for row in comparison.verdicts.to_dict("records"):
            cells = [str(row["pair"])]
            for s in ("_a", "_b"):
                cells += [_number(row.get(f"interaction{s}"), ".3f"),
                          _span(row.get(f"low{s}"), row.get(f"high{s}"), ".3f"),
                          str(row.get(f"verdict{s}") or "not searched")]  # fmt: skip
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["## Which parameters matter, in each", ""]
    header = ["parameter", f"{a} main effect", f"{a} 95%", f"{b} main effect", f"{b} 95%"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in comparison.mains.to_dict("records"):
        cells = [str(row["parameter"])]
        for s in ("_a", "_b"):
            cells += [
                _number(row[f"share{s}"], ".3f"),
                _span(row[f"low{s}"], row[f"high{s}"], ".3f"),
            ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", agreement_sentence(comparison), ""]
    write_atomic(path, "\n".join(lines))
    return path


def differences(a: Study, b: Study, most: int = 8) -> str:
    """The settings of the two study files that differ ('model.dropout: 0 -> 0.3; ...'), the
    study names left out."""

    def flat(config: dict[str, Any]) -> dict[str, Any]:
        return {
            f"{table}.{key}": value
            for table, entries in config.items()
            if isinstance(entries, dict)
            for key, value in entries.items()
            if (table, key) != ("study", "name")
        }

    left, right = flat(a.record.config), flat(b.record.config)
    changed = [
        f"{key}: {left.get(key, '(default)')} -> {right.get(key, '(default)')}"
        for key in sorted(set(left) | set(right))
        if left.get(key) != right.get(key)
    ]
    if not changed:
        return "nothing in the study files (the same settings, run again)."
    more = f"; and {len(changed) - most} more" if len(changed) > most else ""
    return "; ".join(changed[:most]) + more + "."


def _number(value: Any, spec: str) -> str:
    return "–" if value is None or pd.isna(value) else format(float(value), spec)


def _span(low: Any, high: Any, spec: str) -> str:
    if low is None or pd.isna(low):
        return "–"
    return f"{format(float(low), spec)} to {format(float(high), spec)}"


def _mean(value: float, count: int) -> str:
    return "–" if pd.isna(value) else f"{value:.4g} ({count})"
