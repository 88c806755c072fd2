"""train.distribution: data_parallel on JAX (Keras's distribution API), on two virtual CPU devices
(XLA_FLAGS=--xla_force_host_platform_device_count=2), against the same tiny pipeline on one device."""
from __future__ import annotations

import json
import sys

import pytest

from fmnist.core import comparison, spread
from fmnist.core.results import val_accuracy_spread
from fmnist.plumbing import params
from fmnist.plumbing.errors import StageError
from fmnist.schema.training import TrainParams
from tests.conftest import TINY_VARIANTS, copy_pipeline
from tests.helpers import edit_params, run
from tests.test_train_pipeline import ran_stages

TWO_DEVICES = "--xla_force_host_platform_device_count=2"
TWO_DEVICE_TRAIN = {"distribution": "data_parallel", "replicates": 1}  # the copy's train section, set and restored


def read_json(path):
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def parallel(tiny_pipelines, tmp_path_factory):
    """(the one-device JAX pipeline, a copy of it retrained with data_parallel on two devices, that copy's
    `dvc repro train`). The copy trains seed 42 alone (train.replicates 1): it is the model data_parallel
    trains and saves, and every assertion reads; the other seeds are trained unsharded in any case
    (fmnist.core.replicates), so a child process of them per variant would prove nothing here."""
    single = tiny_pipelines("jax")
    copy = copy_pipeline(single, tmp_path_factory.mktemp("parallel") / "repo")
    edit_params(copy.repo, lambda document: document["train"].update(TWO_DEVICE_TRAIN))
    copy = copy._replace(env={**copy.env, "XLA_FLAGS": TWO_DEVICES})
    return single, copy, run(["dvc", "repro", "train"], copy.repo, copy.env)  # every train@: what the tests read


def test_data_parallel_is_refused_on_tensorflow_with_what_to_do():
    with pytest.raises(StageError, match="'train.distribution' = 'data_parallel' is not allowed: data_parallel needs "
                                         r"train.backend: jax .*tf.distribute is not supported"):
        params.parse(TrainParams, {"backend": "tensorflow", "distribution": "data_parallel"})
    assert params.parse(TrainParams, {}).distribution == "none"


@pytest.mark.longer(2, why="its set-up trains every variant again on two devices")
def test_every_variant_trains_on_both_devices_making_the_one_device_updates_up_to_rounding(parallel):
    single, copy, result = parallel
    assert {f"train@{name}" for name in TINY_VARIANTS} <= ran_stages(result.stdout)
    for name in TINY_VARIANTS:
        assert read_json(copy.repo / f"models/{name}/training.json")["devices"] == 2
        assert "devices" not in read_json(single.repo / f"models/{name}/training.json")
        # Each device takes half of every batch and the gradients are averaged: the update is the one-device
        # update on the whole batch, so seed 42 ends where the one-device run did, up to float rounding.
        two, one = (read_json(repo / f"reports/metrics/{name}.json") for repo in (copy.repo, single.repo))
        assert two["val_loss"] == pytest.approx(one["val_loss"], rel=1e-3), name
        assert abs(two["val_accuracy"] - one["val_accuracy"]) <= 0.02, name


def test_the_saved_model_reloads_and_scores_the_same_on_one_device(parallel):
    _, copy, _ = parallel
    script = (
        "import json, os, sys; os.environ['KERAS_BACKEND'] = 'jax'; os.environ.pop('XLA_FLAGS', None)\n"
        "import jax, keras\n"
        "from fmnist.core import dataset\n"
        "val = dataset.load_prepared('val')\n"
        "files = dict(arg.split('=') for arg in sys.argv[1:])\n"
        "scores = {name: keras.saving.load_model(f'models/{name}/{file}').evaluate(val.x, val.y, verbose=0)[1]\n"
        "          for name, file in files.items()}\n"
        "print(json.dumps({'devices': len(jax.devices()), 'scores': scores}))\n")
    env = {key: value for key, value in copy.env.items() if key != "XLA_FLAGS"}
    # The stage scores the file it keeps: the checkpoint where there is one (tiny_stopping), else model.keras.
    evaluated = {name: read_json(copy.repo / f"reports/evaluation/{name}.json")["evaluated_file"]
                 for name in TINY_VARIANTS}
    assert evaluated["tiny_stopping"] == "best.keras" and evaluated["tiny_softmax"] == "model.keras"
    files = [f"{name}={file}" for name, file in evaluated.items()]
    out = json.loads(run([sys.executable, "-c", script, *files], copy.repo, env).stdout.splitlines()[-1])
    assert out["devices"] == 1 and set(out["scores"]) == set(TINY_VARIANTS)
    for name, accuracy in out["scores"].items():
        metrics = read_json(copy.repo / f"reports/metrics/{name}.json")
        assert accuracy == pytest.approx(metrics["val_accuracy"], abs=1e-6), name


def test_its_accuracy_is_within_the_seed_noise_of_the_one_device_run(parallel):
    single, copy, _ = parallel
    for name in TINY_VARIANTS:
        one_device = read_json(single.repo / f"reports/metrics/{name}.json")
        two_devices = read_json(copy.repo / f"reports/metrics/{name}.json")
        noise = val_accuracy_spread(one_device)
        verdict = comparison.told_apart([(spread.Spread(two_devices["val_accuracy"], None, 1), noise)],
                                        comparison.Tolerances(3.0, 0.002))[0]
        assert verdict.apart is False, (name, two_devices, one_device, verdict)


def test_a_batch_that_does_not_split_over_the_devices_is_refused(parallel):
    _, copy, _ = parallel
    before = (copy.repo / "reports/metrics/tiny_relu.json").read_bytes()
    edit_params(copy.repo, lambda document: document["variants"]["tiny_relu"].update(batch_size=33))
    try:
        failed = run([sys.executable, "-m", "stages.train", "tiny_relu"], copy.repo, copy.env, check=False)
    finally:
        run(["git", "checkout", "--", "params.yaml"], copy.repo, copy.env)
        edit_params(copy.repo, lambda document: document["train"].update(TWO_DEVICE_TRAIN))
    assert failed.returncode == 1
    assert ("error: train.distribution data_parallel: batch size 33 does not split evenly over the 2 devices "
            "(cpu:0, cpu:1)") in failed.stderr
    assert (copy.repo / "reports/metrics/tiny_relu.json").read_bytes() == before  # nothing half-written


def test_the_same_device_count_gives_the_same_results_again(parallel):
    _, copy, _ = parallel
    files = [copy.repo / f"reports/{kind}/tiny_stopping.json" for kind in ("metrics", "evaluation")]
    before = [path.read_bytes() for path in files]
    run([sys.executable, "-m", "stages.train", "tiny_stopping"], copy.repo, copy.env)
    assert read_json(copy.repo / "models/tiny_stopping/training.json")["devices"] == 2
    assert [path.read_bytes() for path in files] == before
