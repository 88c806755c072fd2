"""Choosing the Keras backend, which has to happen before anything imports keras."""
from __future__ import annotations

import os
import sys

from fmnist.stage import StageError


def use(backend: str) -> None:
    """Make ``backend`` ('tensorflow' or 'jax') the Keras backend of this process."""
    if "keras" in sys.modules:
        active = sys.modules["keras"].backend.backend()
        if active != backend:
            raise StageError(f"keras was already imported with the {active} backend; cannot switch to {backend}")
        return
    os.environ["KERAS_BACKEND"] = backend
    # Quiet TensorFlow's C++ start-up banner (errors still print) unless the user asked otherwise.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
