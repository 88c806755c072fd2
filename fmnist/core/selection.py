"""The select stage's work: which variant becomes models/best, the record of why (selection.json), and the
model card (reports/model_card.md). Every number comes from the files train@<variant> wrote; nothing is
recomputed, and the test set never takes part in the choice.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fmnist.core import comparison, formatting, report, robustness
from fmnist.core.dataset import CLASS_NAMES, split_sizes
from fmnist.core.idx import IMAGE_SHAPE
from fmnist.core.results import Result, val_accuracy_spread
from fmnist.plumbing import paths
from fmnist.plumbing.errors import StageError
from fmnist.schema.data import DownloadParams, PrepareParams
from fmnist.schema.reporting import SelectParams
from fmnist.schema.training import TrainParams, Variant, replicates_of

MODEL_CARD = Path(__file__).with_name("templates") / "model_card.md"  # the card's text, with {named} placeholders
ARTIFACT = "fashion-classifier"  # its name in dvc.yaml `artifacts:` and in GTO's tags (fashion-classifier@v1.0.0)
# What the model takes: the prepared data's form (fmnist.core.dataset.scale), which predict makes from a picture.
INPUT = {"shape": list(IMAGE_SHAPE), "dtype": "float32", "range": [0.0, 1.0],
         "form": "grayscale, pixel / 255, the garment light on a black background, centred, its longest side 28 pixels"}


def read_assessment(name: str, model_bytes: bytes) -> dict:
    """reports/assessment.json, checked to be about this variant's very file (the assess stage runs first)."""
    try:
        assessment = json.loads(paths.ASSESSMENT.read_text())
    except (OSError, ValueError) as error:
        raise StageError(f"{paths.ASSESSMENT}: cannot be read ({error}); run `dvc repro assess`") from None
    if assessment.get("variant") != name or assessment.get("model_sha256") != hashlib.sha256(model_bytes).hexdigest():
        raise StageError(f"{paths.ASSESSMENT}: assesses {assessment.get('variant')!r}, not the chosen {name!r} as it "
                         "is now; run `dvc repro assess`")
    return assessment


@dataclass(frozen=True)
class Choice:
    """What the select stage chose: the variant, its results and params, the rule it was chosen by and the candidates
    it was chosen among (results.candidates)."""

    name: str
    result: Result
    spec: Variant
    rule: SelectParams
    candidates: dict[str, Result]


def record(choice: Choice, *, source: Path, model_bytes: bytes, shared: TrainParams, download: DownloadParams,
           prepare: PrepareParams, calibrated: dict) -> dict:
    """selection.json: what models/best is, why it was chosen, how well it does and what it was made from."""
    name, result, spec, rule, candidates = choice.name, choice.result, choice.spec, choice.rule, choice.candidates
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
        "training": {"backend": result.details["backend"], "seed": shared.seed,
                     "replicates": replicates_of(spec, shared), "batch_size": spec.batch_size or shared.batch_size},
        "data": {"sha256": download.sha256.by_file_name(),
                 "split": {"test_size": prepare.test_size, "random_state": prepare.random_state}},
        "libraries": formatting.installed_versions(),
        "input": INPUT,
        "classes": list(CLASS_NAMES),
        "calibration": calibrated,
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


def _runners_up(chosen: str, rule: SelectParams, candidates: dict[str, Result],
                tolerances: comparison.Tolerances) -> str:
    """The next candidates, and whether the seed spread tells the choice apart from them (comparison.told_apart, the
    gate's rule with params.yaml gates.k, gates.floor and gates.false_alarm; the choice against every other
    candidate is one family)."""
    sign = 1 if rule.higher_is_better() else -1
    order = sorted(candidates, key=lambda name: -sign * candidates[name].metrics[rule.metric])
    others = [name for name in order if name != chosen]
    verdicts = dict(zip(others, comparison.told_apart(
        [(val_accuracy_spread(candidates[chosen].metrics), val_accuracy_spread(candidates[name].metrics))
         for name in others], tolerances)))
    lines = []
    for name in others[:3]:
        metrics = candidates[name].metrics
        text = f"- {name}: {rule.metric} {metrics[rule.metric]:.4f}"
        if rule.metric == "val_accuracy_mean":
            verdict = verdicts[name]
            if verdict.apart is not None:
                told = "told apart" if verdict.apart else "not told apart from seed noise"
                text += (f" ± {metrics['val_accuracy_std']:.4f}; {abs(verdict.difference):.4f} behind, {told}; "
                         f"tolerance {verdict.allowed:.4f}, {tolerances.describe()}")
        lines.append(text)
    return "\n".join(lines) or "- (no other candidate)"


