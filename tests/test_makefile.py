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
