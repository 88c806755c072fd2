"""The statistics that decide pass or fail, on hand-worked numbers, with no process started: the seed spread
(fmnist/core/spread.py), the gate's checks (fmnist/core/gate.py), the selection rule (fmnist/core/choice.py).

These are the tests mutmut runs against those modules (`make mutation`); the end-to-end gate runs through DVC
are in tests/test_gate.py.
"""
import math

import pytest

from scipy import stats

from fmnist.core import choice, comparison, gate, spread
from fmnist.core.gate import Check, Tolerances
from fmnist.core.spread import Spread
from fmnist.plumbing.errors import StageError
from fmnist.schema.reporting import SelectParams

# --- spread ------------------------------------------------------------------------------------------------


def test_summarize_gives_mean_sample_std_min_and_max():
    stats = spread.summarize([0.80, 0.84, 0.82])
    assert stats["mean"] == pytest.approx(0.82)
    assert stats["std"] == pytest.approx(0.02)  # sample std: sqrt((0.02² + 0.02² + 0) / 2)
    assert (stats["min"], stats["max"]) == (0.80, 0.84)
    assert spread.summarize([0.5]) == {"mean": 0.5, "std": None, "min": 0.5, "max": 0.5}
    assert spread.summarize([1.0, 3.0])["std"] == pytest.approx(math.sqrt(2))


def test_seed_metrics_headline_and_details():
    per_seed = [{"seed": 42, "val_accuracy": 0.80, "test_accuracy": 0.70},
                {"seed": 43, "val_accuracy": 0.84, "test_accuracy": 0.74}]
    headline, details = spread.seed_metrics(per_seed)
    assert headline == {"seeds": 2, "val_accuracy_mean": pytest.approx(0.82),
                        "val_accuracy_std": pytest.approx(0.0282843, abs=1e-7),
                        "test_accuracy_mean": pytest.approx(0.72),
                        "test_accuracy_std": pytest.approx(0.0282843, abs=1e-7)}
    assert details["seeds"] == [42, 43] and details["per_seed"] is per_seed
    assert details["val_accuracy"]["min"] == 0.80 and details["test_accuracy"]["max"] == 0.74
    assert set(details) == {"seeds", "per_seed", "val_accuracy", "test_accuracy"}


def test_a_spread_is_estimable_only_with_a_finite_std_and_two_values():
    assert Spread(0.8, 0.01, 2).estimable
    assert not Spread(0.8, None, 5).estimable
    assert not Spread(0.8, 0.01, 1).estimable
    assert not Spread(0.8, float("nan"), 5).estimable
    assert Spread(0.8, 0.0, 3).estimable  # identical seeds: a spread of zero is still a measured spread


def test_standard_error_of_the_difference():
    a, b = Spread(0.87, 0.008, 5), Spread(0.86, 0.002, 2)
    assert comparison.standard_error_of_difference(a, b) == pytest.approx(math.sqrt(0.008**2 / 5 + 0.002**2 / 2))
    lone = Spread(0.86, None, 1)
    assert comparison.standard_error_of_difference(lone, a) == pytest.approx(0.008 * math.sqrt(1 / 1 + 1 / 5))
    assert comparison.standard_error_of_difference(a, lone) == pytest.approx(0.008 * math.sqrt(1 / 5 + 1 / 1))
    assert comparison.standard_error_of_difference(lone, lone) is None


def one(a: Spread, b: Spread, rule: Tolerances, only_lower: bool = False):
    return comparison.told_apart([(a, b)], rule, only_lower)[0]


def test_alone_the_tolerance_is_k_standard_errors_or_the_t_quantile_never_below_the_floor():
    """4 seeds a side, std 0.01: SE = sqrt(2 * 0.0001 / 4) = 0.0070711, df 6. Alone, both ways at 5%: t(0.975, 6) =
    2.447 (tables), so k = 3 decides (0.0212132); with k = 1 the t quantile does (2.447 SE = 0.0173029)."""
    a = Spread(0.87, 0.01, 4)
    assert one(a, a, Tolerances(3, 0.0)).allowed == pytest.approx(0.0212132, abs=1e-7)
    assert one(a, a, Tolerances(1, 0.0)).allowed == pytest.approx(2.4469 * 0.0070711, abs=1e-6)
    assert one(a, a, Tolerances(1, 0.0), only_lower=True).allowed == pytest.approx(1.9432 * 0.0070711, abs=1e-6)
    assert one(a, a, Tolerances(1, 0.03)).allowed == 0.03
    assert one(Spread(0.8, None, 1), Spread(0.8, None, 1), Tolerances(3, 0.01)).allowed is None


