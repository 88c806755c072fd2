import hashlib

import numpy as np
import pytest

from fmnist.core import dataset, idx
from tests.conftest import write_fake_dataset
from tests.helpers import copy_project, run_stage


@pytest.fixture
def workdir(tmp_path):
    """A project copy with generated files in data/raw, ready for `python -m stages.prepare`."""
    repo = copy_project(tmp_path / "repo")
    write_fake_dataset(repo / "data" / "raw", n_train=500, n_test=100)
    return repo


def load_split(repo, name):
    with np.load(repo / "data" / "prepared" / f"{name}.npz", allow_pickle=False) as arrays:
        return arrays["x"], arrays["y"]


def test_prepare_scales_and_splits(workdir):
    result = run_stage("prepare", workdir)
    assert result.returncode == 0, result.stderr
    raw_train, raw_labels = dataset.load_raw("train", workdir / "data" / "raw")
    x_train, y_train = load_split(workdir, "train")
    x_val, y_val = load_split(workdir, "val")
    x_test, y_test = load_split(workdir, "test")
    assert x_train.shape == (400, 28, 28) and x_val.shape == (100, 28, 28) and x_test.shape == (100, 28, 28)
    assert x_train.dtype == np.float32 and y_train.dtype == np.uint8
    assert 0.0 <= x_train.min() and x_train.max() <= 1.0
    # The split is a permutation of the original images: together they are the training set again.
    together = np.concatenate([x_train, x_val]).reshape(500, -1)
    original = (raw_train.astype(np.float32) / 255).reshape(500, -1)
    assert sorted(map(bytes, together)) == sorted(map(bytes, original))
    np.testing.assert_array_equal(np.sort(np.concatenate([y_train, y_val])), np.sort(raw_labels))


def test_prepare_is_deterministic(workdir):
    digests = []
    for _ in range(2):
        assert run_stage("prepare", workdir).returncode == 0
        digests.append({n: hashlib.sha256((workdir / "data/prepared" / f"{n}.npz").read_bytes()).hexdigest()
                        for n in dataset.SPLITS})
    assert digests[0] == digests[1]


def test_split_follows_test_size_and_random_state():
    images = np.arange(100, dtype=np.float32).reshape(100, 1)
    labels = np.arange(100) % 10
    train, val = dataset.split_train_val(images, labels, 0.25, 7)
    again, _ = dataset.split_train_val(images, labels, 0.25, 7)
    other, _ = dataset.split_train_val(images, labels, 0.25, 8)
    assert len(train.y) == 75 and len(val.y) == 25
    np.testing.assert_array_equal(train.x, again.x)
    assert not np.array_equal(train.x, other.x)


def test_malformed_raw_file_fails_cleanly(workdir):
    idx.write(workdir / "data/raw/t10k-labels-idx1-ubyte.gz", np.full(100, 10, np.uint8))
    result = run_stage("prepare", workdir)
    assert result.returncode == 1
    assert "error: data/raw/t10k-labels-idx1-ubyte.gz: label 10 at index 0 is outside 0-9" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (workdir / "data" / "prepared").exists()


def test_count_mismatch_names_both_files(workdir):
    idx.write(workdir / "data/raw/train-labels-idx1-ubyte.gz", np.zeros(499, np.uint8))
    result = run_stage("prepare", workdir)
    assert result.returncode == 1
    assert ("train-images-idx3-ubyte.gz holds 500 images but data/raw/train-labels-idx1-ubyte.gz holds 499 labels"
            in result.stderr)


def test_bad_params_fail_before_any_work(workdir):
    text = (workdir / "params.yaml").read_text().replace("test_size: 0.2", "test_size: 1.2")
    (workdir / "params.yaml").write_text(text)
    result = run_stage("prepare", workdir)
    assert result.returncode == 1
    assert "error: params.yaml: 'prepare.test_size' = 1.2 is not allowed: Input should be less than 1" in result.stderr
    assert "Traceback" not in result.stderr and not (workdir / "data" / "prepared").exists()


@pytest.mark.real_data
def test_real_data_facts(real_mirror):
    images, labels = dataset.load_raw("train", real_mirror)
    assert images.shape == (60000, 28, 28)
    assert labels[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    assert np.bincount(labels).tolist() == [6000] * 10
    test_images, test_labels = dataset.load_raw("test", real_mirror)
    assert test_images.shape == (10000, 28, 28) and len(test_labels) == 10000
    train, val = dataset.split_train_val(dataset.scale(images), labels, 0.2, 42)
    assert train.x.shape == (48000, 28, 28) and val.x.shape == (12000, 28, 28)
    assert train.y[:10].tolist() == [7, 3, 5, 8, 6, 9, 3, 3, 9, 9]
