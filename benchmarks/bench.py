"""`make bench`: what a study costs beyond its training, measured three ways side by side.

For each reference study, the same trial configurations run
  1. floor:        trained one after another in this process, one torch thread each, no Ray;
  2. course-style: a plain Ray Tune script with default settings (no actor reuse, data loaded
                   inside each trial, a DataLoader, a tqdm bar per epoch);
  3. hypertune:    `hypertune.search.run_study`.
Each Ray way gets a fresh local Ray, started as that way starts it (hypertune's as
`hypertuner.py run` does), and is timed from when that Ray is ready: its workers started and
idle. The start-up is printed separately; hypertune also runs once from no Ray at all (start-up
counted). Each way's peak memory (this process plus all its children, Ray's included) is
sampled while it runs.

    efficiency = floor_s / (hypertune_s * concurrent_trials)
    speedup    = course_style_s / hypertune_s
    overhead   = hypertune_s - floor_s / concurrent_trials

Then each study runs once more through the CLI in a fresh process (end to end). The 80-epoch MLP
grid skips the course-style way: it is there to split the overhead into a fixed part and a
part per epoch.

The table goes to stdout and to benchmarks/results.md with the machine and the date.
Usage: python benchmarks/bench.py [--only NAME ...] [--out benchmarks/results.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")

BEGIN, END = "<!-- bench.py writes from here -->", "<!-- bench.py writes up to here -->"
MLP_GRID = ROOT / "benchmarks" / "mlp_grid.toml"
# Study name -> (study file, epochs instead of the file's, or None).
STUDIES = {
    "default (GRU grid)": (ROOT / "configs" / "default.toml", None),
    "MLP grid": (MLP_GRID, None),
    "CNN random": (ROOT / "benchmarks" / "cnn_random.toml", None),
    # The same grid with 4x the training: beside the 20-epoch run, it splits the overhead into
    # a part fixed per study and a part per epoch.
    "MLP grid, 80 epochs": (MLP_GRID, 80),
    # The course's study on the real uWave gestures (3,251 sequences; needs the extracted files,
    # see configs/gestures.toml; HYPERTUNE_DATA_DIR points at them).
    "gestures (GRU grid)": (ROOT / "configs" / "gestures.toml", None),
}
# Their course-style runs would take many minutes and show nothing the 20-epoch MLP's does not.
NO_COURSE = {"MLP grid, 80 epochs", "gestures (GRU grid)"}


class PeakMemory:
    """Samples the resident memory of this process and all its children in a thread."""

    def __init__(self, interval: float = 0.2) -> None:
        import psutil

        self.process = psutil.Process()
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _rss(self) -> int:
        import psutil

        total = 0
        for proc in [self.process, *self.process.children(recursive=True)]:
            with suppress(psutil.Error):
                total += proc.memory_info().rss
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())


@contextmanager
def timed(into: dict[str, float], key: str) -> Iterator[None]:
    start = time.perf_counter()
    with PeakMemory() as memory:
        yield
    into[key] = time.perf_counter() - start
    into[f"{key}_rss"] = memory.peak


def trial_configs(config: Any) -> list[dict[str, Any]]:
    """The searched values and seed of every trial, as hypertune's grid/random search draws them."""
    from hypertune.search.order import trial_points

    if config.search not in ("grid", "random"):
        raise SystemExit(f"bench: {config.name} uses {config.search}; use grid or random")
    return trial_points(config)


def warm_up() -> None:
    """Pay torch's one-time costs here (its import; the first optimizer step imports dynamo),
    so that every study's floor is the training alone, the first one's too."""
    from hypertune.data import load_dataset
    from hypertune.train import TrainSettings, fit

    fit({"architecture": "mlp", "hidden_size": 4}, load_dataset("digits"), TrainSettings(epochs=1))


def run_floor(config: Any, trials: list[dict[str, Any]]) -> None:
    """Every trial in this process, one after another, one torch thread."""
    from hypertune.data import load_dataset
    from hypertune.space import decode_config
    from hypertune.train import TrainSettings, fit

    data = load_dataset(config.data, **config.data_options)
    settings = TrainSettings(epochs=config.epochs, threads=1)
    for trial in trials:
        values = decode_config(trial, config.space)
        seed = int(values.pop("seed"))
        fit({**config.hyperparameters(), **values}, data, settings, seed=seed)


