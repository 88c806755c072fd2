"""Shared test fixtures: tiny generated Fashion-MNIST-shaped IDX files, a loopback HTTP server, and one tiny
real pipeline per backend."""
from __future__ import annotations

import copy
import hashlib
import os
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest

from fmnist.core import idx
from fmnist.core.dataset import FILES

REPO_ROOT = Path(__file__).resolve().parent.parent


def make_fake_images(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Learnable 28x28 images: each class lights a different band of rows, plus noise."""
    labels = (np.arange(n) % 10).astype(np.uint8)
    rng.shuffle(labels)
    images = rng.integers(0, 60, size=(n, 28, 28), dtype=np.uint8)
    for i, label in enumerate(labels):
        images[i, 2 * label + 4 : 2 * label + 8, 4:24] += 180
    return images, labels


def write_fake_dataset(folder: Path, n_train: int = 500, n_test: int = 100, seed: int = 0) -> dict[str, str]:
    """Write the four .gz files into folder; return {file name: sha256}."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for subset, n in (("train", n_train), ("test", n_test)):
        images, labels = make_fake_images(n, rng)
        images_name, labels_name = FILES[subset]
        idx.write(folder / images_name, images)
        idx.write(folder / labels_name, labels)
    return {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for pair in FILES.values() for name in pair}


@pytest.fixture
def fake_mirror(tmp_path) -> tuple[Path, dict[str, str]]:
    folder = tmp_path / "mirror"
    return folder, write_fake_dataset(folder)


class FileServer:
    """Serves a folder on 127.0.0.1 with misbehaviours chosen by the first path segment:

    /ok/F  the file;  /corrupt/F  wrong bytes;  /truncated/F  half the body, full Content-Length;
    /flaky/F  HTTP 500 on the first request for F, then the file;  /down/F  always HTTP 500;
    anything else  404.
    """

    def __init__(self, folder: Path):
        self.folder = folder
        self.requests: list[str] = []
        self._seen: set[str] = set()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                server.requests.append(self.path)
                _, mode, name = (self.path.split("/", 2) + ["", ""])[:3]
                path = server.folder / name
                if mode == "down" or (mode == "flaky" and name not in server._seen):
                    server._seen.add(name)
                    self.send_error(500, "Internal Server Error")
                    return
                if mode not in ("ok", "corrupt", "truncated", "flaky") or not path.is_file():
                    self.send_error(404, "Not Found")
                    return
                body = path.read_bytes()
                if mode == "corrupt":
                    body = bytes(b ^ 0xFF for b in body[:16]) + body[16:]
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2] if mode == "truncated" else body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, mode: str) -> str:
        return f"{self.base}/{mode}/"


@pytest.fixture
def file_server(fake_mirror):
    server = FileServer(fake_mirror[0])
    server.thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


@pytest.fixture(scope="session")
def real_mirror() -> Path:
    """The folder of real Fashion-MNIST files, or skip when $FASHION_MNIST_MIRROR names none."""
    mirror = os.environ.get("FASHION_MNIST_MIRROR", "")
    folder = Path(mirror) if mirror and not mirror.startswith(("http://", "https://")) else None
    if folder is None or not all((folder / name).is_file() for pair in FILES.values() for name in pair):
        pytest.skip("set FASHION_MNIST_MIRROR to a folder with the real Fashion-MNIST files (e.g. ../shared/fashion-mnist)")
    return folder.resolve()


# --- one tiny real pipeline per backend, per test run ---------------------------------------------------
# Every end-to-end assertion reads the same `dvc repro` (download -> report) of tiny variants on generated
# data; a test that changes the repo works on a copy (`copy_pipeline`), so the order of tests never matters.

TINY_VARIANTS = {
    "tiny_softmax": {"hidden": [], "optimizer": {"name": "rmsprop"}, "epochs": 1},
    "tiny_relu": {"hidden": [{"units": 16, "activation": "relu"}], "optimizer": {"name": "sgd", "momentum": 0.9},
                  "epochs": 1},
    "tiny_stopping": {
        "hidden": [{"units": 16, "activation": "relu", "dropout": 0.3}], "optimizer": {"name": "adam"},
        "epochs": 2, "validation": True,
        "callbacks": {"checkpoint": {"monitor": "val_loss"}, "early_stopping": {"patience": 1}},
    },
}

TINY_AUGMENTATION = {"rotation": 0.02, "zoom": 0.05, "contrast": 0.1}  # mild: tiny_softmax still learns in one epoch


class TinyPipeline(NamedTuple):
    backend: str
    repo: Path  # a git repo on main: the project with the tiny variants, its results committed
    env: dict  # the stages' environment, with FASHION_MNIST_MIRROR at the generated files
    first: subprocess.CompletedProcess  # the first `dvc repro`, as a user saw it
    mirror: Path


@pytest.fixture(scope="session")
def tiny_pipelines(tmp_path_factory):
    """tiny_pipelines(backend) -> TinyPipeline, built on first use and then shared by every test."""
    from tests.helpers import commit_all, copy_project, edit_params, init_git_dvc_repo, run, stage_env

    built: dict[str, TinyPipeline] = {}

    def build(backend: str) -> TinyPipeline:
        if backend not in built:
            root = tmp_path_factory.mktemp(f"tiny-{backend}")
            pins = write_fake_dataset(root / "mirror", n_train=500, n_test=100)
            repo = copy_project(root / "repo")

            def tiny(document):
                document["download"]["sha256"] = pins
                document["train"]["backend"] = backend
                document["variants"] = copy.deepcopy(TINY_VARIANTS)
                if backend == "tensorflow":  # JAX compiles the random layers for ~20 s a process; one backend shows it
                    document["variants"]["tiny_softmax"]["augmentation"] = TINY_AUGMENTATION
                document["chapter"] = {"tiny_stopping": {"metric": "val_accuracy", "value": 0.5}}
                document["plot"]["optimizer_comparison"] = ["tiny_softmax", "tiny_relu"]
                document["assess"]["images"] = 30  # 30 test images a family of photo-like pictures
                document["assess"]["alongside"] = list(TINY_VARIANTS)  # all but the chosen one: measured beside it

            edit_params(repo, tiny)
            init_git_dvc_repo(repo)
            env = stage_env(FASHION_MNIST_MIRROR=str(root / "mirror"))
            first = run(["dvc", "repro"], repo, env)
            commit_all(repo, "results")
            built[backend] = TinyPipeline(backend, repo, env, first, root / "mirror")
        return built[backend]

    return build


def copy_pipeline(pipeline: TinyPipeline, dest: Path) -> TinyPipeline:
    """A copy of the shared pipeline (git history, DVC cache and all) for a test that changes it."""
    shutil.copytree(pipeline.repo, dest, symlinks=True)
    return pipeline._replace(repo=dest)
