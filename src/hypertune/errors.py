"""Errors a user can cause. The CLI prints their message on one line and exits 2."""


class HypertuneError(Exception):
    """Base of every error that is the user's to fix (not a bug in hypertune)."""


class ConfigError(HypertuneError, ValueError):
    """A study file, CLI flag or model setting is missing, unknown or out of range."""


class SpaceError(ConfigError):
    """A search-space entry (range string, list or range table) is malformed."""


class DataError(HypertuneError):
    """A dataset is unknown, unavailable offline, or malformed."""


class StudyError(HypertuneError):
    """A study is unknown, already exists, or its stored files are unusable."""


class ReportError(HypertuneError, ValueError):
    """Results cannot be drawn as asked (unknown column, mixed budgets, no usable trials)."""


class OutputError(HypertuneError):
    """A file hypertune would write cannot be: its place holds what hypertune did not write,
    or the disk is full."""


class DiskFullError(StudyError):
    """A study's file could not be written: no space left on its device."""
