"""Benchmark: one epoch of the replicates' stack for `augmented` against `tuned` (the same layers, optimizer and
batch size; `augmented` adds its random image changes), and of seed 42's Keras `fit` for each.

Issue 33's target: augmented's stack time per epoch at most 2x tuned's. Each measurement runs in its own process
(op determinism, on for `fit`, keeps XLA off for the rest of a process); with --repeats the two variants take
turns, so a noisy neighbour slows both alike. Prints the median seconds of the epochs after the first (which
traces and compiles) and the ratio augmented / tuned. Needs data/prepared (`dvc repro prepare`).

    python benchmarks/augmentation_speed.py [--epochs 3] [--repeats 1] [--replicates 4]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = ("tuned", "augmented")


def measure(how: str, name: str, epochs: int, stacked: int) -> list[float]:
    """In a child process: seconds of each of `epochs` epochs of `name`, trained as the stack (`how` = stack)
    or by seed 42's fit (`how` = fit)."""
    sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)
    from fmnist.core import backend

    backend.use(backend.requested())  # before keras is imported, as a stage does
    from fmnist.core import dataset, models, replicates
    from fmnist.plumbing import params
    from fmnist.schema.training import TrainParams, VariantsParams

    shared, spec = params.load(TrainParams), params.load(VariantsParams).root[name]
    train, val = dataset.load_prepared("train"), dataset.load_prepared("val")
    batch_size = spec.batch_size or shared.batch_size
    seconds = []
    if how == "stack":
        import numpy as np

        seeds = [shared.seed + 1 + i for i in range(stacked)]
        stack = replicates.build_stack(spec, seeds, train.x)
        replicates.compile_stack(stack, spec, shared)
        shufflers = [np.random.default_rng(seed) for seed in seeds]
        for _ in range(epochs):
            order = np.stack([s.permutation(len(train.y)) for s in shufflers], axis=1).astype(np.int32)
            started = time.perf_counter()
            stack.training.fit(order, train.y[order], batch_size=batch_size, epochs=1, shuffle=False, verbose=0)
            seconds.append(time.perf_counter() - started)
        return seconds
    models.seed_everything(shared.seed)
    model = models.compile_model(models.build(name, spec, shared.seed), spec, shared)
    for _ in range(epochs):
        started = time.perf_counter()
        model.fit(train.x, train.y, batch_size=batch_size, epochs=1, validation_data=(val.x, val.y), verbose=0)
        seconds.append(time.perf_counter() - started)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--replicates", type=int, default=4, help="seeds in the stack (the default run's 4)")
    parser.add_argument("--only", choices=("stack", "fit"), help="measure only the stack or only seed 42's fit")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(*args.child, args.epochs, args.replicates)))
        return
    hows = [args.only] if args.only else ["stack", "fit"]
    later: dict[tuple[str, str], list[float]] = {(how, name): [] for how in hows for name in VARIANTS}
    for _ in range(args.repeats):
        for how in hows:
            for name in VARIANTS:
                done = subprocess.run([sys.executable, __file__, "--child", how, name, "--epochs", str(args.epochs),
                                       "--replicates", str(args.replicates)],
                                      check=True, capture_output=True, text=True)
                later[how, name] += json.loads(done.stdout.strip().splitlines()[-1])[1:]
    print(f"seconds per epoch after the first (median); stack of {args.replicates} replicates")
    for how in hows:
        tuned, augmented = (statistics.median(later[how, name]) for name in VARIANTS)
        print(f"{how:6}  tuned {tuned:7.2f}  augmented {augmented:7.2f}  augmented / tuned {augmented / tuned:5.2f}")


if __name__ == "__main__":
    main()
