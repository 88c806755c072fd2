"""The schema of params.yaml, one pydantic model per stage section.

Each stage loads and validates only its own section before doing any work. Validation is strict
(no silent "0.2" -> 0.2 coercion) and unknown keys are rejected, so a typo fails loudly instead of
being ignored. Every problem is reported in one message naming the key, the value and what is allowed.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, RootModel, ValidationError, ValidationInfo,
                      field_validator, model_validator)

from fmnist.stage import StageError

PARAMS_FILE = Path("params.yaml")


class ParamsError(StageError):
    """params.yaml is missing, unreadable or fails the schema."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True)


def _n_jobs(value: int) -> int:
    if value == 0 or value < -1:
        raise ValueError("must be -1 (all cores) or a positive number of processes")
    return value


NJobs = Annotated[int, AfterValidator(_n_jobs)]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class Sha256Pins(Section):
    """The published sha256 of each of the four files; a file must match to land in data/raw."""

    train_images: Sha256 = Field(alias="train-images-idx3-ubyte.gz")
    train_labels: Sha256 = Field(alias="train-labels-idx1-ubyte.gz")
    test_images: Sha256 = Field(alias="t10k-images-idx3-ubyte.gz")
    test_labels: Sha256 = Field(alias="t10k-labels-idx1-ubyte.gz")

    def by_file_name(self) -> dict[str, str]:
        return self.model_dump(by_alias=True)


class DownloadParams(Section):
    retries: int = Field(3, ge=0, le=10)
    backoff_seconds: float = Field(1.0, ge=0, le=60)
    timeout_seconds: float = Field(30.0, gt=0, le=600)
    sha256: Sha256Pins


class PrepareParams(Section):
    test_size: float = Field(0.2, gt=0, lt=1)
    random_state: int = Field(42, ge=0, lt=2**32)


class BaselineParams(Section):
    loss: Literal["log_loss", "hinge", "modified_huber"] = "log_loss"
    max_iter: int = Field(5, ge=1)
    random_state: int = Field(42, ge=0, lt=2**32)
    cv: int = Field(5, ge=2)
    n_jobs: NJobs = -1


class TrainParams(Section):
    """Shared by every variant: one place for the seed, the default batch size and the backend."""

    backend: Literal["tensorflow", "jax"] = "tensorflow"
    seed: int = Field(42, ge=0, lt=2**32 - 64)
    # Seeds per variant: seed (the chapter's run, saved and evaluated), then seed + 1, ... (the spread).
    replicates: int = Field(5, ge=1, le=64)
    batch_size: int = Field(32, ge=1)
    # Speed only: batches run per compiled call. Same batches, same order, same results.
    steps_per_execution: int = Field(500, ge=1)
    # none: one device. data_parallel: Keras's distribution API (JAX only) splits each batch of the saved
    # model's fit over all local devices (fmnist/training.py; the README's "Growing past one machine").
    distribution: Literal["none", "data_parallel"] = "none"

    @field_validator("distribution")
    @classmethod
    def _distribution_needs_jax(cls, value: str, info: ValidationInfo) -> str:
        if value == "data_parallel" and info.data.get("backend") != "jax":
            raise ValueError("data_parallel needs train.backend: jax (Keras 3's distribution API runs on JAX only; "
                             "TensorFlow's tf.distribute is not supported here)")
        return value


class Layer(Section):
    units: int = Field(ge=1)
    activation: Literal["relu", "sigmoid", "tanh", "softmax", "linear", "elu", "gelu", "selu", "swish"]
    dropout: float = Field(0.0, ge=0, lt=1)  # rate of a Dropout layer after this one; 0 = none


# Which options each optimizer takes; the defaults are Keras's, so {name: adam} is compile(optimizer='adam').
OPTIMIZER_OPTIONS = {
    "sgd": ("learning_rate", "momentum", "nesterov"),
    "adagrad": ("learning_rate",),
    "rmsprop": ("learning_rate", "momentum"),
    "adam": ("learning_rate",),
}


