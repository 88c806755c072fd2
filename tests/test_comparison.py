"""What a comparison can see (fmnist/core/comparison.py): hand-worked numbers, then simulated gates drawn with the
committed spread of every gated metric, which must catch what the gate says they catch and raise no more false alarms
than gates.false_alarm. No process started. (The rule itself, Holm's steps included: tests/test_statistics.py.)"""
import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from fmnist.core import comparison, gate
from fmnist.core.comparison import Tolerances
from fmnist.core.gate import Check
from fmnist.core.spread import Spread

ROOT = Path(__file__).resolve().parent.parent
RULE = Tolerances(3.0, 0.002)  # false_alarm 0.05


def drop_sight(a: Spread, b: Spread, rule: Tolerances = RULE) -> comparison.Sight:
    """One drop check alone (a family of one, one way)."""
    return comparison.sight(a, b, rule, only_lower=True)


def test_welch_degrees_of_freedom_on_hand_worked_numbers():
    # va = .008²/5 = 1.28e-5, vb = .002²/2 = 2e-6: (1.48e-5)² / ((1.28e-5)²/4 + (2e-6)²/1) = 4.8719
    welch = comparison.degrees_of_freedom(Spread(0.87, 0.008, 5), Spread(0.86, 0.002, 2))
    assert welch == pytest.approx(4.8719, abs=1e-4)
    equal = Spread(0.87, 0.003, 5)
    assert comparison.degrees_of_freedom(equal, equal) == pytest.approx(8.0)  # equal spreads: 2n - 2
    assert comparison.degrees_of_freedom(Spread(0.87, None, 1), Spread(0.86, 0.003, 5)) == 4  # its std stands for both
    assert comparison.degrees_of_freedom(Spread(0.87, 0.0, 3), Spread(0.86, 0.0, 4)) == 5
    assert comparison.degrees_of_freedom(Spread(0.87, None, 1), Spread(0.86, None, 1)) is None


def test_false_alarm_is_the_t_tail_beyond_the_tolerance_not_the_normal_one():
    """Equal spreads of 5 seeds: df 8, and P(T_8 > 3) = 0.0085 (t tables: 3 lies between 2.896 at 0.01 and 3.355 at
    0.005), six times the normal tail 0.00135 that treats the std as known."""
    quiet = Spread(0.87, 0.002, 5)
    assert drop_sight(quiet, quiet, RULE).false_alarm == pytest.approx(0.0085, abs=1e-4)
    # Where the floor is the tolerance (SE 0.000316, floor 0.002 = 6.3 SE), a false alarm is far rarer.
    tiny = Spread(0.87, 0.0005, 5)
    assert drop_sight(tiny, tiny, RULE).false_alarm < 1e-3


def test_the_detectable_drop_on_hand_worked_numbers():
    """Past the floor: SE = 0.0005 sqrt(2/5) = 0.000316228, and 3 estimated SEs stay below the floor 0.002 in
    nearly every rerun, so the drop is caught when the difference passes 0.002: 0.002 + z(0.8) SE = 0.002 + 0.8416
    x 0.000316228 = 0.0022661. With many seeds (1,000 a side) the estimated SE is the true one and t is normal:
    k = 3 exceeds z(0.95) = 1.645, so (3 + 0.8416) SE. Holm's level among 18 checks adds to it where t(1 - 0.05/18)
    passes k: (3.0 + 0.8416) SE alone, (z(1 - 0.05/18) = 2.773 < 3) so the same with 1,000 seeds."""
    tiny = Spread(0.87, 0.0005, 5)
    assert drop_sight(tiny, tiny, RULE).detectable == pytest.approx(0.0022661, abs=2e-6)
    many, no_floor = Spread(0.87, 0.01, 1000), Tolerances(3.0, 0.0)
    error = 0.01 * math.sqrt(2 / 1000)
    for family in (1, 18):
        assert comparison.detectable(many, many, no_floor, family=family, only_lower=True) / error == pytest.approx(
            3.8416, abs=0.02)
    strict = Tolerances(1.0, 0.0)  # k out of the way: z(1 - 0.05/18) + z(0.8) = 2.7703 + 0.8416
    assert comparison.detectable(many, many, strict, family=18, only_lower=True) / error == pytest.approx(
        3.6119, abs=0.02)


