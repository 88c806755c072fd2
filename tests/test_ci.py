"""The CI entry points: .ci/run and the GitHub workflow run the same make targets, and both parse."""
import json
import os
import re
import subprocess
import sys

import yaml

from tests.conftest import REPO_ROOT

WORKFLOW = REPO_ROOT / ".github/workflows/pipeline.yml"
CI_RUN = REPO_ROOT / ".ci/run"


def make_targets(text: str) -> list[str]:
    commands = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    return re.findall(r"\bmake (test-latest|test|reproduce|repro|gate)\b", commands)


def workflow_steps() -> list[dict]:
    document = yaml.safe_load(WORKFLOW.read_text())
    assert set(document) >= {"name", "jobs"} and (True in document or "on" in document)  # YAML 1.1 reads `on` as True
    (job,) = document["jobs"].values()
    return job["steps"]


def test_workflow_parses_and_runs_the_ci_commands_in_the_same_order():
    steps = workflow_steps()
    commands = "\n".join(step.get("run", "") for step in steps)
    assert make_targets(commands) == ["test", "reproduce", "gate"]
    assert make_targets(CI_RUN.read_text()) == ["test", "reproduce", "gate"]
    assert 'make test PYTEST_ARGS="--max-test-seconds ${MAX_TEST_SECONDS:-60}"' in CI_RUN.read_text()
    assert any(step.get("uses", "").startswith("actions/setup-python") and step["with"]["python-version"] == "3.11"
               for step in steps)


def test_workflow_gates_against_main_and_writes_both_diffs_to_the_job_summary():
    steps = workflow_steps()
    gate = next(step["run"] for step in steps if "make gate" in step.get("run", ""))
    assert '--ref origin/main' in gate
    summary = next(step for step in steps if "GITHUB_STEP_SUMMARY" in step.get("run", ""))
    assert summary.get("if") == "always()"
    assert "dvc metrics diff origin/main --md" in summary["run"]
    assert "dvc params diff origin/main --md" in summary["run"]
    checkout = next(step for step in steps if step.get("uses", "").startswith("actions/checkout"))
    assert checkout["with"]["fetch-depth"] == 0  # origin/main must be there to compare with


def test_ci_run_is_valid_bash_that_stops_on_errors():
    text = CI_RUN.read_text()
    assert text.startswith("#!/usr/bin/env bash\n") and "set -euo pipefail" in text
    assert subprocess.run(["bash", "-n", str(CI_RUN)], capture_output=True).returncode == 0
    assert CI_RUN.stat().st_mode & 0o111  # executable
    assert 'make reproduce' in text


def test_make_reproduce_forces_every_stage_logs_them_and_checks_against_head():
    recipe = make_dry_run("-W", "requirements.txt", "reproduce").splitlines()
    recipe = recipe[recipe.index("python -m fmnist.schema"):]  # after the venv's set-up (forced here by -W)
    assert any(line.startswith("FMNIST_RUN_LOG=") and line.endswith("dvc repro --force") for line in recipe), recipe
    assert recipe[-1] == "python -m stages.gate --reproduces HEAD --ran .dvc/tmp/stages-run.log"


def test_make_repro_checks_all_of_params_yaml_before_dvc_starts():
    """`make -n` prints the recipe without running it: the whole-file check comes first, and must pass."""
    recipe = subprocess.run(["make", "-n", "-W", "requirements.txt", "repro"], cwd=REPO_ROOT, capture_output=True,
                            text=True).stdout.splitlines()
    commands = [line for line in recipe if line.startswith(("python -m fmnist.schema", "dvc repro"))]
    assert commands == ["python -m fmnist.schema", "dvc repro"], recipe
    assert subprocess.run([sys.executable, "-m", "fmnist.schema"], cwd=REPO_ROOT, capture_output=True).returncode == 0


# --- the sweep workflow: one job per share, then a collecting one -----------------------------------------

SWEEP_WORKFLOW = REPO_ROOT / ".github/workflows/sweep.yml"


def sweep_jobs() -> tuple[dict, dict]:
    document = yaml.safe_load(SWEEP_WORKFLOW.read_text())
    trigger = document[True]  # YAML 1.1 reads `on` as True
    return trigger, document


def runs(job: dict) -> str:
    return "\n".join(step.get("run", "") for step in job["steps"])


