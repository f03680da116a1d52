"""The model estimate of a sparse search's lead pair: how well it recovers a planted surface,
when it is drawn, and that it is always labelled an estimate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hypertune.report import report_content
from hypertune.report.estimate import MIN_TRIALS, gp_estimate, is_sparse
from hypertune.report.frame import heatmap_info
from hypertune.study.store import study_dir
from hypertune.study.stored import Study
from test_report_page import check_one_a4_page, make_study, report, study_record, trial

PARAMS = ["lr", "hidden_size", "dropout"]


def truth(lr: np.ndarray, hidden: np.ndarray) -> np.ndarray:
    """A bowl along log10(lr), tilted by hidden_size where lr is high; dropout does nothing."""
    u, v = (np.log10(lr) + 4) / 3, (hidden - 8) / 120
    return 0.3 + 0.4 * (u - 0.6) ** 2 + 0.2 * v * u


def sampled(n: int, seed: int, noise: float = 0.01) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    lr, hidden = 10 ** rng.uniform(-4, -1, n), rng.integers(8, 129, n)
    loss = truth(lr, hidden) + noise * rng.standard_normal(n)
    rows = [trial(i, float(loss[i]), lr=float(lr[i]), hidden_size=int(hidden[i]),
                  dropout=float(rng.uniform(0, 0.5))) for i in range(n)]  # fmt: skip
    return pd.DataFrame(rows)


def test_the_estimate_recovers_a_planted_surface_and_its_interval_covers_it() -> None:
    coverage, errors = [], []
    for seed in range(10):
        estimate = gp_estimate(sampled(20, seed), "valid_loss", PARAMS, "lr", "hidden_size")
        assert estimate is not None and estimate.x.log and not estimate.y.log
        assert estimate.trials == 20 and estimate.mean.shape == (25, 25)
        lr, hidden = np.meshgrid(10**estimate.x.grid, estimate.y.grid)
        true = truth(lr, hidden)
        coverage.append(((estimate.low <= true) & (true <= estimate.high)).mean())
        errors.append(np.sqrt(((estimate.mean - true) ** 2).mean()))
    # The surface spans 0.3 to 0.56; 20 trials with noise 0.01 pin it to a few hundredths.
    assert np.mean(errors) < 0.03, errors
    assert np.mean(coverage) >= 0.85, coverage  # measured 0.90: docs/report.md


def test_a_parameter_that_does_nothing_leaves_the_estimate_flat_along_it() -> None:
    frame = sampled(24, 0, noise=0.005)
    frame["valid_loss"] = 0.3 + 0.4 * ((np.log10(frame["lr"]) + 4) / 3 - 0.6) ** 2
    estimate = gp_estimate(frame, "valid_loss", PARAMS, "lr", "hidden_size")
    assert estimate is not None
    along_lr = np.ptp(estimate.mean, axis=1).mean()  # rows run along x = lr
    along_hidden = np.ptp(estimate.mean, axis=0).mean()
    assert along_hidden < 0.1 * along_lr, (along_hidden, along_lr)


def test_no_estimate_without_two_numbers_or_enough_trials() -> None:
    frame = sampled(20, 1)
    frame["cell"] = np.where(frame["hidden_size"] > 64, "gru", "lstm")
    params = [*PARAMS, "cell"]
    assert gp_estimate(frame, "valid_loss", params, "lr", "cell") is None
    # A flag, or a number of two values, has nothing between its trials to estimate.
    frame["batchnorm"] = frame["hidden_size"] > 64
    frame["layers"] = np.where(frame["dropout"] > 0.25, 1, 2)
    for two in ("batchnorm", "layers"):
        assert gp_estimate(frame, "valid_loss", [*params, two], "lr", two) is None
    few = frame.head(MIN_TRIALS - 1)
    assert gp_estimate(few, "valid_loss", params, "lr", "hidden_size") is None
    # Nor fewer than PER_FEATURE trials per fitted feature (lr, hidden_size, dropout, 2 cells).
    assert gp_estimate(frame.head(14), "valid_loss", params, "lr", "hidden_size") is None
    assert gp_estimate(frame.head(15), "valid_loss", params, "lr", "hidden_size") is not None
    # Nor where every trial measured the same.
    flat = frame.assign(valid_loss=0.5)
    assert gp_estimate(flat, "valid_loss", params, "lr", "hidden_size") is None
    # A category among the other parameters is averaged over, one-hot.
    assert gp_estimate(frame, "valid_loss", params, "lr", "hidden_size") is not None
    estimate = gp_estimate(frame, "valid_loss", [*params, "batchnorm"], "lr", "hidden_size")
    assert estimate is not None  # ... and a flag too
    # Failed trials are not fitted.
    frame.loc[:3, "status"] = "ERROR"
    estimate = gp_estimate(frame, "valid_loss", params, "lr", "hidden_size")
    assert estimate is not None and estimate.trials == 16


def test_the_interval_stays_within_what_the_metric_can_take() -> None:
    frame = sampled(20, 2, noise=0.05)
    frame["accuracy"] = np.clip(1.3 - frame["valid_loss"], 0.0, 1.0)  # many trials at 1.0
    estimate = gp_estimate(frame, "accuracy", PARAMS, "lr", "hidden_size")
    assert estimate is not None
    assert (estimate.mean + estimate.half).max() > 1.0  # the model's own interval leaves it
    assert estimate.high.max() <= 1.0 and estimate.low.min() >= 0.0


def test_sparse_means_most_cells_empty_or_fewer_trials_than_cells() -> None:
    grid = pd.DataFrame(
        [trial(n, 0.1 * n, a=a, b=b) for n, (a, b) in enumerate([(1, 1), (1, 2), (2, 1), (2, 2)])]
    )
    assert not is_sparse(heatmap_info(grid, "a", "b", "valid_loss"))
    # 3 of 4 cells filled, but 3 trials for 4 cells
    assert is_sparse(heatmap_info(grid.head(3), "a", "b", "valid_loss"))
    dense = sampled(60, 2)
    assert not is_sparse(heatmap_info(dense, "lr", "hidden_size", "valid_loss"))
    assert is_sparse(heatmap_info(dense.head(12), "lr", "hidden_size", "valid_loss"))


def test_a_sparse_bayes_study_draws_the_estimate_and_says_it_is_one(tmp_path: Path) -> None:
    rows = sampled(16, 3).to_dict("records")
    make_study(tmp_path / "runs", "few", rows, PARAMS, search="bayes")
    assert report(tmp_path, "few", "--x", "lr", "--y", "hidden_size") == 0
    out = tmp_path / "out" / "few"
    check_one_a4_page(out / "report.pdf")
    assert (out / "estimate_lr__hidden_size.png").stat().st_size > 10_000
    assert (out / "heatmap_lr__hidden_size.png").exists()  # the measured cells stay
    text = (out / "report.md").read_text()
    assert "## lr x hidden_size between the trials: a model estimate" in text
    assert "![valid_loss_best: model estimate, not measured](estimate_lr__hidden_size.png)" in text
    assert "- [estimate_lr__hidden_size.png]" not in text  # not listed as a heatmap


@pytest.mark.parametrize(("search", "n", "drawn"), [("grid", 16, False), ("random", 16, True),
                                                    ("random", 80, False)])  # fmt: skip
def test_only_a_sparse_non_grid_study_gets_an_estimate(
    tmp_path: Path, search: str, n: int, drawn: bool
) -> None:
    rows = sampled(n, 4).to_dict("records")
    record = study_record("s", PARAMS, search, trials_planned=n)
    make_study(tmp_path, "s", rows, PARAMS, search=search)
    results = pd.read_csv(study_dir(tmp_path, "s") / "results.csv")
    content = report_content(Study(record, results), "lr", "hidden_size")
    assert (content.estimate is not None) == drawn
