"""Schema of the gates section: the metric gate's minimums and the one rule for telling two means apart (k, floor,
false_alarm), which the select and report stages use too (dvc.yaml declares them as their params)."""
from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field

from fmnist.plumbing.params import Section

GATED_METRIC = r"^[a-z][a-z0-9_]{0,63}\.[a-z][a-z0-9_.]*$"  # <metrics file stem>.<key>


class GatesParams(Section):
    """Thresholds for `python -m stages.gate` (not a pipeline stage: CI and people run it). Two means count
    as different when they differ by more than max(floor, max(k, t) * sqrt(std_a²/n_a + std_b²/n_b)), t the Welch t
    quantile of the comparison's level under Holm's method (fmnist.core.comparison)."""
    SECTION: ClassVar[str] = "gates"

    reference: str = Field("main", min_length=1)  # git ref that drops are measured against
    k: float = Field(3.0, gt=0, le=10)  # how many standard errors of the difference chance may account for
    floor: float = Field(0.002, ge=0, le=1)  # the tolerance is never tighter than this
    # The chance of any false alarm across a family of comparisons (the gate's checks; the best variant against
    # each other), shared among them by Holm's method.
    false_alarm: float = Field(0.05, gt=0, lt=1)
    fixed_tolerance: float = Field(0.005, gt=0, le=1)  # used, with a warning, where no spread is known (1 seed)
    # A minimum sits max(minimum_margin, k * std / sqrt(n)) below the mean it was set from
    # (fmnist.core.gate.derived_minimum).
    minimum_margin: float = Field(0.01, ge=0, le=1)
    # The drop each check should see (80% of the time); `python -m stages.gate --power` works out the seeds that
    # let it, at most max_replicates.
    detect: float = Field(0.01, gt=0, le=1)
    max_replicates: int = Field(20, ge=2, le=1000)
    minimum: dict[Annotated[str, Field(pattern=GATED_METRIC)], float] = Field(min_length=1)

