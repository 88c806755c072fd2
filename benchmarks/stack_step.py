"""Benchmark: where an epoch of a variant's seed stack goes (fmnist.core.replicates), against its products' floor.

Trains the stack of a variant's other seeds, as the train stage's child does, on data/prepared (run `dvc repro
prepare` first): once as params.yaml declares the variant, then once each with one part taken out, then with all of
them out:
  - optimizer: plain SGD instead of the variant's; what is left of the update is reading each weight and its
    gradient and writing the weight (Adam also reads and writes two slots the size of the weights, every step);
  - dropout: none (a random number per unit per image, every step, from each replicate's own generator);
  - augmentation: none (the vectorised affine resampling of each replicate's batch).
The configurations take turns, an epoch each, in one process: each epoch has the machine to itself, and a drift of
the host's speed falls on all of them alike (one process each put up to 19% between two runs of the same
configuration here: docs/speed.md). Every configuration's stack is held at once, each with its own copy of the
training images (150 MB). Prints the median seconds per epoch after the first (which compiles), what each part adds
against the full epoch, and the floor: the epoch's matrix products at the rate benchmarks/floor.py measures on the
same stacked shapes. The numbers trained are not kept; only the parts' costs are measured here, so what is taken
out may change the numbers.

    python benchmarks/stack_step.py [--variant tuned] [--replicates K] [--epochs 3]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import floor  # benchmarks/floor.py, beside this script: the stacked products' rate and the FLOPs formula
import machine  # benchmarks/machine.py, beside this script

ROOT = floor.ROOT
PARTS = ("optimizer", "dropout", "augmentation")


def configured(spec, without: list[str]):
    """The variant `spec` with the parts in `without` taken out."""
    changes = {}
    if "optimizer" in without:
        changes["optimizer"] = {"name": "sgd"}
    if "dropout" in without:
        changes["hidden"] = [layer.model_dump() | {"dropout": 0.0} for layer in spec.hidden]
    if "augmentation" in without:
        changes["augmentation"] = None
    return type(spec).model_validate(spec.model_dump() | changes)


def measure(name: str, replicates: int, epochs: int, configurations: list[list[str]]) -> dict:
    """Runs in a child process: `epochs` epochs of the stack of `replicates` seeds of `name` in each configuration
    (the parts it takes out), the configurations in turn an epoch each; the seconds of each epoch, per configuration."""
    os.chdir(ROOT)
    from fmnist.core import backend, dataset
    from fmnist.plumbing import params
    from fmnist.schema.training import TrainParams, VariantsParams

    backend.use("tensorflow")
    import numpy as np

    from fmnist.core import replicates as stacks

    shared, declared = params.load(TrainParams), params.load(VariantsParams).root[name]
    train = dataset.load_prepared("train")
    seeds = [shared.seed + 1 + k for k in range(replicates)]
    runs = []  # per configuration: (its stack's training model, batch size, its shufflers, its epochs' seconds)
    for without in configurations:
        spec = configured(declared, without)
        stack = stacks.build_stack(spec, seeds, train.x)
        stacks.compile_stack(stack, spec, shared)
        runs.append((stack.training, spec.batch_size or shared.batch_size,
                     [np.random.default_rng(seed) for seed in seeds], []))
    for _ in range(epochs):
        for model, batch_size, shufflers, seconds in runs:
            order = np.stack([shuffler.permutation(len(train.y)) for shuffler in shufflers], axis=1)
            started = time.perf_counter()
            stacks.fit_epoch(model, order.astype(np.int32), train.y[order], batch_size)
            seconds.append(time.perf_counter() - started)
    return {"epoch_seconds": [seconds for *_, seconds in runs]}


def stacked(name: str, replicates: int | None) -> tuple[dict, dict, int]:
    """(the variant's params.yaml entry, train's, the seeds in its stack: `replicates`, else its other seeds), or
    an exit naming what is wrong. Reads params.yaml as YAML: the parent process imports nothing of the project."""
    if not (ROOT / "data/prepared/train.npz").is_file():
        sys.exit("data/prepared is missing: run `dvc repro prepare` first")
    import yaml

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    if name not in params["variants"]:
        sys.exit(f"--variant: '{name}' is not in params.yaml (variants: {', '.join(params['variants'])})")
    spec, shared = params["variants"][name], params["train"]
    replicates = replicates or (spec.get("replicates") or shared["replicates"]) - 1
    if replicates < 2:
        sys.exit("--replicates: at least 2 (a stack of one is rounded otherwise and never trained)")
    return spec, shared, replicates


def child_result(script: str, name: str, arguments: list[str]) -> dict:
    """Run `script` (this one, or a benchmark beside it) as its own child for the variant `name`: the JSON it prints
    last, or an exit with the end of its errors."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, script, "--variant", name, *arguments], capture_output=True, text=True,
                            env=env)
    if result.returncode != 0:
        sys.exit(f"benchmark child ({name}) failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def run_child(name: str, replicates: int, epochs: int, configurations: list[list[str]]) -> list[list[float]]:
    return child_result(__file__, name, ["--replicates", str(replicates), "--epochs", str(epochs),
                                         "--child", json.dumps(configurations)])["epoch_seconds"]


def products_floor(spec: dict, batch: int, replicates: int) -> tuple[float, float]:
    """(GFLOP, seconds) of one epoch's matrix products for the stack, at the rate measured on its stacked shapes."""
    flops, seconds = floor.training_products(floor.layer_shapes(spec), replicates * floor.SPLIT_SIZES["train"],
                                             replicates, batch, floor.Rates(repeats=3))
    return flops / 1e9, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", default="tuned", help="a variant of params.yaml (default tuned)")
    parser.add_argument("--replicates", type=int, help="seeds in the stack (default: the variant's other seeds)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs a configuration, the first compiles (default 3)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(measure(args.variant, args.replicates, args.epochs, json.loads(args.child))))
        return
    if args.epochs < 3:
        sys.exit("--epochs: at least 3 (the first compiles and is not counted; the median of the others counts)")

    spec, shared, replicates = stacked(args.variant, args.replicates)
    declared = {"optimizer": spec["optimizer"] != {"name": "sgd"},  # plain SGD: nothing to take out
                "dropout": any(layer.get("dropout") for layer in spec.get("hidden", [])),
                "augmentation": bool(spec.get("augmentation"))}
    present = [part for part in PARTS if declared[part]]
    configurations = [[]] + [[part] for part in present] + ([present] if len(present) > 1 else [])
    steady = {tuple(without): statistics.median(seconds[1:])
              for without, seconds in zip(configurations, run_child(args.variant, replicates, args.epochs,
                                                                    configurations))}
    batch = spec.get("batch_size") or shared["batch_size"]
    gflop, floor_seconds = products_floor(spec, batch, replicates)

    full = steady[()]
    print(f"{args.variant}: a stack of {replicates} seeds, batch {batch}, {args.epochs} epochs a configuration "
          f"in turn (the first not counted); {machine.cpu_name()}, {os.cpu_count()} cores")
    print(f"floor: {gflop:.0f} GFLOP of products an epoch at the stacked shapes' rate = {floor_seconds:.2f} s")
    options = ", ".join(f"{key}={value}" for key, value in spec["optimizer"].items() if key != "name")
    optimizer = spec["optimizer"]["name"] + (f"({options})" if options else "")  # e.g. sgd(momentum=0.9, nesterov=True)
    labels = {without: ", ".join(f"{optimizer} as plain SGD" if part == "optimizer" else f"no {part}"
                                 for part in without) or "as declared" for without in steady}
    width = max(map(len, labels.values()))
    print(f"{'configuration':<{width}} {'s/epoch':>8} {'x floor':>8} {'part':>8} {'share':>6}")
    for without, seconds in steady.items():
        part = full - seconds  # what the parts taken out cost: the full epoch less this one
        print(f"{labels[without]:<{width}} {seconds:8.2f} {seconds / floor_seconds:8.2f} "
              + (f"{part:8.2f} {part / full:6.0%}" if without else ""))


if __name__ == "__main__":
    main()
