"""`make install` runs pip once per change of pyproject.toml, and the package metadata builds without
setuptools' deprecation warnings (issue 23, item 8)."""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
import warnings
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# A pip that records its arguments: the Makefile's logic is under test, not a download of torch.
RECORDING_PIP = '#!/bin/sh\necho "$@" >> "$(dirname "$0")/../pip-calls.log"\n'


def make(workdir: Path, *args: str) -> str:
    result = subprocess.run(["make", "--no-print-directory", *args], cwd=workdir, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture
def checkout(tmp_path) -> Path:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy(REPO / name, tmp_path / name)
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    for name, text in (("python", "#!/bin/sh\n"), ("pip", RECORDING_PIP)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(stat.S_IRWXU)
    return tmp_path


def pip_calls(checkout: Path) -> list[str]:
    log = checkout / ".venv" / "pip-calls.log"
    return log.read_text().splitlines() if log.exists() else []


def test_a_second_make_install_runs_no_pip(checkout):
    make(checkout, "install")
    assert len(pip_calls(checkout)) == 2  # torch, then the project
    make(checkout, "install")
    assert len(pip_calls(checkout)) == 2
    assert "pip" not in make(checkout, "-n", "install")
    assert "pip" not in make(checkout, "-n", "demo").replace("policyqa serve", "")


def test_a_changed_pyproject_installs_again(checkout):
    make(checkout, "install")
    stamp_time = (checkout / ".venv" / ".installed").stat().st_mtime
    os.utime(checkout / "pyproject.toml", (stamp_time + 10, stamp_time + 10))
    assert "pip install" in make(checkout, "-n", "install")
    make(checkout, "install")
    assert len(pip_calls(checkout)) == 4


def test_the_package_metadata_has_no_deprecated_license_table():
    from setuptools.config.pyprojecttoml import apply_configuration
    from setuptools.dist import Distribution

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dist = apply_configuration(Distribution(), REPO / "pyproject.toml")
    assert [str(w.message).splitlines()[0] for w in caught if "license" in str(w.message).lower()] == []
    assert dist.metadata.license_expression == "MIT"


def test_make_check_runs_the_unit_and_api_tests_without_browser_postgres_or_slow_ones():
    """`make check` is the edit-test loop (issue 23, item 9): its selection leaves out every test that drives
    Chromium, starts PostgreSQL or trains/exports/builds a whole model, and keeps the rest."""
    import shlex
    import sys

    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    line = next(line for line in make(REPO, "-n", "check").splitlines() if "pytest" in line)
    args = shlex.split(line)
    selection = args[len(args) - 1 - args[::-1].index("-m") + 1]  # the last -m: the first is python -m pytest
    collected = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "-m", selection],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    ids = [line for line in collected.stdout.splitlines() if "::" in line]
    assert len(ids) > 300, collected.stdout[-2000:]
    assert "tests/test_api_docs.py::test_docs_assets_are_served_locally" in ids
    assert not [i for i in ids if i.startswith(("tests/test_browser_", "tests/test_postgres.py", "tests/test_accessibility"))]
    assert not [i for i in ids if "[postgresql]" in i or "trained_judge" in i or "demo_child_build" in i], ids
