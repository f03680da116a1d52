"""What a reader sees: no text over another or cut off, one best trial, honest intervals, and a
report folder that always holds one complete set of files."""

from __future__ import annotations

import argparse
import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pypdf import PdfReader

from hypertune.cli.commands import _finish
from hypertune.report import main_effect, report_content
from hypertune.report.labels import fit_cell_labels
from hypertune.report.layout import draw_page
from hypertune.report.page import best_trial
from hypertune.report.plot import draw_pairs, pyplot
from hypertune.study.record import StudyRecord
from hypertune.study.store import read_results, read_study
from hypertune.study.stored import Study
from test_report_page import make_study, report, study_record, trial

ROOT = Path(__file__).resolve().parents[1]


SLOW = pytest.mark.slow  # the larger pages take seconds each to draw and measure


def study(n_params: int, seed: int = 0) -> tuple[StudyRecord, pd.DataFrame]:
    """A grid over n_params parameters with long names and log-spaced or binned levels."""
    names = ["learning_rate", "hidden_size", "dropout", "num_layers", "batch_size", "weight_decay"]
    levels = [[1e-4, 1e-3, 1e-2], [16, 64, 256], [0.0, 0.25, 0.5], [1, 2], [32, 128], [0, 1e-4]]
    levels = levels[:n_params] if n_params <= 3 else [lv[:2] for lv in levels[:n_params]]
    rng = np.random.default_rng(seed)
    rows = []
    for n, combo in enumerate(itertools.product(*levels)):
        loss = 0.3 + 0.05 * np.log10(combo[0]) * np.log2(combo[1]) / 10 + 0.02 * rng.random()
        rows.append(trial(n, float(loss), **dict(zip(names, combo, strict=False))))
    meta = study_record(f"p{n_params}", names[:n_params], architecture="mlp")
    return meta, pd.DataFrame(rows)


def texts(fig: Any) -> list[tuple[str, Any]]:
    """Every text the figure draws, with its box in pixels."""
    from matplotlib.axes import Axes
    from matplotlib.figure import SubFigure

    found: list[Any] = []
    for sub in [fig, *fig.findobj(SubFigure)]:
        found += sub.texts + ([sub._suptitle] if getattr(sub, "_suptitle", None) else [])
    for ax in fig.findobj(Axes):
        found += [*ax.texts, ax.title, ax._left_title, ax._right_title]
        for table in ax.tables:
            found += [cell.get_text() for cell in table.get_celld().values()]
        if not ax.axison:
            continue
        found += [ax.xaxis.label, ax.yaxis.label]
        for axis, (low, high) in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
            lo, hi = min(low, high), max(low, high)
            found += [t.label1 for t in axis.get_major_ticks() if lo <= t.get_loc() <= hi]
            found += [t.label2 for t in axis.get_major_ticks() if lo <= t.get_loc() <= hi]
    renderer = fig.canvas.get_renderer()
    return [
        (t.get_text(), t.get_window_extent(renderer))
        for t in dict.fromkeys(found)
        if t.get_visible() and t.get_text().strip()
    ]


def check_layout(fig: Any) -> None:
    fig.canvas.draw()
    found = texts(fig)
    page = fig.bbox
    for label, box in found:
        assert box.x0 >= page.x0 - 1 and box.x1 <= page.x1 + 1, f"cut off: {label!r}"
        assert box.y0 >= page.y0 - 1 and box.y1 <= page.y1 + 1, f"cut off: {label!r}"
    for (a, box_a), (b, box_b) in itertools.combinations(found, 2):
        overlap_w = min(box_a.x1, box_b.x1) - max(box_a.x0, box_b.x0)
        overlap_h = min(box_a.y1, box_b.y1) - max(box_a.y0, box_b.y0)
        assert overlap_w <= 0.5 or overlap_h <= 0.5, f"{a!r} overlaps {b!r}"