def test_told_apart_compares_the_gap_with_the_tolerance_both_ways():
    a, rule = Spread(0.88, 0.01, 4), Tolerances(3, 0.0)
    verdict = one(a, Spread(0.85, 0.01, 4), rule)
    assert (verdict.apart, verdict.fixed) == (True, False)
    assert verdict.allowed == pytest.approx(0.0212132, abs=1e-7)
    assert verdict.difference == pytest.approx(0.03) and verdict.a_higher and not verdict.a_lower
    flipped = one(Spread(0.85, 0.01, 4), a, rule)
    assert flipped.apart is True and flipped.a_lower and not flipped.a_higher  # the sign of the gap does not matter
    assert one(a, Spread(0.87, 0.01, 4), rule).apart is False
    assert one(Spread(0.87, 0.0, 4), Spread(0.86, 0.0, 4), Tolerances(3, 0.01)).apart is False  # at the floor
    assert one(Spread(0.8701, 0.0, 4), Spread(0.86, 0.0, 4), Tolerances(3, 0.01)).apart is True
    assert one(a, Spread(0.85, 0.01, 4), rule, only_lower=True).apart is False  # higher: not what was asked
    no_spread = one(Spread(0.8, None, 1), Spread(0.9, None, 1), rule)
    assert (no_spread.apart, no_spread.allowed) == (None, None) and not no_spread.a_lower


def test_holm_steps_down_through_the_family_on_hand_worked_numbers():
    """Three drops, 5 seeds a side, std 0.002: SE = 0.002 sqrt(2/5) = 0.0012649, df 8, k 0 (Holm alone), one way.
    Drops 0.006, 0.004, 0.0025 are t = 4.743, 3.162, 1.976: p < 0.001, 0.005 < p < 0.01, 0.025 < p < 0.05 (t tables
    for 8 df: 4.501 at 0.001; 2.896 at 0.01, 3.355 at 0.005; 2.306 at 0.025, 1.860 at 0.05). Holm holds them to
    0.05/3, 0.05/2 and 0.05 in that order: all three told apart, the last (t 1.976 > 1.860) only because the two
    before it were; Bonferroni (0.05/3 each) would keep it. Without the largest drop, the order starts at the
    0.004 drop, the 0.0025 drop is held to 0.05/2 (needs t > 2.306) and is not told apart."""
    rule, error = Tolerances(0.0, 0.0, false_alarm=0.05), 0.002 * math.sqrt(2 / 5)
    then = Spread(0.87, 0.002, 5)

    def drops(*sizes):
        return comparison.told_apart([(Spread(0.87 - size, 0.002, 5), then) for size in sizes], rule, only_lower=True)

    verdicts = drops(0.0025, 0.006, 0.004)  # listed out of order: the p-values order them
    assert [v.apart for v in verdicts] == [True, True, True]
    assert verdicts[0].allowed == pytest.approx(1.8595 * error, abs=1e-6)  # third step: 0.05 / 1
    assert verdicts[2].allowed == pytest.approx(2.3060 * error, abs=1e-6)  # second step: 0.05 / 2
    assert verdicts[1].allowed == pytest.approx(float(stats.t.isf(0.05 / 3, 8)) * error, abs=1e-9)  # first: 0.05 / 3
    without = drops(0.0025, 0.0, 0.004)
    assert [v.apart for v in without] == [False, False, True]
    assert without[0].allowed == pytest.approx(2.3060 * error, abs=1e-6)
    # k still binds where Holm's level would allow less: with k 3 the 0.0025 drop (1.976 SE) is never told apart.
    assert not comparison.told_apart([(Spread(0.8675, 0.002, 5), then)], Tolerances(3, 0.0), only_lower=True)[0].apart


def test_told_apart_falls_back_to_the_fixed_tolerance_only_without_any_spread():
    lone = Spread(0.80, None, 1)
    fixed = one(lone, Spread(0.806, None, 1), Tolerances(3, 0.0, fixed=0.005))
    assert (fixed.apart, fixed.allowed, fixed.fixed) == (True, 0.005, True) and fixed.a_lower
    measured = one(lone, Spread(0.806, 0.01, 5), Tolerances(3, 0.0, fixed=0.005))
    assert measured.fixed is False and measured.apart is False  # one side's spread stands for both


def test_the_rule_describes_itself_with_its_params():
    assert Tolerances(3.0, 0.002).describe() == ("3 standard errors of the difference (at least 0.002), with false "
                                                 "alarms held to 5% by Holm's method")
    assert Tolerances(2.5, 0.0, false_alarm=0.01).describe() == ("2.5 standard errors of the difference, with false "
                                                                 "alarms held to 1% by Holm's method")


