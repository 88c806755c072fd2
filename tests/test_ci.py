"""The CI entry points: .ci/run and the GitHub workflow run the same make targets, and both parse."""
import re
import subprocess
import sys

import yaml

from tests.conftest import REPO_ROOT

WORKFLOW = REPO_ROOT / ".github/workflows/pipeline.yml"
CI_RUN = REPO_ROOT / ".ci/run"


def make_targets(text: str) -> list[str]:
    return re.findall(r"\bmake (test|repro|gate)\b", text)


def workflow_steps() -> list[dict]:
    document = yaml.safe_load(WORKFLOW.read_text())
    assert set(document) >= {"name", "jobs"} and (True in document or "on" in document)  # YAML 1.1 reads `on` as True
    (job,) = document["jobs"].values()
    return job["steps"]


def test_workflow_parses_and_runs_the_ci_commands_in_the_same_order():
    steps = workflow_steps()
    commands = "\n".join(step.get("run", "") for step in steps)
    assert make_targets(commands) == ["test", "repro", "gate"]
    assert make_targets(CI_RUN.read_text()) == ["test", "repro", "gate", "gate"]
    assert any(step.get("uses", "").startswith("actions/setup-python") and step["with"]["python-version"] == "3.11"
               for step in steps)


def test_workflow_gates_against_main_and_writes_both_diffs_to_the_job_summary():
    steps = workflow_steps()
    gate = next(step["run"] for step in steps if "make gate" in step.get("run", ""))
    assert '--ref origin/main' in gate
    summary = next(step for step in steps if "GITHUB_STEP_SUMMARY" in step.get("run", ""))
    assert summary.get("if") == "always()"
    assert "dvc metrics diff origin/main --md" in summary["run"] and "dvc params diff origin/main --md" in summary["run"]
    checkout = next(step for step in steps if step.get("uses", "").startswith("actions/checkout"))
    assert checkout["with"]["fetch-depth"] == 0  # origin/main must be there to compare with


def test_ci_run_is_valid_bash_that_stops_on_errors():
    text = CI_RUN.read_text()
    assert text.startswith("#!/usr/bin/env bash\n") and "set -euo pipefail" in text
    assert subprocess.run(["bash", "-n", str(CI_RUN)], capture_output=True).returncode == 0
    assert CI_RUN.stat().st_mode & 0o111  # executable
    assert '--reproduces HEAD' in text


def test_make_repro_checks_all_of_params_yaml_before_dvc_starts():
    """`make -n` prints the recipe without running it: the whole-file check comes first, and must pass."""
    recipe = subprocess.run(["make", "-n", "-W", "requirements.txt", "repro"], cwd=REPO_ROOT, capture_output=True,
                            text=True).stdout.splitlines()
    commands = [line for line in recipe if line.startswith(("python -m fmnist.params", "dvc repro"))]
    assert commands == ["python -m fmnist.params", "dvc repro"], recipe
    assert subprocess.run([sys.executable, "-m", "fmnist.params"], cwd=REPO_ROOT, capture_output=True).returncode == 0