OPTIMIZER_CLASS_NAMES = {"sgd": "SGD", "adagrad": "Adagrad", "rmsprop": "RMSprop", "adam": "Adam"}


class Optimizer(Section):
    name: Literal["sgd", "adagrad", "rmsprop", "adam"]
    learning_rate: float | None = Field(None, gt=0)
    momentum: float | None = Field(None, ge=0, lt=1)
    nesterov: bool | None = None

    @model_validator(mode="after")
    def _options_fit_the_optimizer(self) -> "Optimizer":
        allowed = OPTIMIZER_OPTIONS[self.name]
        for option in ("learning_rate", "momentum", "nesterov"):
            if getattr(self, option) is not None and option not in allowed:
                raise ValueError(f"option '{option}' does not apply to {self.name} (it takes: {', '.join(allowed)})")
        return self

    def options(self) -> dict[str, Any]:
        """The options given, as keyword arguments for the Keras optimizer."""
        return self.model_dump(exclude={"name"}, exclude_none=True)

    def describe(self) -> str:
        """As the chapter writes it: 'SGD(momentum=0.9, nesterov=True)', 'Adam()'."""
        options = ", ".join(f"{key}={value}" for key, value in self.options().items())
        return f"{OPTIMIZER_CLASS_NAMES[self.name]}({options})"


class Checkpoint(Section):
    """ModelCheckpoint(save_best_only=True): keep the epoch with the best monitored value."""

    monitor: Literal["val_loss", "val_accuracy"] = "val_loss"


class EarlyStopping(Section):
    monitor: Literal["val_loss", "val_accuracy"] = "val_loss"
    patience: int = Field(2, ge=0)
    restore_best_weights: bool = True


class Callbacks(Section):
    checkpoint: Checkpoint | None = None
    early_stopping: EarlyStopping | None = None


class Variant(Section):
    """One model of the chapter: Flatten -> hidden layers -> Dense(10, softmax), trained as given."""

    description: str = ""
    hidden: list[Layer] = []
    optimizer: Optimizer = Optimizer(name="rmsprop")
    epochs: int = Field(ge=1, le=1000)
    batch_size: int | None = Field(None, ge=1)  # None: train.batch_size
    validation: bool = False  # pass the validation split to fit(), for per-epoch val_loss/val_accuracy
    callbacks: Callbacks = Callbacks()

    def describe_layers(self) -> str:
        """'Dense(100, relu) + Dropout(0.3) → Dense(10, softmax)' (after Flatten)."""
        hidden = [f"Dense({l.units}, {l.activation})" + (f" + Dropout({l.dropout:g})" if l.dropout else "")
                  for l in self.hidden]
        return " → ".join([*hidden, "Dense(10, softmax)"])

    def monitor(self) -> str:
        """The validation metric that picks the best epoch: the callbacks' monitor, else val_loss."""
        chosen = self.callbacks.checkpoint or self.callbacks.early_stopping
        return chosen.monitor if chosen else "val_loss"

    def describe_callbacks(self) -> str:
        parts = []
        if self.callbacks.checkpoint:
            parts.append(f"ModelCheckpoint(best {self.callbacks.checkpoint.monitor})")
        if stopping := self.callbacks.early_stopping:
            restore = ", restore_best_weights" if stopping.restore_best_weights else ""
            parts.append(f"EarlyStopping({stopping.monitor}, patience={stopping.patience}{restore})")
        return ", ".join(parts)

    @model_validator(mode="after")
    def _callbacks_need_validation(self) -> "Variant":
        used = [name for name in ("checkpoint", "early_stopping") if getattr(self.callbacks, name) is not None]
        if used and not self.validation:
            raise ValueError(f"callbacks {', '.join(used)} monitor validation metrics: set validation: true")
        return self


