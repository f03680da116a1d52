"""A report replaces only an earlier report of the same study: a study's own folder, a user's
files or another study's report in the way end as one `error:` line, and nothing is deleted."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from hypertune.cli import main
from hypertune.report.files import MANIFEST
from test_report_page import grid_rows, make_study


@pytest.fixture
def storage(tmp_path: Path) -> Path:
    make_study(tmp_path / "runs", "s1a", grid_rows(), ["lr", "hidden_size", "dropout"])
    return tmp_path / "runs"


def report(storage: Path, out: Path, name: str = "s1a") -> int:
    return main(["report", name, "--storage", str(storage), "--out", str(out), "--x", "lr",
                 "--y", "hidden_size"])  # fmt: skip


def files_under(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_out_equal_to_the_storage_is_refused_and_the_study_stays(
    storage: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = files_under(storage)
    assert report(storage, storage) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --out: ") and "inside --storage" in err
    assert len(err.splitlines()) == 1
    assert files_under(storage) == before
    assert main(["show", "s1a", "--storage", str(storage)]) == 0


def test_out_inside_the_storage_is_refused(
    storage: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert report(storage, storage / "s1a") == 2
    assert "inside --storage" in capsys.readouterr().err
    assert not (storage / "s1a" / "s1a").exists()


def test_a_folder_of_user_files_is_never_replaced(
    storage: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    (home / "s1a").mkdir(parents=True)
    (home / "s1a" / "thesis.tex").write_text("thesis")
    assert report(storage, home) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --out: ") and "thesis.tex" in err
    assert (home / "s1a" / "thesis.tex").read_text() == "thesis"
    assert sorted(p.name for p in home.iterdir()) == ["s1a"]  # no staging folder left


def test_a_report_of_another_study_is_not_replaced(
    storage: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_study(storage, "other", grid_rows(), ["lr", "hidden_size", "dropout"])
    out = tmp_path / "out"
    assert report(storage, out, "other") == 0
    (out / "other").rename(out / "s1a")  # the other study's report now in s1a's place
    before = files_under(out)
    assert report(storage, out) == 2
    assert "holds the report of study 'other'" in capsys.readouterr().err
    assert files_under(out) == before


def test_an_earlier_report_of_the_same_study_is_replaced(storage: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert report(storage, out) == 0
    manifest = json.loads((out / "s1a" / MANIFEST).read_text())
    assert manifest["study"] == "s1a" and "report.pdf" in manifest["files"]
    (out / "s1a" / "report.md").write_text("stale")
    assert report(storage, out) == 0
    assert (out / "s1a" / "report.md").read_text() != "stale"
    assert sorted(p.name for p in out.iterdir()) == ["s1a"]


def test_a_report_from_before_manifests_is_replaced(storage: Path, tmp_path: Path) -> None:
    old = tmp_path / "out" / "s1a"
    old.mkdir(parents=True)
    for name in ("report.pdf", "report.md", "pairs.png", "heatmap_lr__dropout.png"):
        (old / name).write_text("old")
    assert report(storage, tmp_path / "out") == 0
    assert (old / MANIFEST).exists()
    assert all(p.read_bytes() != b"old" for p in old.iterdir())  # the whole old set replaced


def test_a_linked_report_folder_is_written_through_the_link(storage: Path, tmp_path: Path) -> None:
    real = tmp_path / "elsewhere" / "s1a"
    real.mkdir(parents=True)
    out = tmp_path / "out"
    out.mkdir()
    (out / "s1a").symlink_to(real)
    assert report(storage, out) == 0
    assert report(storage, out) == 0  # again: it replaces the folder the link points to
    assert (out / "s1a").is_symlink() and (real / "report.pdf").exists()
    assert sorted(p.name for p in out.iterdir()) == ["s1a"]  # no staging entry left
    assert sorted(p.name for p in real.parent.iterdir()) == ["s1a"]


def test_a_full_disk_is_one_error_line_and_keeps_the_old_report(
    storage: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = tmp_path / "out"
    assert report(storage, out) == 0
    before = files_under(out)

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(28, os.strerror(28))

    monkeypatch.setattr("hypertune.report.files._write_manifest", full)
    assert report(storage, out) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --out: no space left") and len(err.splitlines()) == 1
    assert files_under(out) == before
    assert sorted(p.name for p in out.iterdir()) == ["s1a"]


def test_run_with_out_equal_to_storage_is_refused_before_anything_runs(
    tiny_study: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    where = str(tmp_path / "x")
    assert main(["run", str(tiny_study), "--smoke", "--storage", where, "--out", where]) == 2
    assert "inside --storage" in capsys.readouterr().err
    assert not (tmp_path / "x" / "tiny").exists()