TOLERANCES = Tolerances(k=3.0, floor=0.002, fixed=0.005)
NOW = {
    "baseline.cv_accuracy": 0.82, "baseline.cv_accuracy_std": 0.003, "baseline.cv_folds": 5,
    "baseline.val_accuracy": 0.83,
    "softmax.val_accuracy": 0.845, "softmax.val_accuracy_mean": 0.846, "softmax.val_accuracy_std": 0.002,
    "softmax.test_accuracy_mean": 0.836, "softmax.test_accuracy_std": 0.003, "softmax.seeds": 5,
    "softmax.epochs_run": 5,
}


def test_metric_names_are_file_stem_and_flattened_key():
    shown = {"workspace": {"data": {"reports/metrics/softmax.json": {"data": {"a": 1, "b": {"c": 2, "d": {"e": 3}}}},
                                    "reports/metrics/x.json": {"data": {}}}}}
    assert gate.metrics_shown(shown) == {"softmax.a": 1, "softmax.b.c": 2, "softmax.b.d.e": 3}
    with pytest.raises(StageError, match=r"reports/metrics/bad.json: DVC could not read it \(boom\)"):
        gate.metrics_shown({"workspace": {"data": {"reports/metrics/bad.json": {"error": "boom"}}}})
    diff = {"reports/metrics/softmax.json": {"val_accuracy_mean": {"old": 0.84, "new": 0.85}, "seeds": {"new": 5}}}
    assert gate.metrics_before(diff) == {"softmax.val_accuracy_mean": 0.84, "softmax.seeds": None}


def test_spread_of_reads_the_std_sibling_and_the_count():
    assert gate.spread_of("softmax.val_accuracy_mean", NOW) == Spread(0.846, 0.002, 5)
    assert gate.spread_of("baseline.cv_accuracy", NOW) == Spread(0.82, 0.003, 5)  # folds count as n
    assert gate.spread_of("softmax.val_accuracy", NOW) == Spread(0.845, None, 1)  # one seed's, beside the mean
    assert gate.spread_of("baseline.val_accuracy", NOW) == Spread(0.83, None, 1)  # one fit: no std sibling
    assert gate.spread_of("softmax.epochs_run", NOW) == Spread(5.0, None, 1)
    assert gate.spread_of("softmax.missing", NOW) is None
    assert gate.spread_of("softmax.val_accuracy_mean", {**NOW, "softmax.val_accuracy_mean": True}) is None
    assert gate.spread_of("softmax.val_accuracy_mean", {**NOW, "softmax.val_accuracy_mean": float("inf")}) is None
    one_seed = {"v.val_accuracy_mean": 0.8, "v.val_accuracy_std": 0.01, "v.seeds": 1}
    assert gate.spread_of("v.val_accuracy_mean", one_seed) == Spread(0.8, None, 1)  # no spread from one seed
    assert gate.spread_of("v.val_accuracy_mean", {"v.val_accuracy_mean": 0.8, "v.seeds": 0}) == Spread(0.8, None, 1)
    assert gate.spread_of("v.val_accuracy_mean", {"v.val_accuracy_mean": 0.8, "v.seeds": 2.9,
                                                  "v.val_accuracy_std": 0.01}) == Spread(0.8, 0.01, 2)


def test_minimums_pass_at_the_threshold_and_fail_below_with_the_reason():
    checks = gate.check_minimums({"softmax.val_accuracy_mean": 0.846, "baseline.cv_accuracy": 0.83}, NOW)
    assert [(c.metric, c.value, c.kind, c.rule, c.passed) for c in checks] == [
        ("softmax.val_accuracy_mean", 0.846, "minimum", ">= 0.846", True),
        ("baseline.cv_accuracy", 0.82, "minimum", ">= 0.83", False)]
    assert checks[0].reason == "" and checks[0].spread == Spread(0.846, 0.002, 5)
    assert checks[1].reason == "0.8200 is below the minimum 0.83"


