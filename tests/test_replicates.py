"""Seed replicates trained as one stacked model (TensorFlow, in-process, tiny data), and the spread maths."""

import numpy as np
import pytest

from fmnist.core import backend

backend.use("tensorflow")

import keras  # noqa: E402  (the backend must be chosen first)

from fmnist.core import evaluation, models, replicates, spread, training  # noqa: E402
from tests.test_models import ONE_SEED, SHARED, tiny, tiny_split, variant  # noqa: E402,F401

# --- callbacks replayed per replicate must decide what Keras's own callbacks decide ---------------------

def keras_decisions(spec, series: list[float]) -> tuple[int, int | None, int]:
    """Run Keras's real EarlyStopping and ModelCheckpoint logic over a monitored series:
    (epochs run, 1-based stopped epoch or None, 1-based epoch whose weights are kept)."""
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(loss="mse")
    epoch_marker = model.layers[0].kernel
    stopping = spec.callbacks.early_stopping
    callbacks = models.make_callbacks(spec, "unused.keras")
    callbacks = [c for c in callbacks if isinstance(c, keras.callbacks.EarlyStopping)]
    for callback in callbacks:
        callback.set_model(model)
        callback.on_train_begin()
    model.stop_training = False
    epochs = 0
    for epoch, value in enumerate(series):
        epoch_marker.assign(np.full((1, 1), epoch + 1.0))  # the weights say which epoch they are from
        for callback in callbacks:
            callback.on_epoch_end(epoch, {stopping.monitor: value})
        epochs = epoch + 1
        if model.stop_training:
            break
    for callback in callbacks:
        callback.on_train_end()
    stopped = callbacks[0].stopped_epoch + 1 if callbacks and callbacks[0].stopped_epoch else None
    return epochs, stopped, int(round(float(epoch_marker.numpy()[0, 0])))


@pytest.mark.parametrize("patience", [0, 1, 2, 3])
@pytest.mark.parametrize("restore", [True, False])
def test_early_stopping_replay_matches_keras(patience, restore):
    spec = variant(epochs=12, validation=True, callbacks={"early_stopping": {
        "monitor": "val_loss", "patience": patience, "restore_best_weights": restore}})
    rng = np.random.default_rng(patience)
    for trial in range(30):
        # Rounded to two decimals: ties happen, and a tie is not an improvement.
        series = [float(v) for v in np.round(1.0 - 0.05 * np.arange(12) + rng.normal(0, 0.08, 12), 2)]
        epochs, stopped, kept = keras_decisions(spec, series)
        replay = replicates.replay_callbacks(spec, {"val_loss": series, "val_accuracy": [0.0] * 12})
        assert (replay.epochs_run, replay.stopped_epoch, replay.kept_epoch) == (epochs, stopped, kept), series


def test_checkpoint_replay_keeps_the_first_best_epoch():
    spec = variant(epochs=6, validation=True, callbacks={"checkpoint": {"monitor": "val_accuracy"}})
    replay = replicates.replay_callbacks(spec, {"val_loss": [1.0] * 6, "val_accuracy": [0.5, 0.7, 0.6, 0.7, 0.65, 0.6]})
    assert (replay.epochs_run, replay.stopped_epoch, replay.best_epoch, replay.kept_epoch) == (6, None, 2, 2)
    last = variant(epochs=3, validation=True)  # no callback: the last epoch is the result, the best is reported
    replay = replicates.replay_callbacks(last, {"val_loss": [0.9, 0.5, 0.7], "val_accuracy": [0.0] * 3})
    assert (replay.best_epoch, replay.kept_epoch) == (2, 3)


# --- the stacked model ---------------------------------------------------------------------------------

