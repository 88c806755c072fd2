"""README.md and docs/ cannot go stale silently: their commands exist, their figures are today's
(tests/docs_check.py says what is checked, and how)."""
import os
import re
import shutil
import subprocess

import pytest

from tests import docs_check
from tests.conftest import REPO_ROOT
from tests.helpers import copy_project, init_git_dvc_repo, run_stage


def test_every_command_in_the_docs_exists_with_the_options_it_is_given():
    assert docs_check.all_command_problems(REPO_ROOT) == []


def test_every_figure_in_the_docs_is_a_value_in_the_reports_or_params():
    assert docs_check.figure_problems(REPO_ROOT) == []


def test_the_readme_results_table_is_the_metrics_files():
    assert docs_check.results_table_problems(REPO_ROOT) == []


def test_the_gate_example_is_the_gate_run_on_the_committed_metrics(tmp_path):
    """docs/statistics.md shows `make gate GATE_ARGS="--ref HEAD"` on the committed results: run it for real (DVC,
    git) on a copy of the project with reports/metrics and models/best's predictions, and the page must show
    exactly what it prints."""
    repo = copy_project(tmp_path / "repo")
    shutil.copytree(REPO_ROOT / "reports/metrics", repo / "reports/metrics")
    shutil.copy2(REPO_ROOT / "reports/best_predictions.csv", repo / "reports/best_predictions.csv")
    init_git_dvc_repo(repo)
    result = run_stage("gate", repo, args=("--ref", "HEAD"))
    assert result.returncode == 0, result.stderr
    shown = docs_check.gate_example(REPO_ROOT)
    assert shown == result.stdout.rstrip("\n"), \
        f"docs/statistics.md's gate example is stale; the gate prints:\n{result.stdout}"


@pytest.fixture
def docs_copy(tmp_path):
    """The docs, the Makefile, params.yaml and reports/ in a folder of their own, to break."""
    for name in ("README.md", "Makefile", "params.yaml"):
        shutil.copy2(REPO_ROOT / name, tmp_path / name)
    for name in ("docs", "reports", "fmnist", "stages"):
        shutil.copytree(REPO_ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", "*.png"))
    return tmp_path


def add(page, text):
    page.write_text(page.read_text() + "\n" + text + "\n")


def test_a_missing_make_target_module_or_flag_is_named(docs_copy):
    add(docs_copy / "docs/ci.md", "```bash\nmake tset\npython -m fmnist.tools.predict --no-such-flag x.png\n"
                                  "python -m fmnist.predict x.png\n```")
    problems = docs_check.all_command_problems(docs_copy)
    assert "docs/ci.md: `make tset`: make target 'tset' is not in the Makefile" in problems
    assert ("docs/ci.md: `python -m fmnist.tools.predict --no-such-flag x.png`: `python -m fmnist.tools.predict` "
            "has no option --no-such-flag") in problems
    assert "docs/ci.md: `python -m fmnist.predict x.png`: module 'fmnist.predict' does not exist" in problems
    assert len(problems) == 3


def test_a_wrong_dvc_or_gto_subcommand_or_option_is_named(docs_copy):
    add(docs_copy / "docs/model.md", "Run `dvc exp run --sett-param x=1`, then `gto registerr fashion-classifier`"
                                     " and `dvc plots show --no-such-option`.")
    problems = docs_check.all_command_problems(docs_copy)
    assert any("`dvc exp run` has no option --sett-param" in line for line in problems), problems
    assert any("`gto registerr` does not exist" in line for line in problems), problems
    assert any("`dvc plots show` has no option --no-such-option" in line for line in problems), problems
    assert len(problems) == 3


def test_a_stale_figure_is_named_in_prose_and_output_but_not_in_commands_or_measurements(docs_copy):
    add(docs_copy / "docs/statistics.md", "The best mean is 0.8912.\n\n```\nsoftmax  0.8477 ± 0.0015\n```\n\n"
                                          "```bash\ndvc exp run -S train.lr=0.1234\n```\n\n"
                                          "<!-- measured: a benchmark -->\n0.4321 s per epoch\n<!-- /measured -->")
    assert docs_check.figure_problems(docs_copy) == [
        f"docs/statistics.md: {number} is not a value in reports/ or params.yaml (a stale figure? link the "
        "generated report instead)" for number in ("0.8912", "0.8477")]


def test_a_results_row_that_disagrees_with_the_metrics_is_named(docs_copy):
    readme = docs_copy / "README.md"
    readme.write_text(readme.read_text().replace("| 0.8465 | ", "| 0.8466 | "))
    assert docs_check.results_table_problems(docs_copy) == [
        "README.md: results row softmax: chapter '0.8466', params.yaml says 0.8465"]


def phony_targets(makefile: str) -> list[str]:
    return [name for line in makefile.splitlines() if line.startswith(".PHONY:") for name in line.split()[1:]]


def targets_without_recipe(makefile: str) -> list[str]:
    """Declared targets whose rule has no recipe line (a tab-indented line right after it)."""
    lines = makefile.splitlines()
    missing = []
    for name in phony_targets(makefile):
        rule = next((i for i, line in enumerate(lines) if re.match(rf"^{re.escape(name)}:(?!=)", line)), None)
        if rule is None or rule + 1 >= len(lines) or not lines[rule + 1].startswith("\t"):
            if name != "venv":  # `venv: $(STAMP)`: the stamp's rule is its recipe
                missing.append(name)
    return missing


def test_make_help_lists_every_target_with_one_line_and_no_target_lacks_a_recipe():
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert targets_without_recipe(makefile) == []
    assert targets_without_recipe(makefile.replace(".PHONY: help", ".PHONY: bench help")) == ["bench"]
    env = {key: value for key, value in os.environ.items() if not key.startswith("MAKE")}
    shown = subprocess.run(["make", "--no-print-directory"], cwd=REPO_ROOT, capture_output=True, text=True,
                           env=env, check=True).stdout  # a bare `make` is `make help`
    listed = [line.split()[1] for line in shown.splitlines()]
    assert listed == [name for name in re.findall(r"^([a-z][a-z-]*):.*## ", makefile, re.M)]
    assert set(listed) == set(phony_targets(makefile))
    assert all(len(line.split(None, 2)) == 3 for line in shown.splitlines())  # make <target> <what it does>
