"""A sweep split over machines: `make sweep` runs one share of a grid of params.yaml values as DVC
experiments and pushes them; `make sweep-collect` pulls every point of the grid and writes one table.

    python -m fmnist.tools.sweep run --grid 'variants.dropout30.hidden.0.dropout=0.1,0.2,0.3,0.5' --share 2/4
    python -m fmnist.tools.sweep collect --grid '...' [--shares 4]

- The grid is `KEY=V1,V2,... KEY=...` (keys and values as `dvc exp run -S` takes them; a leading '+' adds
  a key params.yaml lacks). Its points are the product of the value lists, in the order written (the
  last key varies fastest), numbered from 1. Share k of n runs points k, k + n, k + 2n, ... (round robin,
  so shares of a grid sorted by cost get about equal work).
- Every point is validated against the params schema before anything runs.
- Point i of sweep S is the experiment `S-i` (S defaults to `sweep-`, a hash of the grid and the baseline commit),
  on every machine: shares never collide, and a share run again replaces its own points (those of S on this
  baseline commit), here and on the git remote, instead of adding copies; nobody else's experiments are touched.
- A share queues its points (`dvc exp run --queue`), runs them `--jobs` at a time (the machine's cores by
  default) and pushes the finished ones with `dvc exp push`: their git refs to the git remote, their
  outputs to the default DVC remote. A point that fails is named, the others are still pushed.
- Collect pulls every point found on the git remote (`dvc exp pull`, outputs included, so `dvc exp
  apply` of a point followed by `dvc repro` recomputes nothing), reads each point's metrics from its
  experiment commit and writes reports/sweeps/<S>.md and .json: every point with its seed spread, the
  best by mean validation accuracy (never test), and whether it beats each other point by more than
  the seed spread allows (fmnist.core.comparison.told_apart with params.yaml `gates`, as the gate judges). Points
  not on the remote are listed as missing, with the share that owes them, and collect exits 1.
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import itertools
import json
import os
import re
import subprocess
from dataclasses import dataclass

import yaml

from fmnist.compat import experiments as compat
from fmnist.core import comparison
from fmnist.core.formatting import mean_std
from fmnist.core.results import val_accuracy_spread
from fmnist.plumbing import atomic, params
from fmnist.plumbing.errors import StageError
from fmnist.plumbing.paths import SWEEPS_DIR, details_file, metrics_file
from fmnist.plumbing.processes import command
from fmnist.plumbing.runner import run
from fmnist.schema.gates import GatesParams
from fmnist.schema.sections import SECTIONS
from fmnist.schema.training import VariantsParams

SWEEP_NAME = r"^[a-z][a-z0-9_-]{0,47}$"  # an experiment name prefix: also a valid git ref component


@dataclass(frozen=True)
class Point:
    index: int  # 1-based, in grid order
    settings: tuple[tuple[str, str], ...]  # (key, value) as given to `dvc exp run -S`
    share: int  # 1-based share that runs it, of `shares`
    name: str  # the experiment's name

    def set_args(self) -> list[str]:
        return [arg for key, value in self.settings for arg in ("-S", f"{key}={value}")]

    def describe(self) -> str:
        return ", ".join(f"{key.lstrip('+')}={value}" for key, value in self.settings)


def parse_grid(text: str) -> list[tuple[str, list[str]]]:
    """'a.b=1,2 c=x' -> [('a.b', ['1', '2']), ('c', ['x'])]."""
    grid = []
    for item in text.split():
        key, equals, values = item.partition("=")
        if not equals or not key.lstrip("+") or not values:
            raise StageError(f"grid item {item!r}: expected KEY=V1,V2,... (e.g. "
                             "variants.dropout30.hidden.0.dropout=0.1,0.2)")
        listed = values.split(",")
        if "" in listed:
            raise StageError(f"grid item {item!r}: an empty value in the list")
        if len(set(listed)) != len(listed):
            raise StageError(f"grid item {item!r}: a value is listed twice")
        if key in (k for k, _ in grid):
            raise StageError(f"grid key {key!r} appears twice")
        grid.append((key, listed))
    if not grid:
        raise StageError("the grid is empty: give KEY=V1,V2,... (GRID='...' with make)")
    return grid


def parse_share(text: str) -> tuple[int, int]:
    """'2/4' -> (2, 4)."""
    match = re.fullmatch(r"(\d+)/(\d+)", text.strip())
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise StageError(f"share {text!r}: expected K/N with 1 <= K <= N (e.g. 2/4)")
    return int(match[1]), int(match[2])


def default_name(grid: list[tuple[str, list[str]]], baseline: str) -> str:
    """sweep-<the grid's hash>-<the baseline commit, short>: the same grid on another commit is another sweep."""
    canonical = " ".join(f"{key}={','.join(values)}" for key, values in grid)
    return f"sweep-{hashlib.sha1(canonical.encode()).hexdigest()[:8]}-{baseline[:7]}"


