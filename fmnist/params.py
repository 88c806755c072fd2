"""The schema of params.yaml, one pydantic model per stage section.

Each stage loads and validates only its own section before doing any work. Validation is strict
(no silent "0.2" -> 0.2 coercion) and unknown keys are rejected, so a typo fails loudly instead of
being ignored. Every problem is reported in one message naming the key, the value and what is allowed.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

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


SECTIONS: dict[str, type[Section]] = {
    "download": DownloadParams,
    "prepare": PrepareParams,
    "baseline": BaselineParams,
}

S = TypeVar("S", bound=Section)


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


def load(section: str, path: str | os.PathLike = PARAMS_FILE) -> Section:
    """Load and validate one section of params.yaml."""
    return parse(section, read_params_file(path).get(section), path)


def parse(section: str, value: Any, path: str | os.PathLike = PARAMS_FILE) -> Section:
    model = SECTIONS[section]
    if value is None:
        raise ParamsError(f"{path}: section '{section}' is missing")
    try:
        return model.model_validate(value)
    except ValidationError as error:
        problems = [_describe(model, section, e) for e in error.errors()]
        raise ParamsError(f"{path}: " + "; ".join(problems)) from None


def _describe(model: type[BaseModel], section: str, error: dict[str, Any]) -> str:
    key = ".".join(str(part) for part in (section, *error["loc"]))
    if error["type"] == "extra_forbidden":
        allowed = ", ".join(_allowed_keys(model, error["loc"][:-1]))
        return f"unknown key '{key}' (allowed keys: {allowed})"
    if error["type"] == "missing":
        return f"missing key '{key}'"
    message = error["msg"].removeprefix("Value error, ")
    return f"'{key}' = {error['input']!r} is not allowed: {message}"


def _allowed_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """The keys the schema accepts at ``loc`` (for the 'unknown key' message)."""
    for part in loc:
        field = model.model_fields.get(str(part)) or next(
            (f for f in model.model_fields.values() if f.alias == part), None
        )
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return [field.alias or name for name, field in model.model_fields.items()]
