"""Evaluate a trained variant from its files on disk (never the in-memory model of training).

Import only after fmnist.core.backend.use().
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from fmnist.core import models, spread
from fmnist.core.dataset import CLASS_NAMES, Split
from fmnist.plumbing.errors import StageError
from fmnist.plumbing.paths import CHECKPOINT_FILE, MODEL_FILE, REPLICATES_FILE, SUMMARY_FILE, WEIGHTS_FILE
from fmnist.schema.training import Variant


def _retrain(name: str) -> str:
    return f"run `dvc repro train@{name}` to train the variant again"


def _missing_or_corrupt(path: Path, name: str, error: Exception | None = None) -> StageError:
    problem = "not found" if error is None else f"unreadable ({type(error).__name__}: {error})"
    return StageError(f"{path}: {problem}; {_retrain(name)}")


def load_whole_model(path: Path, name: str) -> keras.Model:
    return models.load(path, _retrain(name))


def load_weights_into_rebuilt(path: Path, name: str, spec: Variant) -> keras.Model:
    """The chapter's other restore path: build the model again from its spec, then load_weights."""
    if not path.is_file():
        raise _missing_or_corrupt(path, name)
    model = models.build(name, spec)
    try:
        model.load_weights(path)
    except Exception as error:
        raise _missing_or_corrupt(path, name, error) from None
    return model


def read_summary(path: Path, name: str) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise _missing_or_corrupt(path, name) from None
    except ValueError as error:
        raise _missing_or_corrupt(path, name, error) from None


def read_replicates(model_dir: Path, name: str) -> tuple[list[dict], float]:
    """The other seeds' results written by training and their training seconds; none (and 0) when the
    variant was trained with one seed."""
    path = model_dir / REPLICATES_FILE
    if not path.exists():
        return [], 0.0
    replicated = read_summary(path, name)
    try:
        return [{**entry, "trained": "stacked"} for entry in replicated["per_seed"]], replicated["train_seconds"]
    except (KeyError, TypeError) as error:
        raise _missing_or_corrupt(path, name, error) from None


def predict_classes(model: keras.Model, x: np.ndarray) -> np.ndarray:
    return np.argmax(model.predict(**models.batches(x), verbose=0), axis=1)


@dataclass
class ChapterSeedScores:
    """The chapter seed's files scored (score()): what evaluate() reports of seed 42."""

    summary: dict  # its training summary (summary.json)
    scores: dict  # its entry among the seeds: val/test accuracy and loss, epochs
    restore: dict  # both of the chapter's restore paths, and whether they agree
    per_class: dict[str, float]  # test accuracy per class
    evaluated_file: str
    parameters: int
    test_predictions: np.ndarray
    seconds: float


def score(name: str, spec: Variant, model_dir: Path, val: Split, test: Split) -> ChapterSeedScores:
    """Score the chapter seed's files in model_dir: both restore paths on validation, the evaluated file (the best
    checkpoint where the variant keeps one, else the whole model) on validation and test."""
    models.end_op_determinism()
    started = time.perf_counter()
    summary = read_summary(model_dir / SUMMARY_FILE, name)

    # Both restore paths of the chapter must give the same model: rebuild + load_weights, then
    # predict + argmax; load_model, then evaluate.
    rebuilt = load_weights_into_rebuilt(model_dir / WEIGHTS_FILE, name, spec)
    whole = load_whole_model(model_dir / MODEL_FILE, name)
    rebuilt_val_predictions = predict_classes(rebuilt, val.x)
    whole_val_loss, whole_val_accuracy = whole.evaluate(**models.batches(val.x, val.y), verbose=0)
    rebuilt_correct = int(np.sum(rebuilt_val_predictions == val.y))
    restore = {
        "weights_predict_val_accuracy": rebuilt_correct / len(val.y),
        "load_model_evaluate_val_accuracy": float(whole_val_accuracy),
        # Keras accumulates accuracy in float32, so compare counts of correct images, not the floats.
        "agree": bool(
            np.array_equal(rebuilt_val_predictions, predict_classes(whole, val.x))
            and round(whole_val_accuracy * len(val.y)) == rebuilt_correct
        ),
    }

    # The variant's result: its best checkpoint where it keeps one, else the final model.
    evaluated_file = CHECKPOINT_FILE if spec.callbacks.checkpoint is not None else MODEL_FILE
    if evaluated_file == MODEL_FILE:  # already scored on validation above
        model, val_loss, val_accuracy = whole, whole_val_loss, whole_val_accuracy
    else:
        model = load_whole_model(model_dir / evaluated_file, name)
        val_loss, val_accuracy = model.evaluate(**models.batches(val.x, val.y), verbose=0)
    test_loss, test_accuracy = model.evaluate(**models.batches(test.x, test.y), verbose=0)
    test_predictions = predict_classes(model, test.x)
    per_class = {
        CLASS_NAMES[c]: float(np.mean(test_predictions[test.y == c] == c)) for c in range(len(CLASS_NAMES))
    }
    scores = {
        "seed": summary.get("seed"),
        "val_accuracy": float(val_accuracy),
        "val_loss": float(val_loss),
        "test_accuracy": float(test_accuracy),
        "test_loss": float(test_loss),
        "epochs_run": summary["epochs_run"],
        "stopped_epoch": summary["stopped_epoch"],
        "best_epoch": summary["best_epoch"],
        "trained": "alone",
    }
    return ChapterSeedScores(summary, scores, restore, per_class, evaluated_file, int(model.count_params()),
                             test_predictions, time.perf_counter() - started)