@pytest.mark.parametrize("optimizer", [{"name": "sgd", "momentum": 0.9}, {"name": "adam"}, {"name": "rmsprop"}])
def test_a_stacked_replicate_trains_exactly_like_a_lone_model(tiny, optimizer):
    """Same initial weights, same batches: replicate k of the stack and a plain Keras model end with the same
    weights (up to float rounding). The summed loss gives each replicate its own, unscaled gradient."""
    train, _ = tiny
    spec = variant(hidden=[{"units": 16, "activation": "relu"}], optimizer=optimizer, epochs=2)
    seeds = [7, 8, 9]
    models.seed_everything(0)
    stacked = replicates.build_stack(spec, seeds, train.x).training
    stacked.compile(optimizer=models.make_optimizer(spec), loss=replicates.summed_crossentropy)
    initial = [w.numpy() for w in stacked.trainable_weights]
    k = 1
    lone = models.build("lone", spec)
    lone.set_weights([w[k].reshape(lone_w.shape) for w, lone_w in zip(initial, lone.get_weights())])
    lone.compile(optimizer=models.make_optimizer(spec), loss="sparse_categorical_crossentropy")
    rngs = [np.random.default_rng(s) for s in seeds]
    for _ in range(2):
        order = np.stack([rng.permutation(len(train.y)) for rng in rngs], axis=1)
        replicates.fit_epoch(stacked, order.astype(np.int32), train.y[order], 32)  # as train_stack() does
        lone.fit(train.x[order[:, k]], train.y[order[:, k]], batch_size=32, shuffle=False, verbose=0)
    for stacked_w, lone_w in zip(stacked.trainable_weights, lone.get_weights()):
        np.testing.assert_allclose(stacked_w.numpy()[k].reshape(lone_w.shape), lone_w, rtol=2e-4, atol=2e-5)
    # And the replicates really are different models.
    first = stacked.trainable_weights[0].numpy()
    assert not np.allclose(first[0], first[1]) and not np.allclose(first[1], first[2])


def test_an_epoch_of_the_stack_is_keras_array_fit_bit_for_bit(tiny):
    """fit_epoch() feeds TensorFlow a pipeline of its own (Keras's stalls when it is destroyed): the same batches
    in the same order, so the same weights as fit() on the arrays, to the bit."""
    train, _ = tiny
    spec = variant(hidden=[{"units": 16, "activation": "relu"}], optimizer={"name": "adam"}, epochs=2)
    stacks = []
    for _ in range(2):
        models.seed_everything(0)
        stacks.append(replicates.build_stack(spec, [7, 8], train.x).training)
        stacks[-1].compile(optimizer=models.make_optimizer(spec), loss=replicates.summed_crossentropy)
    rngs = [np.random.default_rng(s) for s in (7, 8)]
    for _ in range(2):
        order = np.stack([rng.permutation(len(train.y)) for rng in rngs], axis=1).astype(np.int32)
        stacks[0].fit(order, train.y[order], batch_size=16, shuffle=False, verbose=0)
        replicates.fit_epoch(stacks[1], order, train.y[order], 16)
    for by_arrays, by_epoch in zip(stacks[0].trainable_weights, stacks[1].trainable_weights):
        np.testing.assert_array_equal(by_arrays.numpy(), by_epoch.numpy())


def test_replicates_differ_by_seed_and_repeat_exactly(tiny):
    train, val = tiny
    test = tiny_split(64, 5)
    spec = variant(hidden=[{"units": 16, "activation": "relu", "dropout": 0.3}], optimizer={"name": "adam"},
                   epochs=4, validation=True, callbacks={"checkpoint": {}, "early_stopping": {"patience": 1}})
    first = replicates.fit(spec, SHARED, [43, 44, 45], train=train, val=val, test=test)
    again = replicates.fit(spec, SHARED, [43, 44, 45], train=train, val=val, test=test)
    assert first["per_seed"] == again["per_seed"]  # same seeds, same machine, same backend: identical
    losses = [entry["val_loss"] for entry in first["per_seed"]]
    assert len(set(losses)) == 3  # every seed its own weights, batches and dropout masks
    for entry, seed in zip(first["per_seed"], [43, 44, 45]):
        assert entry["seed"] == seed and 1 <= entry["best_epoch"] <= entry["epochs_run"] <= 4
        # Accuracies are shares of the images scored, and each seed learns the easy generated classes.
        for key, split in (("val_accuracy", val), ("test_accuracy", test)):
            correct = entry[key] * len(split.y)
            assert correct == pytest.approx(round(correct), abs=1e-4) and entry[key] > 0.3, (seed, key, entry[key])
    other = replicates.fit(spec, SHARED, [50, 44, 45], train=train, val=val, test=test)
    assert other["per_seed"][0]["val_loss"] != first["per_seed"][0]["val_loss"]


