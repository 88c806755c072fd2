"""Seed replicates: several copies of one variant trained together, each with its own seed.

The chapter's seed (train.seed, 42) is trained on its own, exactly as the chapter does (fmnist.core.training),
and its model is the one saved and evaluated. The other seeds (train.seed + 1, + 2, ...) only measure
the spread. Training them one after another would cost one whole fit each; at batch 32 a step is mostly
per-step overhead, not arithmetic, so they are trained as one stacked model instead:

- replicate k has its own weights: every Dense becomes a (K, in, units) kernel, applied with one
  batched matmul; each slice is initialised with Glorot-uniform from its own seed;
- replicate k sees its own batches: each epoch it draws its own permutation of the training set
  (numpy, from its own seed), and the model gathers its batch from the training images held inside it;
- replicate k has its own dropout masks, and its own augmentation layers (random rotation, zoom, ...), from
  generators seeded by its own seed (the augmentation layers seeded as a lone model of that seed seeds them);
- the loss is the sum of the replicates' mean batch losses, so each replicate's weights get exactly the
  gradient they would get alone, and the optimizers (SGD, RMSprop, Adam, Adagrad) update element-wise.

What differs from training seed by seed is only float rounding (batched kernels) and the random
streams' origin. Callbacks are replayed per replicate from its own per-epoch validation loss with
Keras's own rules (EarlyStopping, ModelCheckpoint save_best_only), and each replicate is scored on
validation and test with the weights those rules pick. Scores only: replicate models are not saved.

The train stage runs them in a child process (`python -m fmnist.core.replicates <variant>`) while it
trains the chapter's seed (which alone keeps about one core busy), and in a process of its own the stack
may use XLA (TensorFlow refuses XLA once op determinism is on; XLA on the CPU is deterministic too).

Importing this module imports keras through fmnist.core.backend.use(), with the backend KERAS_BACKEND names
(the child process gets it from its stage).
"""
from __future__ import annotations

import json
import sys
import time
import warnings
from dataclasses import dataclass
from typing import Callable

from fmnist.core import backend

backend.use(backend.requested())  # in the stage's child process: keras, imported lean, with its backend
import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

from fmnist.core import dataset, models  # noqa: E402
from fmnist.core.dataset import Split
from fmnist.core.idx import IMAGE_SHAPE, NUM_CLASSES
from fmnist.plumbing import params, runner  # noqa: E402
from fmnist.schema.training import Augmentation, TrainParams, Variant, VariantsParams

EPSILON = 1e-7  # keras.config.epsilon(): sparse_categorical_crossentropy clips probabilities to it



class StackedGlorotUniform(keras.initializers.Initializer):
    """Glorot-uniform for each (in, units) slice of a (K, in, units) kernel, each from its own seed:
    the same distribution as a lone Dense layer's kernel."""

    def __init__(self, seeds: list[int]):
        self.seeds = seeds

    def __call__(self, shape, dtype=None):
        return ops.stack([keras.initializers.GlorotUniform(seed=s)(shape[1:], dtype=dtype) for s in self.seeds])


class StackedDense(keras.layers.Layer):
    """K independent Dense layers at once: (K, batch, in) -> (K, batch, units)."""

    def __init__(self, units: int, activation: str, seeds: list[int], **kwargs):
        super().__init__(**kwargs)
        self.units, self.seeds = units, seeds
        self.activation = keras.activations.get(activation)

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(len(self.seeds), input_shape[-1], self.units),
                                      initializer=StackedGlorotUniform(self.seeds), name="kernel")
        self.bias = self.add_weight(shape=(len(self.seeds), 1, self.units), initializer="zeros", name="bias")

    def call(self, x):
        return self.activation(ops.matmul(x, self.kernel) + self.bias)


class StackedDropout(keras.layers.Layer):
    """Dropout with one random generator per replicate (its masks depend on its own seed only)."""

    def __init__(self, rate: float, seeds: list[int], **kwargs):
        super().__init__(**kwargs)
        self.rate = rate
        self.generators = [keras.random.SeedGenerator(s) for s in seeds]

    def call(self, x, training=False):
        if not training:
            return x
        return ops.stack([keras.random.dropout(x[k], self.rate, seed=generator)
                          for k, generator in enumerate(self.generators)])


class StackedAugmentation(keras.layers.Layer):
    """Each replicate's batch through augmentation layers of its own (own seeds): (K, batch, 784) in and out.
    Outside training it passes its input through, as the lone model's random layers do."""

    def __init__(self, augmentation: Augmentation, seeds: list[int], **kwargs):
        super().__init__(**kwargs)
        self.pipelines = [models.augmentation_layers(augmentation, seed) for seed in seeds]

    def build(self, input_shape):
        for pipeline in self.pipelines:
            for layer in pipeline:
                layer.build((None, *IMAGE_SHAPE, 1))

    def call(self, x, training=False):
        if not training:
            return x
        changed = []
        for k, pipeline in enumerate(self.pipelines):
            images = ops.reshape(x[k], (-1, *IMAGE_SHAPE, 1))
            for layer in pipeline:
                images = layer(images, training=True)
            changed.append(ops.reshape(images, (-1, int(np.prod(IMAGE_SHAPE)))))
        return ops.stack(changed)