def head_commit() -> str:
    return command(["git", "rev-parse", "HEAD"], "finding the baseline commit").strip()


def expand(grid: list[tuple[str, list[str]]], name: str, shares: int) -> list[Point]:
    if not re.fullmatch(SWEEP_NAME, name):
        raise StageError(f"sweep name {name!r} is not allowed: use lowercase letters, digits, '-' and '_', "
                         "starting with a letter (at most 48)")
    keys = [key for key, _ in grid]
    combos = list(itertools.product(*(values for _, values in grid)))
    width = len(str(len(combos)))
    return [Point(i, tuple(zip(keys, combo)), (i - 1) % shares + 1, f"{name}-{i:0{width}d}")
            for i, combo in enumerate(combos, start=1)]


def apply_setting(document: dict, key: str, value: str) -> None:
    """Set dotted `key` (list items by index) in the params document as `dvc exp run -S` would."""
    adding = key.startswith("+")
    parts = key.lstrip("+").split(".")
    node = document
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        where = ".".join(parts[: depth + 1])
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise StageError(f"grid key {key!r}: {where} is not an item of a list of {len(node)}")
            part = int(part)
        elif not isinstance(node, dict):
            raise StageError(f"grid key {key!r}: {'.'.join(parts[:depth])} holds a value, not a section")
        elif part not in node:
            if not (adding and last):
                raise StageError(f"grid key {key!r}: {where} is not in params.yaml"
                                 + ("" if adding else " (prefix '+' to add a new key, as with dvc exp run -S)"))
        if last:
            node[part] = yaml.safe_load(value)
        else:
            node = node[part]


def check_points(points: list[Point], document: dict) -> None:
    """Every point's params pass the schema (a bad value stops the sweep before anything runs)."""
    for point in points:
        edited = copy.deepcopy(document)
        for key, value in point.settings:
            apply_setting(edited, key, value)
        for section in {key.lstrip("+").split(".")[0] for key, _ in point.settings}:
            if section not in SECTIONS:
                raise StageError(f"grid key of point {point.index}: params.yaml has no section '{section}' to sweep")
            params.parse(SECTIONS[section], edited.get(section), path=f"grid point {point.index} ({point.describe()})")


def swept_variant(grid: list[tuple[str, list[str]]], chosen: str | None, variants: dict) -> str:
    """The variant whose metrics the table shows: --variant, or the one the grid's keys are under."""
    named = {key.lstrip("+").split(".")[1] for key, _ in grid if key.lstrip("+").startswith("variants.")}
    if chosen is None:
        if len(named) != 1:
            raise StageError(f"the grid sets {'no variant' if not named else 'variants ' + ', '.join(sorted(named))}:"
                             " say which variant's metrics to compare with --variant NAME "
                             "(SWEEP_ARGS=\"--variant NAME\" with make)")
        chosen = named.pop()
    if chosen not in variants:
        raise StageError(f"variant {chosen!r} is not in params.yaml (variants: {', '.join(variants)})")
    return chosen


# --- git and DVC ------------------------------------------------------------------------------------------

def exp_refs(where: str | None, names: set[str], baseline: str | None = None) -> dict[str, list[tuple[str, str]]]:
    """{name: [(ref, commit), ...]} of the experiments called one of `names`, in this repo (where=None) or
    on git remote `where`; only those on `baseline` when it is given."""
    if where is None:
        lines = command(["git", "for-each-ref", "--format=%(refname) %(objectname)", compat.EXP_REFS],
                        "listing experiments")
        pairs = [line.split() for line in lines.splitlines()]
    else:
        lines = command(["git", "ls-remote", where, f"{compat.EXP_REFS}/*"],
                        f"listing the experiments on git remote {where}")
        pairs = [line.split()[::-1] for line in lines.splitlines()]
    found: dict[str, list[tuple[str, str]]] = {}
    for ref, commit in pairs:
        name = compat.experiment_name_of_ref(ref)
        if name in names and baseline in (None, compat.experiment_baseline_of_ref(ref)):
            found.setdefault(name, []).append((ref, commit))
    return found