def test_a_missing_file_an_unknown_key_or_a_non_number_fails_with_its_reason():
    checks = gate.check_minimums({"relu.val_accuracy_mean": 0.8, "softmax.val_acc": 0.8,
                                  "softmax.epochs_run": 1}, {**NOW, "softmax.epochs_run": "five"})
    assert [c.passed for c in checks] == [False, False, False]
    assert all(c.value is None and c.rule.startswith(">= ") for c in checks)
    assert checks[0].reason == ("reports/metrics/relu.json not found (run `dvc repro train@relu`, or fix the name "
                                "in params.yaml gates)")
    assert checks[1].reason == ("unknown metric 'val_acc' in reports/metrics/softmax.json (it has: epochs_run, seeds, "
                                "test_accuracy_mean, test_accuracy_std, val_accuracy, val_accuracy_mean, "
                                "val_accuracy_std)")
    assert checks[2].reason == "not a number ('five')"
    baseline = gate.check_minimums({"baseline.x": 0.1}, {})
    assert "run `dvc repro baseline`" in baseline[0].reason


@pytest.mark.parametrize("mean, std, n, k, margin, expected", [
    (0.8725, 0.0044, 5, 3.0, 0.01, 0.862),  # the margin is wider than 3 SE
    (0.8805, 0.0083, 5, 3.0, 0.01, 0.869),  # 3 SE (0.01114) is wider
    (0.8805, 0.0083, 5, 1.0, 0.01, 0.870),  # k scales it
    (0.8805, 0.0083, 5, 3.0, 0.02, 0.860),  # the margin
    (0.85, None, 1, 3.0, 0.01, 0.84),       # no spread: the margin alone
    (0.8801, 0.0, 5, 3.0, 0.01, 0.87),      # rounded down
    (0.8809, 0.0, 5, 3.0, 0.01, 0.87),      # rounded down, never up
])
def test_derived_minimum(mean, std, n, k, margin, expected):
    assert gate.derived_minimum(Spread(mean, std, n), k, margin) == expected


def test_coverage_names_every_ungated_variant_with_the_line_to_add():
    minimum = {"softmax.val_accuracy_mean": 0.83}
    current = {**NOW, "relu.val_accuracy_mean": 0.8725, "relu.val_accuracy_std": 0.0044, "relu.seeds": 5}
    checks = gate.check_coverage(["baseline", "softmax", "relu", "new"], minimum, current, 3.0, 0.01)
    assert [(c.metric, c.passed, c.kind, c.rule) for c in checks] == [
        ("baseline.cv_accuracy", False, "minimum", "no minimum"),
        ("relu.val_accuracy_mean", False, "minimum", "no minimum"),
        ("new.val_accuracy_mean", False, "minimum", "no minimum")]
    assert checks[0].reason == ("no minimum in params.yaml gates.minimum, so nothing gates it: add "
                                "`baseline.cv_accuracy: 0.81` (max(0.01, 3 std/sqrt(n)) below its mean 0.8200)")
    assert checks[1].reason.endswith("add `relu.val_accuracy_mean: 0.862` (max(0.01, 3 std/sqrt(n)) below its mean "
                                     "0.8725)")
    assert checks[1].value == 0.8725 and checks[1].spread == Spread(0.8725, 0.0044, 5)
    assert checks[2].value is None and checks[2].spread is None
    assert checks[2].reason.endswith("add a `new.val_accuracy_mean:` minimum once reports/metrics/new.json exists")
    assert gate.check_coverage(["softmax"], minimum, current, 3.0, 0.01) == []


def test_a_drop_within_the_spread_passes_and_beyond_it_fails():
    reference = {**NOW, "softmax.val_accuracy_mean": 0.850}  # now 0.846: a drop of 0.004
    allowed = 3 * math.sqrt(2 * 0.002**2 / 5)  # 0.0037947
    checks, warnings = gate.check_drops(["softmax.val_accuracy_mean"], NOW, reference, "main", TOLERANCES)
    assert warnings == [] and len(checks) == 1
    (check,) = checks
    assert (check.kind, check.passed, check.value) == ("drop", False, 0.846)
    # one check alone, one way: t(0.95, 8) = 1.86 is below k, so k x SE; what it detects: tests/test_comparison.py
    detects = comparison.sight(Spread(0, 0.002, 5), Spread(0, 0.002, 5), TOLERANCES, only_lower=True).detectable
    assert check.rule == f"0.8500 (-0.0040, allowed -{allowed:.4f}, detects {detects:.4f}) regression"
    assert check.reason == (f"dropped 0.0040 from 0.8500 at main (allowed {allowed:.4f}, gates.floor or max(gates.k, "
                            "Holm t) x SE of the difference)")
    reference["softmax.val_accuracy_mean"] = 0.846 + allowed  # exactly the tolerance: passes
    assert gate.check_drops(["softmax.val_accuracy_mean"], NOW, reference, "main", TOLERANCES)[0][0].passed
    reference["softmax.val_accuracy_mean"] = 0.840  # a rise always passes
    (rise,), _ = gate.check_drops(["softmax.val_accuracy_mean"], NOW, reference, "main", TOLERANCES)
    assert rise.passed and rise.rule == f"0.8400 (+0.0060, allowed -{allowed:.4f}, detects {detects:.4f}) better"
    assert rise.reason == ""
    reference["softmax.val_accuracy_mean"] = 0.847  # a small drop: within noise, and it says so
    (small,), _ = gate.check_drops(["softmax.val_accuracy_mean"], NOW, reference, "main", TOLERANCES)
    assert small.passed and small.rule.endswith(") worse within noise")