def evaluate(name: str, spec: Variant, model_dir: Path, val: Split, test: Split, *,
             chapter_seed: ChapterSeedScores | None = None) -> tuple[dict, dict, dict, np.ndarray]:
    """Return (metrics, details, timing, test predictions) for the variant saved in model_dir: the chapter seed's
    files scored (score(), unless already: `chapter_seed`) and the other seeds' results from training.

    metrics: the headline numbers `dvc metrics show` tabulates; details: per class, restore checks.
    """
    scored = chapter_seed or score(name, spec, model_dir, val, test)
    replicated, replicates_seconds = read_replicates(model_dir, name)
    # The chapter's seed: these files, this evaluation. The other seeds: their scores from training.
    seed_headline, seed_details = spread.seed_metrics([scored.scores, *replicated])
    metrics = {key: scored.scores[key] for key in ("val_accuracy", "val_loss", "test_accuracy", "test_loss",
                                                   "epochs_run", "stopped_epoch", "best_epoch")}
    metrics.update(seed_headline)
    details = {
        "test_accuracy_per_class": scored.per_class,
        "evaluated_file": scored.evaluated_file,
        "backend": scored.summary["backend"],
        "parameters": scored.parameters,
        "restore": scored.restore,
        "spread": seed_details,
    }
    summary = scored.summary
    timing = {
        "train_seconds": summary["train_seconds"],
        "seconds_per_epoch": round(summary["train_seconds"] / summary["epochs_run"], 3),
        "replicates_train_seconds": replicates_seconds,
        "evaluate_seconds": round(scored.seconds, 3),
    }
    return metrics, details, timing, scored.test_predictions


def confusion_rows(labels: np.ndarray, predictions: np.ndarray) -> str:
    """CSV with one row per test image (actual,predicted class names) for DVC's confusion template."""
    names = np.asarray(CLASS_NAMES)
    lines = ["actual,predicted", *(f"{a},{p}" for a, p in zip(names[labels], names[predictions]))]
    return "\n".join(lines) + "\n"


def summary_line(name: str, *, metrics: dict, details: dict, summary: dict, replicated: dict | None,
                 seconds: float) -> str:
    """What train@<name> did, in one line: the chapter seed's fit and scores, the seed spread, the files."""
    restored = "restores agree" if details["restore"]["agree"] else "RESTORES DISAGREE"
    line = (f"train@{name}: seed {summary['seed']}, {summary['epochs_run']} epochs in "
            f"{summary['train_seconds']:.1f} s, validation {metrics['val_accuracy']:.4f}, "
            f"test {metrics['test_accuracy']:.4f} "
            f"({details['evaluated_file']}, {restored})")
    if replicated:
        line += (f"; {metrics['seeds']} seeds: validation {metrics['val_accuracy_mean']:.4f} "
                 f"± {metrics['val_accuracy_std']:.4f} (others in {replicated['train_seconds']:.1f} s)")
    return line + f"; wrote models/{name}, reports/*/{name}.* in {seconds:.0f} s on {summary['backend']}"
