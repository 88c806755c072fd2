"""Stages select, plot and report on generated results (no training): the chosen model and its card, figures,
report rows, DVC plots, bad input."""
from __future__ import annotations

import hashlib
import json
import re
import shutil

import numpy as np
import pytest
import yaml
from PIL import Image

from fmnist.core import dataset, figures, spread
from fmnist.core.dataset import CLASS_NAMES
from fmnist.core.comparison import Tolerances
from fmnist.plumbing import paths
from fmnist.schema.baseline import BaselineParams
from fmnist.schema.reporting import ChapterParams, SelectParams
from fmnist.schema.training import VariantsParams
from tests.conftest import write_fake_dataset
from tests.helpers import copy_project, edit_params, init_git_dvc_repo, run, run_stage

DPI = 60
VARIANTS = {
    "plain": {"description": "one Dense softmax layer", "hidden": [], "optimizer": {"name": "rmsprop"}, "epochs": 3},
    "fast": {"description": "relu with SGD(lr 0.1)", "hidden": [{"units": 8, "activation": "relu"}],
             "optimizer": {"name": "sgd", "learning_rate": 0.1}, "epochs": 3},
    "watched": {"description": "dropout, early stopping",
                "hidden": [{"units": 8, "activation": "relu", "dropout": 0.3}],
                "optimizer": {"name": "adam"}, "epochs": 6, "validation": True,
                "callbacks": {"checkpoint": {"monitor": "val_loss"}, "early_stopping": {"patience": 2}}},
}
CHAPTER = {"baseline": {"metric": "cv_accuracy", "value": 0.8196}, "watched": {"metric": "val_accuracy", "value": 0.88}}
SEEDS = 5


def write_json(path, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value))


def write_history(repo, name, series, values):
    path = repo / paths.HISTORY_DIR / name / "plots/metrics" / f"{series}.tsv"
    path.parent.mkdir(parents=True, exist_ok=True)
    column = series.split("/")[1]
    path.write_text(f"step\t{column}\n" + "".join(f"{step}\t{value}\n" for step, value in enumerate(values)))


def write_fake_results(repo, seed=0):
    """What baseline/train/evaluate would write, with made-up numbers; returns {name: metrics}."""
    rng = np.random.default_rng(seed)
    written = {}
    for name, spec in VARIANTS.items():
        epochs_run = 5 if name == "watched" else spec["epochs"]
        losses = np.sort(rng.uniform(0.3, 0.8, epochs_run))[::-1]
        write_history(repo, name, "train/loss", losses)
        write_history(repo, name, "train/accuracy", 1 - losses / 2)
        if spec.get("validation"):
            write_history(repo, name, "eval/loss", losses + 0.05)
            write_history(repo, name, "eval/accuracy", 0.95 - losses / 2)
        center = rng.uniform(0.8, 0.9)
        per_seed = [{"seed": 42 + i, "val_accuracy": float(center + rng.normal(0, 0.005)),
                     "test_accuracy": float(center - 0.01 + rng.normal(0, 0.005))} for i in range(SEEDS)]
        headline, spread_details = spread.seed_metrics(per_seed)
        metrics = {"val_accuracy": per_seed[0]["val_accuracy"], "val_loss": 0.4,
                   "test_accuracy": per_seed[0]["test_accuracy"], "test_loss": 0.45, "epochs_run": epochs_run,
                   "stopped_epoch": 5 if name == "watched" else None, "best_epoch": 3 if name == "watched" else None,
                   **headline}
        scored = "best.keras" if spec.get("callbacks", {}).get("checkpoint") else "model.keras"
        details = {"test_accuracy_per_class": {c: round(float(rng.uniform(0.5, 1)), 3) for c in CLASS_NAMES},
                   "evaluated_file": scored, "backend": "tensorflow", "parameters": 100,
                   "restore": {"agree": True}, "spread": spread_details}
        write_json(repo / paths.metrics_file(name), metrics)
        write_json(repo / paths.details_file(name), details)
        # Stand-ins for the model files (select copies bytes; it never loads a model).
        for file_name in {"model.keras", scored}:
            (repo / paths.MODELS_DIR / name).mkdir(parents=True, exist_ok=True)
            (repo / paths.MODELS_DIR / name / file_name).write_bytes(f"{name}/{file_name}".encode() + rng.bytes(64))
        write_json(repo / paths.timing_file(name), {"train_seconds": round(float(rng.uniform(1, 9)), 3),
                                                    "replicates_train_seconds": round(float(rng.uniform(5, 20)), 3)})
        actual = np.arange(200) % 10
        predicted = np.where(rng.random(200) < 0.8, actual, rng.integers(0, 10, 200))
        rows = "".join(f"{CLASS_NAMES[a]},{CLASS_NAMES[p]}\n" for a, p in zip(actual, predicted))
        (repo / paths.CONFUSION_DIR).mkdir(parents=True, exist_ok=True)
        (repo / paths.CONFUSION_DIR / f"{name}.csv").write_text("actual,predicted\n" + rows)
        written[name] = metrics
    folds = [0.8150, 0.8180, 0.8194, 0.8210, 0.8236]
    baseline = {"cv_accuracy": float(np.mean(folds)), "cv_accuracy_std": float(np.std(folds, ddof=1)), "cv_folds": 5,
                "val_accuracy": 0.834, "test_accuracy": 0.8249}
    write_json(repo / paths.metrics_file("baseline"), baseline)
    write_json(repo / paths.details_file("baseline"), {
        "cv_fold_accuracy": {f"fold_{i + 1}": v for i, v in enumerate(folds)}, "converged": False})
    write_json(repo / paths.timing_file("baseline"), {"train_fit_seconds": 3.4})
    written["baseline"] = baseline
    return written


