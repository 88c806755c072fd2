"""The one error type for bad input or a failed precondition: a stage or tool reports it as one line, no traceback;
and URLs as such a line may show them, without their secrets."""
from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

SECRET_KEYS = re.compile(r"(?i)(password|passwd|pwd|secret|token|key|signature|sig|credential)")


class StageError(Exception):
    """Bad input or a failed precondition, with a message that says what, where and what is allowed."""


def redacted(url: str) -> str:
    """The URL as it may be printed: a password in it as ***, and the values of query parameters that name a
    secret (password, token, key, signature...) as ***. A text that is not a URL comes back as it is."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:  # not a URL (a port that is not a number...): nothing known to hide; say so plainly
        return url if "@" not in url else "<a URL with credentials, not shown>"
    items = [item.partition("=") for item in parts.query.split("&") if item]
    secret_query = any(sep and SECRET_KEYS.search(key) for key, sep, _ in items)
    if password is None and not secret_query:
        return url  # as given: rebuilt, `sqlite:///x` would lose its empty host
    netloc = parts.netloc if password is None else f"{parts.username}:***@{parts.netloc.rpartition('@')[2]}"
    query = "&".join(f"{key}=***" if sep and SECRET_KEYS.search(key) else key + sep + value
                     for key, sep, value in items)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def without_credentials(url: str) -> str:
    """The URL with no user or password in it: what may be sent where they are not needed (a reachability check)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, parts.query, parts.fragment))
