"""Your own model and data: `module:callable` references, the Python API, and their errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import hypertune
from hypertune.cli import main
from hypertune.data import fingerprint
from hypertune.data.user import to_bundle
from hypertune.errors import ConfigError, DataError, StudyError
from hypertune.models import create_model, use_model
from hypertune.search import rerun_trial

MODEL = """
from torch import nn


def build(input_shape, num_classes, width=8, depth=1, bias=True):
    layers = [nn.Flatten()]
    features = 1
    for size in input_shape:
        features *= size
    for _ in range(depth):
        layers += [nn.Linear(features, width, bias=bias), nn.ReLU()]
        features = width
    return nn.Sequential(*layers, nn.Linear(features, num_classes))


def not_a_model(input_shape, num_classes):
    return [1, 2]
"""

DATA = """
import numpy as np


def load(examples=120):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(examples, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    return x[:100], y[:100], x[100:], y[100:]
"""

STUDY = {
    "study": {"name": "own", "data": "owndata:load", "epochs": 1, "search": "grid"},
    "model": {"architecture": "ownnet:build", "lr": 0.01, "batch_size": 32},
    "space": {"width": [4, 8], "bias": [True]},
}


def _write(folder: Path) -> None:
    (folder / "ownnet.py").write_text(MODEL)
    (folder / "owndata.py").write_text(DATA)


@pytest.mark.slow  # a whole study through Ray
def test_python_api_runs_a_study_of_your_own_model_and_data(
    ray_session: None, tmp_path: Path
) -> None:
    _write(tmp_path)
    path = hypertune.run_study(
        STUDY, tmp_path / "runs", code_dir=tmp_path, reports=tmp_path / "reports"
    )
    meta = json.loads((path / "study.json").read_text())
    assert meta["params"] == ["width"]  # one value fixes a parameter
    assert meta["config"]["model"]["bias"] is True
    assert meta["data"]["num_classes"] == 2 and meta["data"]["input_shape"] == [4]
    files = {record["where"]: record for record in meta["code"]}
    assert files["model.architecture"]["file"] == str((tmp_path / "ownnet.py").resolve())
    assert len(files["study.data"]["sha256"]) == 64
    results = (path / "results.csv").read_text().splitlines()
    assert len(results) == 3 and all(",TERMINATED," in line for line in results[1:])
    assert (tmp_path / "reports" / "own" / "report.pdf").is_file()

    trial = results[1].split(",")[0]
    metrics, row = rerun_trial(tmp_path / "runs", "own", trial)
    assert metrics["valid_loss"] == pytest.approx(row.metrics["valid_loss"], rel=1e-5)
    (tmp_path / "ownnet.py").write_text(MODEL + "\n# edited\n")
    with pytest.raises(ConfigError, match=r"ownnet\.py changed since the study ran"):
        rerun_trial(tmp_path / "runs", "own", trial)

    # An unknown trial: the ids listed, and "..." where the list is cut.
    rows = [results[0]] + [f"t{i:02d}," + results[1].split(",", 1)[1] for i in range(12)]
    (path / "results.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(StudyError, match=r"its 12 trials: t00, t01, .*, t09, \.\.\.$"):
        rerun_trial(tmp_path / "runs", "own", "nope")


HELD_OUT = """
import numpy as np


def load():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(160, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    return {"x_train": x[:100], "y_train": y[:100], "x_valid": x[100:130],
            "y_valid": y[100:130], "x_test": x[130:], "y_test": y[130:]}
"""


@pytest.mark.slow  # a whole study through Ray
def test_the_best_model_is_kept_and_tested_on_the_held_out_split(
    ray_session: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hypertune.best import BEST_DIR, SUMMARY_FILE
    from hypertune.report import best_trial
    from hypertune.study.store import read_results, read_study
    from hypertune.train import evaluate_on

    _write(tmp_path)
    (tmp_path / "held.py").write_text(HELD_OUT)
    study = {**STUDY, "study": {**STUDY["study"], "name": "held", "data": "held:load"}}
    study["space"] = {"width": [4, 16]}
    storage = tmp_path / "runs"
    path = hypertune.run_study(study, storage, code_dir=tmp_path, reports=None)
    results = read_results(storage, "held")
    chosen = best_trial(results, read_study(storage, "held"))
    assert chosen is not None

    kept = hypertune.keep_best(storage, "held")
    assert kept.trial_id == chosen["trial_id"]  # the report's best, not another
    assert kept.retrained["valid_loss"] == pytest.approx(kept.recorded["valid_loss"], rel=1e-9)
    assert kept.test is not None and set(kept.test) == {"test_loss", "test_accuracy"}
    model = hypertune.load_best(storage, "held")
    assert not model.training
    x = np.random.default_rng(0).normal(size=(160, 4)).astype("float32")
    x_test = torch.as_tensor(x[130:])
    y_test = torch.as_tensor((x[130:, 0] > 0).astype("int64"))
    assert evaluate_on(model, x_test, y_test) == (kept.test["test_loss"],
                                                  kept.test["test_accuracy"])  # fmt: skip
    summary = json.loads((path / BEST_DIR / SUMMARY_FILE).read_text())
    assert summary["trial_id"] == kept.trial_id and summary["test"] == kept.test

    other = next(t for t in results["trial_id"].astype(str) if t != kept.trial_id)
    assert main(["best", "held", "--trial", other, "--storage", str(storage)]) == 0
    out = capsys.readouterr().out
    assert f"trial {other} " in out and "reproduced: every metric as recorded" in out
    assert "test split (held out, seen by no trial): test_loss " in out
    assert json.loads((path / BEST_DIR / SUMMARY_FILE).read_text())["trial_id"] == other
    assert sorted(p.name for p in path.iterdir() if p.name.startswith(".best")) == []


def test_the_builders_signature_is_its_schema(tmp_path: Path) -> None:
    _write(tmp_path)
    use_model("ownnet:build", tmp_path)
    model = create_model({"architecture": "ownnet:build", "depth": 2}, (4,), 3)
    assert model(torch.zeros(5, 4)).shape == (5, 3)
    with pytest.raises(ConfigError, match=r"model.widht: unknown key .* known: bias, depth, width"):
        create_model({"architecture": "ownnet:build", "widht": 2}, (4,), 3)
    with pytest.raises(ConfigError, match=r"model\.depth: expected a whole number"):
        create_model({"architecture": "ownnet:build", "depth": "two"}, (4,), 3)
    use_model("ownnet:not_a_model", tmp_path)
    with pytest.raises(ConfigError, match=r"returned a list; it must return a torch\.nn\.Module"):
        create_model({"architecture": "ownnet:not_a_model"}, (4,), 3)


@pytest.mark.parametrize(
    ("reference", "source", "fragment"),
    [
        ("ownnet:nope", MODEL, "module 'ownnet' has no 'nope'; its callables: build, "),
        ("missing:build", MODEL, "no module 'missing' in "),
        ("ownnet:build", "raise RuntimeError('no GPU here')", "raised RuntimeError: no GPU here"),
        ("ownnet", MODEL, "unknown; known: mlp"),
    ],
)
def test_a_broken_reference_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], reference: str, source: str, fragment: str
) -> None:
    (tmp_path / "ownnet.py").write_text(source)
    study = tmp_path / "study.toml"
    study.write_text(f'[model]\narchitecture = "{reference}"\n[space]\nnum_layers = [1, 2]\n')
    code = main(["run", str(study), "--storage", str(tmp_path / "runs")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith("error: model.architecture: ") and fragment in err[0], err[0]
    assert not (tmp_path / "runs").exists()


def test_an_unknown_model_key_is_refused_before_any_trial(
    ray_session: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write(tmp_path)
    study = tmp_path / "study.toml"
    study.write_text(
        '[study]\ndata = "owndata:load"\n[model]\narchitecture = "ownnet:build"\n'
        "[space]\nwidht = [4, 8]\n"
    )
    code = main(["run", str(study), "--storage", str(tmp_path / "runs")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err == (
        "error: model.widht: unknown key for architecture 'ownnet:build'; known: bias, depth, width"
    )
    assert not (tmp_path / "runs" / "study").exists()


def _split(**changes: Any) -> dict[str, Any]:
    parts = {
        "x_train": np.zeros((6, 3), dtype=np.float32),
        "y_train": np.array([0, 1, 2, 0, 1, 2]),
        "x_valid": torch.zeros(3, 3),
        "y_valid": torch.tensor([0, 1, 2]),
    }
    parts.update(changes)
    return parts


def test_data_forms_and_what_is_derived() -> None:
    bundle = to_bundle("d:load", tuple(_split().values()))
    assert (bundle.input_shape, bundle.num_classes, len(bundle.y_train)) == ((3,), 3, 6)
    assert bundle.fingerprint == to_bundle("d:load", _split()).fingerprint
    assert to_bundle("d:load", {**_split(), "num_classes": 5}).num_classes == 5
    assert to_bundle("d:load", bundle) is bundle
    assert bundle.x_test is None and "test" not in bundle.summary()


def test_a_test_split_is_kept_apart_and_counted_in_the_fingerprint() -> None:
    plain = to_bundle("d:load", _split())
    held = to_bundle("d:load", _split(x_test=np.ones((2, 3)), y_test=np.array([2, 3])))
    assert held.y_test is not None and held.y_test.tolist() == [2, 3]
    assert held.num_classes == 4  # a class only the test split holds still has an output
    assert held.summary()["test"] == 2 and len(held.y_train) == len(plain.y_train)
    assert held.fingerprint != plain.fingerprint  # another test split is other data
    # Without one, the hash is that of the four parts, as recorded before test splits existed.
    four = [torch.as_tensor(np.asarray(v), dtype=torch.float32) if k.startswith("x")
            else torch.as_tensor(np.asarray(v)).long() for k, v in _split().items()]  # fmt: skip
    assert plain.fingerprint == fingerprint(four)
    assert held.to("cpu").x_test is not None


@pytest.mark.parametrize(
    ("result", "fragment"),
    [
        ([1, 2], "returned list; expected (x_train, y_train, x_valid, y_valid)"),
        ({"x_train": 1}, "returned a dict without y_train, x_valid, y_valid"),
        (_split(y_train=np.array([0, 1])), "x_train has 6 examples but y_train 2"),
        (_split(y_train=np.full(6, 0.5)), "y_train must hold class indices"),
        (_split(x_valid=np.zeros((3, 4))), "x_train's examples are (3,) but x_valid's (4,)"),
        (_split(x_train=np.full((6, 3), np.nan)), "x_train holds NaN or infinite values"),
        (_split(x_train=np.array(list("abcdef"))), "x_train holds <U1 values, not numbers"),
        ({**_split(), "num_classes": 2}, "num_classes 2 must be a whole number >= 3"),
        (_split(x_test=np.zeros((2, 3))), "x_test and y_test go together"),
        (_split(x_test=np.zeros((2, 4)), y_test=np.array([0, 1])), "but x_test's (4,)"),
        (_split(x_test=np.zeros((2, 3)), y_test=np.array([0])), "x_test has 2 examples but"),
    ],
)
def test_bad_data_is_one_clear_error(result: Any, fragment: str) -> None:
    with pytest.raises(DataError, match=f"^data: 'd:load'.*{_escape(fragment)}"):
        to_bundle("d:load", result)


def _escape(text: str) -> str:
    import re

    return re.escape(text)
