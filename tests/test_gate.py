"""The metric gate in a temporary git+DVC repo with generated metrics files (no training needed)."""
from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
from scipy import stats

from fmnist.core import comparison, spread
from fmnist.core.comparison import Tolerances
from fmnist.plumbing import paths
from tests.helpers import commit_all, copy_project, edit_params, init_git_dvc_repo, run, run_stage


def seed_results(name: str, mean: float, std: float, n: int = 5, seed: int = 0) -> dict:
    """A variant's metrics file built from synthetic per-seed accuracies (normal, the given mean and std)."""
    rng = np.random.default_rng(seed)
    per_seed = [{"seed": 42 + i, "val_accuracy": float(v), "test_accuracy": float(v - 0.008)}
                for i, v in enumerate(rng.normal(mean, std, n))]
    headline, _ = spread.seed_metrics(per_seed)
    return {"val_accuracy": per_seed[0]["val_accuracy"], "test_accuracy": per_seed[0]["test_accuracy"],
            "epochs_run": 5, **headline}


METRICS = {
    "baseline": {"cv_accuracy": 0.82, "cv_accuracy_std": 0.003, "cv_folds": 5, "val_accuracy": 0.83,
                 "test_accuracy": 0.825},
    "softmax": seed_results("softmax", 0.846, 0.003, seed=1),
    "checkpoint": seed_results("checkpoint", 0.8826, 0.003, seed=2),
}
GATES = {
    "reference": "main", "k": 3.0, "floor": 0.002, "fixed_tolerance": 0.005,
    "minimum": {"baseline.cv_accuracy": 0.81, "softmax.val_accuracy_mean": 0.835,
                "checkpoint.val_accuracy_mean": 0.875, "checkpoint.test_accuracy_mean": 0.865},
}


RULE = Tolerances(GATES["k"], GATES["floor"])
RULE_LINE = ("tolerance = max(0.002, max(3, t) x SE of the difference of the two means), t the Welch t quantile of "
             "the check's Holm level (gates.false_alarm 0.05 / checks left)")


def allowed(name: str, key: str = "val_accuracy", now: dict | None = None, t: float = 0.0) -> float:
    """The tolerance the gate must use between METRICS[name] at main and `now`, written out from params.yaml's
    rule (not computed by the code under test): max(floor, max(k, t) * sqrt(std_now²/n_now + std_main²/n_main)),
    t the quantile of the check's Holm level. Among the 4 drop checks here (5 seeds a side, df 8) Holm's first
    level, 0.05/4 one way, is t(1 - 0.0125, 8) = 2.75: below k, so k decides every drop check."""
    then, now = METRICS[name], now or METRICS[name]
    standard_error = math.sqrt(now[f"{key}_std"] ** 2 / now["seeds"] + then[f"{key}_std"] ** 2 / then["seeds"])
    return max(GATES["floor"], max(GATES["k"], t) * standard_error)


def write_metrics(repo, name, metrics=None, **changes):
    path = repo / paths.metrics_file(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**(metrics or METRICS[name]), **changes}))


@pytest.fixture
def repo(tmp_path):
    """main holds metrics that pass; tests change the workspace (or params) from there."""
    repo = copy_project(tmp_path / "repo")

    def gated_variants_only(document):
        document.update(gates=GATES)
        document["variants"] = {name: document["variants"][name] for name in ("softmax", "checkpoint")}

    edit_params(repo, gated_variants_only)
    for name in METRICS:
        write_metrics(repo, name)
    init_git_dvc_repo(repo)
    return repo


def gate(repo, *args, ran=("baseline", "train@softmax", "train@checkpoint")):
    """`python -m stages.gate ARGS`; with --reproduces, a run log that lists `ran` is passed as --ran."""
    if "--reproduces" in args and ran is not None:
        log = repo / "ran.log"
        log.write_text("".join(f"{name}\n" for name in ran))
        args = (*args, "--ran", str(log))
    return run_stage("gate", repo, args=args)