def write_fake_assessment(repo) -> str:
    """What the assess stage would write for the variant select picks under the repo's params now, with made-up
    numbers and the stand-in file's sha256; returns that variant."""
    import hashlib
    import os

    from fmnist.core import results
    from fmnist.plumbing import params

    here = os.getcwd()
    os.chdir(repo)
    try:
        rule = params.load(SelectParams)
        loaded = {name: results.load_result(name) for name in params.load(VariantsParams).root}
        best = results.best_variant(loaded, rule)
        source = results.scored_model(best, loaded[best])
        sha256 = hashlib.sha256(source.read_bytes()).hexdigest()
    finally:
        os.chdir(here)
    bins = [{"low": b / 10, "high": (b + 1) / 10, "count": 0 if b < 5 else 10 * b, "confidence": None if b < 5 else
             b / 10 + 0.05, "accuracy": None if b < 5 else b / 10} for b in range(10)]
    family = {"what": "made up", "accuracy": 0.8, "accuracy_interval": [0.75, 0.85], "agreement": 0.9,
              "agreement_interval": [0.86, 0.93], "unsure": 0.1, "refused": 1}
    write_json(repo / paths.ASSESSMENT, {
        "variant": best, "model_file": source.as_posix(), "model_sha256": sha256,
        "calibration": {"threshold": 0.7, "target_accuracy": 0.95, "coverage": 0.85, "accuracy_when_sure": 0.951,
                        "expected_calibration_error": 0.02, "bins": bins, "validation_images": 12},
        "robustness": {"images": 20, "seed": 0, "originals": {"accuracy": 0.85, "accuracy_interval": [0.8, 0.9]},
                       "families": [{"family": "clean", **family},
                                    {"family": "combined", **family, "agreement": 0.7}]}})
    return best


