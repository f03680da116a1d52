"""The Ray cluster a study runs on: start or join it, check it, and count its free slots."""

from __future__ import annotations

import logging
import os
import socket

import ray

from hypertune.config import StudyConfig
from hypertune.errors import ConfigError, StudyError


def check_address(address: str | None) -> None:
    """Refuse an unreachable HOST:PORT at once (Ray itself would retry for minutes).

    Raises:
        StudyError: nothing listens at the address given or in RAY_ADDRESS.
    """
    target = address or os.environ.get("RAY_ADDRESS") or ""
    host, sep, port = target.rpartition(":")
    if not sep or "://" in target or not port.isdigit():
        return  # no address, "auto", "local", or a ray:// client address: Ray decides
    try:
        socket.create_connection((host, int(port)), timeout=3).close()
    except OSError as exc:
        raise StudyError(
            f"--address: cannot reach a Ray cluster at {target} ({exc.strerror or exc}); "
            "start one with `ray start --head` or check the address"
        ) from exc


def start(address: str | None) -> bool:
    """Start (or join, with `address` or RAY_ADDRESS) Ray; True if this call started it.

    Ray's usage statistics stay off unless RAY_USAGE_STATS_ENABLED says otherwise.
    """
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    _skip_callback_telemetry()
    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    # The classic reporter honours verbose=0; the CLI shows its own progress line.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    try:
        ray.init(
            address=address or os.environ.get("RAY_ADDRESS"),
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.ERROR,
            configure_logging=True,
        )
    except ConnectionError as exc:
        raise StudyError(f"--address: cannot reach a Ray cluster at {address} ({exc})") from exc
    return True


def check_local_gpu(config: StudyConfig, address: str | None) -> None:
    """Refuse GPUs per trial on a local run without a GPU before the study folder exists."""
    if config.gpus_per_trial <= 0 or address or os.environ.get("RAY_ADDRESS"):
        return
    if ray.is_initialized():
        return  # free_slots asks the running cluster
    import torch

    if not torch.cuda.is_available():
        raise ConfigError("resources.gpus_per_trial: no GPU on this machine; use 0")


def free_slots(config: StudyConfig) -> int:
    """Trials that fit at once on the cluster's CPUs and GPUs."""
    resources = ray.cluster_resources()
    limits = []
    if config.cpus_per_trial > 0:
        limits.append(int(resources.get("CPU", 1) // config.cpus_per_trial))
    if config.gpus_per_trial > 0:
        gpus = resources.get("GPU", 0)
        if gpus <= 0:
            raise ConfigError("resources.gpus_per_trial: no GPU in the Ray cluster; use 0")
        limits.append(int(gpus // config.gpus_per_trial))
    slots = max(1, min(limits) if limits else 1)
    return min(slots, config.max_concurrent) if config.max_concurrent else slots


def _skip_callback_telemetry() -> None:
    """Leave out Ray's count of the callbacks passed to a Tuner when usage stats are off.

    To classify callbacks for its telemetry, Ray imports its MLflow, W&B and Comet integrations
    on every `Tuner.fit`; with MLflow installed that alone is half a second of each study's
    start-up, spent for statistics that are not sent.
    """
    if os.environ.get("RAY_USAGE_STATS_ENABLED") != "0":
        return
    from ray.air._internal import usage

    usage.tag_callbacks = _no_tag


def _no_tag(callbacks: object) -> bool:
    return False