def test_a_drop_with_no_spread_uses_the_fixed_tolerance_and_warns():
    now = {"v.val_accuracy_mean": 0.846, "v.seeds": 1}
    then = {"v.val_accuracy_mean": 0.850, "v.seeds": 1}
    (check,), warnings = gate.check_drops(["v.val_accuracy_mean"], now, then, "main", TOLERANCES)
    assert check.passed and check.rule == "0.8500 (-0.0040, allowed -0.0050 fixed) worse within noise"  # sees: unknown
    assert warnings == ["v.val_accuracy_mean: no spread (n=1 now, n=1 then): fixed tolerance 0.005 "
                        "(gates.fixed_tolerance); train more than one seed (train.replicates) to measure the spread"]
    then["v.val_accuracy_mean"] = 0.852
    (check,), _ = gate.check_drops(["v.val_accuracy_mean"], now, then, "main", TOLERANCES)
    assert not check.passed
    assert check.reason == "dropped 0.0060 from 0.8520 at main (allowed 0.0050, no spread (n=1 now, n=1 then): fixed)"


def test_a_metric_new_since_the_reference_passes_saying_so_and_a_missing_one_is_left_to_the_minimums():
    checks, _ = gate.check_drops(["softmax.val_accuracy_mean", "gone.val_accuracy_mean"], NOW, {}, "main", TOLERANCES)
    assert len(checks) == 1
    assert (checks[0].rule, checks[0].passed, checks[0].kind) == ("new, not at main", True, "drop")


def test_reproduction_holds_every_mean_within_its_tolerance_both_ways():
    """Three means reproduced, both ways, one family: the moved one comes first in Holm's order, held to 0.05/3 both
    ways, t(1 - 0.05/6, 8) = 3.0158 > k; the others, with nothing moved, last, where k = 3 is the larger."""
    allowed = 3.015762 * math.sqrt(2 * 0.002**2 / 5)
    then = {**NOW, "softmax.val_accuracy_mean": 0.846 - allowed * 1.01, "softmax.val_accuracy": 0.8}
    checks, notes, warnings = gate.check_reproduced(NOW, then, "HEAD", TOLERANCES)
    by_metric = {c.metric: c for c in checks}
    assert set(by_metric) == {"baseline.cv_accuracy", "softmax.val_accuracy_mean", "softmax.test_accuracy_mean"}
    assert all(c.kind == "reproduce" for c in checks) and warnings == []
    assert not by_metric["softmax.val_accuracy_mean"].passed  # a rise beyond the tolerance fails too
    assert by_metric["softmax.val_accuracy_mean"].reason.startswith(f"differs by +{allowed * 1.01:.4f} from ")
    assert by_metric["softmax.val_accuracy_mean"].reason.endswith(f" at HEAD (allowed ±{allowed:.4f})")
    assert by_metric["softmax.test_accuracy_mean"].passed
    test_side = Spread(0.836, 0.003, 5)
    detects = comparison.detectable(test_side, test_side, TOLERANCES, family=3, only_lower=False)
    assert by_metric["softmax.test_accuracy_mean"].rule == \
        f"0.8360 (+0.0000, within ±{3 * math.sqrt(2 * 0.003**2 / 5):.4f}, detects ±{detects:.4f})"
    assert notes[0] == ("single-seed accuracies (the chapter seed's run, the baseline's single fit): 1 of 2 identical "
                        "to HEAD; the rest moved (one seed's noise, not gated):")
    assert notes[1] == "  softmax.val_accuracy: 0.8000 at HEAD -> 0.8450 now"
    assert len(notes) == 2  # seeds, stds and folds are statistics, not news


