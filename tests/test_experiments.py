"""Experiments, the queue and a shared remote, as the README documents them, in a temporary git+DVC repo
with tiny variants on generated data (TensorFlow backend)."""
from __future__ import annotations

import json
import time

import pytest
import yaml

from tests.conftest import copy_pipeline
from tests.helpers import commit_all, experiments_shown, run
from tests.test_train_pipeline import ran_stages, result_files


def reset(repo, env):
    """The committed state: params, outputs and all."""
    run(["git", "reset", "-q", "--hard"], repo, env)
    run(["dvc", "checkout", "--force"], repo, env)


@pytest.fixture(scope="module")
def project(tiny_pipelines, tmp_path_factory):
    """A copy of the shared tiny TensorFlow pipeline, reproduced and committed on main, as a user's repo would be."""
    pipeline = copy_pipeline(tiny_pipelines("tensorflow"), tmp_path_factory.mktemp("exp") / "repo")
    yield pipeline.repo.parent, pipeline.repo, pipeline.env
    run(["dvc", "queue", "stop", "--kill"], pipeline.repo, pipeline.env, check=False)


@pytest.fixture
def repo(project):
    """The committed state again for every test (an experiment run in the workspace changes it)."""
    root, repo, env = project
    reset(repo, env)
    return repo, env


def params_of(repo):
    return yaml.safe_load((repo / "params.yaml").read_text())


def metrics_of(repo, name):
    return json.loads((repo / "reports/metrics" / f"{name}.json").read_text())


def experiments(repo, env) -> list[dict]:
    """Each experiment as {name, params (of params.yaml), metrics (per file), error}."""
    return [{**shown, "params": shown["params"].get("params.yaml", {})} for shown in experiments_shown(repo, env)]


@pytest.fixture(scope="module")
def set_experiment(project):
    """One `dvc exp run -S` in the workspace setting a plain value (tiny_relu's epochs), an item of a list
    (tiny_stopping's dropout rate) and a key not yet in params.yaml (Hydra's '+': a learning rate), as
    {stdout, params, tiny_relu's metrics, whether tiny_softmax's results were left byte for byte, experiments}.
    Both tests below read this one experiment: each experiment costs the variants it sets and every stage after."""
    _, repo, env = project
    reset(repo, env)
    unchanged = result_files(repo, ("tiny_softmax",))
    result = run(["dvc", "exp", "run", "-S", "variants.tiny_relu.epochs=2",
                  "-S", "variants.tiny_stopping.hidden.0.dropout=0.5",
                  "-S", "+variants.tiny_stopping.optimizer.learning_rate=0.05"], repo, env)
    found = {"stdout": result.stdout, "params": params_of(repo), "tiny_relu": metrics_of(repo, "tiny_relu"),
             "softmax_left_as_it_was": result_files(repo, ("tiny_softmax",)) == unchanged,
             "experiments": experiments(repo, env)}
    reset(repo, env)
    return found


@pytest.mark.longer(2.5, why="its set-up: one experiment that trains two variants, and every stage after them")
def test_exp_run_set_param_reruns_only_what_it_affects(set_experiment):
    # The variants it sets and what weighs or shows every variant (the choice of models/best, the figures, the
    # report) run again; the other variant stays as it was, byte for byte.
    assert ran_stages(set_experiment["stdout"]) == {"train@tiny_relu", "train@tiny_stopping", "assess", "select",
                                                    "plot", "report"}
    assert set_experiment["tiny_relu"]["epochs_run"] == 2
    assert set_experiment["softmax_left_as_it_was"]
    # As documented: the experiment's params and results are left in the workspace.
    assert set_experiment["params"]["variants"]["tiny_relu"]["epochs"] == 2
    assert any(e["params"]["variants"]["tiny_relu"]["epochs"] == 2
               and e["metrics"]["reports/metrics/tiny_relu.json"]["epochs_run"] == 2
               for e in set_experiment["experiments"])


def test_exp_run_set_reaches_list_items_and_new_keys(set_experiment, repo):
    """Dropout rate (an item of a list), a learning rate not yet in params.yaml (Hydra's '+')."""
    variants = set_experiment["params"]["variants"]
    assert variants["tiny_stopping"]["hidden"][0]["dropout"] == 0.5
    assert variants["tiny_stopping"]["optimizer"] == {"name": "adam", "learning_rate": 0.05}
    # A bad value is caught by the params schema inside the experiment, with the usual message.
    repo, env = repo
    bad = run(["dvc", "exp", "run", "-S", "variants.tiny_relu.epochs=0"], repo, env, check=False)
    assert bad.returncode != 0
    assert "'variants.tiny_relu.epochs' = 0 is not allowed" in bad.stdout + bad.stderr


@pytest.mark.longer(3, why="two experiments through DVC's queue at once")
def test_a_two_job_queue_runs_both_experiments(repo):
    repo, env = repo
    # The train stage as the target: the queue is the subject, and the stages after it (assess, select, plot,
    # report: about 8 CPU-s an experiment) would only make the two jobs longer.
    queued = run(["dvc", "exp", "run", "--queue", "-S", "variants.tiny_stopping.hidden.0.dropout=0.1,0.5",
                  "train@tiny_stopping"], repo, env)
    assert queued.stdout.count("Queued experiment") == 2
    assert params_of(repo)["variants"]["tiny_stopping"]["hidden"][0]["dropout"] == 0.3  # workspace untouched
    run(["dvc", "queue", "start", "-j", "2"], repo, env)
    deadline = time.monotonic() + 600
    while True:
        status = run(["dvc", "queue", "status"], repo, env).stdout
        if "Queued" not in status and "Running" not in status:
            break
        assert time.monotonic() < deadline, status
        time.sleep(2.5)  # each look is a DVC process (about 0.8 CPU-s) on the cores the two experiments need
    assert status.count("Success") >= 2 and "Failed" not in status, status
    rates = {}
    for experiment in experiments(repo, env):
        rate = experiment["params"]["variants"]["tiny_stopping"]["hidden"][0]["dropout"]
        rates[rate] = experiment["metrics"].get("reports/metrics/tiny_stopping.json", {}).get("val_accuracy")
    assert {0.1, 0.5} <= set(rates) and rates[0.1] is not None and rates[0.5] is not None


def test_remote_push_then_pull_in_a_second_clone_reruns_nothing(repo, tmp_path):
    repo, env = repo
    run(["dvc", "remote", "add", "-d", "shared", str(tmp_path / "remote")], repo, env)
    commit_all(repo, "shared remote")
    try:
        pushed = run(["dvc", "push"], repo, env)
        assert "pushed" in pushed.stdout
        clone = tmp_path / "clone"
        run(["git", "clone", "-q", str(repo), str(clone)], tmp_path, env)
        assert not (clone / "models").exists() and not (clone / "data/prepared").exists()
        run(["dvc", "pull"], clone, env)
        assert (clone / "models/tiny_relu/model.keras").is_file()
        assert "up to date" in run(["dvc", "status"], clone, env).stdout
        again = run(["dvc", "repro"], clone, env)
        assert ran_stages(again.stdout) == set(), again.stdout
    finally:
        run(["git", "reset", "-q", "--hard", "HEAD~1"], repo, env)
