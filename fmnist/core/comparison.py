"""Comparing means across seeds: the one rule for "told apart" (with Holm's method across a family of comparisons),
what a comparison could see, and two models compared image by image.

The rule (`told_apart`, used by the gate, the selection, the report and the sweep). Two means a and b, each from a
few seeds, differ by d = a - b with estimated standard error SE = sqrt(std_a²/n_a + std_b²/n_b). Each std is itself
estimated from a few seeds, so d / SE follows Student's t with Welch's degrees of freedom df. Comparisons come in
families (every gated metric; the best variant against each other), and a family shares one false-alarm rate,
`false_alarm` (params.yaml gates.false_alarm), by Holm's method: the comparison with the smallest p-value is held
to false_alarm / m, the next to false_alarm / (m - 1), and so on, stopping at the first that is not told apart.
A comparison is told apart when Holm's method says so and

    |d| > allowed = max(floor, max(k, q) * SE)      q: the t quantile of its Holm level, false_alarm / (m - step)

(one side, d < 0 only, for the gate's drop checks). k (3) keeps the rule at least as strict as k standard errors
wherever Holm's level would allow less; floor keeps it from being tighter than the metric's own resolution. With no
spread on either side (one seed each), the fixed tolerance if given, outside the family, else no verdict.

What it could see (`sight`), for the check with a true drop among no other change, held to false_alarm / m:

    detectable drop = max(delta * SE, floor + t(power, df) * SE)   the smallest true drop caught with chance
                      where P(T'(df, delta) > max(k, q_first)) = power   `power` (80%), T' the noncentral t
    false alarm     = sides * P(T_df > allowed_first / SE)          its chance of flagging no change

Two models scored on the same test images are compared image by image (`paired`): McNemar's exact test on the
images only one of them gets right, and the accuracy difference with a 95% interval.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special  # Student's t and the normal distribution: what scipy.stats computes them with

from fmnist.core.spread import Spread

POWER = 0.8  # the chance with which a comparison catches its detectable drop
WORDS = ("regression", "worse within noise", "no measurable change", "better")
TIE = 1e-12  # float noise must not decide a difference exactly at its tolerance


@dataclass(frozen=True)
class Tolerances:
    """params.yaml gates: at least k standard errors of the difference of two means and at least floor, Holm's
    method holding a family's false alarms to false_alarm; fixed (if given) where no spread can be estimated (one
    seed on both sides)."""

    k: float
    floor: float
    fixed: float | None = None
    false_alarm: float = 0.05

    def describe(self) -> str:
        """'3 standard errors of the difference (at least 0.002), with false alarms held to 5% by Holm's method'."""
        return (f"{self.k:g} standard errors of the difference" + (f" (at least {self.floor:g})" if self.floor else "")
                + f", with false alarms held to {self.false_alarm:.0%} by Holm's method")


@dataclass(frozen=True)
class Verdict:
    """How two means compare: their difference (a - b), the tolerance chance allows, whether that tolerance is the
    fixed one (no spread on either side), and whether the difference is told apart (None: no tolerance at all)."""

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


def standard_error_of_difference(a: Spread, b: Spread) -> float | None:
    """sqrt(std_a²/n_a + std_b²/n_b); one side's std stands for both when the other has none; None if neither."""
    if a.estimable and b.estimable:
        return math.sqrt(a.std ** 2 / a.n + b.std ** 2 / b.n)
    known = a if a.estimable else b if b.estimable else None
    if known is None:
        return None
    return known.std * math.sqrt(1 / a.n + 1 / b.n)


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


def _beyond(difference: float, allowed: float, only_lower: bool) -> bool:
    return (-difference if only_lower else abs(difference)) > allowed + TIE


def critical(df, level, tolerances: Tolerances, only_lower: bool):
    """How many standard errors a difference must pass at this Holm level: max(k, the t quantile of level, halved
    for a question asked both ways). Elementwise over arrays of df and level (a family, a rerun's draws)."""
    return np.maximum(tolerances.k, -special.stdtrit(df, np.asarray(level) / (1 if only_lower else 2)))


