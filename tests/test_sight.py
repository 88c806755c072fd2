"""What a comparison can see (fmnist/core/sight.py): hand-worked numbers, then simulated gates drawn with the committed
spread of every gated metric, which must catch what the gate says they catch and raise no more false alarms than it
says. No process started."""
import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from fmnist.core import gate, sight
from fmnist.core.gate import Check
from fmnist.core.spread import Spread, Tolerances

ROOT = Path(__file__).resolve().parent.parent
RULE = Tolerances(3.0, 0.002)


def test_welch_degrees_of_freedom_on_hand_worked_numbers():
    # va = .008²/5 = 1.28e-5, vb = .002²/2 = 2e-6: (1.48e-5)² / ((1.28e-5)²/4 + (2e-6)²/1) = 4.8719
    assert sight.degrees_of_freedom(Spread(0.87, 0.008, 5), Spread(0.86, 0.002, 2)) == pytest.approx(4.8719, abs=1e-4)
    equal = Spread(0.87, 0.003, 5)
    assert sight.degrees_of_freedom(equal, equal) == pytest.approx(8.0)  # equal spreads: 2n - 2
    assert sight.degrees_of_freedom(Spread(0.87, None, 1), Spread(0.86, 0.003, 5)) == 4  # its std stands for both
    assert sight.degrees_of_freedom(Spread(0.87, 0.0, 3), Spread(0.86, 0.0, 4)) == 5
    assert sight.degrees_of_freedom(Spread(0.87, None, 1), Spread(0.86, None, 1)) is None


def test_false_alarm_is_the_t_tail_beyond_the_tolerance_not_the_normal_one():
    """Equal spreads of 5 seeds: df 8, and P(T_8 > 3) = 0.0085 (t tables: 3 lies between 2.896 at 0.01 and 3.355 at
    0.005), six times the normal tail 0.00135 that treats the std as known."""
    quiet = Spread(0.87, 0.002, 5)
    assert sight.sight(quiet, quiet, RULE).false_alarm == pytest.approx(0.0085, abs=1e-4)
    # Where the floor is the tolerance (SE 0.000316, floor 0.002 = 6.3 SE), a false alarm is far rarer.
    tiny = Spread(0.87, 0.0005, 5)
    assert sight.sight(tiny, tiny, RULE).false_alarm < 1e-3


def test_the_detectable_drop_past_the_floor_is_the_floor_plus_t_power_standard_errors():
    # SE = 0.0005 * sqrt(2/5) = 0.000316228; t(0.8, 8) = 0.8889: 0.002 + 0.8889 * 0.000316228 = 0.0022811
    tiny = Spread(0.87, 0.0005, 5)
    assert sight.sight(tiny, tiny, RULE).detectable == pytest.approx(0.0022811, abs=1e-6)


def test_the_detectable_drop_grows_with_the_spread_and_shrinks_with_seeds():
    def detects(std, n):
        side = Spread(0.87, std, n)
        return sight.sight(side, side, RULE).detectable

    assert detects(0.008, 5) > detects(0.004, 5) > detects(0.004, 10)
    assert detects(0.008, 5) > 3 * 0.008 * math.sqrt(2 / 5)  # more than the tolerance itself: 80%, not 50%
    no_spread = sight.sight(Spread(0.87, None, 1), Spread(0.87, None, 1), Tolerances(3, 0.002, 0.005))
    assert (no_spread.detectable, no_spread.false_alarm) == (None, None)  # a fixed tolerance sees nothing known


@pytest.mark.parametrize("now, then, word", [
    (0.880, 0.870, "better"), (0.870, 0.880, "regression"),
    (0.869, 0.870, "worse within noise"), (0.870, 0.870, "no measurable change"),
    (0.871, 0.870, "no measurable change"),
])
def test_four_verdicts_only_one_of_which_is_a_regression(now, then, word):
    assert sight.sight(Spread(now, 0.002, 5), Spread(then, 0.002, 5), RULE).word == word


def test_the_seeds_to_detect_a_drop():
    """std 0.008, detect 0.01: 20 seeds a side catch it 80% of the time, 19 do not (detectable 0.01020); a cap of 10
    cannot reach it."""
    assert sight.replicates_to_detect(0.008, 0.01, RULE, 40) == 20
    side = Spread(0.0, 0.008, 19)
    assert sight.sight(side, side, RULE).detectable > 0.01
    assert sight.replicates_to_detect(0.008, 0.01, RULE, 10) is None
    assert sight.replicates_to_detect(0.0015, 0.01, RULE, 20) == 2


