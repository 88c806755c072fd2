"""Read what train/evaluate/baseline wrote, for the plot and report stages. Nothing here recomputes a
metric: every number comes from the files, and a declared variant whose file is missing is an error
that names the stage to run, never a silently shorter chart or table.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fmnist.core import choice, spread
from fmnist.core.dataset import CLASS_NAMES
from fmnist.plumbing import paths
from fmnist.plumbing.errors import StageError
from fmnist.plumbing.paths import BASELINE
from fmnist.schema.baseline import BaselineParams
from fmnist.schema.reporting import ChapterParams, SelectParams
from fmnist.schema.training import Variant

# dvclive's folders for Keras's `loss`/`accuracy` (train) and `val_loss`/`val_accuracy` (eval).
HISTORY_SERIES = {"loss": "train/loss", "accuracy": "train/accuracy",
                  "val_loss": "eval/loss", "val_accuracy": "eval/accuracy"}


def _missing(path: Path, name: str, problem: str = "not found") -> StageError:
    what = "the baseline" if name == BASELINE else f"variant '{name}' (declared in params.yaml)"
    state = "has no results yet" if problem == "not found" else "has damaged results"
    return StageError(f"{path}: {problem}; {what} {state}: run `dvc repro {paths.stage_for(name)}`")


def read_json(path: Path, name: str) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise _missing(path, name) from None
    except ValueError as error:
        raise _missing(path, name, f"not valid JSON ({error})") from None


@dataclass(frozen=True)
class Result:
    """Everything the stages wrote about one variant (or the baseline)."""

    name: str
    metrics: dict  # reports/metrics/<name>.json
    details: dict  # reports/evaluation/<name>.json
    timing: dict  # reports/timing/<name>.json


def scored_model(name: str, result: Result, models_dir: Path = paths.MODELS_DIR) -> Path:
    """The file train@<name> scored (its best checkpoint where it keeps one), as reports/evaluation records."""
    path = models_dir / name / result.details["evaluated_file"]
    if not path.is_file():
        raise StageError(f"{path}: not found; fetch it with `dvc pull {models_dir / name}` "
                         f"or train it with `dvc repro train@{name}`")
    return path


def load_result(name: str) -> Result:
    return Result(
        name,
        read_json(paths.metrics_file(name), name),
        read_json(paths.details_file(name), name),
        read_json(paths.timing_file(name), name),
    )


def load_history(name: str, spec: Variant) -> pd.DataFrame:
    """Per-epoch history from dvclive's TSVs: epoch (1-based), loss, accuracy (+ val_loss, val_accuracy)."""
    wanted = [s for s in HISTORY_SERIES if spec.validation or not s.startswith("val_")]
    columns = {}
    for series in wanted:
        path = paths.HISTORY_DIR / name / "plots" / "metrics" / f"{HISTORY_SERIES[series]}.tsv"
        try:
            table = pd.read_csv(path, sep="\t")
        except FileNotFoundError:
            raise _missing(path, name) from None
        except ValueError as error:  # pandas' ParserError and EmptyDataError are ValueErrors
            raise _missing(path, name, f"unreadable ({error})") from None
        value_column = path.stem  # dvclive names the value column after the file: loss / accuracy
        if list(table.columns) != ["step", value_column]:
            raise _missing(path, name, f"expected columns step, {value_column}, found {list(table.columns)}")
        columns[series] = table[value_column].to_numpy()
    lengths = {len(values) for values in columns.values()}
    if len(lengths) != 1 or 0 in lengths:
        raise _missing(paths.HISTORY_DIR / name, name, "history series of different or zero length")
    history = pd.DataFrame(columns)
    history.insert(0, "epoch", np.arange(1, len(history) + 1))
    return history


def test_predictions(name: str) -> tuple[np.ndarray, np.ndarray]:
    """(actual, predicted) class indices of every test image, in the test split's order, from the CSV train@<variant>
    writes after evaluating."""
    path = paths.CONFUSION_DIR / f"{name}.csv"
    try:
        rows = pd.read_csv(path, dtype=str)
    except FileNotFoundError:
        raise _missing(path, name) from None
    except ValueError as error:  # pandas' ParserError and EmptyDataError are ValueErrors
        raise _missing(path, name, f"unreadable ({error})") from None
    index = {class_name: i for i, class_name in enumerate(CLASS_NAMES)}
    try:
        actual, predicted = rows["actual"].map(index), rows["predicted"].map(index)
    except KeyError:
        raise _missing(path, name, "expected columns actual,predicted") from None
    if actual.isna().any() or predicted.isna().any():
        raise _missing(path, name, "holds a class name that is not one of Fashion-MNIST's ten")
    return actual.to_numpy(int), predicted.to_numpy(int)


def confusion_counts(name: str) -> np.ndarray:
    """10 x 10 counts (row: actual class, column: predicted) of train@<variant>'s test predictions."""
    actual, predicted = test_predictions(name)
    counts = np.zeros((len(CLASS_NAMES), len(CLASS_NAMES)), dtype=np.int64)
    np.add.at(counts, (actual, predicted), 1)
    return counts


PREDICTIONS_HEADER = "actual,predicted"


def predictions_csv(actual: np.ndarray, predicted: np.ndarray) -> str:
    """reports/best_predictions.csv: `actual,predicted` class indices, a line per test image in the split's order."""
    return PREDICTIONS_HEADER + "\n" + "".join(f"{a},{p}\n" for a, p in zip(actual.tolist(), predicted.tolist()))