def table_rows(stdout: str) -> dict[str, list[str]]:
    """The gate's table: metric -> the other cells (split on runs of 2+ spaces)."""
    lines = stdout.splitlines()
    assert set(lines[1]) <= {"-", " "}  # the rule under the header
    table = []
    for line in lines[2:]:
        if not line or line.startswith(("tolerance = ", "note: ", "warning: ")) or " checks pass" in line:
            break  # the lines under the table
        table.append(line)
    rows = [re.split(r"\s{2,}", line.strip()) for line in table]
    return {row[0]: row[1:] for row in rows}


def test_gate_passes_and_prints_every_check_with_its_tolerance(repo):
    result = gate(repo)
    assert result.returncode == 0, result.stderr
    assert re.split(r"\s{2,}", result.stdout.splitlines()[0]) == [
        "metric", "mean ± std (n)", "minimum", "at main (change, allowed drop)", "result"]
    rows = table_rows(result.stdout)
    assert list(rows) == list(GATES["minimum"])  # one row per gated metric, in params order
    checkpoint = METRICS["checkpoint"]
    mean, std = checkpoint["val_accuracy_mean"], checkpoint["val_accuracy_std"]
    side = spread.Spread(mean, std, 5)
    detects = comparison.detectable(side, side, RULE, family=4, only_lower=True)
    assert rows["checkpoint.val_accuracy_mean"] == [
        f"{mean:.4f} ± {std:.4f} (5)", ">= 0.875 ok",
        f"{mean:.4f} (+0.0000, allowed -{allowed('checkpoint'):.4f}, detects {detects:.4f}) no measurable change",
        "pass"]
    assert rows["baseline.cv_accuracy"][0] == "0.8200 ± 0.0030 (5)"  # the baseline's spread: its CV folds
    assert RULE_LINE in result.stdout
    # Under the table, what the checks could see (tests/test_comparison.py has the numbers).
    assert ("4 drop checks: 0 regression, 0 worse within noise, 4 no measurable change, 0 better (only a regression "
            "fails)") in result.stdout
    assert "each detects, 80% of the time, a true drop of 0.00" in result.stdout
    assert ("2 of 4 cannot see gates.detect = 0.01: checkpoint.val_accuracy_mean, checkpoint.test_accuracy_mean "
            "(make power: the seeds they need)") in result.stdout  # σ 0.0046 (drawn with 0.003) over 5 seeds
    assert ("false alarm: at most 5% across the 4 checks together (gates.false_alarm, held by Holm's method); with no "
            "change anywhere at most 3.4% (each 0.85%: P(T > allowed / SE)") in result.stdout  # P(T_8 > 3) each
    assert "gate (minimums; drop vs main): all 8 checks pass" in result.stdout


def test_the_tolerance_follows_the_measured_spread():
    """k * sqrt(s1²/n1 + s2²/n2) for one drop check alone (where k = 3 or 2 is above the t quantile of 5% one way),
    checked on hand-worked numbers: a noisier variant, or fewer seeds, is allowed a larger difference; the floor
    holds when both are quiet."""
    def tolerance(a, b, k, floor):
        return comparison.told_apart([(a, b)], Tolerances(k, floor), only_lower=True)[0].allowed

    quiet, noisy = spread.Spread(0.87, 0.002, 5), spread.Spread(0.87, 0.008, 5)
    assert tolerance(quiet, quiet, 3, 0.0) == pytest.approx(0.0037947, abs=1e-7)  # 3 * 0.002 * sqrt(2/5)
    assert tolerance(noisy, quiet, 3, 0.0) == pytest.approx(0.0110635, abs=1e-7)  # 3 * sqrt(.008²/5 + .002²/5)
    assert tolerance(noisy, spread.Spread(0.87, 0.002, 2), 3, 0.0) == pytest.approx(0.0115412, abs=1e-7)  # .002²/2
    assert tolerance(quiet, quiet, 2, 0.0) == pytest.approx(0.0025298, abs=1e-7)  # k scales it
    assert tolerance(quiet, quiet, 3, 0.005) == 0.005  # the floor
    # One side without a spread: the other's std stands for both, sqrt(1/n_a + 1/n_b).
    assert tolerance(spread.Spread(0.87, None, 1), quiet, 3, 0.0) == pytest.approx(0.0065727, abs=1e-7)
    assert tolerance(spread.Spread(0.87, None, 1), spread.Spread(0.8, None, 1), 3, 0.0) is None


