"""For the person at the terminal: --dry-run, --count, query lint and
--strict, and the live status line (under a pseudo-terminal)."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import run_dimsekit

from dimsekit.testing.cli import DIMSEKIT_COMMAND

STUDY = ["-k", "QueryRetrieveLevel=STUDY", "-k", "PatientID=", "-k", "StudyInstanceUID="]


def _find(scp, *args, **kwargs):
    return run_dimsekit("find", *args, "127.0.0.1", scp.port, **kwargs)


# -- --dry-run ----------------------------------------------------------------


def test_dry_run_sends_nothing_and_says_what_it_would(scp):
    result = _find(scp, "--dry-run", "-aec", "PACS", "--relational-query", *STUDY)
    assert result.returncode == 0, result.stderr
    assert scp.associations == []
    assert result.stdout.startswith("---------------------------\nFind Request: 1\n\n"
                                    "# Dicom-Data-Set\n(0008,0052) CS [STUDY]")
    assert result.stderr.splitlines() == [
        f"dry-run: nothing is sent; the association would be requested from "
        f"127.0.0.1:{scp.port} (FINDSCU -> PACS)",
        "dry-run: query -k: study root information model (QueryRetrieveLevel is STUDY)",
        "dry-run: would propose Study Root Query/Retrieve Information Model - FIND "
        "(1.2.840.10008.5.1.4.1.2.2.1) with Little Endian Explicit, Big Endian Explicit, "
        "Little Endian Implicit",
        "dry-run: would request extended negotiation for Study Root Query/Retrieve "
        "Information Model - FIND: 01 00 00 00 00"]


def test_dry_run_in_another_format_and_for_a_batch(scp, tmp_path):
    rows = tmp_path / "rows.csv"
    rows.write_text("PatientID\nPAT001\nPAT002\n")
    result = _find(scp, "--dry-run", "--format", "ndjson", "--batch", rows, *STUDY[:2],
                   "-k", "StudyDate")
    assert result.returncode == 0, result.stderr
    sent = [json.loads(line) for line in result.stdout.splitlines()]
    assert [s["00100020"]["Value"] for s in sent] == [["PAT001"], ["PAT002"]]
    assert scp.associations == []
    assert f"dry-run: query {rows} row 2 (line 3): study root" in result.stderr


def test_dry_run_still_refuses_a_bad_command_line(scp):
    result = _find(scp, "--dry-run", "-k", "NoSuchKeyword=1")
    assert result.returncode == 2
    assert result.stderr.startswith("E: ")


# -- --count --------------------------------------------------------------------


def test_count_prints_only_the_number(scp):
    result = _find(scp, "--count", *STUDY)
    assert result.returncode == 0, result.stderr
    studies = len({str(ds.StudyInstanceUID) for ds in scp.data.instances})
    assert result.stdout == f"{studies}\n"
    verbose = _find(scp, "--count", "-v", *STUDY)
    assert verbose.stdout == f"{studies}\n"
    assert f"I: query 1: {studies} matches" in verbose.stderr


def test_count_of_nothing_is_zero(scp):
    result = _find(scp, "--count", "-k", "QueryRetrieveLevel=STUDY", "-k", "PatientID=NOPE")
    assert (result.returncode, result.stdout) == (0, "0\n")


# -- lint -----------------------------------------------------------------------


def test_lint_warns_before_sending_and_sends(scp):
    result = _find(scp, "-k", "QueryRetrieveLevel=STUDY", "-k", "Modality=CT",
                   "-k", "StudyDate=2024-01-01")
    assert result.stderr.splitlines()[:2] == [
        "W: query -k: StudyDate = 2024-01-01: not YYYYMMDD (e.g. 20240101) or a range "
        "(20240101-20240131)",
        "W: query -k: Modality is a SERIES-level key: a STUDY query does not match on it "
        "(ask for ModalitiesInStudy)"]
    assert len(scp.associations) == 1


def test_strict_makes_lint_a_usage_error(scp):
    result = _find(scp, "--strict", "-k", "QueryRetrieveLevel=SERIES", "-k", "Modality=CT")
    assert result.returncode == 2
    assert result.stderr == (
        "E: query -k: a SERIES query without one StudyInstanceUID (the STUDY it belongs "
        "to): a hierarchical query needs the unique key of each level above "
        "(PS3.4 C.4.1.2.1), or --relational-query (--strict)\n")
    assert scp.associations == []
    relational = _find(scp, "--strict", "--relational-query", "-k",
                       "QueryRetrieveLevel=SERIES", "-k", "Modality=CT")
    assert relational.returncode == 0, relational.stderr


# -- the status line ------------------------------------------------------------


def _under_pty(args: list[str], timeout: float = 60) -> tuple[int, bytes]:
    """Run dimsekit with stderr on a pseudo-terminal (stdout to /dev/null);
    its exit code and everything written to the terminal."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen([*DIMSEKIT_COMMAND, *args], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=follower,
                            env={**os.environ, "TERM": "xterm"})
    os.close(follower)
    seen = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the process closed its end
                break
            if not chunk:
                break
            seen += chunk
        elif proc.poll() is not None:
            break
    os.close(leader)
    return proc.wait(timeout=10), seen


def test_a_live_status_line_on_a_terminal(make_scp):
    scp = make_scp(repeat_matches=40, response_delay=0.05)
    code, seen = _under_pty(["find", *STUDY, "127.0.0.1", str(scp.port)])
    assert code == 0, seen
    frames = [f for f in seen.split(b"\r\x1b[K") if f]
    assert frames, seen
    assert all(f.split(b", ")[1].endswith(b"/s") and b"match" in f for f in frames), frames
    assert seen.endswith(b"\r\x1b[K")  # cleared at the end


def test_no_status_line_when_quiet_or_not_a_terminal(make_scp, tmp_path):
    scp = make_scp(repeat_matches=20, response_delay=0.05)
    code, seen = _under_pty(["find", "-q", *STUDY, "127.0.0.1", str(scp.port)])
    assert (code, seen) == (0, b"")
    result = _find(scp, *STUDY)  # stderr a pipe
    assert (result.returncode, result.stderr) == (0, "")


@pytest.mark.skipif(sys.platform != "linux", reason="pty")
def test_a_failure_line_starts_on_a_clean_line(make_scp):
    scp = make_scp(repeat_matches=30, response_delay=0.05, final_status=0xC000)
    code, seen = _under_pty(["find", *STUDY, "127.0.0.1", str(scp.port)])
    assert code == 1
    assert b"\r\x1b[KE: query -k: peer answered 0xC000" in seen or seen.startswith(b"E: ")


ROOT = Path(__file__).resolve().parents[1]
