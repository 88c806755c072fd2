"""Stage download: the four official Fashion-MNIST files into data/raw/, each verified by sha256.

The source ($FASHION_MNIST_MIRROR, Keras cache, canonical URL, Zalando mirror) is deliberately not
a DVC dependency: the bytes are pinned, so switching mirrors does not invalidate anything.
"""
from fmnist.core.download import Fetcher, default_sources
from fmnist.plumbing import params, runner
from fmnist.plumbing.paths import RAW_DIR
from fmnist.schema.data import DownloadParams


def main() -> None:
    p = params.load(DownloadParams)
    fetcher = Fetcher(default_sources(), p.retries, p.backoff_seconds, p.timeout_seconds)
    origins = fetcher.fetch_all(p.sha256.by_file_name(), RAW_DIR)
    by_origin: dict[str, list[str]] = {}
    for file_name, origin in origins.items():
        by_origin.setdefault(origin, []).append(file_name)
    if len(by_origin) == 1:
        print(f"{RAW_DIR}: {len(origins)} files verified, from {next(iter(by_origin))}")
    else:
        print(f"{RAW_DIR}: {len(origins)} files verified: " + "; ".join(
            f"{', '.join(names)} from {origin}" for origin, names in by_origin.items()))


if __name__ == "__main__":
    runner.run(main)
