"""Model factory: a variant spec from params.yaml -> the Keras model, optimizer and callbacks.

Import only after fmnist.core.backend.use(): importing keras fixes the backend.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

import keras
import numpy as np

from fmnist.compat import pipeline as compat
from fmnist.core.augmentation import RandomAugmentation
from fmnist.core.idx import IMAGE_SHAPE, NUM_CLASSES
from fmnist.plumbing.errors import StageError
from fmnist.schema.training import Augmentation, TrainParams, Variant

OPTIMIZERS = {
    "sgd": keras.optimizers.SGD,
    "adagrad": keras.optimizers.Adagrad,
    "rmsprop": keras.optimizers.RMSprop,
    "adam": keras.optimizers.Adam,
}


def derived_seed(seed: int, *path: int) -> int:
    """An independent 32-bit seed for one use (a layer's weights, a dropout or augmentation layer) of seed `seed`."""
    return int(np.random.SeedSequence([seed, *path]).generate_state(1)[0])


def augmentation_seed(seed: int) -> int:
    """The seed of a model's random image changes: a lone model's layer and its replicate in the stack draw alike."""
    return derived_seed(seed, 0)


def augmentation_layer(augmentation: Augmentation, seed: int) -> RandomAugmentation:
    """The variant's random image changes (fmnist.core.augmentation), drawn from `seed`'s own generator."""
    return RandomAugmentation(**augmentation.model_dump(), seed=augmentation_seed(seed))


def build(name: str, spec: Variant, seed: int = 0) -> keras.Sequential:
    """Input(28, 28) -> Flatten -> [Dense(units, activation) (-> Dropout)]... -> Dense(10, softmax). With
    augmentation, its random layer (seeded from `seed`) comes before Flatten. The chapter's model.add(...) calls,
    as a list: docs/chapter7.md shows the two side by side."""
    layers: list[keras.layers.Layer] = [keras.Input(shape=IMAGE_SHAPE)]
    if spec.augmentation is not None:
        layers.append(augmentation_layer(spec.augmentation, seed))
    layers.append(keras.layers.Flatten())
    for layer in spec.hidden:
        layers.append(keras.layers.Dense(layer.units, activation=layer.activation))
        if layer.dropout > 0:
            layers.append(keras.layers.Dropout(layer.dropout))
    layers.append(keras.layers.Dense(NUM_CLASSES, activation="softmax"))
    return keras.Sequential(layers, name=name)


def make_optimizer(spec: Variant) -> keras.optimizers.Optimizer:
    return OPTIMIZERS[spec.optimizer.name](**spec.optimizer.options())


def compile_model(model: keras.Model, spec: Variant, shared: TrainParams) -> keras.Model:
    model.compile(
        optimizer=make_optimizer(spec),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        steps_per_execution=shared.steps_per_execution,
    )
    return model


def make_callbacks(spec: Variant, checkpoint_path: Path) -> list[keras.callbacks.Callback]:
    callbacks: list[keras.callbacks.Callback] = []
    if spec.callbacks.checkpoint is not None:
        callbacks.append(keras.callbacks.ModelCheckpoint(
            str(checkpoint_path), monitor=spec.callbacks.checkpoint.monitor, save_best_only=True))
    if (stopping := spec.callbacks.early_stopping) is not None:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor=stopping.monitor, patience=stopping.patience, restore_best_weights=stopping.restore_best_weights))
    return callbacks


def set_seeds(seed: int) -> None:
    """keras.utils.set_random_seed: Python's, NumPy's and Keras's generators (and TensorFlow's, on its backend).
    On JAX, Keras would import TensorFlow (when installed) just to seed its tf.data: ~4 s of start-up and
    its C++ chatter in every JAX process that feeds NumPy arrays and never runs a TensorFlow op."""
    if keras.backend.backend() == "tensorflow":
        keras.utils.set_random_seed(seed)
        return
    with compat.modules_hidden(("tensorflow",)):
        keras.utils.set_random_seed(seed)


def seed_everything(seed: int) -> None:
    """Same params + same machine + same backend => same weights, same metrics."""
    set_seeds(seed)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def end_op_determinism() -> None:
    """Before scoring: evaluate the way a fresh process does. Op determinism (on for training) makes
    TensorFlow pick other kernels for some reductions, which can move a loss by a float32 ulp; without it a
    model scores the same whether or not it was trained in the same process. seed_everything turns it on
    again for the next training."""
    if keras.backend.backend() == "tensorflow":
        compat.disable_tf_op_determinism()


@contextlib.contextmanager
def distributed(shared: TrainParams, batch_size: int, sizes: dict[str, int]) -> Iterator[int]:
    """train.distribution `data_parallel`: models built and fitted meanwhile split every batch over all local
    devices (keras.distribution.DataParallel: weights replicated, the batch sharded, gradients averaged).
    batch_size stays the global batch, so the updates are those of one device with that batch, up to float
    rounding. Yields the number of devices (1 for `none`). Afterwards the model is an ordinary one: saved,
    it reloads and scores on a single device."""
    if shared.distribution == "none":
        yield 1
        return
    devices = keras.distribution.list_devices()
    remainders = {f"batch size {batch_size}": batch_size} | {
        f"the last batch of the {split} set ({size} % {batch_size})": size % batch_size
        for split, size in sizes.items() if size % batch_size}
    for what, size in remainders.items():
        if size % len(devices):
            raise StageError(f"train.distribution data_parallel: {what} does not split evenly over the {len(devices)} "
                             f"devices ({', '.join(devices)}); choose a batch_size whose batches divide by "
                             f"{len(devices)}")
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
    try:
        yield len(devices)
    finally:
        keras.distribution.set_distribution(None)


def load(path: Path, remedy: str = "") -> keras.Model:
    """A saved whole model (.keras) back, in Keras's safe mode; this module's import has registered the project's
    own layer (an augmented variant's file holds it). A StageError naming the file and what is wrong (then `remedy`,
    what to do about it) when it is missing or not a Keras model: the one loader of the stages and predict."""
    said = f"; {remedy}" if remedy else ""
    if not path.is_file():
        raise StageError(f"{path}: not found{said}")
    try:
        return keras.models.load_model(path, safe_mode=True)
    except Exception as error:  # keras raises many kinds (zip, h5, json, value) for a file that is not a model
        raise StageError(f"{path}: not a Keras model file ({type(error).__name__}: {error}){said}") from None


SCORING_BATCH = 1000  # images a step when predicting or evaluating: memory only; the numbers are the same


def batches(x: np.ndarray, y: np.ndarray | None = None, batch_size: int = SCORING_BATCH) -> dict:
    """The data arguments of fit(), evaluate() or predict() for x (and y) in batches of batch_size, in order:
    `model.evaluate(**models.batches(x, y), verbose=0)`. On TensorFlow a tf.data pipeline of its own that does not
    autotune. The one Keras builds from arrays for every call traces its slicing functions and starts an autotuned
    iterator: ~0.1 s a call (~0.3 s with steps run eagerly, as tests/faults.py runs them), and destroying it when
    fit() returns stalled ~5 s every other stack epoch with both cores idle (docs/speed.md). The same batches in the
    same order, so the same numbers, bit for bit (tests/test_models.py, tests/test_replicates.py). Other backends:
    the arrays and the batch size, as Keras takes them."""
    if keras.backend.backend() != "tensorflow":
        return {"x": x, "batch_size": batch_size} | ({} if y is None else {"y": y})
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    slices = x if y is None else (x, y)
    return {"x": tf.data.Dataset.from_tensor_slices(slices).batch(batch_size).with_options(options)}
