import os

import pytest

from fmnist.core import download
from fmnist.core.download import DownloadError, Fetcher, Source
from fmnist.schema.data import DownloadParams


def make_fetcher(*sources, retries=2, **kwargs):
    messages = []
    fetcher = Fetcher(list(sources), retries=retries, backoff_seconds=0.0, timeout_seconds=5.0,
                      progress=False, log=messages.append, **kwargs)
    return fetcher, messages


def leftovers(folder):
    """Everything in folder that is not a complete, verified file (temporary or partial files)."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") or p.suffix in (".tmp", ".part"))


def assert_verified_copies(dest, mirror, pins):
    assert sorted(p.name for p in dest.iterdir()) == sorted(pins)
    for name in pins:
        assert (dest / name).read_bytes() == (mirror / name).read_bytes()


def test_http_mirror_success(tmp_path, fake_mirror, file_server):
    mirror, pins = fake_mirror
    fetcher, _ = make_fetcher(Source("mirror", file_server.url("ok")))
    origins = fetcher.fetch_all(pins, tmp_path / "raw")
    assert_verified_copies(tmp_path / "raw", mirror, pins)
    assert set(origins.values()) == {f"mirror ({file_server.url('ok')})"}


def test_sha_mismatch_is_discarded_and_next_source_used(tmp_path, fake_mirror, file_server):
    mirror, pins = fake_mirror
    fetcher, messages = make_fetcher(Source("bad", file_server.url("corrupt")), Source("good", file_server.url("ok")))
    origins = fetcher.fetch_all(pins, tmp_path / "raw")
    assert_verified_copies(tmp_path / "raw", mirror, pins)
    assert all(origin.startswith("good") for origin in origins.values())
    assert sum("does not match the pinned" in m for m in messages) == len(pins)


def test_truncated_body_is_discarded_and_next_source_used(tmp_path, fake_mirror, file_server):
    mirror, pins = fake_mirror
    fetcher, messages = make_fetcher(Source("short", file_server.url("truncated")),
                                     Source("good", file_server.url("ok")))
    fetcher.fetch_all(pins, tmp_path / "raw")
    assert_verified_copies(tmp_path / "raw", mirror, pins)
    assert sum("truncated body" in m for m in messages) == len(pins)


def test_server_error_is_retried_then_succeeds(tmp_path, fake_mirror, file_server):
    mirror, pins = fake_mirror
    fetcher, messages = make_fetcher(Source("flaky", file_server.url("flaky")), retries=1)
    fetcher.fetch_all(pins, tmp_path / "raw")
    assert_verified_copies(tmp_path / "raw", mirror, pins)
    for name in pins:  # one 500, one success, per file
        assert file_server.requests.count(f"/flaky/{name}") == 2
    assert sum("HTTP 500" in m and "retrying" in m for m in messages) == len(pins)


def test_retries_are_bounded_then_next_source(tmp_path, fake_mirror, file_server):
    mirror, pins = fake_mirror
    fetcher, _ = make_fetcher(Source("down", file_server.url("down")), Source("local", str(mirror)), retries=2)
    fetcher.fetch_all(pins, tmp_path / "raw")
    assert_verified_copies(tmp_path / "raw", mirror, pins)
    for name in pins:
        assert file_server.requests.count(f"/down/{name}") == 3  # first try + 2 retries


def test_local_folder_mirror(tmp_path, fake_mirror):
    mirror, pins = fake_mirror
    fetcher, _ = make_fetcher(Source("folder", str(mirror)))
    fetcher.fetch_all(pins, tmp_path / "raw")
    assert_verified_copies(tmp_path / "raw", mirror, pins)


def test_every_source_failing_names_each_and_leaves_nothing(tmp_path, fake_mirror, file_server):
    _, pins = fake_mirror
    closed_port = "http://127.0.0.1:9/"  # discard port: nothing listens there
    fetcher, _ = make_fetcher(
        Source("no folder", str(tmp_path / "nowhere")),
        Source("refused", closed_port),
        Source("corrupt", file_server.url("corrupt")),
        Source("truncated", file_server.url("truncated")),
        Source("missing", file_server.url("nothing")),
        retries=1,
    )
    dest = tmp_path / "raw"
    with pytest.raises(DownloadError) as error:
        fetcher.fetch_all(pins, dest)
    message = str(error.value)
    first = next(iter(pins))
    assert f"could not fetch {first}" in message
    for expected in ("no folder", "does not exist", "refused", "connection failed", "gave up after 2 attempts",
                     "corrupt", "does not match the pinned", "truncated body", "HTTP 404", "FASHION_MNIST_MIRROR="):
        assert expected in message
    assert list(dest.iterdir()) == []


def test_present_verified_files_are_not_fetched_again(tmp_path, fake_mirror, file_server):
    mirror, pins = fake_mirror
    fetcher, _ = make_fetcher(Source("mirror", file_server.url("ok")))
    fetcher.fetch_all(pins, tmp_path / "raw")
    count = len(file_server.requests)
    assert set(fetcher.fetch_all(pins, tmp_path / "raw").values()) == {"already present"}
    assert len(file_server.requests) == count


def test_present_but_corrupt_file_is_replaced(tmp_path, fake_mirror, file_server):
    mirror, pins = fake_mirror
    dest = tmp_path / "raw"
    dest.mkdir()
    name = next(iter(pins))
    (dest / name).write_bytes(b"garbage")
    fetcher, messages = make_fetcher(Source("mirror", file_server.url("ok")))
    fetcher.fetch(name, pins[name], dest)
    assert (dest / name).read_bytes() == (mirror / name).read_bytes()
    assert any("fetching it again" in m for m in messages)


def test_failed_fetch_keeps_a_previous_file_untouched(tmp_path, fake_mirror, file_server):
    _, pins = fake_mirror
    dest = tmp_path / "raw"
    dest.mkdir()
    name = next(iter(pins))
    (dest / name).write_bytes(b"old bytes")
    fetcher, _ = make_fetcher(Source("corrupt", file_server.url("corrupt")))
    with pytest.raises(DownloadError):
        fetcher.fetch(name, pins[name], dest)
    assert (dest / name).read_bytes() == b"old bytes"
    assert leftovers(dest) == []


def test_default_sources_order(tmp_path):
    keras_home = tmp_path / "keras"
    (keras_home / "datasets" / "fashion-mnist").mkdir(parents=True)
    env = {"FASHION_MNIST_MIRROR": "/data/mirror", "KERAS_HOME": str(keras_home)}
    sources = download.default_sources(env)
    assert [s.location for s in sources] == [
        "/data/mirror",
        str(keras_home / "datasets" / "fashion-mnist"),
        "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    ]
    # Without a mirror and without a Keras cache, only the two public URLs remain.
    assert [s.label for s in download.default_sources({"KERAS_HOME": str(tmp_path / "none")})] == [
        "canonical URL", "Zalando mirror"]


def test_source_joins_url_and_folder_paths():
    assert Source("m", "http://host/base").locate("f.gz") == "http://host/base/f.gz"
    assert Source("m", "http://host/base/").locate("f.gz") == "http://host/base/f.gz"
    assert Source("m", "/some/dir").locate("f.gz") == os.path.join("/some/dir", "f.gz")


@pytest.mark.real_data
def test_committed_pins_verify_the_real_files(tmp_path, real_mirror):
    from fmnist.plumbing import params
    from tests.conftest import REPO_ROOT

    pins = params.load(DownloadParams, REPO_ROOT / "params.yaml").sha256.by_file_name()
    fetcher, _ = make_fetcher(Source("real", str(real_mirror)))
    fetcher.fetch_all(pins, tmp_path / "raw")
    assert sorted(p.name for p in (tmp_path / "raw").iterdir()) == sorted(pins)
