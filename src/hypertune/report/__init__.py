"""Heatmaps of one metric over two hyperparameters, from stored results only (no Ray).

`frame` is the pure data layer (which trials may be drawn, and their pivot), `interaction` (on
`anova`) tests every pair for interaction and gives it a verdict, `importance` ranks the
parameters' main effects from one fit, `surface` evaluates a pair's fitted model where the
heatmap bins its values, `plot` only draws (seaborn
for the cells), `layout` arranges the A4 page, `markdown` writes its text twin, and `page`
composes everything into reports/<study>/ as one set (`files`): one PNG per pair, pairs.png,
report.pdf (one A4 page) and report.md.
"""

from hypertune.report.frame import (
    AGGREGATES,
    HeatmapInfo,
    heatmap_frame,
    heatmap_info,
    is_log_spaced,
    main_effect,
    metric_bounds,
    searched_params,
    usable_trials,
)
from hypertune.report.importance import main_effects
from hypertune.report.interaction import interaction_scores
from hypertune.report.page import best_trial, report_content, value_text, write_report
from hypertune.report.plot import heatmap_path, plot_heatmap, write_heatmap, write_pairs

__all__ = [
    "AGGREGATES",
    "HeatmapInfo",
    "best_trial",
    "heatmap_frame",
    "heatmap_info",
    "heatmap_path",
    "interaction_scores",
    "is_log_spaced",
    "main_effect",
    "main_effects",
    "metric_bounds",
    "plot_heatmap",
    "report_content",
    "searched_params",
    "usable_trials",
    "value_text",
    "write_heatmap",
    "write_pairs",
    "write_report",
]
