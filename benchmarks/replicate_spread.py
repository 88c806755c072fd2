"""Benchmark: seed replicates trained stacked (fmnist.core.replicates) against the same seeds trained one by one.

The pipeline trains the chapter's seed alone and the other seeds together as one stacked model. This
checks that the stacked replicates are the same experiment: for each variant asked for, the same seeds are
trained both ways on data/prepared (run `dvc repro prepare` first), and it prints the mean and standard
deviation of validation accuracy of each way, a Welch t-test of the means and an F-test of the variances
(large p-values: no evidence of a difference), and the wall time of each way with their ratio.

    python benchmarks/replicate_spread.py [--backend tensorflow] [--seeds 8] [--variants softmax relu100 ...]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_VARIANTS = ["softmax", "relu100", "relu100_adam", "dropout30_saved"]


def measure(backend_name: str, names: list[str], seeds: list[int]) -> dict:
    """Runs in a child process (the Keras backend is fixed per process)."""
    sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)
    from fmnist.core import backend, dataset
    from fmnist.plumbing import params
    from fmnist.schema.training import TrainParams, VariantsParams

    backend.use(backend_name)
    import keras

    from fmnist.core import models, replicates

    train, val, test = (dataset.load_prepared(split) for split in dataset.SPLITS)
    shared = params.load(TrainParams).model_copy(update={"backend": backend_name})
    variants = params.load(VariantsParams).root
    results = {}
    # Stacked first, as the train stage's child process runs them: before anything turns TensorFlow's op
    # determinism on (the one-by-one runs do), which would keep the stack off XLA.
    for name in names:
        started = time.perf_counter()
        stacked = replicates.fit(variants[name], shared, seeds, train=train, val=val, test=test)["per_seed"]
        results[name] = {"stacked": [entry["val_accuracy"] for entry in stacked],
                         "stacked_seconds": time.perf_counter() - started}
    for name in names:
        spec = variants[name]
        alone, started = [], time.perf_counter()
        for seed in seeds:  # the chapter's way, as fmnist.core.training does it, one process-wide seed at a time
            models.seed_everything(seed)
            model = models.compile_model(models.build(name, spec), spec, shared)
            with tempfile.TemporaryDirectory() as folder:
                checkpoint = Path(folder) / "best.keras"
                model.fit(train.x, train.y, epochs=spec.epochs, batch_size=spec.batch_size or shared.batch_size,
                          validation_data=(val.x, val.y) if spec.validation else None,
                          callbacks=models.make_callbacks(spec, checkpoint), verbose=0)
                if spec.callbacks.checkpoint is not None:
                    model = keras.models.load_model(checkpoint)
                alone.append(float(model.evaluate(val.x, val.y, batch_size=1000, verbose=0)[1]))
        results[name].update(alone=alone, alone_seconds=time.perf_counter() - started)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", default="tensorflow", choices=["tensorflow", "jax"])
    parser.add_argument("--seeds", type=int, default=8, help="seeds per way (43, 44, ...)")
    parser.add_argument("--variants", nargs="+", default=DEFAULT_VARIANTS)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    seeds = [43 + i for i in range(args.seeds)]
    if args.child:
        print(json.dumps(measure(args.backend, args.variants, seeds)))
        return

    import numpy as np
    from scipy import stats

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
    child = subprocess.run([sys.executable, __file__, "--child", "--backend", args.backend, "--seeds", str(args.seeds),
                            "--variants", *args.variants], env=env, capture_output=True, text=True)
    if child.returncode != 0:
        sys.exit(f"benchmark failed:\n{child.stderr[-3000:]}")
    results = json.loads(child.stdout.strip().splitlines()[-1])
    print(f"validation accuracy of seeds {seeds[0]}-{seeds[-1]} ({len(seeds)} each way), {args.backend}")
    print(f"{'variant':<16} {'one by one: mean ± std':>24} {'stacked: mean ± std':>22} {'Welch p':>8} {'F-test p':>9}"
          f" {'one by one s':>13} {'stacked s':>10} {'speed-up':>9}")
    for name, result in results.items():
        alone, stacked = np.array(result["alone"]), np.array(result["stacked"])
        welch = stats.ttest_ind(alone, stacked, equal_var=False).pvalue
        ratio = alone.var(ddof=1) / stacked.var(ddof=1)
        f_cdf = stats.f.cdf(ratio, len(alone) - 1, len(stacked) - 1)
        print(f"{name:<16} {alone.mean():>15.4f} ± {alone.std(ddof=1):.4f} {stacked.mean():>13.4f} ± "
              f"{stacked.std(ddof=1):.4f} {welch:>8.2f} {2 * min(f_cdf, 1 - f_cdf):>9.2f} "
              f"{result['alone_seconds']:>13.1f} {result['stacked_seconds']:>10.1f} "
              f"{result['alone_seconds'] / result['stacked_seconds']:>8.1f}x")


if __name__ == "__main__":
    main()