def test_the_detectable_drop_grows_with_the_spread_and_shrinks_with_seeds():
    def detects(std, n):
        side = Spread(0.87, std, n)
        return drop_sight(side, side, RULE).detectable

    assert detects(0.008, 5) > detects(0.004, 5) > detects(0.004, 10)
    assert detects(0.008, 5) > 3 * 0.008 * math.sqrt(2 / 5)  # more than the tolerance itself: 80%, not 50%
    no_spread = drop_sight(Spread(0.87, None, 1), Spread(0.87, None, 1), Tolerances(3, 0.002, 0.005))
    assert (no_spread.detectable, no_spread.false_alarm) == (None, None)  # a fixed tolerance sees nothing known


@pytest.mark.parametrize("now, then, word", [
    (0.880, 0.870, "better"), (0.870, 0.880, "regression"),
    (0.869, 0.870, "worse within noise"), (0.870, 0.870, "no measurable change"),
    (0.871, 0.870, "no measurable change"),
])
def test_four_verdicts_only_one_of_which_is_a_regression(now, then, word):
    assert drop_sight(Spread(now, 0.002, 5), Spread(then, 0.002, 5), RULE).word == word


def test_the_seeds_to_detect_a_drop():
    """std 0.008, detect 0.01: 20 seeds a side catch it 80% of the time, 19 do not; a cap of 10 cannot reach it.
    Among 18 checks Holm holds the dropped one to 0.05/18: with std 0.004, 7 seeds where alone 6 do (6 seeds: df
    about 10, t(1 - 0.05/18, 10) = 3.52 > k, and the drop they catch is 0.0108)."""
    assert comparison.replicates_to_detect(0.008, 0.01, RULE, family=1, most=40) == 20
    side = Spread(0.0, 0.008, 19)
    assert drop_sight(side, side, RULE).detectable > 0.01
    assert comparison.replicates_to_detect(0.008, 0.01, RULE, family=1, most=10) is None
    assert comparison.replicates_to_detect(0.0015, 0.01, RULE, family=1, most=20) == 2
    assert comparison.replicates_to_detect(0.004, 0.01, RULE, family=1, most=20) == 6
    assert comparison.replicates_to_detect(0.004, 0.01, RULE, family=18, most=20) == 7
    six = Spread(0.0, 0.004, 6)
    assert comparison.detectable(six, six, RULE, family=18, only_lower=True) == pytest.approx(0.0108, abs=1e-4)


def test_the_lines_under_the_table_count_the_verdicts_name_the_blind_and_state_the_family_wise_rate():
    def drop(metric, now, then, std):
        seen = drop_sight(Spread(now, std, 5), Spread(then, std, 5), RULE)
        return Check(metric, now, "drop", "", seen.word != "regression", sight=seen)

    checks = [drop("a.m", 0.87, 0.87, 0.002), drop("b.m", 0.86, 0.87, 0.002), drop("c.m", 0.869, 0.87, 0.008)]
    lines = gate.sight_lines(checks, 0.01, 0.05)
    assert lines[0] == ("3 drop checks: 1 regression, 1 worse within noise, 1 no measurable change, 0 better "
                        "(only a regression fails)")
    assert lines[1].startswith("each detects, 80% of the time, a true drop of 0.0050 to 0.0200; ")
    assert lines[1].endswith("1 of 3 cannot see gates.detect = 0.01: c.m (make power: the seeds they need)")
    capped = [check if check.metric != "c.m" else Check("c.m", 0.869, "drop", "", True, spread=Spread(0.869, 0.008, 5),
                                                        sight=check.sight) for check in checks]
    assert gate.sight_lines(capped, 0.01, 0.05, most=5)[1].endswith(
        "1 of 3 cannot see gates.detect = 0.01: c.m (at the cap: gates.max_replicates = 5 seeds)")
    baseline = [drop("baseline.cv_accuracy", 0.82, 0.82, 0.008)]
    assert gate.sight_lines(baseline, 0.01, 0.05, most=5)[1].endswith(
        "1 of 1 cannot see gates.detect = 0.01: baseline.cv_accuracy (a spread across CV folds, which seeds do not "
        "change)")
    assert lines[2].startswith("false alarm: at most 5% across the 3 checks together (gates.false_alarm, held by "
                               f"Holm's method); with no change anywhere at most {3 * 0.008536:.1%} (each 0.85%: ")


