"""The page's one colour scale is chosen robustly: a failed configuration far below the rest
does not flatten the differences between the good ones; bins say which holds each edge."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from hypertune.report.frame import ColourScale, colour_scale
from hypertune.report.plot import ticks

GOOD = [0.89, 0.9, 0.91, 0.92, 0.93, 0.94, 0.95, 0.955]


def test_an_outlier_on_the_worse_side_cuts_the_scale_and_is_counted() -> None:
    scale = colour_scale([*GOOD, 0.14, float("nan")], "max")
    assert scale == ColourScale(0.89, 0.955, clipped=1, edge=0.89)
    assert "cut at 0.89: 1 cell lies below it" in scale.note("max")


def test_for_a_loss_the_worse_side_is_the_top() -> None:
    losses = [1 - v for v in GOOD]
    scale = colour_scale([*losses, 2.5], "min")
    assert scale.limits == (pytest.approx(0.045), pytest.approx(0.11))
    assert scale.clipped == 1 and "above it" in scale.note("min")
    # An outlier on the better side is a result, never cut.
    assert colour_scale([*losses, 0.0001], "min").clipped == 0


@pytest.mark.parametrize(
    "values",
    [GOOD, [0.14, *GOOD[:5]], [0.5] * 10, [0.1 * n for n in range(10)]],
    ids=["no outlier", "too few cells", "all equal", "spread evenly"],
)
def test_without_outliers_the_scale_covers_every_cell(values: list[float]) -> None:
    scale = colour_scale(values, "max")
    assert scale.clipped == 0 and scale.note("max") == ""
    assert scale.low <= min(values) and scale.high >= max(values)


def test_quantile_bins_say_which_bin_holds_each_edge() -> None:
    bins = pd.IntervalIndex.from_arrays([17.0, 26.0, 52.0], [26.0, 52.0, 128.0], closed="right")
    assert ticks(list(bins)) == ["[17, 26]", "(26, 52]", "(52, 128]"]
    assert ticks([8, 16]) == ["8", "16"]


def test_the_page_has_one_denominator_and_says_how_its_scale_was_cut(tmp_path: Path) -> None:
    import numpy as np
    from pypdf import PdfReader

    from hypertune.cli import main
    from hypertune.study.store import study_dir, write_results, write_study
    from test_report_page import study_record, trial

    rng = np.random.default_rng(0)
    rows = []
    for n in range(11):
        lr, hidden = [1e-4, 1e-3, 1e-2, 1e-1][n % 4], [8, 16, 32][n % 3]
        loss = 2.5 if lr == 1e-4 and hidden == 8 else 0.1 + 0.05 * rng.random()
        rows.append(trial(n, loss, lr=lr, hidden_size=hidden))
    path = study_dir(tmp_path / "runs", "s")
    path.mkdir(parents=True)
    write_study(path, study_record("s", ["lr", "hidden_size"], "random", trials_planned=16))
    write_results(path, rows, ["lr", "hidden_size"])
    out = tmp_path / "out"
    assert main(["report", "s", "--storage", str(tmp_path / "runs"), "--out", str(out)]) == 0
    text = (out / "s" / "report.md").read_text()
    assert "11 of 16 trials drawn (5 did not run)" in text
    assert "colour scale cut at" in text
    page = " ".join(PdfReader(out / "s" / "report.pdf").pages[0].extract_text().split())
    assert "11 of 16 trials ran" in page and "11 of 16 trials drawn" in page
    assert "chosen on the validation set itself" in page


def test_values_are_printed_as_the_page_prints_them() -> None:
    from hypertune.report import value_text

    assert value_text(0.047349893044994734) == "0.04735"
    assert value_text(2.0) == "2"  # a whole number read back from results.csv
    assert value_text(64) == "64" and value_text("relu") == "relu" and value_text(True) == "True"
