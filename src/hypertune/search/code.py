"""A study's own code (`module:callable` models and data loaders): loaded in the driver,
recorded in study.json, found again by `resume` and `rerun`, and sent to Ray's workers.

The workers get a user's model module by value: Ray serialises everything a trial receives with
its cloudpickle (`ray.cloudpickle`), and a module registered with
`ray.cloudpickle.register_pickle_by_value` travels as its code rather than as an import by name
(Ray Serve ships user modules the same way). Nothing is copied into the package or onto the
workers' disks, so it works on a cluster whose nodes have never seen the file. Data loaders run
in the driver only: their arrays reach the trials through Ray's object store.
"""

from __future__ import annotations

import sys
from typing import Any

from hypertune.config import StudyConfig
from hypertune.data import DataBundle, load_dataset
from hypertune.errors import ConfigError, StudyError
from hypertune.models import Architecture, architectures, use_model, use_recorded_model
from hypertune.study.record import StudyRecord
from hypertune.usercode import CodeRecord, is_reference

MODEL = "model.architecture"
DATA = "study.data"


def model_references(config: StudyConfig) -> list[str]:
    """The `module:callable` architectures a study names, fixed or searched."""
    spec = config.space.get("architecture")
    named = [config.model.get("architecture"), *(spec.values if spec else ())]
    return list(dict.fromkeys(str(n) for n in named if is_reference(n)))


def load_study_code(config: StudyConfig) -> tuple[DataBundle, list[dict[str, Any]]]:
    """Import the study's own models (registering them) and load its data.

    Returns the data and the records study.json keeps (reference, file, sha256 each).

    Raises:
        ConfigError: a broken reference (missing module or callable, a module that raises).
        DataError: the data cannot be loaded.
    """
    records = [_record(MODEL, use_model(ref, config.code_dir)) for ref in model_references(config)]
    if is_reference(config.data):
        from hypertune.data.user import use_data

        data, record = use_data(config.data, config.data_options, config.code_dir)
        records.append(_record(DATA, record))
    else:
        data = load_dataset(config.data, **config.data_options)
    return data, records


def load_recorded_code(
    config: StudyConfig, study: StudyRecord
) -> tuple[DataBundle, list[dict[str, Any]]]:
    """The same code and data again for `resume`, `--retry-failed` and `rerun`, from the files
    study.json names.

    Raises:
        ConfigError: a recorded file is gone or changed since the study ran.
        StudyError: the data changed since the study ran (:func:`check_same_data`).
    """
    records = list(study.code)
    use_recorded_models(study)
    data: DataBundle | None = None
    for record in records:
        if record.get("where") == DATA:
            from hypertune.data.user import use_recorded_data

            data = use_recorded_data(record, config.data_options)[0]
    missing = [r for r in model_references(config) if r not in {x["reference"] for x in records}]
    if missing:
        raise ConfigError(f"{MODEL}: '{missing[0]}' has no record in study.json")
    if data is None:
        data = load_dataset(config.data, **config.data_options)
    check_same_data(study, data)
    return data, records


def use_recorded_models(study: StudyRecord) -> None:
    """Register the study's own model builders again from the files study.json names.

    Raises:
        ConfigError: a recorded file is gone or changed since the study ran.
    """
    for record in study.code:
        if record.get("where") == MODEL:
            use_recorded_model(record)


def check_same_data(record: StudyRecord, data: DataBundle) -> None:
    """Refuse data whose fingerprint differs from the one recorded (none recorded: any).

    Raises:
        StudyError: the fingerprints differ.
    """
    if record.fingerprint is not None and data.fingerprint != record.fingerprint:
        raise StudyError(
            f"study '{record.name}': the data changed since it ran (fingerprint "
            f"{data.fingerprint}, recorded {record.fingerprint}); start a new study instead"
        )


def user_architectures(config: StudyConfig) -> dict[str, Architecture]:
    """The study's own architectures, ready to travel to the workers (see module doc)."""
    import ray.cloudpickle

    known = architectures()
    chosen = {ref: known[ref] for ref in model_references(config) if ref in known}
    for ref in chosen:
        module = sys.modules.get(ref.split(":")[0].split(".")[0])
        if module is not None:
            ray.cloudpickle.register_pickle_by_value(module)
    return chosen


def _record(where: str, record: CodeRecord) -> dict[str, Any]:
    return {"where": where, **record.to_dict()}
