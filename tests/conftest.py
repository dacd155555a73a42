"""Shared fixtures: run dimsekit as a user does, and the peers it talks to."""

from __future__ import annotations

import pytest

from dimsekit.testing.cli import Result, run_dimsekit  # noqa: F401 - tests import them from here
from realpeers import *  # noqa: F401,F403 - real-peer fixtures (DCMTK, Orthanc)

# The in-process peer and the subprocess runner come from dimsekit's pytest
# plugin (dimsekit.testing.pytest_plugin: dimsekit_make_scp,
# dimsekit_subprocess, ...); these are the short names this suite uses.


@pytest.fixture
def dimsekit(dimsekit_subprocess):
    """``dimsekit(*args)`` runs the CLI as a subprocess in a temp cwd."""
    return dimsekit_subprocess


def assert_no_traceback(result: Result) -> None:
    assert "Traceback" not in result.stderr, result.stderr


@pytest.fixture
def make_scp(dimsekit_make_scp):
    """``make_scp(**knobs)`` starts an in-process recording QuerySCP; all are
    stopped after the test."""
    return dimsekit_make_scp


@pytest.fixture
def scp(dimsekit_scp):
    """A default in-process recording peer (AE ANY-SCP) with the sample data."""
    return dimsekit_scp