class GatherBatches(keras.layers.Layer):
    """(batch, K) row indices -> (K, batch, 784) images, from the training set held in the model, so each
    epoch only the indices of each replicate's permutation are fed, not K copies of the images."""

    def __init__(self, images: np.ndarray, **kwargs):
        super().__init__(**kwargs)
        self.images = images

    def build(self, input_shape):
        self.table = self.add_weight(shape=self.images.shape, initializer=keras.initializers.Constant(self.images),
                                     trainable=False, name="table")
        self.images = None  # the variable holds them now

    def call(self, indices):
        return ops.take(self.table, ops.transpose(indices), axis=0)


class Broadcast(keras.layers.Layer):
    """(batch, 28, 28) images -> (K, batch, 784): every replicate scores the same images."""

    def __init__(self, replicas: int, **kwargs):
        super().__init__(**kwargs)
        self.replicas = replicas

    def call(self, x):
        flat = ops.reshape(x, (-1, int(np.prod(x.shape[1:]))))
        return ops.stack([flat] * self.replicas)


class ToBatchMajor(keras.layers.Layer):
    """(K, batch, classes) -> (batch, K, classes), the layout Keras's losses and fit expect."""

    def call(self, x):
        return ops.transpose(x, (1, 0, 2))


def summed_crossentropy(y_true, y_pred):
    """Per image: the sum over replicates of each one's sparse categorical cross-entropy. Keras averages
    it over the batch, so replicate k's loss term is its own mean batch loss, as when trained alone."""
    return ops.sum(keras.losses.sparse_categorical_crossentropy(y_true, y_pred), axis=-1)


def build_stack(spec: Variant, seeds: list[int], train_x: np.ndarray) -> tuple[keras.Model, keras.Model]:
    """(training model: indices -> probabilities, scoring model: images -> probabilities), sharing weights."""
    layers: list[keras.layers.Layer] = []
    if spec.augmentation is not None:  # seeds as the lone model's: models.build(..., seed)
        layers.append(StackedAugmentation(spec.augmentation, seeds))
    for index, layer in enumerate(spec.hidden):
        layers.append(StackedDense(layer.units, layer.activation, [models.derived_seed(s, index, 0) for s in seeds]))
        if layer.dropout > 0:
            layers.append(StackedDropout(layer.dropout, [models.derived_seed(s, index, 1) for s in seeds]))
    layers.append(StackedDense(NUM_CLASSES, "softmax", [models.derived_seed(s, len(spec.hidden), 0) for s in seeds]))

    def head(x):
        for layer in layers:
            x = layer(x)
        return ToBatchMajor()(x)

    indices = keras.Input(shape=(len(seeds),), dtype="int32")
    training = keras.Model(indices, head(GatherBatches(train_x.reshape(len(train_x), -1))(indices)))
    images = keras.Input(shape=train_x.shape[1:])
    scoring = keras.Model(images, head(Broadcast(len(seeds))(images)))
    return training, scoring