VARIANT_NAME = r"^[a-z][a-z0-9_]{0,63}$"
# Names whose files would collide with a variant's: models/best, reports/metrics/baseline.json.
RESERVED_NAMES = {"best": "models/best is the select stage's", "baseline": "the baseline's results go by it"}


class VariantsParams(RootModel[dict[Annotated[str, Field(pattern=VARIANT_NAME)], Variant]]):
    """name -> Variant. Names become paths and stage names (train@<name>), hence the safe pattern."""

    model_config = ConfigDict(strict=True, frozen=True)

    @model_validator(mode="after")
    def _not_empty(self) -> "VariantsParams":
        if not self.root:
            raise ValueError("declare at least one variant")
        taken = [name for name in RESERVED_NAMES if name in self.root]
        if taken:
            raise ValueError(f"'{taken[0]}' is taken ({RESERVED_NAMES[taken[0]]}): choose another variant name")
        return self


class ChapterResult(Section):
    """A number the book reports, and which of our metrics it is comparable with."""

    metric: Literal["val_accuracy", "test_accuracy", "cv_accuracy"]
    value: float = Field(gt=0, le=1)


class ChapterParams(RootModel[dict[Annotated[str, Field(pattern=VARIANT_NAME)], ChapterResult]]):
    """variant name (or 'baseline') -> the chapter's result; variants the book has no number for are left out."""

    model_config = ConfigDict(strict=True, frozen=True)


class PlotParams(Section):
    sample_images: int = Field(10, ge=1, le=30)  # the first N training images, in one row
    # Variants drawn together in the optimizer comparison (training loss per epoch).
    optimizer_comparison: list[Annotated[str, Field(pattern=VARIANT_NAME)]] = Field(min_length=1)
    dpi: int = Field(100, ge=50, le=300)


# Validation metrics only: the test set stays unseen until the chosen model is scored on it.
SELECTION_METRICS = {  # metric -> (higher is better, in words)
    "val_accuracy_mean": (True, "mean validation accuracy across seeds"),  # not one seed's luck
    "val_accuracy": (True, "validation accuracy of seed 42"),  # the saved model's own
    "val_loss": (False, "validation loss of seed 42"),
}


class SelectParams(Section):
    """Which variant becomes models/best: the best by `metric` among `candidates` (all variants when empty)."""

    metric: Literal["val_accuracy_mean", "val_accuracy", "val_loss"] = "val_accuracy_mean"
    candidates: list[Annotated[str, Field(pattern=VARIANT_NAME)]] = []

    def higher_is_better(self) -> bool:
        return SELECTION_METRICS[self.metric][0]

    def describe(self) -> str:
        """'highest mean validation accuracy across seeds', 'lowest validation loss of seed 42'."""
        return f"{'highest' if self.higher_is_better() else 'lowest'} {SELECTION_METRICS[self.metric][1]}"


class _Range(Section):
    """A hyper-parameter drawn from low..high (both included), on a log scale if log."""

    @model_validator(mode="after")
    def _low_below_high(self):
        if self.log and self.low <= 0:
            raise ValueError(f"a log scale needs low > 0, not {self.low}")
        if self.low == self.high:
            raise ValueError(f"empty range: low = high = {self.low}; give a wider range (or fix the value in the base variant)")
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
    """`python -m fmnist.tune` (`make tune`): an Optuna study over `space`, around the variant `base`."""

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


GATED_METRIC = r"^[a-z][a-z0-9_]{0,63}\.[a-z][a-z0-9_.]*$"  # <metrics file stem>.<key>


class GatesParams(Section):
    """Thresholds for `python -m stages.gate` (not a pipeline stage: CI and people run it). Two means count
    as different when they differ by more than max(floor, k * sqrt(std_a²/n_a + std_b²/n_b))."""

    reference: str = Field("main", min_length=1)  # git ref that drops are measured against
    k: float = Field(3.0, gt=0, le=10)  # how many standard errors of the difference chance may account for
    floor: float = Field(0.002, ge=0, le=1)  # the tolerance is never tighter than this
    fixed_tolerance: float = Field(0.005, gt=0, le=1)  # used, with a warning, where no spread is known (1 seed)
    minimum: dict[Annotated[str, Field(pattern=GATED_METRIC)], float] = Field(min_length=1)