@pytest.mark.parametrize(
    "n_params",
    [2, 3, pytest.param(4, marks=SLOW), pytest.param(5, marks=SLOW), pytest.param(6, marks=SLOW)],
)
def test_no_text_overlaps_or_is_cut_off(n_params: int) -> None:
    plt = pyplot()
    meta, results = study(n_params)
    content = report_content(Study(meta, results))
    page = draw_page(content)
    try:
        check_layout(page)
    finally:
        plt.close(page)
    if n_params < 2:
        return
    infos = {pair: content.infos.get(pair) for pair in itertools.combinations(meta.params, 2)}
    from hypertune.report import heatmap_info

    infos = {
        (x, y): info or heatmap_info(results, x, y, content.metric)
        for (x, y), info in infos.items()
    }
    pairs = draw_pairs(infos, meta.params, "min")
    try:
        fit_cell_labels(pairs)
        check_layout(pairs)
    finally:
        plt.close(pairs)


def test_cli_page_and_markdown_name_the_same_best_trial(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [trial(n, 1.0 + 0.1 * n, lr=lr, h=h) for n, (lr, h) in
            enumerate(itertools.product([1e-3, 1e-2], [8, 16, 32]))]  # fmt: skip
    rows[4]["valid_loss_best"] = 0.05  # the best by the objective, though not by accuracy
    rows[1]["status"], rows[1]["valid_loss_best"] = "NAN", 0.0  # not finished: never best
    make_study(tmp_path / "runs", "same", rows, ["lr", "h"])
    args = argparse.Namespace(
        name="same", storage=str(tmp_path / "runs"), out=str(tmp_path / "out")
    )
    assert _finish(tmp_path / "runs" / "same", args) == 0
    printed = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("best"))
    assert printed.endswith("(trial t004)")
    markdown = (tmp_path / "out" / "same" / "report.md").read_text()
    assert "**Best trial:** trial t004 by the objective valid_loss_best" in markdown
    page = PdfReader(tmp_path / "out" / "same" / "report.pdf").pages[0].extract_text()
    assert "trial t004 by the objective" in page
    meta = read_study(tmp_path / "runs", "same")
    assert best_trial(read_results(tmp_path / "runs", "same"), meta)["trial_id"] == "t004"


