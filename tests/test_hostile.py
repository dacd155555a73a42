"""``dimsekit find`` against a hostile peer (tests/hostile.py): the contract
of docs/exit-codes.md and docs/faults.md (exit status, one ``E:`` line,
every read bounded) under every fault we could script at the byte level.

Each case runs the real command as a subprocess against a raw-socket peer
and checks: the exit code; on failure exactly one ``E:`` line; no
traceback; every good response sent before the fault in the output, and the
output valid for its format; the run ending within the timeout in play plus
SLACK seconds.  A run that outlives that bound by HANG seconds is killed
and reported as hung.

Good responses carry StudyInstanceUID ``UID_ROOT.<n>`` (n = the response
number); bad ones never do.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import ssl
import struct
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from hostile import (
    COMMAND_FIELD,
    EXPLICIT_BE,
    EXPLICIT_LE,
    IMPLICIT_LE,
    MESSAGE_ID_BEING_RESPONDED_TO,
    PENDING,
    PENDING_WARNING,
    STATUS,
    STUDY_ROOT_FIND,
    SUCCESS,
    UID_ROOT,
    AcceptedContext,
    HostilePeer,
    PeerConnection,
    a_abort,
    associate_rj,
    deep_sequence,
    encode,
    garbage,
    good,
    huge_value,
    p_data,
    past_end,
    pdu,
    pdv,
    release_rq,
    study_uid,
    unknown_pdu,
    unknown_vr,
    us,
)

#: seconds a run may take beyond the timeout in play (start-up included)
SLACK = 6.0
#: seconds beyond that bound after which a run is killed as hung
HANG = 4.0
#: peak RSS a run may reach (MB), where a case checks memory
RSS_LIMIT_MB = 120

ALL_FORMATS = ("dump", "json", "ndjson", "csv", "xml")
BASE_FORMATS = ("dump", "json")
UNDEFINED = r"undefined|unknown|reserved|not defined|invalid|unrecognized"

BASE_ARGS = ["-S", "-k", "QueryRetrieveLevel=STUDY", "-k", "PatientName=",
             "-k", "StudyInstanceUID=", "-aec", "ANY-SCP", "-ta", "3", "-td", "3"]


# --- running the client ------------------------------------------------------------

@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    elapsed: float
    maxrss_mb: float
    hung: bool

    @property
    def e_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith("E:")]

    @property
    def w_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith("W:")]

    def summary(self) -> str:
        first = self.e_lines[0] if self.e_lines else (self.stderr.splitlines() or [""])[0]
        return (f"exit {self.returncode} in {self.elapsed:.2f} s, rss {self.maxrss_mb:.0f} MB"
                f"{' (HUNG, killed)' if self.hung else ''}; stderr: {first[:200]!r}")


def run_find(port: int, fmt: str, tmp: Path, args: tuple[str, ...] = (), hang: float = 10.0,
             stdout_path: str | None = None) -> Run:
    """Run ``python -m dimsekit find`` against 127.0.0.1:port; measure wall
    time and the child's peak RSS; kill it after ``hang`` s.

    Peak RSS is the child's VmHWM, polled from /proc while it runs: the
    rusage of wait4 would not do, as Linux carries the forking process's
    high-water mark (this pytest process's) into the child's ru_maxrss."""
    cmd = [sys.executable, "-m", "dimsekit", "find", *BASE_ARGS, "--format", fmt, *args,
           "127.0.0.1", str(port)]
    out_path = Path(stdout_path) if stdout_path else tmp / "stdout"
    err_path = tmp / "stderr"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        start = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL, cwd=tmp)
        hung, peak_kb = False, 0
        status_file = f"/proc/{proc.pid}/status"
        while True:
            peak_kb = max(peak_kb, _vm_hwm_kb(status_file))
            pid, status = os.waitpid(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() - start > hang:
                hung = True
                proc.kill()
                pid, status = os.waitpid(proc.pid, 0)
                break
            time.sleep(0.005)
        elapsed = time.monotonic() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
    stdout = "" if stdout_path else out_path.read_text("utf-8", "replace")
    return Run(proc.returncode, stdout, err_path.read_text("utf-8", "replace"), elapsed,
               peak_kb / 1024, hung)


def _vm_hwm_kb(status_file: str) -> int:
    try:
        with open(status_file, "rb") as f:
            for line in f:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


# --- checking outputs ----------------------------------------------------------------

_UID = re.compile(re.escape(UID_ROOT) + r"(?:\.\d+)+")


def output_uids(fmt: str, text: str) -> set[str]:
    """Parse ``text`` as ``fmt`` (failing the test if it is not valid) and
    return the response UIDs in it."""
    if fmt == "json":
        data = json.loads(text)
        assert isinstance(data, list), text[:200]
        text = json.dumps(data)
    elif fmt == "ndjson":
        lines = [line for line in text.split("\n") if line.strip()]
        for line in lines:
            assert isinstance(json.loads(line), dict), line[:200]
    elif fmt == "csv":
        rows = list(csv.reader(io.StringIO(text)))
        assert rows, "csv without a header"
        width = len(rows[0])
        assert all(len(row) == width for row in rows), [r for r in rows if len(r) != width][:3]
        assert text.endswith("\n"), "csv output ends inside a row"
    elif fmt == "xml":
        ET.fromstring(text)
    return set(_UID.findall(text))


def response_is_numbered(line: str, n: int) -> bool:
    return re.search(rf"(?<![\d.,]){n}(?![\d,])", line) is not None


# --- the scenarios ------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    id: str
    scenario: Callable[[PeerConnection], None]
    exit: int
    good: tuple[int, ...] = ()          # response numbers whose UIDs must be in the output
    absent: tuple[str, ...] = ()        # UIDs that must not be in the output
    kept: tuple[str, ...] = ()          # further UIDs that must be in the output
    bad: tuple[int, ...] = ()           # response numbers that need one W: line each
    wait: float = 0.0                   # the timeout in play (s)
    args: tuple[str, ...] = ()
    formats: tuple[str, ...] = BASE_FORMATS
    e_pattern: str | None = None        # regex the E: line must match (case-insensitive)
    rss_mb: float | None = None         # peak RSS limit


def finish(conn: PeerConnection, find, status: int = SUCCESS, **kwargs) -> None:
    conn.respond(find, status, **kwargs)
    conn.answer_release()


def pendings(*numbers: int, mode: str = "normal", tcp1: bool = False, delay: float = 0.0,
             status: int = PENDING, ts: str = EXPLICIT_LE, max_pdu: int = 16384):
    """Scenario: accept, answer good(n) for each n, then Success, then release."""
    def scenario(conn: PeerConnection) -> None:
        find = conn.handshake(ts, max_pdu)
        for n in numbers:
            conn.respond(find, status, good(n), mode=mode, tcp1=tcp1, delay=delay)
        conn.respond(find, SUCCESS, mode=mode, tcp1=tcp1, delay=delay)
        conn.answer_release()
    return scenario


def final_status(status: int, comment: str | None, *numbers: int):
    def scenario(conn: PeerConnection) -> None:
        find = conn.handshake()
        for n in numbers:
            conn.respond(find, PENDING, good(n))
        finish(conn, find, status, error_comment=comment)
    return scenario


# association phase -----------------------------------------------------------

def reply(data: bytes, then: str = "hold", per_byte: bool = False, delay: float = 0.0):
    """Scenario: read the A-ASSOCIATE-RQ, send ``data``, then hold / fin / rst."""
    def scenario(conn: PeerConnection) -> None:
        conn.read_associate_rq()
        conn.send(data, per_byte=per_byte, delay=delay)
        if then == "fin":
            conn.fin()
        elif then == "rst":
            conn.rst()
    return scenario


def reply_with(build: Callable[[PeerConnection], bytes], then: str = "hold", per_byte: bool = False,
               delay: float = 0.0):
    """Like :func:`reply`, with the bytes built from the parsed RQ."""
    def scenario(conn: PeerConnection) -> None:
        conn.read_associate_rq()
        conn.send(build(conn), per_byte=per_byte, delay=delay)
        if then == "fin":
            conn.fin()
        elif then == "rst":
            conn.rst()
    return scenario


def truncated_ac(conn: PeerConnection) -> bytes:
    ac = conn.associate_ac()
    return ac[:len(ac) // 2]


def oversized_ac(conn: PeerConnection) -> bytes:
    ac = conn.associate_ac()
    return ac[:2] + struct.pack(">L", 0x7FFFFFF0) + ac[6:]


def short_length_ac(conn: PeerConnection) -> bytes:
    ac = conn.associate_ac()
    return ac[:2] + struct.pack(">L", len(ac) - 6 - 20) + ac[6:]


def close_at_once(how: str):
    def scenario(conn: PeerConnection) -> None:
        getattr(conn, how)()
    return scenario


REJECTS = [
    # (id, result, source, reason, undefined?)
    ("rj-permanent-user-noreason", 1, 1, 1, False),
    ("rj-transient-user-called-ae", 2, 1, 7, False),
    ("rj-permanent-acse-protocol-version", 1, 2, 2, False),
    ("rj-transient-presentation-limit", 2, 3, 2, False),
    ("rj-undefined-result-3", 3, 1, 1, True),
    ("rj-undefined-source-4", 1, 4, 1, True),
    ("rj-undefined-reason-user-5", 1, 1, 5, True),
    ("rj-undefined-reason-acse-3", 1, 2, 3, True),
    ("rj-undefined-all-zero", 0, 0, 0, True),
    ("rj-undefined-all-ff", 0xFF, 0xFF, 0xFF, True),
]

ASSOCIATION_CASES = [
    Case("assoc-garbage", reply(b"\xde\xad\xbe\xef" * 16), 3),
    Case("assoc-garbage-then-fin", reply(b"\xde\xad\xbe\xef" * 16, "fin"), 3),
    Case("assoc-ac-type-junk-body", reply(pdu(0x02, garbage(40, seed=3))), 3),
    Case("assoc-unknown-pdu-type", reply(unknown_pdu(0x0B)), 3),
    Case("assoc-release-rq-instead-of-ac", reply(release_rq()), 3),
    Case("assoc-abort-instead-of-ac", reply(a_abort(0, 0)), 3),
    Case("assoc-truncated-ac-then-silence", reply_with(truncated_ac), 3, wait=1, args=("-ta", "1")),
    Case("assoc-truncated-ac-then-fin", reply_with(truncated_ac, "fin"), 3),
    Case("assoc-truncated-ac-then-rst", reply_with(truncated_ac, "rst"), 3),
    Case("assoc-ac-length-2gib", reply_with(oversized_ac), 3, wait=1, args=("-ta", "1")),
    Case("assoc-ac-length-shorter-than-items", reply_with(short_length_ac), 3),
    # (the format does not matter before the association: dump only, except
    # for values the standard leaves undefined)
    *[Case(f"assoc-{name}", reply(associate_rj(result, source, reason)), 3,
           e_pattern=UNDEFINED if undefined else r"reject",
           formats=BASE_FORMATS if undefined else ("dump",))
      for name, result, source, reason, undefined in REJECTS],
    Case("assoc-rj-then-fin", reply(associate_rj(1, 1, 1), "fin"), 3, e_pattern="reject",
         formats=("dump",)),
    Case("assoc-no-context-abstract-syntax",
         reply_with(lambda c: c.associate_ac(reject={1: 3})), 3),
    Case("assoc-no-context-transfer-syntax",
         reply_with(lambda c: c.associate_ac(reject={1: 4})), 3),
    Case("assoc-no-context-user-rejection", reply_with(lambda c: c.associate_ac(reject={1: 1})), 3),
    Case("assoc-accepts-unproposed-context",
         reply_with(lambda c: c.associate_ac(contexts=[AcceptedContext(1, 3),
                                                       AcceptedContext(201, 0)])), 3),
    Case("assoc-accepts-only-unproposed-context",
         reply_with(lambda c: c.associate_ac(contexts=[AcceptedContext(201, 0)])), 3),
    Case("assoc-max-pdu-1", reply_with(lambda c: c.associate_ac(max_pdu=1)), 3),
    # PS3.8 9.3.3.2: the accepted transfer syntax must be one that was proposed
    Case("assoc-ac-unproposed-transfer-syntax",
         reply_with(lambda c: c.associate_ac(transfer_syntax="1.2.840.10008.1.2.4.50")), 3,
         e_pattern="did not propose"),
    Case("assoc-ac-bogus-transfer-syntax",
         reply_with(lambda c: c.associate_ac(transfer_syntax="1.2.3.4")), 3,
         e_pattern="did not propose"),
    Case("assoc-silence-until-ta", reply(b""), 3, wait=1, args=("-ta", "1")),
    Case("assoc-ac-dribbled-slower-than-ta",
         reply_with(lambda c: c.associate_ac(), per_byte=True, delay=0.06), 3,
         wait=1, args=("-ta", "1")),
    Case("assoc-fin-on-connect", close_at_once("fin"), 3),
    Case("assoc-rst-on-connect", close_at_once("rst"), 3),
    Case("assoc-fin-after-rq", reply(b"", "fin"), 3),
    Case("assoc-rst-after-rq", reply(b"", "rst"), 3),
]


# mid-query ---------------------------------------------------------------------

def fault(conn: PeerConnection, kind: str) -> None:
    if kind == "abort":
        conn.abort(0, 0)
    elif kind == "abort-undefined":
        conn.abort(1, 0xEE)
    elif kind == "fin":
        conn.fin()
    elif kind == "rst":
        conn.rst()
    else:
        raise ValueError(kind)


def fault_at(kind: str, point: str):
    def scenario(conn: PeerConnection) -> None:
        if point == "after-ac":
            conn.read_associate_rq()
            conn.accept()
            # long enough for the client to take the association as
            # established (a fault in the same instant may count as during
            # negotiation, exit 3): the request is sent, never read
            conn.silence(0.3)
            return fault(conn, kind)
        find = conn.handshake()
        if point != "before-first":
            conn.respond(find, PENDING, good(1))
            conn.respond(find, PENDING, good(2))
        if point == "mid-message":  # command set of response 3 sent, data set not
            rsp = conn.response_bytes(find, PENDING, good(3))
            first_pdu_len = 6 + struct.unpack(">L", rsp[2:6])[0]
            conn.send(rsp[:first_pdu_len])
        elif point == "mid-pdu":
            rsp = conn.response_bytes(find, PENDING, good(3))
            conn.send(rsp[:25])
        fault(conn, kind)
    return scenario


def after_two(then: Callable[[PeerConnection, object], None], ts: str = EXPLICIT_LE):
    """Scenario: accept, good 1 and 2, then ``then(conn, find)``."""
    def scenario(conn: PeerConnection) -> None:
        find = conn.handshake(ts)
        conn.respond(find, PENDING, good(1))
        conn.respond(find, PENDING, good(2))
        then(conn, find)
    return scenario


def pdv_longer_than_pdu(conn, find):
    conn.send(p_data(pdv(find.context_id, 3, b"\0" * 14, length=1000)))


def pdv_length_zero(conn, find):
    conn.send(p_data(pdv(find.context_id, 3, b"\0" * 14, length=0)))


def pdu_length_short(conn, find):
    rsp = conn.response_bytes(find, PENDING, good(3))
    length = struct.unpack(">L", rsp[2:6])[0]
    conn.send(rsp[:2] + struct.pack(">L", length - 10) + rsp[6:])


def pdu_length_long(conn, find):
    """Response 3's first PDU claims 100 bytes more than it has; response 4
    and Success follow (swallowed into it); then silence."""
    rsp = conn.response_bytes(find, PENDING, good(3))
    length = struct.unpack(">L", rsp[2:6])[0]
    conn.send(rsp[:2] + struct.pack(">L", length + 100) + rsp[6:])
    conn.respond(find, PENDING, good(4))
    conn.respond(find, SUCCESS)


def pdu_2gib(conn, find):
    """A P-DATA-TF announcing 2 GiB (the client offered 16 KiB), then a
    stream of zeros (400 MB) for as long as the client reads."""
    conn.send(struct.pack(">BBL", 0x04, 0, 0x80000000))
    block = bytes(1 << 16)
    for _ in range(400 * 16):
        conn.send(block)


def stray(**kwargs):
    """A pending response that is not this query's (its identifier carries
    the UID ``UID_ROOT.777``), then good 3 and Success as if nothing happened."""
    def then(conn, find):
        ds = good(777)
        conn.respond(find, PENDING, ds, **kwargs)
        conn.respond(find, PENDING, good(3))
        finish(conn, find)
    return then


#: a response with a broken command set (and a data set), then good 3 and Success
bad_command = stray


MIDQUERY_CASES = [
    *[Case(f"mid-{kind}-{point}", fault_at(kind, point), 4,
           good=(1, 2) if point not in ("after-ac", "before-first") else (),
           formats=ALL_FORMATS if (kind == "abort" and point == "between") or
           (kind == "fin" and point == "mid-pdu") else BASE_FORMATS)
      for kind in ("abort", "fin", "rst")
      for point in ("after-ac", "before-first", "between", "mid-message", "mid-pdu")
      if not (kind == "abort" and point == "mid-pdu")],
    Case("mid-abort-undefined-source-reason", fault_at("abort-undefined", "between"), 4,
         good=(1, 2)),
    Case("mid-silence-past-td", after_two(lambda c, f: None), 4, good=(1, 2), wait=1,
         args=("-td", "1")),
    Case("mid-silence-td0-tn2", after_two(lambda c, f: None), 4, good=(1, 2), wait=2,
         args=("-td", "0", "-tn", "2")),
    Case("mid-unknown-pdu-type", after_two(lambda c, f: c.send(unknown_pdu(0x0B))), 4, good=(1, 2)),
    Case("mid-unknown-pdu-type-ff",
         after_two(lambda c, f: c.send(unknown_pdu(0xFF, b"hostile"))), 4, good=(1, 2)),
    Case("mid-garbage", after_two(lambda c, f: c.send(b"\xde\xad\xbe\xef" * 16)), 4, good=(1, 2)),
    Case("mid-pdv-longer-than-pdu", after_two(pdv_longer_than_pdu), 4, good=(1, 2)),
    Case("mid-pdv-length-zero", after_two(pdv_length_zero), 4, good=(1, 2)),
    Case("mid-pdu-length-short", after_two(pdu_length_short), 4, good=(1, 2)),
    Case("mid-pdu-length-long", after_two(pdu_length_long), 4, good=(1, 2)),
    Case("mid-pdu-header-2gib", after_two(pdu_2gib), 4, good=(1, 2), rss_mb=RSS_LIMIT_MB),
    Case("mid-command-without-commandfield", after_two(bad_command(omit=[COMMAND_FIELD])), 4,
         good=(1, 2), absent=(study_uid(777),)),
    Case("mid-command-without-status", after_two(bad_command(omit=[STATUS])), 4,
         good=(1, 2), absent=(study_uid(777),)),
    Case("mid-command-duplicate-status",
         after_two(bad_command(duplicate={STATUS: us(SUCCESS)})), 4, good=(1, 2),
         absent=(study_uid(777),)),
    Case("mid-command-duplicate-message-id",
         after_two(bad_command(duplicate={MESSAGE_ID_BEING_RESPONDED_TO: us(999)})), 4,
         good=(1, 2), absent=(study_uid(777),)),
    Case("mid-other-message-id",
         after_two(lambda c, f: stray(message_id=f.message_id + 1)(c, f)), 4,
         good=(1, 2), absent=(study_uid(777),)),
    Case("mid-other-context-id",
         after_two(lambda c, f: stray(context_id=f.context_id + 2)(c, f)), 4,
         good=(1, 2), absent=(study_uid(777),)),
    Case("mid-peer-release-rq", after_two(lambda c, f: c.send(release_rq())), 4, good=(1, 2),
         e_pattern=r"releas", formats=ALL_FORMATS),
]


# malformed identifiers -------------------------------------------------------------

def with_bad(responses, ts: str = EXPLICIT_LE, max_pdu: int = 16384):
    """Scenario: accept with ``ts``; send each response: an int n is good(n),
    bytes are sent as the identifier as they are; then Success."""
    def scenario(conn: PeerConnection) -> None:
        find = conn.handshake(ts, max_pdu)
        for r in responses:
            conn.respond(find, PENDING, good(r) if isinstance(r, int) else r(conn))
        finish(conn, find)
    return scenario


MALFORMED_CASES = [
    Case("bad-random-bytes", with_bad([1, lambda c: garbage(200, seed=7), 3]), 4, good=(1, 3),
         bad=(2,)),
    Case("bad-element-past-end", with_bad([1, lambda c: past_end(2), 3]), 4, good=(1, 3), bad=(2,)),
    Case("bad-unknown-vr-zz", with_bad([1, lambda c: unknown_vr(2), 3]), 4, good=(1, 3), bad=(2,)),
    # 64 levels of sequences are well-formed (and -k's own bound): kept;
    # deeper is refused rather than recursed into
    Case("ok-sequence-64-deep", with_bad([1, lambda c: deep_sequence(2, 64), 3]), 0,
         good=(1, 3), kept=(f"{UID_ROOT}.666.2",)),
    Case("bad-sequence-100-deep", with_bad([1, lambda c: deep_sequence(2, 100), 3]), 4,
         good=(1, 3), bad=(2,)),
    # a 10 MB value within the negotiated limits is data, not an attack: kept
    Case("ok-10mb-value", with_bad([1, lambda c: huge_value(2), 3]), 0, good=(1, 3),
         kept=(f"{UID_ROOT}.666.2",), args=("-pdu", "131072")),
    Case("bad-big-endian-under-explicit-le",
         with_bad([1, lambda c: encode(good(666), EXPLICIT_BE), 3]), 4, good=(1, 3), bad=(2,)),
    Case("bad-explicit-le-under-implicit",
         with_bad([1, lambda c: encode(good(666), EXPLICIT_LE), 3], ts=IMPLICIT_LE), 4, good=(1, 3),
         bad=(2,)),
    Case("bad-two-of-five",
         with_bad([1, lambda c: garbage(120, seed=9), 3, lambda c: unknown_vr(4), 5]), 4,
         good=(1, 3, 5), bad=(2, 4)),
]
#: every format for these; dump and json for the others
_ALL_FORMATS_MALFORMED = {"bad-random-bytes", "bad-element-past-end", "bad-unknown-vr-zz",
                          "bad-two-of-five"}
MALFORMED_CASES = [Case(**{**c.__dict__, "formats": ALL_FORMATS}) if c.id in _ALL_FORMATS_MALFORMED
                   else c for c in MALFORMED_CASES]


# statuses and success ----------------------------------------------------------------

def abort_at_release(conn: PeerConnection) -> None:
    find = conn.handshake()
    conn.respond(find, PENDING, good(1))
    conn.respond(find, SUCCESS)
    while True:
        pdu_type, _ = conn.read_pdu()
        if pdu_type == 0x05:
            return conn.abort(2, 0)


STATUS_CASES = [
    Case("status-a700-with-comment-after-two",
         final_status(0xA700, "HOSTILE A700 COMMENT", 1, 2), 1,
         good=(1, 2), e_pattern="HOSTILE A700 COMMENT", formats=ALL_FORMATS),
    Case("status-c000-with-comment-no-match", final_status(0xC000, "HOSTILE C000 COMMENT"), 1,
         e_pattern="HOSTILE C000 COMMENT"),
    Case("status-unknown-1234", final_status(0x1234, None, 1), 1, good=(1,), e_pattern="1234"),
    Case("status-unknown-7abc-with-comment", final_status(0x7ABC, "HOSTILE 7ABC COMMENT", 1), 1,
         good=(1,), e_pattern="HOSTILE 7ABC COMMENT"),
]

SUCCESS_CASES = [
    Case("ok-zero-matches", pendings(), 0),
    Case("ok-three-matches", pendings(1, 2, 3), 0, good=(1, 2, 3), formats=ALL_FORMATS),
    Case("ok-implicit-vr", pendings(1, 2, 3, ts=IMPLICIT_LE), 0, good=(1, 2, 3)),
    Case("ok-pending-warning-ff01", pendings(1, 2, status=PENDING_WARNING), 0, good=(1, 2)),
    Case("ok-one-byte-pdvs", pendings(1, 2, 3, mode="pdv1"), 0, good=(1, 2, 3)),
    Case("ok-one-byte-pdv-per-pdu", pendings(1, 2, 3, mode="pdv1pdu"), 0, good=(1, 2, 3)),
    Case("ok-one-byte-per-tcp-send", pendings(1, 2, 3, tcp1=True, delay=0.0005), 0, good=(1, 2, 3)),
    Case("ok-ac-max-pdu-4096", pendings(1, 2, max_pdu=4096), 0, good=(1, 2)),
    # PS3.8: 0 is "no limit"; the largest value and no length item at all
    Case("ok-ac-max-pdu-0", pendings(1, 2, max_pdu=0), 0, good=(1, 2)),
    Case("ok-ac-max-pdu-huge", pendings(1, 2, max_pdu=0xFFFFFFFF), 0, good=(1, 2)),
    Case("ok-ac-without-max-pdu-item", pendings(1, 2, max_pdu=None), 0, good=(1, 2)),
    # the query ended with Success: an abort instead of A-RELEASE-RP loses nothing
    Case("ok-abort-instead-of-release-rp", abort_at_release, 0, good=(1,)),
]

CASES = ASSOCIATION_CASES + MIDQUERY_CASES + MALFORMED_CASES + STATUS_CASES + SUCCESS_CASES
CASES_BY_ID = {case.id: case for case in CASES}
assert len(CASES_BY_ID) == len(CASES)


# --- the tests ------------------------------------------------------------------------

@pytest.mark.parametrize("case,fmt", [pytest.param(c, f, id=f"{c.id}-{f}")
                                      for c in CASES for f in c.formats])
def test_hostile_peer(case: Case, fmt: str, tmp_path: Path) -> None:
    bound = case.wait + SLACK
    with HostilePeer(case.scenario) as peer:
        run = run_find(peer.port, fmt, tmp_path, case.args, hang=bound + HANG)
    what = f"{case.id} --format {fmt}: {run.summary()}\nstderr:\n{run.stderr[-3000:]}"
    assert not peer.errors, f"scenario bug: {peer.errors}"
    assert not run.hung, what
    assert "Traceback" not in run.stderr, what
    assert run.returncode == case.exit, what
    if case.exit:
        assert len(run.e_lines) == 1, what
        if case.e_pattern:
            assert re.search(case.e_pattern, run.e_lines[0], re.IGNORECASE), what
    else:
        assert not run.e_lines, what

    if run.stdout.strip() or case.good:
        uids = output_uids(fmt, run.stdout)
        for n in case.good:
            assert study_uid(n) in uids, f"good response {n} missing\n{what}\n{run.stdout[:2000]}"
        for uid in case.absent:
            assert uid not in uids, f"{uid} in the output\n{what}"
        if case.exit == 0:
            assert uids == {study_uid(n) for n in case.good} | set(case.kept), what

    if case.bad:
        assert len(run.w_lines) == len(case.bad), what
        for n in case.bad:
            assert any(response_is_numbered(line, n) for line in run.w_lines), \
                f"no W: line names response {n}\n{what}"

    if case.rss_mb is not None:
        assert run.maxrss_mb < case.rss_mb, what
    assert run.elapsed < bound, what


COUNT = 100_000


def many_pendings(conn: PeerConnection) -> None:
    """COUNT small pending responses, sent in blocks, then Success."""
    find = conn.handshake()
    one = conn.response_bytes(find, PENDING, good(1))
    block = one * 1000
    for _ in range(COUNT // 1000):
        conn.send(block, chunk=1 << 20)
    conn.respond(find, SUCCESS)
    conn.answer_release()


def test_hostile_peer_100k_pending_responses(tmp_path: Path) -> None:
    """100,000 pending responses: exit 0, every one written, memory flat."""
    out = tmp_path / "out.ndjson"
    with HostilePeer(many_pendings, op_timeout=60) as peer:
        run = run_find(peer.port, "ndjson", tmp_path, ("-o", str(out)), hang=55,
                       stdout_path=os.devnull)
    what = run.summary() + "\n" + run.stderr[-2000:]
    assert not peer.errors, peer.errors
    assert not run.hung, what
    assert run.returncode == 0, what
    assert not run.e_lines and "Traceback" not in run.stderr, what
    lines = out.read_text("utf-8").splitlines()
    assert len(lines) == COUNT, what
    for line in lines:
        json.loads(line)
    assert run.maxrss_mb < RSS_LIMIT_MB, what
    assert run.elapsed < 45, what


# --- over TLS: pynetdicom's own thread reads the socket, through the guard ---------

TLS_CASES = ["mid-pdu-header-2gib", "mid-silence-td0-tn2", "mid-unknown-pdu-type",
             "mid-peer-release-rq", "mid-abort-between", "mid-other-message-id",
             "bad-random-bytes", "ok-three-matches", "assoc-max-pdu-1"]


@pytest.mark.parametrize("case_id", TLS_CASES)
def test_hostile_peer_over_tls(case_id: str, tmp_path: Path, tls_material) -> None:
    case = CASES_BY_ID[case_id]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls_material.server_cert, tls_material.server_key)
    bound = case.wait + SLACK
    args = ("+tla", "+cf", str(tls_material.ca_cert), *case.args)
    with HostilePeer(case.scenario, ssl_context=context) as peer:
        run = run_find(peer.port, "dump", tmp_path, args, hang=bound + HANG)
    what = f"{case.id} over TLS: {run.summary()}\nstderr:\n{run.stderr[-3000:]}"
    assert not peer.errors, f"scenario bug: {peer.errors}"
    assert not run.hung, what
    assert "Traceback" not in run.stderr, what
    assert run.returncode == case.exit, what
    assert run.elapsed < bound, what
    if case.exit:
        assert len(run.e_lines) == 1, what
    uids = output_uids("dump", run.stdout)
    for n in case.good:
        assert study_uid(n) in uids, what


# --- found in review: each failed before its fix -----------------------------------

def _log_pdus(conn: PeerConnection) -> None:
    """Read and log the type of every PDU the client sends until it closes."""
    while True:
        pdu_type, _ = conn.read_pdu()
        conn.log(f"client PDU 0x{pdu_type:02X}")


def test_an_abort_over_tls_is_a_tls_record(tmp_path: Path, tls_material) -> None:
    """Shutting the socket down for reading must not drop the SSL object:
    the A-ABORT after a DIMSE timeout reaches the peer encrypted."""
    def scenario(conn: PeerConnection) -> None:
        find = conn.handshake()
        conn.respond(find, PENDING, good(1))
        _log_pdus(conn)

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls_material.server_cert, tls_material.server_key)
    with HostilePeer(scenario, ssl_context=context) as peer:
        run = run_find(peer.port, "dump", tmp_path,
                       ("+tla", "+cf", str(tls_material.ca_cert), "-td", "1"), hang=15)
    assert run.returncode == 4, run.summary()
    assert any(e.endswith("client PDU 0x07") for e in peer.events), peer.events


def test_an_unanswered_release_ends_at_the_network_timeout_with_ta_0(tmp_path: Path) -> None:
    """-ta 0: pynetdicom would wait for the A-RELEASE-RP for ever."""
    def scenario(conn: PeerConnection) -> None:
        find = conn.handshake()
        conn.respond(find, PENDING, good(1))
        conn.respond(find, SUCCESS)
        _log_pdus(conn)  # never answers the A-RELEASE-RQ

    with HostilePeer(scenario) as peer:
        run = run_find(peer.port, "json", tmp_path, ("-ta", "0", "-tn", "2"), hang=15)
    assert run.returncode == 0, run.summary()  # the query itself was complete
    assert run.elapsed < 2 + SLACK, run.summary()
    assert output_uids("json", run.stdout) == {study_uid(1)}


def test_bytes_an_exchange_leaves_go_to_the_next_one() -> None:
    """Exchange is public API: responses read into one exchange's buffer
    but not taken are the next exchange's first."""
    from io import BytesIO

    from pydicom import Dataset
    from pynetdicom.dimse_primitives import C_FIND
    from pynetdicom.dsutils import encode as encode_identifier

    from dimsekit.api import AssociationSettings, Exchange, open_association

    def scenario(conn: PeerConnection) -> None:
        find = conn.handshake()
        conn.send(b"".join(conn.response_bytes(find, PENDING, good(n)) for n in (1, 2, 3))
                  + conn.response_bytes(find, SUCCESS))
        conn.answer_release()

    with HostilePeer(scenario) as peer:
        settings = AssociationSettings(peer="127.0.0.1", port=peer.port, dimse_timeout=3)
        with open_association(settings, [STUDY_ROOT_FIND]) as assoc:
            cx = assoc.accepted_contexts[0]
            ts = cx.transfer_syntax[0]
            query = Dataset()
            query.QueryRetrieveLevel = "STUDY"
            request = C_FIND()
            request.MessageID, request.AffectedSOPClassUID, request.Priority = 1, STUDY_ROOT_FIND, 2
            request.Identifier = BytesIO(encode_identifier(query, ts.is_implicit_VR,
                                                           ts.is_little_endian, False))
            with Exchange(assoc) as first:
                first.send(request, cx.context_id)
                assert first.receive().status == PENDING
                time.sleep(0.3)  # the rest has arrived (read into the buffer)
            statuses = []
            with Exchange(assoc) as second:
                while True:
                    message = second.receive()
                    assert message is not None, second.failure
                    statuses.append(message.status)
                    if message.status != PENDING:
                        break
    assert statuses == [PENDING, PENDING, SUCCESS]


def test_ctrl_c_while_negotiating_leaves_no_thread_behind() -> None:
    """A script's KeyboardInterrupt during ae.associate: pynetdicom's reader
    thread (not a daemon) must end with it, or the script never exits."""
    import signal as signals
    import threading

    from dimsekit.api import AssociationSettings, open_association

    def scenario(conn: PeerConnection) -> None:
        conn.read_associate_rq()  # and never answer

    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals go to the main thread")
    previous = signals.signal(signals.SIGINT, signals.default_int_handler)
    try:
        with HostilePeer(scenario) as peer:
            settings = AssociationSettings(peer="127.0.0.1", port=peer.port, acse_timeout=10)
            timer = threading.Timer(0.5, lambda: os.kill(os.getpid(), signals.SIGINT))
            timer.start()
            with pytest.raises(KeyboardInterrupt), open_association(settings, [STUDY_ROOT_FIND]):
                pass
            timer.join()
    finally:
        signals.signal(signals.SIGINT, previous)
    lingering = [t.name for t in threading.enumerate()
                 if not t.daemon and t is not threading.main_thread()]
    assert lingering == []
