"""The one error type for bad input or a failed precondition: a stage or tool reports it as one line, no traceback."""


class StageError(Exception):
    """Bad input or a failed precondition, with a message that says what, where and what is allowed."""
