"""The tools' (tune, sweep) uses of a library's private or internal API (DVC, ruamel.yaml), each behind one small
function; no stage imports this module. Held to the versions they assume by tests/test_compat.py, like
fmnist/compat/pipeline.py.
"""

from __future__ import annotations

import re

# --- DVC 3 -------------------------------------------------------------------------------------------------

# Where DVC keeps experiments: refs/exps/<baseline commit[:2]>/<baseline commit[2:]>/<name>; other refs under
# refs/exps (refs/exps/celery/..., refs/exps/exec/...) are DVC's queue and runner bookkeeping.
EXP_REFS = "refs/exps"


def experiment_baseline_of_ref(ref: str) -> str | None:
    """The baseline commit of an experiment's git ref (refs/exps/<2>/<38>/<name>), or None for DVC's other refs."""
    parts = ref.split("/")
    if experiment_name_of_ref(ref) is None:
        return None
    return parts[2] + parts[3]


def experiment_name_of_ref(ref: str) -> str | None:
    """The experiment name a git ref under refs/exps stands for, or None for DVC's other refs there."""
    parts = ref.split("/")
    if len(parts) == 5 and parts[:2] == ["refs", "exps"] and len(parts[2]) == 2 and len(parts[3]) == 38:
        return parts[4]
    return None


def queue_has_queued(status_text: str) -> bool:
    """Whether `dvc queue status` (its table; it has no --json) lists an experiment waiting to run."""
    return re.search(r"\bQueued\b", status_text) is not None


def open_repo(root: str | None = None):
    """dvc.repo.Repo: DVC's Python object for a repository (not part of dvc.api)."""
    from dvc.repo import Repo

    return Repo(root)


def missing_outputs(repo) -> list[str]:
    """The pipeline's outputs (every stage's outs) that are not in the workspace: Repo.index.outs, Output.exists."""
    return [str(out) for out in repo.index.outs if not out.exists]


def track(repo, path: str) -> None:
    """`dvc add PATH` from Python (Repo.add): the file's current content goes to the cache and PATH.dvc. Without
    DVC's "To track the changes with git, run ..." (Repo.scm_context.quiet): the caller says what to commit."""
    repo.scm_context.quiet = True
    repo.add(path)


def save_experiment(repo, name: str, include_untracked: list[str], message: str) -> None:
    """`dvc exp save --force --name NAME --include-untracked PATH... --message M`, from Python:
    Repo.experiments.save (the command line has the same options; the Python call spares a process)."""
    repo.experiments.save(name=name, force=True, include_untracked=include_untracked, message=message)


# --- ruamel.yaml -------------------------------------------------------------------------------------------


def _comment_slot(holder) -> int:
    """Where ruamel keeps the comment after an item: a mapping's [.., .., after, ..], a sequence's [after, ..]."""
    return 2 if isinstance(holder, dict) else 0


def take_comment_after(holder, key):
    """Remove and return the comment (and blank lines) ruamel attaches after holder[key]; None if there is none.
    ruamel keeps them in the private comment attribute `.ca.items`."""
    tokens = holder.ca.items.get(key)
    slot = _comment_slot(holder)
    if not tokens or tokens[slot] is None:
        return None
    token, tokens[slot] = tokens[slot], None
    return token


def put_comment_after(holder, key, token) -> None:
    """Attach a comment taken by take_comment_after after holder[key]."""
    if token is None:
        return
    slot = _comment_slot(holder)
    tokens = holder.ca.items.setdefault(key, [None, None, None, None] if slot == 2 else [None, None])
    tokens[slot] = token