# A learning rate this high makes the validation loss jump about, so the seeds stop at different epochs.
@pytest.mark.parametrize("augmentation,learning_rate", [(None, 0.1), ("augmented", 0.05)])
def test_a_replicate_that_stops_leaves_the_stack_and_the_others_go_on_exactly(tiny, monkeypatch, augmentation,
                                                                              learning_rate):
    """A replicate whose EarlyStopping fired leaves the stack; the others go on in a smaller one with their weights,
    optimizer state and random generators (dropout masks, augmentation draws). Every result is what training all
    of them until the last one stops gives (on_epoch set: nobody leaves), and the stack did shrink."""
    from tests.test_models import AUGMENTATION

    models.end_op_determinism()  # as in the stage's child process, whichever test ran before in this one (XLA)
    train, val = tiny
    test = tiny_split(64, 5)
    spec = variant(hidden=[{"units": 16, "activation": "relu", "dropout": 0.3}],
                   optimizer={"name": "adam", "learning_rate": learning_rate}, epochs=8, validation=True,
                   callbacks={"early_stopping": {"patience": 1}},
                   augmentation=AUGMENTATION if augmentation else None)
    shrunk = []
    keeping = replicates.keeping
    monkeypatch.setattr(replicates, "keeping", lambda stack, *rest: shrunk.append(rest[-1]) or keeping(stack, *rest))
    seeds = [43, 44, 45, 46]
    dropped = replicates.fit(spec, SHARED, seeds, train=train, val=val, test=test)
    assert shrunk and all(len(positions) < len(seeds) for positions in shrunk)
    every_epoch = replicates.fit(spec, SHARED, seeds, train=train, val=val, test=test, on_epoch=lambda *scores: None)
    assert len(shrunk) == len(set(map(tuple, shrunk)))  # no shrinking on the second run
    assert dropped["per_seed"] == every_epoch["per_seed"]
    assert len({entry["epochs_run"] for entry in dropped["per_seed"]}) > 1  # they did stop at different epochs


def test_replicate_scores_are_keras_scores_of_the_kept_weights(tiny):
    """The replicate's reported validation loss and accuracy are what Keras's evaluate gives for a lone model
    holding that replicate's weights."""
    train, val = tiny
    spec = variant(hidden=[{"units": 8, "activation": "sigmoid"}], epochs=1)
    models.seed_everything(0)
    stack = replicates.build_stack(spec, [1, 2], train.x)
    stacked, scoring = stack.training, stack.scoring
    probabilities = scoring.predict(val.x, verbose=0)
    loss, accuracy = replicates.scores(probabilities, val.y)
    for k in range(2):
        lone = models.build("lone", spec)
        lone.set_weights([w.numpy()[k].reshape(like.shape)
                          for w, like in zip(stacked.trainable_weights, lone.get_weights())])
        lone.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        keras_loss, keras_accuracy = lone.evaluate(val.x, val.y, verbose=0)
        assert loss[k] == pytest.approx(keras_loss, rel=1e-5) and accuracy[k] == pytest.approx(keras_accuracy)


def test_evaluate_reports_the_mean_and_spread_of_all_seeds(tmp_path, monkeypatch, tiny):
    monkeypatch.chdir(tmp_path)
    train, val = tiny
    spec = variant(hidden=[{"units": 8, "activation": "relu"}], epochs=1)
    shared = SHARED.model_copy(update={"replicates": 3})
    summary, replicated = training.run("v", spec, shared, train=train, val=val, test=val)
    metrics, details, timing, _ = evaluation.evaluate("v", spec, tmp_path / "models/v", val, val)
    per_seed = details["spread"]["per_seed"]
    assert [entry["seed"] for entry in per_seed] == [42, 43, 44] == details["spread"]["seeds"]
    assert [entry["trained"] for entry in per_seed] == ["alone", "stacked", "stacked"]
    assert per_seed[0]["val_accuracy"] == metrics["val_accuracy"]  # the chapter seed is the saved model
    values = [entry["val_accuracy"] for entry in per_seed]
    assert metrics["seeds"] == 3
    assert metrics["val_accuracy_mean"] == pytest.approx(np.mean(values))
    assert metrics["val_accuracy_std"] == pytest.approx(np.std(values, ddof=1))
    spread = details["spread"]["val_accuracy"]
    assert spread["min"] == min(values) and spread["max"] == max(values)
    assert timing["replicates_train_seconds"] == replicated["train_seconds"] > 0
    assert "parameters" not in metrics and details["parameters"] == 784 * 8 + 8 + 8 * 10 + 10
    # One seed: the mean is that seed's value, and there is no spread (null, never 0).
    training.run("v", spec, ONE_SEED, train=train, val=val, test=val)
    metrics, details, _, _ = evaluation.evaluate("v", spec, tmp_path / "models/v", val, val)
    assert metrics["seeds"] == 1 and metrics["val_accuracy_std"] is None
    assert metrics["val_accuracy_mean"] == metrics["val_accuracy"]


# --- the spread maths ----------------------------------------------------------------------------------

def test_summary_statistics():
    stats = spread.summarize([0.85, 0.87, 0.86])
    assert stats["mean"] == pytest.approx(0.86) and stats["std"] == pytest.approx(0.01)
    assert (stats["min"], stats["max"]) == (0.85, 0.87)
    assert spread.summarize([0.5])["std"] is None


