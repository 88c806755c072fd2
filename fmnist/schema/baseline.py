"""Schema of the baseline section: the chapter's SGDClassifier and its cross-validation."""
from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, Field

from fmnist.plumbing.params import Section


def _n_jobs(value: int) -> int:
    if value == 0 or value < -1:
        raise ValueError("must be -1 (all cores) or a positive number of processes")
    return value


NJobs = Annotated[int, AfterValidator(_n_jobs)]

class BaselineParams(Section):
    SECTION: ClassVar[str] = "baseline"
    loss: Literal["log_loss", "hinge", "modified_huber"] = "log_loss"
    max_iter: int = Field(5, ge=1)
    random_state: int = Field(42, ge=0, lt=2**32)
    cv: int = Field(5, ge=2)
    n_jobs: NJobs = -1

