"""Benchmark: what a seed stack's tail costs, as the train stage's child trains it (fmnist.core.replicates).

Trains the other seeds of a variant's family (`python -m fmnist.core.other_seeds <variant>` without its scoring) on
data/prepared (run `dvc repro prepare` first), with each epoch and each smaller stack's building timed. Then, from
the epoch where each replicate's result was settled (fmnist.core.trajectories.done, every member of the family):
  - new stacks: a smaller stack's building, and its first epoch's time over what its replicates cost in its steady
    epochs (Keras traces the step again and XLA compiles it: about 1-2 s here);
  - the partner: the epochs a settled replicate still trains beside the last one, because a stack of one rounds
    otherwise, at that stack's cost a replicate-epoch.
A replicate-epoch's cost is a stack's median steady epoch over its size; a stack that trained one epoch only is
costed at the first stack's.
Prints the stacks' epochs, the replicate-epochs trained against those needed, and each part's seconds and share
of the epochs' and the building's time. One process: its numbers are the stage's, but the host's speed may drift
within it.

    python benchmarks/stack_tail.py [--variant augmented] [--replicates K]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import machine  # benchmarks/machine.py, beside this script
import stack_step  # benchmarks/stack_step.py, beside this script: the variant and its stack's size, checked

ROOT = stack_step.ROOT  # floor.py, which stack_step imports, puts it on sys.path for the child's imports


def measure(name: str, replicates: int) -> dict:
    """Runs in a child process: the stack of `replicates` seeds of `name`'s family trained as the stage trains it;
    each epoch's (stack size, seconds), each smaller stack's building seconds, each replicate's settled epoch."""
    os.chdir(ROOT)
    from fmnist.core import backend, dataset, trajectories
    from fmnist.plumbing import params
    from fmnist.schema.training import TrainParams, VariantsParams, family

    backend.use("tensorflow")
    from fmnist.core import replicates as stacks

    shared = params.load(TrainParams)
    members = family(name, params.load(VariantsParams).root, shared)
    seeds = [shared.seed + 1 + k for k in range(replicates)]
    train, val = dataset.load_prepared("train"), dataset.load_prepared("val")
    epochs, builds = [], []
    fit_epoch, keeping = stacks.fit_epoch, stacks.keeping

    def timed_fit_epoch(model, indices, labels, batch_size):
        started = time.perf_counter()
        fit_epoch(model, indices, labels, batch_size)
        epochs.append((int(indices.shape[1]), time.perf_counter() - started))

    def timed_keeping(*args):
        started = time.perf_counter()
        smaller = keeping(*args)
        builds.append(time.perf_counter() - started)
        return smaller

    # The stage's own loop (train_stack), with its two steps timed: wrapped here rather than timed inside it.
    stacks.fit_epoch, stacks.keeping = timed_fit_epoch, timed_keeping
    run, _ = stacks.train_stack(members, shared, seeds, train, val)

    def settled(history: dict, trained: int) -> int:
        return next((epoch for epoch in range(1, trained + 1)
                     if all(trajectories.done(spec, stacks.until(history, epoch), epoch) for spec in members.values())),
                    trained)

    return {"epochs": epochs, "builds": builds,
            "settled": [settled(history, run.epochs(i)) for i, history in enumerate(run.histories)]}


def report(name: str, replicates: int, measured: dict) -> None:
    epochs, builds, settled = measured["epochs"], measured["builds"], measured["settled"]
    segments = []  # (stack size, [its epochs' seconds]), in order: a stack is only ever replaced by a smaller one
    for size, seconds in epochs:
        if segments and segments[-1][0] == size:
            segments[-1][1].append(seconds)
        else:
            segments.append((size, [seconds]))
    first_size, first_seconds = segments[0]
    if len(first_seconds) < 2:
        sys.exit("the first stack trained one epoch only: no steady epoch to cost a replicate-epoch by")

    def per_replicate(size: int, seconds: list[float]) -> float:
        """A replicate-epoch's seconds in this stack: from its steady epochs, else from the first stack's."""
        if len(seconds) < 2:
            size, seconds = first_size, first_seconds
        return statistics.median(seconds[1:]) / size

    print(f"{name}: a stack of {replicates} seeds; {machine.cpu_name()}, {os.cpu_count()} cores")
    print(f"{'stack':>5} {'epochs':>6} {'first s':>8} {'then s/epoch':>12}")
    for size, seconds in segments:
        steady = f"{statistics.median(seconds[1:]):12.2f}" if len(seconds) > 1 else f"{'-':>12}"
        print(f"{size:5d} {len(seconds):6d} {seconds[0]:8.2f} {steady}")
    total = sum(seconds for _, seconds in epochs) + sum(builds)  # what the parts below are shares of
    compile_first = first_seconds[0] - first_size * per_replicate(*segments[0])
    new_stacks = sum(builds) + sum(seconds[0] - size * per_replicate(size, seconds) for size, seconds in segments[1:])
    costs = [per_replicate(size, seconds) for size, seconds in segments for _ in seconds]  # per epoch
    trained = [size for size, _ in epochs]
    needed = [sum(1 for epoch_settled in settled if epoch_settled >= epoch) for epoch in range(1, len(epochs) + 1)]
    partner = sum((size - wanted) * cost for size, wanted, cost in zip(trained, needed, costs))
    print(f"replicate-epochs: {sum(trained)} trained, {sum(settled)} needed; a replicate-epoch "
          f"{per_replicate(*segments[0]):.2f} s in the first stack, {per_replicate(*segments[-1]):.2f} s in the last")
    print(f"epochs and building smaller stacks {total:.1f} s (building {sum(builds):.1f} s); of it:")
    print(f"  the first stack's compiling  {compile_first:6.1f} s  {compile_first / total:6.1%}")
    print(f"  {len(segments) - 1:2d} new smaller stack(s)     {new_stacks:6.1f} s  {new_stacks / total:6.1%}")
    print(f"  settled replicates' epochs   {partner:6.1f} s  {partner / total:6.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", default="augmented", help="a variant of params.yaml (default augmented)")
    parser.add_argument("--replicates", type=int, help="seeds in the stack (default: the variant's other seeds)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.variant, args.replicates)))
        return
    _, _, replicates = stack_step.stacked(args.variant, args.replicates)
    measured = stack_step.child_result(__file__, args.variant, ["--replicates", str(replicates), "--child"])
    report(args.variant, replicates, measured)


if __name__ == "__main__":
    main()