def test_reproduction_reports_other_changes_and_missing_means():
    now = {**NOW, "softmax.epochs_run": 7}
    then = {**NOW, "old.val_accuracy_mean": 0.8, "old.val_accuracy_std": 0.01, "old.seeds": 3}
    checks, notes, _ = gate.check_reproduced(now, then, "HEAD", TOLERANCES)
    missing = next(c for c in checks if c.metric == "old.val_accuracy_mean")
    assert (missing.passed, missing.rule, missing.reason) == (False, "missing", "missing in this run")
    assert missing.value is None
    assert "softmax.epochs_run: 5 at HEAD -> 7 now" in notes
    assert notes[0].endswith("2 of 2 identical to HEAD")
    checks, _, _ = gate.check_reproduced(then, now, "HEAD", TOLERANCES)
    assert next(c for c in checks if c.metric == "old.val_accuracy_mean").reason == "missing at HEAD"


def test_reproduction_with_one_seed_uses_the_fixed_tolerance():
    for std in (None, 0.0):  # one seed: no spread, whatever the std key holds
        now = {"v.val_accuracy_mean": 0.846, "v.val_accuracy_std": std, "v.seeds": 1}
        checks, _, warnings = gate.check_reproduced(now, {**now, "v.val_accuracy_mean": 0.850}, "HEAD", TOLERANCES)
        assert [c.passed for c in checks] == [True]
        assert checks[0].rule == "0.8500 (-0.0040, within ±0.0050 fixed)"
        assert warnings == ["v.val_accuracy_mean: no spread (n=1 now, n=1 then): fixed tolerance 0.005 "
                            "(gates.fixed_tolerance)"]
        checks, _, _ = gate.check_reproduced(now, {**now, "v.val_accuracy_mean": 0.852}, "HEAD", TOLERANCES)
        assert [c.passed for c in checks] == [False]


def test_a_stage_that_did_not_run_fails_the_reproduction(tmp_path):
    log = tmp_path / "ran.log"
    log.write_text("baseline\ntrain@softmax\n\n")
    assert gate.read_run_log(log) == ["baseline", "train@softmax"]
    checks = [Check("softmax.val_accuracy_mean", 0.8, "reproduce", "", True),
              Check("relu.val_accuracy_mean", 0.8, "reproduce", "", True),
              Check("relu.test_accuracy_mean", 0.8, "reproduce", "", True),
              Check("baseline.cv_accuracy", 0.8, "reproduce", "", True)]
    (failed,) = gate.check_ran(checks, gate.read_run_log(log), log)
    assert (failed.metric, failed.value, failed.kind, failed.rule, failed.passed) == (
        "relu.*", None, "reproduce", "not run", False)
    assert failed.reason == (f"stage train@relu did not run in this reproduction (not in {log}), so its metrics "
                             "would be compared with themselves: run it (dvc repro --force)")
    with pytest.raises(StageError, match="not found: no stage of this run completed"):
        gate.read_run_log(tmp_path / "none.log")


def test_the_table_has_one_row_per_metric_and_fails_it_if_any_check_fails():
    checks = [Check("a.val_accuracy_mean", 0.85, "minimum", ">= 0.8", True, spread=Spread(0.85, 0.002, 5)),
              Check("a.val_accuracy_mean", 0.85, "drop", "0.8600 (-0.0100, allowed -0.004)", False, "dropped"),
              Check("b.cv_accuracy", None, "minimum", ">= 0.8", False, "missing"),
              Check("c.val_accuracy_mean", 0.8, "minimum", ">= 0.7", True, spread=Spread(0.8, None, 1)),
              Check("d.epochs", 5, "minimum", ">= 1", True)]
    text = gate.table(checks, {"minimum": "minimum", "drop": "at main", "unused": "never"})
    lines = text.splitlines()
    assert lines[0].split() == ["metric", "mean", "±", "std", "(n)", "minimum", "at", "main", "result"]
    assert set(lines[1]) == {"-", " "}
    assert lines[2].split("  ")[0] == "a.val_accuracy_mean"
    assert "0.8500 ± 0.0020 (5)" in lines[2] and ">= 0.8 ok" in lines[2] and "FAIL" in lines[2].split()[-1]
    assert lines[3].split()[:2] == ["b.cv_accuracy", "missing"] and lines[3].endswith("FAIL")
    assert "0.8000 (n=1, no spread)" in lines[4] and lines[4].endswith("pass")
    assert lines[5].split()[:2] == ["d.epochs", "5"] and lines[5].endswith("pass")
    assert len(lines) == 6 and not any(line != line.rstrip() for line in lines)
    assert gate.failures(checks) == ["a.val_accuracy_mean: dropped", "b.cv_accuracy: missing"]
    assert "0.1235" in gate.table([Check("e.x", 0.12345, "minimum", ">= 0", True)], {"minimum": "minimum"})


# --- the selection rule --------------------------------------------------------------------------------------

