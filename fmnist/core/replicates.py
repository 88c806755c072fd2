"""Seed replicates: several copies of one variant trained together, each with its own seed.

The chapter's seed (train.seed, 42) is trained on its own, exactly as the chapter does (fmnist.core.training),
and its model is the one saved and evaluated. The other seeds (train.seed + 1, + 2, ...) only measure
the spread. Training them one after another would cost one whole fit each; at batch 32 a step is mostly
per-step overhead, not arithmetic, so they are trained as one stacked model instead:

- replicate k has its own weights: every Dense becomes a (K, in, units) kernel, applied with one
  batched matmul; each slice is initialised with Glorot-uniform from its own seed;
- replicate k sees its own batches: each epoch it draws its own permutation of the training set
  (numpy, from its own seed), and the model gathers its batch from the training images held inside it;
- replicate k has its own dropout masks and its own random image changes (fmnist.core.augmentation), from
  generators seeded by its own seed (the augmentation's seeded as a lone model of that seed seeds it), the K
  batches changed in one vectorised transform;
- the loss is the sum of the replicates' mean batch losses, so each replicate's weights get exactly the
  gradient they would get alone, and the optimizers (SGD, RMSprop, Adam, Adagrad) update element-wise.

What differs from training seed by seed is only float rounding (batched kernels) and the random
streams' origin. Callbacks are replayed per replicate from its own per-epoch validation loss with
Keras's own rules (EarlyStopping, ModelCheckpoint save_best_only), and each replicate is scored on
validation and test with the weights those rules pick. Scores only: replicate models are not saved.
A replicate whose EarlyStopping has fired leaves the stack; the others go on in a smaller one, each exactly as
it would have (its own slices of the weights, optimizer state and random generators; never a stack of one, which
XLA rounds otherwise).

The train stage runs them in a child process (`python -m fmnist.core.other_seeds <variant>`, which calls main()
below) while it trains the chapter's seed (which alone keeps about one core busy), and in a process of its own the
stack may use XLA (TensorFlow refuses XLA once op determinism is on; XLA on the CPU is deterministic too).

Import only after fmnist.core.backend.use(): importing keras fixes the backend.
"""
from __future__ import annotations

import json
import sys
import time
import warnings
from dataclasses import dataclass
from typing import Callable

import keras
import numpy as np
from keras import ops

from fmnist.core import augmentation as image_changes
from fmnist.core import dataset, models
from fmnist.core.dataset import Split
from fmnist.core.idx import NUM_CLASSES
from fmnist.plumbing import interrupts, params
from fmnist.schema.training import Augmentation, TrainParams, Variant, VariantsParams, family, replicates_of

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
    """Each replicate's batch changed by draws from its own generator, seeded as the lone model of its seed seeds
    its augmentation layer (models.augmentation_layer), then all K batches in one vectorised transform:
    (K, batch, 784) in and out. Outside training it passes its input through, as the lone model's layer does."""

    def __init__(self, augmentation: Augmentation, seeds: list[int], **kwargs):
        super().__init__(**kwargs)
        self.factors = augmentation.model_dump()
        self.generators = [keras.random.SeedGenerator(models.augmentation_seed(seed)) for seed in seeds]

    def call(self, x, training=False):
        if not training:
            return x
        batch = ops.shape(x)[1]
        uniforms = ops.concatenate([image_changes.draw(generator, batch) for generator in self.generators])
        changed = image_changes.apply(ops.reshape(x, (-1, image_changes.PIXELS)), uniforms, **self.factors)
        return ops.reshape(changed, ops.shape(x))


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


@dataclass
class Stack:
    """The stacked models of some replicates, sharing weights: `training` maps a batch of each replicate's rows
    (batch, K) to probabilities, `scoring` maps images to every replicate's probabilities (batch, K, classes)."""

    seeds: list[int]
    training: keras.Model
    scoring: keras.Model
    augmentation: StackedAugmentation | None
    dropouts: list[StackedDropout]

    def generators(self) -> list[list[keras.random.SeedGenerator]]:
        """Per replicate, every random generator it owns (dropout masks, augmentation draws), in a fixed order."""
        owned: list[list[keras.random.SeedGenerator]] = [[] for _ in self.seeds]
        for dropout in self.dropouts:
            for k, generator in enumerate(dropout.generators):
                owned[k].append(generator)
        if self.augmentation is not None:
            for k, generator in enumerate(self.augmentation.generators):
                owned[k].append(generator)
        return owned


