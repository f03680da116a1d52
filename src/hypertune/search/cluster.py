"""The Ray a study runs on: start, join or stop it, check it, and count its slots."""

from __future__ import annotations

import gc
import logging
import os
import shutil
import signal
import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ray

from hypertune.config import StudyConfig
from hypertune.errors import ConfigError, StudyError

# The address that asks for a Ray of the study's own, as Ray spells it.
LOCAL = "local"


def ray_address(address: str | None) -> str | None:
    """The Ray cluster to join: `address`, else $RAY_ADDRESS; None for a Ray of the study's own
    (no address, or ``local``)."""
    target = (address or os.environ.get("RAY_ADDRESS") or "").strip()
    return None if target.lower() in ("", LOCAL) else target


def check_address(address: str | None) -> None:
    """Refuse an unreachable HOST:PORT at once (Ray itself would retry for minutes).

    Raises:
        StudyError: nothing listens at the address given or in RAY_ADDRESS.
    """
    target = ray_address(address) or ""
    reached = _host_port(target)
    if reached is None:
        return  # no address, "auto", "local", or a ray:// client address: Ray decides
    try:
        socket.create_connection(reached, timeout=3).close()
    except OSError as exc:
        raise StudyError(
            f"--address: cannot reach a Ray cluster at {target} ({exc.strerror or exc}); "
            "start one with `ray start --head` or check the address"
        ) from exc


def _host_port(target: str) -> tuple[str, int] | None:
    """A HOST:PORT address as the pair to connect to; None for anything else ("auto", "local",
    a ray:// client address), where Ray decides."""
    host, sep, port = target.rpartition(":")
    if not sep or "://" in target or not port.isdigit():
        return None
    return host, int(port)


# Memory one trial's process may take (torch, Ray, the data, the model, with room to spare):
# trials at once never need more than the machine or cluster has.
TRIAL_MEMORY = 2**30

# Ray's switch for its token authentication; "disabled" would let anyone who reaches the machine
# run code through a study's Ray.
AUTH_MODE_VARIABLE = "RAY_AUTH_MODE"

# The local Ray this process started: its session folder (logs and copies of trial results,
# removed when it stops).
_local: dict[str, Any] = {}
# Shutdowns begun by stop() and not yet waited for.
_stopping: list[threading.Thread] = []


def start(address: str | None, num_cpus: int | None = None) -> bool:
    """Start (or join, with `address` or RAY_ADDRESS) Ray; True if this call started it.

    A Ray started here (no address) uses `num_cpus` CPUs (default: all of them).

    Without an address a study always starts a Ray of its own (``ray.init(address="local")``),
    never joins the cluster that Ray's temporary folder names as the machine's latest (another
    study's, the user's own `ray start`, or another user's), and removes only the session it
    created. A local Ray keeps Ray's token authentication (Ray's default for a local cluster):
    a Ray started here with RAY_AUTH_MODE=disabled is refused, however it was asked for (no
    address, ``local``). Ray reads its other settings (usage
    statistics, log deduplication, Tune's output) from the environment, which the CLI sets
    before it calls the library; this function changes no environment variable.

    Raises:
        StudyError: a local Ray was asked for with authentication disabled, or the cluster at
            `address` cannot be reached.
    """
    if not ray_address(address) and not ray.is_initialized():
        check_authentication()
    wait_stopped()
    if ray.is_initialized():
        return False
    target = ray_address(address)
    options: dict[str, Any] = {} if target else {"num_cpus": num_cpus}
    # `address=None` would join the machine's latest cluster (Ray's temporary folder names it).
    kept = _callers_sigterm_handler()
    try:
        ray.init(
            address=target or LOCAL,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.ERROR,
            configure_logging=True,
            **options,
        )
    except (ConnectionError, ray.exceptions.AuthenticationError) as exc:
        # Without a token Ray refuses at once where RAY_AUTH_MODE=token is set here, and
        # otherwise retries for about 20 s and says only that it failed to connect.
        raise StudyError(_refused(str(target), exc)) from None
    finally:
        if kept is not None:
            signal.signal(signal.SIGTERM, kept)
    if not target:
        context = ray.get_runtime_context()
        session = Path(context.get_temp_dir()) / context.get_session_name()
        _local.update(session=session)
    return True


def _refused(target: str, exc: Exception) -> str:
    """Why joining the cluster at `target` failed, as one line.

    A HOST:PORT that :func:`check_address` reached and that still fails to connect is a
    cluster that refused this client: with Ray's token authentication, a missing or wrong
    token."""
    checked = _host_port(target) is not None  # check_address reached it
    if not checked and not isinstance(exc, ray.exceptions.AuthenticationError):
        return f"--address: cannot reach a Ray cluster at {target} ({exc})"
    token = [
        where
        for where, present in (
            ("RAY_AUTH_TOKEN", bool(os.environ.get("RAY_AUTH_TOKEN"))),
            ("RAY_AUTH_TOKEN_PATH", bool(os.environ.get("RAY_AUTH_TOKEN_PATH"))),
            ("~/.ray/auth_token", (Path.home() / ".ray" / "auth_token").is_file()),
        )
        if present
    ]
    which = f"the token of {token[0]} is not the cluster's" if token else "no token here"
    return (
        f"--address: the Ray cluster at {target} did not accept this client ({which}; or "
        "it is not a Ray address); copy the head's ~/.ray/auth_token here or set "
        "RAY_AUTH_TOKEN to it (docs/cluster.md)"
    )