def told_apart(pairs: Sequence[tuple[Spread, Spread]], tolerances: Tolerances,
               only_lower: bool = False) -> list[Verdict]:
    """The one rule for "do these two means differ by more than the seed spread allows?", for a family of
    comparisons (a, b) that share tolerances.false_alarm by Holm's method; only_lower asks only whether a is below
    b (the gate's drop checks), else either way. A single comparison is a family of one. See the module docstring."""
    verdicts: list[Verdict | None] = [None] * len(pairs)
    measured = []  # (index, difference, SE, df) of the comparisons with a spread: Holm's family
    for index, (a, b) in enumerate(pairs):
        difference, error = a.mean - b.mean, standard_error_of_difference(a, b)
        if error is not None:
            measured.append((index, difference, error, degrees_of_freedom(a, b)))
        elif tolerances.fixed is not None:
            verdicts[index] = Verdict(difference, tolerances.fixed, True,
                                      _beyond(difference, tolerances.fixed, only_lower))
        else:
            verdicts[index] = Verdict(difference, None, False, None)
    if not measured:
        return verdicts
    sides = 1 if only_lower else 2
    _, differences, errors, dfs = (np.array(column, dtype=float) for column in zip(*measured))
    away = -differences if only_lower else np.abs(differences)
    with np.errstate(divide="ignore", invalid="ignore"):  # SE 0: any difference in the asked direction is sure
        t = np.where(errors > 0, away / errors, np.where(away > 0, np.inf, -np.inf))
    p_values = np.minimum(1.0, sides * special.stdtr(dfs, -t))
    family = len(measured)
    order = np.argsort(p_values, kind="stable")
    steps = np.empty(family, dtype=int)
    steps[order] = np.arange(family)
    # Holm's adjusted p-values: the running maximum of (m - step) p along the order
    adjusted = np.empty(family)
    adjusted[order] = np.maximum.accumulate(np.minimum(1.0, (family - np.arange(family)) * p_values[order]))
    levels = tolerances.false_alarm / (family - steps)
    bars = critical(dfs, levels, tolerances, only_lower)
    for position, (index, difference, error, _) in enumerate(measured):
        allowed = max(tolerances.floor, float(bars[position]) * error)
        apart = bool(adjusted[position] <= tolerances.false_alarm) and _beyond(difference, allowed, only_lower)
        verdicts[index] = Verdict(difference, allowed, False, apart)
    return verdicts


@dataclass(frozen=True)
class Sight:
    """A comparison of a against b (told_apart's verdict) with what it could see. detectable and false_alarm are
    None where the tolerance is the fixed one (no spread: nothing is known about the noise)."""

    verdict: Verdict
    detectable: float | None
    false_alarm: float | None

    @property
    def word(self) -> str:
        """Of a against b, in four words: regression when told lower; better when higher by more than the same
        tolerance; otherwise worse within noise (a is lower) or no measurable change."""
        if self.verdict.a_lower:
            return "regression"
        if self.verdict.allowed is not None and self.verdict.difference > self.verdict.allowed + TIE:
            return "better"
        return "worse within noise" if self.verdict.difference < 0 else "no measurable change"


def sights(pairs: Sequence[tuple[Spread, Spread]], tolerances: Tolerances, only_lower: bool = False,
           power: float = POWER) -> list[Sight]:
    """told_apart's verdicts on a family, each with what it could see: held, as the check with a true drop among
    no other change is, to Holm's first level, false_alarm / m (m: the comparisons with a spread)."""
    family = sum(standard_error_of_difference(a, b) is not None for a, b in pairs)
    seen = []
    for (a, b), verdict in zip(pairs, told_apart(pairs, tolerances, only_lower)):
        error, df = standard_error_of_difference(a, b), degrees_of_freedom(a, b)
        if verdict.allowed is None or verdict.fixed or error is None:
            seen.append(Sight(verdict, None, None))
            continue
        level = tolerances.false_alarm / family
        first = max(tolerances.floor, float(critical(df, level, tolerances, only_lower)) * error)
        false_alarm = 0.0 if error == 0 else (1 if only_lower else 2) * float(special.stdtr(df, -first / error))
        seen.append(Sight(verdict, detectable(a, b, tolerances, family=family, only_lower=only_lower, power=power),
                          false_alarm))
    return seen