def build_stack(spec: Variant, seeds: list[int], train_x: np.ndarray) -> Stack:
    """The stacked training and scoring models of one replicate per seed (see Stack)."""
    layers: list[keras.layers.Layer] = []
    augmentation = None
    if spec.augmentation is not None:  # seeds as the lone model's: models.build(..., seed)
        augmentation = StackedAugmentation(spec.augmentation, seeds)
        layers.append(augmentation)
    dropouts: list[StackedDropout] = []
    for index, layer in enumerate(spec.hidden):
        layers.append(StackedDense(layer.units, layer.activation, [models.derived_seed(s, index, 0) for s in seeds]))
        if layer.dropout > 0:
            dropouts.append(StackedDropout(layer.dropout, [models.derived_seed(s, index, 1) for s in seeds]))
            layers.append(dropouts[-1])
    layers.append(StackedDense(NUM_CLASSES, "softmax", [models.derived_seed(s, len(spec.hidden), 0) for s in seeds]))

    def head(x):
        for layer in layers:
            x = layer(x)
        return ToBatchMajor()(x)

    indices = keras.Input(shape=(len(seeds),), dtype="int32")
    training = keras.Model(indices, head(GatherBatches(train_x.reshape(len(train_x), -1))(indices)))
    images = keras.Input(shape=train_x.shape[1:])
    scoring = keras.Model(images, head(Broadcast(len(seeds))(images)))
    return Stack(seeds, training, scoring, augmentation, dropouts)


