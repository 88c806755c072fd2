"""Every section's schema by name: for checking the whole of params.yaml (`python -m fmnist.schema`) and for
tools that take section names from the user (a sweep's grid keys). No stage imports this module."""
from __future__ import annotations

import os
from typing import Any

from fmnist.plumbing import params
from fmnist.schema.baseline import BaselineParams
from fmnist.schema.data import DownloadParams, PrepareParams
from fmnist.schema.gates import GatesParams
from fmnist.schema.reporting import AssessParams, ChapterParams, PlotParams, SelectParams
from fmnist.schema.tools import TuneParams
from fmnist.schema.training import TrainParams, VariantsParams

SECTIONS = {model.SECTION: model for model in (DownloadParams, PrepareParams, BaselineParams, TrainParams,
                                                 VariantsParams, ChapterParams, PlotParams, SelectParams,
                                                 AssessParams, TuneParams, GatesParams)}


def check(path: str | os.PathLike = params.PARAMS_FILE) -> dict[str, Any]:
    """Validate every section of params.yaml; {section: parsed}."""
    document = params.read_params_file(path)
    return {section: params.parse(model, document.get(section), path) for section, model in SECTIONS.items()}

