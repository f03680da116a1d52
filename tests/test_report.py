"""The heatmap pivot, asserted as exact frames on small hand-built results."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from hypertune.errors import ReportError
from hypertune.report import heatmap_frame, heatmap_info, is_log_spaced, plot_heatmap
from hypertune.report.plot import axis_label, caption_text


def results(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["trial_id", "status", "a", "b", "loss", "epochs"])


def expected(values: list[list[float]], index: list, columns: list) -> pd.DataFrame:
    frame = pd.DataFrame(
        values, index=pd.Index(index, name="b"), columns=pd.Index(columns, name="a")
    )
    return frame.astype(float)


def test_pivot_sorts_axes_and_leaves_missing_cells_empty() -> None:
    frame = results(
        [
            ("t1", "TERMINATED", 2, 20, 0.5, 3),
            ("t2", "TERMINATED", 1, 20, 0.25, 3),
            ("t3", "TERMINATED", 1, 10, 0.75, 3),
        ]
    )
    got = heatmap_frame(frame, "a", "b", "loss")
    assert_frame_equal(got, expected([[0.75, np.nan], [0.25, 0.5]], [10, 20], [1, 2]))


def test_repeats_are_aggregated_as_asked() -> None:
    frame = results(
        [
            ("t1", "TERMINATED", 1, 10, 1.0, 2),
            ("t2", "TERMINATED", 1, 10, 3.0, 2),
            ("t3", "TERMINATED", 1, 10, 8.0, 2),
        ]
    )
    assert heatmap_frame(frame, "a", "b", "loss", agg="mean").iat[0, 0] == 4.0
    assert heatmap_frame(frame, "a", "b", "loss", agg="median").iat[0, 0] == 3.0
    assert heatmap_frame(frame, "a", "b", "loss", agg="min").iat[0, 0] == 1.0
    info = heatmap_info(frame, "a", "b", "loss")
    assert info.counts.iat[0, 0] == 3
    assert info.std.iat[0, 0] == pytest.approx(np.std([1.0, 3.0, 8.0], ddof=1))


def test_errored_and_nonfinite_trials_are_counted_not_drawn() -> None:
    frame = results(
        [
            ("t1", "TERMINATED", 1, 10, 0.5, 2),
            ("t2", "ERROR", 2, 10, np.nan, 0),
            ("t3", "NAN", 2, 10, np.nan, 1),
            ("t4", "TERMINATED", 2, 10, np.inf, 2),
        ]
    )
    info = heatmap_info(frame, "a", "b", "loss")
    assert_frame_equal(info.values, expected([[0.5]], [10], [1]))
    assert info.used == 1
    assert info.excluded == {"error": 1, "nan": 1, "non-finite": 1}


def test_mixed_budgets_are_refused_with_counts_or_filtered() -> None:
    frame = results(
        [
            ("t1", "TERMINATED", 1, 10, 0.5, 5),
            ("t2", "TERMINATED", 2, 10, 0.4, 5),
            ("t3", "TERMINATED", 2, 10, 0.9, 2),
        ]
    )
    with pytest.raises(ReportError, match=r"1 trial\(s\) with 2 epochs, 2 trial\(s\) with 5"):
        heatmap_frame(frame, "a", "b", "loss")
    info = heatmap_info(frame, "a", "b", "loss", full_budget_only=True)
    assert_frame_equal(info.values, expected([[0.5, 0.4]], [10], [1, 2]))
    assert info.excluded == {"short budget": 1}


def test_unknown_column_lists_parameters_and_metrics() -> None:
    frame = results([("t1", "TERMINATED", 1, 10, 0.5, 1)]).rename(columns={"loss": "valid_loss"})
    with pytest.raises(
        ReportError,
        match=r"unknown column\(s\) zeta; available: parameters a, b; metrics valid_loss",
    ):
        heatmap_frame(frame, "zeta", "b", "valid_loss")


def test_plot_renders_to_png() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frame = results([("t1", "TERMINATED", 1, 10, 0.5, 1), ("t2", "TERMINATED", 2, 20, 0.7, 1)])
    fig, ax = plt.subplots()
    plot_heatmap(heatmap_info(frame, "a", "b", "loss"), ax, direction="min")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    assert buffer.getvalue().startswith(b"\x89PNG")


@pytest.mark.parametrize(
    ("values", "log"),
    [
        ([8, 16, 32, 64], True),
        ([1e-4, 1e-3, 1e-2, 1e-3], True),
        ([10, 46, 215, 1000], True),  # rounded log-spaced integers
        ([1, 2, 3], False),
        ([0.1, 0.2, 0.3, 0.4], False),
        ([1, 2], False),  # two levels say nothing about spacing
        ([0, 1, 10, 100], False),
        (["relu", "gelu", "tanh"], False),
        (list(np.geomspace(1e-5, 1e-1, 20)), True),  # many values spanning decades
        (list(np.linspace(1, 50, 20)), False),
    ],
)
def test_log_spacing_is_detected(values: list, log: bool) -> None:
    assert is_log_spaced(pd.Series(values)) is log


def test_continuous_values_are_cut_into_stated_quantile_bins() -> None:
    lrs = np.geomspace(1e-4, 1e-1, 10)
    frame = results([(f"t{n}", "TERMINATED", lr, 10, float(n), 1) for n, lr in enumerate(lrs)])
    info = heatmap_info(frame, "a", "b", "loss")
    assert info.binned == ("a",)
    assert info.log_axes == ("a",)
    bins = info.values.columns
    assert len(bins) == 5
    assert list(info.counts.iloc[0]) == [2, 2, 2, 2, 2]
    assert list(info.values.iloc[0]) == [0.5, 2.5, 4.5, 6.5, 8.5]
    assert all(b.left < lr <= b.right for b, lr in zip(bins, lrs[1::2], strict=True))


def test_one_parameter_gives_a_one_row_frame() -> None:
    frame = results([("t1", "TERMINATED", 2, 10, 0.5, 1), ("t2", "TERMINATED", 1, 10, 0.7, 1)])
    info = heatmap_info(frame, "a", None, "loss")
    assert_frame_equal(
        info.values,
        pd.DataFrame(
            [[0.7, 0.5]],
            index=pd.Index(["all trials"], name="all trials"),
            columns=pd.Index([1, 2], name="a"),
        ),
    )


def test_caption_and_axis_labels_say_what_was_done() -> None:
    frame = results(
        [
            ("t1", "TERMINATED", 8, 1, 0.5, 1),
            ("t2", "TERMINATED", 16, 1, 0.4, 1),
            ("t3", "TERMINATED", 32, 2, 0.3, 1),
            ("t4", "ERROR", 32, 2, np.nan, 0),
        ]
    )
    info = heatmap_info(frame, "a", "b", "loss", agg="median")
    assert axis_label(info, "a") == "a (log scale)"
    assert axis_label(info, "b") == "b"
    assert caption_text(info) == "3 trials used, median per cell; excluded: 1 error"