def test_sweep_workflow_is_dispatched_by_hand_with_the_grid_and_the_number_of_shares():
    trigger, document = sweep_jobs()
    assert set(trigger) == {"workflow_dispatch"}
    assert {"grid", "shares", "name"} <= set(trigger["workflow_dispatch"]["inputs"])
    # Inputs reach the scripts through the environment only: nothing typed into a form runs as shell code.
    assert document["env"]["GRID"] == "${{ inputs.grid }}" and document["env"]["SHARES"] == "${{ inputs.shares }}"
    for job in document["jobs"].values():
        assert "${{ inputs." not in runs(job)


def test_plan_turns_the_number_of_shares_into_one_matrix_entry_per_share(tmp_path):
    _, document = sweep_jobs()
    (step,) = document["jobs"]["plan"]["steps"]
    output = tmp_path / "output"
    for shares, expected in (("3", '["1/3", "2/3", "3/3"]'), ("1", '["1/1"]')):
        output.write_text("")
        env = {"SHARES": shares, "GITHUB_OUTPUT": str(output), "PATH": "/usr/bin:/bin"}
        done = subprocess.run(["bash", "-c", step["run"]], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert output.read_text() == f"shares={expected}\n"
    env = {"SHARES": "0", "GITHUB_OUTPUT": str(output), "PATH": "/usr/bin:/bin"}
    refused = subprocess.run(["bash", "-c", step["run"]], env=env, capture_output=True, text=True)
    assert refused.returncode != 0 and "give a whole number from 1 to 20" in refused.stderr
    share = document["jobs"]["share"]
    assert share["strategy"]["matrix"]["share"] == "${{ fromJSON(needs.plan.outputs.shares) }}"
    assert share["strategy"]["fail-fast"] is False


def test_each_share_sets_up_pulls_runs_and_pushes_with_the_local_make_targets():
    _, document = sweep_jobs()
    share, collect = document["jobs"]["share"], document["jobs"]["collect"]
    assert re.findall(r"\bmake ([\w-]+)", runs(share)) == ["venv", "sweep"]
    assert re.findall(r"\bmake ([\w-]+)", runs(collect)) == ["venv", "sweep-collect"]
    commands = runs(share)
    assert commands.index("make venv") < commands.index("dvc pull") < commands.index("make sweep")
    assert 'SHARE="${{ matrix.share }}"' in commands and 'GRID="$GRID"' in commands
    assert share["permissions"]["contents"] == "write"  # dvc exp push writes refs/exps/*
    checkout = next(step for step in share["steps"] if step.get("uses", "").startswith("actions/checkout"))
    assert checkout["with"]["fetch-depth"] == 0
    # Collect runs after every share, also when one failed (it names the missing points), and shows the table.
    assert collect["needs"] == ["plan", "share"] and collect["if"].startswith("${{ always()")
    summary = next(step for step in collect["steps"] if "GITHUB_STEP_SUMMARY" in step.get("run", ""))
    assert summary["if"] == "always()" and "reports/sweeps/" in summary["run"]


# make as a user runs it, not as a child of `make test` (whose MAKEFLAGS a nested make would inherit).
USER_ENV = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}


def make_dry_run(*args: str) -> str:
    """What `make -n ARGS` prints."""
    return subprocess.run(["make", "--no-print-directory", "-n", *args], cwd=REPO_ROOT, env=USER_ENV,
                          capture_output=True, text=True).stdout


def recipe_argv(target: str, variables: dict[str, str]) -> list[list[str]]:
    """The argv each `python -m fmnist.tools.sweep` line of the target's recipe passes, with `variables` set as make
    exports them: the line make prints (-n), run by the shell with printf in python's place."""
    recipe = make_dry_run("-W", "requirements.txt", target, *(f"{k}={v}" for k, v in variables.items())).splitlines()
    argv = []
    for line in (line for line in recipe if "fmnist.tools.sweep" in line):
        shown = subprocess.run(["bash", "-c", line.replace("python -m fmnist.tools.sweep", "printf '%s\\0'")],
                               env={**USER_ENV, **variables}, capture_output=True, text=True, check=True).stdout
        argv.append(shown.split("\0")[:-1])
    return argv


