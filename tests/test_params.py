import re

import pytest
import yaml

from fmnist.plumbing import params
from fmnist.plumbing.params import ParamsError
from fmnist.schema.baseline import BaselineParams
from fmnist.schema.data import DownloadParams, PrepareParams
from fmnist.schema.sections import SECTIONS
from fmnist.schema.training import TrainParams, VariantsParams
from tests.conftest import REPO_ROOT


def committed_params():
    return yaml.safe_load((REPO_ROOT / "params.yaml").read_text())


def test_committed_params_are_valid():
    document = committed_params()
    for section, model in SECTIONS.items():
        params.parse(model, document[section])


def with_change(section, key_path, value):
    """The committed section with one key (a name, or a tuple of names for nested keys) changed."""
    document = committed_params()[section]
    node = document
    *parents, last = (key_path,) if isinstance(key_path, str) else key_path
    for key in parents:
        node = node[key]
    node[last] = value
    return document


@pytest.mark.parametrize(
    "section, key, value, message",
    [
        ("prepare", "test_size", 1.5, "'prepare.test_size' = 1.5 is not allowed: Input should be less than 1"),
        ("prepare", "test_size", 0, "'prepare.test_size' = 0 is not allowed: Input should be greater than 0"),
        ("prepare", "test_size", "0.2", "'prepare.test_size' = '0.2' is not allowed: Input should be a valid number"),
        ("prepare", "random_state", -1,
         "'prepare.random_state' = -1 is not allowed: Input should be greater than or equal to 0"),
        ("baseline", "n_jobs", 0,
         "'baseline.n_jobs' = 0 is not allowed: must be -1 (all cores) or a positive number of processes"),
        ("baseline", "n_jobs", -2, "'baseline.n_jobs' = -2 is not allowed: must be -1"),
        ("baseline", "cv", 1, "'baseline.cv' = 1 is not allowed: Input should be greater than or equal to 2"),
        ("baseline", "max_iter", True, "'baseline.max_iter' = True is not allowed: Input should be a valid integer"),
        ("baseline", "loss", "log",
         "'baseline.loss' = 'log' is not allowed: Input should be 'log_loss', 'hinge' or 'modified_huber'"),
        ("train", "replicates", 0, "'train.replicates' = 0 is not allowed: Input should be greater than or equal to 1"),
        ("train", "replicates", 2.5, "'train.replicates' = 2.5 is not allowed: Input should be a valid integer"),
        ("gates", "k", 0, "'gates.k' = 0 is not allowed: Input should be greater than 0"),
        ("gates", "fixed_tolerance", -0.1, "'gates.fixed_tolerance' = -0.1 is not allowed"),
        ("download", "retries", -1, "'download.retries' = -1 is not allowed"),
        ("select", "metric", "test_accuracy",
         "'select.metric' = 'test_accuracy' is not allowed: Input should be 'val_accuracy_mean', 'val_accuracy' or "
         "'val_loss'"),
        ("select", "candidates", ["Relu"],
         "'select.candidates.0' = 'Relu' is not allowed: String should match pattern"),
        ("download", ("sha256", "t10k-images-idx3-ubyte.gz"), "abc",
         "'download.sha256.t10k-images-idx3-ubyte.gz' = 'abc' is not allowed: String should match pattern"),
        ("prepare", "tset_size", 0.2, "unknown key 'prepare.tset_size' (allowed keys: test_size, random_state)"),
        ("download", ("sha256", "extra.gz"), "0" * 64,
         "unknown key 'download.sha256.extra.gz' (allowed keys: train-images-idx3-ubyte.gz, "
         "train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz)"),
    ],
)
def test_rejected_values_name_key_value_and_rule(section, key, value, message):
    with pytest.raises(ParamsError) as error:
        params.parse(SECTIONS[section], with_change(section, key, value))
    assert str(error.value).startswith("params.yaml: ")
    assert message in str(error.value)


def test_missing_key_and_missing_section():
    document = committed_params()["download"]
    del document["sha256"]["train-labels-idx1-ubyte.gz"]
    with pytest.raises(ParamsError, match="missing key 'download.sha256.train-labels-idx1-ubyte.gz'"):
        params.parse(DownloadParams, document)
    with pytest.raises(ParamsError, match="section 'prepare' is missing"):
        params.parse(PrepareParams, None)


def test_several_problems_reported_in_one_message():
    with pytest.raises(ParamsError) as error:
        params.parse(BaselineParams, with_change("baseline", "cv", 0) | {"njobs": 2})
    assert "'baseline.cv' = 0" in str(error.value) and "unknown key 'baseline.njobs'" in str(error.value)


def test_params_yaml_reads_as_the_python_parser_reads_it():
    """read_params_file takes libyaml's parser for speed: the same document, to the types and key order."""
    text = (REPO_ROOT / "params.yaml").read_text()
    assert repr(params.read_params_file(REPO_ROOT / "params.yaml")) == repr(yaml.safe_load(text))
    assert params._FAST_LOADER is yaml.CSafeLoader  # PyYAML's wheels have it: were it gone, the speed is gone


def test_unreadable_params_file(tmp_path):
    (tmp_path / "params.yaml").write_text("prepare: [unclosed\n")
    with pytest.raises(ParamsError, match="not valid YAML") as error:
        params.load(PrepareParams, tmp_path / "params.yaml")
    assert "    prepare: [unclosed" in str(error.value)  # the line itself, as PyYAML's Python parser quotes it
    with pytest.raises(ParamsError, match="file not found"):
        params.load(PrepareParams, tmp_path / "absent.yaml")


