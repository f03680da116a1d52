"""A user's own code named in a study: `"module:callable"` references.

`[model] architecture = "mynet:build"` and `[study] data = "mydata:load"` name a callable in a
module beside the study file (or importable from the Python path). The module is imported in
the driver only; its file and a hash of it are recorded in study.json, so that `rerun` and
`resume` can find the same code again and refuse when it changed. How the code reaches Ray's
workers is the search adapter's business (:mod:`hypertune.search.run`).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from hypertune.errors import ConfigError, shorten

# module (dotted) ":" attribute (dotted), e.g. "mynet:build" or "models.small:Net.build"
_REFERENCE = re.compile(r"^([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*):([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)$")


MAX_NAME = 255  # characters in a file name (Linux, macOS, Windows)


@dataclass(frozen=True)
class CodeRecord:
    """Where a referenced callable came from, as study.json keeps it."""

    reference: str  # "module:callable" as written
    file: str | None  # the module's file (absolute); None for a module without one
    sha256: str | None  # of that file's bytes

    def to_dict(self) -> dict[str, Any]:
        return {"reference": self.reference, "file": self.file, "sha256": self.sha256}


def is_reference(text: Any) -> bool:
    """True for a `module:callable` string (built-in names never hold a colon)."""
    return isinstance(text, str) and ":" in text


def file_hash(path: str | Path) -> str:
    """sha256 of a file's bytes, as hex."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load(
    reference: str, where: str, search_dir: str | Path | None = None
) -> tuple[Callable[..., Any], CodeRecord]:
    """Import the callable `reference` names; `search_dir` (the study file's folder) first.

    Args:
        reference: `module:callable`.
        where: the setting that named it, for error messages (e.g. ``model.architecture``).
        search_dir: a folder searched before the Python path for `module.py` or `module/`.

    Raises:
        ConfigError: a malformed reference, a module that is missing or raises on import, or
            an attribute that is missing or not callable (one line each).
    """
    match = _REFERENCE.match(reference.strip())
    if not match:
        raise ConfigError(
            f"{where}: '{reference}' is not a reference; write module:callable, e.g. mynet:build"
        )
    module_name, attr = match.groups()
    if max(len(part) for part in module_name.split(".")) > MAX_NAME - len(".py"):
        raise ConfigError(
            f"{where}: module '{shorten(module_name)}' cannot be a file: a file name has at "
            f"most {MAX_NAME} characters"
        )
    module = _import(module_name, reference, where, search_dir)
    target: Any = module
    for part in attr.split("."):
        if not hasattr(target, part):
            public = sorted(
                name
                for name, value in vars(module).items()
                if callable(value) and not name.startswith("_")
            )
            raise ConfigError(
                f"{where}: '{reference}': module '{module_name}' has no '{attr}'; its callables: "
                f"{', '.join(public) or 'none'}"
            )
        target = getattr(target, part)
    if not callable(target):
        raise ConfigError(f"{where}: '{reference}' is a {type(target).__name__}, not a callable")
    file = getattr(module, "__file__", None)
    path = str(Path(file).resolve()) if file else None
    return target, CodeRecord(reference.strip(), path, file_hash(path) if path else None)


def load_recorded(record: Mapping[str, Any], where: str) -> tuple[Callable[..., Any], CodeRecord]:
    """Import the callable a study.json record names, from the file it names.

    Raises:
        ConfigError: the file is gone, or it changed since the study ran.
    """
    file = record.get("file")
    reference = str(record.get("reference"))
    if file is None:
        return load(reference, where)
    path = Path(file)
    if not path.is_file():
        raise ConfigError(f"{where}: '{reference}': {path} is gone; the study's code is needed")
    digest = file_hash(path)
    if record.get("sha256") and digest != record["sha256"]:
        raise ConfigError(
            f"{where}: '{reference}': {path} changed since the study ran (sha256 {digest[:16]}, "
            f"recorded {str(record['sha256'])[:16]}); restore it, or start a new study"
        )
    depth = reference.split(":")[0].count(".") + (path.name == "__init__.py")
    return load(reference, where, path.parents[depth])


def _import(name: str, reference: str, where: str, search_dir: str | Path | None) -> ModuleType:
    top = name.split(".")[0]
    local = _beside(top, search_dir)
    try:
        if local is not None:
            return _import_from(name, top, local)
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and name.startswith(exc.name):
            folder = f" in {search_dir} or" if search_dir is not None else ""
            raise ConfigError(
                f"{where}: '{reference}': no module '{name}'{folder} on the Python path"
            ) from exc
        raise _failed(where, reference, exc) from exc
    except Exception as exc:  # the user's module raised while it was imported
        raise _failed(where, reference, exc) from exc


def _failed(where: str, reference: str, exc: BaseException) -> ConfigError:
    text = str(exc).strip().splitlines()
    detail = f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
    return ConfigError(f"{where}: '{reference}': importing the module raised {detail}")


def _beside(top: str, search_dir: str | Path | None) -> Path | None:
    """`top.py` or the package `top/` in `search_dir`, if there is one."""
    if search_dir is None:
        return None
    folder = Path(search_dir).resolve()
    for candidate in (folder / f"{top}.py", folder / top / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _import_from(name: str, top: str, file: Path) -> ModuleType:
    """Import `name` whose top-level module is `file`, afresh when the loaded one differs.

    A module of that name loaded from another file (another study's `mynet.py`), or from this
    file before it changed, is replaced: a study always trains the code its record names.
    """
    loaded = sys.modules.get(top)
    current = getattr(loaded, "__file__", None)
    fresh = (
        loaded is None
        or current is None
        or Path(current).resolve() != file
        or getattr(loaded, "__hypertune_sha256__", None) != file_hash(file)
    )
    if fresh:
        for key in [k for k in sys.modules if k == top or k.startswith(f"{top}.")]:
            del sys.modules[key]
        locations = [str(file.parent)] if file.name == "__init__.py" else None
        spec = importlib.util.spec_from_file_location(
            top, file, submodule_search_locations=locations
        )
        if spec is None or spec.loader is None:
            raise ModuleNotFoundError(f"No module named '{top}'", name=top)
        module = importlib.util.module_from_spec(spec)
        sys.modules[top] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[top]
            raise
        module.__hypertune_sha256__ = file_hash(file)  # type: ignore[attr-defined]
    return importlib.import_module(name)
