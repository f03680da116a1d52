"""One study as the commands after `run` read it: its record (study.json), its trials
(results.csv) and, where kept, its learning curves (curves.csv). The value that `report` and
`compare` take."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from hypertune.searchers import known_searcher
from hypertune.study.curves import CURVE_COLUMNS, load_curves
from hypertune.study.record import StudyRecord
from hypertune.study.store import read_results, read_study, study_dir


@dataclass(frozen=True)
class Study:
    """A study's record, its results table and its curves (empty where it kept none)."""

    record: StudyRecord
    results: pd.DataFrame
    curves: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=CURVE_COLUMNS))

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def adaptive(self) -> bool:
        """Its search placed each trial by the results before it (Bayesian, TPE)."""
        searcher = known_searcher(self.record.search)
        return searcher is not None and searcher.adaptive


def load_study(storage: str | Path, name: str) -> Study:
    """The study `name` under `storage`, read in full.

    Raises:
        StudyError: no such study, or its files cannot be read.
    """
    record = read_study(storage, name)
    return Study(record, read_results(storage, name), load_curves(study_dir(storage, name)))
