"""What every stage entry point shares: one error type for bad input, reported without a traceback."""
from __future__ import annotations

import sys
from typing import Callable, NoReturn


class StageError(Exception):
    """Bad input or a failed precondition, with a message that says what, where and what is allowed."""


def run(main: Callable[[], None]) -> NoReturn:
    """Run a stage's main(); report a StageError as one clear line and exit 1."""
    try:
        main()
    except StageError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(0)
