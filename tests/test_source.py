"""The source itself: no name used that is never defined (pyflakes), the error class that only shows when a line
runs. `policyqa model train-encoder` once crashed after 24 minutes of training on one such name."""
from __future__ import annotations

from pathlib import Path

import pyflakes.messages as m
from pyflakes.api import checkPath
from pyflakes.reporter import Reporter

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("ingest", "knowledge_base", "qa_service", "eval", "tests")
ERRORS = (m.UndefinedName, m.UndefinedLocal, m.UndefinedExport, m.ImportStarUsed, m.DuplicateArgument,
          m.ReturnOutsideFunction, m.UnusedImport, m.RedefinedWhileUnused)


class _Collect(Reporter):
    def __init__(self):
        super().__init__(None, None)
        self.found: list[str] = []

    def flake(self, message):
        if isinstance(message, ERRORS):
            self.found.append(str(message))

    def syntaxError(self, filename, msg, lineno, offset, text):
        self.found.append(f"{filename}:{lineno}: {msg}")

    def unexpectedError(self, filename, msg):
        self.found.append(f"{filename}: {msg}")


def test_no_module_uses_an_undefined_name_or_imports_what_it_does_not_use():
    reporter = _Collect()
    files = [p for package in PACKAGES for p in sorted((REPO / package).rglob("*.py"))]
    assert len(files) > 50
    for path in files:
        checkPath(str(path), reporter)
    assert reporter.found == []


def test_the_check_sees_an_undefined_name(tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("def f():\n    return progress.add_task('x')\n", "utf-8")
    reporter = _Collect()
    checkPath(str(broken), reporter)
    assert len(reporter.found) == 1 and "undefined name 'progress'" in reporter.found[0]
