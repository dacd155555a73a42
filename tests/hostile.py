"""A hostile DICOM peer on a raw socket, for tests.

Not pynetdicom's server: every byte on the wire is built here, so that a
scenario can send what no well-behaved SCP would.  A scenario is a function
that gets a :class:`PeerConnection` and drives the conversation::

    def scenario(conn):
        find = conn.handshake()                 # RQ in, AC out, C-FIND-RQ in
        conn.respond(find, PENDING, good(1))
        conn.respond(find, PENDING, good(2), mode="pdv1")
        conn.abort(source=2, reason=0)

    with HostilePeer(scenario) as peer:
        run_client("127.0.0.1", peer.port)

The peer listens on 127.0.0.1 on a free port, serves ``connections``
connections one after another in a daemon thread, and never hangs the test:
every socket operation has a short timeout and is retried only until the
peer is stopped or ``op_timeout`` seconds have passed.  When a scenario
returns without closing the connection, the peer keeps it open, silently
reading and discarding whatever arrives, until the client closes it or the
peer is stopped (a hostile peer does not hang up to help a client exit).
"""

from __future__ import annotations

import contextlib
import random
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.sequence import Sequence

# --- constants ---------------------------------------------------------------

A_ASSOCIATE_RQ, A_ASSOCIATE_AC, A_ASSOCIATE_RJ = 0x01, 0x02, 0x03
P_DATA_TF, A_RELEASE_RQ, A_RELEASE_RP, A_ABORT = 0x04, 0x05, 0x06, 0x07

APPLICATION_CONTEXT = "1.2.840.10008.3.1.1.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
EXPLICIT_BE = "1.2.840.10008.1.2.2"
STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"

PENDING, PENDING_WARNING, SUCCESS, CANCEL = 0xFF00, 0xFF01, 0x0000, 0xFE00
C_FIND_RQ, C_FIND_RSP = 0x0020, 0x8020
NO_DATA_SET, DATA_SET = 0x0101, 0x0000

# command set tags (group 0000)
GROUP_LENGTH = 0x00000000
AFFECTED_SOP_CLASS_UID = 0x00000002
COMMAND_FIELD = 0x00000100
MESSAGE_ID = 0x00000110
MESSAGE_ID_BEING_RESPONDED_TO = 0x00000120
COMMAND_DATA_SET_TYPE = 0x00000800
STATUS = 0x00000900
ERROR_COMMENT = 0x00000902

#: root of the UIDs the scenarios put into StudyInstanceUID
UID_ROOT = "1.2.826.0.1.3680043.10.999"


class PeerClosed(Exception):
    """The client closed the connection (or the peer was stopped)."""


# --- byte builders -----------------------------------------------------------

def pdu(pdu_type: int, body: bytes, length: int | None = None) -> bytes:
    """A PDU: type, reserved, 4-byte length (``length`` may lie), body."""
    return struct.pack(">BBL", pdu_type, 0, len(body) if length is None else length) + body


def item(item_type: int, body: bytes) -> bytes:
    """A (sub-)item of an association PDU: type, reserved, 2-byte length."""
    return struct.pack(">BBH", item_type, 0, len(body)) + body


def ae_title(title: str | bytes) -> bytes:
    raw = title.encode("ascii") if isinstance(title, str) else title
    return raw[:16].ljust(16, b" ")


def associate_rj(result: int, source: int, reason: int) -> bytes:
    """A-ASSOCIATE-RJ with any byte values (PS3.8 9.3.4)."""
    return pdu(A_ASSOCIATE_RJ, bytes([0, result & 0xFF, source & 0xFF, reason & 0xFF]))


def a_abort(source: int = 2, reason: int = 0) -> bytes:
    """A-ABORT (PS3.8 9.3.8): source 0 service user, 2 service provider."""
    return pdu(A_ABORT, bytes([0, 0, source & 0xFF, reason & 0xFF]))


def release_rq() -> bytes:
    return pdu(A_RELEASE_RQ, bytes(4))


def release_rp() -> bytes:
    return pdu(A_RELEASE_RP, bytes(4))


def unknown_pdu(pdu_type: int = 0x0B, body: bytes = bytes(4)) -> bytes:
    """A PDU of a type PS3.8 does not define (0x08..0xFF)."""
    return pdu(pdu_type, body)


def garbage(n: int = 64, seed: int = 1) -> bytes:
    """``n`` reproducible pseudo-random bytes."""
    return random.Random(seed).randbytes(n)


