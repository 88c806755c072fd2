"""The code a stage's results depend on, from its imports, against what dvc.yaml declares.

DVC reruns a stage when a declared dep changes, so "up to date" is only true when dvc.yaml lists every
project module the stage's command runs, directly or through other modules. This walks the imports (every
`import` statement anywhere in a module, inside functions too) from the stage's command module and
compares the project files it reaches with the stage's `deps`. Result-neutral plumbing is the one
exception, listed in RESULT_NEUTRAL with the reason each entry cannot change what a stage writes.

It also checks that dvc.lock holds no entry for a stage dvc.yaml no longer defines.

Usage: python -m fmnist.tools.deps      (exit 1, naming the stage and the module, when dvc.yaml is out of step)
"""
from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import yaml

# Modules that change how outputs are written or reported, never what they hold: every module of fmnist/plumbing/
# and nothing else (the folder says so; tests/test_deps.py holds the two together), each with the reason. Listed
# here and only here; tests/test_deps.py holds dvc.yaml to the import closure minus these.
RESULT_NEUTRAL = {
    "fmnist/plumbing/errors.py": "the error type for bad input; a stage that raises it writes nothing",
    "fmnist/plumbing/runner.py":
        "runs a stage's main(): exit codes, the one-line error, the record of which stages ran",
    "fmnist/plumbing/interrupts.py":
        "holds Ctrl-C back while outputs are swapped in; changes when a stage stops, not what it writes",
    "fmnist/plumbing/processes.py": "starts a command or a helper module and passes its output back unchanged",
    "fmnist/plumbing/atomic.py": "writes bytes it is given under a temporary name and renames them into place",
    "fmnist/plumbing/transaction.py": "swaps a stage's finished outputs into place together; never alters their bytes",
    "fmnist/plumbing/paths.py": "output locations, which dvc.yaml declares itself as outs",
    "fmnist/plumbing/quiet.py": "filters library chatter from standard error",
    "fmnist/plumbing/params.py": "reads params.yaml and reports what the schema rejects; strict validation passes "
                                 "a value unchanged or refuses it (the schemas with their defaults are in "
                                 "fmnist/schema/)",
}
# A package's __init__.py runs on the way to its modules; one that holds nothing but a docstring is neutral by
# construction (checked, not listed): give it code and the stages that import through it must declare it.

COMMAND = re.compile(r"python\s+-m\s+([\w.]+)")


def module_file(name: str, root: Path) -> Path | None:
    """The project file of a dotted module name (a package's __init__.py), or None if not the project's."""
    base = root / Path(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate.relative_to(root)
    return None


def _imported_names(source: str, module: str, is_package: bool) -> set[str]:
    """Every module name an import statement in `source` may load: `from a import b` gives a and a.b."""
    names: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) == "Child"
              and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant)):
            names.add(node.args[1].value)  # processes.Child(what, "module", ...) runs `python -m module`
    return names


def docstring_only(path: Path) -> bool:
    """Whether a module holds nothing but (at most) a docstring."""
    body = ast.parse(path.read_text(encoding="utf-8")).body
    return all(isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) for node in body) and len(body) <= 1


def closure(module: str, root: Path) -> set[str]:
    """Project files (relative paths) that running `python -m module` imports, the packages' __init__.py
    included (Python runs them on the way to a submodule)."""
    found: set[str] = set()
    pending = [module]
    while pending:
        name = pending.pop()
        parts = name.split(".")
        for depth in range(1, len(parts) + 1):  # a.b.c imports a, then a.b, then a.b.c
            path = module_file(".".join(parts[:depth]), root)
            if path is None or str(path) in found:
                continue
            found.add(str(path))
            pending.extend(_imported_names((root / path).read_text(encoding="utf-8"), ".".join(parts[:depth]),
                                           path.name == "__init__.py"))
    return found


def stages(root: Path) -> dict[str, dict]:
    """dvc.yaml's stages as {name: definition}; a foreach stage once, as `name@*` (its items share the deps)."""
    document = yaml.safe_load((root / "dvc.yaml").read_text(encoding="utf-8"))
    found = {}
    for name, definition in document.get("stages", {}).items():
        if "foreach" in definition:
            found[f"{name}@*"] = definition["do"]
        else:
            found[name] = definition
    return found


def _declared(definition: dict) -> set[str]:
    return {next(iter(dep)) if isinstance(dep, dict) else str(dep) for dep in definition.get("deps", [])}


def problems(root: Path) -> list[str]:
    """One line per stage whose dvc.yaml deps leave out a module its command imports (not result-neutral), or
    list a project module it no longer imports."""
    found = []
    for name, definition in stages(root).items():
        match = COMMAND.search(definition["cmd"])
        if not match:
            found.append(f"{name}: command '{definition['cmd']}' is not 'python -m MODULE': cannot follow its imports")
            continue
        imported = closure(match.group(1), root)
        declared = _declared(definition)
        missing = sorted(path for path in imported - declared - set(RESULT_NEUTRAL)
                         if not (path.endswith("__init__.py") and docstring_only(root / path)))
        stale = sorted(d for d in declared if d.endswith(".py") and d not in imported)
        for path in missing:
            found.append(f"stage '{name}' imports {path} (through {match.group(1)}), but dvc.yaml does not list "
                         "it in its deps: add it, or to fmnist/tools/deps.py RESULT_NEUTRAL with the reason it cannot "
                         "change the stage's results")
        for path in stale:
            found.append(f"stage '{name}' lists {path} in its deps, but its command no longer imports it: remove it")
    return found


def lock_problems(root: Path) -> list[str]:
    """One line per dvc.lock entry for a stage that dvc.yaml no longer defines (DVC never removes those)."""
    lock = root / "dvc.lock"
    if not lock.exists():
        return []
    locked = yaml.safe_load(lock.read_text(encoding="utf-8")).get("stages", {})
    listed = subprocess.run([sys.executable, "-m", "dvc", "stage", "list", "--name-only"], cwd=root,
                            capture_output=True, text=True, check=True).stdout.split()
    return [f"dvc.lock has an entry for stage '{name}', which dvc.yaml does not define: delete the entry"
            for name in locked if name not in listed]


def main() -> None:
    import argparse

    argparse.ArgumentParser(prog="python -m fmnist.tools.deps", description="Check that dvc.yaml declares, for every "
                            "stage, the project modules its command imports, and that dvc.lock has no entry for a "
                            "stage that is gone. Exit 1, naming the stage and the module, when not.").parse_args()
    found = problems(Path.cwd()) + lock_problems(Path.cwd())
    for line in found:
        print(f"error: {line}", file=sys.stderr)
    if found:
        sys.exit(1)
    print(f"dvc.yaml: every stage declares the project modules it imports ({len(RESULT_NEUTRAL)} result-neutral "
          "ones excepted, fmnist/tools/deps.py); dvc.lock: no entry for a stage that is gone")


if __name__ == "__main__":
    main()
