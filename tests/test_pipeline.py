"""End to end: `dvc repro baseline` (download -> prepare -> baseline) in a fresh git repo holding a copy
of the project, on generated data. test_train_pipeline.py covers the train and evaluate stages."""
import json

import numpy as np
import pytest

from fmnist.dataset import FILE_NAMES
from tests.conftest import write_fake_dataset
from tests.helpers import copy_project, edit_params, init_git_dvc_repo, run, stage_env

STAGES = ("download", "prepare", "baseline")


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    mirror = root / "mirror"
    pins = write_fake_dataset(mirror, n_train=500, n_test=100)
    repo = copy_project(root / "repo")
    edit_params(repo, lambda d: d["download"].update(sha256=pins))
    init_git_dvc_repo(repo)
    return repo, mirror


def test_repro_builds_every_output_then_reruns_nothing(repo):
    repo, mirror = repo
    env = stage_env(FASHION_MNIST_MIRROR=str(mirror))
    first = run(["dvc", "repro", "baseline"], repo, env)
    for stage in STAGES:
        assert f"Running stage '{stage}'" in first.stdout
    assert sorted(p.name for p in (repo / "data/raw").iterdir()) == sorted(p.name for p in mirror.iterdir())
    with np.load(repo / "data/prepared/val.npz", allow_pickle=False) as val:
        assert val["x"].shape == (100, 28, 28)
    metrics = json.loads((repo / "reports/metrics/baseline.json").read_text())
    assert 0.5 < metrics["cv_accuracy"] <= 1.0
    assert (repo / "dvc.lock").is_file()

    # Nothing changed: a second repro runs no stage, and neither does switching the mirror
    # (the source is not a dependency; the pinned bytes are).
    for mirror_value in (str(mirror), "http://127.0.0.1:9/elsewhere/"):
        again = run(["dvc", "repro", "baseline"], repo, stage_env(FASHION_MNIST_MIRROR=mirror_value))
        assert "Running stage" not in again.stdout, again.stdout
    status = run(["dvc", "status", "baseline"], repo, env)
    assert "up to date" in status.stdout

    # dvc metrics show reads the metrics file declared in dvc.yaml.
    shown = json.loads(run(["dvc", "metrics", "show", "--json"], repo, env).stdout)
    flat = json.dumps(shown)
    assert str(metrics["cv_accuracy"]) in flat


def test_changing_a_stage_param_reruns_only_that_stage_and_below(repo):
    repo, mirror = repo
    env = stage_env(FASHION_MNIST_MIRROR=str(mirror))
    edit_params(repo, lambda d: d["baseline"].update(max_iter=6))
    result = run(["dvc", "repro", "baseline"], repo, env)
    assert "Running stage 'baseline'" in result.stdout
    assert "Running stage 'download'" not in result.stdout and "Running stage 'prepare'" not in result.stdout


def test_download_failure_exits_cleanly_and_names_sources(tmp_path):
    repo = copy_project(tmp_path / "repo")
    env = stage_env(FASHION_MNIST_MIRROR=str(tmp_path / "missing"), KERAS_HOME=str(tmp_path / "nokeras"))
    # Fail fast: no retries against the public URLs, which this machine may not reach; pins that no
    # real file matches keep the test failing as intended where they are reachable.
    wrong_pins = {name: "0" * 64 for name in FILE_NAMES}
    edit_params(repo, lambda d: d["download"].update(retries=0, timeout_seconds=2.0, sha256=wrong_pins))
    result = run(["python", "-m", "stages.download"], repo, env, check=False)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    for source in ("$FASHION_MNIST_MIRROR", "canonical URL", "Zalando mirror", "Set FASHION_MNIST_MIRROR"):
        assert source in result.stderr
    assert list((repo / "data" / "raw").iterdir()) == []