def gated_spreads() -> dict[str, Spread]:
    """The committed spread of every gated metric (params.yaml gates.minimum), from reports/metrics."""
    metrics: dict[str, object] = {}
    for path in (ROOT / "reports/metrics").glob("*.json"):
        flat: dict = {}
        gate._flatten("", json.loads(path.read_text()), flat)
        metrics.update({f"{path.stem}.{key}": value for key, value in flat.items()})
    minimum = yaml.safe_load((ROOT / "params.yaml").read_text())["gates"]["minimum"]
    return {metric: gate.spread_of(metric, metrics) for metric in minimum}


def simulated_gates(spreads: list[Spread], runs: int, rng, drop: np.ndarray | None = None) -> np.ndarray:
    """Each run, every metric drawn afresh on both sides (n seeds each, normals with the committed std as the truth,
    `drop` subtracted from the new side's true mean) and judged by the gate's rule as one family of drop checks:
    whether each was told lower, shape (runs, metrics)."""
    drop = np.zeros(len(spreads)) if drop is None else drop
    draws = [rng.normal(0, side.std, (2, runs, side.n)) for side in spreads]
    means = np.stack([draw.mean(axis=2) for draw in draws], axis=2).tolist()  # [side][run][metric]
    stds = np.stack([draw.std(axis=2, ddof=1) for draw in draws], axis=2).tolist()
    flagged = np.zeros((runs, len(spreads)), dtype=bool)
    for run in range(runs):
        pairs = [(Spread(means[0][run][i] - drop[i], stds[0][run][i], side.n),
                  Spread(means[1][run][i], stds[1][run][i], side.n)) for i, side in enumerate(spreads)]
        flagged[run] = [verdict.a_lower for verdict in comparison.told_apart(pairs, RULE, only_lower=True)]
    return flagged


def test_simulated_gates_with_no_change_hold_the_family_wise_false_alarm():
    """2,000 simulated gates, every gated metric with its committed std and seeds, nothing changed: a false alarm
    anywhere in at most gates.false_alarm of them (5%, within Monte-Carlo error), and each check no more often than
    its stated chance. Without Holm (each check at 5% on its own, or at k = 3 alone) it is 14% or more."""
    spreads = list(gated_spreads().values())
    assert len(spreads) >= 10 and all(side.estimable for side in spreads)
    runs = 2000
    flagged = simulated_gates(spreads, runs, np.random.default_rng(0))
    family = flagged.any(axis=1).mean()
    assert family <= RULE.false_alarm + 3 * math.sqrt(RULE.false_alarm * (1 - RULE.false_alarm) / runs), family
    stated = [seen.false_alarm for seen in comparison.sights([(side, side) for side in spreads], RULE, only_lower=True)]
    for column, chance in enumerate(stated):
        assert flagged[:, column].mean() <= chance + 4 * math.sqrt(chance / runs) + 1e-3, (column, chance)


