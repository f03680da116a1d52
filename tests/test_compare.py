"""`compare A B`: B − A per cell with Welch intervals, the level shift, both studies' verdicts
and the agreement of their rankings, on hand-built studies whose numbers are known."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from hypertune.cli import main
from hypertune.errors import ReportError
from hypertune.report.compare import comparison
from hypertune.report.compare_files import differences
from hypertune.study.store import read_results, read_study
from hypertune.study.stored import Study
from test_report_page import make_study, study_record, trial

# Two seeds per cell; B's losses are A's plus 0.1 at hidden_size 8, plus 0.3 at 16.
A_LOSS = {(8, 1): (1.0, 1.2), (8, 2): (0.8, 0.9), (16, 1): (0.5, 0.7), (16, 2): (0.4, 0.4)}
B_SHIFT = {8: 0.1, 16: 0.3}


def _rows(losses: dict[tuple[int, int], tuple[float, ...]], shift: dict[int, float]) -> list[dict]:
    rows = []
    for (hidden, layers), values in losses.items():
        for value in values:
            loss = value + shift.get(hidden, 0.0)
            rows.append(trial(len(rows), loss, hidden_size=hidden, num_layers=layers))
    return rows


def _study(name: str, rows: list[dict], params: list[str]) -> Study:
    return Study(study_record(name, params, seeds=2), pd.DataFrame(rows))


def _welch(b: np.ndarray, a: np.ndarray) -> tuple[float, float]:
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = stats.t.ppf(0.975, df) * math.sqrt(va + vb)
    return b.mean() - a.mean() - half, b.mean() - a.mean() + half


def test_each_cell_is_b_minus_a_with_its_welch_interval_and_the_shift_over_cells() -> None:
    params = ["hidden_size", "num_layers"]
    a = _study("a", _rows(A_LOSS, {}), params)
    b = _study("b", _rows(A_LOSS, B_SHIFT), params)
    result = comparison(a, b, metric="valid_loss")
    assert (result.x, result.y, result.direction) == ("hidden_size", "num_layers", "min")
    cells = result.cells.set_index(["x", "y"])
    assert cells["diff"].to_dict() == pytest.approx(
        {(8, 1): 0.1, (8, 2): 0.1, (16, 1): 0.3, (16, 2): 0.3}
    )
    # A shift alone keeps each cell's spread: the interval is Welch's with equal variances.
    low, high = _welch(np.array([1.1, 1.3]), np.array([1.0, 1.2]))
    assert cells.loc[(8, 1), ["low", "high"]].tolist() == pytest.approx([low, high])
    # Cell (16, 2) has no spread in either study: no interval, rather than one of width 0.
    assert math.isnan(cells.loc[(16, 2), "low"])
    mean, low, high, count = result.shift
    diffs = np.array([0.1, 0.1, 0.3, 0.3])
    half = stats.t.ppf(0.975, 3) * diffs.std(ddof=1) / 2
    assert (mean, low, high, count) == pytest.approx((0.2, 0.2 - half, 0.2 + half, 4))
    assert result.grid("diff").loc[2, 16] == pytest.approx(0.3)  # rows y, columns x


def test_cells_either_study_lacks_stay_empty_and_disjoint_axes_are_refused() -> None:
    params = ["hidden_size", "num_layers"]
    a = _study("a", _rows(A_LOSS, {}), params)
    wider = {**A_LOSS, (32, 1): (0.2, 0.3)}
    b = _study("b", _rows(wider, B_SHIFT), params)
    result = comparison(a, b, metric="valid_loss")
    assert list(result.infos[0].values.columns) == [8, 16, 32]  # one grid for both
    assert math.isnan(result.grid("diff").loc[1, 32]) and result.infos[0].counts.loc[1, 32] == 0
    assert result.infos[1].counts.loc[1, 32] == 2 and result.shift[3] == 4
    other = _study("c", _rows({(64, 1): (0.5, 0.6), (64, 2): (0.5, 0.6)}, {}), params)
    with pytest.raises(ReportError, match=r"share no values of hidden_size \(a: 8, 16; c: 64\)"):
        comparison(a, other, metric="valid_loss")
    diagonal = _study("d", _rows({(8, 2): (1.0, 1.0), (16, 1): (1.0, 1.0)}, {}), params)
    half = _study("h", _rows({(8, 1): (1.0, 1.0), (16, 2): (1.0, 1.0)}, {}), params)
    with pytest.raises(ReportError, match="no cell that both ran"):
        comparison(diagonal, half, metric="valid_loss")
    lone = _study("l", _rows({(8, 1): (1.0,)}, {}), ["lr"])
    with pytest.raises(ReportError, match="searched no parameter in common"):
        comparison(a, lone)


def test_verdicts_side_by_side_and_the_rank_agreement_of_main_effects() -> None:
    # Three parameters, each with a clear main effect of its own size, and some noise.
    rng = np.random.default_rng(3)
    params = ["lr", "hidden_size", "dropout"]

    def rows(sizes: tuple[float, float, float]) -> list[dict]:
        out = []
        for lr in (0.001, 0.01):
            for hidden in (8, 16):
                for dropout in (0.0, 0.5):
                    for _ in range(2):
                        loss = sizes[0] * (lr == 0.01) + sizes[1] * (hidden == 16)
                        loss += sizes[2] * (dropout == 0.5) + 0.02 * rng.standard_normal()
                        out.append(trial(len(out), 1 + loss, lr=lr, hidden_size=hidden,
                                         dropout=dropout))  # fmt: skip
        return out

    a = _study("a", rows((1.0, 0.5, 0.2)), params)
    same = _study("b", rows((2.0, 0.6, 0.1)), params)
    reverse = _study("r", rows((0.1, 0.5, 1.0)), params)
    agrees = comparison(a, same, "lr", "hidden_size", "valid_loss")
    assert agrees.mains["parameter"].tolist() == ["lr", "hidden_size", "dropout"]  # A's order
    assert agrees.agreement[0] == pytest.approx(1.0) and agrees.agreement[2] == 3
    assert comparison(a, reverse, "lr", "hidden_size", "valid_loss").agreement[0] == -1.0
    verdicts = agrees.verdicts.set_index("pair")
    assert set(verdicts.index) == {"hidden_size x lr", "dropout x lr", "dropout x hidden_size"}
    assert {"verdict_a", "verdict_b", "interaction_a", "interaction_b"} <= set(verdicts.columns)


def test_compare_writes_its_set_and_refuses_what_it_cannot_compare(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "runs"
    params = ["hidden_size", "num_layers"]
    make_study(runs, "a", _rows(A_LOSS, {}), params, seeds=2)
    make_study(runs, "b", _rows(A_LOSS, B_SHIFT), params, seeds=2)
    folders = ["--storage", str(runs), "--out", str(tmp_path / "out")]
    assert main(["compare", "a", "b", *folders]) == 0
    out = tmp_path / "out" / "a-vs-b"
    assert sorted(p.name for p in out.iterdir()) == [
        ".hypertune-report.json",
        "compare.md",
        "compare.png",
    ]
    text = (out / "compare.md").read_text()
    assert "**Question:** Did valid_loss_best over hidden_size x num_layers change" in text
    assert "| 8 | 1 | 1.1 (2) | 1.2 (2) | +0.1 |" in text
    assert "b − a of valid_loss_best averages +0.2 (95% " in text
    assert "b is worse on the whole." in text  # a loss, higher in every cell beyond the spread
    capsys.readouterr()
    # A report of study a where the comparison would go is not replaced.
    assert main(["report", "a", "--storage", str(runs), "--out", str(tmp_path / "out")]) == 0
    (tmp_path / "out" / "a").rename(tmp_path / "out" / "a-vs-c")
    make_study(runs, "c", _rows({(64, 1): (0.5, 0.6)}, {}), params, seeds=2)
    capsys.readouterr()
    for args, message in [
        (["a", "c"], "holds the report of study 'a'"),
        (["a", "b", "--x", "num_layers"], "--x and --y go together"),
        (["a", "a"], "A and B are both 'a'"),
        (["a", "nope"], "nope"),
        (["b", "c"], "share no values of hidden_size"),
    ]:
        assert main(["compare", *args, *folders]) == 2, args
        err = capsys.readouterr().err.strip()
        assert err.startswith("error:") and message in err and "\n" not in err, err


def test_what_differs_between_the_study_files_is_named() -> None:
    a = study_record("a", ["lr"])
    config = {**a.config, "model": {**a.config["model"], "dropout": 0.3}}
    b = study_record("b", ["lr"])
    b = type(b)(**{**b.__dict__, "config": config})
    empty = pd.DataFrame()
    assert differences(Study(a, empty), Study(b, empty)) == "model.dropout: (default) -> 0.3."
    assert differences(Study(a, empty), Study(a, empty)).startswith("nothing in the study files")


@pytest.mark.slow
def test_compare_two_real_studies(tmp_path: Path) -> None:
    from conftest import TINY_STUDY, run_cli

    (tmp_path / "tiny.toml").write_text(TINY_STUDY)
    for name, extra in (("plain", []), ("drop", ["--param", "dropout=0.5"])):
        done = run_cli("run", "tiny.toml", "--name", name, *extra, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    done = run_cli("compare", "plain", "drop", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "reports" / "plain-vs-drop" / "compare.md").read_text()
    a, b = (read_results(tmp_path / "runs", n) for n in ("plain", "drop"))
    metric = str(read_study(tmp_path / "runs", "plain").report_settings.get("metric", ""))
    metric = metric or "valid_loss_best"
    assert f"Did {metric} over" in text and "model.dropout: (default) -> 0.5" in text
    for row in a.merge(b, on=["num_layers", "hidden_size"]).itertuples():
        diff = getattr(row, f"{metric}_y") - getattr(row, f"{metric}_x")
        assert f"| {diff:+.4g} |" in text