def _calibration_section(calibrated: dict) -> list[str]:
    rows = [(f"{row['low']:.1f}–{row['high']:.1f}", f"{row['count']:,}", f"{row['confidence']:.3f}",
             f"{row['accuracy']:.3f}") for row in calibrated["bins"] if row["count"]]
    table = pd.DataFrame(rows, columns=["confidence", "validation images", "mean confidence", "accuracy"]).to_markdown(
        index=False, disable_numparse=True, colalign=("left", "right", "right", "right"))
    return [
        "## How sure it is",
        "",
        f"On the {calibrated['validation_images']:,} validation images its confidence (the top class's probability) "
        "is close to how often it is right: expected calibration error "
        f"{calibrated['expected_calibration_error']:.3f}.",
        "Reliability, by confidence:",
        "",
        table,
        "",
        f"`predict` marks an answer **unsure** below confidence {calibrated['threshold']:.3f}: the validation answers "
        f"at or above it are right {calibrated['accuracy_when_sure']:.1%} of the time (params.yaml "
        f"`select.sure_accuracy`: {calibrated['target_accuracy']:.0%}), and {calibrated['coverage']:.1%} of them "
        "reach it.",
        "",
    ]


def _robustness_section(measured: dict) -> list[str]:
    """The assess stage's robustness table (fmnist/core/robustness.py)."""
    original = measured["originals"]
    combined = robustness.family(measured, "combined")
    met = robustness.goal_met(measured)
    return [
        "## On photos: how far it holds up",
        "",
        f"The `assess` stage made product-photo-like pictures from the first {measured['images']:,} test images, each "
        "kind of change alone and all together (seed "
        f"{measured['seed']}), and classified them through `predict`'s preprocessing. On the 28×28 originals the "
        f"accuracy is {original['accuracy']:.3f} ({original['accuracy_interval'][0]:.3f}–"
        f"{original['accuracy_interval'][1]:.3f}). Intervals: Wilson, 95%; a refused picture counts as wrong.",
        "",
        robustness.markdown(measured),
        f"All changes at once, it keeps the class it gives the 28×28 original for {combined['agreement']:.1%} of the "
        f"pictures and loses {robustness.accuracy_lost(measured):.3f} of accuracy (the aim: at least 90% "
        f"and at most 0.05: {'met' if met else 'not met'}). These are generated pictures: a camera's may differ.",
        "",
    ]


def _alongside_section(assessment: dict, test_images: int) -> list[str]:
    """The variants params.yaml `assess.alongside` names, measured as the chosen one was, side by side with it."""
    if not assessment.get("alongside"):
        return []
    entries = [assessment, *assessment["alongside"]]
    header = " | ".join(entry["variant"] + (" (this model)" if entry is assessment else "") for entry in entries)
    rows = [
        (f"test accuracy (all {test_images:,} test images)", [f"{entry['test_accuracy']:.4f}" for entry in entries]),
        ("unsure below", [f"{entry['calibration']['threshold']:.3f}" for entry in entries]),
        ("28×28 originals: accuracy", [f"{entry['robustness']['originals']['accuracy']:.3f}" for entry in entries]),
        *((f"{name}: accuracy / same class as the 28×28",
           [f"{robustness.family(entry['robustness'], name)['accuracy']:.3f} / "
            f"{robustness.family(entry['robustness'], name)['agreement']:.3f}" for entry in entries])
          for name in robustness.FAMILIES),
        ("all at once: accuracy lost against the originals",
         [f"{robustness.accuracy_lost(entry['robustness']):.3f}" for entry in entries]),
    ]
    others = ", ".join(f"`{entry['variant']}`" for entry in assessment["alongside"])
    return [
        "### Beside other variants",
        "",
        f"Measured the same way ({others}: params.yaml `assess.alongside`); `python -m fmnist.tools.predict "
        f"--variant {assessment['alongside'][0]['variant']}` classifies with it instead of this model.",
        "",
        f"| | {header} |",
        "|---|" + "---:|" * len(entries),
        *(f"| {label} | {' | '.join(values)} |" for label, values in rows),
        "",
    ]