def sight(a: Spread, b: Spread, tolerances: Tolerances, only_lower: bool = False, power: float = POWER) -> Sight:
    """One comparison, a family of one."""
    return sights([(a, b)], tolerances, only_lower, power)[0]


_DRAWS = 4000  # draws of the stds a rerun would estimate, for detectable()


@functools.lru_cache(maxsize=None)
def _variance_ratios(side: int, n: int) -> np.ndarray:
    """_DRAWS draws of s²/σ² ~ chi²(n - 1) / (n - 1) for a std estimated from n values; a fixed seed per (side, n),
    so a detectable drop is the same number every time it is worked out."""
    return np.random.default_rng((20261203, side, n)).chisquare(n - 1, _DRAWS) / (n - 1)


def detectable(a: Spread, b: Spread, tolerances: Tolerances, *, family: int, only_lower: bool,
               power: float = POWER) -> float:
    """The smallest true drop that a comparison like this one, rerun, catches with chance `power` when it is held
    to Holm's first level (false_alarm / family): the drop D where E[Phi((D - allowed) / SE)] = power, SE the
    true standard error of the difference (both stds taken as the truth) and the expectation over the stds a
    rerun would estimate, which set its SE, its Welch degrees of freedom and so its allowed drop, max(floor,
    max(k, q) x estimated SE) (4,000 fixed draws). With many seeds this is (max(k, q) + z(power)) SE; with few it
    is more, as the estimated std, and with it the t quantile, moves."""
    error = standard_error_of_difference(a, b)
    if error == 0:
        return tolerances.floor
    known = [(side, spread) for side, spread in enumerate((a, b)) if spread.estimable]
    if len(known) == 2:
        va = a.std ** 2 / a.n * _variance_ratios(0, a.n)
        vb = b.std ** 2 / b.n * _variance_ratios(1, b.n)
        estimated = np.sqrt(va + vb)
        with np.errstate(invalid="ignore", divide="ignore"):
            dfs = np.where(va + vb > 0, (va + vb) ** 2 / (va ** 2 / (a.n - 1) + vb ** 2 / (b.n - 1)), a.n + b.n - 2)
    else:  # one side's std stands for both (standard_error_of_difference)
        side, spread = known[0]
        estimated = error * np.sqrt(_variance_ratios(side, spread.n))
        dfs = np.full(_DRAWS, spread.n - 1.0)
    allowed = np.maximum(tolerances.floor, critical(dfs, tolerances.false_alarm / family, tolerances, only_lower)
                         * estimated)
    from scipy import optimize  # here: select and report, which never ask, start 0.2 s sooner without it

    caught = lambda drop: float(np.mean(special.ndtr((drop - allowed) / error))) - power  # noqa: E731
    return optimize.brentq(caught, 0.0, float(allowed.max()) + 10 * error, xtol=1e-9)


def replicates_to_detect(std: float, detect: float, tolerances: Tolerances, *, family: int, most: int,
                         power: float = POWER) -> int | None:
    """The fewest seeds (2 or more) that let a mean with this std, compared with another of as many seeds and the
    same std, one check of `family` drop checks, catch a true drop of `detect` with chance `power`; None if even
    `most` seeds cannot."""
    for n in range(2, most + 1):
        side = Spread(0.0, std, n)
        if detectable(side, side, tolerances, family=family, only_lower=True, power=power) <= detect + TIE:
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
    from scipy import stats  # here: 0.45 s of start-up for the one command that pairs (the gate)

    test = stats.binomtest(only_a, discordant, 0.5)
    interval = test.proportion_ci(0.95, method="exact")
    share = discordant / images
    return Paired(images, int(np.sum(right_a & right_b)), only_a, only_b, (only_a - only_b) / images,
                  share * (2 * interval.low - 1), share * (2 * interval.high - 1), float(test.pvalue))