def drop_own_experiments(names: set[str], baseline: str) -> list[str]:
    """A share run again replaces its points: their experiments on this baseline commit are removed here first.
    Experiments of the same names on other commits (someone's --name used again) are not this run's: kept."""
    refs = [ref for ref, _ in sum(exp_refs(None, names, baseline).values(), [])]
    for ref in refs:
        command(["git", "update-ref", "-d", ref], f"removing the old experiment {ref}")
    return refs


def check_remotes(git_remote: str) -> None:
    command(["git", "remote", "get-url", git_remote], f"finding git remote '{git_remote}' (git remote -v lists them)")
    default = subprocess.run(["dvc", "remote", "default"], capture_output=True, text=True)  # exits 1 when none
    if default.returncode != 0 or not default.stdout.strip():
        raise StageError("no default DVC remote: `dvc remote add -d NAME URL` (the README's 'Growing past one "
                         "machine'); the points' outputs go there")


def run_share(points: list[Point], share: tuple[int, int], jobs: int, git_remote: str | None) -> list[Point]:
    """Run this share's points as experiments and push the finished ones; return the failed ones."""
    mine = [point for point in points if point.share == share[0]]
    names = {point.name for point in mine}
    if git_remote:
        check_remotes(git_remote)
    queued = command(["dvc", "queue", "status"], "reading the experiment queue")
    if compat.queue_has_queued(queued):
        raise StageError("the experiment queue already holds queued experiments, which this sweep would run too: "
                         "run them (dvc queue start) or drop them (dvc queue remove --queued) first")
    drop_own_experiments(names, head_commit())
    print(f"share {share[0]}/{share[1]}: {len(mine)} of {len(points)} points, {jobs} at a time", flush=True)
    for point in mine:
        print(f"  queue {point.name}: {point.describe()}", flush=True)
        command(["dvc", "exp", "run", "--queue", "--name", point.name, *point.set_args()], f"queueing {point.name}")
    # Runs the queue `jobs` at a time and returns when it is empty; a failed experiment does not stop the others.
    subprocess.run(["dvc", "exp", "run", "--run-all", "--jobs", str(jobs)])
    # Its workers stay up to 10 s once the queue is empty (dvc-task's idle check), and a process DVC forked to watch
    # them holds this one's output open meanwhile: whoever reads it to the end (a CI log, a test) waits. Stopped
    # now, they go at once; a stop that fails costs only that wait.
    subprocess.run(["dvc", "queue", "stop"], capture_output=True)
    done = exp_refs(None, names)
    failed = [point for point in mine if point.name not in done]
    finished = [point.name for point in mine if point.name in done]
    if git_remote and finished:
        # --force: this share's earlier push of the same points (same names, same baseline) is replaced.
        command(["dvc", "exp", "push", "--force", git_remote, *finished], f"pushing the experiments to {git_remote}")
        print(f"pushed {len(finished)} point(s) to git remote {git_remote} and the DVC remote", flush=True)
    return failed


def pull_points(points: list[Point], git_remote: str) -> dict[str, str]:
    """Pull every point the git remote has (refs and outputs); {name: experiment commit}. Where a name is there on
    more than one baseline commit (a --name used again on another commit), this commit's."""
    remote = exp_refs(git_remote, {point.name for point in points})
    head = head_commit()
    for name, found in remote.items():
        if len(found) > 1:
            remote[name] = [entry for entry in found if compat.experiment_baseline_of_ref(entry[0]) == head]
    ambiguous = [name for name, found in remote.items() if len(found) != 1]
    if ambiguous:
        raise StageError(f"git remote {git_remote} holds {', '.join(sorted(ambiguous))} from other baseline "
                         "commits, none of them this one; check out the commit they ran on, or name this sweep "
                         "otherwise (--name)")
    if remote:
        command(["dvc", "exp", "pull", "--force", git_remote, *sorted(remote)],
                f"pulling the experiments from {git_remote}")
    print(f"pulled {len(remote)} of {len(points)} point(s) from git remote {git_remote} and the DVC remote", flush=True)
    return {name: found[0][1] for name, found in remote.items()}


