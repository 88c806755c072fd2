"""The metric gate in a temporary git+DVC repo with generated metrics files (no training needed)."""
from __future__ import annotations

import json
import math
import re

import pytest

import numpy as np

from fmnist import paths, spread
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


def allowed(name: str, key: str = "val_accuracy", now: dict | None = None) -> float:
    """The tolerance the gate must use between METRICS[name] at main and `now`."""
    then, now = METRICS[name], now or METRICS[name]
    a = spread.Spread(now[f"{key}_mean"], now[f"{key}_std"], now["seeds"])
    b = spread.Spread(then[f"{key}_mean"], then[f"{key}_std"], then["seeds"])
    return spread.tolerance(a, b, GATES["k"], GATES["floor"])


def write_metrics(repo, name, metrics=None, **changes):
    path = repo / paths.metrics_file(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**(metrics or METRICS[name]), **changes}))


@pytest.fixture
def repo(tmp_path):
    """main holds metrics that pass; tests change the workspace (or params) from there."""
    repo = copy_project(tmp_path / "repo")
    edit_params(repo, lambda d: d.update(gates=GATES))
    for name in METRICS:
        write_metrics(repo, name)
    init_git_dvc_repo(repo)
    return repo


def gate(repo, *args):
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
    assert rows["checkpoint.val_accuracy_mean"] == [
        f"{mean:.4f} ± {std:.4f} (5)", ">= 0.875 ok",
        f"{mean:.4f} (+0.0000, allowed -{allowed('checkpoint'):.4f}) ok", "pass"]
    assert rows["baseline.cv_accuracy"][0] == "0.8200 ± 0.0030 (5)"  # the baseline's spread: its CV folds
    assert "tolerance = max(0.002, 3 x SE of the difference of the two means)" in result.stdout
    assert "gate (minimums; drop vs main): all 8 checks pass" in result.stdout


def test_the_tolerance_follows_the_measured_spread():
    """k * sqrt(s1²/n1 + s2²/n2): a noisier variant, or fewer seeds, is allowed a larger difference."""
    quiet, noisy = seed_results("a", 0.87, 0.002), seed_results("b", 0.87, 0.008)
    as_spread = lambda m: spread.Spread(m["val_accuracy_mean"], m["val_accuracy_std"], m["seeds"])  # noqa: E731
    tight = spread.tolerance(as_spread(quiet), as_spread(quiet), 3, 0.0)
    loose = spread.tolerance(as_spread(noisy), as_spread(noisy), 3, 0.0)
    assert tight == pytest.approx(3 * quiet["val_accuracy_std"] * math.sqrt(2 / 5))
    assert loose > 2 * tight


def test_a_regression_beyond_the_spread_fails_even_above_the_minimum(repo):
    tolerance = allowed("softmax")
    assert tolerance < 0.01  # σ 0.003 over 5 seeds: a real 0.01 drop is far outside the noise
    dropped = METRICS["softmax"]["val_accuracy_mean"] - 0.01
    write_metrics(repo, "softmax", val_accuracy_mean=dropped)  # >= 0.835, but 0.01 below main
    result = gate(repo)
    assert result.returncode == 1
    assert "error: gate (minimums; drop vs main) failed, 1 of 8 checks:" in result.stderr
    assert (f"softmax.val_accuracy_mean: dropped 0.0100 from {METRICS['softmax']['val_accuracy_mean']:.4f} at main "
            f"(allowed {tolerance:.4f} = max(floor, k x SE of the difference))") in result.stderr
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
    assert "error: `dvc metrics diff no-such-branch --all --json` failed: ERROR: unknown Git revision 'no-such-branch'" in result.stderr


def test_bad_gate_params_are_named(repo):
    edit_params(repo, lambda d: d["gates"]["minimum"].update({"Softmax accuracy": 0.8}))
    result = gate(repo)
    assert result.returncode == 1 and "params.yaml: " in result.stderr and "gates.minimum" in result.stderr
    edit_params(repo, lambda d: d["gates"].update(k=0))
    result = gate(repo)
    assert result.returncode == 1 and "'gates.k' = 0 is not allowed" in result.stderr


def test_reproduces_checks_every_mean_within_its_tolerance_and_reports_the_rest(repo):
    tolerance = allowed("checkpoint")
    mean = METRICS["checkpoint"]["val_accuracy_mean"]
    write_metrics(repo, "checkpoint", val_accuracy_mean=mean + 0.5 * tolerance, epochs_run=19)
    result = gate(repo, "--reproduces", "HEAD")
    assert result.returncode == 0, result.stderr
    assert "note: checkpoint.epochs_run: 5 at HEAD -> 19 now" in result.stdout
    # Every mean with a spread: val and test of both variants, and the baseline's CV.
    assert "reproduction of HEAD: all 5 checks pass" in result.stdout
    assert table_rows(result.stdout)["checkpoint.val_accuracy_mean"][1] == (
        f"{mean:.4f} ({0.5 * tolerance:+.4f}, within ±{tolerance:.4f}) ok")
    write_metrics(repo, "checkpoint", val_accuracy_mean=mean - 1.5 * tolerance)
    result = gate(repo, "--reproduces", "HEAD")
    assert result.returncode == 1
    assert f"checkpoint.val_accuracy_mean: differs by {-1.5 * tolerance:+.4f} from {mean:.4f} at HEAD" in result.stderr