@pytest.fixture(scope="module")
def results_repo(tmp_path_factory):
    """A project copy with generated raw data and results, after the select, plot and report stages ran."""
    repo = copy_project(tmp_path_factory.mktemp("plot") / "repo")
    write_fake_dataset(repo / paths.RAW_DIR, n_train=60, n_test=20)
    edit_params(repo, lambda d: d.update(
        variants=VARIANTS, chapter=CHAPTER,
        plot={"sample_images": 10, "optimizer_comparison": ["plain", "fast"], "dpi": DPI}))
    metrics = write_fake_results(repo)
    write_fake_assessment(repo)
    for name in ("select", "plot", "report"):
        result = run_stage(name, repo)
        assert result.returncode == 0, result.stderr
    return repo, metrics


def copy_with_results(source, tmp_path):
    repo = copy_project(tmp_path / "repo")
    for folder in ("data", "reports", "models"):
        shutil.copytree(source / folder, repo / folder, dirs_exist_ok=True)
    shutil.copy2(source / "params.yaml", repo / "params.yaml")
    return repo


def png(path):
    with Image.open(path) as image:
        assert image.format == "PNG"
        return np.asarray(image.convert("L"))


@pytest.mark.parametrize("file_name, kind", [
    (paths.SAMPLES_FIGURE, "samples"),
    (paths.curves_figure("watched"), "curves"),
    (paths.OPTIMIZERS_FIGURE, "optimizers"),
    (paths.ACCURACY_FIGURE, "accuracy"),
    (paths.CONFUSION_FIGURE, "confusion"),
])
def test_each_figure_is_a_png_of_its_size_and_not_blank(results_repo, file_name, kind):
    repo, _ = results_repo
    pixels = png(repo / paths.FIGURES_DIR / file_name)
    width, height = (round(inches * DPI) for inches in figures.FIGURE_SIZES[kind])
    assert pixels.shape == (height, width)
    # Not blank: plenty of dark (ink) and light (paper) pixels and many grey levels.
    assert (pixels < 100).mean() > 0.002 and (pixels > 200).mean() > 0.3
    assert len(np.unique(pixels)) > 20


def test_figures_are_exactly_the_expected_set(results_repo):
    repo, _ = results_repo
    # Curves only for the variant fitted with validation; nothing stale or temporary left behind.
    assert sorted(p.name for p in (repo / paths.FIGURES_DIR).iterdir()) == sorted([
        paths.SAMPLES_FIGURE, paths.curves_figure("watched"), paths.OPTIMIZERS_FIGURE,
        paths.ACCURACY_FIGURE, paths.CONFUSION_FIGURE])


def test_sample_figure_titles_each_image_with_its_class(results_repo):
    repo, _ = results_repo
    images, labels = dataset.load_raw("train", repo / paths.RAW_DIR)
    figure = figures.sample_images(images[:10], labels[:10])
    assert [ax.get_title() for ax in figure.axes] == [CLASS_NAMES[label] for label in labels[:10]]
    np.testing.assert_array_equal(figure.axes[3].images[0].get_array(), images[3])


def test_curve_data_has_one_file_per_variant_with_the_history(results_repo):
    repo, _ = results_repo
    curves = repo / paths.CURVES_DIR
    assert sorted(p.name for p in (curves / "train").iterdir()) == ["fast.csv", "plain.csv"]
    assert sorted(p.name for p in (curves / "train_val").iterdir()) == ["watched.csv"]
    lines = (curves / "train_val/watched.csv").read_text().splitlines()
    assert lines[0] == "epoch,loss,accuracy,val_loss,val_accuracy" and len(lines) == 6
    first_loss = (repo / paths.HISTORY_DIR / "watched/plots/metrics/train/loss.tsv").read_text().splitlines()[1]
    assert lines[1].split(",")[:2] == ["1", first_loss.split("\t")[1]]


def report_table(repo, heading: str) -> dict[str, list[str]]:
    """The first table after `heading`: first cell (bold stripped) -> the row's cells."""
    text = (repo / paths.SUMMARY_REPORT).read_text()
    table = text.split(heading, 1)[1].split("\n\n| ", 1)[1].split("\n\n", 1)[0]
    rows = table.splitlines()[2:]  # without its header and rule
    return {cells[0].strip("*"): cells for cells in ([c.strip() for c in row.strip("|").split("|")] for row in rows)}