def read_predictions_csv(text: str, where: str) -> tuple[np.ndarray, np.ndarray]:
    """(actual, predicted) from what predictions_csv wrote; a StageError naming `where` if it is not that."""
    lines = text.splitlines()
    try:
        if lines[0] != PREDICTIONS_HEADER:
            raise ValueError(f"its header is {lines[0]!r}, not {PREDICTIONS_HEADER!r}")
        pairs = np.array([[int(cell) for cell in line.split(",")] for line in lines[1:]], dtype=np.int64)
        if pairs.ndim != 2 or pairs.shape[1] != 2 or pairs.size == 0:
            raise ValueError(f"expected a line `{PREDICTIONS_HEADER}` per test image")
    except (ValueError, IndexError) as error:
        raise StageError(f"{where}: not a predictions file ({error})") from None
    return pairs[:, 0], pairs[:, 1]


def check_chapter(chapter: ChapterParams, variants: dict[str, Variant]) -> None:
    choice.check_declared(list(chapter.root), variants, "chapter", allow_baseline=True)
    for name, reference in chapter.root.items():
        if (reference.metric == "cv_accuracy") != (name == BASELINE):
            allowed = "cv_accuracy" if name == BASELINE else "val_accuracy or test_accuracy"
            raise StageError(f"params.yaml: chapter.{name}.metric = {reference.metric!r} is not allowed: "
                             f"{'the baseline' if name == BASELINE else 'a Keras variant'} reports {allowed}")


def best_variant(results: dict[str, Result], rule: SelectParams) -> str:
    """The variant params.yaml `select` picks (fmnist.core.choice.best_variant) from the loaded results."""
    return choice.best_variant({name: result.metrics for name, result in results.items()}, rule)


def candidates(results: dict[str, Result], rule: SelectParams) -> list[str]:
    return choice.candidates({name: result.metrics for name, result in results.items()}, rule)


def val_accuracy_spread(values) -> spread.Spread:
    """A variant's mean validation accuracy across seeds as a Spread, from its metrics (reports/metrics) or its
    row of comparison_table (where a missing std is NaN, not None)."""
    std = values["val_accuracy_std"]
    return spread.Spread(float(values["val_accuracy_mean"]), None if std is None or math.isnan(std) else float(std),
                         int(values["seeds"]))


def seed_statistics(result: Result, metric: str) -> dict:
    """mean, std, min, max and n of `metric` across seeds (the baseline: cv_accuracy across its CV folds,
    val/test accuracy as its single fit)."""
    if result.name == BASELINE:
        if metric == "cv_accuracy":
            folds = list(result.details["cv_fold_accuracy"].values())
            return {"mean": result.metrics["cv_accuracy"], "std": result.metrics.get("cv_accuracy_std"),
                    "min": min(folds), "max": max(folds), "n": len(folds)}
        value = result.metrics[metric]
        return {"mean": value, "std": None, "min": value, "max": value, "n": 1}
    stats = result.details["spread"][metric]
    return {**stats, "n": result.metrics["seeds"]}


def comparison_table(results: dict[str, Result], variants: dict[str, Variant], chapter: ChapterParams,
                     baseline: BaselineParams) -> pd.DataFrame:
    """One row per variant and the baseline, sorted by mean validation accuracy (best first). `val_accuracy`
    and `test_accuracy` are the chapter seed's; `*_mean`, `*_std`, `*_min`, `*_max` and `seeds` are across
    seeds; `ours_*` are the statistics of the metric the chapter reports (for the baseline: across folds)."""
    rows = []
    for name, result in results.items():
        metrics = result.metrics
        reference = chapter.root.get(name)
        ours = metrics[reference.metric] if reference else None
        seeds = {metric: seed_statistics(result, metric) for metric in ("val_accuracy", "test_accuracy")}
        compared = seed_statistics(result, reference.metric) if reference else {}
        if name == BASELINE:
            what = (f"logistic regression: SGDClassifier({baseline.loss}, max_iter={baseline.max_iter}), "
                    f"{baseline.cv}-fold CV")
            epochs = best = stopped = None
            seconds, replicates_seconds = result.timing["train_fit_seconds"], 0.0
        else:
            spec = variants[name]
            what = f"{spec.describe_layers()}; {spec.optimizer.describe()}"
            if callbacks := spec.describe_callbacks():
                what += f"; {callbacks}"
            if spec.augmentation:
                what += f"; trained on {spec.augmentation.describe()}"
            epochs, best, stopped = metrics["epochs_run"], metrics["best_epoch"], metrics["stopped_epoch"]
            seconds = result.timing["train_seconds"]
            replicates_seconds = result.timing.get("replicates_train_seconds", 0.0)
        rows.append({
            "variant": name,
            "what": what,
            "epochs": epochs,
            "best_epoch": best,
            "stopped_epoch": stopped,
            "val_accuracy": metrics["val_accuracy"],
            "test_accuracy": metrics["test_accuracy"],
            **{f"{metric}_{stat}": value for metric, stats in seeds.items()
               for stat, value in stats.items() if stat != "n"},
            "seeds": seeds["val_accuracy"]["n"],
            "chapter_metric": reference.metric if reference else None,
            "chapter": reference.value if reference else None,
            "ours": ours,
            "difference": ours - reference.value if reference else None,
            **{f"ours_{stat}": compared.get(stat) for stat in ("mean", "std", "min", "max", "n")},
            "train_seconds": seconds,
            "replicates_seconds": replicates_seconds,
        })
    return pd.DataFrame(rows).sort_values("val_accuracy_mean", ascending=False, kind="stable").reset_index(drop=True)
