"""Shared test fixtures: tiny generated Fashion-MNIST-shaped IDX files and a loopback HTTP server."""
from __future__ import annotations

import hashlib
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from fmnist import idx
from fmnist.dataset import FILES

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