def test_a_regression_beyond_the_spread_fails_even_above_the_minimum(repo):
    tolerance = allowed("softmax")
    assert tolerance < 0.01  # σ 0.003 over 5 seeds: a real 0.01 drop is far outside the noise
    dropped = METRICS["softmax"]["val_accuracy_mean"] - 0.01
    write_metrics(repo, "softmax", val_accuracy_mean=dropped)  # >= 0.835, but 0.01 below main
    result = gate(repo)
    assert result.returncode == 1
    assert "error: gate (minimums; drop vs main) failed, 1 of 8 checks:" in result.stderr
    assert table_rows(result.stdout)["softmax.val_accuracy_mean"][2].endswith(") regression FAIL")
    assert "4 drop checks: 1 regression, 0 worse within noise, 3 no measurable change, 0 better" in result.stdout
    assert (f"softmax.val_accuracy_mean: dropped 0.0100 from {METRICS['softmax']['val_accuracy_mean']:.4f} at main "
            f"(allowed {tolerance:.4f}, gates.floor or max(gates.k, Holm t) x SE of the difference)") in result.stderr
    # A drop inside the tolerance passes.
    write_metrics(repo, "softmax", val_accuracy_mean=METRICS["softmax"]["val_accuracy_mean"] - 0.8 * tolerance)
    assert gate(repo).returncode == 0


def test_another_draw_of_the_same_seeds_distribution_passes(repo):
    """What a new CPU or a Keras upgrade does: every seed's result moves, the distribution does not."""
    for seed, name in enumerate(("softmax", "checkpoint"), start=10):
        mean = METRICS[name]["val_accuracy_mean"]
        write_metrics(repo, name, seed_results(name, mean, 0.003, seed=seed))
    result = gate(repo)
    assert result.returncode == 0, result.stdout + result.stderr
    result = gate(repo, "--reproduces", "HEAD")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "note: single-seed accuracies (the chapter seed's run, the baseline's single fit): 2 of 6" in result.stdout
    assert "; the rest moved (one seed's noise, not gated):" in result.stdout
    assert re.search(r"note:   softmax.val_accuracy: 0\.\d{4} at HEAD -> 0\.\d{4} now", result.stdout)


def test_one_seed_has_no_spread_and_the_gate_says_so(repo):
    one = {"val_accuracy": 0.846, "test_accuracy": 0.836, "epochs_run": 5, "seeds": 1, "val_accuracy_mean": 0.846,
           "val_accuracy_std": None, "test_accuracy_mean": 0.836, "test_accuracy_std": None}
    write_metrics(repo, "softmax", one)
    commit_all(repo, "one seed")
    write_metrics(repo, "softmax", one, val_accuracy_mean=0.842)  # -0.004: inside the fixed 0.005
    result = gate(repo, "--ref", "HEAD")
    assert result.returncode == 0
    assert table_rows(result.stdout)["softmax.val_accuracy_mean"][0] == "0.8420 (n=1, no spread)"
    assert ("warning: softmax.val_accuracy_mean: no spread (n=1 now, n=1 then): fixed tolerance 0.005 "
            "(gates.fixed_tolerance)") in result.stdout
    write_metrics(repo, "softmax", one, val_accuracy_mean=0.840)  # -0.006: beyond it
    result = gate(repo, "--ref", "HEAD")
    assert result.returncode == 1
    assert "allowed 0.0050, no spread (n=1 now, n=1 then): fixed)" in result.stderr


