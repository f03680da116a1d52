"""Errors a user can cause. The CLI prints their message on one line and exits 2."""

import re

# An echoed value longer than this is cut (a 10 MB string in a study file is one line still).
SHOWN = 120
# A run without a space longer than this is cut in a message (a path stays whole).
WORD = 300
# A message is at most this long on its one line.
LINE = 1000
_LONG_WORD = re.compile(r"[^\s'\",;]{%d,}" % (WORD + 1))  # noqa: UP031 (braces of a regex)


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


def shorten(text: str, limit: int = SHOWN) -> str:
    """`text` if it is at most `limit` characters, else its start and how long it was."""
    if len(text) <= limit:
        return text
    return f"{text[: limit - 30]}... ({len(text):,} characters)"


def one_line(message: str) -> str:
    """`message` as one line of readable length: line breaks become spaces, every run of more
    than :data:`WORD` characters without a space is cut, then the line itself, keeping its
    start (the field) and its end (what to do)."""
    flat = " ".join(message.split())
    flat = _LONG_WORD.sub(lambda m: shorten(m.group(), WORD), flat)
    if len(flat) <= LINE:
        return flat
    cut = len(flat) - LINE + 5
    head = (LINE - 5) * 2 // 3
    return f"{flat[:head]} ... {flat[head + cut :]}"
