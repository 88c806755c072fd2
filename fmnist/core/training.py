"""Train one variant and save it: whole model (.keras), weights (.weights.h5), best checkpoint, summary.

Import only after fmnist.core.backend.use().
"""
from __future__ import annotations

import io
import json
import re
import time
import zipfile
from pathlib import Path

import keras
import numpy as np
from dvclive import Live
from dvclive.utils import standardize_metric_name

from fmnist.core import models, replicates, trajectories
from fmnist.core.dataset import Split
from fmnist.plumbing import atomic, interrupts, paths
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
        interrupts.check()  # a stop whose KeyboardInterrupt was lost must not train on

    def on_train_end(self, logs=None):
        self.live.end()


def fit(name: str, spec: Variant, shared: TrainParams, train: Split, val: Split, *, model_dir: Path,
        history_dir: Path):
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
        reproducible(model_dir)  # the whole model, and ModelCheckpoint's file where it keeps one
    summary = summarize(spec, history, callbacks)
    summary["seed"] = shared.seed
    if shared.distribution != "none":  # only then: a single-device run's file stays as it was
        summary["devices"] = devices
    summary["train_seconds"] = round(train_seconds, 3)
    summary["backend"] = keras.backend.backend()  # what actually ran, not what was asked for
    atomic.write_json(model_dir / SUMMARY_FILE, summary)
    return summary


# A model file's bytes are a function of the model alone, so that the same weights trained again give the same file
# (and models/best the same sha256 in selection.json): Keras writes the time of saving (metadata.json's date_saved
# and the weights' zip entry) and each shared object's Python id() (config.json's shared_object_id).
SAVED_DATE = "1980-01-01@00:00:00"  # zip's epoch, which Keras gives the file's other entries already


def reproducible(model_dir: Path) -> None:
    """Rewrite each .keras file in model_dir with the date SAVED_DATE and its shared objects numbered 1, 2, ... in
    the order they come."""
    for path in sorted(model_dir.glob("*.keras")):
        _rewrite(path)


def _rewrite(path: Path) -> None:
    with zipfile.ZipFile(path) as source:
        entries = [(info, source.read(info)) for info in source.infolist()]
    numbers: dict[str, int] = {}

    def number(found: re.Match) -> str:
        return f'"shared_object_id": {numbers.setdefault(found[1], len(numbers) + 1)}'

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as target:
        for info, data in entries:
            if info.filename == "metadata.json":
                data = json.dumps({**json.loads(data), "date_saved": SAVED_DATE}).encode()
            elif info.filename == "config.json":
                data = re.sub(r'"shared_object_id": (\d+)', number, data.decode()).encode()
            entry = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            entry.compress_type, entry.external_attr = info.compress_type, info.external_attr
            target.writestr(entry, data)
    atomic.write_bytes(path, buffer.getvalue())


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