def test_the_workflows_make_targets_run_fmnist_sweep_as_the_docs_document():
    """The make lines the workflow runs, expanded by make and the shell, are the sweep commands a laptop runs."""
    assert recipe_argv("sweep", {"GRID": "a.b=1,2", "SHARE": "2/3", "SWEEP": "s"}) == [
        ["run", "--grid", "a.b=1,2", "--share", "2/3", "--name", "s"]]
    assert recipe_argv("sweep-collect", {"GRID": "a.b=1,2", "SHARES": "3", "SWEEP": "s"}) == [
        ["collect", "--grid", "a.b=1,2", "--shares", "3", "--name", "s"]]
    assert recipe_argv("sweep", {"GRID": "a.b=1,2", "SHARE": "1/1", "SWEEP_ARGS": "--jobs 2 --no-push"}) == [
        ["run", "--grid", "a.b=1,2", "--share", "1/1", "--jobs", "2", "--no-push"]]
    documented = (REPO_ROOT / "docs/scaling.md").read_text()
    assert "make sweep GRID=" in documented and "make sweep-collect GRID=" in documented


# Quotes, ';', $( ) and backticks: run as commands, each would create a file in the working folder.
EVIL = 'x"\';date>pwned0;echo"$(date>pwned1)`date>pwned2`\'$PATH'


def test_values_passed_to_make_never_reach_a_shell_line():
    variables = ["GRID", "SHARE", "SHARES", "SWEEP", "SWEEP_ARGS", "GATE_ARGS", "TUNE_ARGS", "PYTEST_ARGS",
                 "TEST_WORKERS", "DASHBOARD_PORT", "PYTHON"]
    for target in ("sweep", "sweep-collect", "gate", "tune", "test", "dashboard", "venv", "test-latest"):
        printed = make_dry_run("-W", "requirements.txt", "-B", target, *(f"{v}={EVIL}" for v in variables))
        assert "pwned" not in printed, (target, printed)
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert all(value in makefile.split("USER_VALUES :=")[1].splitlines()[0] for value in variables)
    assert recipe_argv("sweep", {"GRID": EVIL, "SHARE": EVIL, "SWEEP": EVIL}) == [
        ["run", "--grid", EVIL, "--share", EVIL, "--name", EVIL]]


def test_a_hostile_grid_reaches_the_sweep_parser_byte_for_byte_and_runs_nothing(tmp_path):
    """`make sweep` for real, in a copy of the project (this venv): the sweep's own parser rejects the grid and
    quotes it back exactly; no command inside it ran."""
    from tests.helpers import copy_project

    project = copy_project(tmp_path / "project", ("Makefile", "requirements.txt", "params.yaml", "fmnist", "stages"))
    venv = f"VENV={REPO_ROOT / '.venv'}"
    grid = subprocess.run(["make", "-s", "--no-print-directory", "sweep", venv, f"GRID={EVIL}", "SHARE=1/1"],
                          cwd=project, env=USER_ENV, capture_output=True, text=True)
    assert grid.returncode != 0
    assert f"error: grid item {EVIL!r}: expected KEY=V1,V2" in grid.stderr, grid.stderr
    share = subprocess.run(["make", "-s", "--no-print-directory", "sweep", venv, "GRID=variants.softmax.epochs=1,2",
                            f"SHARE={EVIL}"], cwd=project, env=USER_ENV, capture_output=True, text=True)
    assert f"error: share {EVIL!r}: expected K/N" in share.stderr, share.stderr
    assert not list(project.glob("pwned*"))


def test_the_latest_releases_workflow_runs_weekly_with_unpinned_packages():
    document = yaml.safe_load((REPO_ROOT / ".github/workflows/latest.yml").read_text())
    triggers = document.get(True, document.get("on"))  # YAML 1.1 reads `on` as True
    assert triggers["schedule"][0]["cron"] and "workflow_dispatch" in triggers
    assert document["permissions"] == {"contents": "read"}
    job = document["jobs"]["test-latest"]  # beside it, the mutation job (its own test below)
    commands = "\n".join(step.get("run", "") for step in job["steps"])
    assert make_targets(commands) == ["test-latest"]
    assert any(step.get("uses", "").startswith("actions/setup-python") and step["with"]["python-version"] == "3.11"
               for step in job["steps"])
    recipe = make_dry_run("test-latest")
    unpin = next(line for line in recipe.splitlines() if line.startswith("sed "))
    pins = (REPO_ROOT / "requirements.in").read_text()
    unpinned = subprocess.run(["bash", "-c", unpin.split(" > ")[0]], input=pins, capture_output=True, text=True,
                              cwd=REPO_ROOT, check=True).stdout.split()
    assert "tensorflow" in unpinned and "jax[cpu]" in unpinned and "psycopg[binary]" in unpinned
    assert not any("=" in name or "#" in name for name in unpinned), unpinned
    assert "python -m pytest" in recipe.splitlines()[-1] and ".venv-latest/bin:" in recipe.splitlines()[-1]