# --- the child process the train stage runs the other seeds in -------------------------------------------

def test_a_child_error_comes_back_as_one_stage_error(monkeypatch):
    from fmnist.plumbing.errors import StageError
    from fmnist.plumbing.processes import Child
    from tests.conftest import REPO_ROOT

    monkeypatch.chdir(REPO_ROOT)
    child = Child("training the other seeds of nosuch", "stages.train", "nosuch")
    with pytest.raises(StageError, match=r"^training the other seeds of nosuch failed: variant 'nosuch' is not "
                                         r"declared in params.yaml \(declared: softmax, "):
        child.result()


def test_a_crashed_child_shows_what_it_said(monkeypatch, capsys):
    from fmnist.plumbing.errors import StageError
    from fmnist.plumbing.processes import Child

    child = Child("the helper", "json.tool", "/no/such/file.json")
    with pytest.raises(StageError, match=r"^the helper failed: exit status [1-9]"):
        child.result()
    assert "/no/such/file.json" in capsys.readouterr().err  # its own words, not swallowed


def test_stopping_a_child_ends_it():
    from fmnist.plumbing.processes import Child

    child = Child("a sleeper", "timeit", "-n", "1", "import time; time.sleep(60)")
    child.stop()
    assert child.process.returncode is not None and child.process.returncode < 0  # killed, not finished


def test_each_replicate_is_augmented_by_its_own_seeds_and_only_in_training(tiny):
    """Replicate k's batch is changed as the random layer a lone model of seed k builds (models.augmentation_layer)
    changes it, so its changes do not depend on which other seeds share the stack; scoring sees the images
    unchanged."""
    from fmnist.schema.training import Augmentation
    from tests.test_models import AUGMENTATION

    train, _ = tiny
    augmentation = Augmentation(**AUGMENTATION)
    batch = train.x[:16].reshape(16, -1)
    stacked = np.stack([batch, batch])  # the same images for both replicates
    changed = np.asarray(replicates.StackedAugmentation(augmentation, [7, 8])(stacked, training=True))
    for k, seed in enumerate([7, 8]):
        images = models.augmentation_layer(augmentation, seed)(batch.reshape(16, 28, 28), training=True)
        np.testing.assert_array_equal(changed[k], np.asarray(images).reshape(16, -1))
    assert not np.allclose(changed[0], changed[1])
    np.testing.assert_array_equal(replicates.StackedAugmentation(augmentation, [7, 8])(stacked), stacked)


def test_a_lone_model_in_fit_changes_images_as_its_replicate_in_the_compiled_stack(tiny):
    """Where each trains: seed 42's layer in Keras's fit, a TensorFlow graph without XLA on a CPU, and its replicate
    inside the stack's XLA step, among the other replicates' images. With the same draws, the images are the same
    to the bit: the transform is compiled in both (fmnist.core.augmentation.compiled)."""
    import tensorflow as tf

    from fmnist.core import augmentation as image_changes
    from tests.test_models import AUGMENTATION

    train, _ = tiny
    batch = train.x[:64].reshape(64, -1)
    uniforms = np.random.default_rng(0).random((128, image_changes.DRAWS)).astype(np.float32)
    as_fit = tf.function(lambda x, u: image_changes.apply(x, u, **AUGMENTATION))(batch, uniforms[:64])
    as_stack = tf.function(lambda x, u: image_changes.apply(x, u, **AUGMENTATION), jit_compile=True)(
        np.concatenate([batch, batch[::-1]]), uniforms)
    np.testing.assert_array_equal(np.asarray(as_stack)[:64], np.asarray(as_fit))


def test_augmented_replicates_repeat_exactly_and_learn(tiny):
    from tests.test_models import AUGMENTATION

    train, val = tiny
    spec = variant(hidden=[{"units": 16, "activation": "relu"}], optimizer={"name": "adam"}, epochs=3,
                   validation=True, augmentation=AUGMENTATION)
    first = replicates.fit(spec, SHARED, [43, 44], train=train, val=val, test=None)
    assert first["per_seed"] == replicates.fit(spec, SHARED, [43, 44], train=train, val=val, test=None)["per_seed"]
    plain = replicates.fit(spec.model_copy(update={"augmentation": None}), SHARED, [43, 44], train=train, val=val,
                           test=None)
    assert [e["val_loss"] for e in first["per_seed"]] != [e["val_loss"] for e in plain["per_seed"]]
    assert all(entry["val_accuracy"] > 0.3 for entry in first["per_seed"])  # the generated classes are easy