def read_at(commit: str, path: str) -> str:
    return command(["git", "show", f"{commit}:{path}"], f"reading {path} of experiment {commit[:7]}")


# --- the table --------------------------------------------------------------------------------------------

def point_result(point: Point, commit: str, variant: str) -> dict:
    metrics = json.loads(read_at(commit, metrics_file(variant).as_posix()))
    seeds = json.loads(read_at(commit, details_file(variant).as_posix())).get("spread", {}).get("val_accuracy", {})
    baseline = command(["git", "rev-parse", f"{commit}^"], "finding an experiment's baseline").strip()
    return {"point": point.index, "experiment": point.name, "share": point.share, "commit": commit,
            "baseline": baseline, "settings": dict(point.settings), "metrics": metrics,
            "val_accuracy_min": seeds.get("min"), "val_accuracy_max": seeds.get("max")}


def verdicts(rows: list[dict], tolerances: comparison.Tolerances) -> tuple[dict | None, dict[int, str]]:
    """The best point by mean validation accuracy and, for every other, whether the seed spread tells the best
    apart from it ('beaten') or not ('not told apart'): the best against every other point is one family."""
    if not rows:
        return None, {}
    best = max(rows, key=lambda row: row["metrics"]["val_accuracy_mean"])
    others = [row for row in rows if row is not best]
    judged = comparison.told_apart([(val_accuracy_spread(best["metrics"]), val_accuracy_spread(row["metrics"]))
                                    for row in others], tolerances)
    said = {best["point"]: "best"}
    for row, verdict in zip(others, judged):
        if verdict.apart is None:
            said[row["point"]] = "one seed: no spread to judge by"
        elif verdict.apart:
            said[row["point"]] = f"beaten (−{verdict.difference:.4f} > {verdict.allowed:.4f})"
        else:
            said[row["point"]] = f"not told apart (−{verdict.difference:.4f} ≤ {verdict.allowed:.4f})"
    return best, said


