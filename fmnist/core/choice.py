"""Which variant the select stage picks (params.yaml `select`): the best by a validation metric, never test.

One rule, used by the select stage (models/best, the model card), the plot stage (the confusion figure) and the
report stage, so all three always name the same variant.
"""
from __future__ import annotations

from fmnist.plumbing.errors import StageError
from fmnist.plumbing.paths import BASELINE
from fmnist.schema.reporting import SelectParams


def check_declared(names: list[str], variants: dict, key: str, allow_baseline: bool = False) -> None:
    """Every name a params section refers to must be a declared variant (or the baseline where allowed)."""
    known = [*variants, *([BASELINE] if allow_baseline else [])]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise StageError(f"params.yaml: {key} names {', '.join(map(repr, unknown))}, which "
                         f"{'is' if len(unknown) == 1 else 'are'} not declared (declared: {', '.join(known)})")


def candidates(metrics: dict[str, dict], rule: SelectParams) -> list[str]:
    """The variants `select` may choose from, in declared order: `select.candidates`, or every variant when empty.
    `metrics`: name -> its reports/metrics values (the baseline's, if there, is never a candidate)."""
    variants = [name for name in metrics if name != BASELINE]
    check_declared(rule.candidates, dict.fromkeys(variants), "select.candidates")
    return [name for name in variants if not rule.candidates or name in rule.candidates]


def best_variant(metrics: dict[str, dict], rule: SelectParams) -> str:
    """The best candidate by `select.metric` (a validation metric, never test; by default the mean validation
    accuracy across seeds, not one seed's luck), highest or lowest as the metric wants. Ties go to the first
    declared."""
    sign = 1 if rule.higher_is_better() else -1
    return max(candidates(metrics, rule), key=lambda name: sign * metrics[name][rule.metric])
