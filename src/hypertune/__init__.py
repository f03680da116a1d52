"""hypertune: how do two hyperparameters of my PyTorch model interact?"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hypertune.config import StudyConfig

__version__ = "0.1.0"

__all__ = ["__version__", "keep_best", "load_best", "run_study"]


def run_study(
    config: StudyConfig | Mapping[str, Any] | str | Path,
    storage: str | Path = "runs",
    *,
    code_dir: str | Path | None = None,
    address: str | None = None,
    reports: str | Path | None = "reports",
    progress: Callable[[Any], None] | None = None,
) -> Path:
    """Run a study from Python, as `python hypertuner.py run` does; return its folder.

    Args:
        config: a study file's path, a dict shaped like one (``{"study": {...}, "model":
            {...}, "space": {...}}``; a parameter given one value is fixed), or a validated
            :class:`~hypertune.config.StudyConfig`.
        storage: folder of studies; the study lives in storage/<name>/.
        code_dir: where `module:callable` references (``"mynet:build"``) are looked up before
            the Python path (default: the study file's folder, or the current folder).
        address: a Ray cluster to join (default: $RAY_ADDRESS, else a Ray started here and
            stopped when the study ends).
        reports: where the heatmaps and report.pdf go (reports/<name>/); None for none.
        progress: called with a :class:`hypertune.search.Progress` as trials advance.

    Raises:
        hypertune.errors.HypertuneError: bad configuration, unavailable data, a taken name.
    """
    from dataclasses import replace

    from hypertune.config import StudyConfig, build_config, load_config

    if isinstance(config, str | Path):
        study = load_config(config)
        if code_dir is not None:
            study = replace(study, code_dir=str(Path(code_dir).resolve()))
    elif isinstance(config, StudyConfig):
        study = config
        if code_dir is not None or study.code_dir is None:
            study = replace(study, code_dir=str(Path(code_dir or ".").resolve()))
    else:
        study = build_config(config, code_dir=code_dir or ".")
    from hypertune.search import run_study as run

    path = run(study, storage, address, progress=progress)
    if reports is not None:
        from hypertune.report import write_report
        from hypertune.study.store import study_dir
        from hypertune.study.stored import load_study

        write_report(load_study(storage, study.name), study_dir(reports, study.name))
    return path


def keep_best(storage: str | Path, name: str, trial_id: str | None = None) -> Any:
    """Keep a study's best trial's (or `trial_id`'s) model in storage/<name>/best/: the
    weights the study kept of it (keep_weights), else the trial trained again. Returns a
    :class:`hypertune.best.BestModel` with its validation metrics (recorded, and of the model
    now) and its test-split metrics where the data has a test split."""
    from hypertune.best import keep_best as keep

    return keep(storage, name, trial_id)


def load_best(storage: str | Path, name: str, trial_id: str | None = None) -> Any:
    """The model `keep_best` (or `best NAME`) kept for study `name`, or with `trial_id` the
    weights a study run with keep_weights kept of that trial: a torch module with its trained
    weights, in eval mode."""
    from hypertune.best import load_best as load

    return load(storage, name, trial_id)
