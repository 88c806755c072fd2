"""Fetch the four Fashion-MNIST files, verified against pinned sha256, from the first source that has them.

Sources, in order: the mirror named by $FASHION_MNIST_MIRROR (a folder or an http(s) base URL),
the Keras dataset cache, the canonical TensorFlow bucket, then Zalando's own mirror. A file lands
in the destination only after its sha256 matches; anything else is discarded and the next source
is tried. Connection errors and 5xx answers are retried with exponential backoff first.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Mapping

from tqdm import tqdm

from fmnist.plumbing.atomic import atomic_path
from fmnist.plumbing.errors import StageError

MIRROR_ENV = "FASHION_MNIST_MIRROR"
CANONICAL_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
ZALANDO_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
CHUNK = 1 << 20


class DownloadError(StageError):
    """No source delivered a file that matches its pinned checksum."""


class _Retryable(Exception):
    """A failure worth another try at the same source (connection error, 5xx)."""


@dataclass(frozen=True)
class Source:
    label: str  # how messages name it, e.g. "$FASHION_MNIST_MIRROR"
    location: str  # a local folder or an http(s) base URL

    @property
    def is_url(self) -> bool:
        return self.location.startswith(("http://", "https://"))

    def locate(self, file_name: str) -> str:
        if self.is_url:
            return self.location.rstrip("/") + "/" + file_name
        return str(Path(self.location) / file_name)

    def __str__(self) -> str:
        return f"{self.label} ({self.location})"


def keras_cache_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """Where keras.datasets.fashion_mnist.load_data() keeps the same four files."""
    return Path(environ.get("KERAS_HOME", Path.home() / ".keras")) / "datasets" / "fashion-mnist"


def default_sources(environ: Mapping[str, str] = os.environ) -> list[Source]:
    sources = []
    mirror = environ.get(MIRROR_ENV, "").strip()
    if mirror:
        sources.append(Source(f"${MIRROR_ENV}", mirror))
    cache = keras_cache_dir(environ)
    if cache.is_dir():
        sources.append(Source("Keras cache", str(cache)))
    sources.append(Source("canonical URL", CANONICAL_URL))
    sources.append(Source("Zalando mirror", ZALANDO_URL))
    return sources


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class Fetcher:
    sources: list[Source]
    retries: int = 3
    backoff_seconds: float = 1.0
    timeout_seconds: float = 30.0
    progress: bool = sys.stderr.isatty()
    log: Callable[[str], None] = lambda message: print(message, file=sys.stderr)

    def fetch_all(self, pins: Mapping[str, str], dest_dir: str | os.PathLike) -> dict[str, str]:
        """Make every pinned file present and verified in dest_dir; return {file: where it came from}."""
        return {name: self.fetch(name, sha256, Path(dest_dir)) for name, sha256 in pins.items()}

    def fetch(self, file_name: str, sha256: str, dest_dir: Path) -> str:
        dest = dest_dir / file_name
        if dest.is_file():
            if sha256_of(dest) == sha256:
                return "already present"
            self.log(f"{dest}: sha256 does not match the pinned value; fetching it again")
        failures = []
        for source in self.sources:
            try:
                with atomic_path(dest) as tmp:
                    self._fetch_into(source, file_name, tmp)
                    actual = sha256_of(tmp)
                    if actual != sha256:
                        raise DownloadError(f"sha256 {actual} does not match the pinned {sha256}")
                return str(source)
            except (DownloadError, OSError) as error:
                failures.append(f"  - {source}: {error}")
                self.log(f"{file_name}: {source} failed: {error}")
        raise DownloadError(
            f"could not fetch {file_name}; tried:\n" + "\n".join(failures) + "\n"
            f"Set {MIRROR_ENV} to a folder or http(s) base URL that holds the four Fashion-MNIST .gz "
            f"files (e.g. {MIRROR_ENV}=../shared/fashion-mnist) and run again."
        )

    def _fetch_into(self, source: Source, file_name: str, tmp: Path) -> None:
        location = source.locate(file_name)
        if not source.is_url:
            if not Path(source.location).is_dir():
                raise DownloadError(f"folder {source.location} does not exist")
            if not Path(location).is_file():
                raise DownloadError(f"{location} does not exist")
            with open(location, "rb") as src, open(tmp, "wb") as out:
                shutil.copyfileobj(src, out, CHUNK)
            return
        for attempt in range(self.retries + 1):
            try:
                self._download(location, tmp)
                return
            except _Retryable as error:
                if attempt == self.retries:
                    raise DownloadError(f"{error} (gave up after {attempt + 1} attempts)") from None
                delay = self.backoff_seconds * 2**attempt
                self.log(f"{location}: {error}; retrying in {delay:g}s")
                time.sleep(delay)

    def _download(self, url: str, tmp: Path) -> None:
        request = urllib.request.Request(url, headers={"User-Agent": "fashion-mnist-pipeline"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_seconds) as response, open(tmp, "wb") as out:
                expected = response.headers.get("Content-Length")
                expected = int(expected) if expected and expected.isdigit() else None
                received = self._stream(response, out, expected, url)
        except urllib.error.HTTPError as error:
            if error.code >= 500:
                raise _Retryable(f"HTTP {error.code} {error.reason}") from None
            raise DownloadError(f"HTTP {error.code} {error.reason}") from None
        except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError) as error:
            reason = getattr(error, "reason", error)
            raise _Retryable(f"connection failed: {reason}") from None
        if expected is not None and received != expected:
            raise DownloadError(f"truncated body: received {received} of {expected} bytes")

    def _stream(self, response: BinaryIO, out: BinaryIO, total: int | None, url: str) -> int:
        received = 0
        name = url.rsplit("/", 1)[-1]
        with tqdm(total=total, unit="B", unit_scale=True, desc=name, disable=not self.progress, leave=False) as bar:
            while chunk := response.read(CHUNK):
                out.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
        return received
