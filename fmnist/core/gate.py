"""Metric gates: the committed metrics against thresholds in params.yaml `gates`, and against a git ref.

Gated metrics are means across seeds (`softmax.val_accuracy_mean`; the baseline's `cv_accuracy` is a mean
across its CV folds). Two means count as different only when fmnist.core.spread.told_apart, the one rule every
comparison uses, tells them apart by both sides' measured spreads, with Holm's method holding the
family-wise false alarm to gates.false_alarm. Where no spread can be estimated (one seed),
the gate says so and uses the stated fixed tolerance instead.

The numbers come from DVC itself (`dvc metrics show --json`, `dvc metrics diff --all --json`), so the
gate sees exactly what `dvc metrics` shows a user. A metric is named `<file>.<key>`: `checkpoint.val_accuracy`
is key `val_accuracy` of reports/metrics/checkpoint.json. Anything the gate cannot check (a missing file,
an unknown metric, a ref that does not exist) is a failure with its reason, never a pass.
"""
from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fmnist.core import comparison, results
from fmnist.core.comparison import POWER, WORDS, Sight, Tolerances, Verdict
from fmnist.core.spread import Spread
from fmnist.plumbing import paths
from fmnist.plumbing.errors import StageError
from fmnist.plumbing.paths import BASELINE
from fmnist.plumbing.processes import command

SINGLE_SEED_KEYS = ("val_accuracy", "test_accuracy")  # the chapter seed's own values, beside the means


@dataclass
class Check:
    metric: str
    value: float | None
    kind: str  # the table column: a key of the headers given to table()
    rule: str  # what the value was held against, e.g. ">= 0.875" or "0.8826 (-0.0010, allowed -0.0057)"
    passed: bool
    reason: str = ""  # why it failed, for the summary line
    spread: Spread | None = None  # the value's seed spread, for the table's value column
    sight: Sight | None = None  # a drop or reproduce check's comparison, with what it could see


def _dvc(*args: str) -> str:
    """Run `dvc <args>` from this environment; a DVC error becomes a StageError with DVC's message."""
    return command([sys.executable, "-m", "dvc", *args], f"`dvc {' '.join(args)}`")


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
    return metrics_shown(json.loads(_dvc("metrics", "show", "--json")))


def metrics_shown(shown: dict) -> dict[str, object]:
    """`<file>.<key>` -> value from `dvc metrics show --json`; a file DVC could not read is a StageError."""
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
    return metrics_before(json.loads(_dvc("metrics", "diff", ref, "--all", "--json")))


def metrics_before(diff: dict) -> dict[str, object]:
    """`<file>.<key>` -> the old side of `dvc metrics diff --all --json` (None where the ref had no such metric)."""
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
                                "" if passed else f"{value:.4f} is below the minimum {threshold}",
                                spread_of(metric, current)))
    return checks


def derived_minimum(spread: Spread, k: float, margin: float) -> float:
    """The rule params.yaml's minimums follow: max(margin, k * std / sqrt(n)) below the mean, rounded down to
    3 decimals (just `margin` below it when there is no spread)."""
    below = margin if not spread.estimable else max(margin, k * spread.std / math.sqrt(spread.n))
    return math.floor((spread.mean - below) * 1000 + 1e-9) / 1000


GATED_KEY = {BASELINE: "cv_accuracy"}  # the key a new minimum is suggested for; a variant's: val_accuracy_mean