def mean_std(metrics, key):
    std = metrics.get(f"{key}_std")
    return f"{metrics[f'{key}_mean']:.4f} ± {std:.4f}"


def test_report_has_one_row_per_variant_with_its_mean_spread_and_seed_42(results_repo):
    repo, metrics = results_repo
    rows = report_table(repo, "## Results")
    assert set(rows) == set(VARIANTS) | {"baseline"}
    for name in VARIANTS:
        values = metrics[name]
        assert rows[name][3] == mean_std(values, "val_accuracy") and rows[name][4] == f"{values['val_accuracy']:.4f}"
        assert rows[name][5] == mean_std(values, "test_accuracy") and rows[name][6] == f"{values['test_accuracy']:.4f}"
    # The baseline is one fit: its validation and test accuracy have no spread, and the mean ± σ columns say so.
    assert rows["baseline"][3:7] == ["0.8340 (one fit)", "0.8340", "0.8249 (one fit)", "0.8249"]
    # Sorted by mean validation accuracy, best first.
    mean = {n: metrics[n].get("val_accuracy_mean", metrics[n]["val_accuracy"]) for n in metrics}
    assert list(rows) == sorted(metrics, key=lambda n: -mean[n])
    assert rows["watched"][2] == "5 (stopped at 5, best 3)"
    timing = json.loads((repo / paths.timing_file("fast")).read_text())
    assert rows["fast"][7] == f"{timing['train_seconds']:.1f} s + {timing['replicates_train_seconds']:.1f} s"
    assert "SGD(learning_rate=0.1)" in rows["fast"][1] and "EarlyStopping(val_loss, patience=2" in rows["watched"][1]


def test_report_places_each_chapter_number_in_our_seed_spread(results_repo):
    repo, metrics = results_repo
    rows = report_table(repo, "## The chapter's numbers against our seed spread")
    assert set(rows) == set(CHAPTER)
    watched = json.loads((repo / paths.details_file("watched")).read_text())["spread"]["val_accuracy"]
    low, high = watched["min"], watched["max"]
    assert rows["watched"][1:5] == ["validation", "0.8800", f"{metrics['watched']['val_accuracy']:.4f}",
                                    f"{mean_std(metrics['watched'], 'val_accuracy')} ({SEEDS})"]
    assert rows["watched"][5] == f"{low:.4f}–{high:.4f}"
    assert rows["watched"][6] == ("yes" if low <= 0.88 <= high else "no")
    assert rows["watched"][7] == f"{(0.88 - watched['mean']) / watched['std']:+.1f}".replace("-", "−")
    # The baseline's only replicates are its CV folds: mean ± σ and the range across them.
    baseline = metrics["baseline"]
    assert rows["baseline"][1] == "5-fold CV (σ, range: folds)"
    assert rows["baseline"][4] == f"{baseline['cv_accuracy']:.4f} ± {baseline['cv_accuracy_std']:.4f} (5)"
    assert rows["baseline"][5:7] == ["0.8150–0.8236", "yes"]


def test_report_embeds_every_figure_and_names_the_data(results_repo):
    repo, _ = results_repo
    text = (repo / paths.SUMMARY_REPORT).read_text()
    linked = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert sorted(linked) == sorted(f"figures/{p.name}" for p in (repo / paths.FIGURES_DIR).iterdir())
    for digest in yaml.safe_load((repo / "params.yaml").read_text())["download"]["sha256"].values():
        assert f"sha256 `{digest}`" in text
    assert "Keras backend: tensorflow" in text and "keras 3." in text


def test_plot_stage_is_deterministic(results_repo):
    repo, _ = results_repo
    before = {p.name: p.read_bytes() for p in (repo / paths.FIGURES_DIR).iterdir()}
    assert run_stage("plot", repo).returncode == 0
    assert {p.name: p.read_bytes() for p in (repo / paths.FIGURES_DIR).iterdir()} == before