def test_gate_measures_the_drop_against_the_ref_it_is_given(repo):
    run(["git", "checkout", "-q", "-b", "feature"], repo)
    write_metrics(repo, "softmax", val_accuracy_mean=0.8300)
    commit_all(repo, "worse softmax")
    assert "softmax.val_accuracy_mean: dropped" in gate(repo).stderr
    # Against the new commit there is no drop; only the minimum fails.
    result = gate(repo, "--ref", "HEAD")
    assert result.returncode == 1 and "failed, 1 of 8 checks" in result.stderr
    assert "softmax.val_accuracy_mean: 0.8300 is below the minimum 0.835" in result.stderr


def test_missing_metrics_file_and_unknown_metric_fail_with_reasons(repo):
    (repo / paths.metrics_file("softmax")).unlink()
    edit_params(repo, lambda d: d["gates"]["minimum"].update({"checkpoint.val_acc": 0.5}))
    result = gate(repo)
    assert result.returncode == 1
    assert ("softmax.val_accuracy_mean: reports/metrics/softmax.json not found (run `dvc repro train@softmax`, "
            "or fix the name in params.yaml gates)") in result.stderr
    assert "checkpoint.val_acc: unknown metric 'val_acc' in reports/metrics/checkpoint.json (it has: " in result.stderr
    # Nothing to compare with main either: that cell stays empty (and the split drops it).
    assert table_rows(result.stdout)["softmax.val_accuracy_mean"] == ["missing", ">= 0.835 FAIL", "FAIL"]


def test_no_metrics_at_all_fails(repo):
    for name in METRICS:
        (repo / paths.metrics_file(name)).unlink()
    result = gate(repo, "--no-ref")
    assert result.returncode == 1 and "failed, 4 of 4 checks" in result.stderr
    assert "reports/metrics/baseline.json not found (run `dvc repro baseline`" in result.stderr


def test_unknown_ref_fails_clearly(repo):
    result = gate(repo, "--ref", "no-such-branch")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert ("error: `dvc metrics diff no-such-branch --all --json` failed: ERROR: unknown Git revision "
            "'no-such-branch'") in result.stderr


def test_bad_gate_params_are_named(repo):
    edit_params(repo, lambda d: d["gates"]["minimum"].update({"Softmax accuracy": 0.8}))
    result = gate(repo)
    assert result.returncode == 1 and "params.yaml: " in result.stderr and "gates.minimum" in result.stderr
    edit_params(repo, lambda d: d["gates"].update(k=0))
    result = gate(repo)
    assert result.returncode == 1 and "'gates.k' = 0 is not allowed" in result.stderr


def test_reproduces_checks_every_mean_within_its_tolerance_and_reports_the_rest(repo):
    """Five means reproduced, both ways, one family: the one that moved is first in Holm's order, held to 0.05/5
    both ways, t(1 - 0.005, 8) = 3.355 (t tables) > k."""
    tolerance = allowed("checkpoint", t=3.355)
    mean = METRICS["checkpoint"]["val_accuracy_mean"]
    write_metrics(repo, "checkpoint", val_accuracy_mean=mean + 0.5 * tolerance, epochs_run=19)
    result = gate(repo, "--reproduces", "HEAD")
    assert result.returncode == 0, result.stderr
    assert "note: checkpoint.epochs_run: 5 at HEAD -> 19 now" in result.stdout
    # Every mean with a spread: val and test of both variants, and the baseline's CV.
    assert "reproduction of HEAD: all 5 checks pass" in result.stdout
    std = METRICS["checkpoint"]["val_accuracy_std"]
    side = spread.Spread(mean, std, 5)
    detects = comparison.detectable(side, side, RULE, family=5, only_lower=False)
    assert table_rows(result.stdout)["checkpoint.val_accuracy_mean"][1] == (
        f"{mean:.4f} ({0.5 * tolerance:+.4f}, within ±{tolerance:.4f}, detects ±{detects:.4f}) ok")
    # Both ways, at Holm's first level: 2 P(T_8 > 3.355) = 1% each.
    assert ("false alarm: at most 5% across the 5 checks together (gates.false_alarm, held by Holm's method); with no "
            "change anywhere at most 5.0% (each 1.00%: 2 P(T > allowed / SE)") in result.stdout
    write_metrics(repo, "checkpoint", val_accuracy_mean=mean - 1.5 * tolerance)
    result = gate(repo, "--reproduces", "HEAD")
    assert result.returncode == 1
    assert f"checkpoint.val_accuracy_mean: differs by {-1.5 * tolerance:+.4f} from {mean:.4f} at HEAD" in result.stderr


