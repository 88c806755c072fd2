"""Other processes a stage or tool runs: a command (git, dvc) whose output it needs, and a helper process of its own
(`python -m <module>`) that works alongside it. Failures come back as StageErrors."""
from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys

from fmnist.plumbing.errors import StageError


def command(args: list[str], what: str) -> str:
    """Run a command (git, dvc) and return its standard output; if it fails, a StageError
    '<what> failed: <the last line it said>'."""
    result = subprocess.run(args, capture_output=True, text=True)
    if result.returncode != 0:
        said = (result.stderr.strip() or result.stdout.strip()).splitlines()
        raise StageError(f"{what} failed: {said[-1] if said else f'exit {result.returncode}'}")
    return result.stdout


def _stop_with_parent():
    """What a child runs before it starts: SIGTERM it when its parent dies, however the parent dies (SIGKILL too), so a
    helper that writes nothing does not train on alone (Linux's prctl(PR_SET_PDEATHSIG); elsewhere None, and the
    parent's Child.stop has to do). Looked up here, in the parent: after fork the child only calls it."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    return lambda: prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG


class Child:
    """A helper process of a stage, `python -m <module> <args>`, that works while the stage does and prints its
    result as JSON on its last line of standard output. Its errors come back as StageErrors."""

    def __init__(self, what: str, module: str, *args: str):
        self.what = what
        self.process = subprocess.Popen([sys.executable, "-m", module, *args], stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True, env=dict(os.environ),
                                        preexec_fn=_stop_with_parent())

    def result(self):
        out, err = self.process.communicate()
        if self.process.returncode != 0:
            problem = next((line for line in reversed(err.splitlines()) if line.startswith("error: ")), None)
            if problem is None:  # not one of ours (a crash): show everything it said
                sys.stderr.write(err)
                problem = f"exit status {self.process.returncode}"
            raise StageError(f"{self.what} failed: {problem.removeprefix('error: ')}")
        # On success its standard error holds nothing but the libraries' start-up chatter: not repeated here.
        return json.loads(out.strip().splitlines()[-1])

    def stop(self) -> None:
        """End it if it still runs (the stage failed or was interrupted)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