def pdv(context_id: int, control: int, fragment: bytes, length: int | None = None) -> bytes:
    """A presentation-data-value item; control bit 0: command, bit 1: last."""
    item_length = len(fragment) + 2 if length is None else length
    return struct.pack(">LBB", item_length, context_id & 0xFF, control) + fragment


def p_data(*pdvs: bytes, length: int | None = None) -> bytes:
    return pdu(P_DATA_TF, b"".join(pdvs), length)


@dataclass
class AcceptedContext:
    context_id: int
    result: int = 0  # 0 acceptance, 1 user rejection, 2 no reason, 3 abstract, 4 ts
    transfer_syntax: str = EXPLICIT_LE


def associate_ac(called: str | bytes, calling: str | bytes,
                 contexts: Iterable[AcceptedContext], max_pdu: int | None = 16384,
                 implementation_uid: str = "1.2.826.0.1.3680043.10.999.0.1",
                 version_name: str = "HOSTILE_PEER",
                 length: int | None = None) -> bytes:
    """A-ASSOCIATE-AC built by hand (PS3.8 9.3.3); ``max_pdu`` None: no 0x51 item."""
    body = struct.pack(">HH", 1, 0) + ae_title(called) + ae_title(calling) + bytes(32)
    body += item(0x10, APPLICATION_CONTEXT.encode())
    for cx in contexts:
        body += item(0x21, bytes([cx.context_id & 0xFF, 0, cx.result & 0xFF, 0])
                     + item(0x40, cx.transfer_syntax.encode()))
    user = b""
    if max_pdu is not None:
        user += item(0x51, struct.pack(">L", max_pdu))
    user += item(0x52, implementation_uid.encode()) + item(0x55, version_name.encode())
    body += item(0x50, user)
    return pdu(A_ASSOCIATE_AC, body, length)


# --- DIMSE command sets (always Implicit VR Little Endian) -------------------

def element(tag: int, value: bytes) -> bytes:
    return struct.pack("<HHL", tag >> 16, tag & 0xFFFF, len(value)) + value


def us(value: int) -> bytes:
    return struct.pack("<H", value & 0xFFFF)


def ui(uid: str) -> bytes:
    raw = uid.encode("ascii")
    return raw + b"\0" if len(raw) % 2 else raw


def lo(text: str) -> bytes:
    raw = text.encode("ascii")
    return raw + b" " if len(raw) % 2 else raw


def command_set(elements: Iterable[tuple[int, bytes]], group_length: bool = True) -> bytes:
    """Elements in the given order (duplicates allowed), with (0000,0000)
    computed and put first."""
    body = b"".join(element(tag, value) for tag, value in elements)
    return (element(GROUP_LENGTH, struct.pack("<L", len(body))) if group_length else b"") + body


def find_rsp_command(message_id: int, status: int, *, has_data_set: bool,
                     sop_class: str = STUDY_ROOT_FIND, error_comment: str | None = None,
                     omit: Iterable[int] = (), duplicate: dict[int, bytes] | None = None,
                     command_field: int = C_FIND_RSP) -> bytes:
    """A C-FIND-RSP command set.  ``omit``: tags to leave out; ``duplicate``:
    tag -> second value, written right after the first."""
    elements = [
        (AFFECTED_SOP_CLASS_UID, ui(sop_class)),
        (COMMAND_FIELD, us(command_field)),
        (MESSAGE_ID_BEING_RESPONDED_TO, us(message_id)),
        (COMMAND_DATA_SET_TYPE, us(DATA_SET if has_data_set else NO_DATA_SET)),
        (STATUS, us(status)),
    ]
    if error_comment is not None:
        elements.append((ERROR_COMMENT, lo(error_comment)))
    omitted = set(omit)
    out = []
    for tag, value in elements:
        if tag in omitted:
            continue
        out.append((tag, value))
        if duplicate and tag in duplicate:
            out.append((tag, duplicate[tag]))
    return command_set(out)


def parse_command_set(data: bytes) -> dict[int, bytes]:
    elements, offset = {}, 0
    while offset + 8 <= len(data):
        group, elem, length = struct.unpack_from("<HHL", data, offset)
        offset += 8
        elements[group << 16 | elem] = data[offset:offset + length]
        offset += length
    return elements


# --- identifiers --------------------------------------------------------------