@pytest.mark.parametrize("stage", ["plot", "report"])
def test_a_variant_without_metrics_names_the_stage_to_run(results_repo, tmp_path, stage):
    repo = copy_with_results(results_repo[0], tmp_path)
    (repo / paths.metrics_file("fast")).unlink()
    before = {p: p.read_bytes() for p in (repo / "reports").rglob("*") if p.is_file()}
    result = run_stage(stage, repo)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert ("error: reports/metrics/fast.json: not found; variant 'fast' (declared in params.yaml) has no "
            "results yet: run `dvc repro train@fast`") in result.stderr
    # Nothing half-written: every existing output is as it was.
    assert {p: p.read_bytes() for p in (repo / "reports").rglob("*") if p.is_file()} == before


def test_a_variant_without_history_names_the_train_stage(results_repo, tmp_path):
    repo = copy_with_results(results_repo[0], tmp_path)
    (repo / paths.HISTORY_DIR / "watched/plots/metrics/eval/loss.tsv").unlink()
    result = run_stage("plot", repo)
    assert result.returncode == 1
    assert ("error: reports/train/watched/plots/metrics/eval/loss.tsv: not found; variant 'watched' "
            "(declared in params.yaml) has no results yet: run `dvc repro train@watched`") in result.stderr


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["plot"].update(optimizer_comparison=["plain", "nosuch"]),
     "params.yaml: plot.optimizer_comparison names 'nosuch', which is not declared (declared: plain, fast, watched)"),
    (lambda d: d["chapter"].update(gone={"metric": "val_accuracy", "value": 0.8}),
     "params.yaml: chapter names 'gone', which is not declared (declared: plain, fast, watched, baseline)"),
    (lambda d: d["chapter"].update(plain={"metric": "cv_accuracy", "value": 0.8}),
     "params.yaml: chapter.plain.metric = 'cv_accuracy' is not allowed: a Keras variant reports val_accuracy or "
     "test_accuracy"),
    (lambda d: d["plot"].update(dpi=5), "'plot.dpi' = 5 is not allowed"),
])
def test_bad_plot_params_are_named(results_repo, tmp_path, edit, message):
    repo = copy_with_results(results_repo[0], tmp_path)
    edit_params(repo, edit)
    result = run_stage("plot", repo)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert message in result.stderr


def test_dvc_plots_show_renders_every_declared_plot(results_repo):
    repo, _ = results_repo
    init_git_dvc_repo(repo)
    shown = json.loads(run(["dvc", "plots", "show", "--json"], repo).stdout)
    assert not shown.get("errors"), shown.get("errors")
    expected = {f"reports/curves/train/{n}.csv" for n in ("plain", "fast")} | {"reports/curves/train_val/watched.csv"}
    expected |= {f"reports/confusion/{n}.csv" for n in VARIANTS}
    expected |= {f"reports/figures/{p.name}" for p in (repo / paths.FIGURES_DIR).iterdir()}
    assert set(shown["data"]) == expected
    curves = shown["data"]["reports/curves/train_val/watched.csv"][0]["content"]
    assert {row["field"] for row in curves["data"]["values"]} == {"loss", "val_loss", "accuracy", "val_accuracy"}
    run(["dvc", "plots", "show", "-o", "html"], repo)
    page = (repo / "html/index.html").read_text()
    for plot_id in expected:
        assert plot_id in page


def test_damaged_results_are_named_with_the_stage_to_rerun(results_repo, tmp_path):
    repo = copy_with_results(results_repo[0], tmp_path)
    (repo / paths.metrics_file("plain")).write_text('{"val_accuracy": 0.8')  # cut short
    result = run_stage("report", repo)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "error: reports/metrics/plain.json: not valid JSON" in result.stderr
    assert "variant 'plain' (declared in params.yaml) has damaged results: run `dvc repro train@plain`" in result.stderr


