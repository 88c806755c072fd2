"""End to end: download -> prepare -> baseline of the shared tiny pipeline (conftest.py), on generated data.
test_train_pipeline.py covers the train stages, plot and report."""
import json

import numpy as np
import pytest

from fmnist.core.dataset import FILE_NAMES
from tests.conftest import copy_pipeline
from tests.helpers import copy_project, edit_params, run, stage_env

STAGES = ("download", "prepare", "baseline")


def test_repro_builds_every_output_then_reruns_nothing(tiny_pipelines):
    _, repo, env, first, mirror = tiny_pipelines("tensorflow")
    for stage in STAGES:
        assert f"Running stage '{stage}'" in first.stdout
    assert sorted(p.name for p in (repo / "data/raw").iterdir()) == sorted(p.name for p in mirror.iterdir())
    with np.load(repo / "data/prepared/val.npz", allow_pickle=False) as val:
        assert val["x"].shape == (100, 28, 28)
    metrics = json.loads((repo / "reports/metrics/baseline.json").read_text())
    folds = json.loads((repo / "reports/evaluation/baseline.json").read_text())["cv_fold_accuracy"]
    assert len(folds) == 5 and metrics["cv_accuracy"] == pytest.approx(sum(folds.values()) / 5, abs=1e-12)
    assert metrics["cv_accuracy"] > 0.5  # far above chance (0.1): the generated classes are easy to tell apart
    assert (repo / "dvc.lock").is_file()

    # Nothing changed: a second repro runs no stage, and neither does switching the mirror
    # (the source is not a dependency; the pinned bytes are).
    for mirror_value in (str(mirror), "http://127.0.0.1:9/elsewhere/"):
        again = run(["dvc", "repro", "baseline"], repo, {**env, "FASHION_MNIST_MIRROR": mirror_value})
        assert "Running stage" not in again.stdout, again.stdout
    status = run(["dvc", "status", "baseline"], repo, env)
    assert "up to date" in status.stdout

    # dvc metrics show reads the metrics file declared in dvc.yaml.
    shown = json.loads(run(["dvc", "metrics", "show", "--json"], repo, env).stdout)
    (workspace,) = shown.values()
    assert workspace["data"]["reports/metrics/baseline.json"]["data"] == metrics


def test_changing_a_stage_param_reruns_only_that_stage_and_below(tiny_pipelines, tmp_path):
    _, repo, env, _, _ = copy_pipeline(tiny_pipelines("tensorflow"), tmp_path / "repo")
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