def check_coverage(gated: list[str], minimum: dict[str, float], current: dict[str, object], k: float,
                   margin: float) -> list[Check]:
    """Every name in `gated` (the baseline and each variant of params.yaml) must have a minimum in gates.minimum:
    a variant added without one would otherwise pass every gate unseen. The failure suggests the line to add,
    derived by the rule from the current metrics when there are any."""
    covered = {metric.partition(".")[0] for metric in minimum}
    checks = []
    for name in gated:
        if name in covered:
            continue
        metric = f"{name}.{GATED_KEY.get(name, 'val_accuracy_mean')}"
        spread = spread_of(metric, current)
        hint = (f"add `{metric}: {derived_minimum(spread, k, margin)}` (max({margin}, {k:g} std/sqrt(n)) below "
                f"its mean {spread.mean:.4f})" if spread
                else f"add a `{metric}:` minimum once {paths.metrics_file(name)} exists")
        checks.append(Check(metric, spread.mean if spread else None, "minimum", "no minimum", False,
                            f"no minimum in params.yaml gates.minimum, so nothing gates it: {hint}", spread))
    return checks


def spread_of(metric: str, metrics: dict[str, object]) -> Spread | None:
    """The metric's value as a Spread: a mean (`<x>_mean`, or the baseline's `cv_accuracy`) with its `<x>_std`
    sibling and the file's count, `seeds` (variants) or `cv_folds` (the baseline); any other value (one seed's,
    the baseline's single fit) as n=1 with no spread. None if the value is not a number."""
    value = metrics.get(metric)
    if not _is_number(value):
        return None
    stem, _, key = metric.partition(".")
    base = key.removesuffix("_mean")
    one_seed = base == key and f"{stem}.{key}_mean" in metrics  # one seed's value, beside the mean across seeds
    std = None if one_seed else metrics.get(f"{stem}.{base}_std")
    count = metrics.get(f"{stem}.seeds", metrics.get(f"{stem}.cv_folds", 1))
    n = int(count) if _is_number(count) and count >= 1 and _is_number(std) else 1
    return Spread(float(value), float(std) if n >= 2 else None, n)


def _fixed(verdict: Verdict, now: Spread, then: Spread) -> str:
    """'' when the tolerance came from the spread, else the reason the fixed one was used."""
    return f"no spread (n={now.n} now, n={then.n} then): fixed" if verdict.fixed else ""


def check_drops(metrics: list[str], current: dict[str, object], reference: dict[str, object], ref: str,
                tolerances: Tolerances) -> tuple[list[Check], list[str]]:
    """No mean may fall below its value at ref by more than chance allows (the spread tolerance). A metric
    that ref does not have yet (a new variant) has nothing to drop from and passes, saying so. Returns the
    checks and a warning for each metric checked against the fixed tolerance."""
    checks, warnings, compared = [], [], []
    for metric in metrics:
        now = spread_of(metric, current)
        if now is None:
            continue  # already a failure of check_minimums, with its reason
        then = spread_of(metric, reference)
        if then is None:
            checks.append(Check(metric, now.mean, "drop", f"new, not at {ref}", True, spread=now))
        else:
            compared.append((metric, now, then))
    seen_all = comparison.sights([(now, then) for _, now, then in compared], tolerances, only_lower=True)
    for (metric, now, then), seen in zip(compared, seen_all):
        verdict = seen.verdict
        allowed, change, fixed = verdict.allowed, verdict.difference, _fixed(verdict, now, then)
        if fixed:
            warnings.append(f"{metric}: {fixed} tolerance {allowed} (gates.fixed_tolerance); "
                            "train more than one seed (train.replicates) to measure the spread")
        passed = not verdict.a_lower
        rule = f"{then.mean:.4f} ({change:+.4f}, allowed -{allowed:.4f}{' fixed' if fixed else ''}" \
               f"{_detects(seen)}) {seen.word}"
        how = fixed or "gates.floor or max(gates.k, Holm t) x SE of the difference"
        checks.append(Check(metric, now.mean, "drop", rule, passed, "" if passed else
                            f"dropped {-change:.4f} from {then.mean:.4f} at {ref} (allowed {allowed:.4f}, {how})",
                            now, seen))
    return checks, warnings


def _detects(seen: Sight, sign: str = "") -> str:
    return "" if seen.detectable is None else f", detects {sign}{seen.detectable:.4f}"