def _block(lines: list[str]) -> str:
    """A section's lines (each ends with a blank one) as the template's text: nothing for no section."""
    return "\n".join(lines) + "\n" if lines else ""


def model_card(choice: Choice, selected: dict, *, confusion: np.ndarray, tolerances: comparison.Tolerances,
               image_counts: dict[str, int], assessment: dict) -> str:
    """reports/model_card.md: what the model is for, how well it does, where it fails, how to remake it. `selected`:
    record()'s selection.json of the choice. The text is MODEL_CARD's; this fills in its named placeholders."""
    result, spec, rule, candidates = choice.result, choice.spec, choice.rule, choice.candidates
    name, metrics, details = selected["variant"], result.metrics, result.details
    per_class = result.details["test_accuracy_per_class"]
    hardest = sorted(per_class, key=per_class.get)
    training, split = selected["training"], selected["data"]["split"]
    options = spec.describe_callbacks()
    train_size, val_size = split_sizes(image_counts["train"], split["test_size"])
    values = {
        "artifact": ARTIFACT,
        "name": name,
        "summary_link": os.path.relpath(paths.SUMMARY_REPORT, paths.MODEL_CARD.parent),
        "description": spec.description,
        "rule": rule.describe(),
        "candidates": len(candidates),
        "runners_up": _runners_up(name, rule, candidates, tolerances),
        "model_file": (paths.BEST_DIR / paths.BEST_MODEL_FILE).as_posix(),
        "parameters": f"{details['parameters']:,}",
        "source": selected["source"],
        "selection_file": (paths.BEST_DIR / paths.SELECTION_FILE).as_posix(),
        "images": f"{sum(image_counts.values()):,}",
        "train_images": f"{image_counts['train']:,}",
        "test_images": f"{image_counts['test']:,}",
        "test_size": split["test_size"],
        "random_state": split["random_state"],
        "train_size": f"{train_size:,}",
        "val_size": f"{val_size:,}",
        "checksums": "\n".join(f"  - `{file}` sha256 `{digest}`"
                               for file, digest in selected["data"]["sha256"].items()),
        "layers": spec.describe_layers()
        + (f"; in training only, before Flatten: {spec.augmentation.describe()}" if spec.augmentation else ""),
        "training_line": f"{spec.optimizer.describe()}, sparse categorical cross-entropy, {metrics['epochs_run']} "
        f"epochs (of {spec.epochs}) with batch size {training['batch_size']}"
        + (f", best epoch {metrics['best_epoch']}" if metrics.get("best_epoch") else "")
        + (f"; {options}" if options else "")
        + f"; scored file: `{details['evaluated_file']}`",
        "backend": training["backend"],
        "seed": training["seed"],
        "replicates": training["replicates"],
        "libraries": ", ".join(f"{library} {version}" for library, version in selected["libraries"].items()),
        "accuracy": _accuracy_rows(metrics, details, training["seed"]),
        "per_class": report.per_class_markdown(result),
        "confusions": _confusions(confusion),
        "calibration": _block(_calibration_section(selected["calibration"])),
        "classes": ", ".join(CLASS_NAMES),
        "robustness": _block(_robustness_section(assessment["robustness"])),
        "alongside": _block(_alongside_section(assessment, image_counts["test"])),
        "hardest": f"{hardest[0]} is right {per_class[hardest[0]]:.0%} of the time, {hardest[1]} "
        f"{per_class[hardest[1]]:.0%}, {hardest[2]} {per_class[hardest[2]]:.0%}",
    }
    return MODEL_CARD.read_text(encoding="utf-8").format_map(values)
