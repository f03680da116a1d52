"""A fused study through Ray: every member is a trial of its own, as if it had trained alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hypertune.config import from_dict, load_config
from hypertune.data import load_dataset
from hypertune.metrics import METRIC_COLUMNS, METRICS
from hypertune.search import rerun_trial, run_study
from hypertune.search.order import trial_points
from hypertune.space import SEED_KEY
from hypertune.study.store import read_results
from hypertune.study.stored import load_study
from hypertune.train import TrainSettings, fit_member
from test_search import scalar_tags

RAW = {
    "study": {"name": "fused", "data": "digits", "epochs": 2, "search": "grid", "seeds": 2},
    "model": {"architecture": "mlp", "hidden_size": 16, "batch_size": 128, "dropout": 0.2},
    "space": {"lr": [0.003, 0.03, 0.3]},
    "resources": {"cpus_per_trial": 1, "max_concurrent": 2},
}


@pytest.mark.usefixtures("ray_session")
def test_each_member_of_a_fused_study_is_its_own_trial(tmp_path: Path) -> None:
    config = from_dict(RAW)
    path = run_study(config, tmp_path)
    record = json.loads((path / "study.json").read_text())
    assert {k: record["packs"][k] for k in ("slots", "count", "largest")} == {
        "slots": 2,
        "count": 2,
        "largest": 3,
    }
    assert len(record["packs"]["digest"]) == 16  # which points each pack holds
    results = read_results(tmp_path, "fused")  # floats read back exactly
    assert len(results) == 6 and results["trial_id"].is_unique
    assert set(results["status"]) == {"TERMINATED"} and (results["epochs"] == 2).all()
    packs = results["trial_id"].str.rsplit("-", n=1).str[0]
    assert sorted(packs.value_counts().tolist()) == [3, 3]  # two Ray trials, three members each
    wanted = sorted((p["lr"], p[SEED_KEY]) for p in trial_points(config))
    assert sorted(zip(results["lr"], results["seed"], strict=True)) == wanted
    # Each row is what that trial gives alone as a pack of one, bit for bit.
    data = load_dataset("digits")
    settings = TrainSettings(epochs=2)
    for row in results.to_dict("records"):
        config = {**RAW["model"], "lr": row["lr"]}
        alone = fit_member(config, data, settings, seed=int(row["seed"]))
        assert {k: row[k] for k in alone} == alone, row["trial_id"]
    # Each member's own TensorBoard curves, in a folder named by its trial id.
    for row in results.to_dict("records"):
        files = list((path / "ray").glob(f"*/metrics/{row['trial_id']}/events.out.tfevents.*"))
        assert len(files) == 1, row["trial_id"]
        assert scalar_tags(files[0])["valid_loss"] == [1, 2]
    # Each member's learning curve, its last epoch the member's row.
    curves = load_study(tmp_path, "fused").curves
    assert len(curves) == 12 and not curves.duplicated(["trial_id", "epoch"]).any()
    last = curves[curves["epoch"] == 2].set_index("trial_id")
    for name in METRICS:
        assert last[name].to_dict() == results.set_index("trial_id")[name].to_dict(), name
    member = str(results["trial_id"].iloc[-1])
    rerun, recorded = rerun_trial(tmp_path, "fused", member)
    assert rerun == {k: v for k, v in recorded.metrics.items() if k in METRIC_COLUMNS}


def test_no_fuse_and_the_study_key_turn_fusing_off(tmp_path: Path) -> None:
    study_file = tmp_path / "s.toml"
    study_file.write_text('[study]\nname = "s"\ndata = "digits"\n[space]\nlr = [0.1, 0.2]\n')
    assert load_config(study_file, {}).fuse is True
    assert load_config(study_file, {"fuse": False}).fuse is False
    study_file.write_text(study_file.read_text().replace("[space]", "fuse = false\n[space]"))
    assert load_config(study_file, {}).fuse is False
    assert from_dict(load_config(study_file, {}).to_dict()).fuse is False  # as study.json has it
