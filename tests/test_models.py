"""Model factory, callbacks and save/restore, in-process on the TensorFlow backend with tiny data."""
import re

import numpy as np
import pytest

from fmnist.core import backend

backend.use("tensorflow")

import keras  # noqa: E402  (the backend must be chosen first)

from fmnist.core import evaluation, models, training  # noqa: E402
from fmnist.core.dataset import Split  # noqa: E402
from fmnist.plumbing import params, paths  # noqa: E402
from fmnist.schema.training import TrainParams, VariantsParams
from tests.conftest import REPO_ROOT, make_fake_images  # noqa: E402
from tests.test_params import committed_params  # noqa: E402

COMMITTED = params.parse(VariantsParams, committed_params()["variants"]).root
SHARED = params.parse(TrainParams, committed_params()["train"])
ONE_SEED = SHARED.model_copy(update={"replicates": 1})  # the chapter seed only: these tests are about its model


def variant(**spec):
    return params.parse(VariantsParams, {"v": {"epochs": 1, **spec}}).root["v"]


def tiny_split(n, seed):
    images, labels = make_fake_images(n, np.random.default_rng(seed))
    return Split((images / 255).astype(np.float32), labels)


@pytest.fixture(scope="module")
def tiny():
    return tiny_split(256, 1), tiny_split(64, 2)


@pytest.mark.parametrize("name, count", [("softmax", 7850), ("sigmoid100", 79510), ("relu100", 79510),
                                         ("dropout30", 79510), ("checkpoint", 79510)])
def test_parameter_counts_match_the_chapter(name, count):
    assert models.build(name, COMMITTED[name]).count_params() == count


def test_layers_follow_the_spec():
    model = models.build("dropout30", COMMITTED["dropout30"])
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["Flatten", "Dense", "Dropout", "Dense"]
    assert model.layers[1].activation.__name__ == "relu" and model.layers[2].rate == 0.3
    assert model.layers[-1].units == 10 and model.layers[-1].activation.__name__ == "softmax"
    assert model.input_shape == (None, 28, 28)
    sigmoid = models.build("sigmoid100", COMMITTED["sigmoid100"])
    assert sigmoid.layers[1].activation.__name__ == "sigmoid"


def test_the_chapter_pages_model_add_code_builds_the_model_models_build_makes():
    """docs/chapter7.md shows sigmoid100 written the book's way (model.add, one layer a call): run that block, and it
    must be models.build's model: the same layers with the same settings and, from the same seed, the same
    initial weights."""
    page = (REPO_ROOT / "docs/chapter7.md").read_text(encoding="utf-8")
    block = next(b for b in re.findall(r"```python\n(.*?)```", page, re.S) if 'Sequential(name="sigmoid100")' in b)
    assert "model.add(" in block
    namespace = {"keras": keras}
    keras.utils.set_random_seed(42)
    exec(block, namespace)
    keras.utils.set_random_seed(42)
    ours = models.build("sigmoid100", COMMITTED["sigmoid100"])

    def settings(model):
        return [{key: value for key, value in layer.get_config().items() if key != "name"} for layer in model.layers]

    assert settings(namespace["model"]) == settings(ours)
    assert namespace["model"].input_shape == ours.input_shape
    for theirs, mine in zip(namespace["model"].get_weights(), ours.get_weights(), strict=True):
        np.testing.assert_array_equal(theirs, mine)


@pytest.mark.parametrize("name, kind, expected", [
    ("relu100_sgd", keras.optimizers.SGD, {"learning_rate": 0.01, "momentum": 0.0, "nesterov": False}),
    ("relu100_sgd_lr01", keras.optimizers.SGD, {"learning_rate": 0.1, "momentum": 0.0, "nesterov": False}),
    ("relu100_nesterov", keras.optimizers.SGD, {"learning_rate": 0.01, "momentum": 0.9, "nesterov": True}),
    ("relu100_adagrad", keras.optimizers.Adagrad, {"learning_rate": 0.001}),
    ("relu100", keras.optimizers.RMSprop, {"learning_rate": 0.001}),
    ("relu100_adam", keras.optimizers.Adam, {"learning_rate": 0.001}),
])
def test_optimizer_options_reach_the_optimizer(name, kind, expected):
    optimizer = models.make_optimizer(COMMITTED[name])
    assert type(optimizer) is kind
    config = optimizer.get_config()
    for option, value in expected.items():
        assert config[option] == pytest.approx(value), option


def test_steps_per_execution_computes_what_plain_fit_computes(tiny):
    """The speed setting must not change the result: same batches, same order, same weights."""
    train, _ = tiny
    spec = variant(hidden=[{"units": 16, "activation": "relu"}], epochs=2)
    weights = []
    for steps in (1, 5):
        shared = SHARED.model_copy(update={"steps_per_execution": steps})
        models.seed_everything(shared.seed)
        model = models.compile_model(models.build("v", spec), spec, shared)
        model.fit(train.x, train.y, epochs=2, batch_size=32, verbose=0)
        weights.append(model.get_weights())
    for fast, plain in zip(*weights):
        np.testing.assert_array_equal(fast, plain)