def scores(probabilities: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(loss, accuracy) per replicate from (N, K, classes) probabilities, as Keras's evaluate defines them."""
    picked = np.take_along_axis(probabilities, labels[:, None, None].astype(np.int64), axis=2)[:, :, 0]
    loss = -np.log(np.clip(picked.astype(np.float64), EPSILON, 1 - EPSILON)).mean(axis=0)
    accuracy = (probabilities.argmax(axis=2) == labels[:, None]).mean(axis=0)
    return loss, accuracy


@dataclass(frozen=True)
class Replay:
    """What the variant's callbacks would have done to one replicate, from its per-epoch monitored values."""

    epochs_run: int
    stopped_epoch: int | None  # 1-based epoch EarlyStopping fired at; None if it never did
    best_epoch: int | None  # 1-based, by the monitored metric, over the epochs run (None: no validation)
    kept_epoch: int  # 1-based epoch whose weights are the result (checkpoint / restored best / last)


def replay_callbacks(spec: Variant, history: dict[str, list[float]]) -> Replay:
    """Keras 3's rules with min_delta=0: an epoch improves on the best only if strictly better; EarlyStopping
    counts epochs since the last improvement and stops once that reaches `patience` (never at the first
    epoch), restoring the best epoch's weights at the end of training when restore_best_weights is set;
    ModelCheckpoint(save_best_only) keeps the first epoch with the best value."""
    values = history[spec.monitor()]
    epochs_run, stopped_epoch = len(values), None
    if (stopping := spec.callbacks.early_stopping) is not None:
        series = history[stopping.monitor]
        better = (lambda a, b: a > b) if stopping.monitor == "val_accuracy" else (lambda a, b: a < b)
        best, wait = None, 0
        for epoch, value in enumerate(series):
            wait += 1
            if best is None or better(value, best):
                best, wait = value, 0
                continue
            if wait >= stopping.patience and epoch > 0:
                epochs_run = stopped_epoch = epoch + 1
                break
    run = np.asarray(values[:epochs_run])
    best_epoch = int(np.argmax(run) if spec.monitor() == "val_accuracy" else np.argmin(run)) + 1
    keeps_best = spec.callbacks.checkpoint is not None or (stopping is not None and stopping.restore_best_weights)
    return Replay(epochs_run, stopped_epoch, best_epoch, best_epoch if keeps_best else epochs_run)


def seeds_of(shared: TrainParams) -> list[int]:
    """Every seed of a variant: the chapter's first, then the replicates'."""
    return [shared.seed + i for i in range(shared.replicates)]


def fit(spec: Variant, shared: TrainParams, seeds: list[int], train: Split, val: Split, test: Split | None,
        on_epoch: Callable[[int, np.ndarray, np.ndarray], None] | None = None) -> dict:
    """Train one replicate per seed together; return each one's scores and epochs (see module docstring).
    Deterministic: same seeds, data, machine and backend give the same results. on_epoch(epoch, val_loss,
    val_accuracy), one value per replicate, follows every validated epoch and may raise to stop training (a
    pruned tuning trial). Without a test split (tuning: never test) the test scores are None."""
    models.set_seeds(seeds[0])  # every random stream below is seeded explicitly; this is for the rest
    training, scoring = build_stack(spec, seeds, train.x)
    # XLA: twice as fast here on TensorFlow (whose "auto" never picks it on a CPU), and deterministic on the
    # CPU. Keras refuses it, with this warning, in a TensorFlow process that turned op determinism on (the
    # chapter seed's run, when the replicates train in the same process): its own kernels are used then.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Model doesn't support `jit_compile=True`")
        training.compile(optimizer=models.make_optimizer(spec), loss=summed_crossentropy,
                         steps_per_execution=shared.steps_per_execution, jit_compile=True)
    shufflers = [np.random.default_rng(seed) for seed in seeds]
    batch_size = spec.batch_size or shared.batch_size

    history = {"val_loss": [], "val_accuracy": []}  # per epoch: one value per replicate
    snapshots = []  # per epoch: the stacked weights (validated variants only: a callback may pick any epoch)

    def replay_each() -> list[Replay]:
        return [replay_callbacks(spec, {key: [epoch[i] for epoch in series] for key, series in history.items()})
                for i in range(len(seeds))]

    started = time.perf_counter()
    for _ in range(spec.epochs):
        order = np.stack([rng.permutation(len(train.y)) for rng in shufflers], axis=1)
        training.fit(order.astype(np.int32), train.y[order], batch_size=batch_size, epochs=1, shuffle=False, verbose=0)
        if not spec.validation:
            continue
        val_loss, val_accuracy = scores(scoring.predict(val.x, batch_size=1000, verbose=0), val.y)
        history["val_loss"].append(val_loss)
        history["val_accuracy"].append(val_accuracy)
        snapshots.append([np.array(w) for w in training.trainable_weights])
        if on_epoch is not None:
            on_epoch(len(history["val_loss"]), val_loss, val_accuracy)
        if all(replay.stopped_epoch is not None for replay in replay_each()):
            break  # every replicate's EarlyStopping has fired: later epochs could change nothing
    train_seconds = time.perf_counter() - started

    if spec.validation:
        replays = replay_each()
        # Put each replicate's kept epoch back into its slice of the stacked weights.
        kept = [np.stack([snapshots[r.kept_epoch - 1][w][i] for i, r in enumerate(replays)])
                for w in range(len(training.trainable_weights))]
        for variable, value in zip(training.trainable_weights, kept):
            variable.assign(value)
    else:
        replays = [Replay(spec.epochs, None, None, spec.epochs) for _ in seeds]
    val_loss, val_accuracy = scores(scoring.predict(val.x, batch_size=1000, verbose=0), val.y)
    if test is not None:
        test_loss, test_accuracy = scores(scoring.predict(test.x, batch_size=1000, verbose=0), test.y)
    else:
        test_loss = test_accuracy = [None] * len(seeds)
    per_seed = [{
        "seed": seed,
        "val_accuracy": float(val_accuracy[i]),
        "val_loss": float(val_loss[i]),
        "test_accuracy": None if test_accuracy[i] is None else float(test_accuracy[i]),
        "test_loss": None if test_loss[i] is None else float(test_loss[i]),
        "epochs_run": replays[i].epochs_run,
        "stopped_epoch": replays[i].stopped_epoch,
        "best_epoch": replays[i].best_epoch,
    } for i, seed in enumerate(seeds)]
    return {"per_seed": per_seed, "train_seconds": round(train_seconds, 3)}


def main() -> None:
    """`python -m fmnist.core.replicates <variant>`: train the variant's other seeds, print the result as JSON."""
    shared = params.load(TrainParams)
    name = sys.argv[1]
    spec = params.load(VariantsParams).root[name]
    splits = [dataset.load_prepared(split) for split in dataset.SPLITS]
    print(json.dumps(fit(spec, shared, seeds_of(shared)[1:], *splits)))


if __name__ == "__main__":
    runner.run(main)
