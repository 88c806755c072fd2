"""Tuning (python -m fmnist.tools.tune): the `tune` section's checks, a SQLite study on the tiny pipeline whose
trials are DVC experiments, resuming, promoting the winner, and two workers on a real PostgreSQL server."""
from __future__ import annotations

import csv
import difflib
import hashlib
import json
import math
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from fmnist.plumbing import params, paths
from fmnist.plumbing.params import ParamsError
from fmnist.schema.tools import TuneParams
from tests.conftest import REPO_ROOT, TINY_VARIANTS, copy_pipeline, unavailable
from tests.helpers import commit_all, ctrl_c, edit_params, experiments_shown, run

TINY_SPACE = {
    "base": "tiny_relu", "trials": 3, "seeds": 2, "sampler_seed": 7, "patience": 1,
    "pruner": {"name": "median", "startup_trials": 2, "warmup_epochs": 1},
    "space": {"units": {"low": 4, "high": 32, "log": True}, "dropout": {"low": 0.0, "high": 0.5},
              "optimizer": {"choices": ["sgd", "adam"]}, "learning_rate": {"low": 0.001, "high": 0.1, "log": True},
              "batch_size": {"choices": [16, 32]}, "epochs": {"low": 2, "high": 4}},
}


def committed_tune() -> dict:
    return yaml.safe_load((REPO_ROOT / "params.yaml").read_text())["tune"]


@pytest.mark.parametrize("change, message", [
    (("space", "units", {"low": 64, "high": 32}), "'tune.space.units' = {'low': 64, 'high': 32} is not allowed: "
                                                   "inverted range: low 64 is above high 32"),
    (("space", "epochs", {"low": 10, "high": 10}), "'tune.space.epochs' = {'low': 10, 'high': 10} is not allowed: "
                                                    "empty range: low = high = 10"),
    (("space", "learning_rate", {"low": 0.0, "high": 0.1, "log": True}), "is not allowed: a log scale needs low > 0"),
    (("space", "dropout", {"low": 0.1, "high": 1.0}),
     "'tune.space.dropout.high' = 1.0 is not allowed: Input should be less than 1"),
    (("space", "momentum", {"low": 0.1, "high": 0.9}),
     "unknown key 'tune.space.momentum' (allowed keys: units, dropout, "
                                                       "optimizer, learning_rate, batch_size, epochs)"),
    (("space", "optimizer", {"choices": ["adamw"]}), "'tune.space.optimizer.choices.0' = 'adamw' is not allowed"),
    (("space", "batch_size", {"choices": []}), "'tune.space.batch_size.choices' = [] is not allowed"),
    (("pruner", "name", "hyperband"),
     "'tune.pruner.name' = 'hyperband' is not allowed: Input should be 'median' or 'none'"),
])
def test_bad_tune_sections_name_the_key(change, message):
    section = committed_tune()
    *parents, key, value = change
    node = section
    for parent in parents:
        node = node[parent]
    node[key] = value
    with pytest.raises(ParamsError) as raised:
        params.parse(TuneParams, section)
    assert message in str(raised.value)


@pytest.fixture(scope="module")
def pipeline(tiny_pipelines):
    return tiny_pipelines("tensorflow")


def tune(repo: Path, env: dict, *args, check: bool = True) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "fmnist.tools.tune", *map(str, args)], repo, env, check=check)


def with_tiny_space(pipeline, dest: Path, **changes):
    copy = copy_pipeline(pipeline, dest)
    edit_params(copy.repo, lambda d: d.update(tune={**TINY_SPACE, **changes}))
    commit_all(copy.repo, "tiny search space")
    return copy


