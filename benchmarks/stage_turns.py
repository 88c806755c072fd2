"""Benchmark: one stage at two revisions, run in turns: its seconds, and whether its results are the same bytes.

This machine's speed drifts by 10% and more from one hour to the next (docs/speed.md), so a change to a stage is
timed against the code before it in the same sitting, taking turns. Clones this repository at each REV (WORKTREE:
this checkout's uncommitted changes to tracked files, as `git stash create` records them) into a temporary folder
with this checkout's .venv, prepares the data there ($FASHION_MNIST_MIRROR), then runs `python -m stages.<STAGE>
<ARGS>` in each clone in turn, ROUNDS times, every run from scratch (the families' kept trajectories deleted first,
fmnist/core/trajectories.py). Prints every run's seconds, the median of each revision and their ratio to the first,
and whether the results (reports/metrics, reports/evaluation, reports/confusion: the files with no times in them)
are byte-identical to the first run's.

    python benchmarks/stage_turns.py --rev HEAD --rev WORKTREE -- train tuned
    python benchmarks/stage_turns.py --rev HEAD~1 --rev HEAD --rounds 3 -- train dropout30 --alone
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import machine  # benchmarks/machine.py, beside this script

sys.path.insert(0, str(machine.ROOT))
from fmnist.core.trajectories import MEMO_DIR  # noqa: E402  (the families' kept trajectories, in each clone)

RESULTS = ("reports/metrics", "reports/evaluation", "reports/confusion")  # no seconds in them: same run, same bytes


def commit_of(rev: str) -> str:
    """The commit `rev` names; WORKTREE: one holding this checkout's tracked files as they are now."""
    if rev == "WORKTREE":
        stashed = subprocess.run(["git", "-C", str(machine.ROOT), "stash", "create"], capture_output=True, text=True,
                                 check=True).stdout.strip()
        rev = stashed or "HEAD"  # nothing changed: the working tree is HEAD
    return subprocess.run(["git", "-C", str(machine.ROOT), "rev-parse", "--verify", f"{rev}^{{commit}}"],
                          capture_output=True, text=True, check=True).stdout.strip()


def results_digest(clone: Path) -> dict[str, str]:
    """sha256 of every results file, by its path in the clone."""
    return {str(path.relative_to(clone)): hashlib.sha256(path.read_bytes()).hexdigest()
            for folder in RESULTS for path in sorted((clone / folder).rglob("*")) if path.is_file()}


def timed_stage(clone: Path, command: list[str], env: dict[str, str], log: Path) -> float:
    """Seconds `command` took in `clone`, from scratch (no kept trajectory); its output goes to `log`."""
    shutil.rmtree(clone / MEMO_DIR, ignore_errors=True)
    return machine.timed(command, clone, env, log)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rev", action="append", help="a git revision, or WORKTREE; give two or more "
                                                       "(default: HEAD and WORKTREE)")
    parser.add_argument("--rounds", type=int, default=2, help="turns per revision (default 2)")
    parser.add_argument("stage", nargs="+", metavar="STAGE", help="after --, the stage and its arguments: train tuned")
    args = parser.parse_args()
    revs = args.rev or ["HEAD", "WORKTREE"]
    if len(revs) < 2 or args.rounds < 1:
        sys.exit("give two revisions or more (--rev A --rev B) and at least one round")
    machine.require_mirror()

    env = machine.pipeline_env()
    command = [sys.executable, "-m", f"stages.{args.stage[0]}", *args.stage[1:]]
    work = Path(tempfile.mkdtemp(prefix="fmnist-turns-"))
    commits = {rev: commit_of(rev) for rev in revs}
    clones = {}
    for index, rev in enumerate(revs):
        clones[rev] = machine.prepared_clone(commits[rev], work / f"rev{index}", env)

    seconds: dict[str, list[float]] = {rev: [] for rev in revs}
    differing: list[str] = []
    first = None
    for round_number in range(1, args.rounds + 1):
        for rev in revs:
            clone = clones[rev]
            seconds[rev].append(timed_stage(clone, command, env, work / f"{clone.name}-{round_number}.log"))
            digest = results_digest(clone)
            first = first or digest
            changed = sorted(path for path in first.keys() | digest.keys() if first.get(path) != digest.get(path))
            if changed:
                differing.append(f"{rev}, round {round_number}: {', '.join(changed)}")

    print(f"python -m stages.{' '.join(args.stage)}: {args.rounds} round{'s' * (args.rounds > 1)} each, in turns; "
          f"{os.cpu_count()} cores, {machine.cpu_name()}")
    base = statistics.median(seconds[revs[0]])
    width = max(len(rev) for rev in revs) + 10
    print(f"{'revision':<{width}}" + "".join(f"  round {n:>2}" for n in range(1, args.rounds + 1))
          + "    median  ratio")
    for rev in revs:
        median = statistics.median(seconds[rev])
        label = f"{rev} ({commits[rev][:7]})"
        print(f"{label:<{width}}" + "".join(f"  {value:8.1f}" for value in seconds[rev])
              + f"  {median:8.1f}  {median / base:5.2f}")
    if differing:
        print(f"results NOT the same bytes as {revs[0]}'s first run: " + "; ".join(differing))
    else:
        print(f"results ({', '.join(RESULTS)}): the same bytes in every run")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
