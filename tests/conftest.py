"""Shared test fixtures: tiny generated Fashion-MNIST-shaped IDX files, a loopback HTTP server, and one tiny
real pipeline per backend."""
from __future__ import annotations

import ast
import copy
import hashlib
import inspect
import json
import os
import re
import shutil
import subprocess
import tempfile
import textwrap
import threading
import time
from collections import defaultdict
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import NamedTuple, NoReturn

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


def unavailable(reason: str) -> NoReturn:
    """What a test needs (PostgreSQL, Chromium, the real data) is not on this machine: skip it here, but fail it in
    CI (CI=true, as GitHub Actions sets it; .ci/run installs them and points at the data), where a skip would let a
    scenario go untested with the run still green."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} [CI=true: in CI this is a failure, not a skip]", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def real_mirror() -> Path:
    """The folder of real Fashion-MNIST files, or skip (fail in CI) when $FASHION_MNIST_MIRROR names none."""
    mirror = os.environ.get("FASHION_MNIST_MIRROR", "")
    folder = Path(mirror) if mirror and not mirror.startswith(("http://", "https://")) else None
    if folder is None or not all((folder / name).is_file() for pair in FILES.values() for name in pair):
        unavailable("set FASHION_MNIST_MIRROR to a folder with the real Fashion-MNIST files "
                    "(e.g. ../shared/fashion-mnist)")
    return folder.resolve()


# --- each test's own time, checked against --max-test-seconds -------------------------------------------
# .ci/run sets the limit so the suite stays fast: a test over it fails the run, named with its time. A test's
# own time is its setup, call and teardown, less the wait for a shared tiny pipeline, which is built once for
# the whole run by whichever test asks first and is not that test's cost. A test marked
# @pytest.mark.longer(F, why=...) may take F times the limit: a scenario of many processes whose steps depend
# on each other (machines of a sweep, workers of a study), each exception named and bounded. The factor, not
# seconds, so that a slower machine's one larger limit (.ci/run's MAX_TEST_SECONDS) moves every bound.

SHARED_BUILD = "shared_build_seconds"
LONGER = "longer_factor"
_pending_shared_build = [0.0]  # this process's wait for shared builds since its last test report


@contextmanager
def shared_build_time(started: float):
    try:
        yield
    finally:
        _pending_shared_build[0] += time.monotonic() - started


def pytest_addoption(parser):
    parser.addoption("--max-test-seconds", type=float, default=None, metavar="S",
                     help="fail the run when a test's own time (setup, call and teardown, less the wait for a "
                          "shared tiny pipeline) is over S seconds, or over F times S for one marked longer(F)")


def pytest_configure(config):
    config.addinivalue_line("markers", "longer(factor, why): the test's own time may be factor times "
                                       "--max-test-seconds")
    if not hasattr(config, "workerinput"):  # the controller: xdist's workers inherit its environment
        share_compiled_code(config)
        # Tests reach nothing outside the machine. The pipelines' copies carry .dvc/config's `analytics = false`,
        # but in a repository a test makes with `dvc init`, each DVC command would start a daemon that posts a
        # usage report to analytics.dvc.org.
        os.environ["DVC_NO_ANALYTICS"] = "1"


def share_compiled_code(config) -> None:
    """Every process of the run (workers, stages, their seeds' children) keeps what XLA compiles in one folder and
    loads it from there: the tiny pipelines compile the same few functions in a hundred processes, about 0.9 CPU-s
    each (measured: test_train_pipeline and test_trajectories, 318 -> 276 CPU-s). The same executable gives the
    same bits, and the first process of a run still compiles each one. Removed at the end of the run."""
    folder = tempfile.mkdtemp(prefix="fmnist-tests-compiled-")
    config.add_cleanup(lambda: shutil.rmtree(folder, ignore_errors=True))
    tf_flags = os.environ.get("TF_XLA_FLAGS", "")
    if "tf_xla_persistent_cache_directory" not in tf_flags:
        os.environ["TF_XLA_FLAGS"] = f"{tf_flags} --tf_xla_persistent_cache_directory={folder}/tensorflow".strip()
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", f"{folder}/jax")
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")  # JAX keeps only slow ones otherwise
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    # On the report, not the item: under xdist the report is what reaches the controller, which judges.
    if _pending_shared_build[0]:
        report.user_properties.append((SHARED_BUILD, _pending_shared_build[0]))
        _pending_shared_build[0] = 0.0
    marker = item.get_closest_marker("longer")
    if marker is not None:
        report.user_properties.append((LONGER, float(marker.args[0])))
    return report


_own_seconds: dict[str, float] = defaultdict(float)
_longer: dict[str, float] = {}


def pytest_runtest_logreport(report):
    properties = report.user_properties
    _own_seconds[report.nodeid] += report.duration - sum(v for k, v in properties if k == SHARED_BUILD)
    _longer.update({report.nodeid: v for k, v in properties if k == LONGER})


def _over_limit(config) -> list[tuple[str, float, float]]:
    """(test, its own seconds, the seconds it was allowed) for each test over its limit, the slowest first."""
    limit = config.getoption("max_test_seconds")
    if limit is None or hasattr(config, "workerinput"):  # an xdist worker: its controller judges
        return []
    over = [(node, s, limit * _longer.get(node, 1.0)) for node, s in _own_seconds.items()]
    return sorted((entry for entry in over if entry[1] > entry[2]), key=lambda entry: -entry[1])


def pytest_sessionfinish(session, exitstatus):
    if _over_limit(session.config) and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, config):
    over = _over_limit(config)
    if over:
        limit = config.getoption("max_test_seconds")
        terminalreporter.section(f"tests over --max-test-seconds={limit:g}", red=True)
        for node, seconds, allowed in over:
            terminalreporter.line(f"{seconds:7.1f}s  {node}  (allowed {allowed:g} s)")
        terminalreporter.line(f"error: {len(over)} test(s) took longer than allowed; make them smaller "
                              "(tests/conftest.py explains what counts)", red=True)


def pytest_collection_modifyitems(items):
    """Modules that run the tiny pipeline's processes first (stable: each module's own order is kept). The
    Makefile hands xdist's workers whole modules in this order, so the long ones are not left for the end. Each
    test that starts no process and loads no TensorFlow is marked `quick` (make check runs those)."""
    items.sort(key=lambda item: "tiny_pipelines" not in getattr(item, "fixturenames", ()))
    for item in items:
        if is_quick(item):
            item.add_marker(pytest.mark.quick)


# --- make check: the tests that start no process and load no TensorFlow, sorted from what each one uses -----
# Read from the code at collection, so a new test is sorted as it is written: its body, the project fixtures it
# requests (their bodies), and what its module imports at module level, followed through the project's modules.
# Any process counts (subprocess, a stage, git, DVC, make: a DVC command is one), and so does Keras, TensorFlow or
# JAX loaded in the test process. When in doubt it is not quick: make test runs everything anyway.
STARTS_PROCESS = re.compile(r"\b(subprocess|Popen|run_stage|init_git_dvc_repo|copy_pipeline|tiny_pipelines|"
                            r"make_dry_run|recipe_argv)\b|\brun\(|\bdvc\b")
HEAVY_LIBRARIES = re.compile(r"^(keras|tensorflow|jax)(\.|$)")


def is_quick(item) -> bool:
    function = getattr(item, "function", None)
    if function is None:
        return False
    functions = [function] + [definition.func for name in item.fixturenames
                              for definition in item._fixtureinfo.name2fixturedefs.get(name, ())]
    sources = [source for source in map(_tests_source, functions) if source]
    sources += _called_helpers(sources, vars(item.module))
    if any(STARTS_PROCESS.search(source) or "keras" in source or "tensorflow" in source for source in sources):
        return False
    return not _loads_heavy_library(item.module.__name__, Path(item.module.__file__))


def _tests_source(function) -> str:
    """The source of a function defined in tests/ (the project's tests, fixtures and helpers), else ''."""
    try:
        file = Path(inspect.getsourcefile(function) or "").resolve()
        return inspect.getsource(function) if file.is_relative_to(REPO_ROOT / "tests") else ""
    except (TypeError, OSError):
        return ""


def _called_helpers(sources: list[str], namespace: dict) -> list[str]:
    """The sources of the tests/ functions these sources call, and of those they call: a helper that starts a
    process is a process started by the test (`start(...)`, `docs_check.gate_example(...)`)."""
    found, pending, seen = [], [(source, namespace) for source in sources], set()
    while pending:
        source, names = pending.pop()
        for node in ast.walk(ast.parse(textwrap.dedent(source))):
            target = None
            if isinstance(node, ast.Name):
                target = names.get(node.id)
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                target = getattr(names.get(node.value.id), node.attr, None)
            if callable(target) and id(target) not in seen:
                seen.add(id(target))
                helper = _tests_source(target)
                if helper:
                    found.append(helper)
                    pending.append((helper, getattr(target, "__globals__", names)))
    return found


def pytest_ignore_collect(collection_path, config):
    """With `-m quick` (make check), a test module whose imports load TensorFlow is not even imported: none of
    its tests is quick, and the import alone takes seconds."""
    if config.getoption("markexpr", "") == "quick" and collection_path.suffix == ".py" \
            and collection_path.name.startswith("test_"):
        return _loads_heavy_library(f"tests.{collection_path.stem}", collection_path) or None
    return None


_heavy_modules: dict[str, bool] = {}


def _loads_heavy_library(name: str, path: Path) -> bool:
    """Whether importing this module loads Keras, TensorFlow or JAX, through its module-level imports (project
    modules followed, imports inside functions left out: they run only when called)."""
    if name not in _heavy_modules:
        _heavy_modules[name] = False  # an import cycle ends here
        imported = set()
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            for inner in ast.walk(node) if not isinstance(node, (ast.FunctionDef, ast.ClassDef)) else ():
                if isinstance(inner, ast.Import):
                    imported.update(alias.name for alias in inner.names)
                elif isinstance(inner, ast.ImportFrom) and inner.module and not inner.level:
                    imported.add(inner.module)
                    imported.update(f"{inner.module}.{alias.name}" for alias in inner.names)
        heavy = any(HEAVY_LIBRARIES.match(module) for module in imported)
        for module in imported:
            if heavy:
                break
            base = REPO_ROOT / Path(*module.split("."))
            file = next((f for f in (base.with_suffix(".py"), base / "__init__.py") if f.is_file()), None)
            heavy = file is not None and _loads_heavy_library(module, file)
        _heavy_modules[name] = heavy
    return _heavy_modules[name]


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
    """tiny_pipelines(backend) -> TinyPipeline, built on first use and then shared by every test.

    Under pytest-xdist each worker is its own process: the first worker to ask builds the pipeline in the run's
    common folder (a file lock makes any other wait), and every worker then works on its own copy, since two
    DVC commands in one repository at once would fight over its lock."""
    from filelock import FileLock

    from tests.helpers import commit_all, copy_project, edit_params, init_git_dvc_repo, run, stage_env

    own = tmp_path_factory.getbasetemp()
    common = own.parent if os.environ.get("PYTEST_XDIST_WORKER") else own  # xdist: <run>/popen-gw0, ...
    copies: dict[str, TinyPipeline] = {}

    def build(root: Path, backend: str) -> subprocess.CompletedProcess:
        pins = write_fake_dataset(root / "mirror", n_train=500, n_test=100)
        repo = copy_project(root / "repo")

        def tiny(document):
            document["download"]["sha256"] = pins
            document["train"]["backend"] = backend
            document["variants"] = copy.deepcopy(TINY_VARIANTS)
            if backend == "tensorflow":  # JAX compiles the random layer for seconds a process; one backend shows it
                document["variants"]["tiny_softmax"]["augmentation"] = TINY_AUGMENTATION
            document["chapter"] = {"tiny_stopping": {"metric": "val_accuracy", "value": 0.5}}
            document["plot"]["optimizer_comparison"] = ["tiny_softmax", "tiny_relu"]
            document["assess"]["images"] = 10  # 10 test images a family of photo-like pictures: made in every assess
            document["assess"]["alongside"] = list(TINY_VARIANTS)  # all but the chosen one: measured beside it

        edit_params(repo, tiny)
        init_git_dvc_repo(repo)
        first = run(["dvc", "repro"], repo, stage_env(FASHION_MNIST_MIRROR=str(root / "mirror")))
        commit_all(repo, "results")
        return first

    def pipeline(backend: str) -> TinyPipeline:
        if backend not in copies:
            built, record = common / f"tiny-{backend}", common / f"tiny-{backend}.json"
            started = time.monotonic()
            with FileLock(str(common / f"tiny-{backend}.lock")), shared_build_time(started):
                if not record.exists():  # not built yet, or a build that failed: from scratch
                    shutil.rmtree(built, ignore_errors=True)
                    first = build(built, backend)
                    record.write_text(json.dumps({"args": first.args, "returncode": first.returncode,
                                                  "stdout": first.stdout, "stderr": first.stderr}))
            first = subprocess.CompletedProcess(**json.loads(record.read_text()))
            repo = own / f"tiny-{backend}-copy" / "repo"
            shutil.copytree(built / "repo", repo, symlinks=True)
            env = stage_env(FASHION_MNIST_MIRROR=str(built / "mirror"))  # the generated files: shared, only read
            copies[backend] = TinyPipeline(backend, repo, env, first, built / "mirror")
        return copies[backend]

    return pipeline


def copy_pipeline(pipeline: TinyPipeline, dest: Path) -> TinyPipeline:
    """A copy of the shared pipeline (git history, DVC cache and all) for a test that changes it."""
    shutil.copytree(pipeline.repo, dest, symlinks=True)
    return pipeline._replace(repo=dest)
