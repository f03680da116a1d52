"""The one-page report: reports/<study>/report.pdf (one A4 page) and report.md, with the PNGs.

`report_content` gathers every number the page shows (pure, from study.json and results.csv);
`write_report` draws the heatmaps, the pair grid and the page, writes the markdown twin, and
publishes them as one set (`files.publish`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hypertune.errors import ReportError
from hypertune.metrics import column_direction
from hypertune.report.curves import CURVES_PNG, CellCurves, cell_curves, write_cell_curves
from hypertune.report.estimate import Estimate, gp_estimate, is_sparse
from hypertune.report.files import publish
from hypertune.report.frame import ColourScale, HeatmapInfo, heatmap_info, main_effect
from hypertune.report.importance import main_effects
from hypertune.report.interaction import TOO_FEW, interaction_scores
from hypertune.report.plot import heatmap_path, shared_scale, write_heatmap, write_pairs
from hypertune.report.surface import Surface, surfaces
from hypertune.report.tradeoff import TRADEOFF_FILE, Tradeoff, tradeoffs, write_tradeoffs
from hypertune.report.verdicts import caption, lead_and_summary
from hypertune.searchers import known_searcher
from hypertune.study.record import StudyRecord, TrialStatus
from hypertune.study.stored import Study

SMALL_PANELS = 3
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
    best: dict[str, Any]  # the best trial by the objective: trial_id, params, values
    lead: tuple[str, str | None]
    others: list[tuple[str, str]]
    ranking: pd.DataFrame | None  # interaction_scores, or None for a single parameter
    importance: pd.DataFrame  # main_effects: one ranking of the parameters, from one fit
    summary: str  # the verdict over all pairs, in words
    excluded: dict[str, int]
    used: int
    total: int  # trials that ran
    planned: int  # trials the study asked for: the one denominator of the page
    infos: dict[tuple[str, str | None], HeatmapInfo] = field(default_factory=dict)
    notes: dict[tuple[str, str | None], str] = field(default_factory=dict)  # verdict captions
    mains: dict[str, pd.DataFrame] = field(default_factory=dict)  # strongest first
    # pairs tested on a fitted surface (a quadratic axis), keyed as the heatmaps are
    surfaces: dict[tuple[str, str], Surface] = field(default_factory=dict)
    scale: ColourScale = field(default_factory=lambda: ColourScale(0.0, 1.0))  # one per page
    tradeoffs: list[Tradeoff] = field(default_factory=list)  # the metric against each cost
    curves: CellCurves | None = None  # the lead pair's learning curves, where kept
    estimate: Estimate | None = None  # the lead pair's model estimate, for a sparse search

    @property
    def limits(self) -> tuple[float, float]:
        return self.scale.limits

    def trials_drawn(self) -> str:
        """'11 of 16 trials drawn (5 did not run)': the page's one denominator is the trials
        the study asked for."""
        text = f"{self.used} of {self.planned} trials drawn"
        missing = self.planned - self.total
        return text + (f" ({missing} did not run)" if missing > 0 else "")


def report_metric(record: StudyRecord, metric: str | None = None) -> tuple[str, str]:
    """The column a report colours by, and which way is better ('min' or 'max').

    Default: the study's [report] metric, else its objective (`<metric>_best` unless mode last).
    """
    objective = record.objective_column
    chosen = metric or record.report_settings.get("metric") or objective
    if chosen == objective:
        return chosen, record.direction
    return chosen, column_direction(chosen)


def best_trial(results: pd.DataFrame, record: StudyRecord) -> pd.Series | None:
    """The study's best trial: the finished trial with the best objective (None if none).

    The one meaning of "best" everywhere: `run`'s last lines, the page and report.md. Ties go
    to the trial listed first in results.csv.
    """
    objective = record.objective_column
    if objective not in results.columns or "status" not in results.columns:
        return None
    values = pd.to_numeric(results[objective], errors="coerce")
    ok = (results["status"] == TrialStatus.FINISHED) & np.isfinite(values.to_numpy(dtype=float))
    if not ok.any():
        return None
    ranked = values[ok].sort_values(ascending=record.direction == "min", kind="stable")
    return results.loc[ranked.index[0]]


def report_content(
    study: Study,
    x: str | None = None,
    y: str | None = None,
    metric: str | None = None,
    agg: str | None = None,
    full_budget_only: bool = False,
) -> ReportContent:
    """Every number of the report, computed from the stored `study` alone: study.json,
    results.csv and (where the study kept them) its learning curves (curves.csv).

    The lead heatmap is the pair asked for (`x`, `y`, or the study's [report] x/y), otherwise
    the strongest pair whose verdict is "interacts"; when no pair interacts, the page says so
    and leads with the pair of the two strongest main effects. With one searched parameter the
    lead is a one-row heatmap and there is no ranking.

    Raises:
        ReportError: the study searched no parameter, or its results cannot be drawn.
    """
    record, results, curves = study.record, study.results, study.curves
    params = list(record.params)
    if not params:
        raise ReportError(
            f"study '{record.name}' searched no parameters; a heatmap needs at least one "
            "(add a [space] entry or --param NAME=SPEC)"
        )
    settings = record.report_settings
    metric, direction = report_metric(record, metric)
    agg = agg or settings.get("agg", "mean")
    ranking, summary = None, ""
    fitted: dict[tuple[str, str], Surface] = {}
    others: list[tuple[str, str]] = []
    lead: tuple[str, str | None] = (params[0], None)
    searcher = known_searcher(record.search)
    adaptive = searcher is not None and searcher.adaptive
    importance = main_effects(results, metric, params, full_budget_only, adaptive)
    strengths = dict(zip(importance["parameter"], importance["share"].fillna(0.0), strict=True))
    if len(params) > 1:
        ranking = interaction_scores(results, metric, params, full_budget_only, adaptive)
        fitted = surfaces(results, metric, params, full_budget_only)
        wanted = (x, y) if x and y else (settings.get("x"), settings.get("y"))
        lead, summary = lead_and_summary(ranking, wanted, strengths)
        if adaptive and (ranking["verdict"] != TOO_FEW).any():
            summary += (
                f" {searcher.label if searcher else record.search} placed each trial by the "
                "ones before it, so the "
                "trials are not independent draws: p-values come from shuffling the metric "
                "over the trials' settings, not from the F distribution."
            )
        # Every pair is drawn, whichever leads: a report led by the pair asked for (--x/--y)
        # replaces the study's earlier report with nothing missing.
        others = [(str(r.x), str(r.y)) for r in ranking.itertuples() if {r.x, r.y} != set(lead)]
    infos = {
        (px, py): heatmap_info(results, px, py, metric, agg, full_budget_only)
        for px, py in [lead, *others]
    }
    mains = {p: main_effect(results, p, metric, full_budget_only) for p in importance["parameter"]}
    info = infos[lead]
    best = best_trial(results, record)
    estimate = None
    if lead[1] is not None and record.search != "grid" and is_sparse(info):
        estimate = gp_estimate(results, metric, params, lead[0], lead[1], full_budget_only)
    return ReportContent(
        name=record.name,
        question=_question(lead, metric),
        setup=setup_text(record, len(results)),
        metric=metric,
        direction=direction,
        agg=agg,
        best=_best_facts(best, record, params, metric),
        lead=lead,
        others=others,
        ranking=ranking,
        importance=importance,
        summary=summary,
        excluded=info.excluded,
        used=info.used,
        total=len(results),
        planned=max(record.trials_planned or 0, len(results)),
        infos=infos,
        notes={pair: caption(ranking, pair, i) for pair, i in infos.items()},
        mains=mains,
        surfaces=fitted,
        scale=shared_scale(infos.values(), direction),
        tradeoffs=tradeoffs(_budget(results, full_budget_only), metric, direction, tuple(params)),
        estimate=estimate,
        curves=cell_curves(results, curves, lead, metric, record.metric.name, full_budget_only),
    )


def _budget(results: pd.DataFrame, full_budget_only: bool) -> pd.DataFrame:
    """The trials a report draws from: with `full_budget_only`, those of the full budget."""
    if not full_budget_only or "epochs" not in results.columns or results.empty:
        return results
    return results[results["epochs"] == results["epochs"].max()]


def _best_facts(
    best: pd.Series | None, record: StudyRecord, params: list[str], metric: str
) -> dict[str, Any]:
    if best is None:
        return {}
    objective = record.objective_column
    return {
        "trial_id": str(best.get("trial_id", "")),
        "params": {name: best[name] for name in params},
        "objective": objective,
        "direction": record.direction,
        "value": float(best[objective]),
        "metric_value": float(best[metric]) if metric in best.index else float("nan"),
    }


def write_report(
    study: Study,
    folder: Path,
    x: str | None = None,
    y: str | None = None,
    metric: str | None = None,
    agg: str | None = None,
    full_budget_only: bool = False,
) -> list[Path]:
    """Write the heatmap PNGs, pairs.png, tradeoff.png, curves.png (the lead pair's learning
    curves, where the study kept them), report.pdf (one A4 page) and report.md as one set.

    The set replaces `folder`'s content in one step (`files.publish`): a reader, or a report
    stopped midway, sees the old set or the new one, never a mix or a half-written file.

    Returns:
        The files written, heatmaps first.
    """
    content = report_content(study, x, y, metric, agg, full_budget_only)
    record, results, params = study.record, study.results, list(study.record.params)

    def build(staging: Path) -> list[Path]:
        from hypertune.report.estimate_plot import estimate_path, write_estimate
        from hypertune.report.layout import write_page
        from hypertune.report.markdown import write_markdown

        written = []
        marked = _best_levels(content)
        for (px, py), info in content.infos.items():
            path = heatmap_path(staging, px, py) if py else staging / f"heatmap_{px}.png"
            note = content.notes.get((px, py), "")
            note = "\n".join(filter(None, (note, content.scale.note(content.direction))))
            written.append(
                write_heatmap(info, path, content.direction, note=note, limits=content.limits,
                              best_trial=marked.get((px, py)),
                              surface=content.surfaces.get((px, py)) if py else None)
            )  # fmt: skip
        if len(params) >= 2:
            pair_infos = {
                (px, py): content.infos.get((px, py))
                or heatmap_info(results, px, py, content.metric, content.agg, full_budget_only)
                for px, py in itertools.combinations(params, 2)
            }
            written.append(write_pairs(pair_infos, params, staging / PAIRS_FILE, content.direction))
        if content.tradeoffs:
            written.append(write_tradeoffs(content.tradeoffs, staging / TRADEOFF_FILE))
        if content.estimate is not None:
            x_name, y_name = content.estimate.x.name, content.estimate.y.name
            written.append(write_estimate(content.estimate, estimate_path(staging, x_name, y_name),
                                          content.direction, content.limits))  # fmt: skip
        if content.curves is not None:
            written.append(write_cell_curves(content.curves, staging / CURVES_PNG))
        written.append(write_page(content, staging / "report.pdf"))
        written.append(write_markdown(content, staging / "report.md", written))
        return written

    return publish(folder, build, record.name)


def _best_levels(content: ReportContent) -> dict[tuple[str, str | None], tuple[Any, Any]]:
    """For each heatmap, the (x, y) values of the best trial (None for a one-row heatmap)."""
    values = content.best.get("params", {})
    from hypertune.report.frame import ALL_TRIALS

    return {
        (px, py): (values.get(px), values.get(py) if py else ALL_TRIALS)
        for px, py in content.infos
        if px in values
    }


def best_line(content: ReportContent, digits: int) -> str:
    """'trial t003 by valid_loss_best (lower is better): lr=0.01, ... -> valid_loss_best = 0.1'"""
    best = content.best
    if not best:
        return "no finished trial"
    params = ", ".join(f"{k}={value_text(v)}" for k, v in best["params"].items())
    better = "lower is better" if best["direction"] == "min" else "higher is better"
    text = (
        f"trial {best['trial_id']} by the objective {best['objective']} ({better}): {params}"
        f" -> {best['objective']} = {best['value']:.{digits}g}"
    )
    if content.metric != best["objective"] and np.isfinite(best["metric_value"]):
        text += f", {content.metric} = {best['metric_value']:.{digits}g}"
    return text


def value_text(value: Any) -> str:
    """A parameter's value as the page and the CLI print it: 4 significant digits, and whole
    numbers (read back from results.csv as floats) as integers."""
    if isinstance(value, float | np.floating) and not isinstance(value, bool):
        number = float(value)
        return str(int(number)) if number.is_integer() and abs(number) < 1e15 else f"{number:.4g}"
    return str(value)


def _question(lead: tuple[str, str | None], metric: str) -> str:
    x, y = lead
    if y is None:
        return f"How does {x} change {metric}?"
    return f"How do {x} and {y} interact on {metric}?"


def _objective_meaning(record: StudyRecord) -> str:
    """What a best-epoch objective is, where it is one: chosen on the data it is scored on."""
    metric = record.metric
    if metric.mode == "last":
        return ""
    split = "training" if metric.name == "train_loss" else "validation"
    name = metric.name.replace("valid_", "").replace("train_", "")
    chosen = "" if split == "training" else ", chosen on the validation set itself"
    return f" (the best epoch's {split} {name}{chosen})"


def setup_text(record: StudyRecord, total: int) -> str:
    """'Data digits-seq (1438 train / 359 valid) · model gru · grid search, ...': the page's
    setup line (`total`: the trials that ran)."""
    study, model = record.config.get("study", {}), record.config.get("model", {})
    data = record.data
    data_text = str(data.get("name", study.get("data", "?")))
    if "train" in data:
        data_text += f" ({data['train']} train / {data.get('valid', '?')} valid)"
    planned = record.trials_planned if record.trials_planned is not None else total
    return (
        f"Data {data_text} · model {model.get('architecture', '?')} · {record.search} search,"
        f" objective {record.metric}{_objective_meaning(record)} · "
        f"{study.get('epochs', '?')} epochs per trial · "
        f"{total} of {planned} trials ran · "
        f"{record.seeds} seed{'s' if record.seeds != 1 else ''}"
    )
