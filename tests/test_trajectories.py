"""Variants that share a trajectory are trained once, and each one's files are byte for byte what training it alone
gives: worked out from params (no training), in-process on tiny data, and through the real stages and DVC."""
import hashlib
import json
from pathlib import Path

import pytest

from fmnist.core import backend

backend.use("tensorflow")

import keras  # noqa: E402  (the backend must be chosen first)

from fmnist.core import evaluation, replicates, training  # noqa: E402
from fmnist.plumbing import params  # noqa: E402
from fmnist.schema.training import (  # noqa: E402
    TrainParams, Variant, VariantsParams, describe_families, family, replicates_of)
from tests.conftest import copy_pipeline  # noqa: E402
from tests.helpers import edit_params, run  # noqa: E402
from tests.test_models import SHARED, tiny_split, variant  # noqa: E402


def committed():
    return params.load(VariantsParams).root, params.load(TrainParams)


def test_families_are_worked_out_from_params():
    variants, shared = committed()
    assert describe_families(variants, shared).splitlines() == [
        "relu100_val20 (20 epochs) is trained once for relu100 (5)",
        "relu100_adam_val20 (20 epochs) is trained once for relu100_adam (5)",
        "dropout30 (20 epochs) is trained once for dropout30_saved (10), checkpoint (20), early_stopping (20)"]
    assert list(family("softmax", variants, shared)) == ["softmax"]
    # What joins: epochs, validation, callbacks that choose an epoch, a batch size or seeds equal to the default.
    base = variants["dropout30"].model_dump()
    seeds = replicates_of(variants["dropout30"], shared)
    shared = shared.model_copy(update={"replicates": seeds})  # so that a variant that sets no seeds has as many
    joins = {"shorter": {**base, "epochs": 3, "validation": False},
             "stops": {**base, "callbacks": {"early_stopping": {"patience": 5, "restore_best_weights": False}}},
             "default_batch": {**base, "batch_size": shared.batch_size},
             "default_seeds": {**base, "replicates": None}}
    # What does not: anything that moves a weight.
    apart = {"batch": {**base, "batch_size": 64},
             "rate": {**base, "optimizer": {"name": "adam", "learning_rate": 0.01}},
             "units": {**base, "hidden": [{"units": 101, "activation": "relu", "dropout": 0.3}]},
             "dropout": {**base, "hidden": [{"units": 100, "activation": "relu", "dropout": 0.2}]},
             "augmented": {**base, "augmentation": {"zoom": 0.1}},
             "more_seeds": {**base, "replicates": seeds + 3}}  # its stack trains other seeds
    extended = {**variants, **{name: Variant(**spec) for name, spec in {**joins, **apart}.items()}}
    assert set(family("dropout30", extended, shared)) == {"dropout30", "dropout30_saved", "checkpoint",
                                                         "early_stopping", *joins}
    for name in apart:
        assert list(family(name, extended, shared)) == [name]
    # A data-parallel fit trains alone.
    parallel = shared.model_copy(update={"backend": "jax", "distribution": "data_parallel"})
    assert list(family("checkpoint", variants, parallel)) == ["checkpoint"]


def written(root: Path) -> dict[str, str]:
    """Every file a variant's training wrote, by its sha256, the whole-model files (.keras) included; training seconds
    left out (a wall-clock time)."""
    found = {}
    for path in sorted(root.rglob("*")):
        if not path.is_file() or ".dvc" in path.parts:
            continue
        data = path.read_bytes()
        if path.name in ("training.json", "replicates.json"):
            data = json.dumps({k: v for k, v in json.loads(data).items() if k != "train_seconds"}).encode()
        found[path.relative_to(root).as_posix()] = hashlib.sha256(data).hexdigest()
    return found


@pytest.mark.longer(2, "eight fits of four variants, shared and alone, each with its stack of seeds")
def test_a_family_trains_once_and_each_member_is_what_training_it_alone_gives(tmp_path, monkeypatch):
    """Four variants of one trajectory: 6 epochs with validation, the first 2 without, one with ModelCheckpoint and
    EarlyStopping (a learning rate this high makes its seeds stop at different epochs), one with ModelCheckpoint
    alone (its whole model keeps the last epoch, its checkpoint the best). Shared, the trajectory is trained once
    (seed 42's fit and the stack of the other seeds); every member's model files, weights, history, summary, seed
    results and evaluation (restore checks included) are byte for byte those of training it alone."""
    train, val, test = tiny_split(256, 1), tiny_split(64, 2), tiny_split(64, 5)
    layers = {"hidden": [{"units": 16, "activation": "relu", "dropout": 0.3}],
              "optimizer": {"name": "adam", "learning_rate": 0.03}}
    members = {"long": variant(**layers, epochs=6, validation=True), "short": variant(**layers, epochs=2),
               "stopping": variant(**layers, epochs=6, validation=True,
                                   callbacks={"checkpoint": {}, "early_stopping": {"patience": 1}}),
               "checkpoint": variant(**layers, epochs=5, validation=True, callbacks={"checkpoint": {}})}
    shared = SHARED.model_copy(update={"replicates": 3})
    trained = []
    for module, function in ((training, "fit_trajectory"), (replicates, "train_stack")):
        real = getattr(module, function)
        monkeypatch.setattr(module, function, lambda *a, real=real, function=function, **k:
                            trained.append(function) or real(*a, **k))
    files = {}
    for mode in ("shared", "alone"):
        root = tmp_path / mode
        root.mkdir()
        monkeypatch.chdir(root)
        for name, spec in members.items():
            keras.backend.clear_session()  # as in the stage's own process: the first model it builds
            training.run(name, spec, shared, train=train, val=val, test=test,
                         members=members if mode == "shared" else None)
            metrics, details, _, _ = evaluation.evaluate(name, spec, root / "models" / name, val, test)
            (root / f"{name}.json").write_text(json.dumps([metrics, details], sort_keys=True))
        files[mode] = written(root)
        if mode == "shared":
            assert trained == ["fit_trajectory", "train_stack"]  # once, by the first member
    assert {path for path in files["alone"] if path.endswith((".weights.h5", ".keras"))} == {
        f"models/{name}/{file}" for name in members for file in ("model.weights.h5", "model.keras")} | {
        "models/stopping/best.keras", "models/checkpoint/best.keras"}
    assert files["shared"] == files["alone"]
    epochs = {name: json.loads((tmp_path / "alone" / f"{name}.json").read_text())[0]["epochs_run"] for name in members}
    assert epochs == {"long": 6, "short": 2, "stopping": epochs["stopping"], "checkpoint": 5} and epochs["stopping"] < 6