SECTIONS: dict[str, type[BaseModel]] = {
    "download": DownloadParams,
    "prepare": PrepareParams,
    "baseline": BaselineParams,
    "train": TrainParams,
    "variants": VariantsParams,
    "chapter": ChapterParams,
    "plot": PlotParams,
    "select": SelectParams,
    "tune": TuneParams,
    "gates": GatesParams,
}

def read_params_file(path: str | os.PathLike = PARAMS_FILE) -> dict[str, Any]:
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ParamsError(f"{path}: file not found (run stages from the repository root)") from None
    except yaml.YAMLError as error:
        raise ParamsError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(document, dict):
        raise ParamsError(f"{path}: expected a mapping of sections at the top level")
    return document


def load(section: str, path: str | os.PathLike = PARAMS_FILE) -> Any:
    """Load and validate one section of params.yaml."""
    return parse(section, read_params_file(path).get(section), path)


def parse(section: str, value: Any, path: str | os.PathLike = PARAMS_FILE) -> Any:
    model = SECTIONS[section]
    if value is None:
        raise ParamsError(f"{path}: section '{section}' is missing")
    try:
        return model.model_validate(value)
    except ValidationError as error:
        problems = [_describe(model, section, e) for e in error.errors()]
        raise ParamsError(f"{path}: " + "; ".join(problems)) from None


def _describe(model: type[BaseModel], section: str, error: dict[str, Any]) -> str:
    loc = error["loc"]
    key = ".".join(str(part) for part in (section, *loc) if part != "[key]")
    if loc and loc[-1] == "[key]":  # a mapping key (a variant name) failed its pattern
        return f"name '{key}' is not allowed: use lowercase letters, digits and '_', starting with a letter (at most 64)"
    if error["type"] == "extra_forbidden":
        allowed = ", ".join(_allowed_keys(model, loc[:-1]))
        return f"unknown key '{key}' (allowed keys: {allowed})"
    if error["type"] == "missing":
        return f"missing key '{key}'"
    message = error["msg"].removeprefix("Value error, ")
    return f"'{key}' = {error['input']!r} is not allowed: {message}"


def _model_in(annotation: Any) -> Any:
    """The pydantic model inside an annotation such as `Model | None` or `list[Model]`, if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return next((m for m in map(_model_in, get_args(annotation)) if m is not None), None)


def _allowed_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """The keys the schema accepts at ``loc`` (for the 'unknown key' message)."""
    for part in loc:
        if issubclass(model, RootModel):  # name -> model mapping: any key leads to the value model
            model = _model_in(model.model_fields["root"].annotation)
            continue
        if isinstance(part, int):  # an index into a list: already unwrapped by _model_in
            continue
        field = model.model_fields.get(str(part)) or next(
            (f for f in model.model_fields.values() if f.alias == part), None
        )
        model = _model_in(getattr(field, "annotation", None))
        if model is None:
            return []
    return [field.alias or name for name, field in model.model_fields.items()]


def check(path: str | os.PathLike = PARAMS_FILE) -> dict[str, Any]:
    """Validate every section of params.yaml; {section: parsed}. `make repro` runs this before DVC, which
    would otherwise start stages (and replace their outputs) before the one with the bad value rejects it."""
    document = read_params_file(path)
    return {section: parse(section, document.get(section), path) for section in SECTIONS}


def main() -> None:
    parsed = check()
    print(f"{PARAMS_FILE}: all {len(parsed)} sections valid ({len(parsed['variants'].root)} variants)")


if __name__ == "__main__":
    from fmnist.stage import run

    run(main)