def test_a_variant_without_a_minimum_fails_with_the_line_to_add(repo):
    """A variant added to params.yaml "with no code" is gated like the others, or the gate says which is not."""
    added = seed_results("relu100", 0.8725, 0.0044, seed=3)
    write_metrics(repo, "relu100", added)
    edit_params(repo, lambda d: d["variants"].update(relu100={"hidden": [{"units": 100, "activation": "relu"}],
                                                               "epochs": 5}))
    result = gate(repo, "--no-ref")
    assert result.returncode == 1
    mean, std = added["val_accuracy_mean"], added["val_accuracy_std"]
    suggested = math.floor((mean - max(0.01, 3 * std / math.sqrt(5))) * 1000) / 1000
    assert (f"relu100.val_accuracy_mean: no minimum in params.yaml gates.minimum, so nothing gates it: add "
            f"`relu100.val_accuracy_mean: {suggested}` (max(0.01, 3 std/sqrt(n)) below its mean {mean:.4f})"
            ) in result.stderr
    assert "failed, 1 of " in result.stderr
    edit_params(repo, lambda d: d["gates"]["minimum"].update({"relu100.val_accuracy_mean": suggested}))
    assert gate(repo, "--no-ref").returncode == 0
    # Not trained yet: still named, with what to do.
    edit_params(repo, lambda d: d["variants"].update(new_one={"epochs": 1}))
    result = gate(repo, "--no-ref")
    assert result.returncode == 1
    assert "new_one.val_accuracy_mean: no minimum in params.yaml gates.minimum" in result.stderr
    assert "add a `new_one.val_accuracy_mean:` minimum once reports/metrics/new_one.json exists" in result.stderr


def test_the_baseline_needs_a_minimum_too(repo):
    edit_params(repo, lambda d: d["gates"]["minimum"].pop("baseline.cv_accuracy"))
    result = gate(repo, "--no-ref")
    assert result.returncode == 1
    assert "baseline.cv_accuracy: no minimum in params.yaml gates.minimum" in result.stderr
    assert "add `baseline.cv_accuracy: 0.81` (max(0.01, 3 std/sqrt(n)) below its mean 0.8200)" in result.stderr


@pytest.mark.parametrize("mean, std, n, expected", [
    (0.8725, 0.0044, 5, 0.862),   # relu100: the margin (0.01) is wider than 3 SE (0.0059)
    (0.8805, 0.0083, 5, 0.869),   # relu100_val20: 3 SE = 0.01114 is wider
    (0.8922, 0.0036, 5, 0.882),   # tuned
    (0.85, None, 1, 0.84),        # no spread: the margin alone
    (0.8801, 0.0, 5, 0.87),       # rounded down, never up
])
def test_derived_minimum_follows_the_rule_params_yaml_states(mean, std, n, expected):
    from fmnist.core import gate as gate_module

    assert gate_module.derived_minimum(spread.Spread(mean, std, n), 3.0, 0.01) == expected


def test_a_reproduction_fails_for_every_stage_that_did_not_run(repo):
    """DVC skips a stage whose outputs are all in git (the baseline): its metrics would be compared with
    themselves. The run log says which ran; any stage whose metrics are compared must be in it."""
    result = gate(repo, "--reproduces", "HEAD", ran=("train@softmax", "train@checkpoint"))
    assert result.returncode == 1
    assert ("baseline.*: stage baseline did not run in this reproduction (not in " in result.stderr
            and "so its metrics would be compared with themselves" in result.stderr)
    assert "train@softmax" not in result.stderr.split("failed")[1]
    assert "note: stages run: 2 (train@softmax, train@checkpoint)" in result.stdout
    result = gate(repo, "--reproduces", "HEAD", ran=None)
    assert result.returncode == 2 and "--reproduces needs --ran FILE" in result.stderr
    assert gate(repo, "--reproduces", "HEAD").returncode == 0


