"""The machine a benchmark ran on, to print beside its figures (timings mean nothing without it), and the clone of
this repository a benchmark runs the pipeline in."""
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def cpu_name() -> str:
    """`lscpu`'s model name, e.g. "AMD EPYC"; "?" where lscpu is missing or says none."""
    try:
        listing = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except FileNotFoundError:
        return "?"
    return next((line.split(":", 1)[1].strip() for line in listing.splitlines() if line.startswith("Model name")), "?")


def clone(rev: str, folder: Path) -> Path:
    """This repository at `rev`, cloned into `folder` (new), with this checkout's .venv: no DVC cache, no outputs."""
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(folder)], check=True)
    subprocess.run(["git", "-C", str(folder), "checkout", "--quiet", rev], check=True)
    (folder / ".venv").symlink_to(ROOT / ".venv")
    return folder


def prepared_clone(rev: str, folder: Path, env: dict[str, str], *, replicates: int | None = None) -> Path:
    """clone(), its seed counts set (set_replicates) when `replicates` is given, and the data prepared there by `dvc
    repro prepare` from $FASHION_MNIST_MIRROR; exits naming the log when that fails."""
    clone(rev, folder)
    if replicates is not None:
        set_replicates(folder, replicates)
    log = folder.parent / f"{folder.name}-prepare.log"
    with open(log, "w") as out:
        if subprocess.run(["dvc", "repro", "prepare"], cwd=folder, env=env, stdout=out,
                          stderr=subprocess.STDOUT).returncode != 0:
            sys.exit(f"dvc repro prepare failed in {folder}; its output: {log}")
    return folder


def head_commit(folder: Path) -> str:
    """The short commit a clone has checked out, to print beside its figures."""
    return subprocess.run(["git", "-C", str(folder), "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True).stdout.strip()


def timed(command: list[str], folder: Path, env: dict[str, str], log: Path) -> float:
    """Seconds `command` took in `folder`, its output to `log`; an exit naming the log when it fails."""
    started = time.perf_counter()
    with open(log, "w") as out:
        finished = subprocess.run(command, cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - started
    if finished.returncode != 0:
        sys.exit(f"{' '.join(command)} failed in {folder}; its output: {log}")
    return seconds


def set_replicates(clone_folder: Path, count: int) -> None:
    """Every seed count in the clone's params.yaml set to `count`: train.replicates (two spaces in) and each variant's
    own (four: the power-chosen seeds, docs/statistics.md)."""
    params_file = clone_folder / "params.yaml"
    text, changed = re.subn(r"(?m)^((?:  |    )replicates:\s*)\d+", rf"\g<1>{count}", params_file.read_text())
    if changed == 0:
        sys.exit(f"{params_file}: no train.replicates to set")
    params_file.write_text(text)


def pipeline_env() -> dict[str, str]:
    """The environment a clone's stages and DVC run in: this checkout's .venv first on PATH, TensorFlow's start-up
    chatter quiet unless the caller set otherwise."""
    env = dict(os.environ, PATH=f"{ROOT / '.venv/bin'}:{os.environ['PATH']}")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def require_mirror() -> None:
    """Exit with what to set unless $FASHION_MNIST_MIRROR names the data (the clones have no internet to rely on)."""
    if not os.environ.get("FASHION_MNIST_MIRROR"):
        sys.exit("set FASHION_MNIST_MIRROR to the folder of the four Fashion-MNIST files "
                 "(e.g. ../shared/fashion-mnist)")
