"""Seed spread: the summary statistics of a variant's seeds.

A single seed's validation accuracy moves by several thousandths with the seed (and with the CPU's float
rounding), so results are compared as means across seeds, by the rule in fmnist.core.comparison.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

SUMMARIZED = ("val_accuracy", "test_accuracy")  # per-seed results that get a mean and a std in the metrics


def summarize(values: list[float]) -> dict:
    """mean, std (sample std, n - 1; None for one value), min and max of one metric across seeds."""
    n = len(values)
    mean = math.fsum(values) / n
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else None
    return {"mean": mean, "std": std, "min": min(values), "max": max(values)}


def seed_metrics(per_seed: list[dict]) -> tuple[dict, dict]:
    """(the headline additions for reports/metrics: seeds, <metric>_mean, <metric>_std;
    the details for reports/evaluation: every statistic and every seed's values)."""
    headline: dict = {"seeds": len(per_seed)}
    details: dict = {"seeds": [entry["seed"] for entry in per_seed]}
    for metric in SUMMARIZED:
        stats = summarize([entry[metric] for entry in per_seed])
        headline[f"{metric}_mean"] = stats["mean"]
        headline[f"{metric}_std"] = stats["std"]
        details[metric] = stats
    details["per_seed"] = per_seed
    return headline, details


@dataclass(frozen=True)
class Spread:
    """A mean with the std and the count it came from (std None: not estimable)."""

    mean: float
    std: float | None
    n: int

    @property
    def estimable(self) -> bool:
        return self.std is not None and self.n >= 2 and math.isfinite(self.std)
