"""Using the trained model: `python -m fmnist.tools.predict` on the tiny pipeline's models (and on the real data),
and the registry round trip: GTO tags -> `dvc artifacts get`."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fmnist.core import dataset, images, robustness
from fmnist.plumbing import paths
from fmnist.schema.training import TrainParams, Variant
from tests.conftest import REPO_ROOT, TINY_VARIANTS, copy_pipeline
from tests.helpers import commit_all, edit_params, run, sha256, stage_env

GIT_IDENTITY = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
                "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}


def predict(pipeline, *args, cwd: Path | None = None, check: bool = False):
    """python -m fmnist.tools.predict ARGS in the pipeline's repo, or in another folder with the project importable."""
    env = {**pipeline.env, "PYTHONPATH": str(pipeline.repo)}
    return run([sys.executable, "-m", "fmnist.tools.predict", *map(str, args)], cwd or pipeline.repo, env, check=check)


@pytest.fixture(scope="module")
def pipeline(tiny_pipelines):
    return tiny_pipelines("tensorflow")


@pytest.fixture(scope="module")
def test_pngs(pipeline, tmp_path_factory) -> Path:
    """Every test image of the tiny data as a 28x28 grayscale PNG, named by its index."""
    folder = tmp_path_factory.mktemp("test-pngs")
    test_images, _ = dataset.load_raw("test", pipeline.repo / paths.RAW_DIR)
    for index, image in enumerate(test_images):
        images.to_png(image, folder / f"{index:03d}.png")
    return folder


def evaluated_classes(pipeline, name: str) -> list[str]:
    """What train@<name>'s evaluation predicted for each test image (its confusion data), in order."""
    return list(pd.read_csv(pipeline.repo / paths.CONFUSION_DIR / f"{name}.csv")["predicted"])


@pytest.mark.parametrize("choice", ["best", *TINY_VARIANTS])
def test_png_files_are_classified_exactly_as_evaluate_classified_the_arrays(pipeline, test_pngs, choice):
    selection = json.loads((pipeline.repo / paths.BEST_DIR / paths.SELECTION_FILE).read_text())
    name = selection["variant"] if choice == "best" else choice
    result = predict(pipeline, "--json", test_pngs, *([] if choice == "best" else ["--variant", choice]), check=True)
    output = json.loads(result.stdout)
    assert [Path(p["path"]).name for p in output["predictions"]] == sorted(p.name for p in test_pngs.iterdir())
    assert [p["top"][0]["class"] for p in output["predictions"]] == evaluated_classes(pipeline, name)
    for prediction in output["predictions"]:
        probabilities = [entry["probability"] for entry in prediction["top"]]
        assert len(probabilities) == 3 and probabilities == sorted(probabilities, reverse=True)
    assert output["errors"] == [] and result.stderr == ""  # calm: no library notices
    # Unsure: below the calibrated threshold, the model card's for models/best, the same rule's for a variant.
    if choice == "best":
        assert output["unsure_below"] == selection["calibration"]["threshold"]
    else:
        assert 0 < output["unsure_below"] <= 1 and output["calibration"].startswith("calibrated now on the validation")
    for prediction in output["predictions"]:
        assert prediction["unsure"] == (prediction["top"][0]["probability"] < output["unsure_below"])