def test_a_base_variant_that_does_not_exist_and_an_unreachable_database_get_one_line(pipeline, tmp_path):
    copy = with_tiny_space(pipeline, tmp_path / "repo", base="nosuch")
    result = tune(copy.repo, copy.env, check=False)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == ("error: params.yaml: tune.base names 'nosuch', which is not declared (declared: "
                             "tiny_softmax, tiny_relu, tiny_stopping)\n")
    edit_params(copy.repo, lambda d: d["tune"].update(base="tiny_relu"))
    closed_port = free_port()
    result = tune(copy.repo, copy.env, "--storage", f"postgresql+psycopg://tuner@127.0.0.1:{closed_port}/study",
                  check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"error: tune storage: cannot reach the database at 127.0.0.1:{closed_port} (")
    result = tune(copy.repo, {**copy.env,
                              "FMNIST_TUNE_STORAGE": "postgresql+psycopg://tuner@no-such-host.invalid/study"},
                  check=False)
    assert result.stderr.startswith("error: tune storage: cannot reach the database at no-such-host.invalid:5432 (")


def trials_table(repo: Path) -> list[dict]:
    with open(repo / paths.TUNING_TRIALS, newline="") as handle:
        return list(csv.DictReader(handle))


def experiments(repo: Path, env: dict) -> dict[str, dict]:
    """name -> {params of the trial, metrics} of every DVC experiment in the repo."""
    return {shown["name"]: {"params": shown["params"].get("tuning/trial/params.yaml", {}),
                            "metrics": shown["metrics"].get("tuning/trial/metrics.json", {})}
            for shown in experiments_shown(repo, env)}


@pytest.mark.longer(2, why="six trials saved as experiments, one interrupted")
def test_a_sqlite_study_saves_each_trial_as_an_experiment_and_resumes(pipeline, tmp_path):
    copy = with_tiny_space(pipeline, tmp_path / "repo")
    repo, env = copy.repo, copy.env
    first = tune(repo, env)
    assert first.stdout.startswith("study 'fashion-mnist' in sqlite:///tuning/study.db: 0 of 3 trials finished")
    assert (repo / "tuning/study.db").is_file()
    table = trials_table(repo)
    assert [row["number"] for row in table] == ["0", "1", "2"]
    assert {row["state"] for row in table} <= {"COMPLETE", "PRUNED"}
    # Each trial is one DVC experiment, with its drawn params and its metric.
    found = experiments(repo, env)
    assert set(found) == {f"fashion-mnist-trial-{n:03d}" for n in range(3)}
    for row in table:
        recorded = found[f"fashion-mnist-trial-{int(row['number']):03d}"]
        assert recorded["params"]["units"] == int(row["units"])
        assert recorded["params"]["state"] == row["state"].lower()
        if row["state"] == "COMPLETE":
            assert recorded["metrics"]["val_accuracy_mean"] == pytest.approx(float(row["value"]))
    best = json.loads((repo / paths.TUNING_BEST).read_text())
    complete = [row for row in table if row["state"] == "COMPLETE"]
    assert best["value"] == pytest.approx(max(float(row["value"]) for row in complete))
    assert (repo / paths.TUNING_HISTORY).is_file()
    # The study file stays out of git (DVC tracks it), and the workspace is as it was but for the reports.
    status = run(["git", "status", "--porcelain", "--untracked-files=all"], repo, env).stdout.split("\n")
    assert sorted(line[3:] for line in status if line) == sorted(
        [str(p.relative_to(repo)) for p in (repo / paths.TUNING_DIR).iterdir() if p.name != "README.md"]
        + ["tuning/study.db.dvc"])

    # Interrupted mid-trial (Ctrl-C): that trial is marked failed; running again resumes. The Ctrl-C comes the moment
    # one of the trial's reads of the study has run, its rows not yet fetched: a KeyboardInterrupt there kept the
    # read's lock on the file (its cursor lives on in the traceback), and Optuna could not record the trial's end
    # ("database is locked", after SQLite's 5 s wait): 5 times in 75 Ctrl-Cs sent as a trial began (Optuna alone).
    worker = subprocess.run([sys.executable, "-c", CTRL_C_AFTER_A_TRIALS_READ, "--trials", "5"], cwd=repo,
                            env=env, capture_output=True, text=True, timeout=300)
    assert worker.returncode == 130 and "interrupted" in worker.stderr, worker.stderr
    resumed = tune(repo, env, "--trials", "5")
    assert "5 of 5" not in resumed.stdout.splitlines()[0] and " of 5 trials finished" in resumed.stdout
    table = trials_table(repo)
    assert [row["state"] for row in table].count("FAIL") == 1
    finished = [row for row in table if row["state"] in ("COMPLETE", "PRUNED")]
    assert len(finished) == 5 and len({row["number"] for row in table}) == len(table)
    assert set(experiments(repo, env)) == {f"fashion-mnist-trial-{int(row['number']):03d}" for row in finished}


