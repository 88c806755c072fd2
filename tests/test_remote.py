"""A model without training: the tiny pipeline's DVC cache pushed to a folder and served read-only by a real
`python -m http.server` on 127.0.0.1, as a static host (GitHub Pages, a public bucket) would serve it; a fresh
clone with only that remote fetches the committed model and predicts (python -m fmnist.tools.pull)."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import pytest

from tests.conftest import copy_pipeline
from tests.helpers import run, sha256


def listing(folder) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


@pytest.fixture(scope="module")
def served(tiny_pipelines, tmp_path_factory):
    """(the maintainers' repo, the HTTP remote's URL, the folder it serves, the server's request log): its cache
    pushed to a folder, as a maintainer publishes it, and that folder served over HTTP."""
    root = tmp_path_factory.mktemp("http-remote")
    maintainers = copy_pipeline(tiny_pipelines("tensorflow"), root / "repo")
    published = root / "published"
    run(["dvc", "remote", "add", "--local", "publish", str(published)], maintainers.repo, maintainers.env)
    run(["dvc", "push", "-r", "publish"], maintainers.repo, maintainers.env)
    server = subprocess.Popen([sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory",
                               str(published)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port = int(server.stdout.readline().split(" port ")[1].split()[0])  # "Serving HTTP on 127.0.0.1 port N (...)"
        yield maintainers, f"http://127.0.0.1:{port}", published, server
    finally:
        server.terminate()
        server.wait(timeout=30)


def clone(maintainers, dest):
    run(["git", "clone", "-q", str(maintainers.repo), str(dest)], dest.parent, maintainers.env)
    return dest


def pull(repo, env, *targets) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "fmnist.tools.pull", *targets], repo, env, check=False)


def test_a_fresh_clone_with_only_the_http_remote_fetches_the_committed_model_and_predicts(served, tmp_path):
    maintainers, url, published, _ = served
    env, before = maintainers.env, listing(published)
    started = time.monotonic()
    repo = clone(maintainers, tmp_path / "clone")
    assert not (repo / "models").exists()
    run(["dvc", "remote", "add", "--default", "public", url], repo, env)  # as docs/model.md tells a user
    fetched = pull(repo, env, "models/best", "data/raw")
    assert fetched.returncode == 0 and fetched.stderr == "", fetched.stderr
    assert fetched.stdout.rstrip().endswith(f"(from 'public' at {url})")
    best = repo / "models/best/model.keras"
    assert sha256(best) == sha256(maintainers.repo / "models/best/model.keras")  # exactly the committed model
    assert json.loads((repo / "models/best/selection.json").read_text())["model_sha256"] == sha256(best)
    assert not (repo / "models/tiny_relu").exists() and not (repo / "data/prepared").exists()  # nothing else came

    samples = tmp_path / "samples"
    run([sys.executable, "-m", "fmnist.tools.predict", "--export-samples", str(samples)], repo, env)
    predicted = json.loads(run([sys.executable, "-m", "fmnist.tools.predict", "--json", str(samples)], repo,
                               env).stdout)
    seconds = time.monotonic() - started
    print(f"clone to prediction over the HTTP remote: {seconds:.1f} s")
    assert len(predicted["predictions"]) == len(list(samples.glob("*.png"))) == 10
    assert not (repo / "models/tiny_relu").exists()  # nothing was trained

    # The rest of the pipeline's outputs come the same way, and then nothing is left to run, select included.
    assert pull(repo, env).returncode == 0
    assert "Data and pipelines are up to date." in run(["dvc", "status"], repo, env).stdout
    assert run(["dvc", "status", "select"], repo, env).stdout.strip() == "Data and pipelines are up to date."
    assert listing(published) == before  # read-only: the clone only ever read from it


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # closed again when the with block ends: nothing listens there


def test_no_remote_an_unreachable_one_and_one_without_the_files_each_get_one_line(served, tmp_path):
    maintainers, url, _, _ = served
    env = maintainers.env
    repo = clone(maintainers, tmp_path / "clone")
    port = closed_port()
    cases = [
        (None, "error: no default DVC remote to pull from: add the project's read-only one with "
               "`dvc remote add --default public URL`"),
        (f"http://127.0.0.1:{port}/dvc", f"error: DVC remote 'public' at http://127.0.0.1:{port}/dvc cannot be "
                                         "reached ("),
        (f"{url}/elsewhere", f"error: DVC remote 'public' at {url}/elsewhere does not have models/best of this "
                             "commit (were they pushed?)"),
        (str(tmp_path / "nosuch"), f"error: DVC remote 'public' is the folder {tmp_path / 'nosuch'}, which does not "
                                   "exist"),
    ]
    for remote, said in cases:
        if remote is not None:
            run(["dvc", "remote", "add", "--force", "--default", "public", remote], repo, env)
        result = pull(repo, env, "models/best")
        assert result.returncode == 1, (remote, result.stdout, result.stderr)
        assert result.stderr.startswith(said) and result.stderr.count("\n") == 1, (remote, result.stderr)
        assert "Traceback" not in result.stderr
    assert not (repo / "models/best").exists()


def test_a_remote_url_with_credentials_is_checked_without_them_and_never_printed_with_them(served, tmp_path):
    """A remote URL with a password and a token in it: the reachability check sends neither (urllib, given them,
    would take the password for part of the host), and no line pull prints shows them."""
    maintainers, url, _, server_log = served
    env = maintainers.env
    repo = clone(maintainers, tmp_path / "clone")
    secret_url = url.replace("http://", "http://reader:s3cret-pw@") + "/elsewhere?token=t0ken-value&v=1"
    run(["dvc", "remote", "add", "--default", "public", secret_url], repo, env)
    result = pull(repo, env, "models/best")
    said = result.stdout + result.stderr
    assert "s3cret-pw" not in said and "t0ken-value" not in said, said
    shown = url.replace("http://", "http://reader:***@") + "/elsewhere?token=***&v=1"
    assert f"error: DVC remote 'public' at {shown} does not have models/best of this commit" in result.stderr, said


def test_redacted_hides_passwords_and_secret_parameters_and_leaves_the_rest():
    from fmnist.plumbing.errors import redacted, without_credentials

    assert redacted("postgresql+psycopg://tuner:p%40ss@db.example.com:5432/tuning") == \
        "postgresql+psycopg://tuner:***@db.example.com:5432/tuning"
    assert redacted("https://host/p?X-Amz-Signature=abc&api_key=k&page=2") == \
        "https://host/p?X-Amz-Signature=***&api_key=***&page=2"
    assert redacted("https://user@host/path") == "https://user@host/path"  # no secret in it
    assert redacted("sqlite:///tuning/study.db") == "sqlite:///tuning/study.db"
    assert redacted("s3://bucket/prefix") == "s3://bucket/prefix"
    assert without_credentials("https://u:p@host:8443/x?y=1") == "https://host:8443/x?y=1"