def encode(ds: Dataset, transfer_syntax: str = EXPLICIT_LE) -> bytes:
    """``ds`` encoded with pydicom in one of the three uncompressed syntaxes."""
    fp = DicomBytesIO()
    fp.is_little_endian = transfer_syntax != EXPLICIT_BE
    fp.is_implicit_VR = transfer_syntax == IMPLICIT_LE
    write_dataset(fp, ds)
    return fp.getvalue()


def study_uid(n: int) -> str:
    return f"{UID_ROOT}.{n}"


def good(n: int) -> Dataset:
    """The identifier of good response ``n``: its StudyInstanceUID ends in ``.n``."""
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.PatientName = f"GOOD^R{n}"
    ds.StudyInstanceUID = study_uid(n)
    return ds


def past_end(n: int, transfer_syntax: str = EXPLICIT_LE) -> bytes:
    """Good elements, then (0010,0020) announcing 0x400 bytes with 6 left."""
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.PatientName = f"BAD^R{n}"
    head = encode(ds, transfer_syntax)
    if transfer_syntax == IMPLICIT_LE:
        return head + struct.pack("<HHL", 0x0010, 0x0020, 0x400) + b"ABCDEF"
    return head + struct.pack("<HH", 0x0010, 0x0020) + b"LO" + struct.pack("<H", 0x400) + b"ABCDEF"


def unknown_vr(n: int) -> bytes:
    """Explicit VR LE: good elements, (0010,0021) with VR b"ZZ", then the study UID."""
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.PatientName = f"BAD^R{n}"
    tail = Dataset()
    tail.StudyInstanceUID = f"{UID_ROOT}.666.{n}"
    return (encode(ds) + struct.pack("<HH", 0x0010, 0x0021) + b"ZZ" + struct.pack("<H", 4)
            + b"ABCD" + encode(tail))


def deep_sequence(n: int, depth: int = 64, transfer_syntax: str = EXPLICIT_LE) -> bytes:
    """An identifier whose ContentSequence nests ``depth`` levels deep."""
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.PatientName = f"BAD^R{n}"
    inner = Dataset()
    inner.TextValue = "bottom"
    for _ in range(depth):
        outer = Dataset()
        outer.ContentSequence = Sequence([inner])
        inner = outer
    ds.ContentSequence = inner.ContentSequence
    ds.StudyInstanceUID = f"{UID_ROOT}.666.{n}"
    return encode(ds, transfer_syntax)


def huge_value(n: int, size: int = 10_000_000) -> bytes:
    """Explicit VR LE: good elements, then a ``size``-byte PatientComments
    (dictionary VR LT, at most 10240 characters; explicit VR LT cannot carry
    more than 64 KiB, so it is sent as UN, as pydicom would write it), then
    the study UID."""
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.PatientName = f"BAD^R{n}"
    tail = Dataset()
    tail.StudyInstanceUID = f"{UID_ROOT}.666.{n}"
    return (encode(ds) + struct.pack("<HH", 0x0010, 0x4000) + b"UN\0\0" + struct.pack("<L", size)
            + b"A" * size + encode(tail))


# --- fragmenting a message into PDUs ----------------------------------------

def message_pdus(context_id: int, command: bytes, data_set: bytes | None, max_pdu: int,
                 pdv_size: int | None = None, pdvs_per_pdu: int | None = None) -> list[bytes]:
    """The P-DATA-TF PDUs carrying one message.

    Fragments are at most ``pdv_size`` bytes (default: as many as fit in
    ``max_pdu``); each PDU holds as many PDVs as fit in ``max_pdu`` or
    ``pdvs_per_pdu``.  Command and data set never share a PDU.
    """
    limit = max(max_pdu, 7) if max_pdu else 1 << 20
    size = pdv_size or (limit - 6)
    out = []
    for payload, is_command in ((command, True), (data_set, False)):
        if payload is None:
            continue
        fragments = [payload[i:i + size] for i in range(0, len(payload), size)] or [b""]
        pdvs = []
        for i, fragment in enumerate(fragments):
            control = (1 if is_command else 0) | (2 if i == len(fragments) - 1 else 0)
            pdvs.append(pdv(context_id, control, fragment))
        batch, batch_len = [], 0
        for one in pdvs:
            full = (pdvs_per_pdu is not None and len(batch) >= pdvs_per_pdu) or (
                batch and batch_len + len(one) > limit)
            if full:
                out.append(p_data(*batch))
                batch, batch_len = [], 0
            batch.append(one)
            batch_len += len(one)
        if batch:
            out.append(p_data(*batch))
    return out