def test_bad_inputs_get_one_line_each_and_the_rest_are_still_classified(pipeline, test_pngs, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    for index in (0, 1):
        (folder / f"good{index}.png").write_bytes((test_pngs / f"{index:03d}.png").read_bytes())
    (folder / "empty.png").write_bytes(b"")
    (folder / "notes.jpg").write_text("not a picture\n")
    photo = Image.new("RGB", (300, 200), "white")
    photo.paste((40, 40, 40), (100, 20, 200, 180))
    photo.save(tmp_path / "whole.jpg", quality=90)
    data = (tmp_path / "whole.jpg").read_bytes()
    (folder / "cut.jpg").write_bytes(data[: len(data) // 2])
    Image.new("1", (10_000, 10_000)).save(folder / "bomb.png")
    (tmp_path / "nothing").mkdir()

    result = predict(pipeline, folder, tmp_path / "absent.png", tmp_path / "nothing")
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[1].startswith(f"error: {folder}/cut.jpg: damaged or truncated JPEG data (image file is truncated")
    assert lines[:1] + lines[2:] == [
        f"error: {folder}/bomb.png: too many pixels: more than the 89,478,485 Pillow allows (a decompression bomb?)",
        f"error: {folder}/empty.png: empty file (0 bytes)",
        f"error: {folder}/notes.jpg: not an image (PNG, JPEG expected)",
        f"error: {tmp_path}/absent.png: not found",
        f"error: {tmp_path}/nothing: a folder with no PNG or JPEG files in it",
        "error: 6 of 8 inputs could not be classified (above)",
    ]
    lines = result.stdout.splitlines()
    selection = json.loads((pipeline.repo / "models/best/selection.json").read_text())
    assert lines[0].startswith("model: models/best/model.keras (models/best: ")
    assert lines[1] == (f"unsure: a top class below {selection['calibration']['threshold']:.1%} (calibrated on the "
                        "validation split by the select stage)")
    assert lines[2].split() == ["image", "1st", "2nd", "3rd"]
    expected = evaluated_classes(pipeline, selection["variant"])
    assert [line.split()[0] for line in lines[3:]] == [f"{folder}/good0.png", f"{folder}/good1.png"]
    for line, index in zip(lines[3:], (0, 1)):
        assert line.split()[1] == expected[index].split()[0]  # "T-shirt/top", "Ankle" (boot)


# predict as `python -m fmnist.tools.predict ARGS` runs it, with an audit hook that says on standard output when it
# opens the file whose name holds WATCH: where that line falls among the answers shows what was printed before.
OBSERVED_PREDICT = """
import os, runpy, sys
watch = sys.argv[1]
def hook(event, args):
    if event == "open" and isinstance(args[0], str) and watch in args[0]:
        print(f"[opening {watch}]", flush=True)
sys.addaudithook(hook)
sys.argv = ["fmnist.tools.predict", *sys.argv[2:]]
sys.path.insert(0, os.getcwd())
runpy.run_module("fmnist.tools.predict", run_name="__main__", alter_sys=True)
"""


def test_answers_come_as_each_picture_is_read_with_names_printed_safely(pipeline, test_pngs, tmp_path):
    """The answers for the first pictures are out before the last picture is opened; an unreadable one gets its
    line and the rest go on; a name with an escape sequence, or bytes that are not UTF-8, is printed escaped."""
    folder = tmp_path / "stream"
    folder.mkdir()
    (folder / "a.png").write_bytes((test_pngs / "000.png").read_bytes())
    (folder / "b-empty.png").write_bytes(b"")
    (folder / "c\x1b[31mred.png").write_bytes((test_pngs / "001.png").read_bytes())
    (Path(os.fsdecode(bytes(folder) + b"/d-caf\xe9.png"))).write_bytes((test_pngs / "002.png").read_bytes())
    (tmp_path / "observed.py").write_text(OBSERVED_PREDICT)
    env = {**pipeline.env, "PYTHONPATH": str(pipeline.repo)}
    result = subprocess.run([sys.executable, str(tmp_path / "observed.py"), "d-caf", str(folder)], cwd=pipeline.repo,
                            env=env, capture_output=True)
    assert result.returncode == 1
    out = result.stdout.decode("ascii").splitlines()  # escaped: plain ASCII, nothing for the terminal to act on
    named = [line for line in out if folder.name in line or line.startswith("[opening")]
    assert named[0].startswith(f"{folder}/a.png ")
    assert named[1].startswith(f"{folder}/c\\x1b[31mred.png ")
    assert named[2] == "[opening d-caf]"  # the answers above were printed before the last picture was opened
    assert named[3].startswith(f"{folder}/d-caf\\xe9.png ")
    err = result.stderr.decode("ascii").splitlines()
    assert err == [f"error: {folder}/b-empty.png: empty file (0 bytes)",
                   "error: 1 of 4 inputs could not be classified (above)"]


def test_a_missing_model_names_the_command_that_makes_it(pipeline, test_pngs, tmp_path):
    image = test_pngs / "000.png"
    result = predict(pipeline, image, cwd=tmp_path)  # no models/best here
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == ("error: models/best/model.keras: not found; run `dvc repro select` to make it, or "
                             "`dvc pull models/best` to fetch it from the remote\n")
    result = predict(pipeline, "--export-samples", "samples", cwd=tmp_path)  # nor data/raw
    assert result.stderr == ("error: data/raw/t10k-images-idx3-ubyte.gz: not found; run `dvc repro download`, or "
                             "`dvc pull data/raw` to fetch it from the remote\n")
    assert not (tmp_path / "samples").exists()
    # A variant: its evaluation says which file it scored; without that file, the stage that trains it.
    for name in ("params.yaml", "reports/evaluation"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        source = pipeline.repo / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name)
        else:
            (tmp_path / name).write_bytes(source.read_bytes())
    result = predict(pipeline, "--variant", "tiny_stopping", image, cwd=tmp_path)
    assert result.stderr == ("error: models/tiny_stopping/best.keras: not found; run `dvc repro train@tiny_stopping`, "
                             "or `dvc pull models/tiny_stopping` to fetch it from the remote\n")
    result = predict(pipeline, "--variant", "nosuch", image, cwd=tmp_path)
    assert result.stderr == ("error: --variant nosuch: not declared in params.yaml (declared: "
                             f"{', '.join(TINY_VARIANTS)})\n")
    result = predict(pipeline, "--model", tmp_path / "gone.keras", image, cwd=tmp_path)
    assert result.stderr == f"error: {tmp_path}/gone.keras: model file not found\n"
    (tmp_path / "fake.keras").write_text("not a model")
    result = predict(pipeline, "--model", tmp_path / "fake.keras", image, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: {tmp_path}/fake.keras: not a Keras model file (")


def test_export_samples_writes_one_test_image_of_each_class(pipeline, tmp_path):
    result = predict(pipeline, "--export-samples", tmp_path / "samples", check=True)
    assert result.stdout.startswith(f"{tmp_path}/samples: wrote 10 test images as PNG, one of each class")
    test_images, test_labels = dataset.load_raw("test", pipeline.repo / paths.RAW_DIR)
    written = sorted((tmp_path / "samples").iterdir())
    assert len(written) == 10
    for label, path in enumerate(written):
        index = int(path.stem.rsplit("-test", 1)[1])
        assert test_labels[index] == label and index == np.flatnonzero(test_labels == label)[0]
        assert path.name.startswith(f"{label}-")
        assert np.array_equal(np.asarray(Image.open(path)), test_images[index])


# --- the registry: GTO versions, `dvc artifacts get` ---------------------------------------------------

@pytest.mark.longer(1.5, why="two versions registered; four fetched by dvc artifacts get, one from a remote")
def test_a_gto_version_fetches_exactly_its_model_with_dvc_artifacts_get(pipeline, tmp_path):
    copy = copy_pipeline(pipeline, tmp_path / "repo")
    repo, env = copy.repo, {**copy.env, **GIT_IDENTITY}
    best = repo / paths.BEST_DIR / paths.BEST_MODEL_FILE
    first_variant = json.loads((repo / paths.BEST_DIR / paths.SELECTION_FILE).read_text())["variant"]
    first = sha256(best)
    run(["gto", "register", "fashion-classifier", "--version", "v1.0.0"], repo, env)

    # Another choice becomes the next version.
    other = next(name for name in TINY_VARIANTS if name != first_variant)
    edit_params(repo, lambda d: d.update(select={"metric": "val_accuracy_mean", "candidates": [other]}))
    ran = run(["dvc", "repro"], repo, env).stdout
    assert "Running stage 'select'" in ran and "Running stage 'train@" not in ran
    commit_all(repo, f"select {other}")
    second = sha256(best)
    assert second != first
    run(["gto", "register", "fashion-classifier", "--bump-minor"], repo, env)
    run(["gto", "assign", "fashion-classifier", "--version", "v1.0.0", "--stage", "prod"], repo, env)
    shown = json.loads(run(["gto", "show", "fashion-classifier", "--json"], repo, env).stdout)
    assert {version["version"] for version in shown} == {"v1.0.0", "v1.1.0"}

    for args, expected in ((["--rev", "v1.0.0"], first), (["--rev", "v1.1.0"], second), (["--stage", "prod"], first)):
        out = tmp_path / f"fetched-{args[1]}.keras"
        run(["dvc", "artifacts", "get", ".", "fashion-classifier", *args, "-o", str(out)], repo, env)
        assert sha256(out) == expected, args

    # Another machine has no cache: it fetches the version from the DVC remote.
    remote = tmp_path / "remote"
    run(["dvc", "remote", "add", "--local", "-d", "shared", str(remote)], repo, env)
    run(["dvc", "push", "--all-tags"], repo, env)
    shutil.rmtree(repo / ".dvc" / "cache")
    config = tmp_path / "remote.config"
    config.write_text(f"[core]\n    remote = shared\n['remote \"shared\"']\n    url = {remote}\n")
    out = tmp_path / "from-remote.keras"
    run(["dvc", "artifacts", "get", str(repo), "fashion-classifier", "--rev", "v1.0.0", "-o", str(out),
         "--config", str(config)], tmp_path, env)
    assert sha256(out) == first


def test_each_family_of_pictures_is_what_it_makes_alone_whatever_order_the_processes_take():
    """make_pictures runs the families in processes, the costly one first: each family must still be the pictures
    its own seed makes (one process, one family at a time), under its own name, in FAMILIES' order."""
    garments = np.zeros((6, 28, 28), dtype=np.uint8)
    for index, garment in enumerate(garments):
        garment[4 + index % 3:22 + index % 2, 6:20 + index] = 120 + 20 * index  # a light garment on black
    made = robustness.make_pictures(dataset.Split(garments / 255.0, np.arange(6)), 6, seed=3)
    assert list(made.families) == list(robustness.FAMILIES)
    for name, (pictures, kept) in made.families.items():
        alone, alone_kept = robustness._family_pictures(garments, name, 3)
        assert kept == alone_kept and np.array_equal(pictures, alone), name


# --- real data: photo-like pictures keep their class ---------------------------------------------------

@pytest.mark.longer(1.5, why="a model trained on the real 60,000 images, 1,200 pictures made and classified")
@pytest.mark.real_data
def test_photo_like_versions_of_real_test_images_keep_their_predicted_class(real_mirror, tmp_path):
    """Through the command line, as a user runs it: off-white and tinted backdrops, every change at once (the
    assess stage's families), and 28x28 pictures dark on white, each classified like its Fashion-MNIST form."""
    from fmnist.core import backend

    backend.use("tensorflow")
    from fmnist.core import models, robustness

    # A chapter model (Flatten, Dense(100, relu), Adam) trained briefly on the real training images.
    train_images, train_labels = dataset.load_raw("train", real_mirror)
    spec = Variant(hidden=[{"units": 100, "activation": "relu"}], optimizer={"name": "adam"}, epochs=3)
    models.seed_everything(42)
    model = models.compile_model(models.build("relu100", spec), spec, TrainParams())
    model.fit(dataset.scale(train_images), train_labels, epochs=spec.epochs, batch_size=32, verbose=0)
    model.save(tmp_path / "model.keras")

    test_images, _ = dataset.load_raw("test", real_mirror)
    rng = np.random.default_rng(0)
    sample = rng.choice(len(test_images), 300, replace=False)
    makers = {family: lambda image, r, family=family: robustness.photo(image, r, family)
              for family in ("background", "combined", "dark_on_white")}
    for folder in ("form", *makers):
        (tmp_path / folder).mkdir()
    for index in sample:
        images.to_png(test_images[index], tmp_path / "form" / f"{index:05d}.png")
        for folder, make in makers.items():
            make(test_images[index], rng).save(tmp_path / folder / f"{index:05d}.png")

    env = stage_env(PYTHONPATH=str(REPO_ROOT))
    folders = ("form", *makers)
    result = run([sys.executable, "-m", "fmnist.tools.predict", "--json", "--model", str(tmp_path / "model.keras"),
                  *(str(tmp_path / folder) for folder in folders)], tmp_path, env, check=False)
    classes = {folder: {} for folder in folders}
    for prediction in json.loads(result.stdout)["predictions"]:
        picture = Path(prediction["path"])
        classes[picture.parent.name][picture.stem] = prediction["top"][0]["class"]
    agreement = {folder: np.mean([classes[folder].get(stem) == classes["form"][stem] for stem in classes["form"]])
                 for folder in makers}
    print(f"agreement with the 28x28 form, of 300: {agreement}")
    assert len(classes["form"]) == 300
    assert agreement["background"] >= 0.9 and agreement["dark_on_white"] >= 0.9 and agreement["combined"] >= 0.85


def test_the_assessment_is_the_chosen_models_and_a_damaged_model_file_is_named(pipeline, tmp_path):
    """assess measured the file select then copied (same sha256), and its threshold is the card's; a damaged file
    stops the stage with one line naming it, and the previous assessment stays."""
    repo = copy_pipeline(pipeline, tmp_path / "repo").repo
    assessment = json.loads((repo / paths.ASSESSMENT).read_text())
    selection = json.loads((repo / paths.BEST_DIR / paths.SELECTION_FILE).read_text())
    assert (assessment["variant"], assessment["model_sha256"]) == (selection["variant"], selection["model_sha256"])
    assert selection["calibration"] == assessment["calibration"]
    assert [family["family"] for family in assessment["robustness"]["families"]][-1] == "combined"
    before = (repo / paths.ASSESSMENT).read_bytes()
    (repo / assessment["model_file"]).write_bytes(b"not a model")
    result = run([sys.executable, "-m", "stages.assess"], repo, pipeline.env, check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"error: {assessment['model_file']}: not a Keras model file (" in result.stderr
    assert f"run `dvc repro train@{assessment['variant']}`" in result.stderr
    assert (repo / paths.ASSESSMENT).read_bytes() == before


def test_the_variants_alongside_are_measured_and_shown_beside_the_chosen_one(pipeline, tmp_path):
    """params.yaml assess.alongside: each named variant but the chosen one gets the chosen one's measurement, of its
    own scored file; the model card compares them. An undeclared name stops the stage before any work."""
    repo = pipeline.repo
    assessment = json.loads((repo / paths.ASSESSMENT).read_text())
    beside = [entry["variant"] for entry in assessment["alongside"]]
    assert beside == [name for name in TINY_VARIANTS if name != assessment["variant"]] and len(beside) == 2
    card = (repo / paths.MODEL_CARD).read_text()
    assert "### Beside other variants" in card
    header = next(line for line in card.splitlines() if line.startswith(f"| | {assessment['variant']} (this model) |"))
    assert header.split(" | ")[2:] == [*beside[:-1], f"{beside[-1]} |"]
    test_images = len(dataset.load_raw("test", repo / paths.RAW_DIR)[1])  # the tiny pipeline's 100, not 10,000
    accuracy_row = next(line for line in card.splitlines() if line.startswith(f"| test accuracy (all {test_images:,} "))
    for entry in assessment["alongside"]:
        details = json.loads((repo / paths.details_file(entry["variant"])).read_text())
        model_file = repo / "models" / entry["variant"] / details["evaluated_file"]
        assert entry["model_sha256"] == sha256(model_file)
        metrics = json.loads((repo / "reports/metrics" / f"{entry['variant']}.json").read_text())
        assert entry["test_accuracy"] == metrics["test_accuracy"]
        assert f" {metrics['test_accuracy']:.4f} " in accuracy_row
        assert [family["family"] for family in entry["robustness"]["families"]] == list(robustness.FAMILIES)
    copy = copy_pipeline(pipeline, tmp_path / "repo")
    edit_params(copy.repo, lambda document: document["assess"].update(alongside=["nosuch"]))
    result = run([sys.executable, "-m", "stages.assess"], copy.repo, copy.env, check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert ("error: params.yaml assess.alongside: nosuch not declared in `variants` (declared: "
            f"{', '.join(TINY_VARIANTS)})") in result.stderr
