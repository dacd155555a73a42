"""ruff and mypy are part of the test run: the code that ships is clean
under the rule set pinned in pyproject.toml, and the package that ships
``py.typed`` type-checks."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _tool(name: str) -> list[str]:
    exe = Path(sys.executable).with_name(name)
    if exe.exists():
        return [str(exe)]
    if shutil.which(name):
        return [name]
    if os.environ.get("CI") == "true":
        pytest.fail(f"{name} is not installed (it is in the test extras)")
    pytest.skip(f"{name} is not installed")


def test_ruff_is_clean():
    out = subprocess.run([*_tool("ruff"), "check", "--no-cache", "src", "tests", "examples",
                          "bench"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr


def test_mypy_is_clean():
    out = subprocess.run([*_tool("mypy")], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