RESULTS = {
    "baseline": {"val_accuracy": 0.99},
    "a": {"val_accuracy_mean": 0.87, "val_accuracy": 0.88, "val_loss": 0.35},
    "b": {"val_accuracy_mean": 0.88, "val_accuracy": 0.86, "val_loss": 0.33},
    "c": {"val_accuracy_mean": 0.88, "val_accuracy": 0.87, "val_loss": 0.34},
}


def test_the_best_variant_by_each_rule_never_the_baseline():
    assert choice.best_variant(RESULTS, SelectParams()) == "b"  # a tie with c goes to the first declared
    assert choice.best_variant(RESULTS, SelectParams(metric="val_accuracy")) == "a"
    assert choice.best_variant(RESULTS, SelectParams(metric="val_loss")) == "b"  # lowest
    assert choice.best_variant(RESULTS, SelectParams(candidates=["a", "c"])) == "c"
    assert choice.candidates(RESULTS, SelectParams()) == ["a", "b", "c"]
    assert choice.candidates(RESULTS, SelectParams(candidates=["c", "a"])) == ["a", "c"]  # declared order


def test_candidates_must_be_declared_variants():
    with pytest.raises(StageError) as error:
        choice.candidates(RESULTS, SelectParams(candidates=["a", "zz"]))
    assert str(error.value) == "params.yaml: select.candidates names 'zz', which is not declared (declared: a, b, c)"
    with pytest.raises(StageError) as error:
        choice.check_declared(["x", "baseline"], {"a": 1}, "plot.optimizer_comparison")
    assert str(error.value) == ("params.yaml: plot.optimizer_comparison names 'x', 'baseline', which are not declared "
                                "(declared: a)")
    choice.check_declared(["baseline", "a"], {"a": 1}, "chapter", allow_baseline=True)


# --- the edges the mutation run found unguarded ----------------------------------------------------------------

def test_metrics_shown_tolerates_revisions_and_files_without_data():
    assert gate.metrics_shown({"workspace": {}}) == {}
    assert gate.metrics_shown({"workspace": {"data": {"reports/metrics/a.json": {}}}}) == {}


def test_nested_keys_keep_the_file_stem_whole():
    present = {"softmax.b.c": 1, "softmax.seeds": 5}
    (check,) = gate.check_minimums({"softmax.x.y": 0.5}, present)
    assert check.reason == "unknown metric 'x.y' in reports/metrics/softmax.json (it has: b.c, seeds)"
    assert gate.check_coverage(["relu"], {"relu.x.y_mean": 0.8}, {}, 3.0, 0.01) == []
    nested = {"v.a.x_mean": 0.8, "v.a.x_std": 0.01, "v.seeds": 4}
    assert gate.spread_of("v.a.x_mean", nested) == Spread(0.8, 0.01, 4)
    checks, _, _ = gate.check_reproduced(nested, nested, "HEAD", TOLERANCES)
    assert [c.metric for c in checks] == ["v.a.x_mean"]
    (failed,) = gate.check_ran([Check("relu.a.b_mean", 0.8, "reproduce", "", True)], [], "log")
    assert failed.metric == "relu.*"


def test_a_std_without_any_count_is_no_spread():
    assert gate.spread_of("v.x_mean", {"v.x_mean": 0.8, "v.x_std": 0.01}) == Spread(0.8, None, 1)


def test_the_failing_checks_carry_their_metric_kind_and_spread():
    (missing,) = gate.check_minimums({"relu.val_accuracy_mean": 0.8}, NOW)
    assert (missing.metric, missing.kind, missing.spread) == ("relu.val_accuracy_mean", "minimum", None)
    then = {**NOW, "softmax.val_accuracy_mean": 0.9}
    checks, _ = gate.check_drops(["gone.val_accuracy_mean", "new.val_accuracy_mean", "softmax.val_accuracy_mean"],
                                 {**NOW, "new.val_accuracy_mean": 0.7}, then, "main", TOLERANCES)
    new, drop = checks  # a metric missing now is skipped, and the checks go on after it
    assert (new.metric, new.value, new.spread) == ("new.val_accuracy_mean", 0.7, Spread(0.7, None, 1))
    assert (drop.metric, drop.value, drop.spread, drop.passed) == (
        "softmax.val_accuracy_mean", 0.846, Spread(0.846, 0.002, 5), False)
    gone = {**NOW, "old.val_accuracy_mean": 0.8, "old.val_accuracy_std": 0.01, "old.seeds": 3}
    checks, _, _ = gate.check_reproduced({**NOW, "softmax.val_accuracy_mean": 0.9}, gone, "HEAD", TOLERANCES)
    missing = next(c for c in checks if c.metric == "old.val_accuracy_mean")
    assert (missing.kind, missing.spread) == ("reproduce", None)
    differing = next(c for c in checks if c.metric == "softmax.val_accuracy_mean")
    assert (differing.value, differing.spread, differing.passed) == (0.9, Spread(0.9, 0.002, 5), False)
    passing = next(c for c in checks if c.metric == "softmax.test_accuracy_mean")
    assert (passing.passed, passing.reason) == (True, "")
    assert len(checks) == 4  # every mean checked, none skipped after the missing one
    checks, _, _ = gate.check_reproduced(gone, NOW, "HEAD", TOLERANCES)
    missing_then = next(c for c in checks if c.metric == "old.val_accuracy_mean")
    assert (missing_then.value, missing_then.spread) == (0.8, Spread(0.8, 0.01, 3))


