"""Shared fixtures: run dimsekit as a user does, and the peers it talks to."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time

import pytest
from realpeers import *  # noqa: F401,F403 - real-peer fixtures (DCMTK, Orthanc)

from dimsekit.testing.cli import Result, run_dimsekit  # noqa: F401 - tests import them from here

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


def read_until(proc, pattern: bytes, seconds: float = 15, count: int = 1) -> bytes:
    """What ``proc`` wrote to its stdout pipe until ``count`` times
    ``pattern`` (or EOF, or ``seconds``)."""
    got = b""
    deadline = time.monotonic() + seconds
    fd = proc.stdout.fileno()
    while got.count(pattern) < count and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.1)[0]:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            got += chunk
    return got


def streaming_find(scp, fmt: str, *extra: str) -> subprocess.Popen:
    """``dimsekit find`` against ``scp`` with its stdout on a pipe."""
    return subprocess.Popen(
        [sys.executable, "-m", "dimsekit", "find", "--format", fmt, "-td", "30", *extra,
         "-S", "-k", "QueryRetrieveLevel=STUDY", "-k", "PatientName=", "127.0.0.1",
         str(scp.port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)


#: modules whose tests talk to a peer through dimsekit's public behaviour:
#: run again on the pure path (DIMSEKIT_PURE=1) and at the lowest pinned
#: versions (.ci/test).  test_hostile and test_dimse are left out: they
#: inject byte-level faults that the fast path's own reader checks, where
#: the pure path leaves the judgement to pynetdicom (docs/faults.md).
NETWORK_MODULES = frozenset({
    "test_charsets", "test_client", "test_docs", "test_echo_plugin", "test_find_cli",
    "test_find_realpeers", "test_interrupt", "test_memory", "test_negotiation_fixes",
    "test_output_faults", "test_python_api_docs", "test_realpeers", "test_tls",
    "test_tls_orthanc", "test_echo_command", "test_batch", "test_scripting_docs",
    "test_client_retrieve", "test_config", "test_find_terminal",
})


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.module is not None and item.module.__name__ in NETWORK_MODULES:
            item.add_marker(pytest.mark.network)
