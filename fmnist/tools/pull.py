"""Fetch the pipeline's outputs from the project's DVC remote instead of training them: `dvc pull`, with one line
that says what to do when the remote is not set, cannot be reached, or does not have the files.

    python -m fmnist.tools.pull models/best data/raw   # the chosen model and the test images: enough for predict
    python -m fmnist.tools.pull                        # every output dvc.lock names (then `dvc status`: up to date)

The remote is the repository's default DVC remote; a read-only one over plain HTTP is added with
`dvc remote add --default public URL` (docs/model.md, "A model without training"). DVC itself, asked for files
an HTTP remote cannot serve, says only that they are missing from the cache; this asks the server first.
"""
from __future__ import annotations

import argparse
import http.client
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from fmnist.plumbing.errors import StageError, redacted, without_credentials
from fmnist.plumbing.runner import run

ADD_REMOTE = "`dvc remote add --default public URL` (docs/model.md: A model without training)"


def dvc(*args: str) -> subprocess.CompletedProcess:
    """`dvc ARGS` with this interpreter's DVC, its output captured."""
    return subprocess.run([sys.executable, "-m", "dvc", *args], capture_output=True, text=True)


def default_remote() -> tuple[str, str]:
    """(name, url) of the repository's default DVC remote."""
    default = dvc("remote", "default")  # exits 1 when there is none
    name = default.stdout.strip() if default.returncode == 0 else ""
    if not name:
        raise StageError(f"no default DVC remote to pull from: add the project's read-only one with {ADD_REMOTE}, "
                         "or train everything here with `make repro`")
    url = dvc("config", f"remote.{name}.url")
    if url.returncode != 0 or not url.stdout.strip():
        raise StageError(f"the default DVC remote '{name}' has no URL (`dvc remote list`); add it with {ADD_REMOTE}")
    return name, url.stdout.strip()


def check_reachable(name: str, url: str, timeout: float = 15) -> None:
    """An HTTP(S) remote must answer (any status: a static host may well say 404 for the folder itself); a
    local one must be a folder. Other kinds (s3://, ssh://...) are left to DVC."""
    if url.startswith(("http://", "https://")):
        try:  # without the credentials: an answer is all this asks for, and they are not sent where DVC would not
            urllib.request.urlopen(urllib.request.Request(without_credentials(url), method="HEAD"),
                                   timeout=timeout).close()
        except urllib.error.HTTPError:
            pass  # the server answered
        except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as error:
            reason = getattr(error, "reason", error)
            raise StageError(f"DVC remote '{name}' at {redacted(url)} cannot be reached ({reason}); check the URL "
                             "(`dvc remote list`) and the network, or train here with `make repro`") from None
    elif "://" not in url and not (Path(".dvc") / url).is_dir():  # DVC reads a relative folder from .dvc/
        raise StageError(f"DVC remote '{name}' is the folder {redacted(url)}, which does not exist; fix it with "
                         f"`dvc remote modify {name} url URL`, or add the project's with {ADD_REMOTE}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m fmnist.tools.pull", description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="*", metavar="PATH", help="outputs to fetch (default: all of them)")
    targets = parser.parse_args(argv).targets
    name, url = default_remote()
    check_reachable(name, url)
    pulled = dvc("pull", *targets)
    if pulled.returncode != 0:
        missing = "do not exist neither locally nor on remote" in pulled.stderr or "Checkout failed" in pulled.stderr
        what = " ".join(targets) or "the pipeline's outputs"
        if missing:
            raise StageError(f"DVC remote '{name}' at {redacted(url)} does not have {what} of this commit (were they "
                             "pushed?); "
                             "train them here with `make repro` (`dvc pull -v` shows DVC's account)")
        first = next((line for line in pulled.stderr.splitlines() if line.startswith("ERROR")), "dvc pull failed")
        said = first.removeprefix("ERROR: ").replace(url, redacted(url))
        raise StageError(f"dvc pull from '{name}' at {redacted(url)}: {said} (`dvc pull -v` shows more)")
    print(pulled.stdout.strip().splitlines()[-1] if pulled.stdout.strip() else "nothing to fetch",
          f"(from '{name}' at {redacted(url)})")


if __name__ == "__main__":
    run(main)
