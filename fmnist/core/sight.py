"""What a comparison of two means can see: the smallest true drop it catches, and its chance of a false alarm.

fmnist.core.spread.told_apart decides whether two means differ (|a - b| > max(floor, k * SE of the difference)).
This module says what that decision could have seen, from the same two spreads. Each std is itself estimated
from a few seeds, so the difference over its estimated standard error follows Student's t, with Welch's degrees
of freedom df (noncentral, with noncentrality drop / SE, where there is a true drop):

    detectable drop = max(delta * SE, floor + t(power, df) * SE)   the smallest true drop caught with chance
                      where P(T'(df, delta) > k) = power           `power` (80%): by k standard errors, or past
                                                                   the floor where the floor is the tolerance
    false alarm     = P(T_df > tolerance / SE)                     the chance, one way, that no real change is
                                                                   flagged

Two models scored on the same test images are compared image by image (`paired`): McNemar's exact test on the
images only one of them gets right, and the accuracy difference with a 95% interval.

Used by the gate (not a pipeline stage), so the stages' results do not depend on it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

from fmnist.core.spread import Spread, Tolerances, Verdict, standard_error_of_difference, told_apart

POWER = 0.8  # the chance with which a comparison catches its detectable drop
WORDS = ("regression", "worse within noise", "no measurable change", "better")


def degrees_of_freedom(a: Spread, b: Spread) -> float | None:
    """Welch-Satterthwaite degrees of freedom of the difference of two means: (va + vb)² / (va²/(n_a - 1) +
    vb²/(n_b - 1)), v = std²/n; n - 1 of the side whose std stands for both when the other has none; n_a + n_b - 2
    when both stds are 0; None when neither side has a spread."""
    if a.estimable and b.estimable:
        va, vb = a.std ** 2 / a.n, b.std ** 2 / b.n
        if va + vb == 0:
            return a.n + b.n - 2
        return (va + vb) ** 2 / (va ** 2 / (a.n - 1) + vb ** 2 / (b.n - 1))
    known = a if a.estimable else b if b.estimable else None
    return None if known is None else known.n - 1


@dataclass(frozen=True)
class Sight:
    """A comparison of a against b (spread.told_apart's verdict) with what it could see. detectable and
    false_alarm are None where the tolerance is the fixed one (no spread: nothing is known about the noise)."""

    verdict: Verdict
    detectable: float | None
    false_alarm: float | None

    @property
    def word(self) -> str:
        """Of a against b, in four words: better or regression when told apart; otherwise worse within noise (a
        is lower) or no measurable change."""
        if self.verdict.a_lower:
            return "regression"
        if self.verdict.a_higher:
            return "better"
        return "worse within noise" if self.verdict.difference < 0 else "no measurable change"


def sight(a: Spread, b: Spread, tolerances: Tolerances, power: float = POWER) -> Sight:
    verdict = told_apart(a, b, tolerances)
    error, df = standard_error_of_difference(a, b), degrees_of_freedom(a, b)
    if verdict.allowed is None or verdict.fixed or error is None:
        return Sight(verdict, None, None)
    detectable = _detectable(error, df, tolerances, power)
    false_alarm = 0.0 if error == 0 else float(stats.t.sf(verdict.allowed / error, df))
    return Sight(verdict, detectable, false_alarm)


def _detectable(error: float, df: float, tolerances: Tolerances, power: float) -> float:
    """max(delta * SE, floor + t(power, df) * SE), delta the noncentrality at which a noncentral t with df degrees
    of freedom exceeds k with chance `power` (both measured: simulated gates catch such a drop 78-80% of the
    time with 3-5 seeds a side, tests/test_sight.py)."""
    past_floor = tolerances.floor + float(stats.t.ppf(power, df)) * error
    if error == 0:
        return past_floor
    delta = optimize.brentq(lambda d: stats.nct.sf(tolerances.k, df, d) - power, 0.0, tolerances.k + 50.0)
    return max(delta * error, past_floor)


def replicates_to_detect(std: float, detect: float, tolerances: Tolerances, most: int,
                         power: float = POWER) -> int | None:
    """The fewest seeds (2 or more) that let a mean with this std, compared with another of as many seeds and the
    same std, catch a true drop of `detect` with chance `power`; None if even `most` seeds cannot."""
    for n in range(2, most + 1):
        side = Spread(0.0, std, n)
        if sight(side, side, tolerances, power).detectable <= detect + 1e-12:
            return n
    return None



@dataclass(frozen=True)
class Paired:
    """Two models' answers on the same images: `images`, how many both get right, and the discordant ones (only
    a right, only b right); a's accuracy minus b's with its 95% interval, and McNemar's exact two-sided p."""

    images: int
    both_right: int
    only_a: int
    only_b: int
    difference: float
    low: float
    high: float
    p_value: float


def paired(actual: np.ndarray, a: np.ndarray, b: np.ndarray) -> Paired:
    """McNemar's exact test: with no difference between the models, each of the n = only_a + only_b discordant
    images is a's with chance 1/2, so p = the two-sided binomial tail of only_a in Binomial(n, 1/2). The
    accuracy difference is (only_a - only_b) / images = (n / images) (2 pi - 1), pi the share of the discordant
    images that are a's; its interval is that of pi (Clopper-Pearson, exact) given n."""
    right_a, right_b = a == actual, b == actual
    only_a, only_b = int(np.sum(right_a & ~right_b)), int(np.sum(right_b & ~right_a))
    images, discordant = len(actual), only_a + only_b
    if discordant == 0:
        return Paired(images, int(np.sum(right_a & right_b)), 0, 0, 0.0, 0.0, 0.0, 1.0)
    test = stats.binomtest(only_a, discordant, 0.5)
    interval = test.proportion_ci(0.95, method="exact")
    share = discordant / images
    return Paired(images, int(np.sum(right_a & right_b)), only_a, only_b, (only_a - only_b) / images,
                  share * (2 * interval.low - 1), share * (2 * interval.high - 1), float(test.pvalue))
