"""Benchmark: what N seeds a variant cost against one, stage by stage in turns (issue 33's goal: 5 seeds at most
1.5x the cost of 1).

A whole `dvc repro -f` at each seed count, one after the other, takes ten minutes, and this machine's speed drifts
within that: the same code measured 1.38x to 1.66x that way (benchmarks/pipeline_overhead.py, docs/speed.md). Here
the turns are taken a stage at a time. Two clones of REV (this checkout's .venv, the data prepared from
$FASHION_MNIST_MIRROR), every seed count in one's params.yaml set to N and in the other's to 1; then each stage after
`prepare`, in the order `dvc repro -f` runs them, runs its command in both clones, one right after the other (which
goes first alternates from stage to stage), so a drift falls on both sides of a stage alike. Every round starts from
scratch (no kept trajectory, fmnist/core/trajectories.py); within a round a family's later members use its first
member's trajectory, as in the pipeline. Stages that do not depend on the seed count (baseline, pictures) run in both
as well: their two times show the noise.

Prints each stage's median seconds at N and at 1 seed, the difference, the totals and their ratio. The stages'
commands only: download, prepare and DVC's own work between stages (about a second a stage, the same at any seed
count) are in neither total, so the ratio is a little above a whole run's. Checks that every variant's metrics count
N seeds in one clone and 1 in the other.

    python benchmarks/seeds_cost.py [--rev HEAD] [--replicates 5] [--rounds 1]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import machine  # benchmarks/machine.py, beside this script

sys.path.insert(0, str(machine.ROOT))
from fmnist.core.trajectories import MEMO_DIR  # noqa: E402  (the families' kept trajectories, in each clone)

STAGE = re.compile(r"^Running stage '([^']+)':\n> (.+)$", re.MULTILINE)
PREPARED = ("download", "prepare")  # run once per clone by `dvc repro prepare`, before the turns


def stage_commands(clone: Path, env: dict[str, str]) -> list[tuple[str, list[str]]]:
    """(stage, its command) in the order `dvc repro -f` runs them, from its dry run."""
    dry = subprocess.run(["dvc", "repro", "-f", "--dry"], cwd=clone, env=env, capture_output=True, text=True)
    if dry.returncode != 0:
        sys.exit(f"dvc repro -f --dry failed in {clone}: {dry.stderr.strip()}")
    # dvc.yaml's commands are plain words (`python -m stages.train relu100`): split, they run as DVC runs them.
    return [(name, shlex.split(command)) for name, command in STAGE.findall(dry.stdout) if name not in PREPARED]


def seed_counts(clone: Path) -> set[int]:
    """The seed counts the clone's variants' metrics report (the baseline's have none)."""
    metrics = [json.loads(path.read_text()) for path in (clone / "reports/metrics").glob("*.json")]
    return {found["seeds"] for found in metrics if "seeds" in found}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rev", default="HEAD", help="git revision to measure (default HEAD)")
    parser.add_argument("--replicates", type=int, default=5, help="the seed count set against 1 (default 5)")
    parser.add_argument("--rounds", type=int, default=1, help="runs of every stage per seed count (default 1)")
    args = parser.parse_args()
    if args.replicates < 2 or args.rounds < 1:
        sys.exit("--replicates must be 2 or more and --rounds 1 or more")
    machine.require_mirror()

    env = machine.pipeline_env()
    work = Path(tempfile.mkdtemp(prefix="fmnist-seeds-"))
    counts = (args.replicates, 1)
    clones = {}
    for count in counts:
        clones[count] = machine.prepared_clone(args.rev, work / f"seeds{count}", env, replicates=count)
    stages = stage_commands(clones[counts[0]], env)

    seconds: dict[int, dict[str, list[float]]] = {count: {name: [] for name, _ in stages} for count in counts}
    for round_number in range(1, args.rounds + 1):
        for count in counts:
            shutil.rmtree(clones[count] / MEMO_DIR, ignore_errors=True)
        for index, (name, command) in enumerate(stages):
            for count in counts if index % 2 == 0 else counts[::-1]:
                log = work / f"seeds{count}-{round_number}-{name.replace('@', '-')}.log"
                seconds[count][name].append(machine.timed(command, clones[count], env, log))
        for count in counts:
            if (reported := seed_counts(clones[count])) != {count}:
                sys.exit(f"the variants of {clones[count]} report {sorted(reported)} seeds, not {count}: params.yaml "
                         f"was not set as this benchmark expects")

    median = {count: {name: statistics.median(values) for name, values in seconds[count].items()} for count in counts}
    total = {count: sum(median[count].values()) for count in counts}
    commit = machine.head_commit(clones[1])
    column = f"{args.replicates} seeds"
    print(f"{args.rev} ({commit}): every stage's command at {args.replicates} seeds and at 1, in turns, {args.rounds} "
          f"round{'s' * (args.rounds > 1)}; {os.cpu_count()} cores, {machine.cpu_name()}")
    print(f"{'stage':<32}{column:>10}{'1 seed':>10}{'more':>10}")
    for name, _ in stages:
        print(f"{name:<32}{median[args.replicates][name]:10.1f}{median[1][name]:10.1f}"
              f"{median[args.replicates][name] - median[1][name]:10.1f}")
    ratio = total[args.replicates] / total[1]
    print(f"{'total':<32}{total[args.replicates]:10.1f}{total[1]:10.1f}"
          f"{total[args.replicates] - total[1]:10.1f}   {args.replicates} seeds cost {ratio:.2f}x one seed")
    print(json.dumps({"rev": args.rev, "replicates": args.replicates, "rounds": args.rounds, "ratio": round(ratio, 3),
                      "seconds": {str(count): {name: [round(value, 1) for value in values]
                                               for name, values in seconds[count].items()} for count in counts}}))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
