"""Fused packs against the same trials trained alone, and the default study against a baseline.

Measured side by side in one run, on this machine:
  1. floor:        the same-shape study's 16 trials (benchmarks/same_shape.toml) trained one
                   after another in this process, one torch thread, plain torch (one
                   `nn.Module` and `torch.optim` per trial, `hypertune.train.fit_module`),
                   before the runs below and again after them (the machine's speed moves);
  1b. Ray alone:   a hand-written Ray Tune script in a fresh process whose `cores` trials only
                   import torch and report once: what any Ray Tune study of torch trials pays
                   before and after training (Python's start, imports, Ray's start and stop);
  2. fused:        `python hypertuner.py run same_shape.toml` end to end in a fresh process
                   (imports, Ray's start and stop, the study, the report);
  3. unfused:      the same with `--no-fuse` (every trial its own Ray trial);
  4. default:      `python hypertuner.py run configs/default.toml` end to end (a GRU grid of
                   4 widths x 3 depths, which fuses in packs of one width), with and without
                   `--no-fuse`, alternating, `--repeats` times each; then the largest
                   difference in accuracy of one configuration between the two.

    ratio = end-to-end seconds / (floor seconds / cores), against the faster of the two floors

Usage: python benchmarks/fused_bench.py [--epochs E] [--repeats N] [--skip-same-shape]
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

SAME_SHAPE = ROOT / "benchmarks" / "same_shape.toml"
DEFAULT = ROOT / "configs" / "default.toml"


def floor(epochs: int) -> float:
    """Seconds to train the same-shape study's trials one after another, plain torch."""
    import torch

    from hypertune.config import load_config
    from hypertune.data import load_dataset
    from hypertune.search.order import trial_points
    from hypertune.space import SEED_KEY
    from hypertune.train import TrainSettings, fit_module

    torch.set_num_threads(1)
    config = load_config(SAME_SHAPE, {"epochs": epochs})
    data = load_dataset(config.data)
    settings = TrainSettings(epochs=epochs)
    fit_module({**config.model, "lr": 1e-3}, data, TrainSettings(epochs=1))  # warm-up
    start = time.perf_counter()
    for point in trial_points(config):
        values = {**config.model, **{k: v for k, v in point.items() if k != SEED_KEY}}
        fit_module(values, data, settings, seed=int(point[SEED_KEY]))
    return time.perf_counter() - start


RAY_ALONE = """
import sys
from ray import tune

def trial(config):
    import torch  # as a study's trial process does

    tune.report({"x": float(torch.zeros(1).sum())})

tuner = tune.Tuner(
    trial,
    param_space={"i": tune.grid_search(list(range(int(sys.argv[2]))))},
    run_config=tune.RunConfig(storage_path=sys.argv[1], verbose=0),
)
assert not tuner.fit().errors
"""


def ray_alone(workdir: Path, cores: int) -> float:
    """Seconds for a Ray Tune study of `cores` trials that train nothing, end to end."""
    command = [sys.executable, "-c", RAY_ALONE, str(workdir / "ray-alone"), str(cores)]
    start = time.perf_counter()
    subprocess.run(command, cwd=workdir, check=True, capture_output=True)
    return time.perf_counter() - start


def cli(tree: Path, study: Path, workdir: Path, *flags: str) -> tuple[float, Path]:
    """`python hypertuner.py run STUDY` from `tree`, end to end, in a fresh process; seconds
    and the study's results.csv."""
    name = f"b{time.time_ns()}"
    command = [sys.executable, str(tree / "hypertuner.py"), "run", str(study), "--name", name]
    command += ["--storage", str(workdir / "runs"), *flags]
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    start = time.perf_counter()
    subprocess.run(command, cwd=workdir, env=env, check=True, capture_output=True)
    return time.perf_counter() - start, workdir / "runs" / name / "results.csv"


def accuracies(results: Path) -> dict[tuple[str, str], float]:
    """Each configuration's final accuracy in a default-study results.csv."""
    with results.open() as f:
        return {
            (r["num_layers"], r["hidden_size"]): float(r["accuracy"]) for r in csv.DictReader(f)
        }


def same_shape(epochs: int, work: Path, cores: int) -> None:
    before = floor(epochs)
    alone_s = ray_alone(work, cores)
    fused_s, _ = cli(ROOT, SAME_SHAPE, work, "--epochs", str(epochs))
    unfused_s, _ = cli(ROOT, SAME_SHAPE, work, "--epochs", str(epochs), "--no-fuse")
    after = floor(epochs)
    floor_s = min(before, after)
    print(f"same-shape MLP, 16 trials x {epochs} epochs, {cores} cores")
    print(f"  floor (plain torch, one trial after another): {before:.1f} s, after: {after:.1f} s")
    rows = (
        (f"Ray Tune alone ({cores} trials)", alone_s),
        ("fused", fused_s),
        ("unfused (--no-fuse)", unfused_s),
    )
    for label, seconds in rows:
        print(
            f"  {label:24s} end to end {seconds:6.1f} s   ratio {seconds / (floor_s / cores):.2f}"
        )


def default_study(repeats: int, work: Path) -> None:
    times: dict[str, list[float]] = {"fused": [], "--no-fuse": []}
    diffs: list[float] = []
    for _ in range(repeats):
        fused_s, fused_csv = cli(ROOT, DEFAULT, work)
        unfused_s, unfused_csv = cli(ROOT, DEFAULT, work, "--no-fuse")
        times["fused"].append(fused_s)
        times["--no-fuse"].append(unfused_s)
        mine, alone = accuracies(fused_csv), accuracies(unfused_csv)
        diffs.append(max(abs(mine[k] - alone[k]) for k in alone))
    print(f"default study end to end, {repeats} runs each, alternating:")
    for label, runs in times.items():
        listed = ", ".join(f"{t:.1f}" for t in runs)
        print(f"  {label:22s} median {statistics.median(runs):5.1f} s   ({listed})")
    fused, unfused = (statistics.median(t) for t in times.values())
    print(f"  fused / --no-fuse: {fused / unfused:.2f}")
    print(f"  largest accuracy difference of one configuration: {max(diffs):.4f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-same-shape", action="store_true")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if not args.skip_same_shape:
            same_shape(args.epochs, work, cores)
        default_study(args.repeats, work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
