"""The metric gate in a temporary git+DVC repo with generated metrics files (no training needed)."""
from __future__ import annotations

import json
import re

import pytest

from fmnist import paths
from tests.helpers import commit_all, copy_project, edit_params, init_git_dvc_repo, run, run_stage

METRICS = {
    "baseline": {"cv_accuracy": 0.82, "val_accuracy": 0.83, "test_accuracy": 0.825},
    "softmax": {"val_accuracy": 0.846, "test_accuracy": 0.836, "epochs_run": 5},
    "checkpoint": {"val_accuracy": 0.8826, "test_accuracy": 0.8775, "epochs_run": 20},
}
GATES = {
    "reference": "main", "max_drop": 0.005, "reproduce_tolerance": 0.002,
    "minimum": {"baseline.cv_accuracy": 0.81, "softmax.val_accuracy": 0.835,
                "checkpoint.val_accuracy": 0.875, "checkpoint.test_accuracy": 0.87},
}


def write_metrics(repo, name, **changes):
    path = repo / paths.metrics_file(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**METRICS[name], **changes}))


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
    rows = [re.split(r"\s{2,}", line.strip()) for line in lines[2:] if line and " checks pass" not in line]
    return {row[0]: row[1:] for row in rows}


def test_gate_passes_and_prints_every_check(repo):
    result = gate(repo)
    assert result.returncode == 0, result.stderr
    assert re.split(r"\s{2,}", result.stdout.splitlines()[0]) == [
        "metric", "value", "minimum", "at main (max drop 0.005)", "result"]
    rows = table_rows(result.stdout)
    assert list(rows) == list(GATES["minimum"])  # one row per gated metric, in params order
    assert rows["checkpoint.val_accuracy"] == ["0.8826", ">= 0.875 ok", "0.8826 (+0.0000) ok", "pass"]
    assert "gate (minimums; drop vs main): all 8 checks pass" in result.stdout


def test_gate_fails_below_a_minimum_and_names_the_metric(repo):
    write_metrics(repo, "checkpoint", test_accuracy=0.869)  # also a drop of 0.0085 against main
    result = gate(repo, "--no-ref")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert table_rows(result.stdout)["checkpoint.test_accuracy"] == ["0.8690", ">= 0.87 FAIL", "FAIL"]
    assert "error: gate (minimums) failed, 1 of 4 checks:" in result.stderr
    assert "checkpoint.test_accuracy: 0.8690 is below the minimum 0.87" in result.stderr


def test_gate_fails_on_a_regression_against_the_ref_even_above_the_minimum(repo):
    write_metrics(repo, "softmax", val_accuracy=0.8400)  # >= 0.835, but 0.006 below main
    result = gate(repo)
    assert result.returncode == 1
    assert "error: gate (minimums; drop vs main) failed, 1 of 8 checks:" in result.stderr
    assert "softmax.val_accuracy: dropped 0.0060 from 0.8460 at main (allowed 0.005)" in result.stderr
    # A smaller drop, within max_drop, passes.
    write_metrics(repo, "softmax", val_accuracy=0.8420)
    assert gate(repo).returncode == 0


def test_gate_measures_the_drop_against_the_ref_it_is_given(repo):
    run(["git", "checkout", "-q", "-b", "feature"], repo)
    write_metrics(repo, "softmax", val_accuracy=0.8300)
    commit_all(repo, "worse softmax")
    assert "softmax.val_accuracy: dropped 0.0160 from 0.8460 at main" in gate(repo).stderr
    # Against the new commit there is no drop; only the minimum fails.
    result = gate(repo, "--ref", "HEAD")
    assert result.returncode == 1 and "failed, 1 of 8 checks" in result.stderr
    assert "softmax.val_accuracy: 0.8300 is below the minimum 0.835" in result.stderr


def test_missing_metrics_file_and_unknown_metric_fail_with_reasons(repo):
    (repo / paths.metrics_file("softmax")).unlink()
    edit_params(repo, lambda d: d["gates"]["minimum"].update({"checkpoint.val_acc": 0.5}))
    result = gate(repo)
    assert result.returncode == 1
    assert ("softmax.val_accuracy: reports/metrics/softmax.json not found (run `dvc repro evaluate@softmax`, "
            "or fix the name in params.yaml gates)") in result.stderr
    assert ("checkpoint.val_acc: unknown metric 'val_acc' in reports/metrics/checkpoint.json "
            "(it has: epochs_run, test_accuracy, val_accuracy)") in result.stderr
    # Nothing to compare with main either: that cell stays empty (and the split drops it).
    assert table_rows(result.stdout)["softmax.val_accuracy"] == ["missing", ">= 0.835 FAIL", "FAIL"]


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


def test_reproduces_accepts_small_differences_and_reports_the_rest(repo):
    write_metrics(repo, "checkpoint", val_accuracy=0.8836, epochs_run=19)  # +0.0010
    result = gate(repo, "--reproduces", "HEAD")
    assert result.returncode == 0, result.stderr
    assert "note: checkpoint.epochs_run: 20 at HEAD -> 19 now" in result.stdout
    assert "reproduction of HEAD: all 7 checks pass" in result.stdout  # every accuracy of every file
    assert table_rows(result.stdout)["checkpoint.val_accuracy"] == ["0.8836", "0.8826 (+0.0010) ok", "pass"]
    write_metrics(repo, "checkpoint", val_accuracy=0.8800)  # -0.0026
    result = gate(repo, "--reproduces", "HEAD")
    assert result.returncode == 1
    assert "checkpoint.val_accuracy: differs by -0.0026 from 0.8826 at HEAD" in result.stderr
