"""A sweep split over machines (fmnist.tools.sweep, `make sweep` / `make sweep-collect`): the grid's arithmetic, and
machines simulated on this one — clones of one bare git repo sharing one local DVC remote, two running their
shares of a two-point grid (one of them dying midway, then replaced), and a third clone collecting. Two points,
one a share, are the fewest that show a point missing and then collected; the grid's dealing of more points
over more shares is the arithmetic tests' part."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from fmnist.core.comparison import Tolerances
from fmnist.plumbing import params
from fmnist.plumbing.errors import StageError
from fmnist.tools import sweep
from tests.conftest import REPO_ROOT, copy_pipeline
from tests.helpers import commit_all, copy_project, experiments_shown, init_git_dvc_repo, run
from tests.test_train_pipeline import ran_stages

GRID = "variants.tiny_stopping.hidden.0.dropout=0.1,0.5"
NAME = "drop"


# --- the grid -------------------------------------------------------------------------------------------

def test_points_are_the_product_in_grid_order_dealt_round_robin_with_stable_names():
    grid = sweep.parse_grid("variants.a.epochs=1,2 +variants.a.optimizer.learning_rate=0.1,0.01,0.001")
    points = sweep.expand(grid, "s", shares=4)
    assert [p.settings for p in points[:4]] == [
        (("variants.a.epochs", "1"), ("+variants.a.optimizer.learning_rate", v)) for v in ("0.1", "0.01", "0.001")
    ] + [(("variants.a.epochs", "2"), ("+variants.a.optimizer.learning_rate", "0.1"))]
    assert [p.share for p in points] == [1, 2, 3, 4, 1, 2]
    assert [p.name for p in points] == ["s-1", "s-2", "s-3", "s-4", "s-5", "s-6"]
    # A point's name does not depend on how many shares there are: a rerun with other shares replaces it.
    assert [p.name for p in sweep.expand(grid, "s", shares=1)] == [p.name for p in points]
    assert points[1].set_args() == ["-S", "variants.a.epochs=1", "-S", "+variants.a.optimizer.learning_rate=0.01"]
    # The default name is the grid's and the commit's: another grid or another commit, another name.
    head, other = "482af31" + "0" * 33, "bff379c" + "0" * 33
    assert sweep.default_name(grid, head) == sweep.default_name(sweep.parse_grid(" ".join(
        ["variants.a.epochs=1,2", "+variants.a.optimizer.learning_rate=0.1,0.01,0.001"])), head)
    assert sweep.default_name(grid, head) != sweep.default_name(sweep.parse_grid("variants.a.epochs=1,3"), head)
    assert sweep.default_name(grid, head).endswith("-482af31") and sweep.default_name(grid, other).endswith("-bff379c")


def test_a_share_run_again_drops_only_its_own_experiments(tmp_path, monkeypatch):
    """Real git refs: the sweep's points on this commit, the same names on another commit (a name used again),
    and an experiment of another name. Running the share again removes the first kind only."""
    repo = tmp_path / "repo"
    repo.mkdir()
    for args in (["init", "-q"], ["commit", "-q", "--allow-empty", "-m", "old"],
                 ["commit", "-q", "--allow-empty", "-m", "new"]):
        run(["git", *args], repo, {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e",
                                   "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@e"})
    head = run(["git", "rev-parse", "HEAD"], repo).stdout.strip()
    old = run(["git", "rev-parse", "HEAD~1"], repo).stdout.strip()

    def ref(baseline, name):
        return f"refs/exps/{baseline[:2]}/{baseline[2:]}/{name}"

    made = [ref(head, "s-1"), ref(head, "s-2"), ref(old, "s-1"), ref(head, "mine")]
    for name in made:
        run(["git", "update-ref", name, head], repo)
    monkeypatch.chdir(repo)
    dropped = sweep.drop_own_experiments({"s-1", "s-2"}, head)
    assert sorted(dropped) == sorted(made[:2])
    left = run(["git", "for-each-ref", "--format=%(refname)", "refs/exps"], repo).stdout.split()
    assert sorted(left) == sorted(made[2:])


@pytest.mark.parametrize("text, problem", [
    ("", "the grid is empty"),
    ("variants.a.epochs", "expected KEY=V1,V2"),
    ("variants.a.epochs=1,,2", "an empty value"),
    ("variants.a.epochs=1,1", "listed twice"),
    ("x=1 x=2", "appears twice"),
])
def test_a_malformed_grid_is_refused_with_what_is_wrong(text, problem):
    with pytest.raises(StageError, match=problem):
        sweep.parse_grid(text)


@pytest.mark.parametrize("text", ["0/2", "3/2", "2", "a/b", "1/0"])
def test_a_share_must_be_k_of_n(text):
    with pytest.raises(StageError, match="expected K/N"):
        sweep.parse_share(text)


@pytest.mark.parametrize("grid, problem", [
    ("variants.dropout30.hidden.0.dropout=0.2,1.5", r"grid point 2 \(variants.dropout30.hidden.0.dropout=1.5\).*"
                                                    r"'variants.dropout30.hidden.0.dropout' = 1.5 is not allowed"),
    ("variants.dropout30.hidden.3.dropout=0.2", "is not an item of a list of 1"),
    ("variants.dropout30.optimizer.learning_rate=0.1", r"not in params.yaml \(prefix '\+' to add"),
    ("variants.nosuch.epochs=3", "variants.nosuch is not in params.yaml"),
])
def test_every_point_is_checked_against_the_params_schema_before_anything_runs(grid, problem):
    document = params.read_params_file(REPO_ROOT / "params.yaml")
    points = sweep.expand(sweep.parse_grid(grid), "s", 2)
    with pytest.raises(StageError, match=problem):
        sweep.check_points(points, document)


def test_a_new_key_with_plus_passes_the_schema():
    document = params.read_params_file(REPO_ROOT / "params.yaml")
    sweep.check_points(sweep.expand(sweep.parse_grid("+variants.dropout30.optimizer.learning_rate=0.01"), "s", 1),
                       document)


def test_the_variant_compared_is_the_one_the_grid_sets_or_the_one_named():
    variants = {"a": {}, "b": {}}
    assert sweep.swept_variant(sweep.parse_grid("variants.a.epochs=1,2 train.seed=1,2"), None, variants) == "a"
    assert sweep.swept_variant(sweep.parse_grid("train.seed=1,2"), "b", variants) == "b"
    with pytest.raises(StageError, match=r"the grid sets no variant: .*--variant NAME"):
        sweep.swept_variant(sweep.parse_grid("train.seed=1,2"), None, variants)
    with pytest.raises(StageError, match="the grid sets variants a, b"):
        sweep.swept_variant(sweep.parse_grid("variants.a.epochs=1,2 variants.b.epochs=1,2"), None, variants)
    with pytest.raises(StageError, match="variant 'c' is not in params.yaml"):
        sweep.swept_variant(sweep.parse_grid("train.seed=1,2"), "c", variants)


def test_a_share_without_a_git_remote_or_a_dvc_remote_stops_before_queueing_anything(tmp_path):
    repo = copy_project(tmp_path / "repo")
    init_git_dvc_repo(repo)
    command = [sys.executable, "-m", "fmnist.tools.sweep", "run", "--grid", "variants.dropout30.epochs=3,4", "--share",
               "1/2"]
    no_git_remote = run(command, repo, check=False)
    assert no_git_remote.returncode == 1
    assert "error: finding git remote 'origin' (git remote -v lists them) failed" in no_git_remote.stderr
    run(["git", "remote", "add", "origin", str(tmp_path / "origin.git")], repo)
    no_dvc_remote = run(command, repo, check=False)
    assert no_dvc_remote.returncode == 1 and "error: no default DVC remote: `dvc remote add -d NAME URL`" in (
        no_dvc_remote.stderr)
    assert "Queued" not in run(["dvc", "queue", "status"], repo).stdout


def metrics(mean, std, n=5):
    return {"val_accuracy_mean": mean, "val_accuracy_std": std, "seeds": n, "val_accuracy": mean,
            "test_accuracy_mean": mean - 0.01}


def test_the_best_point_beats_only_points_further_than_k_standard_errors_below_it():
    rows = [{"point": 1, "metrics": metrics(0.880, 0.002)}, {"point": 2, "metrics": metrics(0.890, 0.002)},
            {"point": 3, "metrics": metrics(0.889, 0.002)}]
    best, said = sweep.verdicts(rows, Tolerances(3.0, 0.002))
    assert best["point"] == 2 and said[2] == "best"
    # SE of the difference: sqrt(2 * 0.002² / 5) = 0.00126; 3 SE = 0.0038, more than Holm's t for either of the two
    # comparisons (t(1 - 0.05/4, 8) = 2.75 for the first, t(0.975, 8) = 2.31 for the second).
    assert said[1].startswith("beaten (−0.0100 > 0.0038")
    assert said[3].startswith("not told apart (−0.0010 ≤ 0.0038")
    best, said = sweep.verdicts([{"point": 1, "metrics": metrics(0.88, None, 1)},
                                 {"point": 2, "metrics": metrics(0.87, None, 1)}], Tolerances(3.0, 0.002))
    assert said[2] == "one seed: no spread to judge by"


# --- two machines and a collector, on one machine ---------------------------------------------------------

def sweep_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "fmnist.tools.sweep", *args, "--grid", GRID, "--name", NAME]


def remote_refs(origin) -> list[str]:
    listed = run(["git", "ls-remote", str(origin), "refs/exps/*"], origin).stdout.split()
    return sorted(ref.rsplit("/", 1)[1] for ref in listed[1::2])


@pytest.fixture(scope="module")
def machines(tiny_pipelines, tmp_path_factory):
    """A bare git repo (the team's origin) and a local-folder DVC remote with the tiny pipeline's results pushed,
    and a function that clones a fresh machine from them (`make venv`, `dvc pull` as the workflow does)."""
    root = tmp_path_factory.mktemp("sweep")
    work = copy_pipeline(tiny_pipelines("tensorflow"), root / "work")
    env = work.env
    run(["dvc", "remote", "add", "-d", "shared", str(root / "dvc-remote")], work.repo, env)
    commit_all(work.repo, "shared DVC remote")
    run(["dvc", "push"], work.repo, env)
    origin = root / "origin.git"
    run(["git", "clone", "-q", "--bare", str(work.repo), str(origin)], root, env)

    def machine(name: str):
        path = root / name
        if path.exists():
            subprocess.run(["rm", "-rf", str(path)], check=True)
        run(["git", "clone", "-q", str(origin), str(path)], root, env)
        run(["dvc", "pull"], path, env)
        return path

    started = []
    yield origin, env, machine, started
    for path in started:
        run(["dvc", "queue", "stop", "--kill"], path, env, check=False)


def wait_until_running(machine, env, process, timeout=300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "the share ended before its point started"
        if "Running" in run(["dvc", "queue", "status"], machine, env, check=False).stdout:
            return
        time.sleep(2)  # each look is a DVC process (about 0.8 CPU-s) on the cores the share needs
    raise AssertionError("the share's point never started")


def without_nulls(metrics: dict) -> dict:
    return {key: value for key, value in metrics.items() if value is not None}  # dvc exp show leaves them out


def metrics_shown(machine, env) -> dict[str, dict]:
    """{experiment name: tiny_stopping's metrics} as `dvc exp show --json -A` reports them."""
    return {shown["name"]: shown["metrics"].get("reports/metrics/tiny_stopping.json", {})
            for shown in experiments_shown(machine, env, "-A") if shown["name"]}


@pytest.mark.longer(6, why="three DVC experiments pushed and pulled between four clones, one machine killed")
def test_two_machines_run_their_shares_and_a_third_collects_every_point(machines):
    origin, env, machine, started = machines
    one, two = machine("m1"), machine("m2")
    started += [one, two]
    run(sweep_cmd("run", "--share", "1/2"), one, env)
    assert remote_refs(origin) == ["drop-1"]

    # Machine 2 dies while its point trains: nothing of it reaches the remotes, nothing else is touched.
    dying = subprocess.Popen(sweep_cmd("run", "--share", "2/2"), cwd=two, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    wait_until_running(two, env, dying)
    os.killpg(dying.pid, signal.SIGKILL)
    dying.wait()
    run(["dvc", "queue", "stop", "--kill"], two, env, check=False)
    assert remote_refs(origin) == ["drop-1"]

    collector = machine("collector")
    partial = run(sweep_cmd("collect", "--shares", "2"), collector, env, check=False)
    assert partial.returncode == 1
    assert "error: 1 point(s) missing: 2" in partial.stderr
    assert "Missing: 1 of 2 point(s): 2 (drop-2, share 2/2)" in partial.stdout
    table = json.loads((collector / "reports/sweeps/drop.json").read_text())
    assert [row["point"] for row in table["rows"]] == [1] and table["missing"] == [2]

    # A pulled point brought its outputs: applied, nothing is left to recompute.
    run(["dvc", "exp", "apply", "drop-1"], collector, env)
    assert yaml.safe_load((collector / "params.yaml").read_text())["variants"]["tiny_stopping"]["hidden"][0][
        "dropout"] == 0.1
    again = run(["dvc", "repro"], collector, env)
    assert ran_stages(again.stdout) == set(), again.stdout
    run(["git", "reset", "-q", "--hard"], collector, env)

    # Share 2 on a fresh machine (the dead one's stand-in), then run again there: each run replaces its own
    # point, nothing is doubled.
    two = machine("m2")
    started.append(two)
    run(sweep_cmd("run", "--share", "2/2"), two, env)
    assert remote_refs(origin) == ["drop-1", "drop-2"]
    old_two = run(["git", "ls-remote", str(origin), "refs/exps/*/drop-2"], origin).stdout.split()[0]
    run(sweep_cmd("run", "--share", "2/2"), two, env)
    assert remote_refs(origin) == ["drop-1", "drop-2"]
    assert run(["git", "ls-remote", str(origin), "refs/exps/*/drop-2"], origin).stdout.split()[0] != old_two

    complete = run(sweep_cmd("collect", "--shares", "2"), collector, env)
    table = json.loads((collector / "reports/sweeps/drop.json").read_text())
    assert [row["point"] for row in table["rows"]] == [1, 2] and table["missing"] == []
    # Every collected point: its own dropout, its metrics as `dvc exp show` has them.
    shown = metrics_shown(collector, env)
    for row in table["rows"]:
        assert without_nulls(row["metrics"]) == shown[row["experiment"]]
        experiment_params = yaml.safe_load(run(["git", "show", f"{row['commit']}:params.yaml"], collector, env).stdout)
        assert experiment_params["variants"]["tiny_stopping"]["hidden"][0]["dropout"] == float(
            row["settings"]["variants.tiny_stopping.hidden.0.dropout"])
        assert row["metrics"]["seeds"] == 5 and row["val_accuracy_min"] <= row["metrics"]["val_accuracy_mean"]
    # The points really differ (each trained its own dropout), and the best is the highest mean.
    means = {row["point"]: row["metrics"]["val_accuracy_mean"] for row in table["rows"]}
    assert len(set(means.values())) == 2 and table["best"] == max(means, key=means.get)
    markdown = (collector / "reports/sweeps/drop.md").read_text()
    assert markdown.startswith(f"# Sweep drop\n\n`{GRID}`\n\n") and markdown.split("\n\n", 2)[2] in complete.stdout
    assert f"Best: point {table['best']} (variants.tiny_stopping.hidden.0.dropout=" in markdown
    assert markdown.count("| drop-") == 2 and "missing" not in markdown.lower()
