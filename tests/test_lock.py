"""The lock, requirements.txt: exactly what `make lock` resolves requirements.in to, and installable from wheels on
every supported platform. Both ask the package index (uv's resolver); without it they are skipped, saying so."""
from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

# Where the lock must install from wheels alone: uv's platform names (glibc 2.28 or newer on Linux).
SUPPORTED = ["x86_64-manylinux_2_28", "aarch64-manylinux_2_28", "aarch64-apple-darwin"]
# One the lock does not support (jaxlib, cryptography and others have no wheel for it): the check below must refuse it.
UNSUPPORTED = "x86_64-apple-darwin"
# Packages with compiled parts that the issue names; the check covers every compiled package installed here.
MUST_BE_COVERED = {"tensorflow", "jaxlib", "numpy", "scipy", "psycopg-binary"}


def makefile_value(name: str) -> str:
    return re.search(rf"^{name} := (.+)$", (REPO_ROOT / "Makefile").read_text(), re.MULTILINE).group(1).strip()


def pinned_uv() -> str:
    """The Makefile's pinned uv (make installs it before the tests run; installed here when the tests run alone)."""
    path = REPO_ROOT / ".uv" / makefile_value("UV_VERSION") / "bin" / "uv"
    if not path.is_file():
        subprocess.run(["make", "-s", str(path)], cwd=REPO_ROOT, check=True)
    return str(path)


@pytest.fixture(scope="module")
def uv() -> str:
    return pinned_uv()


def run_uv(arguments: list[str], cwd: Path) -> subprocess.CompletedProcess:
    result = subprocess.run(arguments, cwd=cwd, capture_output=True, text=True)
    if result.returncode and re.search(r"Failed to fetch|dns error|Could not connect|Network is unreachable|"
                                       r"error sending request", result.stderr):
        pytest.skip(f"the package index cannot be reached: {result.stderr.strip().splitlines()[-1]}")
    return result


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(text: str) -> set[str]:
    """'name==version' of every line of a lock, markers dropped."""
    return {normalized(line.split("==")[0]) + "==" + line.split("==")[1].split(";")[0].strip()
            for line in text.splitlines() if "==" in line and not line.lstrip().startswith("#")}


def test_the_lock_is_what_make_lock_resolves_requirements_in_to(uv, tmp_path):
    """`make lock` in a copy gives the committed lock byte for byte. It ignores the old lock's pins (a hand-edited
    pin comes back as resolved), so a lock that is not requirements.in's resolution fails here."""
    for name in ("Makefile", "requirements.in", "requirements.txt"):
        shutil.copy(REPO_ROOT / name, tmp_path / name)
    committed = (REPO_ROOT / "requirements.txt").read_text()
    edited = committed.replace("\nplatformdirs==4.14.8\n", "\nplatformdirs==4.14.7\n")
    assert edited != committed, "the lock no longer pins platformdirs 4.14.8: choose another pin to edit"
    (tmp_path / "requirements.txt").write_text(edited)
    result = run_uv(["make", "-s", "lock", f"UV={uv}"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "requirements.txt").read_text() == committed


def test_the_lock_is_resolved_from_the_declared_python_up():
    declared = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert declared.startswith(f">={makefile_value('LOCK_PYTHON')},")


def compiled_packages() -> set[str]:
    """Every package installed in this environment from a platform-specific wheel (not py3-none-any)."""
    import sysconfig

    found = set()
    for wheel in Path(sysconfig.get_paths()["purelib"]).glob("*.dist-info/WHEEL"):
        tags = [line.split(": ", 1)[1] for line in wheel.read_text().splitlines() if line.startswith("Tag: ")]
        if tags and not any(tag.endswith("-none-any") for tag in tags):
            metadata = (wheel.parent / "METADATA").read_text()
            found.add(normalized(re.search(r"^Name: (.+)$", metadata, re.MULTILINE).group(1).strip()))
    return found


def resolve_for(uv: str, platform: str, binary_only: list[str], out: Path) -> subprocess.CompletedProcess:
    return run_uv([uv, "pip", "compile", "--quiet", "--no-header", "--python-platform", platform, "--python-version",
                   makefile_value("LOCK_PYTHON"), "--only-binary", ",".join(binary_only),
                   str(REPO_ROOT / "requirements.txt"), "-o", str(out)], REPO_ROOT)


@pytest.mark.parametrize("platform", SUPPORTED)
def test_every_compiled_package_of_the_lock_has_a_wheel_for_each_supported_platform(uv, tmp_path, platform):
    """uv resolves the lock's own pins for that platform, allowing only wheels for the compiled packages: it fails
    when a pinned version has no wheel with a matching platform tag."""
    locked = pins((REPO_ROOT / "requirements.txt").read_text())
    names = {pin.split("==")[0] for pin in locked}
    binary_only = sorted(compiled_packages() & names)
    assert MUST_BE_COVERED <= set(binary_only), MUST_BE_COVERED - set(binary_only)
    result = resolve_for(uv, platform, binary_only, tmp_path / "resolved.txt")
    assert result.returncode == 0, result.stderr
    resolved = pins((tmp_path / "resolved.txt").read_text())
    assert resolved <= locked and {pin for pin in resolved if pin.startswith("tensorflow==")}  # the lock's pins
    if platform == SUPPORTED[0]:  # and on the platform the lock was made on, nothing compiled is left out
        assert set(binary_only) <= {pin.split("==")[0] for pin in resolved}


def test_a_platform_without_wheels_is_refused(uv, tmp_path):
    """The same check on macOS x86_64, which jaxlib (and others) have no wheel for: it must fail, naming one."""
    locked = {pin.split("==")[0] for pin in pins((REPO_ROOT / "requirements.txt").read_text())}
    binary_only = sorted(compiled_packages() & locked)
    result = resolve_for(uv, UNSUPPORTED, binary_only, tmp_path / "resolved.txt")
    missing = re.search(r"Because (\S+)==\S+ has no (?:usable )?wheels", result.stderr)
    assert result.returncode != 0 and missing and normalized(missing.group(1)) in binary_only, result.stderr