def test_accuracy_figure_draws_means_with_their_spread_and_seed_42(results_repo, monkeypatch):
    repo, metrics = results_repo
    monkeypatch.chdir(repo)
    from fmnist.core import results
    from fmnist.plumbing import params

    variants = params.load(VariantsParams).root
    loaded = {name: results.load_result(name) for name in [results.BASELINE, *variants]}
    table = results.comparison_table(loaded, variants, params.load(ChapterParams), params.load(BaselineParams))
    figure = figures.accuracy_comparison(table, 42, 5)
    ax = figure.axes[0]
    bars = [c for c in ax.containers if type(c).__name__ == "BarContainer"]
    rows = table.iloc[::-1].reset_index(drop=True)  # drawn bottom-up
    for container, split in zip(bars, ("val", "test")):
        assert [bar.get_width() for bar in container] == pytest.approx(list(rows[f"{split}_accuracy_mean"]))
        # Error bars: ±1 σ around each mean (none for the baseline's single fit).
        segments = container.errorbar.lines[2][0].get_segments()
        half_widths = [abs(segment[1][0] - segment[0][0]) / 2 for segment in segments]
        assert half_widths == pytest.approx(list(rows[f"{split}_accuracy_std"].astype(float).fillna(0.0)))
    # Seed 42's own values are marked on the bars.
    marks = [c for c in ax.collections if c.get_label() == "seed 42 (the chapter's seed)"][0]
    assert sorted(marks.get_offsets()[:, 0]) == pytest.approx(sorted(rows["val_accuracy"]))
    # The labels say what params and data say: another seed and fold count, other labels.
    labels = [c.get_label() for c in figures.accuracy_comparison(table, 7, 3).axes[0].collections]
    assert "seed 7 (the chapter's seed)" in labels and "the chapter's value (baseline: 3-fold CV)" in labels


def test_labels_come_from_params_and_data_not_literals(results_repo, tmp_path):
    repo, _ = results_repo
    summary, card = (repo / paths.SUMMARY_REPORT).read_text(), (repo / paths.MODEL_CARD).read_text()
    # write_fake_dataset's 60 training and 20 test images, split 0.2: 48 / 12.
    assert "of the 60 training images; test: the 20 test images" in summary
    assert "Training: 60 images" in card and "into 48 for training and 12 for validation" in card
    assert "Test: the 20 test images" in card and "Fashion-MNIST (© 2017 Zalando SE, MIT license): 80 " in card
    repo = copy_with_results(results_repo[0], tmp_path)
    edit_params(repo, lambda d: d["train"].update(seed=7))
    for name in ("select", "plot", "report"):
        assert run_stage(name, repo).returncode == 0
    summary, card = (repo / paths.SUMMARY_REPORT).read_text(), (repo / paths.MODEL_CARD).read_text()
    assert "| epochs (seed 7) " in summary, summary
    assert "the chapter's seed 7 first" in summary and re.search(r"\| +ours, seed 7 \|", summary)
    assert "| seed 7 (this file) " in card
    assert "seed 42" not in summary and "seed-42" not in summary and "seed 42" not in card


@pytest.mark.parametrize("k, floor, false_alarm, verdict", [
    (0.1, 0.0, 0.5, None),                                              # loose: whatever the spread says
    (10.0, 0.5, 0.05, ", not told apart from seed noise; tolerance "),  # a floor of 0.5 tells no pair apart
])
def test_select_and_report_judge_by_the_gates_params(results_repo, tmp_path, k, floor, false_alarm, verdict):
    repo = copy_with_results(results_repo[0], tmp_path)
    edit_params(repo, lambda d: d["gates"].update(k=k, floor=floor, false_alarm=false_alarm))
    for name in ("select", "report"):
        assert run_stage(name, repo).returncode == 0
    card, summary = (repo / paths.MODEL_CARD).read_text(), (repo / paths.SUMMARY_REPORT).read_text()
    rule = Tolerances(k, floor, false_alarm=false_alarm).describe()
    assert f"held to {false_alarm:.0%} by Holm's method" in rule
    runners_up = [line for line in card.splitlines() if line.startswith("- ") and " behind, " in line]
    assert runners_up and all(line.endswith(f", {rule}") for line in runners_up)
    if verdict:
        assert all(verdict in line for line in runners_up)
        assert f"Not told apart from it by the seed spread ({rule}): " in summary
    else:
        assert (f"Not told apart from it by the seed spread ({rule}): " in summary
                or f"by more than the spread allows ({rule})." in summary)