# The tune command, with a Ctrl-C sent to itself after the first trial's first read that follows its first write
# (the worker's name), in the main thread: Optuna's heartbeat thread has a connection of its own.
CTRL_C_AFTER_A_TRIALS_READ = """
import os, runpy, signal, sqlalchemy, threading
events = []
@sqlalchemy.event.listens_for(sqlalchemy.engine.Engine, "after_cursor_execute")
def ctrl_c(connection, cursor, statement, *args):
    if threading.current_thread() is not threading.main_thread() or len(events) == 2:
        return
    if statement.startswith("INSERT INTO trial_user_attributes"):
        events[:] = ["named"]
    elif events == ["named"] and statement.startswith("SELECT"):
        events.append(os.kill(os.getpid(), signal.SIGINT))
runpy.run_module("fmnist.tools.tune", run_name="__main__", alter_sys=True)
"""


def wait_for(condition, timeout: float, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s")


@pytest.mark.longer(2, why="the pipeline with the new variant, through DVC")
def test_promote_adds_the_best_trial_as_variant_tuned_and_the_report_judges_it(published, tmp_path):
    copy = copy_pipeline(published[0], tmp_path / "repo")  # its two-trial study, as a run of its own would make
    repo, env = copy.repo, copy.env
    # The layout `dvc exp run -S` gives params.yaml (the committed file has it; this copy was written by PyYAML).
    from ruamel.yaml import YAML
    layout = YAML()
    layout.dump(layout.load((repo / "params.yaml").read_text()), repo / "params.yaml")
    commented = (repo / "params.yaml").read_text().replace("\nchapter:", "\n\n# The book's numbers.\nchapter:")
    (repo / "params.yaml").write_text(commented)
    before = (repo / "params.yaml").read_text()
    promoted = tune(repo, env, "promote")
    assert promoted.stdout.startswith("params.yaml: variant 'tuned' = ")
    after = (repo / "params.yaml").read_text()
    changes = [line for line in difflib.ndiff(before.splitlines(), after.splitlines()) if line[:1] in "+-?"]
    rewritten = [line for line in changes if not line.startswith("+ ")]
    # Lines added, and none rewritten but the tuned variant's minimum (this copy's gates had main's).
    assert changes and all("tuned.val_accuracy_mean:" in line or line.startswith("? ") for line in rewritten), rewritten
    assert "        restore_best_weights: true\n\n# The book's numbers.\nchapter:" in after  # the comment stays put
    best = json.loads((repo / paths.TUNING_BEST).read_text())
    tuned = yaml.safe_load(after)["variants"]["tuned"]
    assert tuned["hidden"] == [{"units": best["params"]["units"], "activation": "relu",
                                "dropout": best["params"]["dropout"]}]
    assert tuned["optimizer"] == {"name": best["params"]["optimizer"], "learning_rate": best["params"]["learning_rate"]}
    assert tuned["epochs"] == best["params"]["epochs"] and tuned["batch_size"] == best["params"]["batch_size"]
    assert tuned["callbacks"] == {"early_stopping": {"monitor": "val_loss", "patience": 1,
                                                     "restore_best_weights": True}}
    ran = run(["dvc", "repro"], repo, env).stdout
    assert "Running stage 'train@tuned'" in ran and "Running stage 'train@tiny_relu'" not in ran
    summary = (repo / paths.SUMMARY_REPORT).read_text()
    assert "## Tuning (Optuna)" in summary and "(tuning/trials.csv)" in summary
    assert "![Optimization history](tuning/history.png)" in summary
    metrics = json.loads((repo / paths.metrics_file("tuned")).read_text())
    verdict = next(line for line in summary.splitlines() if line.startswith("`tuned`: mean validation accuracy"))
    assert f"{metrics['val_accuracy_mean']:.4f} ± {metrics['val_accuracy_std']:.4f} (5 seeds)" in verdict
    # The verdict follows from the metrics by the rule (params.yaml gates), worked out here.
    others = {name: json.loads((repo / paths.metrics_file(name)).read_text()) for name in TINY_VARIANTS}
    rival = max(others, key=lambda name: others[name]["val_accuracy_mean"])
    difference = metrics["val_accuracy_mean"] - others[rival]["val_accuracy_mean"]
    rule = yaml.safe_load(after)["gates"]  # k standard errors of the difference, at least floor
    allowed = max(rule["floor"], rule["k"] * math.sqrt(metrics["val_accuracy_std"] ** 2 / 5
                                                       + others[rival]["val_accuracy_std"] ** 2 / 5))
    expected = ("it beats" if difference > allowed else "it is worse" if difference < -allowed else "it does not beat")
    assert f"against {rival}, the best of the others" in verdict
    assert f"the tolerance of {allowed:.4f}, {rule['k']:g} standard errors of the difference" in verdict
    assert [phrase for phrase in ("it beats", "it is worse", "it does not beat") if phrase in verdict] == [expected]
    # And it is gated like every variant: promote wrote its minimum, from the trial, by the rule.
    gates = yaml.safe_load(after)["gates"]
    allowed = max(0.01, 3 * (best["val_accuracy_std"] or 0) / math.sqrt(2))
    trial_minimum = math.floor((best["value"] - allowed) * 1000) / 1000
    assert gates["minimum"]["tuned.val_accuracy_mean"] == trial_minimum


def test_new_tuning_reports_make_the_report_stage_stale(pipeline, tmp_path):
    """The report's tuning section reads reports/tuning: dvc.yaml declares it, so DVC sees a new study's reports."""
    copy = copy_pipeline(pipeline, tmp_path / "repo")
    up_to_date = run(["dvc", "status", "report"], copy.repo, copy.env).stdout.strip()
    assert up_to_date == "Data and pipelines are up to date."
    shutil.copy2(REPO_ROOT / paths.TUNING_BEST, copy.repo / paths.TUNING_BEST)
    status = run(["dvc", "status", "report"], copy.repo, copy.env).stdout
    assert "changed deps:" in status and "reports/tuning" in status, status


# --- the study as an artifact: tracked by DVC, pushed, resumed in a fresh clone, opened by optuna-dashboard --------

@pytest.fixture(scope="module")
def published(pipeline, tmp_path_factory):
    """(the maintainers' repo with a two-trial study that the run tracked with DVC, committed and pushed to the
    default remote, a folder; that folder; the run's output)."""
    root = tmp_path_factory.mktemp("study-artifact")
    copy = with_tiny_space(pipeline, root / "repo", trials=2)
    remote = root / "remote"
    run(["dvc", "remote", "add", "--default", "shelf", str(remote)], copy.repo, copy.env)
    ran = tune(copy.repo, copy.env, "--no-experiments")
    run(["dvc", "push"], copy.repo, copy.env)
    commit_all(copy.repo, "the study and its reports")
    return copy, remote, ran


def fresh_clone(maintainers, dest: Path, data: bool = True) -> Path:
    run(["git", "clone", "-q", str(maintainers.repo), str(dest)], dest.parent, maintainers.env)
    if data:
        run(["dvc", "pull", "data/prepared"], dest, maintainers.env)  # what trials train on
    return dest


@pytest.mark.longer(2, why="a two-trial study run and pushed, then resumed in a fresh clone")
def test_the_study_is_tracked_by_dvc_and_a_fresh_clone_resumes_it_from_the_remote(published, tmp_path):
    maintainers, remote, ran = published
    study = maintainers.repo / "tuning/study.db"
    assert ran.stdout.splitlines()[-1] == ("tuning/study.db: the study in the DVC cache; commit tuning/study.db.dvc "
                                           "with reports/tuning and `dvc push` to share it")
    tracked = yaml.safe_load((maintainers.repo / "tuning/study.db.dvc").read_text())["outs"][0]
    assert tracked["path"] == "study.db" and tracked["md5"] == hashlib.md5(study.read_bytes()).hexdigest()
    in_git = run(["git", "ls-files", "tuning"], maintainers.repo, maintainers.env).stdout.split()
    assert "tuning/study.db.dvc" in in_git and "tuning/study.db" not in in_git
    assert (remote / "files/md5" / tracked["md5"][:2] / tracked["md5"][2:]).is_file()  # pushed

    repo = fresh_clone(maintainers, tmp_path / "clone")
    assert not (repo / "tuning/study.db").exists()
    resumed = tune(repo, maintainers.env, "--trials", "3", "--no-experiments")
    lines = resumed.stdout.splitlines()
    assert lines[0] == "tuning/study.db: the study, from DVC remote 'shelf' (tuning/study.db.dvc)"
    assert lines[1].startswith("study 'fashion-mnist' in sqlite:///tuning/study.db: 2 of 3 trials finished")
    before, after = trials_table(maintainers.repo), trials_table(repo)
    assert len(after) == 3 and after[:2] == before  # the same two trials, row for row, then one more
    status = run(["git", "status", "--porcelain"], repo, maintainers.env).stdout.splitlines()
    assert " M tuning/study.db.dvc" in status  # the resumed study's new version, to commit and push


def test_a_run_that_would_replace_the_reports_with_another_study_stops_unless_asked(published, tmp_path):
    import optuna

    maintainers, _, _ = published
    repo = fresh_clone(maintainers, tmp_path / "clone")
    run(["dvc", "remote", "remove", "shelf"], repo, maintainers.env)  # a clone that cannot fetch the study
    reports = {p.name: p.read_bytes() for p in (repo / paths.TUNING_DIR).iterdir()}
    refused = tune(repo, maintainers.env, "--no-experiments", check=False)
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr == (
        "error: reports/tuning/trials.csv reports 2 trials of another study than this run would continue: "
        "sqlite:///tuning/study.db has no study 'fashion-mnist'. To resume the reported study, bring the study with "
        "`python -m fmnist.tools.pull tuning/study.db` (a default DVC remote must have it); to start a new study "
        "whose reports replace these, pass --new-study\n")
    assert not (repo / "tuning/study.db").exists()  # nothing made that a later pull would have to overwrite
    # A study of the same name elsewhere, with other trials: refused, naming the first reported trial it lacks.
    other = f"sqlite:///{tmp_path / 'other.db'}"
    impostor = optuna.create_study(study_name="fashion-mnist", storage=other, direction="maximize")
    impostor.add_trial(optuna.trial.create_trial(params={"units": 8}, value=0.5, distributions={
        "units": optuna.distributions.IntDistribution(4, 32, log=True)}))
    refused = tune(repo, maintainers.env, "--no-experiments", "--storage", other, check=False)
    assert refused.returncode == 1 and refused.stderr.startswith(
        f"error: reports/tuning/trials.csv reports 2 trials of another study than this run would continue: the study "
        f"'fashion-mnist' in {other} (1 trials) is another one: it lacks trial 0 as reported. To resume the reported "
        "study, run with the storage that holds it (--storage URL); to start a new study")
    assert {p.name: p.read_bytes() for p in (repo / paths.TUNING_DIR).iterdir()} == reports
    # Asked for: a new study replaces the reports.
    new = tune(repo, maintainers.env, "--no-experiments", "--new-study", "--trials", "1")
    assert new.stdout.startswith("study 'fashion-mnist' in sqlite:///tuning/study.db: 0 of 1 trials finished")
    assert [row["number"] for row in trials_table(repo)] == ["0"]
    # And --new-study where the storage holds the reported study after all: refused, that would resume it.
    again = tune(repo, maintainers.env, "--no-experiments", "--new-study", check=False)
    assert again.returncode == 1 and again.stderr == (
        "error: --new-study: sqlite:///tuning/study.db holds study 'fashion-mnist', the one "
        "reports/tuning/trials.csv reports; name another study in params.yaml tune.study, or pass --storage URL for "
        "another database\n")


def get_json(url: str):
    """The JSON a URL answers, or None while nothing listens there."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.load(response)
    except (urllib.error.URLError, ConnectionError):
        return None


def test_optuna_dashboard_serves_the_study_a_fresh_clone_fetches(published, tmp_path):
    maintainers, _, _ = published
    repo = fresh_clone(maintainers, tmp_path / "clone", data=False)
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "fmnist.tools.tune", "dashboard", "--port", str(port)],
                              cwd=repo, env=maintainers.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        listed = wait_for(lambda: get_json(f"http://127.0.0.1:{port}/api/studies"), timeout=60)["study_summaries"]
        assert [study["study_name"] for study in listed] == ["fashion-mnist"]
        detail = get_json(f"http://127.0.0.1:{port}/api/studies/{listed[0]['study_id']}")
        table = trials_table(maintainers.repo)
        assert [(t["number"], t["state"].upper()) for t in detail["trials"]] == [
            (int(row["number"]), row["state"]) for row in table]
        for shown, row in zip(detail["trials"], table):
            assert shown["params"] and all(row[p["name"]] == p["param_external_value"]
                                           or float(row[p["name"]]) == float(p["param_external_value"])
                                           for p in shown["params"])
            assert shown.get("values") == ([float(row["value"])] if row["state"] == "COMPLETE" else None)
    finally:
        server.terminate()
        out, err = server.communicate(timeout=30)
    assert out.startswith(f"tuning/study.db: the study, from DVC remote 'shelf' (tuning/study.db.dvc)\n"
                          f"optuna-dashboard: sqlite:///tuning/study.db at http://127.0.0.1:{port}/"), out


# --- many workers: a real PostgreSQL server on 127.0.0.1 ------------------------------------------------

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def postgres_binaries() -> Path | None:
    """The folder of PostgreSQL's server programs: on PATH, or where Debian's packages put them."""
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(os.path.realpath(on_path)).parent
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    return found[-1].parent if found else None


@pytest.fixture(scope="module")
def postgres_url():
    """A throwaway PostgreSQL server: a temporary data folder, listening on 127.0.0.1 only, removed after."""
    binaries = postgres_binaries()
    if binaries is None:
        unavailable("no PostgreSQL server on this machine: pg_ctl is neither on PATH nor in /usr/lib/postgresql/*/bin "
                    "(Debian: apt-get install postgresql; .ci/run installs it)")
    as_user: list[str] = []
    folder = Path(tempfile.mkdtemp(prefix="fmnist-postgres-"))
    if os.geteuid() == 0:  # the server refuses to run as root: run it as the packages' `postgres` user
        try:
            account = pwd.getpwnam("postgres")
        except KeyError:
            unavailable("running as root and there is no `postgres` user to run the PostgreSQL server as")
        os.chown(folder, account.pw_uid, account.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = folder / "data", free_port()
    subprocess.run([*as_user, str(binaries / "initdb"), "-D", str(data), "-U", "tuner", "-A", "trust", "--no-sync"],
                   check=True, capture_output=True)
    server = subprocess.Popen([*as_user, str(binaries / "postgres"), "-D", str(data), "-h", "127.0.0.1",
                               "-p", str(port), "-k", str(folder), "-F"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
    url = f"postgresql+psycopg://tuner@127.0.0.1:{port}/postgres"
    try:
        import psycopg

        def ready():
            try:
                psycopg.connect(f"host=127.0.0.1 port={port} user=tuner dbname=postgres", connect_timeout=1).close()
                return True
            except psycopg.OperationalError:
                assert server.poll() is None, server.stderr.read().decode()
                return False

        wait_for(ready, timeout=30)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.longer(2.5, why="ten trials on two workers, one killed, saved as experiments")
def test_two_workers_on_postgresql_share_one_study_and_survive_a_killed_worker(pipeline, postgres_url, tmp_path):
    import optuna

    total = 10  # enough that the survivor starts trials after the killed one's heartbeat goes stale
    clones = [with_tiny_space(pipeline, tmp_path / f"machine{i}", trials=total) for i in (0, 1)]
    workers = [subprocess.Popen([sys.executable, "-m", "fmnist.tools.tune", "--storage", postgres_url,
                                 "--heartbeat", "1", "--worker", str(i)], cwd=clone.repo, env=clone.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for i, clone in enumerate(clones)]
    doomed, survivor = workers
    study = wait_for(lambda: _study(optuna, postgres_url), timeout=120)

    def doomed_mid_trial():
        trials = study.get_trials(deepcopy=False)
        mine = [t for t in trials if t.user_attrs.get("worker", "").endswith(f":{doomed.pid}")]
        return any(t.state.is_finished() for t in mine) and any(t.state.name == "RUNNING" for t in mine)

    wait_for(doomed_mid_trial, timeout=240)
    doomed.kill()  # SIGKILL: no chance to say anything to the study
    doomed.wait()
    out, err = survivor.communicate(timeout=600)
    assert survivor.returncode == 0, err

    trials = study.get_trials(deepcopy=False)
    states = [t.state.name for t in trials]
    assert sorted(t.number for t in trials) == list(range(len(trials)))  # every trial recorded once
    assert states.count("FAIL") == 1  # the killed worker's trial, marked failed by the survivor's heartbeat check
    killed = next(t for t in trials if t.state.name == "FAIL")
    assert killed.user_attrs["worker"].endswith(f":{doomed.pid}")
    assert states.count("COMPLETE") + states.count("PRUNED") >= total  # the study went on to the end
    table = trials_table(clones[1].repo)
    assert [int(row["number"]) for row in table] == [t.number for t in trials]
    pids = {row["worker"].rsplit(":", 1)[1] for row in table}
    assert pids == {str(doomed.pid), str(survivor.pid)}  # both workers' trials in the results table
    # Each finished trial is a DVC experiment on exactly one of the two machines.
    saved = [set(experiments(clone.repo, clone.env)) for clone in clones]
    assert not saved[0] & saved[1]
    assert saved[0] | saved[1] == {f"fashion-mnist-trial-{t.number:03d}" for t in trials if t.state.is_finished()
                                   and t.state.name != "FAIL"}


def _study(optuna, url: str):
    import sqlalchemy.exc

    try:
        return optuna.load_study(study_name="fashion-mnist", storage=url)
    except KeyError:  # not created yet
        return None
    except sqlalchemy.exc.IntegrityError:  # the workers are creating the tables this very moment
        return None


@pytest.fixture
def default_ctrl_c():
    """Python's own Ctrl-C handler for the test, whatever an earlier test in this worker left (a make test run here
    once had SIGINT ignored by then: the allowed block restores what was there before, so nothing was raised)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_a_ctrl_c_during_an_experiment_save_waits_for_it_then_interrupts(default_ctrl_c):
    """interrupts.interrupts_deferred (around each trial's `dvc exp save`): the block finishes, then
    KeyboardInterrupt."""
    from fmnist.plumbing.interrupts import interrupts_deferred

    handler = signal.getsignal(signal.SIGINT)
    finished = []
    with pytest.raises(KeyboardInterrupt):
        with interrupts_deferred():
            ctrl_c()
            time.sleep(0.1)  # the signal is delivered meanwhile, and held
            finished.append(True)
    assert finished == [True]
    assert signal.getsignal(signal.SIGINT) is handler
    with interrupts_deferred():  # no Ctrl-C: nothing raised
        finished.append(True)
    assert finished == [True, True]


def test_ctrl_c_interrupts_at_once_only_where_allowed_inside_a_deferred_block(default_ctrl_c):
    """The study: held everywhere (Optuna's bookkeeping, the save, an atomic write nested inside) but training."""
    from fmnist.plumbing.interrupts import interrupts_allowed, interrupts_deferred

    reached = []
    with pytest.raises(KeyboardInterrupt):
        with interrupts_deferred():
            with interrupts_allowed():
                reached.append("training")
                ctrl_c()
                time.sleep(0.1)
                reached.append("after the signal, while training")  # never: it interrupts at once
    assert reached == ["training"]
    # Held outside the allowed part, also across a nested deferral; raised at the next allowed part's start.
    with pytest.raises(KeyboardInterrupt):
        with interrupts_deferred():
            ctrl_c()
            time.sleep(0.1)
            with interrupts_deferred():  # an atomic write's: the outer block holds, the inner raises nothing
                reached.append("nested")
            with interrupts_allowed():
                reached.append("next training")  # never
    assert reached == ["training", "nested"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
