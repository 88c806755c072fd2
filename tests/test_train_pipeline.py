"""End to end on both backends: `dvc repro` of download -> evaluate with tiny variants on generated data."""
import json
import shutil

import pytest

from tests.conftest import write_fake_dataset
from tests.helpers import commit_all, copy_project, edit_params, init_git_dvc_repo, run, run_stage, stage_env

TINY_VARIANTS = {
    "tiny_softmax": {"hidden": [], "optimizer": {"name": "rmsprop"}, "epochs": 1},
    "tiny_relu": {"hidden": [{"units": 16, "activation": "relu"}], "optimizer": {"name": "sgd", "momentum": 0.9},
                  "epochs": 1},
    "tiny_stopping": {
        "hidden": [{"units": 16, "activation": "relu", "dropout": 0.3}], "optimizer": {"name": "adam"},
        "epochs": 2, "validation": True,
        "callbacks": {"checkpoint": {"monitor": "val_loss"}, "early_stopping": {"patience": 1}},
    },
}


# Checks that do not depend on the backend run once, on the TensorFlow repo the other tests share.
TENSORFLOW_ONLY = pytest.mark.parametrize("pipeline", ["tensorflow"], indirect=True)


def ran_stages(output: str) -> set[str]:
    return {line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage '")}


@pytest.fixture(scope="module", params=["tensorflow", "jax"])
def pipeline(request, tmp_path_factory):
    """A fresh git+DVC repo with the tiny variants, after one full `dvc repro` on the given backend."""
    root = tmp_path_factory.mktemp(request.param)
    pins = write_fake_dataset(root / "mirror", n_train=500, n_test=100)
    repo = copy_project(root / "repo")

    def tiny(document):
        document["download"]["sha256"] = pins
        document["train"]["backend"] = request.param
        document["variants"] = TINY_VARIANTS
        document["chapter"] = {"tiny_stopping": {"metric": "val_accuracy", "value": 0.5}}
        document["plot"]["optimizer_comparison"] = ["tiny_softmax", "tiny_relu"]

    edit_params(repo, tiny)
    init_git_dvc_repo(repo)
    env = stage_env(FASHION_MNIST_MIRROR=str(root / "mirror"))
    first = run(["dvc", "repro"], repo, env)
    return request.param, repo, env, first


def test_every_variant_is_trained_evaluated_and_recorded(pipeline):
    backend, repo, env, first = pipeline
    assert {f"{stage}@{name}" for stage in ("train", "evaluate") for name in TINY_VARIANTS} <= ran_stages(first.stdout)
    for name in TINY_VARIANTS:
        summary = json.loads((repo / "models" / name / "training.json").read_text())
        assert summary["backend"] == backend
        metrics = json.loads((repo / "reports/metrics" / f"{name}.json").read_text())
        assert 0.0 <= metrics["val_accuracy"] <= 1.0 and 0.0 <= metrics["test_accuracy"] <= 1.0
        details = json.loads((repo / "reports/evaluation" / f"{name}.json").read_text())
        assert details["restore"]["agree"] is True and details["backend"] == backend
        assert len(details["test_accuracy_per_class"]) == 10
        rows = (repo / "reports/confusion" / f"{name}.csv").read_text().splitlines()
        assert rows[0] == "actual,predicted" and len(rows) == 101
        assert (repo / "reports/train" / name / "plots/metrics/train/loss.tsv").is_file()
    assert json.loads((repo / "reports/evaluation/tiny_softmax.json").read_text())["parameters"] == 7850
    # Every variant carries its seed spread: train.replicates seeds, the chapter's first.
    for name in TINY_VARIANTS:
        metrics = json.loads((repo / "reports/metrics" / f"{name}.json").read_text())
        spread = json.loads((repo / "reports/evaluation" / f"{name}.json").read_text())["spread"]
        assert metrics["seeds"] == 5 and spread["seeds"] == [42, 43, 44, 45, 46]
        assert spread["per_seed"][0]["val_accuracy"] == metrics["val_accuracy"]
        assert metrics["val_accuracy_std"] > 0 and spread["val_accuracy"]["min"] <= metrics["val_accuracy_mean"]
    stopping = json.loads((repo / "reports/metrics/tiny_stopping.json").read_text())
    assert 1 <= stopping["best_epoch"] <= 2
    assert json.loads((repo / "reports/evaluation/tiny_stopping.json").read_text())["evaluated_file"] == "best.keras"
    assert (repo / "reports/train/tiny_stopping/plots/metrics/eval/accuracy.tsv").is_file()
    # The last stages ran on the real outputs: a curve figure for the validated variant, a report row each.
    assert {"plot", "report"} <= ran_stages(first.stdout)
    assert (repo / "reports/figures/curves_tiny_stopping.png").is_file()
    summary = (repo / "reports/summary.md").read_text()
    for name in TINY_VARIANTS:
        assert f"\n| {name} " in summary
    # `dvc plots show` reads every declared plot of a real run, and nothing else (no stray files).
    shown = json.loads(run(["dvc", "plots", "show", "--json"], repo, env).stdout)
    assert not shown.get("errors"), shown["errors"]
    assert {f"reports/confusion/{name}.csv" for name in TINY_VARIANTS} | {
        "reports/curves/train_val/tiny_stopping.csv", "reports/figures/curves_tiny_stopping.png"} <= set(shown["data"])
    # Nothing changed: nothing reruns.
    assert ran_stages(run(["dvc", "repro"], repo, env).stdout) == set()


def result_files(repo, names=("tiny_relu", "tiny_stopping")) -> dict[str, bytes]:
    """Metrics and details (every seed's results) of the given variants, as bytes."""
    return {f"{folder}/{name}": (repo / "reports" / folder / f"{name}.json").read_bytes()
            for folder in ("metrics", "evaluation") for name in names}


def test_training_twice_gives_identical_per_seed_results(pipeline):
    """Same params, same machine, same backend: every seed's result is identical, byte for byte."""
    backend, repo, env, _ = pipeline
    before = result_files(repo)
    run(["dvc", "repro", "--force", "--single-item", "train@tiny_relu", "train@tiny_stopping",
         "evaluate@tiny_relu", "evaluate@tiny_stopping"], repo, env)
    assert result_files(repo) == before, f"results differ between two trainings on {backend}"


@TENSORFLOW_ONLY
def test_another_float_rounding_path_moves_seeds_but_reproduces_the_means(pipeline, tmp_path):
    """What another CPU does, on one machine: TensorFlow without oneDNN rounds differently. Single seeds'
    results move; the gate's reproduction check, which compares means within the seed spread, passes."""
    backend, source, env, _ = pipeline
    repo = tmp_path / "repo"
    shutil.copytree(source, repo, symlinks=True)
    commit_all(repo, "results with oneDNN (the default)")
    before = result_files(repo, TINY_VARIANTS)
    stages = [f"{stage}@{name}" for stage in ("train", "evaluate") for name in TINY_VARIANTS]
    run(["dvc", "repro", "--force", "--single-item", *stages], repo, {**env, "TF_ENABLE_ONEDNN_OPTS": "0"})
    after = result_files(repo, TINY_VARIANTS)
    losses = {when: [seed["val_loss"] for name in TINY_VARIANTS
                     for seed in json.loads(files[f"evaluation/{name}"])["spread"]["per_seed"]]
              for when, files in (("before", before), ("after", after))}
    assert losses["before"] != losses["after"]  # a different rounding path really was taken
    result = run(["python", "-m", "stages.gate", "--reproduces", "HEAD"], repo, env, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    # Every mean: validation and test of each variant, and the baseline's CV.
    assert "reproduction of HEAD: all 7 checks pass" in result.stdout


@TENSORFLOW_ONLY
def test_changing_one_variant_retrains_only_that_variant(pipeline):
    backend, repo, env, _ = pipeline
    edit_params(repo, lambda d: d["variants"]["tiny_relu"].update(epochs=2))
    # The other variants stay as they are; the figures and the report, which show every variant, follow.
    assert ran_stages(run(["dvc", "repro"], repo, env).stdout) == {"train@tiny_relu", "evaluate@tiny_relu", "plot", "report"}
    assert json.loads((repo / "reports/metrics/tiny_relu.json").read_text())["epochs_run"] == 2


@TENSORFLOW_ONLY
def test_unknown_variant_and_bad_variant_params_stop_before_training(pipeline):
    backend, repo, env, _ = pipeline
    result = run_stage("train", repo, FASHION_MNIST_MIRROR="")
    assert result.returncode == 1 and "usage: python -m stages.train <variant>" in result.stderr
    result = run(["python", "-m", "stages.train", "nosuch"], repo, env, check=False)
    assert result.returncode == 1
    assert "error: variant 'nosuch' is not declared in params.yaml (declared: tiny_softmax, tiny_relu, tiny_stopping)" in result.stderr
    original = (repo / "params.yaml").read_text()
    try:
        edit_params(repo, lambda d: d["variants"]["tiny_stopping"]["callbacks"]["early_stopping"].update(patience=-1))
        result = run(["python", "-m", "stages.train", "tiny_relu"], repo, env, check=False)
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert "'variants.tiny_stopping.callbacks.early_stopping.patience' = -1 is not allowed" in result.stderr
        assert "Epoch 1/" not in result.stdout  # no training started
    finally:
        (repo / "params.yaml").write_text(original)


@TENSORFLOW_ONLY
def test_evaluate_names_a_corrupt_model_file_and_the_stage_to_rerun(pipeline):
    backend, repo, env, _ = pipeline
    model_file = repo / "models/tiny_softmax/model.keras"
    model_file.chmod(0o644)
    model_file.write_bytes(b"truncated")
    before = (repo / "reports/metrics/tiny_softmax.json").read_bytes()
    result = run(["python", "-m", "stages.evaluate", "tiny_softmax"], repo, env, check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "error: models/tiny_softmax/model.keras: unreadable" in result.stderr
    assert "run `dvc repro train@tiny_softmax`" in result.stderr
    assert (repo / "reports/metrics/tiny_softmax.json").read_bytes() == before  # the old result stays whole