def course_trainable(config: dict[str, Any], study: Any) -> None:
    """Written the way course scripts are: data loaded per trial, DataLoader, tqdm, defaults."""
    import torch
    from ray import tune
    from torch.utils.data import DataLoader, TensorDataset
    from tqdm import tqdm

    from hypertune.data import load_dataset
    from hypertune.models import create_model

    data = load_dataset(study.data)
    params = {**study.hyperparameters(), **{k: v for k, v in config.items() if k != "seed"}}
    torch.manual_seed(int(config["seed"]))
    model = create_model(params, data.input_shape, data.num_classes)
    loader = DataLoader(
        TensorDataset(data.x_train, data.y_train), batch_size=params["batch_size"], shuffle=True
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=float(params.get("lr", 1e-3)))
    loss_fn = torch.nn.CrossEntropyLoss()
    for _ in range(study.epochs):
        model.train()
        for x, y in tqdm(loader, leave=False):
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            logits = model(data.x_valid)
            valid_loss = float(loss_fn(logits, data.y_valid))
        tune.report({"valid_loss": valid_loss})


def run_course_style(config: Any, trials: list[dict[str, Any]], storage: Path) -> None:
    from ray import tune
    from ray.tune.search.basic_variant import BasicVariantGenerator

    names = list(trials[0])
    space = {name: tune.choice(sorted({t[name] for t in trials}, key=str)) for name in names}
    tuner = tune.Tuner(
        tune.with_parameters(course_trainable, study=config),
        param_space=space,
        tune_config=tune.TuneConfig(
            search_alg=BasicVariantGenerator(points_to_evaluate=[dict(t) for t in trials]),
            num_samples=len(trials),
        ),
        run_config=tune.RunConfig(name="course", storage_path=str(storage), verbose=0),
    )
    tuner.fit()


def run_hypertune(config: Any, storage: Path) -> None:
    from hypertune.search import run_study

    run_study(config, storage)


