"""Benchmark: the last pipeline run against its compute floor, on this machine.

The floor is what the arithmetic needs: the multiply-adds the run's training and scoring perform, at the rate this
machine sustains on the same matrix shapes in the same TensorFlow build. Formula, per variant:

    layers: Dense n_in -> n_out, from 784 through params.yaml `hidden` to 10; MACs = sum of n_in * n_out
    a training step, per image: 2 * MACs forward + 2 * MACs for the kernels' gradients + 2 * (MACs - 784 * n_1)
        for the inputs' gradients (none for the pixels): about 6 FLOPs a multiply-add, as the usual "6N" says
    training FLOPs = sum over seeds of epochs_run(seed) * N_train * step FLOPs
                     (epochs_run: reports/evaluation/<v>.json, each seed's own; epochs trained past it are
                     excess). Variants that share a trajectory (fmnist/core/trajectories.py) need it once: one
                     row for them all, each seed as long as its longest-needing member
    scoring FLOPs  = 2 * MACs * images scored: each validated epoch's N_val, and the evaluation (seed 42's files
                     are scored six times on validation or test, each replicate twice)
    floor seconds  = FLOPs / the rate measured below for that layer's shape (seed 42: one model at its batch
                     size; the replicates: the stacked (K, batch, n_in) x (K, n_in, n_out) products)

The baseline's floor is its SGD passes (5 epochs of 2 * 784 * 10 FLOPs an image, twice for the gradient, per fold
and once more on all of training); assess's is its forward passes over the pictures, the originals and the
validation split for each model it measures. download, prepare, pictures, select, plot and report are not matrix
arithmetic: their floor is counted as 0, so their seconds are all excess.

Seconds per stage come from the last run's log, .dvc/tmp/stages-run.log (`make reproduce` writes it; each stage
appends its name and seconds), else from reports/timing (training and evaluation only). Prints, per stage and in
total, seconds, floor seconds and their ratio.

Usage: python benchmarks/floor.py [--repo DIR] [--log FILE] [--repeats N] [--compiles N]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import yaml

import machine  # benchmarks/machine.py, beside this script

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

PIXELS, CLASSES = 784, 10
SPLIT_SIZES = {"train": 48000, "val": 12000, "test": 10000}
NOT_ARITHMETIC = ("download", "prepare", "pictures", "select", "plot", "report")
PROBE_FLOPS = 20e9  # a rate probe's timed loop: 0.05-0.3 s at the rates these shapes reach


def layer_shapes(spec: dict) -> list[tuple[int, int]]:
    sizes = [PIXELS, *(layer["units"] for layer in spec.get("hidden", [])), CLASSES]
    return list(zip(sizes[:-1], sizes[1:]))


def step_flops(shapes: list[tuple[int, int]]) -> list[float]:
    """FLOPs per image of one training step, per layer: forward, the kernel's gradient, the input's (not the first)."""
    return [(6 if index else 4) * n_in * n_out for index, (n_in, n_out) in enumerate(shapes)]


class Rates:
    """Sustained fp32 FLOP/s of this machine on a Dense layer's forward and backward products, per shape, measured
    in TensorFlow (both cores, its default threads): the best of `repeats` timed loops in each of `compiles` fresh
    compilations. One compilation can land slow and stay slow: 7 x (32 x 784) @ (784 x 100) measured 119-120
    GFLOP/s in about one compilation of six on a 2-core EPYC and 199-217 in the others, which moved a run's floor
    between 143 and 168 s; the floor is what the machine can sustain, so the best compilation counts."""

    def __init__(self, repeats: int, compiles: int = 3):
        import tensorflow as tf

        self.tf, self.repeats, self.compiles, self.measured = tf, repeats, compiles, {}

    def __call__(self, stacked: int, batch: int, n_in: int, n_out: int) -> float:
        key = (stacked, batch, n_in, n_out)
        if key not in self.measured:
            self.measured[key] = self._measure(*key)
        return self.measured[key]

    def _measure(self, stacked: int, batch: int, n_in: int, n_out: int) -> float:
        tf = self.tf
        lead = (stacked,) if stacked else ()
        rng = np.random.default_rng(0)
        x = tf.constant(rng.random((*lead, batch, n_in), dtype=np.float32))
        w = tf.constant(rng.random((*lead, n_in, n_out), dtype=np.float32))
        dy = tf.constant(rng.random((*lead, batch, n_out), dtype=np.float32))
        flops = 6 * max(stacked, 1) * batch * n_in * n_out  # one step's three products
        steps = int(min(1000, max(5, PROBE_FLOPS // flops)))  # a timed loop of about PROBE_FLOPS, whatever the shape

        def loop():
            @tf.function(jit_compile=True)
            def run(x, w, dy):
                # A real gradient step that carries w from one iteration to the next: every product depends on the
                # last step's w, so XLA can neither hoist a product out of the loop nor drop it (a loop of constant
                # products measured 30 TFLOP/s on two cores: it was computed once).
                def body(i, w, acc):
                    y = tf.matmul(x, w)  # forward
                    grad_y = y * 1e-3 + dy
                    dw = tf.matmul(x, grad_y, transpose_a=True)  # the kernel's gradient
                    dx = tf.matmul(grad_y, w, transpose_b=True)  # the input's gradient
                    return i + 1, w - 1e-6 * dw, acc + tf.reduce_sum(dx[..., :1, :1])
                return tf.while_loop(lambda i, *_: i < steps, body, (0, w, 0.0))[2]
            return run

        best = float("inf")
        for _ in range(self.compiles):
            run = loop()
            run(x, w, dy)  # compile
            for _ in range(self.repeats):
                started = time.perf_counter()
                run(x, w, dy).numpy()
                best = min(best, time.perf_counter() - started)
        return steps * flops / best


def training_products(shapes: list[tuple[int, int]], images: float, stacked: int, batch: int,
                      rates: Rates) -> tuple[float, float]:
    """(FLOPs, floor seconds) of the training steps' products over `images` seed-images (epochs x images x seeds),
    at the rate of the shapes stacked `stacked` deep (0: one model) at this batch size."""
    flops = seconds = 0.0
    for (n_in, n_out), per_image in zip(shapes, step_flops(shapes)):
        flops += images * per_image
        seconds += images * per_image / rates(stacked, batch, n_in, n_out)
    return flops, seconds


def family_floor(members: dict[str, dict], evaluations: dict[str, dict], shared: dict,
                 rates: Rates) -> tuple[float, float]:
    """(FLOPs, floor seconds) of the train@ stages of variants that share one trajectory (one variant: its own):
    the trajectory once, each seed as long as its longest-needing member, then every member's scoring."""
    spec = next(iter(members.values()))
    shapes = layer_shapes(spec)
    batch = spec.get("batch_size") or shared["batch_size"]
    validated = any(member.get("validation") for member in members.values())
    flops = seconds = 0.0
    for trained_as, stacked in (("alone", False), ("stacked", True)):
        # Per seed: the epochs its longest-needing member ran (reports/evaluation: each seed's own).
        per_seed = [entry for entry in next(iter(evaluations.values()))["spread"]["per_seed"]
                    if (entry.get("trained") == "stacked") == stacked]
        if not per_seed:
            continue
        epochs = sum(max(entry["epochs_run"] for evaluation in evaluations.values()
                         for entry in evaluation["spread"]["per_seed"] if entry["seed"] == seed)
                     for seed in (entry["seed"] for entry in per_seed))
        k = len(per_seed) if stacked else 0
        trained = training_products(shapes, epochs * SPLIT_SIZES["train"], k, batch, rates)
        flops, seconds = flops + trained[0], seconds + trained[1]
        # Each validated epoch's scoring, then the evaluation: seed 42's files are scored about six times on
        # validation or test, each replicate twice; per member.
        scored = (epochs if validated else 0) * SPLIT_SIZES["val"] + \
            len(members) * (6 if not stacked else 2) * SPLIT_SIZES["val"] * len(per_seed)
        for n_in, n_out in shapes:
            forward = 2 * n_in * n_out
            flops += scored * forward
            seconds += scored * forward / rates(k, 1000, n_in, n_out)
    return flops, seconds


