"""The one-page report from stored files alone: synthetic studies written the way a run writes
them, then `report` through the CLI; the PDF is checked with pypdf (and pdftoppm where present)."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pypdf import PdfReader

from hypertune.cli import main
from hypertune.config import Metric
from hypertune.report import best_trial
from hypertune.study.record import StudyRecord, StudyState
from hypertune.study.store import study_dir, write_results, write_study
from hypertune.study.stored import Study

A4_POINTS = (595.0, 842.0)  # 8.27 x 11.69 inches


def study_record(
    name: str,
    params: list[str],
    search: str = "grid",
    seeds: int = 1,
    trials_planned: int | None = None,
    architecture: str = "gru",
    mode: str = "min",
) -> StudyRecord:
    """The study.json record of a finished study of valid_loss over `params`."""
    return StudyRecord(
        name=name,
        status=StudyState.FINISHED,
        config={
            "study": {"name": name, "data": "digits-seq", "epochs": 4, "search": search},
            "model": {"architecture": architecture},
            "space": {},
            "report": {},
        },
        metric=Metric("valid_loss", mode),
        search=search,
        seeds=seeds,
        params=params,
        data={"name": "digits-seq", "train": 1438, "valid": 359},
        trials_planned=trials_planned,
    )


def make_study(
    storage: Path,
    name: str,
    rows: list[dict[str, Any]],
    params: list[str],
    search: str = "grid",
    seeds: int = 1,
) -> None:
    """A study folder as `run` leaves it: study.json and results.csv."""
    record = study_record(name, params, search, seeds, trials_planned=len(rows))
    path = study_dir(storage, name)
    path.mkdir(parents=True)
    write_study(path, record)
    write_results(path, rows, params)


def trial(n: int, loss: float, epochs: int = 4, status: str = "TERMINATED", **params: Any) -> dict:
    return {
        "trial_id": f"t{n:03d}",
        "status": status,
        **params,
        "accuracy": 1 - loss / 3,
        "accuracy_best": 1 - loss / 3,
        "valid_loss": loss,
        "valid_loss_best": loss,
        "epochs": epochs,
        "seed": n % 3,
        "seconds": 1.0,
    }


def grid_rows(seeds: int = 1) -> list[dict[str, Any]]:
    """3 parameters; lr and hidden_size interact (a product), dropout only shifts the loss."""
    rng = np.random.default_rng(1)
    rows = []
    levels = itertools.product([1e-3, 1e-2, 1e-1], [8, 16, 32], [0.0, 0.5], range(seeds))
    for n, (lr, hidden, dropout, _) in enumerate(levels):
        loss = 1 + np.log10(lr) * np.log2(hidden) / 10 + dropout + 0.01 * rng.standard_normal()
        rows.append(trial(n, float(loss), lr=lr, hidden_size=hidden, dropout=dropout))
    return rows


def report(tmp_path: Path, name: str, *extra: str) -> int:
    folders = ["--storage", str(tmp_path / "runs"), "--out", str(tmp_path / "out")]
    return main(["report", name, *folders, *extra])


def check_one_a4_page(pdf: Path) -> None:
    reader = PdfReader(pdf)
    assert len(reader.pages) == 1
    box = reader.pages[0].mediabox
    assert (float(box.width), float(box.height)) == pytest.approx(A4_POINTS, abs=1.0)
    if shutil.which("pdftoppm"):  # poppler is optional; pypdf alone checks the page count
        done = subprocess.run(
            ["pdftoppm", "-png", "-r", "30", str(pdf), str(pdf.with_suffix(""))],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert pdf.with_name(pdf.stem + "-1.png").stat().st_size > 1000


def test_seeded_grid_report_is_one_page_and_matches_results(tmp_path: Path) -> None:
    make_study(
        tmp_path / "runs", "seeded", grid_rows(seeds=3), ["lr", "hidden_size", "dropout"], seeds=3
    )
    assert report(tmp_path, "seeded") == 0
    out = tmp_path / "out" / "seeded"
    names = sorted(p.name for p in out.glob("*.png"))
    assert names == [
        "heatmap_hidden_size__dropout.png",
        "heatmap_lr__dropout.png",
        "heatmap_lr__hidden_size.png",
        "pairs.png",
        "tradeoff.png",  # the metric against each trial's seconds
    ]
    check_one_a4_page(out / "report.pdf")

    text = (out / "report.md").read_text()
    results = pd.read_csv(tmp_path / "runs" / "seeded" / "results.csv", dtype={"trial_id": str})
    best = results.loc[results["valid_loss_best"].idxmin()]
    line = next(line for line in text.splitlines() if line.startswith("**Best trial:**"))
    assert f"trial {best['trial_id']} by the objective valid_loss_best" in line
    assert f"valid_loss_best = {best['valid_loss_best']:.6g}" in line
    # The fastest trial with the best metric heads the trade-off table: nothing cheaper beats it.
    fastest = results.sort_values(["seconds", "accuracy"], ascending=[True, False]).iloc[0]
    section = text.split("## What the trials cost", 1)[1].split("## Trials", 1)[0]
    rows = section.splitlines()
    first = rows[next(k for k, r in enumerate(rows) if r.startswith("|---")) + 1]
    assert first.startswith(f"| {fastest['trial_id']} |"), section
    assert "54 of 54 trials drawn; excluded: none." in text
    assert "54 of 54 trials ran · 3 seeds" in text
    # The product pair leads, and it is the only one that interacts.
    assert "How do lr and hidden_size interact on valid_loss_best?" in text
    assert "**Verdict:** 1 of 3 pairs interacts beyond noise" in text
    first = table_rows(text)[0]
    assert first[0] == "lr x hidden_size" and first[4] == "interacts"
    # One ranking of main effects, each parameter once, from one fit of all trials.
    mains = table_rows(text, "## Which parameters matter?")
    assert sorted(r[0] for r in mains) == ["dropout", "hidden_size", "lr"]
    assert [float(r[1]) for r in mains] == sorted((float(r[1]) for r in mains), reverse=True)
    assert {r[4] for r in mains} == {"two-way ANOVA"}
    for row in mains:
        low, high = map(float, row[2].split("–"))
        assert 0 <= low <= float(row[1]) <= high <= 1


def table_rows(text: str, section: str = "## Which pairs interact?") -> list[list[str]]:
    """A table of report.md (the interaction table by default), as lists of cells."""
    body = text.split(section)[1].split("\n\n")[2]
    return [[c.strip() for c in line.strip("|").split("|")] for line in body.splitlines()[2:]]


def test_random_search_bins_continuous_values_on_log_axes(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rows = []
    for n in range(30):
        lr = float(10 ** rng.uniform(-4, -1))
        hidden = int(rng.integers(8, 129))
        rows.append(
            trial(n, float(1 + np.log10(lr) ** 2 / 10 - hidden / 500), lr=lr, hidden_size=hidden)
        )
    rows.append(trial(30, float("nan"), status="ERROR", lr=0.01, hidden_size=16))
    make_study(tmp_path / "runs", "rand", rows, ["lr", "hidden_size"], search="random")
    assert report(tmp_path, "rand") == 0
    out = tmp_path / "out" / "rand"
    check_one_a4_page(out / "report.pdf")
    text = (out / "report.md").read_text()
    assert "binned: lr, hidden_size (quantile bins)" in text
    assert "log-spaced: lr" in text
    assert "30 of 31 trials drawn; excluded: 1 error." in text


def test_single_parameter_gets_a_one_row_heatmap(tmp_path: Path) -> None:
    rows = [trial(n, 1.0 / (n + 1), lr=lr) for n, lr in enumerate([1e-3, 1e-2, 1e-1])]
    make_study(tmp_path / "runs", "one", rows, ["lr"])
    assert report(tmp_path, "one") == 0
    out = tmp_path / "out" / "one"
    assert (out / "heatmap_lr.png").stat().st_size > 0
    assert not (out / "pairs.png").exists()
    check_one_a4_page(out / "report.pdf")
    text = (out / "report.md").read_text()
    assert "trial t002 by the objective valid_loss_best (lower is better): lr=0.1" in text


def test_no_searched_parameter_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_study(tmp_path / "runs", "none", [trial(0, 0.5)], [])
    assert report(tmp_path, "none") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: study 'none' searched no parameters")


def test_a_pair_asked_for_leads_the_page_and_nothing_is_deleted(tmp_path: Path) -> None:
    make_study(tmp_path / "runs", "pair", grid_rows(), ["lr", "hidden_size", "dropout"])
    assert report(tmp_path, "pair") == 0
    out = tmp_path / "out" / "pair"
    before = sorted(p.name for p in out.glob("*.png"))
    assert report(tmp_path, "pair", "--x", "dropout", "--y", "lr") == 0
    pictures = sorted(p.name for p in out.glob("*.png"))
    assert "heatmap_dropout__lr.png" in pictures and "pairs.png" in pictures
    assert len(pictures) == len(before) == 5  # three pairs, pairs.png, tradeoff.png, as before
    text = (out / "report.md").read_text()
    assert "How do dropout and lr interact" in text
    verdict = next(line for line in text.splitlines() if line.startswith("**Verdict:**"))
    assert verdict.endswith("Shown first: dropout x lr, as asked.")
    assert "strongest main effects" not in verdict
    check_one_a4_page(out / "report.pdf")


def test_mixed_budgets_refused_then_filtered_on_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = grid_rows()
    rows[0]["epochs"] = 2
    make_study(tmp_path / "runs", "mixed", rows, ["lr", "hidden_size", "dropout"])
    assert report(tmp_path, "mixed") == 2
    assert "1 trial(s) with 2 epochs, 17 trial(s) with 4 epochs" in capsys.readouterr().err
    assert report(tmp_path, "mixed", "--full-budget") == 0
    text = (tmp_path / "out" / "mixed" / "report.md").read_text()
    assert "17 of 18 trials drawn; excluded: 1 short budget." in text


@pytest.mark.slow
def test_many_parameters_still_fit_one_page(tmp_path: Path) -> None:
    rows = [
        trial(n, float(a * b + c - d), a=a, b=b, c=c, d=d)
        for n, (a, b, c, d) in enumerate(itertools.product([1, 2], [1, 3], [0.1, 0.2], [4, 5, 6]))
    ]
    make_study(tmp_path / "runs", "four", rows, ["a", "b", "c", "d"])
    assert report(tmp_path, "four") == 0
    out = tmp_path / "out" / "four"
    check_one_a4_page(out / "report.pdf")
    assert len(list(out.glob("heatmap_*.png"))) == 6
    assert (out / "pairs.png").stat().st_size > 0
    rows = table_rows((out / "report.md").read_text())
    assert len(rows) == 6
    assert all(0 <= float(r[1]) <= 1 for r in rows if r[1] != "–")


@pytest.mark.slow  # a whole report in a fresh interpreter
def test_report_never_imports_ray_or_search(tmp_path: Path) -> None:
    make_study(tmp_path / "runs", "noray", grid_rows(), ["lr", "hidden_size", "dropout"])
    code = (
        "import sys; from hypertune.cli import main; "
        f"assert main(['report', 'noray', '--storage', {str(tmp_path / 'runs')!r}, "
        f"'--out', {str(tmp_path / 'out')!r}]) == 0; "
        "bad = [m for m in sys.modules if m.split('.')[0] == 'ray' or m == 'hypertune.search']; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    command = [sys.executable, "-c", code]
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    assert done.returncode == 0, done.stdout + done.stderr


def test_best_trial_is_the_finished_trial_with_the_best_objective() -> None:
    results = pd.DataFrame(
        {
            "trial_id": ["t1", "t2", "t3", "t4", "t5"],
            "status": ["TERMINATED", "TERMINATED", "TERMINATED", "NAN", "ERROR"],
            "a": [1, 1, 2, 2, 3],
            "valid_loss_best": [0.5, 0.2, 0.2, 0.01, np.nan],
        }
    )
    lower = study_record("s", ["a"])
    assert best_trial(results, lower)["trial_id"] == "t2"  # ties: the first listed
    higher = study_record("s", ["a"], mode="max")
    assert best_trial(results, higher)["trial_id"] == "t1"  # a finished trial, not the NAN one


def test_the_lead_sentence_says_why_a_pair_is_shown_only_where_there_was_a_choice() -> None:
    from hypertune.report.verdicts import lead_and_summary as _lead

    def ranking(*pairs: tuple[str, str]) -> pd.DataFrame:
        rows = [{"x": x, "y": y, "verdict": "not above noise", "trials": 9} for x, y in pairs]
        return pd.DataFrame(rows)

    # One ranking of main effects for the study, from one fit (importance.main_effects).
    strengths = {"lr": 0.4, "width": 0.2, "depth": 0.01}
    two = ranking(("lr", "width"))
    lead, summary = _lead(two, (None, None), strengths)
    assert lead == ("lr", "width") and "Shown first" not in summary
    assert summary == "No pair interacts beyond noise: 1 pair tested on 9 trials."
    three = ranking(("lr", "width"), ("lr", "depth"), ("width", "depth"))
    assert _lead(three, (None, None), strengths)[1].endswith(
        "Shown first: the two strongest main effects, lr and width."
    )
    lead, summary = _lead(three, ("depth", "width"), strengths)
    assert lead == ("depth", "width") and summary.endswith("Shown first: depth x width, as asked.")


@pytest.mark.parametrize(
    ("search", "said"), [("hyperopt", "TPE"), ("bayes", "Bayesian optimisation")]
)
def test_an_adaptive_study_says_how_its_verdict_was_reached(search: str, said: str) -> None:
    from hypertune.report.page import report_content

    rows = grid_rows()
    results = pd.DataFrame(rows)
    record = study_record("a", ["lr", "hidden_size", "dropout"], search, trials_planned=len(rows))
    content = report_content(Study(record, results))
    assert f"{said} placed each trial by the ones before it" in content.summary
    assert "p-values come from shuffling the metric" in content.summary
    assert content.ranking is not None
    assert all(m.endswith("permutation p") for m in content.ranking["method"])
    plain = report_content(Study(study_record("g", ["lr", "hidden_size", "dropout"]), results))
    assert "shuffling" not in plain.summary
    assert not any("permutation" in m for m in plain.ranking["method"])


def test_a_one_seed_two_parameter_grid_says_what_it_cannot_test(tmp_path: Path) -> None:
    # Depth matters at 32 units and hardly at 128 (the gestures study's shape), one seed.
    loss = [[0.33, 0.07, 0.012], [0.12, 0.075, 0.012], [0.093, 0.069, 0.05]]
    rng = np.random.default_rng(0)
    rows = [
        trial(n, loss[i][j] + 0.005 * rng.standard_normal(), num_layers=i + 1, hidden_size=h)
        for n, (i, (j, h)) in enumerate(itertools.product(range(3), enumerate([32, 64, 128])))
    ]
    make_study(tmp_path / "runs", "one", rows, ["num_layers", "hidden_size"])
    assert report(tmp_path, "one") == 0
    text = (tmp_path / "out" / "one" / "report.md").read_text()
    verdict = next(line for line in text.splitlines() if line.startswith("**Verdict:**"))
    assert "only a product-shaped interaction can be tested" in verdict
    assert "--seeds 2 or more" in verdict
    assert "interaction 0.00" not in text  # no share of 0 for what was not tested
    assert "no product-shaped interaction (tukey's 1-df test, p = " in text.lower()
