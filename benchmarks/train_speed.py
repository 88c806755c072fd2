"""Benchmark: the project's training loop against chapter-style `model.fit`, in one run.

Times the relu100 variant (Flatten -> Dense(100, relu) -> Dense(10, softmax), RMSprop, batch 32) on
data/prepared (run `dvc repro prepare` first) for each backend asked for, against the chapter's way on
TensorFlow: float64 arrays from `/ 255.0`, plain `compile()` and `fit(x, y, epochs=...)`. Each
measurement runs in its own process, since the Keras backend is fixed per process; with --repeats the
styles take turns, so a noisy neighbour on a shared machine slows all of them alike. Prints the median
seconds per epoch after the first (which traces and compiles), validation accuracy, and speed-up ratios
against chapter-style TensorFlow.

It also prints the compute floor: the float32 matrix products one relu100 epoch needs (1,500 steps of
forward, weight gradients and the hidden layer's input gradient: 15.3 GFLOP) at the sgemm rate measured
here on the step's own matrix shapes, and how far each style is from it.

    python benchmarks/train_speed.py [--backends tensorflow jax] [--epochs 4] [--repeats 2]
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

import machine  # benchmarks/machine.py, beside this script

ROOT = Path(__file__).resolve().parent.parent


def measure(style: str, backend_name: str, epochs: int) -> dict:
    """Runs in a child process: train relu100 for `epochs` epochs and time each one."""
    sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)
    from fmnist.core import backend, dataset
    from fmnist.plumbing import params
    from fmnist.schema.training import TrainParams, VariantsParams

    backend.use(backend_name)
    import keras
    import numpy as np

    from fmnist.core import models

    train, val = dataset.load_prepared("train"), dataset.load_prepared("val")
    spec = params.load(VariantsParams).root["relu100"]
    shared = params.load(TrainParams).model_copy(update={"backend": backend_name})
    models.seed_everything(shared.seed)
    if style == "chapter":
        x = train.x.astype(np.float64)  # the chapter's train_input / 255.0 is float64
        model = keras.Sequential([keras.Input(shape=(28, 28)), keras.layers.Flatten(),
                                  keras.layers.Dense(100, activation="relu"),
                                  keras.layers.Dense(10, activation="softmax")])
        model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    else:
        x = train.x
        model = models.compile_model(models.build("relu100", spec), spec, shared)

    epoch_seconds: list[float] = []

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            epoch_seconds.append(time.perf_counter() - self.started)

    started = time.perf_counter()
    model.fit(x, train.y, epochs=epochs, batch_size=32, callbacks=[EpochTimer()], verbose=0)
    total = time.perf_counter() - started
    _, val_accuracy = model.evaluate(val.x, val.y, batch_size=1000, verbose=0)
    return {"style": style, "backend": backend_name, "total_seconds": total, "epoch_seconds": epoch_seconds,
            "val_accuracy": float(val_accuracy)}


def sgemm_rate(batch: int = 32, seconds: float = 2.0) -> dict:
    """float32 GFLOP/s of one training step's matrix products (relu100, batch 32), and of a large sgemm."""
    import numpy as np

    rng = np.random.default_rng(0)
    x, w1, h, w2 = (rng.standard_normal(shape, dtype=np.float32) for shape in
                    ((batch, 784), (784, 100), (batch, 100), (100, 10)))
    g2 = rng.standard_normal((batch, 10), dtype=np.float32)
    # The products one step needs: forward (x@W1, h@W2), both weight gradients, the gradient into h; the
    # gradient into x is never computed. Element-wise work (bias, ReLU, softmax, RMSprop) is small beside it.
    step_flops = 2 * batch * (2 * 784 * 100 + 3 * 100 * 10)

    def step():
        x @ w1, h @ w2, g2 @ w2.T, h.T @ g2, x.T @ h  # forward; dh; dW2; dW1

    def rate(work, flops):
        count, started = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - started) < seconds:
            work()
            count += 1
        return flops * count / elapsed / 1e9

    big = rng.standard_normal((1024, 1024), dtype=np.float32)
    return {"step_gflops": rate(step, step_flops), "big_gflops": rate(lambda: big @ big, 2 * 1024 ** 3),
            "epoch_gflop": step_flops * 1500 / 1e9}


def run_child(style: str, backend_name: str, epochs: int) -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, __file__, "--child", style, backend_name, "--epochs", str(epochs)],
                            capture_output=True, text=True, env=env)
    if result.returncode != 0:
        sys.exit(f"benchmark child ({style}, {backend_name}) failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", nargs="+", default=["tensorflow", "jax"], choices=["tensorflow", "jax"])
    parser.add_argument("--epochs", type=int, default=4, help="epochs per measurement (default 4)")
    parser.add_argument("--repeats", type=int, default=2, help="measurements per style, taking turns (default 2)")
    parser.add_argument("--child", nargs=2, metavar=("STYLE", "BACKEND"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(*args.child, args.epochs)))
        return
    if not (ROOT / "data/prepared/train.npz").is_file():
        sys.exit("data/prepared is missing: run `dvc repro prepare` first")

    runs: dict[tuple[str, str], list[dict]] = {}
    order = [("chapter", "tensorflow")] + [(style, name) for name in args.backends for style in ("chapter", "project")
                                           if (style, name) != ("chapter", "tensorflow")]
    for _ in range(args.repeats):
        for style, backend_name in order:
            runs.setdefault((style, backend_name), []).append(run_child(style, backend_name, args.epochs))
    floor = sgemm_rate()

    def later(key):  # every epoch after the first of every repeat: the steady state
        return [s for run in runs[key] for s in run["epoch_seconds"][1:]]

    reference = statistics.median(later(order[0]))
    floor_seconds = floor["epoch_gflop"] / floor["step_gflops"]
    cpu = machine.cpu_name()
    print(f"relu100, batch 32, {args.epochs} epochs of 48,000 images x {args.repeats} repeats; {cpu}, "
          f"{os.cpu_count()} cores")
    print(f"compute floor: {floor['epoch_gflop']:.1f} GFLOP per epoch at {floor['step_gflops']:.0f} GFLOP/s "
          f"(numpy sgemm on the step's shapes; {floor['big_gflops']:.0f} GFLOP/s on 1024x1024) = "
          f"{floor_seconds:.2f} s/epoch")
    print(f"{'style':<8} {'backend':<11} {'epoch 1 s':>9} {'median later s/epoch':>20} {'min':>6} "
          f"{'ratio':>6} {'x floor':>8} {'val acc':>8}")
    for key in order:
        steady = statistics.median(later(key))
        first = statistics.median(run["epoch_seconds"][0] for run in runs[key])
        print(f"{key[0]:<8} {key[1]:<11} {first:>9.2f} {steady:>20.2f} {min(later(key)):>6.2f} "
              f"{reference / steady:>5.1f}x {steady / floor_seconds:>7.1f}x {runs[key][0]['val_accuracy']:>8.4f}")


if __name__ == "__main__":
    main()