def test_scoring_through_its_own_pipeline_gives_what_keras_gives_on_the_arrays(tiny):
    """models.batches feeds TensorFlow a tf.data pipeline of its own (cheaper than Keras's from arrays): predict
    and evaluate give the same numbers, to the bit, as on the arrays with the same batch size, on a set whose last
    batch is short."""
    train, _ = tiny
    scored = tiny_split(2 * models.SCORING_BATCH + 345, 3)
    spec = variant(hidden=[{"units": 16, "activation": "relu", "dropout": 0.3}], epochs=1)
    models.seed_everything(SHARED.seed)
    model = models.compile_model(models.build("v", spec), spec, SHARED)
    model.fit(train.x, train.y, epochs=1, batch_size=32, verbose=0)
    np.testing.assert_array_equal(model.predict(**models.batches(scored.x), verbose=0),
                                  model.predict(scored.x, batch_size=models.SCORING_BATCH, verbose=0))
    assert model.evaluate(**models.batches(scored.x, scored.y), verbose=0) == model.evaluate(
        scored.x, scored.y, batch_size=models.SCORING_BATCH, verbose=0)


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_early_stopping_stops_and_restores_best_weights(in_tmp, tiny):
    train, _ = tiny
    # Validation labels that the images cannot predict: val_loss bottoms out early, then climbs.
    noise = Split(train.x[:64], np.random.default_rng(3).integers(0, 10, 64).astype(np.uint8))
    spec = variant(hidden=[{"units": 64, "activation": "relu"}], optimizer={"name": "adam", "learning_rate": 0.01},
                   epochs=40, validation=True,
                   callbacks={"checkpoint": {}, "early_stopping": {"patience": 1, "restore_best_weights": True}})
    summary, _ = training.run("v", spec, ONE_SEED, train=train, val=noise, test=noise)
    history = np.loadtxt(in_tmp / "reports/train/v/plots/metrics/eval/loss.tsv", skiprows=1)[:, 1]
    assert summary["epochs_run"] == len(history) < 40
    assert summary["stopped_epoch"] == summary["epochs_run"]
    assert summary["best_epoch"] == int(np.argmin(history)) + 1 == summary["epochs_run"] - 1  # patience 1
    # restore_best_weights: the saved final model is the best epoch's; the checkpoint is the same epoch.
    for file in ("model.keras", "best.keras"):
        model = keras.models.load_model(in_tmp / "models/v" / file)
        val_loss, _ = model.evaluate(noise.x, noise.y, verbose=0)
        assert val_loss == pytest.approx(history.min(), rel=1e-5), file


def test_checkpoint_keeps_the_best_epoch_not_the_last(in_tmp, tiny):
    train, _ = tiny
    noise = Split(train.x[:64], np.random.default_rng(4).integers(0, 10, 64).astype(np.uint8))
    spec = variant(hidden=[{"units": 64, "activation": "relu"}], optimizer={"name": "adam", "learning_rate": 0.01},
                   epochs=8, validation=True, callbacks={"checkpoint": {"monitor": "val_loss"}})
    summary, _ = training.run("v", spec, ONE_SEED, train=train, val=noise, test=noise)
    history = np.loadtxt(in_tmp / "reports/train/v/plots/metrics/eval/loss.tsv", skiprows=1)[:, 1]
    assert summary["epochs_run"] == 8 and summary["stopped_epoch"] is None
    assert summary["best_epoch"] < 8  # the loss on noise labels rises after the first epochs
    best = keras.models.load_model(in_tmp / "models/v/best.keras")
    last = keras.models.load_model(in_tmp / "models/v/model.keras")
    assert best.evaluate(noise.x, noise.y, verbose=0)[0] == pytest.approx(history.min(), rel=1e-5)
    assert last.evaluate(noise.x, noise.y, verbose=0)[0] == pytest.approx(history[-1], rel=1e-5)


def test_weights_and_whole_model_round_trips_agree_exactly(in_tmp, tiny):
    train, val = tiny
    spec = variant(hidden=[{"units": 32, "activation": "relu", "dropout": 0.3}], optimizer={"name": "adam"}, epochs=2)
    training.run("v", spec, ONE_SEED, train=train, val=val, test=val)
    trained_dir = in_tmp / "models/v"
    rebuilt = evaluation.load_weights_into_rebuilt(trained_dir / paths.WEIGHTS_FILE, "v", spec)
    whole = evaluation.load_whole_model(trained_dir / paths.MODEL_FILE, "v")
    np.testing.assert_array_equal(rebuilt.predict(val.x, verbose=0), whole.predict(val.x, verbose=0))
    for a, b in zip(rebuilt.get_weights(), whole.get_weights()):
        np.testing.assert_array_equal(a, b)
    metrics, details, _, _ = evaluation.evaluate("v", spec, trained_dir, val, val)
    assert details["restore"]["agree"] is True
    assert details["restore"]["weights_predict_val_accuracy"] == pytest.approx(metrics["val_accuracy"], abs=1e-6)