def table_markdown(points: list[Point], rows: list[dict], variant: str, shares: int | None,
                   tolerances: comparison.Tolerances) -> tuple[str, dict]:
    by_point = {row["point"]: row for row in rows}
    best, said = verdicts(rows, tolerances)
    keys = [key for key, _ in points[0].settings]
    header = ["point", "share", *[f"`{key.lstrip('+')}`" for key in keys], "val accuracy mean ± σ (seeds)", "min–max",
              "saved model's val accuracy", "test accuracy mean", "against the best", "experiment"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for point in points:
        values = [value for _, value in point.settings]
        row = by_point.get(point.index)
        if row is None:
            owed = f"share {point.share}/{shares}" if shares else "its share"
            missing = f"**missing** ({owed} did not push it)"
            lines.append("| " + " | ".join([str(point.index), str(point.share), *values, missing,
                                            "", "", "", "", point.name]) + " |")
            continue
        m = row["metrics"]
        low, high = row["val_accuracy_min"], row["val_accuracy_max"]
        spread_text = mean_std(m["val_accuracy_mean"], m.get("val_accuracy_std"))
        lines.append("| " + " | ".join([
            f"**{point.index}**" if row is best else str(point.index), str(point.share), *values,
            f"{spread_text} ({m.get('seeds', 1)})",
            f"{low:.4f}–{high:.4f}" if low is not None else "",
            f"{m['val_accuracy']:.4f}", f"{m['test_accuracy_mean']:.4f}", said[point.index], point.name]) + " |")
    missing = [point for point in points if point.index not in by_point]
    baselines = sorted({row["baseline"][:7] for row in rows})
    notes = []
    if best is not None:
        beaten = sum(text.startswith("beaten") for text in said.values())
        close = [str(i) for i, text in said.items() if text.startswith("not told apart")]
        verdict = ("the seed spread tells it apart from every other point" if not close and beaten == len(rows) - 1
                   else f"the seed spread does not tell it apart from point(s) {', '.join(close)}" if close
                   else "without a seed spread nothing can be said about noise")
        notes.append(f"Best: point {best['point']} ({points[best['point'] - 1].describe()}), mean validation accuracy "
                     f"{mean_std(best['metrics']['val_accuracy_mean'], best['metrics'].get('val_accuracy_std'))}; "
                     f"{verdict}.")
    if missing:
        notes.append(f"Missing: {len(missing)} of {len(points)} point(s): "
                     + "; ".join(f"{p.index} ({p.name}" + (f", share {p.share}/{shares})" if shares else ")")
                                 for p in missing) + ".")
    if len(baselines) > 1:
        notes.append(f"The points ran on different baseline commits ({', '.join(baselines)}): compare with care.")
    elif baselines:
        notes.append(f"All points ran on baseline commit {baselines[0]}.")
    text = (f"Variant `{variant}`: validation accuracy across seeds; the best by mean validation accuracy (never "
            f"test); 'beaten' when its mean is further below the best's than {tolerances.describe()} "
            "allow (the gate's rule).\n\n" + "\n".join(lines) + "\n\n" + "\n\n".join(notes) + "\n")
    summary = {"variant": variant, "k": tolerances.k, "floor": tolerances.floor,
               "false_alarm": tolerances.false_alarm, "points": len(points),
               "best": best["point"] if best else None, "missing": [p.index for p in missing],
               "rows": [{**row, "verdict": said[row["point"]]} for row in rows]}
    return text, summary


# --- entry point ------------------------------------------------------------------------------------------

def cores() -> int:
    """The cores this process may run on (a container's or taskset's limit, not the host's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m fmnist.tools.sweep", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("run", "collect"))
    parser.add_argument("--grid", required=True, help="KEY=V1,V2,... [KEY=...], as dvc exp run -S takes them")
    parser.add_argument("--name", help="experiment name prefix (default: sweep-, a hash of the grid and the commit)")
    parser.add_argument("--share", default="1/1", help="run: which share K/N of the points to run (default 1/1)")
    parser.add_argument("--shares", type=int, help="collect: the number of shares, to name who owes a missing point")
    parser.add_argument("--jobs", type=int, default=cores(), help="run: experiments at a time (default: the cores "
                        "this process may use)")
    parser.add_argument("--git-remote", default="origin", help="git remote to push to / pull from (default origin)")
    parser.add_argument("--no-push", action="store_true", help="run: keep the experiments here")
    parser.add_argument("--variant", help="collect: the variant whose metrics to compare (default: the one swept)")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    if args.shares is not None and args.shares < 1:
        parser.error("--shares must be at least 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    grid = parse_grid(args.grid)
    share = parse_share(args.share) if args.command == "run" else None  # what the user typed is checked first
    name = args.name or default_name(grid, head_commit())
    document = params.read_params_file()
    if share is not None:
        points = expand(grid, name, share[1])
        check_points(points, document)
        failed = run_share(points, share, args.jobs, None if args.no_push else args.git_remote)
        if failed:
            raise StageError(f"{len(failed)} point(s) failed: " + "; ".join(f"{p.index} ({p.name}: {p.describe()})"
                                                                           for p in failed)
                             + " — `dvc queue logs NAME` shows why; run the share again to retry")
        return
    points = expand(grid, name, args.shares or 1)
    variant = swept_variant(grid, args.variant, params.parse(VariantsParams, document.get("variants")).root)
    gates = params.parse(GatesParams, document.get("gates"))
    commits = pull_points(points, args.git_remote)
    rows = [point_result(point, commits[point.name], variant) for point in points if point.name in commits]
    text, summary = table_markdown(points, rows, variant, args.shares,
                                   comparison.Tolerances(gates.k, gates.floor, false_alarm=gates.false_alarm))
    SWEEPS_DIR.mkdir(parents=True, exist_ok=True)
    atomic.write_text(SWEEPS_DIR / f"{name}.md", f"# Sweep {name}\n\n`{args.grid}`\n\n" + text)
    atomic.write_json(SWEEPS_DIR / f"{name}.json", {"sweep": name, "grid": args.grid, **summary})
    print(text)
    print(f"wrote {SWEEPS_DIR / name}.md and .json", flush=True)
    if summary["missing"]:
        raise StageError(f"{len(summary['missing'])} point(s) missing: "
                         f"{', '.join(map(str, summary['missing']))} (see the table)")


if __name__ == "__main__":
    run(main)