class EpochRecord(keras.callbacks.Callback):
    """A family's shared trajectory as fit runs it (fmnist.core.trajectories): after every epoch its logs, the
    model's weights and the optimizer's state; and the stop, once every member's result is settled."""

    def __init__(self, members: dict[str, Variant]):
        super().__init__()
        self.members, self.logs, self.seconds, self.arrays = members, [], [], {}

    def on_train_begin(self, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        interrupts.check()  # a stop whose KeyboardInterrupt was lost must not train on
        self.logs.append(dict(logs or {}))
        self.seconds.append(round(time.perf_counter() - self.started, 3))
        for index, value in enumerate(self.model.get_weights()):
            self.arrays[f"e{epoch + 1}/w{index}"] = value
        for index, variable in enumerate(self.model.optimizer.variables):
            self.arrays[f"e{epoch + 1}/o{index}"] = np.array(variable)
        if all(trajectories.done(spec, validation_history(self.logs), epoch + 1) for spec in self.members.values()):
            self.model.stop_training = True


def validation_history(logs: list[dict]) -> dict[str, list[float]]:
    return {key: [entry[key] for entry in logs] for key in ("val_loss", "val_accuracy") if logs and key in logs[0]}


def fit_trajectory(members: dict[str, Variant], shared: TrainParams, train: Split, val: Split) -> tuple[dict, dict]:
    """Seed 42's fit of a family's shared trajectory, as long as its members need: (record, arrays) to keep."""
    spec = next(iter(members.values())).model_copy(update={
        "epochs": trajectories.epochs_needed(members), "validation": trajectories.validated(members)})
    models.seed_everything(shared.seed)
    batch_size = spec.batch_size or shared.batch_size
    model = models.compile_model(models.build(next(iter(members)), spec, shared.seed), spec, shared)
    recorder = EpochRecord(members)
    model.fit(train.x, train.y, epochs=spec.epochs, batch_size=batch_size,
              validation_data=(val.x, val.y) if spec.validation else None, callbacks=[recorder], verbose=2)
    return {"logs": recorder.logs, "seconds": recorder.seconds, "validated": spec.validation}, recorder.arrays


def derive(name: str, spec: Variant, shared: TrainParams, record: dict, arrays: dict, *, model_dir: Path,
           history_dir: Path) -> dict:
    """A family member's files from its shared trajectory, as fit() with the member's callbacks writes them: the
    whole model with the weights its callbacks keep (and the optimizer's state of its last epoch), the weights
    file, the best checkpoint, the per-epoch history and the summary."""
    logs = record["logs"]
    if spec.validation:
        replay = replicates.replay_callbacks(spec, replicates.until(validation_history(logs), spec.epochs))
    else:
        replay = replicates.Replay(spec.epochs, None, None, spec.epochs)
        logs = [{key: value for key, value in entry.items() if not key.startswith("val_")} for entry in logs]
    # Layers are named in the order a process makes them (dense, dense_1, ...) and the weights file holds the
    # names: a fresh count, as the member's own process would have.
    keras.backend.clear_session()
    model = models.compile_model(models.build(name, spec, shared.seed), spec, shared)
    model.optimizer.build(model.trainable_variables)

    def load(weights_epoch: int, optimizer_epoch: int) -> None:
        for index, variable in enumerate(model.weights):
            variable.assign(arrays[f"e{weights_epoch}/w{index}"])
        for index, variable in enumerate(model.optimizer.variables):
            variable.assign(arrays[f"e{optimizer_epoch}/o{index}"])

    if spec.callbacks.checkpoint is not None:  # ModelCheckpoint saved the model at the end of its best epoch
        load(replay.best_epoch, replay.best_epoch)
        model.save(model_dir / CHECKPOINT_FILE)
    # After fit, the model holds its last epoch's weights, or the best epoch's where EarlyStopping restores them
    # (ModelCheckpoint restores nothing: its file is the best).
    stopping = spec.callbacks.early_stopping
    restored = stopping is not None and stopping.restore_best_weights
    load(replay.best_epoch if restored else replay.epochs_run, replay.epochs_run)
    model.save(model_dir / MODEL_FILE)
    model.save_weights(model_dir / WEIGHTS_FILE)
    reproducible(model_dir)
    history = LiveHistory(Live(str(history_dir), dvcyaml=False, save_dvc_exp=False, report=None))
    for epoch, entry in enumerate(logs[:replay.epochs_run]):
        history.on_epoch_end(epoch, entry)
    history.on_train_end()
    summary = {"epochs_run": replay.epochs_run, "stopped_epoch": replay.stopped_epoch,
               "best_epoch": replay.best_epoch if spec.validation else None, "seed": shared.seed,
               "train_seconds": record["seconds"][replay.epochs_run - 1], "backend": keras.backend.backend()}
    atomic.write_json(model_dir / SUMMARY_FILE, summary)
    return summary


def fit_shared(name: str, members: dict[str, Variant], shared: TrainParams, train: Split, val: Split, *,
               model_dir: Path, history_dir: Path) -> dict:
    """fit() for `name`, a member of a family that shares one trajectory: trained once for the family (or found
    kept from an earlier stage, fmnist.core.trajectories), then made into `name`'s files. The same files as fit()."""
    key = trajectories.fingerprint(members, shared, [shared.seed], "chapter", [train.x, train.y, val.x, val.y])
    memo = trajectories.recall(key)
    if memo is None or not trajectories.done(members[name], validation_history(memo[0]["logs"]),
                                             len(memo[0]["logs"])):
        memo = fit_trajectory(members, shared, train, val)
        trajectories.keep(key, *memo)
    return derive(name, members[name], shared, *memo, model_dir=model_dir, history_dir=history_dir)


def chapter_seed(name: str, spec: Variant, shared: TrainParams, *, train: Split, val: Split, outputs: Transaction,
                 members: dict[str, Variant] | None = None) -> dict:
    """Train the chapter's seed into models/<name> and reports/train/<name>, new folders of the transaction `outputs`.
    `members`: the variants that share name's trajectory (trajectories.family; by default name alone): with others, it
    is trained once for them all. Returns its summary."""
    members = members or {name: spec}
    model_dir, history_dir = outputs.folder(MODELS_DIR / name), outputs.folder(HISTORY_DIR / name)
    if len(members) > 1:
        return fit_shared(name, members, shared, train, val, model_dir=model_dir, history_dir=history_dir)
    return fit(name, spec, shared, train, val, model_dir=model_dir, history_dir=history_dir)


def other_seeds_scores(name: str, spec: Variant, shared: TrainParams, *, train: Split, val: Split, test: Split,
                       outputs: Transaction, job: Child | None = None,
                       members: dict[str, Variant] | None = None) -> dict | None:
    """The other seeds' result (scores only; None when the variant has one seed), also written to models/<name>/
    replicates.json in `outputs` (after chapter_seed): `job`'s, already training in a child process (the train stage),
    else trained here and now."""
    members = members or {name: spec}
    others = replicates.seeds_of(spec, shared)[1:]
    if not others:
        return None
    if job:
        result = job.result()
    elif len(members) > 1:
        result = replicates.fit_shared(name, members, shared, others, train=train, val=val, test=test)
    else:
        result = replicates.fit(spec, shared, others, train=train, val=val, test=test)
    atomic.write_json(outputs.folder_of(MODELS_DIR / name) / REPLICATES_FILE, result)
    return result


def run(name: str, spec: Variant, shared: TrainParams, *, train: Split, val: Split, test: Split,
        members: dict[str, Variant] | None = None) -> tuple[dict, dict | None]:
    """chapter_seed, then other_seeds_scores, in a transaction of these two folders alone. Returns (the chapter seed's
    summary, the other seeds' result or None)."""
    with Transaction(paths.stage_for(name)) as outputs:
        summary = chapter_seed(name, spec, shared, train=train, val=val, outputs=outputs, members=members)
        result = other_seeds_scores(name, spec, shared, train=train, val=val, test=test, outputs=outputs,
                                    members=members)
    return summary, result