def test_interrupted_training_leaves_no_partial_output(in_tmp, tiny, monkeypatch):
    train, val = tiny

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    make_callbacks = models.make_callbacks
    monkeypatch.setattr(models, "make_callbacks", lambda *a: [*make_callbacks(*a), Interrupt()])
    spec = variant(hidden=[{"units": 8, "activation": "relu"}], epochs=5, validation=True, callbacks={"checkpoint": {}})
    with pytest.raises(KeyboardInterrupt):
        training.run("v", spec, ONE_SEED, train=train, val=val, test=val)
    assert list((in_tmp / "models").iterdir()) == []
    assert list((in_tmp / "reports/train").iterdir()) == []


def test_missing_and_corrupt_model_files_name_the_file_and_the_stage(in_tmp, tiny):
    from fmnist.plumbing.errors import StageError

    train, val = tiny
    spec = variant(hidden=[{"units": 8, "activation": "relu"}])
    trained_dir = in_tmp / "models/v"
    with pytest.raises(StageError, match=r"models/v/training.json: not found; run `dvc repro train@v`"):
        evaluation.evaluate("v", spec, trained_dir, val, val)
    training.run("v", spec, ONE_SEED, train=train, val=val, test=val)
    (trained_dir / "model.keras").write_bytes(b"not a zip")
    with pytest.raises(StageError,
                       match=r"models/v/model.keras: not a Keras model file \(.*\); run `dvc repro train@v`"):
        evaluation.evaluate("v", spec, trained_dir, val, val)
    (trained_dir / "model.weights.h5").unlink()
    with pytest.raises(StageError, match=r"models/v/model.weights.h5: not found; run `dvc repro train@v`"):
        evaluation.evaluate("v", spec, trained_dir, val, val)


# Every random change, at rates large enough that a 28x28 batch visibly changes.
AUGMENTATION = {"rotation": 0.05, "translation": 0.1, "zoom": 0.1, "contrast": 0.3, "brightness": 0.2}


def through_augmentation(model, x, training):
    """The batch after the model's layers before Flatten (its random image changes)."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.Flatten):
            break
        x = layer(x, training=training)
    return np.asarray(x)


def test_augmentation_changes_training_batches_only_and_repeats_by_seed(tiny):
    train, _ = tiny
    spec = variant(hidden=[{"units": 8, "activation": "relu"}], augmentation=AUGMENTATION)
    model = models.build("v", spec, seed=42)
    assert [type(layer).__name__ for layer in model.layers] == ["RandomAugmentation", "Flatten", "Dense", "Dense"]
    batch = train.x[:16]
    assert np.array_equal(through_augmentation(model, batch, training=False), batch)  # inference: unchanged
    changed = through_augmentation(model, batch, training=True)
    assert np.abs(changed - batch).mean() > 0.01 and changed.min() >= 0 and changed.max() <= 1
    again = through_augmentation(models.build("v", spec, seed=42), batch, training=True)
    other = through_augmentation(models.build("v", spec, seed=43), batch, training=True)
    assert np.array_equal(changed, again) and not np.allclose(changed, other)
    # No augmentation, no layer.
    assert [type(layer).__name__ for layer in models.build("p", variant()).layers] == ["Flatten", "Dense"]


def test_an_augmented_model_saves_and_reloads_its_random_layer(in_tmp, tiny):
    """The .keras file holds the layer's rates and seed (keras.saving finds the class registered by its module), and
    the reloaded model changes a training batch exactly as the saved one did from the same generator state."""
    train, _ = tiny
    spec = variant(hidden=[{"units": 8, "activation": "relu"}], augmentation=AUGMENTATION)
    model = models.build("v", spec, seed=42)
    model.save("v.keras")
    loaded = keras.models.load_model("v.keras", safe_mode=True)
    assert loaded.layers[0].get_config() == model.layers[0].get_config()
    assert {key: loaded.layers[0].get_config()[key] for key in AUGMENTATION} == AUGMENTATION
    np.testing.assert_array_equal(through_augmentation(loaded, train.x[:8], training=True),
                                  through_augmentation(model, train.x[:8], training=True))


def test_an_augmented_model_predicts_as_the_same_weights_without_augmentation(tiny):
    train, val = tiny
    spec = variant(hidden=[{"units": 8, "activation": "relu"}], augmentation=AUGMENTATION)
    model = models.compile_model(models.build("v", spec, seed=42), spec, ONE_SEED)
    model.fit(train.x, train.y, epochs=1, verbose=0)
    plain = models.build("p", spec.model_copy(update={"augmentation": None}))
    plain.set_weights([np.asarray(w) for w in model.trainable_weights])
    np.testing.assert_array_equal(model.predict(val.x, verbose=0), plain.predict(val.x, verbose=0))