def sight_lines(checks: list[Check], detect: float, false_alarm: float, most: int | None = None) -> list[str]:
    """What the drop (or reproduction) checks could see, under the table: how many of each verdict, the range of
    drops they catch with 80% power and those that cannot catch `detect` (params.yaml gates.detect), by why: short
    of seeds (make power), at the cap `most` (gates.max_replicates), or the baseline's CV folds; and the family-wise
    false alarm: held to `false_alarm` (gates.false_alarm) by Holm's method whatever else changed, and with no change
    anywhere at most the sum of each check's chance at Holm's first level."""
    compared = [check for check in checks if check.sight is not None and check.sight.verdict.allowed is not None]
    if not compared:
        return []
    reproduce = compared[0].kind == "reproduce"
    lines = []
    if not reproduce:
        counts = {word: sum(check.sight.word == word for check in compared) for word in WORDS}
        lines.append(f"{len(compared)} drop checks: " + ", ".join(f"{count} {word}" for word, count in counts.items())
                     + " (only a regression fails)")
    known = [(check.metric, check.sight.detectable) for check in compared if check.sight.detectable is not None]
    if known:
        blind = [check for check in compared
                 if check.sight.detectable is not None and check.sight.detectable > detect + 1e-12]
        short, capped, folds = [], [], []
        for check in blind:
            if check.metric == f"{BASELINE}.{GATED_KEY[BASELINE]}":
                folds.append(check.metric)
            elif most is not None and check.spread is not None and check.spread.n >= most:
                capped.append(check.metric)
            else:
                short.append(check.metric)
        named = "; ".join(f"{', '.join(metrics)} {why}" for metrics, why in (
            (short, "(make power: the seeds they need)"),
            (capped, f"(at the cap: gates.max_replicates = {most} seeds)"),
            (folds, "(a spread across CV folds, which seeds do not change)")) if metrics)
        lines.append(f"each detects, {POWER:.0%} of the time, a true {'change' if reproduce else 'drop'} of "
                     f"{min(d for _, d in known):.4f} to {max(d for _, d in known):.4f}; "
                     + (f"{len(blind)} of {len(known)} cannot see gates.detect = {detect:g}: {named}" if blind
                        else f"all see gates.detect = {detect:g}"))
    chances = [check.sight.false_alarm for check in compared]
    if None in chances:
        lines.append(f"false alarm: not known ({chances.count(None)} of {len(compared)} checks use the fixed "
                     "tolerance: no spread)")
    else:
        each = f"{min(chances):.2%}" + ("" if f"{min(chances):.4%}" == f"{max(chances):.4%}"
                                        else f" to {max(chances):.2%}")
        lines.append(f"false alarm: at most {false_alarm:.0%} across the {len(compared)} checks together "
                     f"(gates.false_alarm, held by Holm's method); with no change anywhere at most "
                     f"{min(false_alarm, sum(chances)):.1%} (each {each}: "
                     f"{'2 ' if reproduce else ''}P(T > allowed / SE) "
                     "at Holm's first level, Welch's degrees of freedom)")
    return lines


@dataclass
class Need:
    """What one gated metric needs to see gates.detect: its spread now, what it detects with the seeds it has,
    and the seeds that would let it detect `detect` (None: more than gates.max_replicates)."""
    metric: str
    spread: Spread
    detects: float
    replicates: int | None
    at_most: float  # what it detects with gates.max_replicates seeds
    folds: bool = False  # the baseline's: a spread across CV folds, which more seeds do not change


