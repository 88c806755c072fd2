"""Helpers for tests that run stages and DVC the way a user does: as processes, in a copy of the repo."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import yaml

from tests.conftest import REPO_ROOT

# What a fresh clone needs to run the pipeline (outputs, lock and reports are regenerated).
# reports/tuning/README.md: the report stage depends on that folder (its tuning section), which must exist.
PROJECT_FILES = ("dvc.yaml", "params.yaml", ".dvcignore", ".gitignore", ".dvc/config", "stages", "fmnist",
                 "reports/tuning/README.md")


def ctrl_c() -> None:
    """SIGINT to this process's main thread, as a Ctrl-C is handled: os.kill(getpid) lets the kernel hand it to any
    thread that takes it (TensorFlow's, a pool's, started by an earlier test in this worker), and Python then runs
    the handler only when the main thread next looks, which may be after the block under test has ended."""
    signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def stage_env(**extra: str) -> dict[str, str]:
    """The environment `make repro` gives stages: this venv's python first on PATH."""
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.pop("FASHION_MNIST_MIRROR", None)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.update(extra)
    return env


def copy_project(dest: Path, files=PROJECT_FILES) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for name in files:
        source = REPO_ROOT / name
        if source.is_dir():
            shutil.copytree(source, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


def edit_params(repo: Path, edit) -> None:
    """Apply edit(document) to repo/params.yaml."""
    path = repo / "params.yaml"
    document = yaml.safe_load(path.read_text())
    edit(document)
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def run(args, cwd: Path, env=None, check=True) -> subprocess.CompletedProcess:
    result = subprocess.run(args, cwd=cwd, env=env or stage_env(), capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, args))} exited {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


def run_stage(name: str, cwd: Path, args=(), **env) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", f"stages.{name}", *args], cwd, stage_env(**env), check=False)


GIT_USER = ["-c", "user.name=t", "-c", "user.email=t@example.com"]


def commit_all(repo: Path, message: str) -> None:
    run(["git", *GIT_USER, "add", "-A"], repo)
    run(["git", *GIT_USER, "commit", "-qm", message], repo)


def init_git_dvc_repo(repo: Path) -> None:
    """A git repo on branch main with everything committed (the project copy already holds .dvc/)."""
    run(["git", "init", "-q", "-b", "main"], repo)
    commit_all(repo, "init")


def experiments_shown(repo: Path, env: dict, *flags: str) -> list[dict]:
    """Each experiment `dvc exp show --json [flags]` lists, as {name, params, metrics, error}: params and
    metrics as {file: its values}. (DVC leaves out metrics whose value is null.)"""
    shown = json.loads(run(["dvc", "exp", "show", "--json", *flags], repo, env).stdout)
    found = []
    for commit in shown:
        for experiment in commit.get("experiments") or []:
            for rev in experiment["revs"]:
                data = rev.get("data") or {}
                found.append({
                    "name": rev.get("name") or experiment.get("name"),
                    "params": {path: entry.get("data", {}) for path, entry in data.get("params", {}).items()},
                    "metrics": {path: entry.get("data", {}) for path, entry in data.get("metrics", {}).items()},
                    "error": rev.get("error"),
                })
    return found


def process_ended(pid: int, within: float) -> bool:
    """Whether the process has ended (or is a zombie: ended, not yet reaped) within `within` seconds (Linux's /proc)."""
    deadline = time.monotonic() + within
    while True:  # looked at once at least, also with within=0
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return True
        except FileNotFoundError:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
