"""`show` of a long table: the same text in parts, and memory near the size of the file."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT
from hypertune.show import print_json, print_table
from hypertune.study.store import RESULTS_FILE, results_columns, study_dir, write_study

PARAMS = ["lr", "hidden_size", "dropout"]


def big_study(storage: Path, name: str, rows: int) -> Path:
    """A study of `rows` trials as `run` leaves it (tests/test_report_page.py's make_study,
    with the table written in one go)."""
    from test_report_page import study_record

    rng = np.random.default_rng(0)
    loss = rng.uniform(0.1, 2.5, rows)
    frame = pd.DataFrame(
        {
            "trial_id": [f"{n:08x}" for n in range(rows)],
            "status": np.where(rng.random(rows) < 0.02, "ERROR", "TERMINATED"),
            "lr": 10.0 ** rng.uniform(-4, -1, rows),
            "hidden_size": rng.choice([8, 16, 32, 64, 128], rows),
            "dropout": rng.uniform(0, 0.5, rows),
            "accuracy": 1 - loss / 3,
            "accuracy_best": 1 - loss / 3.1,
            "valid_loss": loss,
            "valid_loss_best": loss * 0.95,
            "epochs": 4,
            "seed": rng.integers(0, 3, rows),
            "seconds": rng.uniform(1, 100, rows),
        }
    )
    path = study_dir(storage, name)
    path.mkdir(parents=True)
    write_study(path, study_record(name, PARAMS, "random", trials_planned=rows))
    columns = results_columns([dict.fromkeys(frame.columns)], PARAMS)
    frame[columns].to_csv(path / RESULTS_FILE, index=False)
    return path / RESULTS_FILE


def test_a_table_printed_in_parts_lines_up_and_holds_the_same_cells() -> None:
    rng = np.random.default_rng(0)
    rows = 23
    table = pd.DataFrame(
        {
            "trial_id": [f"t{n:0{n % 5 + 1}d}" for n in range(rows)],
            "status": rng.choice(["TERMINATED", "ERROR", "NAN"], rows),
            "lr": 10.0 ** rng.uniform(-6, 2, rows) * rng.choice([-1, 1], rows),
            "epochs": rng.integers(0, 100_000, rows),
            "error": [None if n % 3 else f"ValueError:\tline\n{n}" for n in range(rows)],
        }
    )
    table.loc[4, "lr"] = np.nan
    whole = io.StringIO()
    print_table(table, whole, chunk=rows)
    expected = table.to_string(index=False, float_format=lambda v: f"{v:.4g}") + "\n"
    assert whole.getvalue() == expected  # up to `chunk` rows: pandas' table as it is
    for chunk in (1, 5, 22):
        parts, records = io.StringIO(), io.StringIO()
        print_table(table, parts, chunk=chunk)
        lines = parts.getvalue().splitlines()
        assert len(lines) == rows + 1
        assert len({len(line) for line in lines}) == 1  # one width: the columns line up
        assert [line.split() for line in lines] == [
            line.split() for line in whole.getvalue().splitlines()
        ]
        print_json(table, records, chunk=chunk)
        assert records.getvalue() == table.to_json(orient="records", indent=2) + "\n"


# Reads a study, then shows it (into /dev/null), and says how far each raised the process's
# peak memory (VmHWM, which writing 5 to /proc/self/clear_refs sets back to the memory in use)
# above what it used before, with everything imported and a tiny study shown. Not ru_maxrss:
# a child started by vfork inherits its parent's peak in that.
MEASURE = textwrap.dedent(
    """
    import json, os, sys
    from hypertune.cli import main
    from hypertune.study.store import read_results

    def status(key):
        with open("/proc/self/status") as lines:
            return next(int(n.split()[1]) * 1024 for n in lines if n.startswith(key + ":"))

    def reset():
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
        return status("VmRSS")

    def show(name):
        with open(os.devnull, "w") as sys.stdout:
            assert main(["show", name, "--storage", sys.argv[1]]) == 0
        sys.stdout = sys.__stdout__

    show("small")
    try:
        before = reset()
    except OSError:
        sys.exit(3)
    results = read_results(sys.argv[1], "big")
    read = status("VmHWM") - before
    del results
    before = reset()
    show("big")
    print(json.dumps({"read": read, "show": status("VmHWM") - before}))
    """
)


@pytest.mark.slow  # about 8 s, most of it writing and showing the 100,000 rows
@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="Linux's /proc only")
def test_a_long_table_is_read_and_shown_within_a_few_times_its_size(tmp_path: Path) -> None:
    # Before: 14.6 (read) and 12.9 (show) times the file, which was in memory as text, as rows
    # of strings and as a clean copy at once, and then as the whole table's text. Now 2.5 and
    # 3.3 (100,000 rows); a million rows (162 MB): show's peak fell from 2.2 GB to 0.47 GB.
    big_study(tmp_path, "small", 10)
    size = big_study(tmp_path, "big", 100_000).stat().st_size
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    if done.returncode == 3:
        pytest.skip("/proc/self/clear_refs cannot be written here")
    assert done.returncode == 0, done.stderr
    grown = json.loads(done.stdout)
    assert grown["read"] < 4 * size, (grown, size)
    assert grown["show"] < 4 * size, (grown, size)


@pytest.mark.parametrize("damage", ["torn", "malformed"])
def test_a_damaged_long_table_is_read_without_its_damaged_rows(tmp_path: Path, damage: str) -> None:
    from hypertune.study.store import read_results

    path = big_study(tmp_path, "big", 1000)
    text = path.read_text()
    lines = text.splitlines(keepends=True)
    if damage == "torn":
        path.write_text(text + lines[5][:20])
    else:
        path.write_text("".join([*lines[:5], "x,DONE\n", *lines[5:]]))
    results = read_results(tmp_path, "big")
    assert len(results) == 1000
    assert results["epochs"].dtype.kind == "i" and results["trial_id"].is_unique
    chosen = read_results(tmp_path, "big", columns=["lr", "no_such_column"])
    assert list(chosen.columns) == ["trial_id", "status", "lr"]
    pd.testing.assert_series_equal(chosen["lr"], results["lr"])
