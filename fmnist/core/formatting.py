"""How numbers and versions are written wherever a user reads them: the report, the model card, the sweep table, the
tuning summary. One place, so that the same number reads the same everywhere."""
from __future__ import annotations

from importlib import metadata

import pandas as pd

LIBRARIES = ("keras", "tensorflow", "jax", "scikit-learn", "numpy", "pandas", "matplotlib", "dvc", "dvclive")


def installed_versions() -> dict[str, str]:
    """{library: version} of LIBRARIES that are installed."""
    installed = {}
    for name in LIBRARIES:
        try:
            installed[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return installed


def library_versions() -> str:
    return ", ".join(f"{name} {version}" for name, version in installed_versions().items())


def mean_std(mean: float, std) -> str:
    return f"{mean:.4f}" if std is None or pd.isna(std) else f"{mean:.4f} ± {std:.4f}"


def minus(text: str) -> str:
    return text.replace("-", "−")


def describe_params(params: dict) -> str:
    """'batch_size 64, dropout 0.0958, learning_rate 0.000302': a trial's params, three significant digits."""
    return ", ".join(f"{key} {value:.3g}" if isinstance(value, float) else f"{key} {value}"
                     for key, value in params.items())
