"""Benchmark: where the test suite's CPU time goes, and the wall time no scheduling can beat.

Runs `make test` (every core, whole modules per worker; extra pytest options after `--` go to its PYTEST_ARGS)
with two recorders beside it, both in a temporary folder on PYTHONPATH:

- a sitecustomize that every Python process of the run loads (pytest, its workers, DVC, the stages, their
  child processes), recording at exit its own CPU time (user + system), command line and xdist worker; it wraps
  os._exit too, which the stages call to skip TensorFlow's teardown;
- a pytest plugin recording when each test starts and ends on its worker, and the worker's own CPU time then.

A process is the cost of the test running on its worker when it ended; a worker's own CPU between a test's start and
end (what the test runs in-process: imports, Keras on tiny data, the docs' checks) is the test's too. Prints the CPU
by module and by kind of process (those that import TensorFlow, the DVC command line, the rest), the tests that cost
their worker most, the run's wall time, and the floor CPU / cores: the wall time of a perfectly packed run on this
machine. The gap between the two is idle cores: a sampler reads the machine's idle time (/proc/stat, Linux) every
half second, and the run's idle core-seconds are shared out among the tests running at the time (none running on a
worker: its start, or its end of the run). Processes started with a PYTHONPATH of their own (a few tests set one)
load no recorder; the line "recorded" says how much of the run's CPU that leaves out (the rest: git, PostgreSQL,
killed processes).

    python benchmarks/suite_cpu.py                    # the whole suite
    python benchmarks/suite_cpu.py -- tests/test_sweep.py
    python benchmarks/suite_cpu.py --keep /tmp/suite   # and keep the raw records
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import machine  # benchmarks/machine.py, beside this script

ROOT = Path(__file__).resolve().parent.parent

SITECUSTOMIZE = '''
import atexit, json, os, resource, sys, time
_logged = []
def _record():
    if _logged:
        return
    _logged.append(1)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    line = json.dumps({"end": time.time(), "cpu": usage.ru_utime + usage.ru_stime, "argv": sys.argv[:3],
                       "worker": os.environ.get("PYTEST_XDIST_WORKER", ""), "pid": os.getpid()})
    with open(os.environ["SUITE_CPU_LOG"], "a") as log:  # one short line in append mode: written whole
        log.write(line + "\\n")
atexit.register(_record)
_exit = os._exit
def _recorded_exit(code):
    _record()
    _exit(code)
os._exit = _recorded_exit
'''

PLUGIN = '''
import json, os, resource, time
def _note(kind, nodeid):
    if os.environ.get("PYTEST_XDIST_WORKER"):
        usage = resource.getrusage(resource.RUSAGE_SELF)  # the worker's own CPU: what a test runs in-process
        with open(os.environ["SUITE_CPU_TESTS"], "a") as log:
            log.write(json.dumps({"t": time.time(), "kind": kind, "node": nodeid,
                                  "worker": os.environ["PYTEST_XDIST_WORKER"], "pid": os.getpid(),
                                  "cpu": usage.ru_utime + usage.ru_stime}) + "\\n")
def pytest_runtest_logstart(nodeid, location):
    _note("start", nodeid)
def pytest_runtest_logfinish(nodeid, location):
    _note("finish", nodeid)
'''

TENSORFLOW_PROCESSES = ("stages/train", "stages/assess", "core/other_seeds", "tools/tune", "tools/predict")


def kind_of(argv: list[str]) -> str:
    program = argv[0] if argv else ""
    if program.endswith(("dvc/__main__.py", "/dvc")):
        return "DVC command line"
    if any(name in program for name in TENSORFLOW_PROCESSES):
        return "stages and tools that import TensorFlow"
    return "everything else (pytest and its workers, other stages, gto, scripts)"


def test_spans(events: list[dict]) -> list[tuple[dict, dict]]:
    """(its start event, its finish event) of every test, in the order they finished."""
    started, spans = {}, []
    for event in events:
        key = (event["worker"], event["node"])
        if event["kind"] == "start":
            started[key] = event
        elif key in started:
            spans.append((started.pop(key), event))
    return spans


def spans_by_worker(events: list[dict]) -> dict[str, list[tuple[float, float, str]]]:
    """{worker: [(start, end, test id)]}"""
    windows = collections.defaultdict(list)
    for start, finish in test_spans(events):
        windows[finish["worker"]].append((start["t"], finish["t"], finish["node"]))
    return windows


def in_process(events: list[dict]) -> tuple[collections.Counter, set[int]]:
    """({test id: CPU its worker spent between its start and its end}, the workers' process ids): what a test runs
    in the worker itself (imports, Keras on tiny data, the docs' checks), which no process of its own records."""
    spent = collections.Counter()
    for start, finish in test_spans(events):
        spent[finish["node"]] += finish["cpu"] - start["cpu"]
    return spent, {event["pid"] for event in events}


def running_test(process: dict, windows: dict) -> str | None:
    for worker in [process["worker"]] if process["worker"] in windows else list(windows):
        for start, end, node in windows[worker]:
            if start - 0.5 <= process["end"] <= end + 0.5:
                return node
    return None


def idle_samples(stop: threading.Event, period: float = 0.5) -> list[tuple[float, float]]:
    """[(time, idle core-seconds since the previous sample)] from /proc/stat until `stop` is set; [] off Linux."""
    stat = Path("/proc/stat")
    if not stat.exists():
        return []
    tick = os.sysconf("SC_CLK_TCK")

    def idle() -> float:  # the first line sums every core: user nice system idle iowait ...
        fields = stat.read_text().split("\n", 1)[0].split()
        return (int(fields[4]) + int(fields[5])) / tick

    samples, last = [], idle()
    while not stop.wait(period):
        now = idle()
        samples.append((time.time(), now - last))
        last = now
    return samples


def idle_by_test(samples: list[tuple[float, float]], windows: dict) -> collections.Counter:
    """Each sample's idle core-seconds shared equally among the workers; a worker's share goes to its running test."""
    shares = collections.Counter()
    for moment, idle in samples:
        for worker in windows:
            node = next((n for start, end, n in windows[worker] if start <= moment <= end), None)
            shares[node or f"(no test on {worker})"] += idle / len(windows)
    return shares


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=15, help="how many modules to list (default 15)")
    parser.add_argument("--keep", type=Path, metavar="FOLDER",
                        help="also copy the raw records there (processes.jsonl, tests.jsonl, idle.jsonl), "
                             "to look into further")
    parser.add_argument("pytest_args", nargs="*", help="after --: passed to pytest (default: the whole suite)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="suite-cpu-") as folder:
        folder = Path(folder)
        (folder / "sitecustomize.py").write_text(SITECUSTOMIZE)
        (folder / "suite_cpu_plugin.py").write_text(PLUGIN)
        log, tests = folder / "processes.jsonl", folder / "tests.jsonl"
        env = {**os.environ, "SUITE_CPU_LOG": str(log), "SUITE_CPU_TESTS": str(tests),
               "PYTHONPATH": os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")]))}
        # The Makefile's own test command (workers, distribution); the plugin rides in through PYTEST_ARGS.
        command = ["make", "-s", "test", f"PYTEST_ARGS={shlex.join(['-p', 'suite_cpu_plugin', *args.pytest_args])}"]
        stop, samples = threading.Event(), []
        sampler = threading.Thread(target=lambda: samples.extend(idle_samples(stop)), daemon=True)
        started = time.monotonic()
        sampler.start()
        result = subprocess.run(command, cwd=ROOT, env=env)  # its output as `make test` shows it
        wall = time.monotonic() - started
        stop.set()
        sampler.join()
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        processes = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
        events = [json.loads(line) for line in tests.read_text().splitlines()] if tests.exists() else []
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            for record in (log, tests):
                if record.exists():
                    shutil.copy2(record, args.keep / record.name)
            (args.keep / "idle.jsonl").write_text("".join(json.dumps(sample) + "\n" for sample in samples))
    cores = os.cpu_count() or 1
    run_cpu = children.ru_utime + children.ru_stime
    recorded = sum(p["cpu"] for p in processes)
    print(f"\n{machine.cpu_name()}, {cores} cores: make test {shlex.join(args.pytest_args) or '(every test)'}, "
          f"exit status {result.returncode}")
    print(f"wall {wall:.0f} s; CPU {run_cpu:.0f} s (user + system of every process waited for), "
          f"{run_cpu / wall:.2f} cores busy on average")
    print(f"floor: CPU / cores = {run_cpu / cores:.0f} s, {run_cpu / cores / wall:.2f} of this run's wall time")
    print(f"recorded: {len(processes)} Python processes, {recorded:.0f} s of CPU")
    kinds, counts = collections.Counter(), collections.Counter()
    for process in processes:
        kind = kind_of(process["argv"])
        kinds[kind] += process["cpu"]
        counts[kind] += 1
    print("\nCPU s  processes  s each  kind")
    for kind, cpu in kinds.most_common():
        print(f"{cpu:5.0f}  {counts[kind]:9d}  {cpu / counts[kind]:6.2f}  {kind}")
    windows = spans_by_worker(events)
    spent, workers = in_process(events)
    modules, walls = collections.Counter(), collections.Counter()
    for process in processes:
        if process.get("pid") in workers:  # a worker: its tests' in-process CPU is theirs (below), the rest between
            modules["(a worker's own, between tests)"] += process["cpu"]
            continue
        node = running_test(process, windows)
        modules[node.split("::")[0] if node else "(between tests)"] += process["cpu"]
    for node, cpu in spent.items():
        modules[node.split("::")[0]] += cpu
        modules["(a worker's own, between tests)"] -= cpu
    for spans in windows.values():
        for start, end, node in spans:
            walls[node.split("::")[0]] += end - start
    print("\nCPU s  wall s  module (wall: its tests' time on their worker, a shared pipeline's build included)")
    for module, cpu in modules.most_common(args.top):
        print(f"{cpu:5.0f}  {walls.get(module, 0):6.0f}  {module}")
    if spent:
        print(f"\nin the workers' own processes: {sum(spent.values()):.0f} CPU-s during tests; the tests")
        for node, cpu in spent.most_common(args.top):
            print(f"{cpu:5.1f}  {node}")
    if samples and windows:
        shares = idle_by_test(samples, windows)
        print(f"\nidle core-seconds: {sum(idle for _, idle in samples):.0f} in all; the tests they fell in")
        for node, idle in shares.most_common(args.top):
            print(f"{idle:5.1f}  {node}")
    sys.exit(result.returncode)


if __name__ == "__main__":
    main()