# --- what the client sent --------------------------------------------------------

@dataclass
class ProposedContext:
    context_id: int
    abstract_syntax: str
    transfer_syntaxes: list[str]


@dataclass
class AssociateRQ:
    called: str
    calling: str
    contexts: list[ProposedContext]
    max_pdu: int | None
    raw: bytes


def parse_associate_rq(body: bytes) -> AssociateRQ:
    called = body[4:20].decode("ascii", "replace").strip()
    calling = body[20:36].decode("ascii", "replace").strip()
    contexts, max_pdu, offset = [], None, 68
    while offset + 4 <= len(body):
        item_type, _, length = struct.unpack_from(">BBH", body, offset)
        value = body[offset + 4:offset + 4 + length]
        offset += 4 + length
        if item_type == 0x20:
            cx = ProposedContext(value[0], "", [])
            sub = 4
            while sub + 4 <= len(value):
                sub_type, _, sub_len = struct.unpack_from(">BBH", value, sub)
                uid = value[sub + 4:sub + 4 + sub_len].decode("ascii", "replace").strip("\0 ")
                if sub_type == 0x30:
                    cx.abstract_syntax = uid
                elif sub_type == 0x40:
                    cx.transfer_syntaxes.append(uid)
                sub += 4 + sub_len
            contexts.append(cx)
        elif item_type == 0x50:
            sub = 0
            while sub + 4 <= len(value):
                sub_type, _, sub_len = struct.unpack_from(">BBH", value, sub)
                if sub_type == 0x51 and sub_len == 4:
                    max_pdu = struct.unpack_from(">L", value, sub + 4)[0]
                sub += 4 + sub_len
    return AssociateRQ(called, calling, contexts, max_pdu, body)


@dataclass
class FindRQ:
    context_id: int
    message_id: int
    sop_class: str
    command: dict[int, bytes]
    identifier: bytes | None


# --- the connection a scenario drives ----------------------------------------

