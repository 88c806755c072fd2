"""The select stage's work: which variant becomes models/best, the record of why (selection.json), and the
model card (reports/model_card.md). Every number comes from the files train@<variant> wrote; nothing is
recomputed, and the test set never takes part in the choice.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pandas as pd

from fmnist.core import formatting, report, spread
from fmnist.core.dataset import CLASS_NAMES, split_sizes
from fmnist.core.idx import IMAGE_SHAPE
from fmnist.core.results import Result, val_accuracy_spread
from fmnist.plumbing import paths
from fmnist.plumbing.errors import StageError
from fmnist.schema.data import DownloadParams, PrepareParams
from fmnist.schema.reporting import SelectParams
from fmnist.schema.training import TrainParams, Variant

ARTIFACT = "fashion-classifier"  # its name in dvc.yaml `artifacts:` and in GTO's tags (fashion-classifier@v1.0.0)
# What the model takes: the prepared data's form (fmnist.core.dataset.scale), which fmnist.tools.predict makes from a picture.
INPUT = {"shape": list(IMAGE_SHAPE), "dtype": "float32", "range": [0.0, 1.0],
         "form": "grayscale, pixel / 255, the garment light on a black background, centred, its longest side 28 pixels"}


def scored_model(name: str, result: Result, models_dir: Path = paths.MODELS_DIR) -> Path:
    """The file train@<name> scored (its best checkpoint where it keeps one), as reports/evaluation records."""
    path = models_dir / name / result.details["evaluated_file"]
    if not path.is_file():
        raise StageError(f"{path}: not found; fetch it with `dvc pull {models_dir / name}` "
                         f"or train it with `dvc repro train@{name}`")
    return path


def record(name: str, result: Result, spec: Variant, rule: SelectParams, candidates: dict[str, Result],
           source: Path, model_bytes: bytes, shared: TrainParams, download: DownloadParams, prepare: PrepareParams) -> dict:
    """selection.json: what models/best is, why it was chosen, how well it does and what it was made from."""
    return {
        "artifact": ARTIFACT,
        "variant": name,
        "description": spec.description,
        "source": source.as_posix(),
        "model_sha256": hashlib.sha256(model_bytes).hexdigest(),
        "rule": {"metric": rule.metric, "higher_is_better": rule.higher_is_better(),
                 "candidates": {other: candidates[other].metrics[rule.metric] for other in candidates}},
        "metrics": result.metrics,
        "test_accuracy_per_class": result.details["test_accuracy_per_class"],
        "variant_params": spec.model_dump(mode="json", exclude_defaults=True),
        "training": {"backend": result.details["backend"], "seed": shared.seed, "replicates": shared.replicates,
                     "batch_size": spec.batch_size or shared.batch_size},
        "data": {"sha256": download.sha256.by_file_name(),
                 "split": {"test_size": prepare.test_size, "random_state": prepare.random_state}},
        "libraries": formatting.installed_versions(),
        "input": INPUT,
        "classes": list(CLASS_NAMES),
    }


def _confusions(counts: np.ndarray, top: int = 5) -> str:
    """The most frequent mistakes on the test set: 'Shirt taken for T-shirt/top: 12.3% of Shirts (123)'."""
    actual_totals = counts.sum(axis=1)
    mistakes = [(counts[a, p], a, p) for a in range(len(CLASS_NAMES)) for p in range(len(CLASS_NAMES)) if a != p]
    mistakes.sort(key=lambda item: (-item[0], item[1], item[2]))
    return "\n".join(f"- {CLASS_NAMES[a]} taken for {CLASS_NAMES[p]}: {n / actual_totals[a]:.1%} of the "
                     f"{actual_totals[a]} test images of {CLASS_NAMES[a]} ({n})" for n, a, p in mistakes[:top] if n)


def _accuracy_rows(metrics: dict, details: dict, seed: int) -> str:
    rows = [(f"seed {seed} (this file)", f"{metrics['val_accuracy']:.4f}", f"{metrics['test_accuracy']:.4f}")]
    if metrics.get("val_accuracy_std") is not None:
        stats = details["spread"]
        rows += [
            (f"mean ± σ over {metrics['seeds']} seeds",
             formatting.mean_std(metrics["val_accuracy_mean"], metrics["val_accuracy_std"]),
             formatting.mean_std(metrics["test_accuracy_mean"], metrics["test_accuracy_std"])),
            ("min – max over the seeds", f"{stats['val_accuracy']['min']:.4f} – {stats['val_accuracy']['max']:.4f}",
             f"{stats['test_accuracy']['min']:.4f} – {stats['test_accuracy']['max']:.4f}"),
        ]
    frame = pd.DataFrame(rows, columns=["", "validation accuracy", "test accuracy"])
    return frame.to_markdown(index=False, disable_numparse=True, colalign=("left", "right", "right"))


def _runners_up(chosen: str, rule: SelectParams, candidates: dict[str, Result], tolerances: spread.Tolerances) -> str:
    """The next candidates, and whether the seed spread tells the choice apart from them (spread.told_apart, the
    gate's rule with params.yaml gates.k and gates.floor)."""
    sign = 1 if rule.higher_is_better() else -1
    order = sorted(candidates, key=lambda name: -sign * candidates[name].metrics[rule.metric])
    lines = []
    for name in [n for n in order if n != chosen][:3]:
        metrics = candidates[name].metrics
        text = f"- {name}: {rule.metric} {metrics[rule.metric]:.4f}"
        if rule.metric == "val_accuracy_mean":
            verdict = spread.told_apart(val_accuracy_spread(candidates[chosen].metrics), val_accuracy_spread(metrics),
                                        tolerances)
            if verdict.apart is not None:
                told = "told apart" if verdict.apart else "not told apart from seed noise"
                text += (f" ± {metrics['val_accuracy_std']:.4f}; {abs(verdict.difference):.4f} behind, {told}; "
                         f"tolerance {verdict.allowed:.4f}, {tolerances.describe()}")
        lines.append(text)
    return "\n".join(lines) or "- (no other candidate)"


def model_card(selected: dict, result: Result, spec: Variant, rule: SelectParams, candidates: dict[str, Result],
               confusion: np.ndarray, tolerances: spread.Tolerances, image_counts: dict[str, int]) -> str:
    """reports/model_card.md: what the model is for, how well it does, where it fails, how to remake it."""
    name, metrics, details = selected["variant"], result.metrics, result.details
    per_class = result.details["test_accuracy_per_class"]
    hardest = sorted(per_class, key=per_class.get)
    training = selected["training"]
    checksums = "\n".join(f"  - `{file}` sha256 `{digest}`" for file, digest in selected["data"]["sha256"].items())
    split = selected["data"]["split"]
    libraries = ", ".join(f"{library} {version}" for library, version in selected["libraries"].items())
    summary_link = os.path.relpath(paths.SUMMARY_REPORT, paths.MODEL_CARD.parent)
    options = spec.describe_callbacks()
    train_size, val_size = split_sizes(image_counts["train"], split["test_size"])
    lines = [
        f"# Model card: {ARTIFACT} ({name})",
        "",
        "Generated by the `select` stage from `reports/metrics`, `reports/evaluation` and `reports/confusion`; do not",
        f"edit by hand. Every variant's results: [summary.md]({summary_link}).",
        "",
        "## What it is",
        "",
        "A classifier of small product photos of clothing into Fashion-MNIST's ten classes, made by this",
        "project's pipeline (the deep-learning chapter of 혼자 공부하는 머신러닝+딥러닝). It is the variant",
        f"`{name}` ({spec.description}), chosen by the {rule.describe()} among {len(candidates)} variants, on the",
        "validation split only: the test set took no part in the choice. The next candidates:",
        "",
        _runners_up(name, rule, candidates, tolerances),
        "",
        f"- File: `{(paths.BEST_DIR / paths.BEST_MODEL_FILE).as_posix()}`, a Keras 3 whole model "
        f"({details['parameters']:,} parameters), byte for byte `{selected['source']}`.",
        f"- `{(paths.BEST_DIR / paths.SELECTION_FILE).as_posix()}` holds the same facts as data: the rule, the "
        "metrics, the data checksums, the library versions, and the file's sha256 (not here: Keras stamps the",
        "  save time into the file, so each training run gives other bytes, while this card stays the same).",
        f"- Registered as the DVC artifact `{ARTIFACT}` (`artifacts:` in `dvc.yaml`); versions are GTO tags "
        f"(`{ARTIFACT}@v1.0.0`).",
        "",
        "## Intended use",
        "",
        "Learning and trying out: sorting pictures of one garment, shoe or bag, photographed alone on a plain",
        "background, into the ten classes, for example with `python -m fmnist.tools.predict` (below). It is not",
        "meant for photos of people wearing clothes, for several items in one picture, for anything outside the",
        "ten classes, or for any decision about a person.",
        "",
        "## Data",
        "",
        f"Fashion-MNIST (© 2017 Zalando SE, MIT license): {sum(image_counts.values()):,} 28×28 grayscale images of "
        "Zalando product photos,",
        "made by trimming each photo, resizing its longest side to 28 pixels, sharpening, centring, negating and",
        f"converting it to grayscale. Training: {image_counts['train']:,} images, split by "
        f"`train_test_split(test_size={split['test_size']}, random_state={split['random_state']})`",
        f"into {train_size:,} for training and {val_size:,} for validation (choosing epochs, checkpoints and this "
        f"variant). Test: the {image_counts['test']:,} test images, used only to",
        "report the numbers below.",
        "",
        "- Files (checked against these sha256 before use):",
        checksums,
        "",
        "## Architecture and training",
        "",
        f"- Input(28, 28) → Flatten → {spec.describe_layers()}",
        f"- {spec.optimizer.describe()}, sparse categorical cross-entropy, {metrics['epochs_run']} epochs "
        f"(of {spec.epochs}) with batch size {training['batch_size']}"
        + (f", best epoch {metrics['best_epoch']}" if metrics.get("best_epoch") else "")
        + (f"; {options}" if options else "")
        + f"; scored file: `{details['evaluated_file']}`",
        f"- Keras backend {training['backend']}, seed {training['seed']} (this model); "
        f"{training['replicates']} seeds in all for the spread below",
        f"- Libraries: {libraries}",
        "",
        "## How well it does",
        "",
        _accuracy_rows(metrics, details, training["seed"]),
        "",
        "σ is the sample standard deviation across seeds: another seed, or another CPU's float rounding, moves",
        "a single run by about that much, so differences smaller than a few σ mean nothing.",
        "",
        "Test accuracy per class (this file), hardest first:",
        "",
        report.per_class_markdown(result),
        "",
        "Its most frequent mistakes on the test set:",
        "",
        _confusions(confusion),
        "",
        "## Input it expects",
        "",
        "An array of shape (N, 28, 28), float32, pixel / 255 in [0, 1]: one garment, light on a black",
        "background, centred, its longest side filling the 28 pixels, as in Fashion-MNIST. The output is ten",
        "softmax probabilities in the order " + ", ".join(CLASS_NAMES) + ".",
        "`python -m fmnist.tools.predict` makes that input from PNG or JPEG files with the steps Fashion-MNIST used:",
        "trim the plain background, resize the longest side to 28, centre on 28×28, negate (a light background",
        "becomes black), grayscale. A 28×28 grayscale PNG is taken as it is.",
        "",
        "## Known limits",
        "",
        "- It has only seen 28×28 grayscale product photos, one item on a plain (white) background, centred and",
        "  trimmed. Busy backgrounds, several items, people, shadows or unusual angles are outside what it",
        "  learned; its answers there are guesses.",
        f"- Classes that look alike at 28×28 are mistaken for each other (above). The hardest: {hardest[0]} is right "
        f"{per_class[hardest[0]]:.0%} of the time, {hardest[1]} {per_class[hardest[1]]:.0%}, {hardest[2]} "
        f"{per_class[hardest[2]]:.0%}.",
        "- It always answers one of the ten classes, even for a picture of something else; a high probability",
        "  does not show that the picture is clothing.",
        "- Grayscale only: colour, the cue a person would use first, is gone.",
        "- The accuracy above is on Fashion-MNIST's own test images. On your photos expect less, by an amount",
        "  nobody has measured.",
        "",
        "## Reproduce it",
        "",
        "```bash",
        "FASHION_MNIST_MIRROR=../shared/fashion-mnist make repro   # or: dvc pull (from a shared remote)",
        "source .venv/bin/activate",
        "dvc repro select                                          # remake models/best and this card",
        "python -m fmnist.tools.predict --export-samples samples/  # ten test images as PNG",
        "python -m fmnist.tools.predict samples/                   # top-3 classes of each",
        f"dvc artifacts get . {ARTIFACT} --rev v1.0.0 -o model.keras   # a registered version (see README)",
        "```",
        "",
        "Same params, same machine and same backend give identical metrics. On another CPU the seed-"
        f"{training['seed']} numbers",
        "can move by float rounding; the means agree within the spread above (`make gate GATE_ARGS=\"--reproduces",
        "HEAD\"` checks this).",
        "",
    ]
    return "\n".join(lines)
