"""Benchmark: how much of a whole-pipeline run is the stages' own work, and how much is overhead.

Clones this repository at REV into a temporary folder (empty DVC cache, this checkout's .venv), runs
`dvc repro -f` there on the real data ($FASHION_MNIST_MIRROR), then, optionally, one one-variant
`dvc exp run -S`. Prints the wall time, the stages' own work and the overhead (the difference):

    work = fitting + evaluating (reports/timing: train_seconds, evaluate_seconds)
           + the baseline, plot and report stages whole (fitting and drawing; start-up counted as work)
    overhead = wall - work: process start-up (Python, TensorFlow), data loading, DVC's hashing and caching

Run it for two revisions in one sitting to compare them, e.g.

    python benchmarks/pipeline_overhead.py --rev a1f3fed --replicates 1 --exp 'variants.softmax.epochs=6'
    python benchmarks/pipeline_overhead.py --rev HEAD --replicates 1 --exp 'variants.softmax.epochs=6'
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import machine  # benchmarks/machine.py, beside this script

STAGE_LINE = re.compile(r"^Running stage '([^']+)'")
WHOLE_STAGES_ARE_WORK = ("baseline", "plot", "report")


def timed_run(command: list[str], cwd: Path, env: dict, log: Path) -> tuple[float, list[tuple[float, str]]]:
    """Run `command`, copy its output to `log` with a time stamp per line; (wall seconds, [(start, stage)])."""
    started = time.perf_counter()
    stage_starts: list[tuple[float, str]] = []
    with open(log, "w") as out:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True)
        for line in process.stdout:
            now = time.perf_counter() - started
            out.write(f"{now:8.2f} {line}")
            if match := STAGE_LINE.match(line):
                stage_starts.append((now, match.group(1)))
        if process.wait() != 0:
            sys.exit(f"{' '.join(command)} failed in {cwd}; its output: {log}")
    return time.perf_counter() - started, stage_starts


def stage_durations(wall: float, stage_starts: list[tuple[float, str]]) -> dict[str, float]:
    ends = [start for start, _ in stage_starts[1:]] + [wall]
    return {name: end - start for (start, name), end in zip(stage_starts, ends)}


def work_seconds(clone: Path, durations: dict[str, float]) -> dict[str, float]:
    work = {"fitting": 0.0, "evaluating": 0.0}
    for timing_file in sorted((clone / "reports/timing").glob("*.json")):
        if timing_file.stem == "baseline":
            continue
        timing = json.loads(timing_file.read_text())
        work["fitting"] += timing["train_seconds"]
        work["evaluating"] += timing["evaluate_seconds"]
    for name in WHOLE_STAGES_ARE_WORK:
        work[name] = durations.get(name, 0.0)
    return work


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rev", default="HEAD", help="git revision to measure (default HEAD)")
    parser.add_argument("--replicates", type=int,
                        help="set train.replicates and every variant's own in the clone's params.yaml first")
    parser.add_argument("--exp", metavar="KEY=VALUE", help="then time one `dvc exp run -S KEY=VALUE`")
    parser.add_argument("--keep", type=Path, help="clone into this (new) folder and keep it")
    args = parser.parse_args()
    machine.require_mirror()

    clone = machine.clone(args.rev, args.keep or Path(tempfile.mkdtemp(prefix="fmnist-overhead-")) / "repo")
    if args.replicates is not None:
        machine.set_replicates(clone, args.replicates)
    env = machine.pipeline_env()

    wall, starts = timed_run(["dvc", "repro", "-f"], clone, env, clone.parent / "repro.log")
    durations = stage_durations(wall, starts)
    work = work_seconds(clone, durations)
    overhead = wall - sum(work.values())
    cpu = machine.cpu_name()
    commit = machine.head_commit(clone)
    print(f"{args.rev} ({commit}), replicates {args.replicates or 'as committed'}, {os.cpu_count()} cores, {cpu}")
    print(f"dvc repro -f: {wall:.0f} s wall, {len(durations)} stages")
    print("work: " + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in work.items())
          + f" = {sum(work.values()):.0f} s")
    print(f"overhead: {overhead:.0f} s ({overhead / wall:.0%} of the wall time, "
          f"{overhead / len(durations):.1f} s per stage)")
    if args.exp:
        exp_wall, exp_starts = timed_run(["dvc", "exp", "run", "-S", args.exp], clone, env, clone.parent / "exp.log")
        print(f"dvc exp run -S {args.exp}: {exp_wall:.0f} s wall, "
              f"stages run: {', '.join(name for _, name in exp_starts)}")
    print(json.dumps({"rev": args.rev, "wall": round(wall, 1), "work": {k: round(v, 1) for k, v in work.items()},
                      "overhead": round(overhead, 1), "stages": {k: round(v, 1) for k, v in durations.items()},
                      "exp_wall": round(exp_wall, 1) if args.exp else None}))


if __name__ == "__main__":
    main()
