import json

import pytest

from tests.conftest import write_fake_dataset
from tests.helpers import copy_project, edit_params, run_stage


@pytest.fixture(scope="module")
def prepared_repo(tmp_path_factory):
    repo = copy_project(tmp_path_factory.mktemp("baseline") / "repo")
    write_fake_dataset(repo / "data" / "raw", n_train=500, n_test=100)
    assert run_stage("prepare", repo).returncode == 0
    return repo


def test_baseline_metrics_and_determinism(prepared_repo):
    outputs = []
    for _ in range(2):
        result = run_stage("baseline", prepared_repo)
        assert result.returncode == 0, result.stderr
        outputs.append((prepared_repo / "reports/metrics/baseline.json").read_bytes())
    assert outputs[0] == outputs[1]  # same params and data => identical metrics file
    metrics = json.loads(outputs[0])
    details = json.loads((prepared_repo / "reports/evaluation/baseline.json").read_text())
    folds = [details["cv_fold_accuracy"][f"fold_{i}"] for i in range(1, 6)]
    assert metrics["cv_accuracy"] == pytest.approx(sum(folds) / 5)
    assert details["converged"] is False
    # The generated classes are separable: far above chance (0.1) even after 5 SGD epochs.
    assert min(folds) > 0.5 and metrics["val_accuracy"] > 0.5 and metrics["test_accuracy"] > 0.5
    timing = json.loads((prepared_repo / "reports/timing/baseline.json").read_text())
    assert set(timing["cv_fit_seconds"]) == {f"fold_{i}" for i in range(1, 6)}
    # The expected non-convergence is reported once, not once per fold.
    assert result.stdout.count("before converging in 5 of 5 folds") == 1
    assert "ConvergenceWarning:" not in result.stderr


def test_baseline_follows_cv_param(prepared_repo):
    repo = prepared_repo
    edit_params(repo, lambda d: d["baseline"].update(cv=3, n_jobs=1))
    try:
        assert run_stage("baseline", repo).returncode == 0
        details = json.loads((repo / "reports/evaluation/baseline.json").read_text())
        assert sorted(details["cv_fold_accuracy"]) == ["fold_1", "fold_2", "fold_3"]
    finally:
        edit_params(repo, lambda d: d["baseline"].update(cv=5, n_jobs=-1))


def test_baseline_without_prepared_data_says_what_to_run(tmp_path):
    repo = copy_project(tmp_path / "repo")
    write_fake_dataset(repo / "data" / "raw", n_train=100, n_test=20)
    result = run_stage("baseline", repo)
    assert result.returncode == 1
    assert "error: data/prepared/train.npz: not found; run `dvc repro prepare` first" in result.stderr
    written = [str(p.relative_to(repo)) for p in (repo / "reports").rglob("*") if p.is_file()]
    assert written == ["reports/tuning/README.md"]  # the project's own, nothing from the stage
