"""Reading params.yaml: one section at a time, validated against its schema (fmnist/schema/), with every
problem reported in one message naming the key, the value and what is allowed.

Validation is strict (no silent "0.2" -> 0.2 coercion) and unknown keys are rejected, so a typo fails loudly
instead of being ignored: a value is passed on unchanged or refused. That is why this module is
result-neutral plumbing (fmnist/tools/deps.py) while the schemas, whose defaults change results, are stage deps.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar, get_args

import yaml
from pydantic import BaseModel, ConfigDict, RootModel, ValidationError

from fmnist.compat import pipeline as compat
from fmnist.plumbing.errors import StageError

PARAMS_FILE = Path("params.yaml")
VARIANT_NAME = r"^[a-z][a-z0-9_]{0,63}$"  # variant names become paths and stage names (train@<name>)


class ParamsError(StageError):
    """params.yaml is missing, unreadable or fails the schema."""


class Section(BaseModel):
    """A mapping section (or a part of one) of params.yaml. SECTION names the top-level key it is read from."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True)
    SECTION: ClassVar[str] = ""


# libyaml's parser where PyYAML has it (its wheels do): the same objects, 15 -> 2 ms for ours; every stage reads
# params.yaml a few times. A file it refuses is parsed again by the Python one, whose message quotes the line.
_FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_yaml(text: str) -> Any:
    """yaml.safe_load(text), sooner."""
    try:
        return yaml.load(text, Loader=_FAST_LOADER)
    except yaml.YAMLError:
        return yaml.safe_load(text)


def read_params_file(path: str | os.PathLike = PARAMS_FILE) -> dict[str, Any]:
    path = Path(path)
    try:
        document = parse_yaml(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ParamsError(f"{path}: file not found (run stages from the repository root)") from None
    except yaml.YAMLError as error:
        raise ParamsError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(document, dict):
        raise ParamsError(f"{path}: expected a mapping of sections at the top level")
    return document


def load(model: type[BaseModel], path: str | os.PathLike = PARAMS_FILE) -> Any:
    """Load and validate the section of params.yaml that `model` (a schema with SECTION) describes."""
    return parse(model, read_params_file(path).get(model.SECTION), path)


def parse(model: type[BaseModel], value: Any, path: str | os.PathLike = PARAMS_FILE) -> Any:
    section = model.SECTION
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
        return (f"name '{key}' is not allowed: use lowercase letters, digits and '_', starting with a letter "
                "(at most 64)")
    if error["type"] == "extra_forbidden":
        allowed = ", ".join(_allowed_keys(model, loc[:-1]))
        return f"unknown key '{key}' (allowed keys: {allowed})"
    if error["type"] == "missing":
        return f"missing key '{key}'"
    return f"'{key}' = {error['input']!r} is not allowed: {compat.pydantic_error_message(error)}"


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