def power(metrics: list[str], current: dict[str, object], tolerances: Tolerances, detect: float,
          most: int) -> list[Need]:
    """For each gated metric with a measured spread, the seeds (replicates) per side that bring its detectable drop
    to `detect` or below, the committed std taken as the truth on both sides of a future comparison, as one of the
    family of all of them (Holm's first level)."""
    family = len(metrics)

    def detects(side: Spread) -> float:
        return comparison.detectable(side, side, tolerances, family=family, only_lower=True)

    needs = []
    for metric in metrics:
        now = spread_of(metric, current)
        if now is None or not now.estimable:
            continue
        if f"{metric.partition('.')[0]}.cv_folds" in current:  # deterministic; its spread is its folds'
            needs.append(Need(metric, now, detects(now), None, float("nan"), True))
            continue
        needs.append(Need(metric, now, detects(now),
                          comparison.replicates_to_detect(now.std, detect, tolerances, family=family, most=most),
                          detects(Spread(now.mean, now.std, most))))
    return needs


def power_table(needs: list[Need], detect: float, most: int) -> str:
    lines = [("metric", "std (n)", "detects with n", f"seeds to detect {detect:g}")]
    for need in needs:
        seeds = ("- (CV folds, not seeds)" if need.folds else str(need.replicates) if need.replicates
                 else f"> {most} (detects {need.at_most:.4f} with {most})")
        lines.append((need.metric, f"{need.spread.std:.4f} ({need.spread.n})", f"{need.detects:.4f}", seeds))
    return _columns(lines)


def power_advice(needs: list[Need], detect: float, most: int, families: Sequence[Sequence[str]] = ()) -> list[str]:
    """What to set, per variant: `variants.<name>.replicates` where its seeds cannot see `detect` (the most any of
    its gated means needs; gates.max_replicates where no number up to it can), raised to the most any member of its
    family needs (`families`: variants that share a trajectory are trained together, so with as many seeds); the
    variants that would see it with fewer; and the means that even `most` seeds do not let see it."""
    seeded = [need for need in needs if not need.folds]
    if not seeded:
        lines = ["no variant's mean has a measured spread (train.replicates is 1): nothing to work out"]
    else:
        per_variant: dict[str, list[Need]] = {}
        for need in seeded:
            per_variant.setdefault(need.metric.partition(".")[0], []).append(need)
        own = {name: max(need.replicates or most for need in its) for name, its in per_variant.items()}
        wanted = dict(own)
        joined: dict[str, list[str]] = {}  # a variant raised to its family's seeds: the members that need them
        for members in families:
            present = [member for member in members if member in own]
            top = max((own[member] for member in present), default=0)
            for member in present:
                if own[member] < top:
                    joined[member] = [other for other in present if own[other] == top]
                    wanted[member] = top
        more, fewer = [], []
        for name, its in per_variant.items():
            now = max(need.spread.n for need in its)
            if wanted[name] > now:
                said = f"now {now}: detects {max(need.detects for need in its):.4f}"
                if any(need.replicates is None for need in its):
                    said += f"; {most} (the cap) detects {max(need.at_most for need in its):.4f}"
                if name in joined:
                    said += f"; as many as {', '.join(joined[name])}, whose trajectory it shares"
                more.append(f"  variants.{name}.replicates: {wanted[name]}  # {said}")
            elif wanted[name] < now:
                fewer.append(f"{name} ({wanted[name]})")
        lines = [f"to detect {detect:g} with {POWER:.0%} power, set in params.yaml:"] + more if more else \
            [f"every variant's seeds already detect {detect:g} with {POWER:.0%} power"]
        if fewer:
            lines.append(f"would detect it with fewer seeds: {', '.join(fewer)}")
        lines += [f"{need.metric}: not even {most} seeds detect {detect:g} (gates.max_replicates); with {most} it "
                  f"detects {need.at_most:.4f}" for need in seeded if need.replicates is None]
    lines += [f"{need.metric}: its spread is across the baseline's CV folds (the fit is deterministic), which "
              f"seeds do not change; it detects {need.detects:.4f}" for need in needs if need.folds]
    return lines


