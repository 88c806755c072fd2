"""Schemas of the train section (shared by every variant) and of the variants themselves."""
from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import ConfigDict, Field, RootModel, ValidationInfo, field_validator, model_validator

from fmnist.plumbing.params import VARIANT_NAME, Section


class TrainParams(Section):
    """Shared by every variant: one place for the seed, the default batch size and the backend."""
    SECTION: ClassVar[str] = "train"

    backend: Literal["tensorflow", "jax"] = "tensorflow"
    seed: int = Field(42, ge=0, lt=2**32 - 64)
    # Seeds per variant: seed (the chapter's run, saved and evaluated), then seed + 1, ... (the spread).
    replicates: int = Field(5, ge=1, le=64)
    batch_size: int = Field(32, ge=1)
    # Speed only: batches run per compiled call. Same batches, same order, same results.
    steps_per_execution: int = Field(500, ge=1)
    # none: one device. data_parallel: Keras's distribution API (JAX only) splits each batch of the saved
    # model's fit over all local devices (fmnist/core/training.py; the README's "Growing past one machine").
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


class Augmentation(Section):
    """Random changes to the training images, one layer between Input and Flatten (fmnist.core.augmentation). They
    change the training batches only: at inference (evaluate, predict) the layer passes its input through unchanged.
    0 leaves that kind of change out."""

    rotation: float = Field(0.0, ge=0, le=0.5)  # turned up to ± this fraction of a full turn
    translation: float = Field(0.0, ge=0, lt=1)  # shifted up to ± this fraction of the height and width
    zoom: float = Field(0.0, ge=0, lt=1)  # zoomed in or out by up to this fraction
    contrast: float = Field(0.0, ge=0, le=1)  # contrast times 1 ± this
    brightness: float = Field(0.0, ge=0, le=1)  # ± this fraction of the 0-1 range

    def describe(self) -> str:
        """'random rotation ±0.03, zoom ±0.1': the changes and their rates."""
        return "random " + ", ".join(f"{name} ±{value:g}" for name, value in self.model_dump().items() if value)


class Variant(Section):
    """One model of the chapter: Flatten -> hidden layers -> Dense(10, softmax), trained as given."""

    description: str = ""
    hidden: list[Layer] = []
    optimizer: Optimizer = Optimizer(name="rmsprop")
    epochs: int = Field(ge=1, le=1000)
    batch_size: int | None = Field(None, ge=1)  # None: train.batch_size
    replicates: int | None = Field(None, ge=1, le=1000)  # seeds of this variant; None: train.replicates (make power)
    validation: bool = False  # pass the validation split to fit(), for per-epoch val_loss/val_accuracy
    callbacks: Callbacks = Callbacks()
    augmentation: Augmentation | None = None  # random changes to the training images (none: the chapter's models)

    def describe_layers(self) -> str:
        """'Dense(100, relu) + Dropout(0.3) → Dense(10, softmax)' (after Flatten)."""
        hidden = [f"Dense({layer.units}, {layer.activation})"
                  + (f" + Dropout({layer.dropout:g})" if layer.dropout else "") for layer in self.hidden]
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


# Names whose files would collide with a variant's: models/best, reports/metrics/baseline.json.
RESERVED_NAMES = {"best": "models/best is the select stage's", "baseline": "the baseline's results go by it"}


class VariantsParams(RootModel[dict[Annotated[str, Field(pattern=VARIANT_NAME)], Variant]]):
    """name -> Variant. Names become paths and stage names (train@<name>), hence the safe pattern."""
    SECTION: ClassVar[str] = "variants"

    model_config = ConfigDict(strict=True, frozen=True)

    @model_validator(mode="after")
    def _not_empty(self) -> "VariantsParams":
        if not self.root:
            raise ValueError("declare at least one variant")
        taken = [name for name in RESERVED_NAMES if name in self.root]
        if taken:
            raise ValueError(f"'{taken[0]}' is taken ({RESERVED_NAMES[taken[0]]}): choose another variant name")
        return self



# Variants that share a trajectory are trained once (fmnist/core/trajectories.py says how); which ones do is a fact
# of params.yaml alone, worked out here.
def replicates_of(spec: Variant, shared: TrainParams) -> int:
    """How many seeds the variant is trained with: its own `replicates`, else train.replicates."""
    return spec.replicates or shared.replicates


def trajectory_of(spec: Variant, shared: TrainParams) -> dict:
    """What decides a variant's weights epoch by epoch, for each of its seeds (two variants with the same share a
    trajectory)."""
    return {"hidden": [layer.model_dump() for layer in spec.hidden], "optimizer": spec.optimizer.model_dump(),
            "batch_size": spec.batch_size or shared.batch_size,
            "augmentation": spec.augmentation.model_dump() if spec.augmentation else None,
            "replicates": replicates_of(spec, shared)}


def family(name: str, variants: dict[str, Variant], shared: TrainParams) -> dict[str, Variant]:
    """The variants (in params.yaml's order, `name` among them) that share `name`'s trajectory. A family of one where
    train.distribution is not `none` (a data-parallel fit is trained alone) and for a variant with augmentation (its
    random layer's generator would have to be carried from epoch to epoch as well; none shares one today)."""
    if shared.distribution != "none" or variants[name].augmentation is not None:
        return {name: variants[name]}
    own = trajectory_of(variants[name], shared)  # holds augmentation (None here): augmented variants stay apart
    return {other: spec for other, spec in variants.items() if trajectory_of(spec, shared) == own}


def families(variants: dict[str, Variant], shared: TrainParams) -> list[list[str]]:
    """Every family of two or more, each in params.yaml's order, in the order of its first member."""
    found: list[list[str]] = []
    for name in variants:
        members = list(family(name, variants, shared))
        if len(members) > 1 and members not in found:
            found.append(members)
    return found


def describe_families(variants: dict[str, Variant], shared: TrainParams) -> str:
    """One line per family, for the params check and the docs: which variants train once, together."""
    lines = []
    for members in families(variants, shared):
        longest = max(members, key=lambda member: variants[member].epochs)
        others = ", ".join(f"{member} ({variants[member].epochs})" for member in members if member != longest)
        lines.append(f"{longest} ({variants[longest].epochs} epochs) is trained once for {others}")
    return "\n".join(lines)
