"""Shared fixtures: run dimsekit as a user does, and the peers it talks to."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from realpeers import *  # noqa: F401,F403 - real-peer fixtures (DCMTK, Orthanc)

DIMSEKIT = [sys.executable, "-m", "dimsekit"]


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str

    @property
    def stderr_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]


def run_dimsekit(*args: str, env: dict | None = None, cwd: str | Path | None = None,
                 timeout: float = 60, input: str | None = None) -> Result:
    """Run ``dimsekit ARGS`` as a subprocess; never inherit the test's cwd."""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run(
        [*DIMSEKIT, *map(str, args)], capture_output=True, text=True,
        encoding="utf-8", errors="replace", env=full_env,
        cwd=str(cwd) if cwd else None, timeout=timeout, input=input,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def dimsekit(tmp_path):
    """``dimsekit(*args)`` runs the CLI as a subprocess in a temp cwd."""

    def run(*args: str, **kwargs):
        kwargs.setdefault("cwd", tmp_path)
        return run_dimsekit(*args, **kwargs)

    return run


def assert_no_traceback(result: Result) -> None:
    assert "Traceback" not in result.stderr, result.stderr


@pytest.fixture
def make_scp():
    """``make_scp(**knobs)`` starts an in-process recording QuerySCP; all are
    stopped after the test."""
    from dimsekit.testing import QuerySCP

    started = []

    def make(**kwargs):
        scp = QuerySCP(**kwargs)
        scp.start()
        started.append(scp)
        return scp

    yield make
    for scp in started:
        scp.stop()


@pytest.fixture
def scp(make_scp):
    """A default in-process recording peer (AE ANY-SCP) with the sample data."""
    return make_scp()
