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
                   4 widths x 3 depths; on a CPU its 8- and 16-unit GRUs fuse, in packs of
                   one width), with and without
                   `--no-fuse`, `--repeats` pairs back to back; the pairs' ratios with a
                   95% interval of their median and a sign test; then the largest
                   difference in accuracy of one configuration between the two;
                   `--dropout P` runs it with `--param dropout=P` (dropout between the
                   GRUs' layers and before the head).

    ratio = end-to-end seconds / (floor seconds / cores), against the faster of the two floors

Usage: python benchmarks/fused_bench.py [--epochs E] [--repeats N] [--skip-same-shape]
       [--dropout P]
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
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


def default_study(repeats: int, work: Path, dropout: float | None = None) -> None:
    """The default study fused and with `--no-fuse`, `repeats` pairs run back to back (which
    goes first alternates, so a machine speeding up or slowing down favours neither), and the
    pairs' ratios with a 95% interval of their median: this machine's speed moves between runs
    by more than the packs save, so only ratios of neighbouring runs compare."""
    import json

    import numpy as np
    from scipy import stats

    fixed = () if dropout is None else ("--param", f"dropout={dropout}")

    def timed(*flags: str) -> tuple[float, float, dict[tuple[str, str], float]]:
        seconds, results = cli(ROOT, DEFAULT, work, *fixed, *flags)
        record = json.loads((results.parent / "study.json").read_text())
        started, ended = (datetime.fromisoformat(record[k]) for k in ("started", "ended"))
        return seconds, (ended - started).total_seconds(), accuracies(results)

    pairs, diffs = [], []
    for index in range(repeats):
        if index % 2 == 0:
            fused, unfused = timed(), timed("--no-fuse")
        else:
            unfused, fused = timed("--no-fuse"), timed()
        pairs.append((fused[:2], unfused[:2]))
        diffs.append(max(abs(fused[2][k] - unfused[2][k]) for k in unfused[2]))
    what = "" if dropout is None else f" with dropout {dropout}"
    print(
        f"default study{what}, {repeats} pairs (fused, --no-fuse) back to back, first one"
        " alternating:"
    )
    for (f_end, f_study), (u_end, u_study) in pairs:
        print(
            f"  end to end {f_end:5.1f} / {u_end:5.1f} s = {f_end / u_end:.2f}"
            f"   study phase (study.json, whole seconds) {f_study:3.0f} / {u_study:3.0f} s"
        )
    for label, column in (("end to end", 0), ("study phase", 1)):
        ratios = np.array([f[column] / u[column] for f, u in pairs])
        if len(ratios) > 1:
            low, high = stats.bootstrap(
                (ratios,), np.median, confidence_level=0.95, random_state=0, method="percentile"
            ).confidence_interval
            interval = f", 95% interval of the median {low:.2f}-{high:.2f} (bootstrap)"
        else:
            interval = ""
        faster = int((ratios < 1).sum())
        sign = stats.binomtest(faster, len(ratios)).pvalue
        print(
            f"  {label}: median fused / --no-fuse {np.median(ratios):.2f}{interval};"
            f" fused faster in {faster} of {len(ratios)} pairs (sign test p = {sign:.3f})"
        )
    print(f"  largest accuracy difference of one configuration: {max(diffs):.4f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-same-shape", action="store_true")
    parser.add_argument("--dropout", type=float, default=None)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if not args.skip_same_shape:
            same_shape(args.epochs, work, cores)
        default_study(args.repeats, work, args.dropout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