class PeerConnection:
    """One accepted connection; the methods are the scenario's vocabulary."""

    def __init__(self, sock: socket.socket, peer: HostilePeer, index: int):
        self.sock = sock
        self.peer = peer
        self.index = index
        self.rq: AssociateRQ | None = None
        self.find: FindRQ | None = None
        self.accepted_ts = EXPLICIT_LE
        self.closed = False
        self._buffer = b""
        sock.settimeout(0.2)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    # low level
    def log(self, text: str) -> None:
        self.peer.events.append(f"[{self.index}] {text}")

    def _deadline(self) -> float:
        return time.monotonic() + self.peer.op_timeout

    def recv_exact(self, n: int) -> bytes:
        deadline = self._deadline()
        while len(self._buffer) < n:
            if self.peer.stopping.is_set() or time.monotonic() > deadline:
                raise PeerClosed("stopped or timed out while reading")
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError as exc:
                raise PeerClosed(f"recv: {exc}") from exc
            if not chunk:
                raise PeerClosed("client closed the connection")
            self._buffer += chunk
        data, self._buffer = self._buffer[:n], self._buffer[n:]
        return data

    def read_pdu(self, max_length: int = 1 << 22) -> tuple[int, bytes]:
        pdu_type, _, length = struct.unpack(">BBL", self.recv_exact(6))
        if length > max_length:
            raise PeerClosed(f"client sent a PDU of {length} bytes")
        return pdu_type, self.recv_exact(length)

    def send(self, data: bytes, per_byte: bool = False, delay: float = 0.0,
             chunk: int = 65536) -> None:
        """Send ``data``: in ``chunk``-byte pieces, or one byte per send
        (``per_byte``), sleeping ``delay`` seconds after each piece."""
        step = 1 if per_byte else chunk
        view = memoryview(data)
        for start in range(0, len(data), step):
            piece = view[start:start + step]
            deadline = self._deadline()
            while piece:
                if self.peer.stopping.is_set() or time.monotonic() > deadline:
                    raise PeerClosed("stopped or timed out while sending")
                try:
                    sent = self.sock.send(piece)
                except TimeoutError:
                    continue
                except OSError as exc:
                    raise PeerClosed(f"send: {exc}") from exc
                piece = piece[sent:]
            if delay:
                self.silence(delay)

    def silence(self, seconds: float) -> None:
        """Say nothing for ``seconds`` (returns early if the peer stops)."""
        self.peer.stopping.wait(seconds)

    def fin(self) -> None:
        """Orderly close: shutdown + close (the client reads EOF)."""
        self.log("FIN")
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.closed = True

    def rst(self) -> None:
        """Abortive close: SO_LINGER 0 then close (the client gets ECONNRESET)."""
        self.log("RST")
        with contextlib.suppress(OSError):
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()
        self.closed = True

    def hold(self) -> None:
        """Keep the connection open, reading and discarding, until the
        client closes it or the peer stops."""
        while not self.closed and not self.peer.stopping.is_set():
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            if not chunk:
                break

    # association
    def read_associate_rq(self) -> AssociateRQ:
        pdu_type, body = self.read_pdu()
        if pdu_type != A_ASSOCIATE_RQ:
            raise PeerClosed(f"expected A-ASSOCIATE-RQ, got PDU type {pdu_type:#04x}")
        self.rq = parse_associate_rq(body)
        contexts = [(c.context_id, c.abstract_syntax, c.transfer_syntaxes)
                    for c in self.rq.contexts]
        self.log(f"RQ called={self.rq.called} calling={self.rq.calling} max_pdu={self.rq.max_pdu} "
                 f"contexts={contexts}")
        return self.rq

    @property
    def client_max_pdu(self) -> int:
        return (self.rq.max_pdu if self.rq else None) or 16384

    def associate_ac(self, transfer_syntax: str = EXPLICIT_LE, max_pdu: int | None = 16384,
                     reject: dict[int, int] | None = None,
                     contexts: list[AcceptedContext] | None = None, **kwargs) -> bytes:
        """The AC bytes accepting every proposed context with ``transfer_syntax``
        except those in ``reject`` (context id -> result); ``contexts``
        replaces the list altogether."""
        assert self.rq is not None
        if contexts is None:
            contexts = [AcceptedContext(cx.context_id, (reject or {}).get(cx.context_id, 0),
                                        transfer_syntax) for cx in self.rq.contexts]
        return associate_ac(self.rq.called, self.rq.calling, contexts, max_pdu, **kwargs)

    def accept(self, transfer_syntax: str = EXPLICIT_LE, max_pdu: int | None = 16384,
               **kwargs) -> None:
        self.accepted_ts = transfer_syntax
        self.send(self.associate_ac(transfer_syntax, max_pdu, **kwargs))
        self.log("AC sent")

    def read_find_rq(self) -> FindRQ:
        """Reassemble the C-FIND-RQ (command and identifier) from P-DATA-TF PDUs."""
        command, data, context_id, command_done, data_done = b"", b"", 0, False, False
        parsed: dict[int, bytes] = {}
        while not (command_done
                   and (data_done or parsed.get(COMMAND_DATA_SET_TYPE) == us(NO_DATA_SET))):
            pdu_type, body = self.read_pdu()
            if pdu_type != P_DATA_TF:
                raise PeerClosed(f"expected P-DATA-TF, got PDU type {pdu_type:#04x}")
            offset = 0
            while offset + 6 <= len(body):
                length, context_id, control = struct.unpack_from(">LBB", body, offset)
                fragment = body[offset + 6:offset + 4 + length]
                offset += 4 + length
                if control & 1:
                    command += fragment
                    if control & 2:
                        command_done = True
                        parsed = parse_command_set(command)
                else:
                    data += fragment
                    data_done = bool(control & 2)
        message_id = struct.unpack("<H", parsed.get(MESSAGE_ID, b"\0\0")[:2])[0]
        sop_class = parsed.get(AFFECTED_SOP_CLASS_UID, b"").decode("ascii", "replace").strip("\0 ")
        self.find = FindRQ(context_id, message_id, sop_class, parsed, data or None)
        self.log(f"C-FIND-RQ cx={context_id} msg={message_id} sop={sop_class}")
        return self.find

    def handshake(self, transfer_syntax: str = EXPLICIT_LE, max_pdu: int | None = 16384) -> FindRQ:
        """Read the RQ, accept every context, read the C-FIND-RQ."""
        self.read_associate_rq()
        self.accept(transfer_syntax, max_pdu)
        return self.read_find_rq()

    # responses
    def response_bytes(self, find: FindRQ, status: int, identifier: Dataset | bytes | None = None,
                       *, error_comment: str | None = None, mode: str = "normal",
                       context_id: int | None = None, message_id: int | None = None,
                       transfer_syntax: str | None = None, **command_kwargs) -> bytes:
        """The PDU bytes of one C-FIND-RSP.

        ``identifier``: a Dataset (encoded in the negotiated or the given
        ``transfer_syntax``), raw bytes, or None.  ``mode``: "normal" (PDUs
        as big as the client allows), "pdv1" (one byte per PDV, PDVs packed
        into PDUs), "pdv1pdu" (one byte per PDV, one PDV per PDU).
        """
        data = identifier
        if isinstance(identifier, Dataset):
            data = encode(identifier, transfer_syntax or self.accepted_ts)
        command = find_rsp_command(find.message_id if message_id is None else message_id, status,
                                   has_data_set=data is not None,
                                   sop_class=find.sop_class or STUDY_ROOT_FIND,
                                   error_comment=error_comment, **command_kwargs)
        cx = find.context_id if context_id is None else context_id
        if mode == "normal":
            pdus = message_pdus(cx, command, data, self.client_max_pdu)
        elif mode == "pdv1":
            pdus = message_pdus(cx, command, data, self.client_max_pdu, pdv_size=1)
        elif mode == "pdv1pdu":
            pdus = message_pdus(cx, command, data, self.client_max_pdu, pdv_size=1, pdvs_per_pdu=1)
        else:
            raise ValueError(mode)
        return b"".join(pdus)

    def respond(self, find: FindRQ, status: int, identifier: Dataset | bytes | None = None, *,
                tcp1: bool = False, delay: float = 0.0, **kwargs) -> None:
        """Send one C-FIND-RSP (see :meth:`response_bytes`); ``tcp1``: one
        byte per TCP send, ``delay`` seconds apart."""
        self.send(self.response_bytes(find, status, identifier, **kwargs), per_byte=tcp1,
                  delay=delay)

    def answer_release(self) -> None:
        """Wait for the client's A-RELEASE-RQ and answer A-RELEASE-RP."""
        while True:
            pdu_type, _ = self.read_pdu()
            if pdu_type == A_RELEASE_RQ:
                self.send(release_rp())
                self.log("released")
                return
            if pdu_type == A_ABORT:
                raise PeerClosed("client aborted")

    def abort(self, source: int = 2, reason: int = 0) -> None:
        self.send(a_abort(source, reason))
        self.log(f"A-ABORT source={source} reason={reason}")