def assess_floor(repo: Path, params: dict, rates: Rates) -> tuple[float, float]:
    """Forward passes of each model assess measured (reports/assessment.json) over the pictures of every family, the
    originals and the validation split."""
    assessment = json.loads((repo / "reports/assessment.json").read_text())
    images = assessment["robustness"]["images"] * (len(assessment["robustness"]["families"]) + 1) + SPLIT_SIZES["val"]
    flops = seconds = 0.0
    for entry in [assessment, *assessment.get("alongside", [])]:
        for n_in, n_out in layer_shapes(params["variants"][entry["variant"]]):
            flops += 2 * n_in * n_out * images
            seconds += 2 * n_in * n_out * images / rates(0, 1000, n_in, n_out)
    return flops, seconds


def baseline_floor(params: dict, rates: Rates) -> tuple[float, float]:
    baseline = params["baseline"]
    images = SPLIT_SIZES["train"] * (baseline["cv"] - 1) + SPLIT_SIZES["train"]  # each fold's training, then all
    flops = 4 * PIXELS * CLASSES * images * baseline["max_iter"]
    return flops, flops / rates(0, 1, PIXELS, CLASSES)


def stage_seconds(repo: Path, log: Path) -> tuple[dict[str, float], str]:
    """Seconds per stage of the last run: from its log where each line has them, else reports/timing."""
    if log.is_file():
        lines = [line.split() for line in log.read_text().splitlines() if line.strip()]
        if lines and all(len(line) == 2 for line in lines):
            return {name: float(seconds) for name, seconds in lines}, str(log)
    seconds = {}
    for timing in sorted((repo / "reports/timing").glob("*.json")):
        values = json.loads(timing.read_text())
        if timing.stem == "baseline":
            seconds["baseline"] = sum(values["cv_fit_seconds"].values()) + values["train_fit_seconds"]
        else:
            both = max(values["train_seconds"], values["replicates_train_seconds"])  # the two run side by side
            seconds[f"train@{timing.stem}"] = both + values["evaluate_seconds"]
    return seconds, f"{repo / 'reports/timing'} (training and evaluation only, no log with seconds at {log})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo", type=Path, default=ROOT, help="the checkout whose last run to measure")
    parser.add_argument("--log", type=Path, help="the run's log (default REPO/.dvc/tmp/stages-run.log)")
    parser.add_argument("--repeats", type=int, default=3, help="timed loops per compilation of a shape (default 3)")
    parser.add_argument("--compiles", type=int, default=3,
                        help="fresh compilations per shape (default 3); the best loop of them all counts")
    args = parser.parse_args()
    params = yaml.safe_load((args.repo / "params.yaml").read_text())
    seconds, source = stage_seconds(args.repo, args.log or args.repo / ".dvc/tmp/stages-run.log")
    rates = Rates(args.repeats, args.compiles)

    from fmnist.schema.training import TrainParams, Variant, family

    shared = TrainParams(**params["train"])
    variants = {name: Variant(**spec) for name, spec in params["variants"].items()}
    rows, counted = [], set()
    for stage, took in seconds.items():
        name = stage.partition("@")[2]
        if stage.startswith("train@") and name in variants:
            if name in counted:
                continue
            members = list(family(name, variants, shared))  # trained once: one row for them all
            counted.update(members)
            evaluations = {member: json.loads((args.repo / f"reports/evaluation/{member}.json").read_text())
                           for member in members}
            flops, floor = family_floor({member: params["variants"][member] for member in members}, evaluations,
                                        params["train"], rates)
            stage = "train@" + "+".join(members)
            took = sum(seconds.get(f"train@{member}", 0.0) for member in members)
        elif stage == "baseline":
            flops, floor = baseline_floor(params, rates)
        elif stage == "assess":
            flops, floor = assess_floor(args.repo, params, rates)
        else:
            flops, floor = 0.0, 0.0
        rows.append((stage, took, flops, floor))

    print(f"{os.cpu_count()} cores, {machine.cpu_name()}; seconds from {source}")
    print("sustained fp32 rate on the run's shapes (forward and backward products, TensorFlow, XLA):")
    for (stacked, batch, n_in, n_out), rate in sorted(rates.measured.items()):
        shape = f"{stacked} x " if stacked else ""
        print(f"  {shape}({batch} x {n_in}) @ ({n_in} x {n_out}): {rate / 1e9:6.1f} GFLOP/s")
    width = max(len(row[0]) for row in rows)
    print(f"{'stage':{width}} {'seconds':>8} {'GFLOP':>8} {'floor s':>8} {'x floor':>8}")
    for stage, took, flops, floor in rows:
        ratio = f"{took / floor:8.1f}" if floor else f"{'-':>8}"
        print(f"{stage:{width}} {took:8.1f} {flops / 1e9:8.0f} {floor:8.1f} {ratio}")
    total, total_flops, total_floor = (sum(row[i] for row in rows) for i in (1, 2, 3))
    print(f"{'total':{width}} {total:8.1f} {total_flops / 1e9:8.0f} {total_floor:8.1f} {total / total_floor:8.1f}")


if __name__ == "__main__":
    main()
