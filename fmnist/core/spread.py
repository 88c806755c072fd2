"""Seed spread: the summary statistics of a variant's seeds, and how far apart two means may be by chance.

A single seed's validation accuracy moves by several thousandths with the seed (and with the CPU's float
rounding), so results are compared as means across seeds, with a tolerance from the measured spread:

    tolerance = max(floor, k * sqrt(std_a**2 / n_a + std_b**2 / n_b))

the standard error of the difference of two means times k (3 by default). Where only one side has a
spread, it stands for both. Where neither does (one seed each), there is no estimate: the caller says so
and uses a stated fixed tolerance instead.
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


def standard_error_of_difference(a: Spread, b: Spread) -> float | None:
    """sqrt(std_a²/n_a + std_b²/n_b); one side's std stands for both when the other has none; None if neither."""
    if a.estimable and b.estimable:
        return math.sqrt(a.std ** 2 / a.n + b.std ** 2 / b.n)
    known = a if a.estimable else b if b.estimable else None
    if known is None:
        return None
    return known.std * math.sqrt(1 / a.n + 1 / b.n)


def tolerance(a: Spread, b: Spread, k: float, floor: float) -> float | None:
    """How far apart the two means may be by chance: max(floor, k * SE of the difference); None if unknown."""
    error = standard_error_of_difference(a, b)
    return None if error is None else max(floor, k * error)


@dataclass(frozen=True)
class Tolerances:
    """params.yaml gates: k times the standard error of the difference of two means, at least floor; fixed (if
    given) where no spread can be estimated (one seed on both sides)."""

    k: float
    floor: float
    fixed: float | None = None

    def describe(self) -> str:
        """'3 standard errors of the difference (at least 0.002)'."""
        return f"{self.k:g} standard errors of the difference" + (f" (at least {self.floor:g})" if self.floor else "")


@dataclass(frozen=True)
class Verdict:
    """How two means compare: their difference (a - b), the tolerance chance allows, whether that tolerance is the
    fixed one (no spread on either side), and whether the difference is larger (None: no tolerance at all)."""

    difference: float
    allowed: float | None
    fixed: bool
    apart: bool | None

    @property
    def a_higher(self) -> bool:
        """a is above b by more than chance allows."""
        return bool(self.apart) and self.difference > 0

    @property
    def a_lower(self) -> bool:
        """a is below b by more than chance allows."""
        return bool(self.apart) and self.difference < 0


def told_apart(a: Spread, b: Spread, tolerances: Tolerances) -> Verdict:
    """The one rule for "do these two means differ by more than the seed spread allows?", used by the gate, the
    selection, the report and the sweep: |a - b| > max(floor, k * SE of the difference). With no spread on either
    side, the fixed tolerance if given, else no verdict (apart None). A difference exactly at the tolerance is
    not told apart."""
    difference = a.mean - b.mean
    allowed, fixed = tolerance(a, b, tolerances.k, tolerances.floor), False
    if allowed is None and tolerances.fixed is not None:
        allowed, fixed = tolerances.fixed, True
    if allowed is None:
        return Verdict(difference, None, False, None)
    return Verdict(difference, allowed, fixed, abs(difference) > allowed + 1e-12)  # float noise must not decide a tie