# --- the server -------------------------------------------------------------------

Scenario = Callable[[PeerConnection], None]


@dataclass
class HostilePeer:
    """``with HostilePeer(scenario) as peer:`` -> ``peer.port``."""

    scenario: Scenario
    connections: int = 1
    #: longest any single socket operation waits
    op_timeout: float = 30.0
    port: int = 0
    #: a server-side ssl.SSLContext: the scenario then speaks over TLS
    ssl_context: Any = None
    events: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.stopping = threading.Event()
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._live: PeerConnection | None = None

    def __enter__(self) -> HostilePeer:  # noqa: PYI034
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(4)
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, name=f"hostile-peer-{self.port}",
                                        daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def stop(self) -> None:
        self.stopping.set()
        live = self._live
        if live is not None and not live.closed:
            # shutdown wakes a recv blocked in the peer's thread; close alone does not
            with contextlib.suppress(OSError):
                live.sock.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(5)
        if self._listener is not None:
            self._listener.close()

    def _serve(self) -> None:
        deadline = time.monotonic() + self.op_timeout
        served = 0
        while served < self.connections and not self.stopping.is_set():
            if time.monotonic() > deadline:
                self.errors.append("no connection")
                return
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self.ssl_context is not None:
                try:
                    sock.settimeout(5)
                    sock = self.ssl_context.wrap_socket(sock, server_side=True)
                except OSError as exc:  # the client gave up on the handshake
                    self.events.append(f"TLS handshake failed: {exc}")
                    sock.close()
                    served += 1
                    continue
            conn = PeerConnection(sock, self, served)
            self._live = conn
            served += 1
            deadline = time.monotonic() + self.op_timeout
            try:
                self.scenario(conn)
            except PeerClosed as exc:
                self.events.append(f"[{conn.index}] closed: {exc}")
            except Exception as exc:  # noqa: BLE001 - a scenario bug: record, never raise in the thread
                self.errors.append(f"{type(exc).__name__}: {exc}")
            try:
                conn.hold()
            finally:
                if not conn.closed:
                    with contextlib.suppress(OSError):
                        conn.sock.close()
                    conn.closed = True