@pytest.mark.slow  # draws a six-parameter page
def test_a_page_without_interaction_says_so_and_leads_with_main_effects(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    grid = itertools.product([1, 2], [16, 64], [1e-3, 1e-2], [0, 0.5])
    rows = [
        trial(n, float(0.3 + 0.05 * (a == 2) + 0.03 * (d == 0.5) + 0.005 * rng.standard_normal()),
              a=a, b=b, c=c, d=d)
        for n, (a, b, c, d) in enumerate(grid)
    ]  # fmt: skip
    make_study(tmp_path / "runs", "flat", rows, ["a", "b", "c", "d"])
    assert report(tmp_path, "flat") == 0
    text = (tmp_path / "out" / "flat" / "report.md").read_text()
    assert "No pair interacts beyond noise: 6 pairs tested on 16 trials." in text
    assert "How do a and d interact on valid_loss_best?" in text
    page = PdfReader(tmp_path / "out" / "flat" / "report.pdf").pages[0].extract_text()
    assert "No pair interacts beyond noise" in " ".join(page.split())


def test_main_effect_intervals_stay_in_the_metric_range() -> None:
    results = pd.DataFrame(
        {
            "status": ["TERMINATED"] * 6,
            "a": [1, 1, 1, 2, 2, 2],
            "accuracy": [0.99, 1.0, 0.6, 0.01, 0.0, 0.4],
            "valid_loss": [0.01, 0.0, 0.9, 0.02, 0.0, 1.5],
        }
    )
    accuracy = main_effect(results, "a", "accuracy")
    assert (accuracy["high"] <= 1).all() and (accuracy["low"] >= 0).all()
    assert accuracy.loc[1, "high"] == 1.0 and accuracy.loc[2, "low"] == 0.0
    loss = main_effect(results, "a", "valid_loss")
    assert (loss["low"] >= 0).all()
    assert loss["mean"].tolist() == pytest.approx([0.91 / 3, 1.52 / 3])
    # Seconds cannot be negative either (a plain t interval went below 0 here).
    seconds = main_effect(results.assign(seconds=[0.1, 0.1, 3.0, 0.1, 0.2, 2.5]), "a", "seconds")
    assert seconds.loc[1, "low"] == 0.0 and (seconds["low"] >= 0).all()


def test_a_parameter_that_took_one_value_gets_no_main_effect_panel(tmp_path: Path) -> None:
    rows = [
        trial(n, 0.3 + 0.1 * a + 0.05 * b, a=a, b=b, c=0.5)
        for n, (a, b) in enumerate(itertools.product([1, 2, 3], [1, 2]))
    ]
    make_study(tmp_path / "runs", "smoky", rows, ["a", "b", "c"])
    assert report(tmp_path, "smoky") == 0
    page = " ".join(
        PdfReader(tmp_path / "out" / "smoky" / "report.pdf").pages[0].extract_text().split()
    )
    assert "main effect of c" not in page


def report_set(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def check_complete(folder: Path, sets: list[dict[str, bytes]]) -> None:
    files = report_set(folder)
    assert set(files) in [set(s) for s in sets], sorted(files)
    assert all(files.values()), "a 0-byte file"
    assert files["report.md"] in [s["report.md"] for s in sets]  # one set's text, whole
    assert len(PdfReader(folder / "report.pdf").pages) == 1
    match = next(s for s in sets if s["report.md"] == files["report.md"])
    assert files == match, "a mix of two sets"


@pytest.mark.slow
def test_a_report_killed_midway_leaves_one_complete_set(tmp_path: Path) -> None:
    old_rows = [trial(n, 1.0 + 0.1 * n, lr=lr, h=h) for n, (lr, h) in
                enumerate(itertools.product([1e-3, 1e-2, 1e-1], [8, 16]))]  # fmt: skip
    make_study(tmp_path / "runs", "kill", old_rows, ["lr", "h"])
    assert report(tmp_path, "kill") == 0
    folder = tmp_path / "out" / "kill"
    old = report_set(folder)
    results = tmp_path / "runs" / "kill" / "results.csv"
    frame = pd.read_csv(results, dtype={"trial_id": str})
    frame["valid_loss_best"] = frame["valid_loss_best"][::-1].to_numpy()
    frame.to_csv(results, index=False)
    code = (
        "import os, signal, sys\n"
        "from hypertune.report import page\n"
        "from hypertune.cli import main\n"
        "if sys.argv[1] == 'hook':\n"
        "    write = page.write_heatmap\n"
        "    def dying(*a, **k):\n"
        "        write(*a, **k)\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "    page.write_heatmap = dying\n"
        f"main(['report', 'kill', '--storage', {str(tmp_path / 'runs')!r}, "
        f"'--out', {str(tmp_path / 'out')!r}])\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    hooked = subprocess.run([sys.executable, "-c", code, "hook"], env=env, check=False)
    assert hooked.returncode == -signal.SIGKILL
    check_complete(folder, [old])  # killed after the first new file: the old set stands
    new_dir = tmp_path / "new"
    assert report(new_dir.parent, "kill") == 0  # the new set, for comparison
    new = report_set(folder)
    assert new["report.md"] != old["report.md"]
    time.sleep(1.1)  # a report drawn a second later has the same bytes: no dates inside
    assert report(new_dir.parent, "kill") == 0
    assert report_set(folder) == new
    for delay in (2.0, 3.0, 4.0, 5.0):
        process = subprocess.Popen([sys.executable, "-c", code, "timer"], env=env)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait()
        check_complete(folder, [old, new])
    leftovers = [p.name for p in folder.parent.iterdir() if p.name != "kill"]
    assert report(tmp_path, "kill") == 0
    assert [p.name for p in folder.parent.iterdir()] == ["kill"], leftovers


def random4_study() -> tuple[StudyRecord, pd.DataFrame]:
    """As `run random4.toml`: an MLP, five parameters, random search, 24 trials."""
    rng = np.random.default_rng(4)
    rows = []
    for n in range(24):
        lr, dropout = float(10 ** rng.uniform(-4, -1)), float(rng.uniform(0.0, 0.5))
        batchnorm = bool(rng.integers(2))
        hidden, layers = int(rng.choice([16, 32, 64])), int(rng.choice([1, 2, 3]))
        loss = 0.15 + 0.08 * abs(np.log10(lr) + 2.5) + 0.1 * dropout * (not batchnorm)
        params = {"lr": lr, "dropout": dropout, "batchnorm": batchnorm, "hidden_size": hidden,
                  "num_layers": layers}  # fmt: skip
        rows.append(trial(n, float(loss + 0.02 * rng.standard_normal()), **params))
    params = ["lr", "dropout", "batchnorm", "hidden_size", "num_layers"]
    return study_record("random4", params, search="random", architecture="mlp"), pd.DataFrame(rows)


def check_every_cell_labelled(fig: Any, infos: list[Any]) -> None:
    """Each heatmap of `fig` (in the order of `infos`) shows every drawn cell's value."""
    from hypertune.report.labels import CELL_LABEL

    heatmaps = [ax for ax in fig.axes if any(t.get_gid() == CELL_LABEL for t in ax.texts)]
    assert len(heatmaps) == len(infos)
    for ax, info in zip(heatmaps, infos, strict=True):
        shown = {
            (int(t.get_position()[1]), int(t.get_position()[0])): t.get_text().split("\n")[0]
            for t in ax.texts
            if t.get_gid() == CELL_LABEL and t.get_visible() and t.get_text()
        }
        values = info.values.to_numpy(dtype=float)
        drawn = {(int(i), int(j)) for i, j in zip(*np.nonzero(~np.isnan(values)), strict=True)}
        assert set(shown) == drawn, f"cells without their value: {sorted(drawn - set(shown))}"
        for (i, j), text in shown.items():
            assert text in (f"{values[i, j]:.3g}", f"{values[i, j]:.2g}"), (text, values[i, j])


def test_a_random_search_page_labels_every_cell_and_nothing_overlaps() -> None:
    plt = pyplot()
    meta, results = random4_study()
    content = report_content(Study(meta, results), metric="accuracy")
    # The test's model is named where its picture is: binned axes were fitted as quadratics.
    assert content.lead == ("lr", "dropout")
    assert content.notes[content.lead].endswith(
        "tested with lr and dropout as quadratic (the fitted surface), not binned"
    )
    assert set(content.ranking["method"]) == {"pair ANOVA, dropout, lr as quadratic"}
    page = draw_page(content)
    try:
        from matplotlib.collections import QuadMesh

        # ... and drawn beside them: the page shows the fitted surface of the lead pair.
        heatmaps = [ax for ax in page.axes if any(isinstance(c, QuadMesh) for c in ax.collections)]
        assert any("fitted model the verdict was tested on" in ax.get_title() for ax in heatmaps)
        # 24 trials over five parameters leave most binned cells empty: the lead band draws
        # the model estimate in place of the lead's cells, which stay in their own PNG.
        assert content.estimate is not None
        shown = [content.infos[p] for p in content.others[:3]]
        check_every_cell_labelled(page, shown)
        check_layout(page)
    finally:
        plt.close(page)
    infos = {pair: content.infos[pair] for pair in itertools.combinations(meta.params, 2)}
    pairs = draw_pairs(infos, meta.params, "max")
    try:
        fit_cell_labels(pairs)
        order = [(meta.params[c], meta.params[r + 1]) for r in range(4) for c in range(r + 1)]
        check_every_cell_labelled(pairs, [infos[p] for p in order])
        check_layout(pairs)
    finally:
        plt.close(pairs)
