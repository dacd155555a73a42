"""Memory stays flat however many responses arrive, for every writer."""

from __future__ import annotations

import subprocess
import sys

import pytest

# run dimsekit in a fresh wrapper so RUSAGE_CHILDREN is this one run's peak
_PEAK = ("import resource, subprocess, sys; "
         "subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, check=True); "
         "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


def peak_rss_kib(port: int, fmt: str) -> int:
    argv = [sys.executable, "-c", _PEAK, sys.executable, "-m", "dimsekit", "find",
            "--format", fmt, "-k", "PatientName=", "-k", "PatientID=", "-k", "StudyDate=",
            "127.0.0.1", str(port)]
    return int(subprocess.run(argv, capture_output=True, text=True, check=True).stdout)


@pytest.fixture(scope="module")
def busy_scp():
    from dimsekit.testing import QuerySCP

    with QuerySCP() as scp:
        yield scp


@pytest.mark.parametrize("fmt", ["dump", "json", "ndjson", "xml", "csv"])
def test_peak_memory_does_not_grow_with_responses(busy_scp, fmt):
    busy_scp.repeat_matches = 100
    small = peak_rss_kib(busy_scp.port, fmt)
    busy_scp.repeat_matches = 2000
    large = peak_rss_kib(busy_scp.port, fmt)
    # 1,900 more responses retained would cost several MiB
    assert large - small < 2 * 1024, (small, large)