def _callers_sigterm_handler() -> Callable[..., Any] | None:
    """The Python SIGTERM handler the caller installed (the CLI's), which `ray.init` would
    replace with Ray's own (an exit, and its core worker's stack dump and abort); None if the
    caller installed none, or this is not the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return None
    handler = signal.getsignal(signal.SIGTERM)
    return handler if callable(handler) else None


def check_authentication() -> None:
    """Refuse to start a local Ray whose authentication the environment switches off.

    Raises:
        StudyError: RAY_AUTH_MODE is set to anything but ``token``.
    """
    mode = os.environ.get(AUTH_MODE_VARIABLE)
    if mode is not None and mode.strip().lower() != "token":
        raise StudyError(
            f"{AUTH_MODE_VARIABLE}={mode}: a local Ray without authentication lets anyone who "
            f"can reach this machine run code through the study; unset {AUTH_MODE_VARIABLE} "
            "(Ray then protects its local cluster with a token)"
        )


def stop() -> None:
    """Shut down the Ray that :func:`start` started, in the background.

    Most of `ray.shutdown` is waiting for Ray's processes to exit, time in which the caller can
    already read the results and draw the report. The shutdown thread is
    not a daemon, so the interpreter waits for it before it exits; :func:`start` waits too.
    """
    session = _local.get("session")
    _local.clear()
    # Ray objects in garbage cycles (a finished Tuner's references into the object store) are
    # freed now, while Ray runs: freed by a later collection in this thread, during the
    # shutdown, they reach into a core worker being torn down, and Ray ends the process.
    gc.collect()
    if sys.exc_info()[0] is not None:
        # An error is on its way up, its traceback holding the study's Ray objects: stop Ray
        # before they are freed. Nothing is drawn on this path that the wait would delay.
        _shutdown(session)
        return
    thread = threading.Thread(target=_shutdown, args=(session,), name="hypertune-ray-shutdown")
    thread.start()
    _stopping.append(thread)


def _shutdown(session: Path | None) -> None:
    """Stop Ray, then remove the session folder of a Ray started here (its logs and copies of
    every trial's results would otherwise stay in the temporary directory)."""
    ray.shutdown()
    if session is None:
        return
    shutil.rmtree(session, ignore_errors=True)
    latest = session.parent / "session_latest"
    if latest.is_symlink() and Path(os.readlink(latest)).name == session.name:
        latest.unlink(missing_ok=True)


def wait_stopped() -> None:
    """Return once every shutdown begun by :func:`stop` has finished."""
    while _stopping:
        _stopping.pop().join()


def check_local_resources(config: StudyConfig, address: str | None) -> None:
    """Refuse, before the study folder exists, a trial that this machine could never start:
    more CPUs per trial than it has, or GPUs where it has none (a cluster is asked by
    :func:`free_slots`)."""
    if ray_address(address):
        return
    cpus = os.cpu_count() or 1
    if config.cpus_per_trial > cpus:
        raise ConfigError(
            f"resources.cpus_per_trial: {config.cpus_per_trial:g} CPUs per trial, but this "
            f"machine has {cpus}; a trial could never start"
        )
    if config.gpus_per_trial <= 0 or ray.is_initialized():
        return  # free_slots asks the running cluster
    import torch

    if not torch.cuda.is_available():
        raise ConfigError("resources.gpus_per_trial: no GPU on this machine; use 0")
    if config.gpus_per_trial > torch.cuda.device_count():
        raise ConfigError(
            f"resources.gpus_per_trial: {config.gpus_per_trial:g} GPUs per trial, but this "
            f"machine has {torch.cuda.device_count()}; a trial could never start"
        )


def free_slots(config: StudyConfig) -> int:
    """Trials that fit at once on the cluster's CPUs and GPUs."""
    resources = ray.cluster_resources()
    gpus = resources.get("GPU", 0)
    if config.gpus_per_trial > 0 and gpus <= 0:
        raise ConfigError("resources.gpus_per_trial: no GPU in the Ray cluster; use 0")
    for key, kind in (("cpus_per_trial", "CPU"), ("gpus_per_trial", "GPU")):
        wanted, held = getattr(config, key), resources.get(kind, 0)
        if wanted > held:
            raise ConfigError(
                f"resources.{key}: {wanted:g} per trial, but the Ray cluster has {held:g} "
                f"{kind}s in all; a trial could never start"
            )
    return _slots(config, resources.get("CPU", 1), gpus, resources.get("memory", 0))


def _slots(config: StudyConfig, cpus: float, gpus: float, memory: float) -> int:
    """Trials at once: as many as the CPUs and GPUs hold, and never more than the memory does
    (fractional CPUs or GPUs per trial would otherwise start hundreds of processes)."""
    limits = [int(memory // TRIAL_MEMORY)] if memory > 0 else []
    if config.cpus_per_trial > 0:
        limits.append(int(cpus // config.cpus_per_trial))
    if config.gpus_per_trial > 0:
        limits.append(int(gpus // config.gpus_per_trial))
    slots = max(1, min(limits) if limits else 1)
    return min(slots, config.max_concurrent) if config.max_concurrent else slots
