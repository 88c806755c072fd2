"""Choosing the Keras backend, which has to happen before anything imports keras, and importing it lean."""
from __future__ import annotations

import os
import sys

from fmnist.compat import pipeline as compat
from fmnist.plumbing.errors import StageError

# Packages Keras and TensorFlow import at start-up only to offer integrations this project never uses
# (scikit-learn wrappers, matplotlib image galleries, pandas DataFrame input, TFLite's JAX export), each
# behind `try: import X except ImportError`. Hidden while keras is imported, they cost nothing there, saving
# ~1.5 s of every stage's start-up; imported later by our own code (the baseline, the figures), they load
# as usual. JAX and SciPy are hidden only from TensorFlow.
OPTIONAL_EXTRAS = {"tensorflow": ("sklearn", "matplotlib", "pandas", "jax", "scipy"),
                   "jax": ("sklearn", "matplotlib", "pandas")}


def requested() -> str:
    """The backend this process was started with (a stage's child process inherits KERAS_BACKEND)."""
    return os.environ.get("KERAS_BACKEND", "tensorflow")


def choose(backend: str) -> None:
    """Make ``backend`` ('tensorflow' or 'jax') the one this process and the processes it starts will import keras
    with, without importing it yet (a child can start meanwhile: use() takes seconds)."""
    os.environ["KERAS_BACKEND"] = backend
    # Quiet TensorFlow's logging once absl is up (errors still print) unless the user asked otherwise.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def use(backend: str) -> None:
    """Make ``backend`` ('tensorflow' or 'jax') the Keras backend of this process and import keras with it."""
    if "keras" in sys.modules:
        active = sys.modules["keras"].backend.backend()
        if active != backend:
            raise StageError(f"keras was already imported with the {active} backend; cannot switch to {backend}")
        return
    choose(backend)
    with compat.modules_hidden(OPTIONAL_EXTRAS.get(backend, ())):
        import keras  # noqa: F401
