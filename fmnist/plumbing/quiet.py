"""Calm standard error: TensorFlow's C++ notices that report no problem are dropped, every other line passes.

TensorFlow's native code writes to file descriptor 2 directly, before TF_CPP_MIN_LOG_LEVEL applies (absl
logs before it is initialised), so only a filter on the descriptor itself can drop them. A stage routes
its fd 2 through `python -m fmnist.plumbing.quiet`, a separate process: if the stage crashes, the filter still
passes on everything the stage wrote, in full.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

NOTICES = (
    re.compile(r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$"),
    re.compile(r"^I\d{4} [\d:.]+\s+\d+ \S+\] "),  # absl INFO lines: the oneDNN notice, "Could not find cuda drivers"
    # With op determinism on, tf.data swaps its parallel map for a plain one (a last partial batch triggers it)
    # and copies an attribute the plain op lacks; TensorFlow logs that at ERROR level and carries on.
    re.compile(r"^E\d{4} [\d:.]+\s+\d+ node_def_util\.cc:\d+\] NodeDef mentions attribute "
               r"use_unbounded_threadpool which is not in the op definition"),
    # XLA's persistent cache (the tests share one) reads an entry as a text proto first, then as the binary proto it
    # is (ReadTextOrBinaryProto in tensorflow/compiler/jit/device_executable_persistor.h); protobuf logs the failed
    # text parse at ERROR level, and the entry loads.
    re.compile(r"^E\d{4} [\d:.]+\s+\d+ text_format\.cc:\d+\] Error parsing text-format "
               r"tensorflow\.XlaSerializedCacheEntry: "),
)
# cuInit fails on every machine without an NVIDIA driver; with one, the same line is a real problem and stays.
NO_GPU_NOTICE = re.compile(r"^E\d{4} [\d:.]+\s+\d+ cuda_(platform|executor|diagnostics)\.cc:\d+\] ")
# XLA loading a compiled executable from a persistent cache (the tests share one) compares the CPU features it was
# compiled for with the host's. On AMD Zen the compiler adds LLVM tuning hints (+prefer-no-gather, ...) that no CPU
# reports, so the same machine "mismatches" itself at ERROR level. A notice only when the hints are all that
# differ; a missing instruction set (an executable from another CPU) stays.
AOT_LOAD = re.compile(r"^E\d{4} [\d:.]+\s+\d+ cpu_aot_loader\.cc:\d+\] Loading XLA:CPU AOT result\. .*"
                      r"Compile machine features: \[(?P<compiled>[^\]]*)\] "
                      r"vs host machine features: \[(?P<host>[^\]]*)\]")


def is_own_cpu_reload(line: str) -> bool:
    """The AOT_LOAD line, for an executable that needs no feature this CPU lacks but tuning hints."""
    found = AOT_LOAD.match(line)
    if not found:
        return False
    host = set(found["host"].split(","))
    needed = {feature[1:] for feature in found["compiled"].split(",") if feature.startswith("+")}
    return all(feature.startswith("prefer-") for feature in needed - host)

_filter: subprocess.Popen | None = None
_stderr: int | None = None  # where fd 2 pointed before the filter


def has_nvidia_driver() -> bool:
    return Path("/proc/driver/nvidia").exists()


def is_notice(line: str, nvidia_driver: bool) -> bool:
    return (any(p.match(line) for p in NOTICES) or (not nvidia_driver and bool(NO_GPU_NOTICE.match(line)))
            or is_own_cpu_reload(line))


def filter_stderr() -> None:
    """From now on, everything this process (and its native libraries) writes to fd 2 goes through the filter."""
    global _filter, _stderr
    if _filter is not None:
        return
    sys.stderr.flush()
    _stderr = os.dup(2)
    read_end, write_end = os.pipe()
    # The filter writes to our present fd 2; it inherits nothing else (close_fds), so it sees the end of
    # the stream as soon as this process ends, however it ends.
    _filter = subprocess.Popen([sys.executable, "-m", "fmnist.plumbing.quiet"], stdin=read_end, stdout=2, stderr=2)
    os.close(read_end)
    os.dup2(write_end, 2)
    os.close(write_end)


def finish() -> None:
    """End of the process: point fd 2 back where it was, which ends the filter's input, and let it pass on
    the last lines before we exit (so they come before whatever the caller prints next)."""
    if _filter is None:
        return
    sys.stderr.flush()
    os.dup2(_stderr, 2)
    try:
        _filter.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def main() -> None:
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # a stop goes to the stage; this ends when it does
        signal.signal(signum, signal.SIG_IGN)
    nvidia_driver = has_nvidia_driver()
    out = sys.stdout.buffer
    for raw in sys.stdin.buffer:
        if not is_notice(raw.decode(errors="replace").rstrip("\r\n"), nvidia_driver):
            out.write(raw)
            out.flush()


if __name__ == "__main__":
    main()