def test_the_lines_under_the_table_count_the_verdicts_name_the_blind_and_sum_the_false_alarms():
    def drop(metric, now, then, std):
        seen = sight.sight(Spread(now, std, 5), Spread(then, std, 5), RULE)
        return Check(metric, now, "drop", "", seen.word != "regression", sight=seen)

    checks = [drop("a.m", 0.87, 0.87, 0.002), drop("b.m", 0.86, 0.87, 0.002), drop("c.m", 0.869, 0.87, 0.008)]
    lines = gate.sight_lines(checks, 0.01)
    assert lines[0] == ("3 drop checks: 1 regression, 1 worse within noise, 1 no measurable change, 0 better "
                        "(only a regression fails)")
    assert lines[1].startswith("each detects, 80% of the time, a true drop of 0.0050 to 0.0200; ")
    assert lines[1].endswith("1 of 3 cannot see gates.detect = 0.01 (make power: the seeds they need): c.m")
    assert lines[2].startswith(f"false alarm: at most {3 * 0.008536:.1%} across the 3 checks together")


def gated_spreads() -> dict[str, Spread]:
    """The committed spread of every gated metric (params.yaml gates.minimum), from reports/metrics."""
    metrics: dict[str, object] = {}
    for path in (ROOT / "reports/metrics").glob("*.json"):
        flat: dict = {}
        gate._flatten("", json.loads(path.read_text()), flat)
        metrics.update({f"{path.stem}.{key}": value for key, value in flat.items()})
    minimum = yaml.safe_load((ROOT / "params.yaml").read_text())["gates"]["minimum"]
    return {metric: gate.spread_of(metric, metrics) for metric in minimum}


def simulated_differences(spreads: list[Spread], runs: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """(now - reference, each run's estimated SE of it), shape (runs, metrics): both sides drawn afresh, n seeds
    each, from normals with the committed std as the truth and no change between them."""
    differences, errors = [], []
    for side in spreads:
        now, then = rng.normal(0, side.std, (2, runs, side.n))
        differences.append(now.mean(1) - then.mean(1))
        errors.append(np.sqrt(now.var(1, ddof=1) / side.n + then.var(1, ddof=1) / side.n))
    return np.array(differences).T, np.array(errors).T


def test_simulated_gates_with_the_committed_spreads_see_what_the_gate_says():
    """2,000 simulated gates, each every gated metric drawn afresh on both sides with its committed std: with no
    change, each check's false alarms and the whole gate's stay within what sight says (within Monte-Carlo error);
    with a true drop of a check's stated detectable drop, that check catches it 80% of the time (75-85%)."""
    spreads = list(gated_spreads().values())
    assert len(spreads) >= 10 and all(side.estimable for side in spreads)
    rng = np.random.default_rng(0)
    runs = 2000
    differences, errors = simulated_differences(spreads, runs, rng)
    allowed = np.maximum(RULE.floor, RULE.k * errors)
    stated = [sight.sight(side, side, RULE) for side in spreads]
    alarms = differences < -allowed
    for column, seen in enumerate(stated):
        rate = alarms[:, column].mean()
        assert abs(rate - seen.false_alarm) < 4 * math.sqrt(seen.false_alarm / runs) + 1e-3, (column, rate)
    family = alarms.any(axis=1).mean()
    bound = sum(seen.false_alarm for seen in stated)
    assert family <= bound + 3 * math.sqrt(bound / runs)
    assert family > sum(seen.false_alarm for seen in stated) / 3  # the t tail: a normal one would say 0.0013 each
    detectable = np.array([seen.detectable for seen in stated])
    caught = (differences - detectable < -allowed).mean(axis=0)
    assert np.all((caught > 0.75) & (caught < 0.85)), caught


def test_mcnemar_on_a_hand_made_table():
    """100 images: 80 both right, 10 only a right, 2 only b right, 8 both wrong. Exact McNemar: 2 P(X <= 2), X ~
    Binomial(12, 1/2) = 2 (1 + 12 + 66) / 4096 = 0.038574. Difference (10 - 2) / 100 = +0.08; Clopper-Pearson for
    10 of 12 is 0.5159 to 0.9791 (tables), so 0.12 (2 pi - 1): +0.0038 to +0.1150."""
    actual = np.zeros(100, dtype=int)
    a = np.array([0] * 80 + [0] * 10 + [1] * 2 + [1] * 8)
    b = np.array([0] * 80 + [1] * 10 + [0] * 2 + [1] * 8)
    pair = sight.paired(actual, a, b)
    assert (pair.images, pair.both_right, pair.only_a, pair.only_b) == (100, 80, 10, 2)
    assert pair.p_value == pytest.approx(2 * 79 / 4096, abs=1e-9)
    assert pair.difference == pytest.approx(0.08)
    assert (pair.low, pair.high) == (pytest.approx(0.0038, abs=2e-4), pytest.approx(0.1150, abs=2e-4))
    flipped = sight.paired(actual, b, a)  # the other way round: the same p, the interval mirrored
    assert flipped.p_value == pytest.approx(pair.p_value) and flipped.difference == pytest.approx(-0.08)
    assert (flipped.low, flipped.high) == (pytest.approx(-pair.high), pytest.approx(-pair.low))
    same = sight.paired(actual, a, a)
    assert (same.only_a, same.only_b, same.p_value, same.difference) == (0, 0, 1.0, 0.0)