def test_power_names_the_seeds_each_mean_needs_and_leaves_the_baseline_out(repo):
    """std 0.008 (σ of relu100_sgd_lr01, the noisiest): 20 seeds a side to see a 0.01 drop as one of these 4 checks
    (tests/test_comparison.py); a cap of 10 cannot, and the gate says what 10 seeds see instead. The baseline's
    spread is its CV folds'."""
    write_metrics(repo, "checkpoint", seed_results("checkpoint", 0.8826, 0.003, seed=2), val_accuracy_std=0.008)
    result = gate(repo, "--power")
    assert result.returncode == 0, result.stderr
    rows = table_rows(result.stdout)
    assert rows["checkpoint.val_accuracy_mean"][0] == "0.0080 (5)" and rows["checkpoint.val_accuracy_mean"][2] == "20"
    assert rows["baseline.cv_accuracy"][2] == "- (CV folds, not seeds)"
    five = spread.Spread(0, 0.008, 5)
    detects = comparison.detectable(five, five, RULE, family=4, only_lower=True)
    assert ("to detect 0.01 with 80% power, set in params.yaml:\n"
            f"  variants.checkpoint.replicates: 20  # now 5: detects {detects:.4f}\n") in result.stdout
    assert "would detect it with fewer seeds: softmax (" in result.stdout  # σ 0.0027 over 5 seeds
    edit_params(repo, lambda d: d["gates"].update(max_replicates=10))
    result = gate(repo, "--power")
    ten = spread.Spread(0, 0.008, 10)
    widest = comparison.detectable(ten, ten, RULE, family=4, only_lower=True)
    assert f"checkpoint.val_accuracy_mean: not even 10 seeds detect 0.01 (gates.max_replicates); with 10 it " \
           f"detects {widest:.4f}" in result.stdout


def test_power_gives_a_family_the_seeds_its_neediest_member_needs_and_the_cap_where_none_suffice():
    """Variants that share a trajectory are trained together, so the advice gives each member the seeds the
    neediest one needs; a mean no number of seeds up to the cap lets see `detect` is given the cap."""
    from fmnist.core import gate as gate_module

    def need(metric, std, replicates, detects=0.02, at_most=0.012):
        return gate_module.Need(metric, spread.Spread(0.88, std, 5), detects, replicates, at_most)

    needs = [need("dropout30.val_accuracy_mean", 0.0024, 5, detects=0.0077),
             need("checkpoint.val_accuracy_mean", 0.0017, 4), need("checkpoint.test_accuracy_mean", 0.0032, 6),
             need("early_stopping.val_accuracy_mean", 0.0062, 13), need("relu100_sgd_lr01.val_accuracy_mean", 0.008,
                                                                         None, detects=0.0261, at_most=0.0185)]
    lines = gate_module.power_advice(needs, 0.01, 8, [["dropout30", "checkpoint", "early_stopping"]])
    assert lines[1:5] == [
        "  variants.dropout30.replicates: 13  # now 5: detects 0.0077; as many as early_stopping, whose trajectory "
        "it shares",
        "  variants.checkpoint.replicates: 13  # now 5: detects 0.0200; as many as early_stopping, whose trajectory "
        "it shares",
        "  variants.early_stopping.replicates: 13  # now 5: detects 0.0200",
        "  variants.relu100_sgd_lr01.replicates: 8  # now 5: detects 0.0261; 8 (the cap) detects 0.0185"]
    assert lines[-1] == ("relu100_sgd_lr01.val_accuracy_mean: not even 8 seeds detect 0.01 (gates.max_replicates); "
                         "with 8 it detects 0.0185")
    alone = gate_module.power_advice(needs, 0.01, 8)  # no family: each variant by its own means
    assert "  variants.checkpoint.replicates: 6  # now 5: detects 0.0200" in alone
    assert "would detect it with fewer seeds: dropout30 (5)" not in alone  # 5 is what it has: neither more nor fewer