def test_every_workflow_sets_up_with_the_makefile_and_keeps_uvs_cache():
    """The workflows install as a user does (make installs uv and the lock); a workflow that installs the lock
    caches uv's downloads, keyed on the lock, and none caches pip's, which nothing uses any more."""
    for path in sorted((REPO_ROOT / ".github/workflows").glob("*.yml")):
        document = yaml.safe_load(path.read_text())
        for job in document["jobs"].values():
            steps = job.get("steps", [])
            commands = "\n".join(step.get("run", "") for step in steps)
            assert "pip install" not in commands and "uv pip" not in commands, path.name
            if not re.search(r"\bmake (venv|test|reproduce|site)(?![\w-])", commands):  # test-latest: no lock
                continue
            assert not any(step.get("with", {}).get("cache") == "pip" for step in steps), path.name
            cache = next(step for step in steps if step.get("uses", "").startswith("actions/cache"))
            assert cache["with"]["path"] == "~/.cache/uv" and "hashFiles('requirements.txt')" in cache["with"]["key"]


def test_the_site_workflow_publishes_main_to_pages_and_gives_pull_requests_the_built_site():
    document = yaml.safe_load((REPO_ROOT / ".github/workflows/site.yml").read_text())
    triggers = document.get(True, document.get("on"))  # YAML 1.1 reads `on` as True
    assert triggers["push"]["branches"] == ["main"] and "pull_request" in triggers
    assert document["permissions"] == {"contents": "read"}  # the deploy job alone gets more
    build, deploy = document["jobs"]["build"], document["jobs"]["deploy"]
    assert "make site" in "\n".join(step.get("run", "") for step in build["steps"])
    assert "python -m fmnist.tools.site" in make_dry_run("site")

    def step(job, action):
        return next(s for s in job["steps"] if s.get("uses", "").startswith(f"actions/{action}@"))

    pages, artifact = step(build, "upload-pages-artifact"), step(build, "upload-artifact")
    assert pages["with"]["path"] == artifact["with"]["path"] == "site"  # make site's default folder
    assert pages["if"] == "github.event_name != 'pull_request'"
    assert artifact["if"] == "github.event_name == 'pull_request'"
    assert deploy["needs"] == "build" and deploy["if"] == "github.event_name != 'pull_request'"
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}  # what deploy-pages needs
    assert deploy["environment"]["name"] == "github-pages" and step(deploy, "deploy-pages")["id"] == "deployment"
    help_text = subprocess.run([sys.executable, "-m", "fmnist.tools.site", "--help"], cwd=REPO_ROOT,
                               capture_output=True, text=True).stdout
    assert "(default: site)" in help_text


def test_the_venv_is_made_and_filled_by_the_pinned_uv_from_the_lock():
    recipe = make_dry_run("-W", "requirements.txt", "venv").splitlines()
    version = re.search(r"^UV_VERSION := (\S+)$", (REPO_ROOT / "Makefile").read_text(), re.MULTILINE).group(1)
    uv = str(REPO_ROOT / ".uv" / version / "bin" / "uv")
    assert any(line.startswith("test -x ") and f"|| {uv} venv " in line for line in recipe), recipe
    assert any(line.startswith(f"{uv} pip install ") and line.endswith("-r requirements.txt")
               and "--compile-bytecode" in line for line in recipe)  # imports stay fast without write access
    installing_uv = make_dry_run("-B", uv).replace("\\\n", "").splitlines()
    assert any(f"--target {REPO_ROOT}/.uv/{version}" in line and f"uv=={version}" in line for line in installing_uv)


SLOW_AND_WAITING = '''
import time
import pytest
from tests.conftest import shared_build_time

def test_slow():
    time.sleep(0.5)

@pytest.mark.longer(3, why="allowed three times the limit")
def test_slow_and_allowed():
    time.sleep(0.5)

@pytest.mark.longer(1.2, why="allowed more, but not enough")
def test_slower_than_allowed():
    time.sleep(0.5)

def test_waits_for_a_shared_pipeline():
    with shared_build_time(time.monotonic()):
        time.sleep(0.5)

def test_quick():
    pass
'''


