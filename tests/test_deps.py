"""dvc.yaml's deps are the code each stage runs (fmnist/tools/deps.py), and dvc.lock holds only stages that exist."""
import shutil
import subprocess
import sys

import pytest

from fmnist.tools import deps
from tests.conftest import REPO_ROOT


def test_every_stage_declares_every_project_module_it_imports():
    assert deps.problems(REPO_ROOT) == []


@pytest.fixture
def tree(tmp_path):
    """A copy of the code and dvc.yaml (no data: the walk reads source files only)."""
    for name in ("stages", "fmnist"):
        shutil.copytree(REPO_ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(REPO_ROOT / "dvc.yaml", tmp_path / "dvc.yaml")
    return tmp_path


def append(path, line):
    path.write_text(path.read_text() + f"\n{line}\n")


def test_a_new_import_in_a_stage_fails_naming_the_stage_and_the_module(tree):
    append(tree / "stages/baseline.py", "from fmnist.core import figures  # noqa")
    assert deps.problems(tree) == [
        "stage 'baseline' imports fmnist/core/figures.py (through stages.baseline), but dvc.yaml does not list it in "
        "its "
        "deps: add it, or to fmnist/tools/deps.py RESULT_NEUTRAL with the reason it cannot change the stage's results"]


def test_an_import_deep_in_the_library_reaches_every_stage_that_runs_it(tree):
    # idx: under prepare, baseline, train, ...
    append(tree / "fmnist/core/idx.py", "import fmnist.core.figures  # noqa")
    missing = {line.split("'")[1] for line in deps.problems(tree)}
    assert missing == {"prepare", "baseline", "train@*", "pictures", "assess", "select", "report"}  # plot: has it


def test_a_module_run_as_a_child_process_counts_as_imported(tree):
    append(tree / "stages/prepare.py", "processes.Child('helper', 'fmnist.core.figures', 'x')")
    assert any("stage 'prepare' imports fmnist/core/figures.py" in line for line in deps.problems(tree))


def test_a_package_init_with_code_must_be_declared(tree):
    append(tree / "fmnist/schema/__init__.py", "DEFAULT_SEED = 42")
    assert any("stage 'train@*' imports fmnist/schema/__init__.py" in line for line in deps.problems(tree))


def test_a_declared_module_the_stage_no_longer_imports_is_named(tree):
    (tree / "dvc.yaml").write_text((tree / "dvc.yaml").read_text().replace(
        "      - stages/report.py\n", "      - stages/report.py\n      - fmnist/core/figures.py\n"))
    assert deps.problems(tree) == ["stage 'report' lists fmnist/core/figures.py in its deps, but its command no longer "
                                   "imports it: remove it"]


def test_result_neutral_modules_exist_and_say_why_and_no_schema_is_among_them():
    for path, reason in deps.RESULT_NEUTRAL.items():
        assert (REPO_ROOT / path).is_file(), path
        assert len(reason) > 20, path
        assert not path.startswith("fmnist/schema/"), path  # schemas hold defaults, which change results


def test_the_plumbing_folder_is_exactly_the_result_neutral_code():
    """The layout tells: a module in fmnist/plumbing/ is result-neutral (listed with its reason), and nothing
    outside it is."""
    plumbing = {path.relative_to(REPO_ROOT).as_posix() for path in (REPO_ROOT / "fmnist/plumbing").glob("*.py")
                if path.name != "__init__.py"}
    assert plumbing == set(deps.RESULT_NEUTRAL)
    assert deps.docstring_only(REPO_ROOT / "fmnist/plumbing/__init__.py")


def test_stages_never_import_each_other_nor_the_tools():
    for stage_file in sorted((REPO_ROOT / "stages").glob("*.py")):
        module = f"stages.{stage_file.stem}"
        reached = deps.closure(module, REPO_ROOT)
        others = sorted(path for path in reached if path.startswith("stages/") and path not in
                        (f"stages/{stage_file.name}", "stages/__init__.py"))
        tools = sorted(path for path in reached if path.startswith("fmnist/tools/"))
        assert (others, tools) == ([], []), module


def test_dvc_lock_has_no_entry_for_a_stage_that_is_gone(tmp_path):
    assert deps.lock_problems(REPO_ROOT) == []
    for name in ("dvc.yaml", "params.yaml", "dvc.lock"):
        shutil.copy2(REPO_ROOT / name, tmp_path / name)
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=tmp_path, check=True)
    lock = tmp_path / "dvc.lock"
    lock.write_text(lock.read_text() + "  evaluate@softmax:\n    cmd: python -m stages.evaluate softmax\n")
    assert deps.lock_problems(tmp_path) == [
        "dvc.lock has an entry for stage 'evaluate@softmax', which dvc.yaml does not define: delete the entry"]