def run_cli(path: Path, epochs: int | None, workdir: Path) -> float:
    """`python hypertuner.py run CONFIG` end to end (start-up, Ray, study, report); seconds."""
    name = f"cli-{int(time.time() * 1000)}"
    command = [sys.executable, str(ROOT / "hypertuner.py"), "run", str(path), "--name", name]
    command += ["--epochs", str(epochs)] if epochs else []
    command += ["--storage", str(workdir / "runs")]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    start = time.perf_counter()
    subprocess.run(command, cwd=workdir, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


@contextmanager
def ray_started(way: str, starts: dict[str, list[float]]) -> Iterator[None]:
    """A fresh local Ray for one way, started the way it starts Ray and ready: its workers have
    started and gone idle. The start-up goes to `starts[way]`, not into the way's time.

    Both start a plain local Ray; Tune then starts each trial's actor in a process of its own
    (with its runtime environment), which imports torch and Ray Tune."""
    import ray

    from hypertune.search import cluster

    start = time.perf_counter()
    if way == "hypertune":
        cluster.start(None)
    else:
        ray.init(include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    wait_for_idle_workers()
    starts.setdefault(way, []).append(time.perf_counter() - start)
    try:
        yield
    finally:
        cluster.stop()
        cluster.wait_stopped()


def wait_for_idle_workers(timeout: float = 60.0, interval: float = 0.25) -> None:
    """Return once Ray's worker processes have started and stopped using CPU (two samples
    `interval` apart without growth), or after `timeout` seconds."""
    import psutil

    me = psutil.Process()
    deadline = time.monotonic() + timeout
    last, still = -1.0, 0
    while time.monotonic() < deadline and still < 2:
        time.sleep(interval)
        used = 0.0
        workers = 0
        for proc in me.children(recursive=True):
            with suppress(psutil.Error):
                command = " ".join(proc.cmdline())
                if command.startswith("ray::") or "default_worker.py" in command:
                    times = proc.cpu_times()
                    used += times.user + times.system
                    workers += 1
        still = still + 1 if workers and used - last < 0.02 else 0
        last = used


def measure(
    name: str, storage: Path, concurrent: int, starts: dict[str, list[float]]
) -> dict[str, Any]:
    from hypertune.config import load_config
    from hypertune.search import cluster

    path, epochs = STUDIES[name]
    config = load_config(path, {"name": f"bench-{int(time.time() * 1000)}", "epochs": epochs})
    trials = trial_configs(config)
    row: dict[str, Any] = {"study": name, "trials": len(trials), "epochs": config.epochs}
    steps: list[tuple[str, Callable[[], None]]] = [
        ("floor", lambda: run_floor(config, trials)),
        ("course", lambda: run_course_style(config, trials, storage)),
        ("hypertune", lambda: run_hypertune(config, storage)),
        # No Ray running: run_study starts one, and its start-up and its workers' imports count.
        ("fresh", lambda: run_hypertune(replace(config, name=f"{config.name}-fresh"), storage)),
    ]
    for key, step in steps:
        if key == "course" and name in NO_COURSE:
            continue
        print(f"  {name}: {key} ...", file=sys.stderr, flush=True)
        ready = ray_started(key, starts) if key in ("course", "hypertune") else nullcontext()
        with ready, timed(row, key):
            step()
        cluster.wait_stopped()
    row["efficiency"] = row["floor"] / (row["hypertune"] * concurrent)
    row["speedup"] = row["course"] / row["hypertune"] if "course" in row else None
    row["vs_floor_per_slot"] = row["hypertune"] / (row["floor"] / concurrent)
    row["overhead"] = row["hypertune"] - row["floor"] / concurrent
    return row


def table(rows: list[dict[str, Any]], concurrent: int, starts: dict[str, list[float]]) -> str:
    lines = [
        "| study | trials × epochs | floor s | course-style s | hypertune s | efficiency | "
        "speedup | hypertune / (floor/slots) | overhead s | hypertune from a fresh Ray s | "
        "CLI end to end s | CLI / (floor/slots) | peak RSS hypertune |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        per_slot = r["floor"] / concurrent
        course = f"{r['course']:.1f}" if "course" in r else "—"
        speedup = f"{r['speedup']:.1f}×" if r["speedup"] is not None else "—"
        lines.append(
            f"| {r['study']} | {r['trials']} × {r['epochs']} | {r['floor']:.1f} | {course} | "
            f"{r['hypertune']:.1f} | {r['efficiency']:.2f} | {speedup} | "
            f"{r['vs_floor_per_slot']:.2f} | {r['overhead']:.1f} | {r['fresh']:.1f} | "
            f"{r['cli']:.1f} | "
            f"{r['cli'] / per_slot:.2f} | {r['hypertune_rss'] / 2**30:.2f} GiB |"
        )
    mean = {way: sum(s) / len(s) for way, s in starts.items() if s}
    lines.append("")
    lines.append(
        f"concurrent trials (slots): {concurrent}. Each Ray way runs on a fresh Ray, started as "
        "that way starts it and ready (its workers started and idle); the start-up is not in "
        f"the table (mean: hypertune's Ray {mean.get('hypertune', 0):.1f} s, its workers "
        "loading torch, Ray Tune and torch's warm-up; a plain `ray.init` "
        f"{mean.get('course', 0):.1f} s). efficiency = floor / (hypertune × slots); speedup = "
        "course-style / hypertune; overhead = hypertune − floor / slots. The floor is measured "
        "after one warm-up fit, so it is the training alone. From a fresh Ray: `run_study` "
        "with no Ray running, so its Ray start-up and the workers' loading count. CLI end to "
        "end: `python hypertuner.py run CONFIG` in a fresh process (imports, its own Ray start "
        "and stop, the study, the report), run after the others: what a user waits for."
    )
    return "\n".join(lines)


def write_results(path: Path, text: str) -> None:
    """Replace the generated part of results.md (between the markers), keep the rest."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    machine = f"{platform.node()}: {os.cpu_count()} cores, {platform.platform()}, Python "
    machine += platform.python_version()
    block = f"{BEGIN}\n{stamp} on {machine}\n\n{text}\n{END}"
    old = path.read_text() if path.exists() else "# Benchmark results\n\n"
    if BEGIN in old and END in old:
        new = old[: old.index(BEGIN)] + block + old[old.index(END) + len(END) :]
    else:
        new = old.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(new)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", help="run only studies whose name has this")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results.md")
    args = parser.parse_args()
    import ray

    from hypertune.errors import DataError

    starts: dict[str, list[float]] = {}
    with ray_started("plain", {}):
        concurrent = int(ray.cluster_resources().get("CPU", 1))
    warm_up()
    rows = []
    with tempfile.TemporaryDirectory(prefix="hypertune-bench-") as tmp:
        for name in STUDIES:
            if args.only and not any(part in name for part in args.only):
                continue
            try:
                rows.append(measure(name, Path(tmp), concurrent, starts))
            except DataError as exc:  # e.g. the gestures files are not on this machine
                print(f"  {name}: skipped ({exc})", file=sys.stderr, flush=True)
        for row in rows:
            print(f"  {row['study']}: CLI ...", file=sys.stderr, flush=True)
            row["cli"] = run_cli(*STUDIES[row["study"]], Path(tmp))
    text = table(rows, concurrent, starts)
    print(text)
    write_results(args.out, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
