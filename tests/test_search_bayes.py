"""Bayesian search runs the trials asked for; where it ends early, the CLI says why."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from conftest import run_cli
from hypertune.search.domains import bayes_domains
from hypertune.space import decode_config, parse_assignment

SPECS = {s.name: s for s in map(parse_assignment, ["lr=1e-4:l5:1e-1", "hidden_size=8:l4:64"])}


def _searcher(patience: int = 5, **options: Any) -> Any:
    from ray.tune.search.bayesopt import BayesOptSearch

    from hypertune.search.bayes import UNBOUNDED, Patient

    inner = BayesOptSearch(random_state=0, patience=UNBOUNDED, **options)
    searcher = Patient(inner, patience=patience)
    searcher.set_search_properties("loss", "min", bayes_domains(SPECS))  # as Tune does
    return searcher


def _loss(config: dict[str, Any]) -> float:
    trial = decode_config(config, SPECS)
    return (trial["lr"] - 0.01) ** 2 * 1e4 + abs(trial["hidden_size"] - 32) / 32


def _drive(searcher: Any, trials: int, slots: int, ticks: int = 20) -> list[dict[str, Any]]:
    """Ask and complete as Tune's loop does: every pass, a suggestion for each free slot (a new
    trial id each time); a trial completes `ticks` passes after it started. Returns the
    configurations that ran, in the order they started."""
    from ray.tune.search import ConcurrencyLimiter, Searcher

    limiter = ConcurrencyLimiter(searcher, max_concurrent=slots)
    started: list[dict[str, Any]] = []
    running: dict[str, tuple[dict[str, Any], int]] = {}
    asked = 0
    for now in range(20 * trials * ticks):
        for trial_id, (config, end) in list(running.items()):
            if now >= end:
                del running[trial_id]
                limiter.on_trial_complete(trial_id, {"loss": _loss(config)})
        while len(started) < trials and len(running) < slots:
            asked += 1
            config = limiter.suggest(f"t{asked}")
            if config == Searcher.FINISHED:
                return started
            if config is None:
                break
            started.append(config)
            running[f"t{asked}"] = (config, now + ticks)
        if len(started) == trials and not running:
            break
    return started


def test_bayesian_search_with_free_slots_runs_every_trial_asked_for() -> None:
    # Ray's BayesOptSearch, asked again while its modelled trial trains, repeats that point and
    # gives up after five repeats (Searcher.FINISHED): here 12 of the 16 ran.
    searcher = _searcher(random_search_steps=10)
    ran = _drive(searcher, trials=16, slots=4)
    assert len(ran) == 16
    assert not searcher.converged
    assert len({json.dumps(c, sort_keys=True) for c in ran}) == 16  # no configuration twice


def test_a_converged_search_ends_only_once_nothing_runs() -> None:
    searcher = _searcher(patience=3, random_search_steps=0)
    fixed = {"__log10__lr": -2.0, "__log10__hidden_size": 1.5}
    calls: list[int] = []

    def suggest(utility: Any) -> dict[str, float]:
        calls.append(1)
        return dict(fixed)

    searcher.searcher.optimizer.suggest = suggest
    ran = _drive(searcher, trials=8, slots=2, ticks=50)
    assert ran == [fixed]  # the one point ran once, then the model only repeated it
    assert searcher.converged
    # While its trial ran, the model was asked once more (a repeat: wait), not on every pass of
    # the loop; after it, three repeats in a row were allowed, and the fourth ended the search.
    assert len(calls) == 1 + 1 + 4


@pytest.mark.slow
def test_a_bayesian_study_with_free_slots_runs_every_trial_asked_for(tmp_path: Path) -> None:
    # 8 slots on any machine (a quarter CPU a trial): Ray's searcher ran 14 of these 16.
    folders = ["--storage", str(tmp_path / "runs"), "--out", str(tmp_path / "out")]
    done = run_cli(
        "run", str(Path(__file__).parents[1] / "configs" / "mlp.toml"),
        "--search", "bayes", "--samples", "16", "--epochs", "1", "--name", "b1",
        "--param", "lr=1e-4:l5:1e-1", "--param", "hidden_size=8:l4:64",
        "--cpus-per-trial", "0.25", *folders,
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "16 trials: 16 TERMINATED" in done.stdout
    assert "trials ran" not in done.stderr


@pytest.mark.parametrize("planned", [16, 3])
def test_a_finished_study_with_fewer_trials_says_why_at_the_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], planned: int
) -> None:
    from hypertune.cli.commands import _finish
    from hypertune.study.store import study_dir, write_results, write_study
    from test_report_page import study_record, trial

    rows = [trial(n, 1.0 / (n + 1), lr=10.0**-n, hidden_size=8 * (n + 1)) for n in range(3)]
    record = study_record("short", ["lr", "hidden_size"], "bayes", trials_planned=planned)
    path = study_dir(tmp_path / "runs", "short")
    path.mkdir(parents=True)
    write_study(path, record)
    write_results(path, rows, ["lr", "hidden_size"])
    args = argparse.Namespace(storage=str(tmp_path / "runs"), out=str(tmp_path / "out"))
    args.name = "short"
    assert _finish(path, args) == 0
    out, err = capsys.readouterr()
    assert "report: " in out  # the report is drawn as before
    if planned == 3:
        assert "trials ran" not in err
    else:
        assert err.strip().splitlines()[-1] == (
            "warning: 3 of 16 trials ran: the Bayesian searcher kept suggesting "
            "configurations it had already tried"
        )


def test_the_searchers_state_comes_back_from_tunes_checkpoint(tmp_path: Path) -> None:
    searcher = _searcher(random_search_steps=2)
    first, second = searcher.suggest("a"), searcher.suggest("b")
    searcher.on_trial_complete("a", {"loss": _loss(first)})
    searcher.save(str(tmp_path / "searcher.pkl"))
    again = _searcher(random_search_steps=2)
    again.restore(str(tmp_path / "searcher.pkl"))
    assert again.live == {"b"} and again.completed == 1 and not again.converged
    again.on_trial_complete("b", {"loss": _loss(second)})  # the model learns both results
    assert len(again.searcher.optimizer.space) == 2