# --- select: models/best and the model card -----------------------------------------------------------

def selected(repo) -> dict:
    return json.loads((repo / paths.BEST_DIR / paths.SELECTION_FILE).read_text())


def test_select_copies_the_scored_file_of_the_best_mean_validation_accuracy(results_repo):
    repo, metrics = results_repo
    best = max(VARIANTS, key=lambda name: metrics[name]["val_accuracy_mean"])
    record = selected(repo)
    scored = json.loads((repo / paths.details_file(best)).read_text())["evaluated_file"]
    copied = (repo / paths.BEST_DIR / paths.BEST_MODEL_FILE).read_bytes()
    assert record["variant"] == best
    assert copied == (repo / paths.MODELS_DIR / best / scored).read_bytes()
    assert record["source"] == f"models/{best}/{scored}"
    assert record["model_sha256"] == hashlib.sha256(copied).hexdigest()
    assert record["rule"]["candidates"] == {name: metrics[name]["val_accuracy_mean"] for name in VARIANTS}
    assert record["metrics"] == metrics[best]
    assert record["data"]["sha256"] == yaml.safe_load((repo / "params.yaml").read_text())["download"]["sha256"]
    assert record["libraries"]["keras"].startswith("3.")


@pytest.mark.parametrize("rule, expected", [
    ({"metric": "val_accuracy", "candidates": []}, lambda m: max(VARIANTS, key=lambda n: m[n]["val_accuracy"])),
    ({"metric": "val_accuracy_mean", "candidates": ["plain", "watched"]},
     lambda m: max(["plain", "watched"], key=lambda n: m[n]["val_accuracy_mean"])),
    ({"metric": "val_loss", "candidates": ["watched", "fast"]}, lambda m: "fast"),  # a tie: the first declared
    ({"metric": "val_accuracy_mean", "candidates": ["watched"]}, lambda m: "watched"),  # scored on its checkpoint
])
def test_select_follows_the_rule_in_params(results_repo, tmp_path, rule, expected):
    repo = copy_with_results(results_repo[0], tmp_path)
    edit_params(repo, lambda d: d.update(select=rule))
    write_fake_assessment(repo)  # the assess stage runs before select, for the variant the rule picks
    result = run_stage("select", repo)
    assert result.returncode == 0, result.stderr
    best = expected(results_repo[1])
    assert selected(repo)["variant"] == best
    assert f"select: {best} (" in result.stdout
    assert set(selected(repo)["rule"]["candidates"]) == set(rule["candidates"] or VARIANTS)
    scored = "best.keras" if best == "watched" else "model.keras"
    best_file = repo / paths.BEST_DIR / paths.BEST_MODEL_FILE
    assert best_file.read_bytes() == (repo / "models" / best / scored).read_bytes()