def test_a_test_over_max_test_seconds_fails_the_run_and_the_wait_for_a_shared_pipeline_does_not_count(tmp_path):
    (tmp_path / "test_timed.py").write_text(SLOW_AND_WAITING)

    def pytest(*options):
        return subprocess.run([sys.executable, "-m", "pytest", "-p", "tests.conftest", "-p", "no:cacheprovider",
                               str(tmp_path / "test_timed.py"), *options], cwd=REPO_ROOT, capture_output=True,
                              text=True, env={**os.environ, "PYTEST_ADDOPTS": ""})

    assert pytest().returncode == 0  # no limit, no check
    for workers in ([], ["-n", "2"]):  # one process, and xdist's workers reporting to their controller
        timed = pytest("--max-test-seconds", "0.3", *workers)
        assert timed.returncode == 1, timed.stdout
        over = timed.stdout.split("tests over --max-test-seconds=0.3", 1)[1]
        assert "test_timed.py::test_slow  (allowed 0.3 s)" in over, over
        assert "test_timed.py::test_slower_than_allowed  (allowed 0.36 s)" in over, over
        assert "test_waits_for_a_shared_pipeline" not in over and "test_slow_and_allowed" not in over, over
        assert "error: 2 test(s) took longer than allowed" in over
        assert "5 passed" in timed.stdout
    assert pytest("--max-test-seconds", "0.6").returncode == 0  # a larger limit moves the marked tests' bounds too


def test_every_workflow_grants_least_privilege_and_hands_secrets_only_to_the_steps_that_use_them():
    """Top-level `contents: read` everywhere; `contents: write` only in the job that pushes (a sweep's share); the
    checkout keeps no credentials where nothing is pushed or fetched with them; the DVC remote's secrets appear in
    no workflow's or job's environment, only in the steps that pull or push."""
    for path in sorted((REPO_ROOT / ".github/workflows").glob("*.yml")):
        document = yaml.safe_load(path.read_text())
        assert document.get("permissions") == {"contents": "read"}, path.name
        assert "secrets." not in json.dumps(document.get("env", {})), path.name
        for name, job in document["jobs"].items():
            where = f"{path.name}: {name}"
            writes = job.get("permissions", {}).get("contents") == "write"
            assert writes == (path.name == "sweep.yml" and name == "share"), where
            assert "secrets." not in json.dumps(job.get("env", {})), where
            for step in job.get("steps", []):
                if step.get("uses", "").startswith("actions/checkout"):
                    keeps = step.get("with", {}).get("persist-credentials", True)
                    assert keeps == (path.name == "sweep.yml" and name in ("share", "collect")), where
                if "secrets.AWS" in json.dumps(step.get("env", {})):
                    assert "dvc" in step.get("run", "") or "make sweep" in step.get("run", ""), (where, step)


def test_a_test_without_its_service_or_data_skips_here_but_fails_in_ci():
    """tests.conftest.unavailable: the real-data test (likewise PostgreSQL's and Chromium's) with no real data is
    skipped on a developer's machine and fails where CI=true, so a CI run cannot go green without it."""
    test = "tests/test_predict.py::test_photo_like_versions_of_real_test_images_keep_their_predicted_class"
    env = {key: value for key, value in os.environ.items()
           if key not in ("FASHION_MNIST_MIRROR", "CI", "PYTEST_ADDOPTS", "PYTEST_XDIST_WORKER")}
    outcomes = {}
    for ci in (None, "true"):
        result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
                                 "-rsf", test], cwd=REPO_ROOT, env={**env, **({"CI": ci} if ci else {})},
                                capture_output=True, text=True)
        outcomes[ci] = (result.returncode, result.stdout)
    assert outcomes[None][0] == 0 and "1 skipped" in outcomes[None][1], outcomes[None][1]
    assert outcomes["true"][0] == 1 and "1 error" in outcomes["true"][1], outcomes["true"][1]  # in its fixture
    assert "CI=true: in CI this is a failure, not a skip" in outcomes["true"][1]


def test_the_weekly_workflow_runs_the_mutation_score_with_its_threshold():
    document = yaml.safe_load((REPO_ROOT / ".github/workflows/latest.yml").read_text())
    steps = [step.get("run", "") for step in document["jobs"]["mutation"]["steps"]]
    assert "make mutation" in steps
    printed = make_dry_run("mutation")
    assert "mutmut export-cicd-stats" in printed and "sys.exit(score < float(sys.argv[1]))' 80" in printed
    config = (REPO_ROOT / "pyproject.toml").read_text()
    assert '"fmnist/core/choice.py"' in config.split("only_mutate")[1].splitlines()[0]  # the selection rule


