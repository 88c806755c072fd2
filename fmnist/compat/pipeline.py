"""The stages' uses of a library's private or internal API (pydantic, TensorFlow, CPython's import system), each
behind one small function. Stages depend on this module (dvc.yaml deps); the tools' uses are in
fmnist/compat/experiments.py, so that a change there reruns no stage.

The versions are pinned (requirements.txt), so each of these works today; an upgrade can break any of them
without a word. tests/test_compat.py holds each function to the behaviour it assumes and, when that is gone,
fails with the library, the version assumed and the symptom a user would see. The scheduled workflow
.github/workflows/latest.yml runs those tests against the newest releases.

Imports are inside the functions: a stage that needs none of these libraries does not pay for them.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any, Iterator

# --- pydantic 2 --------------------------------------------------------------------------------------------


def pydantic_error_message(error: dict[str, Any]) -> str:
    """A validation error's message as our validator wrote it. pydantic 2 prefixes the text of a ValueError
    raised in a validator with 'Value error, ' (its error type 'value_error'); the prefix is not an API."""
    return error["msg"].removeprefix("Value error, ")


# --- TensorFlow 2 ------------------------------------------------------------------------------------------


def disable_tf_op_determinism() -> None:
    """Turn TensorFlow's op determinism off again. The public API (tf.config.experimental) only enables it;
    TensorFlow's own tests switch it off with this internal function (tensorflow.python.framework.config)."""
    from tensorflow.python.framework.config import disable_op_determinism

    disable_op_determinism()


# --- CPython's import system -------------------------------------------------------------------------------


@contextlib.contextmanager
def modules_hidden(names: tuple[str, ...]) -> Iterator[None]:
    """`import X` of any of ``names`` raises ImportError meanwhile (unless X was imported already): a None in
    sys.modules is the import system's own "not available" marker (importlib's documentation)."""
    newly_hidden = [name for name in names if name not in sys.modules]
    for name in newly_hidden:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        for name in newly_hidden:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]
