"""Fused packs against the same trials trained alone, and the default study against a baseline.

Measured side by side in one run, on this machine:
  1. floor:        the same-shape study's 16 trials (benchmarks/same_shape.toml) trained one
                   after another in this process, one torch thread, plain torch (one
                   `nn.Module` and `torch.optim` per trial, `hypertune.train.fit_module`);
  2. fused:        `python hypertuner.py run same_shape.toml` end to end in a fresh process
                   (imports, Ray's start and stop, the study, the report);
  3. unfused:      the same with `--no-fuse` (every trial its own Ray trial);
  4. default:      `python hypertuner.py run configs/default.toml` end to end, with this tree
                   and with the tree of `--baseline` (a git revision; default: the last one
                   before fused packs), alternating, `--repeats` times each.

    ratio = end-to-end seconds / (floor seconds / cores)

Usage: python benchmarks/fused_bench.py [--epochs E] [--repeats N] [--baseline REV] [--skip-default]
"""

from __future__ import annotations

import argparse
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
BASELINE = "7e78122"  # the last revision before fused packs and the public-API-only adapter


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


def cli(tree: Path, study: Path, workdir: Path, *flags: str) -> float:
    """`python hypertuner.py run STUDY` from `tree`, end to end, in a fresh process; seconds."""
    name = f"b{time.time_ns()}"
    command = [sys.executable, str(tree / "hypertuner.py"), "run", str(study), "--name", name]
    command += ["--storage", str(workdir / "runs"), *flags]
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    start = time.perf_counter()
    subprocess.run(command, cwd=workdir, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline", default=BASELINE)
    parser.add_argument("--skip-default", action="store_true")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        epochs = ["--epochs", str(args.epochs)]
        floor_s = floor(args.epochs)
        fused_s = cli(ROOT, SAME_SHAPE, work, *epochs)
        unfused_s = cli(ROOT, SAME_SHAPE, work, *epochs, "--no-fuse")
        print(f"same-shape MLP, 16 trials x {args.epochs} epochs, {cores} cores")
        print(f"  floor (one after another, plain torch, 1 thread): {floor_s:.1f} s")
        for label, seconds in (("fused", fused_s), ("unfused (--no-fuse)", unfused_s)):
            ratio = seconds / (floor_s / cores)
            print(f"  {label:22s} end to end {seconds:6.1f} s   ratio {ratio:.2f}")
        if args.skip_default:
            return 0
        baseline = work / "baseline"
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(baseline), args.baseline],
            cwd=ROOT, check=True, capture_output=True,
        )  # fmt: skip
        try:
            times: dict[str, list[float]] = {"this tree": [], f"baseline {args.baseline}": []}
            for _ in range(args.repeats):
                times["this tree"].append(cli(ROOT, DEFAULT, work))
                times[f"baseline {args.baseline}"].append(cli(baseline, DEFAULT, work))
        finally:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(baseline)], cwd=ROOT, check=False
            )
        print(f"default study end to end, {args.repeats} runs each, alternating:")
        for label, runs in times.items():
            listed = ", ".join(f"{t:.1f}" for t in runs)
            print(f"  {label:22s} median {statistics.median(runs):5.1f} s   ({listed})")
        mine, base = (statistics.median(t) for t in times.values())
        print(f"  this tree / baseline: {mine / base:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
