"""Schema of the tune section (the Optuna study, a tool outside the DAG). No stage reads it, so no stage depends on
this module."""
from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, model_validator

from fmnist.plumbing.params import VARIANT_NAME, Section


class _Range(Section):
    """A hyper-parameter drawn from low..high (both included), on a log scale if log."""

    @model_validator(mode="after")
    def _low_below_high(self):
        if self.log and self.low <= 0:
            raise ValueError(f"a log scale needs low > 0, not {self.low}")
        if self.low == self.high:
            raise ValueError(f"empty range: low = high = {self.low}; give a wider range "
                             "(or fix the value in the base variant)")
        if self.low > self.high:
            raise ValueError(f"inverted range: low {self.low} is above high {self.high}")
        return self


class IntRange(_Range):
    low: int = Field(ge=1)
    high: int = Field(ge=1)
    log: bool = False


class FloatRange(_Range):
    low: float = Field(ge=0)
    high: float = Field(ge=0)
    log: bool = False


class OptimizerChoices(Section):
    choices: list[Literal["sgd", "adagrad", "rmsprop", "adam"]] = Field(min_length=1)


class BatchSizeChoices(Section):
    choices: list[Annotated[int, Field(ge=1)]] = Field(min_length=1)


class Dropout(FloatRange):
    high: float = Field(lt=1)


class SearchSpace(Section):
    """The hyper-parameters a trial draws; any left out keep the base variant's value. units and dropout apply to
    every hidden layer; epochs is the most a trial may train, EarlyStopping(val_loss, tune.patience) ends it sooner."""

    units: IntRange | None = None
    dropout: Dropout | None = None
    optimizer: OptimizerChoices | None = None
    learning_rate: FloatRange | None = None
    batch_size: BatchSizeChoices | None = None
    epochs: IntRange | None = None


class Pruner(Section):
    """MedianPruner: a trial whose validation loss at an epoch is worse than the median of earlier trials' at the
    same epoch is stopped there (after `startup_trials` trials and `warmup_epochs` epochs). none: never."""

    name: Literal["median", "none"] = "median"
    startup_trials: int = Field(5, ge=0)
    warmup_epochs: int = Field(2, ge=0)


class TuneParams(Section):
    """`python -m fmnist.tools.tune` (`make tune`): an Optuna study over `space`, around the variant `base`."""
    SECTION: ClassVar[str] = "tune"

    base: Annotated[str, Field(pattern=VARIANT_NAME)]
    trials: int = Field(30, ge=1, le=10000)  # finished (complete or pruned) trials the study runs to, over all workers
    seeds: int = Field(3, ge=1, le=16)  # a trial's value: mean validation accuracy over seeds train.seed, + 1, ...
    sampler_seed: int = Field(42, ge=0, lt=2**32)  # TPE's seed
    patience: int = Field(2, ge=0)  # EarlyStopping(val_loss, patience, restore_best_weights) in every trial
    pruner: Pruner = Pruner()
    study: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,63}$")] = "fashion-mnist"
    # Where the study lives: a SQLite file by default (kept out of git); $FMNIST_TUNE_STORAGE or --storage
    # override it, e.g. postgresql+psycopg://user@host/db for workers on several machines.
    storage: str = Field("sqlite:///tuning/study.db", min_length=1)
    space: SearchSpace
