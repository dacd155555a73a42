"""Ctrl-C and SIGTERM during a query: exit 130, what arrived kept, outputs
closed valid.

The first SIGINT sends C-CANCEL and gives the peer up to 2 s to end the
query; a second SIGINT, SIGTERM, or a peer that goes on past the grace
aborts.  The peer is the raw-socket one of tests/hostile.py, which records
whether a C-CANCEL-RQ (command 0x0FFF) came.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hostile import (
    A_ABORT,
    A_RELEASE_RQ,
    HostilePeer,
    PeerConnection,
    good,
    parse_command_set,
    release_rp,
)

PENDING, CANCEL = 0xFF00, 0xFE00
C_CANCEL_RQ = 0x0FFF


def _responses_then(after: str):
    """Two matches, then: ``honour`` a C-CANCEL with a final 0xFE00, or
    ``ignore`` it and stay silent."""
    def scenario(conn: PeerConnection) -> None:
        find = conn.handshake()
        conn.respond(find, PENDING, good(1))
        conn.respond(find, PENDING, good(2))
        while True:
            pdu_type, body = conn.read_pdu()
            if pdu_type == 0x04 and body[5] & 1:  # a PDV with a command fragment
                length = int.from_bytes(body[0:4], "big")
                command = parse_command_set(body[6:4 + length])
                field = int.from_bytes(command.get(0x00000100, b"\0\0")[:2], "little")
                conn.log(f"command 0x{field:04X}")
                if field == C_CANCEL_RQ and after == "honour":
                    conn.respond(find, CANCEL)
            elif pdu_type == A_RELEASE_RQ:
                conn.send(release_rp())
                return
            elif pdu_type == A_ABORT:
                conn.log("aborted")
                return
    return scenario


def _interrupt(peer_after: str, signals: list[signal.Signals], tmp_path: Path,
               *args: str) -> tuple[subprocess.CompletedProcess, float, HostilePeer]:
    with HostilePeer(_responses_then(peer_after)) as peer:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dimsekit", "find", "-S", "-k", "QueryRetrieveLevel=STUDY",
             "-k", "PatientName=", "-k", "StudyInstanceUID=", "-td", "30", *args,
             "127.0.0.1", str(peer.port)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
        deadline = time.monotonic() + 20
        while not any("command" in e or "cx=" in e for e in peer.events):
            assert time.monotonic() < deadline, peer.events
            time.sleep(0.02)
        time.sleep(0.5)  # the two matches are out
        started = time.monotonic()
        for sig in signals:
            proc.send_signal(sig)
            time.sleep(0.2)
        out, err = proc.communicate(timeout=15)
        elapsed = time.monotonic() - started
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err), elapsed, peer


def _logged(peer: HostilePeer, text: str) -> bool:
    return any(event.endswith(text) for event in peer.events)


def _e_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("E:")]


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_first_ctrl_c_cancels_and_a_peer_that_honours_it_ends_the_run(fmt, tmp_path):
    result, elapsed, peer = _interrupt("honour", [signal.SIGINT], tmp_path, "--format", fmt)
    assert "Traceback" not in result.stderr
    assert result.returncode == 130, result.stderr
    assert _e_lines(result.stderr) == [
        "E: query -k: interrupted after 2 responses (C-CANCEL sent; the peer ended the query)"]
    assert _logged(peer, "command 0x0FFF"), peer.events  # the C-CANCEL-RQ
    assert elapsed < 2.5  # the final status came at once, not after the grace
    if fmt == "json":
        assert len(json.loads(result.stdout)) == 2
    else:
        rows = result.stdout.splitlines()
        assert len(rows) == 3 and all(row.count(",") == rows[0].count(",") for row in rows)


def test_a_peer_that_ignores_the_cancel_is_aborted_after_the_grace(tmp_path):
    result, elapsed, peer = _interrupt("ignore", [signal.SIGINT], tmp_path, "--format", "json")
    assert result.returncode == 130, result.stderr
    assert _e_lines(result.stderr) == [
        "E: query -k: interrupted after 2 responses; association aborted"]
    assert 1.9 < elapsed < 5.0  # the 2 s grace, then the abort
    assert _logged(peer, "aborted"), peer.events
    assert len(json.loads(result.stdout)) == 2


def test_a_second_ctrl_c_aborts_at_once(tmp_path):
    result, elapsed, peer = _interrupt("ignore", [signal.SIGINT, signal.SIGINT], tmp_path,
                                       "--format", "json")
    assert result.returncode == 130, result.stderr
    assert _e_lines(result.stderr) == [
        "E: query -k: interrupted after 2 responses; association aborted"]
    assert elapsed < 1.9  # at once: no 2 s grace
    assert len(json.loads(result.stdout)) == 2


def test_sigterm_aborts_at_once_and_keeps_the_output_file(tmp_path):
    result, elapsed, peer = _interrupt("ignore", [signal.SIGTERM], tmp_path,
                                       "--format", "json", "-o", "out.json", "-X")
    assert result.returncode == 130, result.stderr
    assert _e_lines(result.stderr) == [
        "E: query -k: terminated (SIGTERM): association aborted after 2 responses"]
    assert elapsed < 1.9  # at once: no 2 s grace
    assert not _logged(peer, "command 0x0FFF")  # no cancel: straight to A-ABORT
    assert len(json.loads((tmp_path / "out.json").read_text())) == 2
    assert sorted(p.name for p in tmp_path.glob("rsp*.dcm")) == ["rsp0001.dcm", "rsp0002.dcm"]
    assert not list(tmp_path.glob(".dimsekit-*"))
