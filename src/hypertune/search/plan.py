"""The trials a grid or random study runs: their order and fused packs, planned for the study's
first run and recorded in study.json, so that a resumed study finds the same packs under the
same numbers (or, planned otherwise since, knows it cannot restore Ray's trials).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypertune.config import StudyConfig
from hypertune.data import DataBundle
from hypertune.search import packs
from hypertune.search.order import costliest_first, trial_points
from hypertune.searchers import get_searcher
from hypertune.study import store
from hypertune.study.record import StudyRecord


def planned(
    config: StudyConfig, data: DataBundle, slots: int
) -> tuple[list[dict[str, Any]], list[list[dict[str, Any]]]]:
    """The trials in the order they are handed out and the packs planned for `slots`: what a
    study's first run planned, made again the same way (`rerun` asks which pack a trial had)."""
    points = costliest_first(trial_points(config), config, data)
    return points, packs.plan(points, config, data, slots)


def study_plan(
    config: StudyConfig,
    data: DataBundle,
    path: Path,
    record: StudyRecord,
    slots: int,
    restore: bool,
) -> tuple[list[dict[str, Any]], list[list[dict[str, Any]]]]:
    """A grid or random study's trials in the order they are handed out, and its fused packs
    (empty where no two trials train together).

    The packs are planned for the slots of the study's first run, which study.json records,
    so a resumed study finds the same packs under the same numbers.
    """
    if not get_searcher(config.search).planned:
        return [], []
    if restore and not record.packs:
        return costliest_first(trial_points(config), config, data), []  # it ran unfused
    points, plan = planned(config, data, int(record.packs.get("slots", slots)))
    if all(len(pack) == 1 for pack in plan) and not record.packs:
        return points, []
    if not record.packs:  # recorded before the first trial starts: resume needs it
        record.packs = packs.summary(plan, slots)
        store.write_study(path, record)
    return points, plan


def is_replanned(plan: list[list[dict[str, Any]]], record: StudyRecord, slots: int) -> bool:
    """Whether the packs planned now differ from those the study recorded when it started (or
    it recorded no digest of them): Ray's state then names packs by numbers that may no longer
    hold the same members."""
    if not record.packs:
        return False
    now = packs.summary(plan, int(record.packs.get("slots", slots)))
    return bool(record.packs.get("digest") != now["digest"])