def test_make_check_runs_ruff_then_the_tests_marked_quick_from_what_they_use():
    """The hook in tests/conftest.py, on two modules: a statistics test that calls nothing but the library is quick; a
    gate test whose fixture builds a git+DVC repository is not, nor one whose helper starts a process; a module that
    imports Keras is not even imported. .ci/run runs make check before make test."""
    assert re.findall(r"\bmake (check|test)\b", CI_RUN.read_text())[:2] == ["check", "test"]
    recipe = make_dry_run("check")
    assert recipe.index("ruff check") < recipe.index("-m quick")
    env = {key: value for key, value in os.environ.items() if key not in ("PYTEST_ADDOPTS", "PYTEST_XDIST_WORKER")}
    listed = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-m", "quick", "-p", "no:xdist",
                             "-p", "no:cacheprovider", "tests/test_statistics.py", "tests/test_gate.py",
                             "tests/test_interrupts.py", "tests/test_models.py"],
                            cwd=REPO_ROOT, env=env, capture_output=True, text=True).stdout
    assert "tests/test_statistics.py::test_standard_error_of_the_difference" in listed
    assert "tests/test_gate.py::test_the_tolerance_follows_the_measured_spread" in listed  # no fixture: quick
    assert "tests/test_gate.py::test_gate_passes_and_prints_every_check_with_its_tolerance" not in listed  # repo
    assert "tests/test_interrupts.py::" not in listed  # each starts a program through its helper, start()
    assert "tests/test_models.py::" not in listed  # imports Keras


# check-jsonschema bundles SchemaStore's schema of GitHub workflows (its `vendor.github-workflows`), the one editors
# and GitHub's own tooling validate against; run by the Makefile's pinned uv from the package index, in its own
# throwaway environment (nothing of it goes in the lock).
CHECK_JSONSCHEMA = "check-jsonschema==0.39.0"


def test_every_workflow_is_valid_against_githubs_workflow_schema(tmp_path):
    from tests.test_lock import pinned_uv, run_uv

    workflows = sorted(str(path) for path in (REPO_ROOT / ".github/workflows").glob("*.yml"))
    assert len(workflows) >= 5
    check = [pinned_uv(), "tool", "run", "--quiet", "--from", CHECK_JSONSCHEMA, "check-jsonschema",
             "--builtin-schema", "vendor.github-workflows"]
    result = run_uv([*check, *workflows], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    broken = tmp_path / "broken.yml"  # a job with no runs-on and a step that is neither run nor uses
    broken.write_text("name: x\non: push\njobs:\n  a:\n    steps:\n      - name: nothing\n")
    assert run_uv([*check, str(broken)], tmp_path).returncode == 1


def test_the_platforms_workflow_tests_each_platform_and_crosschecks_three_variants():
    """Linux x86_64 and aarch64 and macOS arm64 (the lock's platforms), on a schedule and by hand; each runs the
    suite and the one-seed run of three variants against the committed means, and uploads its rows, which the last
    job puts in one table whatever failed."""
    document = yaml.safe_load((REPO_ROOT / ".github/workflows/platforms.yml").read_text())
    triggers = document.get(True, document.get("on"))
    assert set(triggers) == {"schedule", "workflow_dispatch"}
    job = document["jobs"]["platform"]
    assert {entry["runner"] for entry in job["strategy"]["matrix"]["include"]} == {
        "ubuntu-24.04", "ubuntu-24.04-arm", "macos-14"}
    assert job["strategy"]["fail-fast"] is False and job["runs-on"] == "${{ matrix.runner }}"
    commands = [step.get("run", "") for step in job["steps"]]
    test = next(i for i, command in enumerate(commands) if command.strip() == "make test")
    crosscheck = next(i for i, command in enumerate(commands) if "-m fmnist.tools.crosscheck" in command)
    assert test < crosscheck
    variants = commands[crosscheck].split("crosscheck", 1)[1].split("--out")[0].split()
    declared = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())["variants"]
    assert len(variants) == 3 and set(variants) <= set(declared), variants
    upload = next(step for step in job["steps"] if step.get("uses", "").startswith("actions/upload-artifact"))
    assert upload["if"] == "always()"
    table = document["jobs"]["table"]
    assert table["needs"] == "platform" and table["if"] == "always()"
    assert "GITHUB_STEP_SUMMARY" in table["steps"][-1]["run"]
