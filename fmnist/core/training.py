"""Train one variant and save it: whole model (.keras), weights (.weights.h5), best checkpoint, summary.

Import only after fmnist.core.backend.use().
"""
from __future__ import annotations

import time
from pathlib import Path

import keras
import numpy as np
from dvclive import Live
from dvclive.utils import standardize_metric_name

from fmnist.core import models, replicates
from fmnist.core.dataset import Split
from fmnist.plumbing import atomic, paths
from fmnist.plumbing.paths import (
    CHECKPOINT_FILE,
    HISTORY_DIR,
    MODEL_FILE,
    MODELS_DIR,
    REPLICATES_FILE,
    SUMMARY_FILE,
    WEIGHTS_FILE,
)
from fmnist.plumbing.processes import Child
from fmnist.plumbing.transaction import Transaction
from fmnist.schema.training import TrainParams, Variant


class LiveHistory(keras.callbacks.Callback):
    """dvclive's Keras callback (dvclive.keras.DVCLiveCallback) without its `import tensorflow`:
    that one subclasses tf.keras, which costs every JAX-backend stage ~1.5 s of TensorFlow start-up.
    Same metric names (train/loss, eval/accuracy, ...) and the same files."""

    def __init__(self, live: Live):
        super().__init__()
        self.live = live

    def on_epoch_end(self, epoch, logs=None):
        for metric, value in (logs or {}).items():
            self.live.log_metric(standardize_metric_name(metric, "dvclive.keras"), value)
        self.live.next_step()

    def on_train_end(self, logs=None):
        self.live.end()


def fit(name: str, spec: Variant, shared: TrainParams, train: Split, val: Split, model_dir: Path, history_dir: Path):
    """Train the variant; save its files into model_dir and its per-epoch history into history_dir."""
    models.seed_everything(shared.seed)
    batch_size = spec.batch_size or shared.batch_size
    sizes = {"training": len(train.y)} | ({"validation": len(val.y)} if spec.validation else {})
    with models.distributed(shared, batch_size, sizes) as devices:
        model = models.compile_model(models.build(name, spec, shared.seed), spec, shared)
        callbacks = models.make_callbacks(spec, model_dir / CHECKPOINT_FILE)
        # dvcyaml=False: dvc.yaml declares the plots and metrics itself; the run is already a DVC stage.
        callbacks.append(LiveHistory(Live(str(history_dir), dvcyaml=False, save_dvc_exp=False, report=None)))
        started = time.perf_counter()
        history = model.fit(
            train.x, train.y,
            epochs=spec.epochs,
            batch_size=batch_size,
            validation_data=(val.x, val.y) if spec.validation else None,
            callbacks=callbacks,
            verbose=2,
        ).history
        train_seconds = time.perf_counter() - started
        model.save(model_dir / MODEL_FILE)
        model.save_weights(model_dir / WEIGHTS_FILE)
    summary = summarize(spec, history, callbacks)
    summary["seed"] = shared.seed
    if shared.distribution != "none":  # only then: a single-device run's file stays as it was
        summary["devices"] = devices
    summary["train_seconds"] = round(train_seconds, 3)
    summary["backend"] = keras.backend.backend()  # what actually ran, not what was asked for
    atomic.write_json(model_dir / SUMMARY_FILE, summary)
    return summary


def summarize(spec: Variant, history: dict[str, list[float]], callbacks) -> dict:
    """Epochs run, the epoch early stopping fired at (1-based) and the best epoch by the monitored metric."""
    epochs_run = len(history["loss"])
    stopped_epoch = None
    for callback in callbacks:
        if getattr(callback, "stopped_epoch", 0):  # EarlyStopping: 0-based index of the last epoch run
            stopped_epoch = callback.stopped_epoch + 1
    best_epoch = None
    if spec.validation:
        metric = spec.monitor()
        values = np.asarray(history[metric])
        best_epoch = int(np.argmax(values) if metric == "val_accuracy" else np.argmin(values)) + 1
    return {"epochs_run": epochs_run, "stopped_epoch": stopped_epoch, "best_epoch": best_epoch}


def run(name: str, spec: Variant, shared: TrainParams, train: Split, val: Split, test: Split,
        outputs: Transaction | None = None, job: Child | None = None) -> tuple[dict, dict | None]:
    """Train the chapter's seed and the other seeds' replicates (scores only; none when train.replicates is
    1) into models/<name> and reports/train/<name>, as outputs of the transaction `outputs` (the train stage's,
    which adds the evaluation's files; without one, a transaction of these two folders alone). `job`: the
    replicates, already training in a child process (the train stage); without one they are trained here,
    afterwards. Returns (the chapter seed's summary, the replicates' result or None)."""
    if outputs is None:
        with Transaction(paths.stage_for(name)) as own:
            return run(name, spec, shared, train, val, test, own, job)
    others = replicates.seeds_of(shared)[1:]
    model_dir, history_dir = outputs.folder(MODELS_DIR / name), outputs.folder(HISTORY_DIR / name)
    summary = fit(name, spec, shared, train, val, model_dir, history_dir)
    result = None
    if others:
        result = job.result() if job else replicates.fit(spec, shared, others, train, val, test)
        atomic.write_json(model_dir / REPLICATES_FILE, result)
    return summary, result