def test_a_kept_trajectory_serves_later_members_and_is_trained_again_when_too_short(tmp_path, monkeypatch):
    """The stack's trajectory kept by one member serves the next without training; a member needing more epochs than
    it holds trains it again, longer, in place of the old one."""
    monkeypatch.chdir(tmp_path)
    train, val = tiny_split(128, 1), tiny_split(32, 2)
    short, long = variant(epochs=1), variant(epochs=2)
    trained = []
    real = replicates.train_stack
    monkeypatch.setattr(replicates, "train_stack", lambda *a, **k: trained.append(len(a[0])) or real(*a, **k))
    alone_short = replicates.fit(short, SHARED, [43, 44], train=train, val=val, test=val)
    trained.clear()
    first = replicates.fit_shared("short", {"short": short}, SHARED, [43, 44], train=train, val=val, test=val)
    again = replicates.fit_shared("short", {"short": short}, SHARED, [43, 44], train=train, val=val, test=val)
    assert trained == [1] and first == again and first["per_seed"] == alone_short["per_seed"]
    longer = replicates.fit_shared("long", {"short": short, "long": long}, SHARED, [43, 44], train=train, val=val,
                                   test=val)
    assert trained == [1, 2] and [entry["epochs_run"] for entry in longer["per_seed"]] == [2, 2]
    assert len(list(Path(".dvc/tmp/trajectories").iterdir())) == 1  # the longer one replaced the shorter


def result_files(repo: Path, name: str) -> dict[str, str]:
    """sha256 of a variant's training files (written()) and of its metrics, evaluation and confusion rows."""
    found = {f"models/{path}": digest for path, digest in written(repo / "models" / name).items()}
    for path in (f"reports/metrics/{name}.json", f"reports/evaluation/{name}.json", f"reports/confusion/{name}.csv"):
        found[path] = hashlib.sha256((repo / path).read_bytes()).hexdigest()
    found.update({f"reports/train/{path}": digest for path, digest in written(repo / "reports/train" / name).items()})
    return found


@pytest.mark.longer(2.5, "three train stages and DVC around them: the shared trajectory, a derived member, and "
                         "a member trained alone")
def test_a_derived_stage_writes_what_the_stage_trained_alone_wrote(tiny_pipelines, tmp_path):
    """On the tiny pipeline: a new variant joins tiny_stopping's trajectory (one epoch more, no callbacks), and the
    params check says so. Its stage trains the trajectory; tiny_stopping's stage, forced, derives from it and writes
    exactly the results it wrote when the pipeline trained it alone (git sees no change in its metrics, evaluation
    or history); the new variant trained alone (--alone) writes exactly what its derived stage wrote."""
    pipeline = copy_pipeline(tiny_pipelines("tensorflow"), tmp_path / "repo")
    repo, env = pipeline.repo, pipeline.env
    edit_params(repo, lambda d: d["variants"].update(tiny_long={
        **{key: d["variants"]["tiny_stopping"][key] for key in ("hidden", "optimizer")},
        "epochs": 3, "validation": True}))
    check = run(["python", "-m", "fmnist.schema"], repo, env)
    assert "tiny_long (3 epochs) is trained once for tiny_stopping (2)" in check.stdout
    first = run(["dvc", "repro", "train@tiny_long"], repo, env)
    assert "train@tiny_stopping" not in first.stdout  # its own params, code and data did not change
    memos = repo / ".dvc/tmp/trajectories"
    assert len(list(memos.iterdir())) == 2  # seed 42's part and the stack's
    before = result_files(repo, "tiny_stopping")
    derived = run(["dvc", "repro", "--force", "--single-item", "train@tiny_stopping"], repo, env)
    assert "; its trajectory is shared with tiny_long (trained once)" in derived.stdout
    assert result_files(repo, "tiny_stopping") == before
    changed = run(["git", "status", "--porcelain", "--untracked-files=no", "reports/metrics", "reports/evaluation",
                   "reports/train"], repo, env)
    assert changed.stdout == ""
    shared = result_files(repo, "tiny_long")
    run(["python", "-m", "stages.train", "tiny_long", "--alone"], repo, env)
    assert result_files(repo, "tiny_long") == shared
