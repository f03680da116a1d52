"""The lead pair's learning curves (curves.png) and each cell's convergence costs (report.md)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hypertune.report import report_content
from hypertune.report.curves import cell_curves, curve_metric
from hypertune.study.curves import curve_row, write_curves
from hypertune.study.store import study_dir
from hypertune.study.stored import Study
from test_report_page import make_study, report, study_record, trial


def _study(seeds: int = 2) -> tuple[list[dict], list[dict]]:
    """A 2x2 grid (hidden_size x num_layers) with `seeds` seeds and 3 epochs each: the loss
    of trial n at epoch e is (n + 1) / e; an ERROR trial whose curve is never drawn."""
    rows, curves = [], []
    cells = [(h, layers) for h in (8, 32) for layers in (1, 2)]
    for n, (hidden, layers) in enumerate([c for c in cells for _ in range(seeds)]):
        row = trial(n, (n + 1) / 3, hidden_size=hidden, num_layers=layers)
        row |= {"parameters": 10.0 * hidden * layers, "epochs_to_within_5pct": 3.0 - n % 2}
        rows.append(row)
        for epoch in (1, 2, 3):
            loss = (n + 1) / epoch
            curves.append(curve_row(row["trial_id"], epoch, {"valid_loss": loss}))
    rows.append(trial(99, 0.01, status="ERROR", hidden_size=8, num_layers=1))
    curves.append(curve_row("t099", 1, {"valid_loss": 0.01}))
    return rows, curves


def test_each_cell_is_the_mean_and_range_of_its_trials_epoch_by_epoch() -> None:
    rows, curves = _study()
    view = cell_curves(
        pd.DataFrame(rows), pd.DataFrame(curves), ("hidden_size", "num_layers"),
        "valid_loss_best", "valid_loss",
    )  # fmt: skip
    assert view is not None and view.metric == "valid_loss" and view.direction == "min"
    table = view.curves.set_index(["x", "y", "epoch"])
    assert len(table) == 4 * 3  # the ERROR trial's epoch is not drawn
    # Cell (8, 1) holds trials 0 and 1: losses 1 and 2 at epoch 1, 0.5 and 1 at epoch 2.
    assert table.loc[(8, 1, 1)].tolist() == [1.5, 1.0, 2.0, 2]
    assert table.loc[(8, 1, 2)].tolist() == [0.75, 0.5, 1.0, 2]
    assert table.loc[(32, 2, 3), "mean"] == pytest.approx((7 + 8) / 2 / 3)
    costs = view.costs.set_index(["x", "y"])
    assert costs.loc[(32, 2)].to_dict() == {
        "trials": 2,
        "valid_loss_best": pytest.approx((7 + 8) / 2 / 3),
        "parameters": 640.0,
        "epochs_to_within_5pct": 2.5,
    }


def test_curves_follow_the_report_metric_and_a_cost_shows_the_objectives() -> None:
    assert curve_metric("accuracy_best", "valid_loss") == "accuracy"
    assert curve_metric("valid_loss", "valid_loss") == "valid_loss"
    assert curve_metric("parameters", "valid_loss") == "valid_loss"
    rows, curves = _study(seeds=1)
    frame = pd.DataFrame(rows)
    # No curves kept (a study from before they were), or none for the drawn trials: no view.
    assert cell_curves(frame, pd.DataFrame(columns=["trial_id"]), ("hidden_size", None),
                       "valid_loss", "valid_loss") is None  # fmt: skip
    none_drawn = pd.DataFrame([curve_row("elsewhere", 1, {"valid_loss": 1.0})])
    assert cell_curves(frame, none_drawn, ("hidden_size", None), "valid_loss", "valid_loss") is None
    # One parameter: one panel, its levels as the colours (and the cells).
    view = cell_curves(frame, pd.DataFrame(curves), ("hidden_size", None), "parameters",
                       "valid_loss")  # fmt: skip
    assert view is not None and view.y is None and view.levels("x") == [8, 32]
    assert view.costs["trials"].tolist() == [2, 2]


def test_a_binned_axis_groups_its_curves_as_the_heatmap_groups_its_cells() -> None:
    rng = np.random.default_rng(0)
    rows = [trial(n, float(rng.uniform(0.1, 1)), lr=float(10 ** rng.uniform(-4, -1)),
                  hidden_size=8 * (1 + n % 2)) for n in range(20)]  # fmt: skip
    curves = [curve_row(r["trial_id"], 1, {"valid_loss": r["valid_loss"]}) for r in rows]
    view = cell_curves(pd.DataFrame(rows), pd.DataFrame(curves), ("lr", "hidden_size"),
                       "valid_loss", "valid_loss")  # fmt: skip
    assert view is not None
    content = report_content(Study(study_record("b", ["lr", "hidden_size"]), pd.DataFrame(rows)))
    heatmap = content.infos[("lr", "hidden_size")]
    assert view.levels("x") == list(heatmap.values.columns)  # the same 5 quantile bins
    drawn = view.curves.set_index(["x", "y"])["trials"]
    counts = heatmap.counts.stack()  # (y, x) -> trials
    assert {(x, y): int(n) for (x, y), n in drawn.items()} == {
        (x, y): int(n) for (y, x), n in counts.items() if n
    }


def test_report_draws_curves_where_the_study_kept_them(tmp_path: Path) -> None:
    rows, curves = _study()
    make_study(tmp_path / "runs", "kept", rows, ["hidden_size", "num_layers"], seeds=2)
    assert report(tmp_path, "kept") == 0
    out = tmp_path / "out" / "kept"
    assert not (out / "curves.png").exists()  # no curves.csv: no picture, no section
    assert "converged" not in (out / "report.md").read_text()

    write_curves(study_dir(tmp_path / "runs", "kept"), curves)
    assert report(tmp_path, "kept") == 0
    assert (out / "curves.png").stat().st_size > 5000
    text = (out / "report.md").read_text()
    assert "## How fast each cell of hidden_size x num_layers converged" in text
    assert "![valid_loss epoch by epoch](curves.png)" in text
    header = "| hidden_size | num_layers | trials | valid_loss_best | parameters |"
    assert header + " epochs_to_within_5pct |" in text
    assert "| 32 | 2 | 2 | 2.5 | 640 | 2.5 |" in text  # (7/3 + 8/3) / 2, 10 * 32 * 2
    assert "curves.png" not in text.split("## More heatmaps")[1].split("##")[0]