def paired_lines(ref: str) -> list[str]:
    """models/best against ref's, image by image on the test split (reports/best_predictions.csv, which the select
    stage writes and git keeps): McNemar's exact test and the accuracy difference with its 95% interval. Reported,
    not gated: the drop checks gate the means. Says why where there is nothing to pair."""
    path = paths.BEST_PREDICTIONS
    if not path.is_file():
        return [f"paired: no {path} in this workspace (the select stage writes it): nothing to pair"]
    try:
        then_text = command(["git", "show", f"{ref}:{path.as_posix()}"], f"`git show {ref}:{path}`")
    except StageError:
        return [f"paired: {ref} has no {path} (made before the select stage wrote it): nothing to pair"]
    actual, now = results.read_predictions_csv(path.read_text(encoding="utf-8"), str(path))
    actual_then, then = results.read_predictions_csv(then_text, f"{ref}:{path}")
    if not np.array_equal(actual, actual_then):
        return [f"paired: {path} here and at {ref} are not the same test images (other data or split): "
                "nothing to pair"]
    pair = comparison.paired(actual, now, then)
    if pair.only_a + pair.only_b == 0:
        return [f"paired, models/best vs {ref}'s on {pair.images} test images: the same right answers on every one "
                "(McNemar p = 1)"]
    return [f"paired, models/best vs {ref}'s on {pair.images} test images: {pair.only_a} right only now, "
            f"{pair.only_b} only at {ref}; accuracy {pair.difference:+.4f} (95% interval {pair.low:+.4f} to "
            f"{pair.high:+.4f}), McNemar exact p = {pair.p_value:.3g}"]


def _spread_metrics(metrics: dict[str, object]) -> set[str]:
    """Every metric that has a spread sibling: the means (`<x>_mean` with `<x>_std`) and the baseline's CV."""
    found = set()
    for metric in metrics:
        stem, _, key = metric.partition(".")
        if key.endswith("_std"):
            base = key.removesuffix("_std")
            found.add(f"{stem}.{base}_mean" if f"{stem}.{base}_mean" in metrics else f"{stem}.{base}")
    return found


def check_reproduced(current: dict[str, object], reference: dict[str, object], ref: str,
                     tolerances: Tolerances) -> tuple[list[Check], list[str], list[str]]:
    """Every mean at ref must be reproduced within the spread tolerance, both ways. Single-seed values
    (the chapter seed's) are not held to anything: one seed's result moves with the CPU's float rounding.
    Returns the checks, notes (how many single-seed values are identical, and every other difference)
    and warnings (fixed tolerances)."""
    checks, notes, warnings = [], [], []
    gated = _spread_metrics(current) | _spread_metrics(reference)
    sides = {metric: (spread_of(metric, current), spread_of(metric, reference)) for metric in sorted(gated)}
    compared = [metric for metric, (now, then) in sides.items() if now is not None and then is not None]
    seen_all = dict(zip(compared, comparison.sights([sides[metric] for metric in compared], tolerances)))
    for metric, (now, then) in sides.items():
        if metric not in seen_all:
            where = "in this run" if now is None else f"at {ref}"
            checks.append(Check(metric, now.mean if now else None, "reproduce", "missing", False,
                                f"missing {where}", now))
            continue
        seen = seen_all[metric]
        verdict = seen.verdict
        allowed, difference, fixed = verdict.allowed, verdict.difference, _fixed(verdict, now, then)
        if fixed:
            warnings.append(f"{metric}: {fixed} tolerance {allowed} (gates.fixed_tolerance)")
        passed = not verdict.apart
        checks.append(Check(metric, now.mean, "reproduce",
                            f"{then.mean:.4f} ({difference:+.4f}, within ±{allowed:.4f}{' fixed' if fixed else ''}"
                            f"{_detects(seen, '±')})",
                            passed, "" if passed else f"differs by {difference:+.4f} from {then.mean:.4f} at {ref} "
                            f"(allowed ±{allowed:.4f})", now, seen))
    statistics = {f"{metric.partition('.')[0]}.{suffix}" for metric in gated
                  for suffix in ("seeds", "cv_folds", "val_accuracy_std", "test_accuracy_std", "cv_accuracy_std")}
    single = sorted(m for m in set(current) | set(reference) if m.partition(".")[2] in SINGLE_SEED_KEYS
                    and m not in gated)
    moved = [m for m in single if current.get(m) != reference.get(m)]
    notes.append(f"single-seed accuracies (the chapter seed's run, the baseline's single fit): "
                 f"{len(single) - len(moved)} of {len(single)} identical to {ref}"
                 + ("; the rest moved (one seed's noise, not gated):" if moved else ""))
    for metric in moved:
        old, value = reference.get(metric), current.get(metric)
        notes.append(f"  {metric}: {_short(old)} at {ref} -> {_short(value)} now")
    for metric in sorted(set(reference) | set(current)):
        if metric in gated or metric in single or metric in statistics:
            continue
        if reference.get(metric) != current.get(metric):
            notes.append(f"{metric}: {reference.get(metric)!r} at {ref} -> {current.get(metric)!r} now")
    return checks, notes, warnings