def write_predictions(repo, actual, predicted):
    (repo / paths.BEST_PREDICTIONS).write_text(
        "actual,predicted\n" + "".join(f"{a},{p}\n" for a, p in zip(actual, predicted)))


def test_models_best_is_paired_image_by_image_with_the_refs(repo):
    """reports/best_predictions.csv here and at main: the gate reports McNemar's exact test and the accuracy
    difference with its interval (tests/test_comparison.py has the numbers); it says why where there is nothing to
    pair."""
    assert "note: paired: no reports/best_predictions.csv in this workspace" in gate(repo).stdout
    rng = np.random.default_rng(3)
    actual = rng.integers(0, 10, 400)
    then = np.where(rng.random(400) < 0.85, actual, (actual + 1) % 10)
    write_predictions(repo, actual, then)
    assert "note: paired: main has no reports/best_predictions.csv" in gate(repo).stdout
    commit_all(repo, "predictions")
    right, wrong = np.flatnonzero(then == actual), np.flatnonzero(then != actual)
    now = then.copy()
    now[right[:20]] = (actual[right[:20]] + 2) % 10  # 20 images only main's model gets right
    now[wrong[:5]] = actual[wrong[:5]]  # 5 only this one does
    write_predictions(repo, actual, now)
    result = gate(repo)
    assert result.returncode == 0, result.stderr  # reported, not gated: the means gate
    pair = comparison.paired(actual, now, then)
    assert (pair.only_a, pair.only_b) == (5, 20)
    assert (f"note: paired, models/best vs main's on 400 test images: 5 right only now, 20 only at main; accuracy "
            f"-0.0375 (95% interval {pair.low:+.4f} to {pair.high:+.4f}), McNemar exact p = {pair.p_value:.3g}"
            ) in result.stdout
    write_predictions(repo, (actual + 1) % 10, now)
    assert "are not the same test images (other data or split): nothing to pair" in gate(repo).stdout
    (repo / paths.BEST_PREDICTIONS).write_text("a,b\n1,2\n")
    broken = gate(repo)
    assert broken.returncode == 1
    assert ("error: reports/best_predictions.csv: not a predictions file (its header is 'a,b', not "
            "'actual,predicted')") in broken.stderr


@pytest.mark.parametrize("k, floor", [(2.0, 0.0), (3.0, 0.02)])
def test_the_gate_uses_the_k_and_floor_params_yaml_gives(repo, k, floor):
    """Other values than the defaults (k = 3, a floor that never binds here): the allowed drop printed and applied
    is max(floor, max(k, t) * SE), written out from the rule (t: Holm's first level among the 4 drop checks, 0.05/4
    one way, 2.75 with 8 df, so it is t that decides for k = 2), and a drop just past it fails where one just short
    passes."""
    def rule(document):
        document["gates"].update(k=k, floor=floor)
        document["gates"]["minimum"]["softmax.val_accuracy_mean"] = 0.8  # the drop alone decides

    edit_params(repo, rule)
    then = METRICS["softmax"]
    standard_error = math.sqrt(2 * then["val_accuracy_std"] ** 2 / then["seeds"])
    tolerance = max(floor, max(k, float(stats.t.isf(0.05 / 4, 8))) * standard_error)
    write_metrics(repo, "softmax", val_accuracy_mean=then["val_accuracy_mean"] - 0.99 * tolerance)
    result = gate(repo)
    assert result.returncode == 0, result.stderr
    assert f"allowed -{tolerance:.4f}," in table_rows(result.stdout)["softmax.val_accuracy_mean"][2]
    assert f"tolerance = max({floor}, max({k:g}, t) x SE of the difference of the two means)" in result.stdout
    write_metrics(repo, "softmax", val_accuracy_mean=then["val_accuracy_mean"] - 1.01 * tolerance)
    assert gate(repo).returncode == 1