def test_simulated_gates_catch_the_drop_each_line_states_80_percent_of_the_time():
    """The committed seeds: for the quietest, a middling and the noisiest gated mean, a true drop of exactly the
    detectable drop the gate states is caught in 80% of 400 simulated gates (74-86%: 3 Monte-Carlo standard
    errors). Caught less: the stated drop is too small (the old t-at-nominal-df formula caught 71-75%); more: too
    large."""
    spreads = gated_spreads()
    names = list(spreads)
    stated = comparison.sights([(side, side) for side in spreads.values()], RULE, only_lower=True)
    by_std = sorted(range(len(names)), key=lambda i: spreads[names[i]].std)
    rng = np.random.default_rng(2)
    for column in (by_std[0], by_std[len(by_std) // 2], by_std[-1]):
        drop = np.zeros(len(names))
        drop[column] = stated[column].detectable
        caught = simulated_gates(list(spreads.values()), 400, rng, drop)[:, column].mean()
        assert abs(caught - 0.8) <= 3 * math.sqrt(0.16 / 400), (names[column], caught)


def test_simulated_gates_with_power_chosen_seeds_catch_a_drop_of_gates_detect():
    """With the seeds `make power` sets (gates.max_replicates at most), a true drop of gates.detect (0.01) in any one
    variant mean, nothing else changed, is caught in at least 80% of 400 simulated gates (within Monte-Carlo error:
    3 standard errors, 0.06); a mean that even the cap cannot bring to 0.01 is given the drop its line says it
    detects instead. The baseline's spread is across folds, not seeds: left out, as the power command leaves it."""
    spreads = gated_spreads()
    params = yaml.safe_load((ROOT / "params.yaml").read_text())["gates"]
    rule = Tolerances(params["k"], params["floor"], false_alarm=params["false_alarm"])
    family, most, detect = len(spreads), params["max_replicates"], params["detect"]
    needs = {metric: comparison.replicates_to_detect(side.std, detect, rule, family=family, most=most)
             for metric, side in spreads.items()}
    per_variant: dict[str, int] = {}  # the power command raises a variant's seeds, never lowers them
    for metric, need in needs.items():
        stem = metric.partition(".")[0]
        per_variant[stem] = max(per_variant.get(stem, spreads[metric].n), need or most)
    seeded = {metric: Spread(side.mean, side.std, per_variant[metric.partition(".")[0]])
              for metric, side in spreads.items()}
    names = list(seeded)
    runs, rng = 400, np.random.default_rng(1)
    for column, metric in enumerate(names):
        if metric.startswith("baseline."):
            continue
        side = seeded[metric]
        size = detect if needs[metric] else comparison.detectable(side, side, rule, family=family, only_lower=True)
        drop = np.zeros(len(names))
        drop[column] = size
        caught = simulated_gates(list(seeded.values()), runs, rng, drop)[:, column].mean()
        assert caught >= 0.8 - 3 * math.sqrt(0.16 / runs), (metric, side.n, size, caught)


def test_mcnemar_on_a_hand_made_table():
    """100 images: 80 both right, 10 only a right, 2 only b right, 8 both wrong. Exact McNemar: 2 P(X <= 2), X ~
    Binomial(12, 1/2) = 2 (1 + 12 + 66) / 4096 = 0.038574. Difference (10 - 2) / 100 = +0.08; Clopper-Pearson for
    10 of 12 is 0.5159 to 0.9791 (tables), so 0.12 (2 pi - 1): +0.0038 to +0.1150."""
    actual = np.zeros(100, dtype=int)
    a = np.array([0] * 80 + [0] * 10 + [1] * 2 + [1] * 8)
    b = np.array([0] * 80 + [1] * 10 + [0] * 2 + [1] * 8)
    pair = comparison.paired(actual, a, b)
    assert (pair.images, pair.both_right, pair.only_a, pair.only_b) == (100, 80, 10, 2)
    assert pair.p_value == pytest.approx(2 * 79 / 4096, abs=1e-9)
    assert pair.difference == pytest.approx(0.08)
    assert (pair.low, pair.high) == (pytest.approx(0.0038, abs=2e-4), pytest.approx(0.1150, abs=2e-4))
    flipped = comparison.paired(actual, b, a)  # the other way round: the same p, the interval mirrored
    assert flipped.p_value == pytest.approx(pair.p_value) and flipped.difference == pytest.approx(-0.08)
    assert (flipped.low, flipped.high) == (pytest.approx(-pair.high), pytest.approx(-pair.low))
    same = comparison.paired(actual, a, a)
    assert (same.only_a, same.only_b, same.p_value, same.difference) == (0, 0, 1.0, 0.0)