def compile_stack(stack: Stack, spec: Variant, shared: TrainParams) -> None:
    """XLA: twice as fast here on TensorFlow (whose "auto" never picks it on a CPU), and deterministic on the CPU.
    Keras refuses it, with this warning, in a TensorFlow process that turned op determinism on (the chapter
    seed's run, when the replicates train in the same process): its own kernels are used then."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Model doesn't support `jit_compile=True`")
        stack.training.compile(optimizer=models.make_optimizer(spec), loss=summed_crossentropy,
                               steps_per_execution=shared.steps_per_execution, jit_compile=True)


def keeping(stack: Stack, spec: Variant, shared: TrainParams, train_x: np.ndarray, positions: list[int]) -> Stack:
    """A smaller stack that goes on exactly where the replicates at `positions` of `stack` are: their weights,
    optimizer state (moments, step count) and random generators' states. Each replicate's slice is computed
    on its own (batched matmuls, element-wise updates), so its training goes on as it would have in the larger
    stack; tests/test_replicates.py holds that."""
    smaller = build_stack(spec, [stack.seeds[k] for k in positions], train_x)
    compile_stack(smaller, spec, shared)
    smaller.training.optimizer.build(smaller.training.trainable_variables)
    for old, new in zip(stack.training.trainable_variables, smaller.training.trainable_variables):
        new.assign(np.asarray(old)[positions])
    for old, new in zip(stack.training.optimizer.variables, smaller.training.optimizer.variables):
        value = np.asarray(old)  # the step count and learning rate are scalars; a slot has the variable's shape
        new.assign(value if value.shape == tuple(new.shape) else value[positions])
    generators = stack.generators()
    for new_own, k in zip(smaller.generators(), positions):
        for old, new in zip(generators[k], new_own):
            new.state.assign(old.state)
    return smaller


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


def seeds_of(spec: Variant, shared: TrainParams) -> list[int]:
    """Every seed of a variant: the chapter's first, then the replicates' (its own `replicates`, else train's)."""
    return [shared.seed + i for i in range(replicates_of(spec, shared))]


@dataclass
class StackRun:
    """A stack's training, every epoch of it: per replicate its monitored values and weights (the record of a
    family's shared trajectory, fmnist.core.trajectories)."""

    seeds: list[int]
    histories: list[dict[str, list[float]]]  # per replicate: val_loss and val_accuracy per epoch (validated runs)
    snapshots: list[list[list[np.ndarray]]]  # per replicate, per epoch: the replicate's slice of every weight
    train_seconds: float

    def epochs(self, replicate: int) -> int:
        return len(self.snapshots[replicate])

    def record(self) -> tuple[dict, dict[str, np.ndarray]]:
        """(what a memo's record.json holds, its arrays)."""
        arrays = {f"r{i}/e{e + 1}/w{w}": value for i, epochs in enumerate(self.snapshots)
                  for e, weights in enumerate(epochs) for w, value in enumerate(weights)}
        histories = [{key: [float(value) for value in values] for key, values in history.items()}
                     for history in self.histories]
        return {"seeds": self.seeds, "histories": histories, "train_seconds": self.train_seconds,
                "epochs": [self.epochs(i) for i in range(len(self.seeds))]}, arrays

    @classmethod
    def recalled(cls, record: dict, arrays: dict[str, np.ndarray]) -> "StackRun":
        weights = len({name.rpartition("/")[2] for name in arrays})
        snapshots = [[[arrays[f"r{i}/e{e + 1}/w{w}"] for w in range(weights)] for e in range(epochs)]
                     for i, epochs in enumerate(record["epochs"])]
        return cls(record["seeds"], record["histories"], snapshots, record["train_seconds"])


def until(history: dict[str, list[float]], epochs: int) -> dict[str, list[float]]:
    """A history as it stood after `epochs` epochs."""
    return {key: values[:epochs] for key, values in history.items()}


def fit_epoch(model: keras.Model, indices: np.ndarray, labels: np.ndarray, batch_size: int) -> None:
    """One epoch of fit() on these rows, in this order, fed by models.batches (Keras's own pipeline from arrays
    stalls about 5 s every other epoch when fit() returns: docs/speed.md)."""
    model.fit(**models.batches(indices, labels, batch_size), epochs=1, shuffle=False, verbose=0)


def train_stack(members: dict[str, Variant], shared: TrainParams, seeds: list[int], train: Split, val: Split, *,
                on_epoch: Callable[[int, np.ndarray, np.ndarray], None] | None = None) -> tuple[StackRun, Stack]:
    """Train one replicate per seed of the members' shared trajectory (one member: the variant itself) until every
    member's result is settled for every replicate (trajectories.done); a replicate settled for all of them leaves
    the stack, and the others go on in a smaller one. on_epoch: see fit(). Returns the run and the full stack."""
    from fmnist.core import trajectories

    spec = next(iter(members.values()))
    epochs, validation = trajectories.epochs_needed(members), trajectories.validated(members)
    models.set_seeds(seeds[0])  # every random stream below is seeded explicitly; this is for the rest
    full = build_stack(spec, seeds, train.x)
    compile_stack(full, spec, shared)
    stack, training_now = full, list(range(len(seeds)))  # the replicates still training: indices into seeds
    shufflers = [np.random.default_rng(seed) for seed in seeds]
    batch_size = spec.batch_size or shared.batch_size
    run = StackRun(seeds, [{"val_loss": [], "val_accuracy": []} if validation else {} for _ in seeds],
                   [[] for _ in seeds], 0.0)

    started = time.perf_counter()
    for epoch in range(1, epochs + 1):
        interrupts.check()  # a stop whose KeyboardInterrupt was lost must not train on
        order = np.stack([shufflers[i].permutation(len(train.y)) for i in training_now], axis=1)
        fit_epoch(stack.training, order.astype(np.int32), train.y[order], batch_size)
        weights = [np.array(w) for w in stack.training.trainable_weights]
        for position, i in enumerate(training_now):
            run.snapshots[i].append([w[position] for w in weights])
        if validation:
            val_loss, val_accuracy = scores(stack.scoring.predict(**models.batches(val.x), verbose=0), val.y)
            for position, i in enumerate(training_now):
                run.histories[i]["val_loss"].append(val_loss[position])
                run.histories[i]["val_accuracy"].append(val_accuracy[position])
            if on_epoch is not None:
                on_epoch(epoch, val_loss, val_accuracy)
        going_on = [position for position, i in enumerate(training_now)
                    if not all(trajectories.done(member, run.histories[i], epoch) for member in members.values())]
        if not going_on:
            break  # every replicate settled for every member: later epochs could change nothing
        if len(going_on) == 1 < len(training_now):  # a stack of one rounds otherwise (XLA drops the batch axis):
            going_on = sorted({going_on[0], next(p for p in range(len(training_now)) if p != going_on[0])})
        if on_epoch is None and len(going_on) < len(training_now):
            stack = keeping(stack, spec, shared, train.x, going_on)
            training_now = [training_now[position] for position in going_on]
    run.train_seconds = round(time.perf_counter() - started, 3)
    return run, full


def score(spec: Variant, run: StackRun, full: Stack, val: Split, test: Split | None) -> dict:
    """Each replicate's result for `spec` from a run of its trajectory: the epoch its callbacks keep (by Keras's
    rules, on its own history up to spec's epochs), put back into its slice of `full` (a stack of all the run's
    seeds) and scored on validation and test."""
    if spec.validation:
        replays = [replay_callbacks(spec, until(history, spec.epochs)) for history in run.histories]
    else:
        replays = [Replay(spec.epochs, None, None, spec.epochs) for _ in run.seeds]
    kept = [np.stack([run.snapshots[i][r.kept_epoch - 1][w] for i, r in enumerate(replays)])
            for w in range(len(full.training.trainable_weights))]
    for variable, value in zip(full.training.trainable_weights, kept):
        variable.assign(value)
    val_loss, val_accuracy = scores(full.scoring.predict(**models.batches(val.x), verbose=0), val.y)
    if test is not None:
        test_loss, test_accuracy = scores(full.scoring.predict(**models.batches(test.x), verbose=0), test.y)
    else:
        test_loss = test_accuracy = [None] * len(run.seeds)
    per_seed = [{
        "seed": seed,
        "val_accuracy": float(val_accuracy[i]),
        "val_loss": float(val_loss[i]),
        "test_accuracy": None if test_accuracy[i] is None else float(test_accuracy[i]),
        "test_loss": None if test_loss[i] is None else float(test_loss[i]),
        "epochs_run": replays[i].epochs_run,
        "stopped_epoch": replays[i].stopped_epoch,
        "best_epoch": replays[i].best_epoch,
    } for i, seed in enumerate(run.seeds)]
    return {"per_seed": per_seed, "train_seconds": run.train_seconds}


def fit(spec: Variant, shared: TrainParams, seeds: list[int], *, train: Split, val: Split, test: Split | None,
        on_epoch: Callable[[int, np.ndarray, np.ndarray], None] | None = None) -> dict:
    """Train one replicate per seed together; return each one's scores and epochs (see module docstring).
    Deterministic: same seeds, data, machine and backend give the same results. A replicate whose EarlyStopping
    has fired leaves the stack (the others go on in a smaller one): later epochs could not change its result.
    on_epoch(epoch, val_loss, val_accuracy), one value per replicate, follows every validated epoch and may
    raise to stop training (a pruned tuning trial); with it every replicate trains until the last one stops,
    so that each epoch reports all of them, as the committed tuning study's trials did. Without a test split
    (tuning: never test) the test scores are None."""
    run, full = train_stack({"": spec}, shared, seeds, train, val, on_epoch=on_epoch)
    return score(spec, run, full, val, test)


def fit_shared(name: str, members: dict[str, Variant], shared: TrainParams, seeds: list[int], *, train: Split,
               val: Split, test: Split) -> dict:
    """fit() for `name`, a member of a family that shares one trajectory: trained once for the family (or found
    kept from an earlier stage, fmnist.core.trajectories), then scored for `name`. The same result as fit()."""
    from fmnist.core import trajectories

    key = trajectories.fingerprint(members, shared, seeds, "stack", [train.x, train.y, val.x, val.y])
    memo = trajectories.recall(key)
    run = StackRun.recalled(*memo) if memo else None
    if run is None or not all(trajectories.done(members[name], history, run.epochs(i))
                              for i, history in enumerate(run.histories)):
        run, full = train_stack(members, shared, seeds, train, val)
        trajectories.keep(key, *run.record())
    else:
        models.set_seeds(seeds[0])
        full = build_stack(members[name], seeds, train.x)
    return score(members[name], run, full, val, test)


def main() -> None:
    """`python -m fmnist.core.other_seeds <variant> [--alone]`: train the variant's other seeds (with the variants
    that share its trajectory, unless --alone), print the result as JSON."""
    shared, variants = params.load(TrainParams), params.load(VariantsParams).root
    name, alone = sys.argv[1], "--alone" in sys.argv[2:]
    members = {name: variants[name]} if alone else family(name, variants, shared)
    splits = {split: dataset.load_prepared(split) for split in dataset.SPLITS}
    others = seeds_of(variants[name], shared)[1:]
    result = (fit_shared(name, members, shared, others, **splits) if len(members) > 1
              else fit(variants[name], shared, others, **splits))
    print(json.dumps(result))