def test_a_reproduction_at_exactly_the_tolerance_passes_and_just_beyond_fails():
    now = {"v.x_mean": 0.8, "v.x_std": 0.0, "v.seeds": 5}
    then = dict(now)
    then["v.x_mean"] = 0.8 + 0.002  # the floor: exactly at it
    assert [c.passed for c in gate.check_reproduced(now, then, "HEAD", TOLERANCES)[0]] == [True]
    then["v.x_mean"] = 0.8 + 0.00201
    assert [c.passed for c in gate.check_reproduced(now, then, "HEAD", TOLERANCES)[0]] == [False]


def test_statistics_that_moved_are_not_news_but_other_values_are():
    now = {**NOW, "softmax.seeds": 4, "softmax.val_accuracy_std": 0.004, "softmax.test_accuracy_std": 0.001,
           "baseline.cv_folds": 4, "baseline.cv_accuracy_std": 0.002, "softmax.val_accuracy": None}
    _, notes, _ = gate.check_reproduced(now, NOW, "HEAD", TOLERANCES)
    assert notes == ["single-seed accuracies (the chapter seed's run, the baseline's single fit): 1 of 2 identical to "
                     "HEAD; the rest moved (one seed's noise, not gated):",
                     "  softmax.val_accuracy: 0.8450 at HEAD -> None now"]
    _, notes, _ = gate.check_reproduced({**NOW, "softmax.extra": 1}, {**NOW, "softmax.test_accuracy": 0.8}, "HEAD",
                                        TOLERANCES)
    assert "softmax.extra: None at HEAD -> 1 now" in notes
    assert notes[0].startswith("single-seed accuracies") and "2 of 3 identical to HEAD" in notes[0]
    assert "  softmax.test_accuracy: 0.8000 at HEAD -> None now" in notes


def test_the_table_lays_out_every_cell():
    checks = [Check("a.v", 0.85, "minimum", ">= 0.8", True, spread=Spread(0.85, 0.002, 5)),
              Check("a.v", 0.85, "drop", "0.86 (-0.01)", False, "dropped"),
              Check("bb.cv", 0.9, "drop", "0.9 (+0)", True)]
    assert gate.table(checks, {"minimum": "minimum", "drop": "at main"}).splitlines() == [
        "metric  mean ± std (n)       minimum    at main            result",
        "------  -------------------  ---------  -----------------  ------",
        "a.v     0.8500 ± 0.0020 (5)  >= 0.8 ok  0.86 (-0.01) FAIL  FAIL",
        "bb.cv   0.9000                          0.9 (+0) ok        pass"]


def test_nested_keys_in_the_reproduction_notes():
    now = {"v.a.x_mean": 0.8, "v.a.x_std": 0.01, "v.seeds": 4, "v.b.val_accuracy": 0.7, "v.flag": "n/a"}
    then = {**now, "v.seeds": 5, "v.b.val_accuracy": 0.71, "v.flag": "ok"}
    _, notes, _ = gate.check_reproduced(now, then, "HEAD", TOLERANCES)
    assert notes == ["single-seed accuracies (the chapter seed's run, the baseline's single fit): 0 of 0 identical to "
                     "HEAD",
                     "v.b.val_accuracy: 0.71 at HEAD -> 0.7 now",  # not a file's own single-seed key
                     "v.flag: 'ok' at HEAD -> 'n/a' now"]
    _, notes, _ = gate.check_reproduced({**NOW, "softmax.val_accuracy": "n/a"}, NOW, "HEAD", TOLERANCES)
    assert "  softmax.val_accuracy: 0.8450 at HEAD -> 'n/a' now" in notes
