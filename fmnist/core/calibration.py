"""How far a model's confidence can be trusted, measured on the validation set: a reliability table, the expected
calibration error, and the confidence below which `predict` calls an answer unsure.

Confidence is the top class's softmax probability. The threshold is the lowest confidence at which the
validation predictions that confident or more are right at least `select.sure_accuracy` of the time: below it
an answer is marked unsure, not hidden.
"""
from __future__ import annotations

import numpy as np

BINS = 10  # equal-width confidence bins of the reliability table and the calibration error


def reliability(probabilities: np.ndarray, labels: np.ndarray, bins: int = BINS) -> list[dict]:
    """Per confidence bin [low, high): how many predictions, their mean confidence, how many of them are right."""
    confidence, right = probabilities.max(axis=1), probabilities.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)  # a confidence of exactly 1 in the last
    table = []
    for b in range(bins):
        inside = which == b
        count = int(inside.sum())
        table.append({"low": round(b / bins, 6), "high": round((b + 1) / bins, 6), "count": count,
                      "confidence": float(confidence[inside].mean()) if count else None,
                      "accuracy": float(right[inside].mean()) if count else None})
    return table


def expected_calibration_error(table: list[dict]) -> float:
    """The mean gap between confidence and accuracy over the bins, weighted by their counts."""
    total = sum(row["count"] for row in table)
    return float(sum(row["count"] / total * abs(row["accuracy"] - row["confidence"]) for row in table if row["count"]))


def sure_threshold(probabilities: np.ndarray, labels: np.ndarray, accuracy: float) -> tuple[float, float, float]:
    """(threshold, the share of predictions at or above it, their accuracy): the lowest confidence whose predictions
    at or above it are right at least `accuracy` of the time. 1.0 (every answer unsure) when even the most confident
    one is wrong."""
    confidence = probabilities.max(axis=1)
    right = probabilities.argmax(axis=1) == labels
    order = np.argsort(-confidence, kind="stable")
    running = np.cumsum(right[order]) / np.arange(1, len(order) + 1)
    # Predictions of equal confidence are in or out together: only the last index of each confidence may cut.
    sorted_confidence = confidence[order]
    last_of_tie = np.append(sorted_confidence[1:] != sorted_confidence[:-1], True)
    good = np.flatnonzero((running >= accuracy) & last_of_tie)
    if len(good) == 0:
        return 1.0, 0.0, 0.0
    cut = good[-1]
    return float(sorted_confidence[cut]), float((cut + 1) / len(order)), float(running[cut])


def calibrate(probabilities: np.ndarray, labels: np.ndarray, accuracy: float) -> dict:
    """Everything the model card and predict need: threshold, coverage, accuracy when sure, ECE, the bins."""
    table = reliability(probabilities, labels)
    threshold, coverage, sure = sure_threshold(probabilities, labels, accuracy)
    return {"threshold": threshold, "target_accuracy": accuracy, "coverage": coverage, "accuracy_when_sure": sure,
            "expected_calibration_error": expected_calibration_error(table), "bins": table,
            "validation_images": int(len(labels))}
