"""Benchmark: the project's training loop against chapter-style `model.fit`, in one run.

Times the relu100 variant (Flatten -> Dense(100, relu) -> Dense(10, softmax), RMSprop, batch 32) on
data/prepared (run `dvc repro prepare` first) for each backend asked for, against the chapter's way on
TensorFlow: float64 arrays from `/ 255.0`, plain `compile()` and `fit(x, y, epochs=...)`. Each
measurement runs in its own process, since the Keras backend is fixed per process. Prints seconds per
epoch, validation accuracy, and speed-up ratios against chapter-style TensorFlow.

    python benchmarks/train_speed.py [--backends tensorflow jax] [--epochs 3]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def measure(style: str, backend_name: str, epochs: int) -> dict:
    """Runs in a child process: train relu100 for `epochs` epochs and time each one."""
    sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)
    from fmnist import backend, dataset, params

    backend.use(backend_name)
    import keras
    import numpy as np

    from fmnist import models

    train, val = dataset.load_prepared("train"), dataset.load_prepared("val")
    spec = params.load("variants").root["relu100"]
    shared = params.load("train").model_copy(update={"backend": backend_name})
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
    parser.add_argument("--epochs", type=int, default=3, help="epochs per measurement (default 3)")
    parser.add_argument("--child", nargs=2, metavar=("STYLE", "BACKEND"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(*args.child, args.epochs)))
        return
    if not (ROOT / "data/prepared/train.npz").is_file():
        sys.exit("data/prepared is missing: run `dvc repro prepare` first")

    runs = [run_child("chapter", "tensorflow", args.epochs)]
    for backend_name in args.backends:
        if backend_name != "tensorflow":
            runs.append(run_child("chapter", backend_name, args.epochs))
        runs.append(run_child("project", backend_name, args.epochs))

    reference = runs[0]
    print(f"relu100, batch 32, {args.epochs} epochs of 48,000 images; ratios against chapter-style TensorFlow")
    print(f"{'style':<8} {'backend':<11} {'epoch 1 s':>9} {'later s/epoch':>13} {'fit total s':>11} "
          f"{'ratio':>6} {'steady ratio':>12} {'val acc':>8}")
    for run in runs:
        later = run["epoch_seconds"][1:] or run["epoch_seconds"]
        ref_later = reference["epoch_seconds"][1:] or reference["epoch_seconds"]
        steady = (sum(ref_later) / len(ref_later)) / (sum(later) / len(later))
        print(f"{run['style']:<8} {run['backend']:<11} {run['epoch_seconds'][0]:>9.2f} {sum(later) / len(later):>13.2f} "
              f"{run['total_seconds']:>11.2f} {reference['total_seconds'] / run['total_seconds']:>5.1f}x "
              f"{steady:>11.1f}x {run['val_accuracy']:>8.4f}")


if __name__ == "__main__":
    main()