def variants_with(name, **changes):
    """The committed variants with variant `name` changed (a key set to None is removed)."""
    document = committed_params()["variants"]
    for key, value in changes.items():
        if value is None:
            document[name].pop(key)
        else:
            document[name][key] = value
    return document


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"optimizer": {"name": "adamw"}},
         "'variants.relu100.optimizer.name' = 'adamw' is not allowed: Input should be 'sgd', 'adagrad', 'rmsprop' or "
         "'adam'"),
        ({"optimizer": {"name": "adam", "nesterov": True}},
         "'variants.relu100.optimizer' = {'name': 'adam', 'nesterov': True} is not allowed: option 'nesterov' does not "
         "apply to adam (it takes: learning_rate)"),
        ({"optimizer": {"name": "sgd", "learning_rate": 0}},
         "'variants.relu100.optimizer.learning_rate' = 0 is not allowed: Input should be greater than 0"),
        ({"hidden": [{"units": 100, "activation": "relux"}]},
         "'variants.relu100.hidden.0.activation' = 'relux' is not allowed: Input should be 'relu', 'sigmoid'"),
        ({"hidden": [{"units": 0, "activation": "relu"}]},
         "'variants.relu100.hidden.0.units' = 0 is not allowed: Input should be greater than or equal to 1"),
        ({"hidden": [{"units": 100, "activation": "relu", "dropout": 1.0}]},
         "'variants.relu100.hidden.0.dropout' = 1.0 is not allowed: Input should be less than 1"),
        ({"hidden": [{"units": 100, "activation": "relu", "dropout": -0.1}]},
         "'variants.relu100.hidden.0.dropout' = -0.1 is not allowed: Input should be greater than or equal to 0"),
        ({"hidden": [{"units": 100, "activation": "relu", "drop": 0.3}]},
         "unknown key 'variants.relu100.hidden.0.drop' (allowed keys: units, activation, dropout)"),
        ({"epochs": 0}, "'variants.relu100.epochs' = 0 is not allowed: Input should be greater than or equal to 1"),
        ({"epochs": None}, "missing key 'variants.relu100.epochs'"),
        ({"batch_size": 0},
         "'variants.relu100.batch_size' = 0 is not allowed: Input should be greater than or equal to 1"),
        ({"callbacks": {"reduce_lr": {}}},
         "unknown key 'variants.relu100.callbacks.reduce_lr' (allowed keys: checkpoint, early_stopping)"),
        ({"validation": True, "callbacks": {"early_stopping": {"patience": -1}}},
         "'variants.relu100.callbacks.early_stopping.patience' = -1 is not allowed: Input should be greater than or "
         "equal to 0"),
        ({"callbacks": {"checkpoint": {}}},
         "is not allowed: callbacks checkpoint monitor validation metrics: set validation: true"),
        ({"epoch": 5},
         "unknown key 'variants.relu100.epoch' (allowed keys: description, hidden, optimizer, epochs, batch_size, "
         "replicates, validation, callbacks, augmentation)"),
    ],
)
def test_rejected_variants_name_variant_key_and_allowed_values(changes, message):
    with pytest.raises(ParamsError) as error:
        params.parse(VariantsParams, variants_with("relu100", **changes))
    assert message in str(error.value)


@pytest.mark.parametrize("name", ["../evil", "Relu", "a b", "1st", "x" * 65, ""])
def test_variant_names_unsafe_as_paths_are_rejected(name):
    document = committed_params()["variants"]
    document[name] = document["relu100"]
    with pytest.raises(ParamsError, match=f"name 'variants.{re.escape(name)}' is not allowed: use lowercase letters"):
        params.parse(VariantsParams, document)


@pytest.mark.parametrize("name, owner", [("best", "models/best is the select stage's"),
                                         ("baseline", "the baseline's results go by it")])
def test_variant_names_that_other_files_use_are_rejected(name, owner):
    document = committed_params()["variants"]
    document[name] = document["relu100"]
    with pytest.raises(ParamsError, match=f"'{name}' is taken \\({owner}\\): choose another variant name"):
        params.parse(VariantsParams, document)


def test_train_section_rejects_unknown_backend_and_bad_batch_size():
    with pytest.raises(ParamsError,
                       match=r"'train.backend' = 'torch' is not allowed: Input should be 'tensorflow' or 'jax'"):
        params.parse(TrainParams, with_change("train", "backend", "torch"))
    with pytest.raises(ParamsError, match=r"'train.batch_size' = 0 is not allowed"):
        params.parse(TrainParams, with_change("train", "batch_size", 0))


def test_dvc_exp_set_param_changes_only_the_line_it_sets(tmp_path):
    """`dvc exp run -S` rewrites params.yaml with ruamel; the committed layout is already what it writes,
    so an experiment's diff (and `dvc exp branch`) holds exactly the changed value."""
    from dvc.utils.hydra import apply_overrides

    copy = tmp_path / "params.yaml"
    original = (REPO_ROOT / "params.yaml").read_text()
    copy.write_text(original)
    apply_overrides(str(copy), ["variants.dropout30.hidden.0.dropout=0.2"])
    changed = [(a, b) for a, b in zip(original.splitlines(), copy.read_text().splitlines()) if a != b]
    assert changed == [("      dropout: 0.3", "      dropout: 0.2")]
    assert len(copy.read_text().splitlines()) == len(original.splitlines())