def read_run_log(path: Path) -> list[str]:
    """The stages a run executed, in order, from the file stages append to ($FMNIST_RUN_LOG): a line each, the stage's
    name first (its seconds after it)."""
    try:
        return [line.split()[0] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except FileNotFoundError:
        raise StageError(f"{path}: not found: no stage of this run completed "
                         "(was $FMNIST_RUN_LOG set for it?)") from None


def check_ran(checks: list[Check], ran: list[str], log: Path) -> list[Check]:
    """A reproduction compares a stage's metrics only if the stage ran: else it would compare a committed file
    with itself (DVC skips a stage whose outputs are all in git and unchanged)."""
    compared = sorted({check.metric.partition(".")[0] for check in checks})
    return [Check(f"{name}.*", None, "reproduce", "not run", False,
                  f"stage {paths.stage_for(name)} did not run in this reproduction (not in {log}), so its metrics "
                  "would be compared with themselves: run it (dvc repro --force)")
            for name in compared if paths.stage_for(name) not in ran]


def _short(value) -> str:
    return f"{value:.4f}" if _is_number(value) else repr(value)


def table(checks: list[Check], headers: dict[str, str]) -> str:
    """One row per metric (in the order checked): its value, one column per kind of check, the result."""
    rows: dict[str, dict] = {}
    for check in checks:
        row = rows.setdefault(check.metric, {"value": check.value, "spread": check.spread, "passed": True})
        # A drop's verdict says it (only "regression" fails); other checks end in ok or FAIL.
        said = check.kind == "drop" and check.sight is not None and check.sight.verdict.allowed is not None
        row[check.kind] = check.rule + ("" if said and check.passed else " ok" if check.passed else " FAIL")
        row["passed"] = row["passed"] and check.passed
    kinds = [kind for kind in headers if any(check.kind == kind for check in checks)]
    lines = [("metric", "mean ± std (n)", *(headers[kind] for kind in kinds), "result")]
    for metric, row in rows.items():
        lines.append((metric, _value_cell(row["value"], row["spread"]), *(row.get(kind, "") for kind in kinds),
                      "pass" if row["passed"] else "FAIL"))
    return _columns(lines)


def _columns(lines: list[tuple[str, ...]]) -> str:
    """Rows of cells as aligned columns, a rule of dashes under the first (the header)."""
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    text = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in lines]
    text.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(text)


def _value_cell(value, spread: Spread | None) -> str:
    if value is None:
        return "missing"
    if spread is None:
        return f"{value:.4f}" if isinstance(value, float) else str(value)
    if not spread.estimable:
        return f"{spread.mean:.4f} (n={spread.n}, no spread)"
    return f"{spread.mean:.4f} ± {spread.std:.4f} ({spread.n})"


def failures(checks: list[Check]) -> list[str]:
    return [f"{c.metric}: {c.reason}" for c in checks if not c.passed]