def test_model_card_gives_classes_hardest_first_and_the_commonest_mistakes(results_repo):
    repo, _ = results_repo
    best = selected(repo)["variant"]
    card = (repo / paths.MODEL_CARD).read_text()
    per_class = json.loads((repo / paths.details_file(best)).read_text())["test_accuracy_per_class"]
    rows = re.findall(r"^\| ([A-Za-z/ -]+?) +\| +([0-9.]+) \|$", card, flags=re.M)
    assert [name for name, _ in rows] == sorted(per_class, key=per_class.get)
    assert [float(value) for _, value in rows] == sorted(per_class.values())
    # The first mistake listed is the most frequent off-diagonal cell of the confusion data.
    import pandas as pd
    confusion = pd.read_csv(repo / paths.CONFUSION_DIR / f"{best}.csv")
    wrong = confusion[confusion["actual"] != confusion["predicted"]].value_counts()
    (actual, predicted), count = wrong.index[0], wrong.iloc[0]
    assert f"- {actual} taken for {predicted}: " in card and f"({count})" in card
    assert f"# Model card: fashion-classifier ({best})" in card
    for section in ("Intended use", "Data", "Architecture and training", "How well it does",
                    "Input it expects", "Known limits", "Reproduce it"):
        assert f"\n## {section}\n" in card


def test_report_links_the_model_card(results_repo):
    repo, _ = results_repo
    text = (repo / paths.SUMMARY_REPORT).read_text()
    assert "[model card](model_card.md)" in text
    assert f"## The best variant: {selected(repo)['variant']}" in text


def test_select_without_the_model_file_names_the_commands_that_make_it(results_repo, tmp_path):
    repo = copy_with_results(results_repo[0], tmp_path)
    best = selected(repo)["variant"]
    scored = json.loads((repo / paths.details_file(best)).read_text())["evaluated_file"]
    (repo / paths.MODELS_DIR / best / scored).unlink()
    before = {p: p.read_bytes() for p in [*(repo / "models/best").iterdir(), repo / paths.MODEL_CARD]}
    result = run_stage("select", repo)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert (f"error: models/{best}/{scored}: not found; fetch it with `dvc pull models/{best}` or train it with "
            f"`dvc repro train@{best}`") in result.stderr
    assert {p: p.read_bytes() for p in before} == before


def test_select_refuses_undeclared_candidates_and_report_needs_the_card(results_repo, tmp_path):
    repo = copy_with_results(results_repo[0], tmp_path)
    edit_params(repo, lambda d: d.update(select={"metric": "val_accuracy_mean", "candidates": ["plain", "nosuch"]}))
    result = run_stage("select", repo)
    assert result.returncode == 1
    assert ("error: params.yaml: select.candidates names 'nosuch', which is not declared "
            "(declared: plain, fast, watched)") in result.stderr
    (repo / paths.MODEL_CARD).unlink()
    edit_params(repo, lambda d: d.update(select={"metric": "val_accuracy_mean", "candidates": []}))
    result = run_stage("report", repo)
    assert result.returncode == 1
    assert "error: reports/model_card.md: not found; run `dvc repro select`" in result.stderr


def test_select_refuses_an_assessment_of_another_model(results_repo, tmp_path):
    repo = copy_with_results(results_repo[0], tmp_path)
    best = selected(repo)["variant"]
    assessment = json.loads((repo / paths.ASSESSMENT).read_text())
    other = next(name for name in VARIANTS if name != best)
    write_json(repo / paths.ASSESSMENT, {**assessment, "variant": other})
    result = run_stage("select", repo)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert (f"error: reports/assessment.json: assesses '{other}', not the chosen '{best}' as it is now; run "
            "`dvc repro assess`") in result.stderr
    write_json(repo / paths.ASSESSMENT, {**assessment, "model_sha256": "0" * 64})  # the right name, older bytes
    assert run_stage("select", repo).returncode == 1


def test_model_card_shows_the_assessment(results_repo):
    repo, _ = results_repo
    card = (repo / paths.MODEL_CARD).read_text()
    assessment = json.loads((repo / paths.ASSESSMENT).read_text())
    assert "unsure** below confidence 0.700" in card and "expected calibration error 0.020" in card
    assert "| 0.5–0.6 " in card and "| 0.4–0.5 " not in card  # the reliability table's non-empty bins only
    assert "| combined | made up | 0.800 (0.750–0.850) | 0.700 (0.860–0.930) | 10.0% | 1 |" in card
    assert selected(repo)["calibration"] == assessment["calibration"]  # predict reads it from models/best
