"""Metric gates: the committed metrics against thresholds in params.yaml `gates`, and against a git ref.

The numbers come from DVC itself (`dvc metrics show --json`, `dvc metrics diff --all --json`), so the
gate sees exactly what `dvc metrics` shows a user. A metric is named `<file>.<key>`: `checkpoint.val_accuracy`
is key `val_accuracy` of reports/metrics/checkpoint.json. Anything the gate cannot check (a missing file,
an unknown metric, a ref that does not exist) is a failure with its reason, never a pass.
"""
from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from fmnist import paths
from fmnist.stage import StageError

ACCURACY_KEYS = ("cv_accuracy", "val_accuracy", "test_accuracy")


@dataclass
class Check:
    metric: str
    value: float | None
    kind: str  # the table column: a key of the headers given to table()
    rule: str  # what the value was held against, e.g. ">= 0.875" or "0.8826 (+0.0000)"
    passed: bool
    reason: str = ""  # why it failed, for the summary line


def _dvc(*args: str) -> str:
    """Run `dvc <args>` from this environment; a DVC error becomes a StageError with DVC's message."""
    result = subprocess.run([sys.executable, "-m", "dvc", *args], capture_output=True, text=True)
    if result.returncode != 0:
        message = (result.stderr.strip() or result.stdout.strip()).splitlines()
        raise StageError(f"`dvc {' '.join(args)}` failed: {message[-1] if message else f'exit {result.returncode}'}")
    return result.stdout


def _metric_name(path: str, key: str) -> str:
    return f"{Path(path).stem}.{key}"


def _flatten(prefix: str, value, out: dict) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}" if prefix else key, inner, out)
    else:
        out[prefix] = value


def current_metrics() -> dict[str, object]:
    """`<file>.<key>` -> value for every metric `dvc metrics show` lists in the workspace."""
    shown = json.loads(_dvc("metrics", "show", "--json"))
    metrics: dict[str, object] = {}
    for revision in shown.values():
        for path, entry in revision.get("data", {}).items():
            if "error" in entry:
                raise StageError(f"{path}: DVC could not read it ({entry['error']})")
            flat: dict = {}
            _flatten("", entry.get("data", {}), flat)
            metrics.update({_metric_name(path, key): value for key, value in flat.items()})
    return metrics


def metrics_at(ref: str) -> dict[str, object]:
    """`<file>.<key>` -> value at git `ref` (None where the ref has no such metric)."""
    diff = json.loads(_dvc("metrics", "diff", ref, "--all", "--json"))
    return {_metric_name(path, key): change.get("old") for path, keys in diff.items() for key, change in keys.items()}


def _missing_reason(metric: str, present: dict[str, object]) -> str:
    stem, _, key = metric.partition(".")
    keys = sorted(k.partition(".")[2] for k in present if k.startswith(f"{stem}."))
    if not keys:
        return (f"{paths.metrics_file(stem)} not found (run `dvc repro {paths.stage_for(stem)}`, "
                "or fix the name in params.yaml gates)")
    return f"unknown metric '{key}' in {paths.metrics_file(stem)} (it has: {', '.join(keys)})"


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_minimums(minimum: dict[str, float], current: dict[str, object]) -> list[Check]:
    checks = []
    for metric, threshold in minimum.items():
        value = current.get(metric)
        if not _is_number(value):
            reason = _missing_reason(metric, current) if metric not in current else f"not a number ({value!r})"
            checks.append(Check(metric, None, "minimum", f">= {threshold}", False, reason))
        else:
            passed = value >= threshold
            checks.append(Check(metric, value, "minimum", f">= {threshold}", passed,
                                "" if passed else f"{value:.4f} is below the minimum {threshold}"))
    return checks


def check_drops(metrics: list[str], current: dict[str, object], reference: dict[str, object], ref: str,
                max_drop: float) -> list[Check]:
    """No metric may fall more than max_drop below its value at ref. A metric that ref does not have yet
    (a new variant) has nothing to drop from and passes, saying so."""
    checks = []
    for metric in metrics:
        value, old = current.get(metric), reference.get(metric)
        if not _is_number(value):
            continue  # already a failure of check_minimums, with its reason
        if not _is_number(old):
            checks.append(Check(metric, value, "drop", f"new, not at {ref}", True))
            continue
        drop = old - value
        passed = drop <= max_drop + 1e-12  # float noise must not fail an exact-threshold drop
        checks.append(Check(metric, value, "drop", f"{old:.4f} ({value - old:+.4f})", passed,
                            "" if passed else f"dropped {drop:.4f} from {old:.4f} at {ref} (allowed {max_drop})"))
    return checks


def check_reproduced(current: dict[str, object], reference: dict[str, object], ref: str,
                     tolerance: float) -> tuple[list[Check], list[str]]:
    """Every accuracy at ref must be reproduced within tolerance (both ways). Returns the checks and a
    line for every other metric that differs at all (losses, epochs), for the record."""
    checks, other_differences = [], []
    for metric in sorted(set(reference) | set(current)):
        old, value = reference.get(metric), current.get(metric)
        is_accuracy = metric.partition(".")[2] in ACCURACY_KEYS
        if is_accuracy:
            if not (_is_number(old) and _is_number(value)):
                where = "in this run" if not _is_number(value) else f"at {ref}"
                checks.append(Check(metric, value if _is_number(value) else None, "reproduce", "missing",
                                    False, f"missing {where}"))
                continue
            difference = value - old
            passed = abs(difference) <= tolerance + 1e-12
            checks.append(Check(metric, value, "reproduce", f"{old:.4f} ({difference:+.4f})", passed,
                                "" if passed else f"differs by {difference:+.4f} from {old:.4f} at {ref}"))
        elif old != value:
            other_differences.append(f"{metric}: {old!r} at {ref} -> {value!r} now")
    return checks, other_differences


def table(checks: list[Check], headers: dict[str, str]) -> str:
    """One row per metric (in the order checked): its value, one column per kind of check, the result."""
    rows: dict[str, dict] = {}
    for check in checks:
        row = rows.setdefault(check.metric, {"value": check.value, "passed": True})
        row[check.kind] = f"{check.rule} {'ok' if check.passed else 'FAIL'}"
        row["passed"] = row["passed"] and check.passed
    kinds = [kind for kind in headers if any(check.kind == kind for check in checks)]
    lines = [("metric", "value", *(headers[kind] for kind in kinds), "result")]
    for metric, row in rows.items():
        value = "missing" if row["value"] is None else f"{row['value']:.4f}" if isinstance(row["value"], float) \
            else str(row["value"])
        lines.append((metric, value, *(row.get(kind, "") for kind in kinds), "pass" if row["passed"] else "FAIL"))
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    text = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in lines]
    text.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(text)


def failures(checks: list[Check]) -> list[str]:
    return [f"{c.metric}: {c.reason}" for c in checks if not c.passed]
