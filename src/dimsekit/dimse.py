"""Requests and their responses on an established association.

    with Exchange(assoc, idle=out.flush) as exchange:
        exchange.send(find_request(1, sop_class, identifier), context_id)
        message = exchange.receive()             # Message, or None
        message.status, message.dataset          # encoded data set (bytes) or None

``idle`` (optional) is called whenever ``receive()`` is about to wait for
the peer: the moment to flush buffered output, so that whoever reads it
sees every response dimsekit has, without a flush per message.

Two implementations behind the one class (``Exchange(...)`` picks):

* the fast one, :mod:`dimsekit._internals.exchange`, which reads the
  socket in the calling thread without pynetdicom's per-message cost
  (and relies on pynetdicom 3.0's internals to do so);
* the pure one here, :class:`PureExchange`, on pynetdicom's public API:
  ``send_c_find`` / ``send_c_echo`` send (and pause the association's
  reactor, as pynetdicom's own SCU methods do), ``assoc.dimse.get_msg``
  receives the DIMSE primitives its DUL thread decoded.  Used when
  ``DIMSEKIT_PURE=1`` is set or the capability check at start-up fails
  (:func:`dimsekit._internals.fast_path`).

Whichever reads, every read pynetdicom's DUL thread makes goes through a
:class:`SocketGuard`: bounded in length and time, and ended at once when a
run gives up (the DUL thread is not a daemon: a read blocked for ever
would keep the process alive).  The guard wraps the association socket's
public ``recv``; it is not part of the fast path.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import struct
import time
from io import BytesIO
from typing import Any, NamedTuple

log = logging.getLogger("dimsekit.dimse")

# command set elements (PS3.7 E.1), as 32-bit tags
COMMAND_FIELD = 0x00000100
MESSAGE_ID_BEING_RESPONDED_TO = 0x00000120
COMMAND_DATA_SET_TYPE = 0x00000800
STATUS = 0x00000900

ERROR_COMMENT = 0x00000902

NO_DATA_SET = 0x0101
P_DATA_TF = 0x04
A_RELEASE_RQ = 0x05
A_ABORT = 0x07

PDU_NAMES = {0x01: "A-ASSOCIATE-RQ", 0x02: "A-ASSOCIATE-AC", 0x03: "A-ASSOCIATE-RJ",
             0x04: "P-DATA-TF", 0x05: "A-RELEASE-RQ", 0x06: "A-RELEASE-RP",
             0x07: "A-ABORT"}

#: largest PDU other than P-DATA-TF taken from a peer (an A-ASSOCIATE-AC
#: with every option is a few KiB); P-DATA-TF PDUs are bounded by the
#: maximum length dimsekit offered
MAX_CONTROL_PDU = 1 << 20
#: largest message (command set or data set) put together from fragments:
#: far beyond any C-FIND identifier, well below what hurts a machine
MAX_MESSAGE = 256 << 20

# PS3.8 Table 9-21 (A-ASSOCIATE-RJ), worded as pynetdicom words them
REJECT_RESULTS = {1: "Rejected Permanent", 2: "Rejected Transient"}
REJECT_SOURCES = {1: "Service User", 2: "Service Provider (ACSE)",
                  3: "Service Provider (Presentation)"}
REJECT_REASONS = {
    1: {1: "No reason given", 2: "Application context name not supported",
        3: "Calling AE title not recognised", 7: "Called AE title not recognised"},
    2: {1: "No reason given", 2: "Protocol version not supported"},
    3: {1: "Temporary congestion", 2: "Local limit exceeded"},
}
# PS3.8 Table 9-26 (A-ABORT)
ABORT_SOURCES = {0: "Service User", 2: "Service Provider"}
ABORT_REASONS = {0: "reason-not-specified", 1: "unrecognized-PDU", 2: "unexpected-PDU",
                 4: "unrecognized-PDU-parameter", 5: "unexpected-PDU-parameter",
                 6: "invalid-PDU-parameter-value"}

_ELEMENT_HEADER = struct.Struct("<HHL")
_US = struct.Struct("<H")
_PDU_HEADER = struct.Struct(">BxL")
_PDV_HEADER = struct.Struct(">LB")


def _named(table: dict, value: int) -> str:
    name = table.get(value)
    return name if name else f"0x{value:02X}, a value PS3.8 leaves undefined"


def describe_reject(result: int, source: int, reason: int) -> str:
    """An A-ASSOCIATE-RJ's three values in PS3.8's words; values the
    standard leaves undefined are named as such."""
    return (f"{_named(REJECT_RESULTS, result)} (source: {_named(REJECT_SOURCES, source)}, "
            f"reason: {_named(REJECT_REASONS.get(source, {}), reason)})")


def describe_abort(source: int, reason: int) -> str:
    """An A-ABORT's source and reason in PS3.8's words."""
    text = f"source: {_named(ABORT_SOURCES, source)}"
    if source == 2:  # the reason is only meaningful from the provider
        text += f", reason: {_named(ABORT_REASONS, reason)}"
    return text


def describe_ending_pdu(pdu_type: int, body: bytes | bytearray = b"") -> str:
    """Why a PDU other than P-DATA-TF ends an exchange, in words (``body``:
    as much of the PDU after its header as is known)."""
    if pdu_type == A_ABORT:
        if len(body) >= 4:
            return f"the peer aborted the association ({describe_abort(body[2], body[3])})"
        return "the peer aborted the association"
    if pdu_type == A_RELEASE_RQ:
        return "the peer asked to release the association in the middle of the request"
    if pdu_type in PDU_NAMES:
        return f"the peer sent an unexpected {PDU_NAMES[pdu_type]} PDU"
    return f"the peer sent a PDU of unknown type 0x{pdu_type:02X}"


def _wait_end(deadline: float | None, silent_since: float,
              network_timeout: float | None) -> tuple[float | None, str | None]:
    """When a wait for the peer ends (None: never) and, when it is the
    network timeout that ends it, what to say then."""
    if network_timeout is None:
        return deadline, None
    silence_end = silent_since + network_timeout
    if deadline is not None and deadline <= silence_end:
        return deadline, None
    return silence_end, (f"no data from the peer within the network timeout "
                         f"({network_timeout:g} s)")


class SocketGuard:
    """Bounds every read pynetdicom's DUL thread makes from the peer.

    pynetdicom 3.0 reads a PDU with a blocking ``recv`` of the length the
    peer announced: a header announcing 2 GiB is buffered up to 2 GiB, an
    answer dribbled a byte at a time ignores every timeout, and a thread
    blocked there keeps the process alive (the DUL thread is not a daemon).
    Installed as the association socket's ``recv``, this one

    * refuses a P-DATA-TF PDU longer than the maximum length dimsekit
      offered, and any other PDU over :data:`MAX_CONTROL_PDU` (DCMTK's
      "Illegal PDU Length"), before reading its body;
    * gives each PDU a deadline: the network timeout, else the ACSE
      timeout while negotiating and the DIMSE timeout after;
    * takes an A-ASSOCIATE-RJ apart itself (pynetdicom's thread raises on
      values the standard leaves undefined);
    * serves bytes the caller's reader handed back (:meth:`give_back`);
    * ends every read at once after :meth:`stop`.

    A refused PDU reads as a connection cut short, which pynetdicom turns
    into an aborted association; :attr:`failure` says why.
    """

    def __init__(self, assoc: Any):
        self.assoc = assoc
        self.transport = assoc.dul.socket
        self.failure: str | None = None
        #: (result, source, reason) of an A-ASSOCIATE-RJ, as received
        self.reject: tuple[int, int, int] | None = None
        #: (source, reason) of an A-ABORT the DUL thread read
        self.abort: tuple[int, int] | None = None
        self.pushback = bytearray()
        #: why the peer ended an established association, when a PDU other
        #: than P-DATA-TF said so (A-ABORT, A-RELEASE-RQ, an unknown type)
        self.ended: str | None = None
        #: time.monotonic() of the last bytes read from the socket
        self.last_data = time.monotonic()
        #: the peer closed the connection (a read found its end)
        self.closed = False
        self._stopped = False
        self._pdu: tuple[int, int] | None = None  # (type, length) awaiting its body
        self._deadline: float | None = None
        requestor = getattr(assoc, "requestor", None)
        self.max_pdu = getattr(requestor, "maximum_length", 0) or 0
        self.transport.recv = self.recv  # shadows AssociationSocket.recv

    @staticmethod
    def installed(assoc: Any) -> SocketGuard | None:
        """The association's guard, if it has one."""
        return getattr(assoc, "_dimsekit_guard", None)

    @classmethod
    def of(cls, assoc: Any) -> SocketGuard:
        """The association's guard, installed now if it has none."""
        guard = cls.installed(assoc)
        if guard is None or guard.transport is not assoc.dul.socket:
            guard = assoc._dimsekit_guard = cls(assoc)
        return guard

    # -- limits --------------------------------------------------------------

    def limit(self, pdu_type: int) -> int | None:
        """The longest PDU of ``pdu_type`` taken from the peer (None: any)."""
        if pdu_type == P_DATA_TF:  # -pdu 0 ("no limit"): the message limit
            return self.max_pdu or MAX_MESSAGE
        return MAX_CONTROL_PDU

    def too_long(self, pdu_type: int, length: int) -> str | None:
        limit = self.limit(pdu_type)
        if limit is None or length <= limit:
            return None
        name = PDU_NAMES.get(pdu_type, f"type 0x{pdu_type:02X}")
        offered = " (the maximum PDU length dimsekit offered)" if pdu_type == P_DATA_TF else ""
        return (f"illegal PDU length: {name} PDU of {length} bytes from the peer, "
                f"more than {limit}{offered}")

    def pdu_timeout(self) -> float | None:
        """How long one PDU may take to arrive once it has begun: the
        shortest of the network timeout and the ACSE (while negotiating)
        or DIMSE timeout; None if none is set."""
        assoc = self.assoc
        phase = assoc.dimse_timeout if assoc.is_established else assoc.acse_timeout
        timeouts = [t for t in (assoc.network_timeout, phase) if t is not None]
        return min(timeouts) if timeouts else None

    def _given_up(self) -> bool:
        """pynetdicom is ending the association (``Association.kill``
        waits for the DUL thread, which may be in a read here)."""
        return (self._stopped or getattr(self.assoc, "_kill", False)
                or getattr(self.assoc.dul, "_kill_thread", False))

    # -- the DUL thread's reads ----------------------------------------------

    def give_back(self, data: bytes | bytearray) -> None:
        """Bytes read from the socket by someone else, to be read again."""
        self.pushback[:0] = data

    def stop(self) -> None:
        """End every read and write now and for good; wake a thread
        blocked in one."""
        self._shutdown(socket.SHUT_RDWR)

    def stop_reading(self) -> None:
        """End every read now (a last A-ABORT can still be sent)."""
        self._shutdown(socket.SHUT_RD)

    def _shutdown(self, how: int) -> None:
        self._stopped = True
        raw = getattr(self.transport, "socket", None)
        if raw is not None:
            with contextlib.suppress(OSError, ValueError):
                # the plain socket's shutdown, also for an SSLSocket: its own
                # drops the SSL object, and a last A-ABORT would go out in
                # clear text on the TLS connection
                socket.socket.shutdown(raw, how)

    def recv(self, nr_bytes: int) -> bytearray:
        """``AssociationSocket.recv``: the header of a PDU or its body."""
        if self._pdu is None:  # a header: the PDU's deadline starts now
            timeout = self.pdu_timeout()
            self._deadline = None if timeout is None else time.monotonic() + timeout
            data = self._read(nr_bytes)
            if len(data) == 6:
                pdu_type, length = _PDU_HEADER.unpack_from(data)
                if self.assoc.is_established and pdu_type != P_DATA_TF:
                    # what ends an exchange, said now: pynetdicom would let
                    # the caller wait for the DIMSE timeout on some of these
                    self.ended = self.ended or describe_ending_pdu(pdu_type)
                if pdu_type in PDU_NAMES:
                    refused = self.too_long(pdu_type, length)
                    if refused:
                        self.failure = self.failure or refused
                        self._pdu = (pdu_type, -1)  # its body reads as cut short
                    else:
                        self._pdu = (pdu_type, length)
            return data
        pdu_type, length = self._pdu
        self._pdu = None
        if length < 0:
            return bytearray()
        data = self._read(nr_bytes)
        if pdu_type == A_ABORT and len(data) >= 4:
            self.abort = (data[2], data[3])
            if self.assoc.is_established:
                self.ended = describe_ending_pdu(pdu_type, data)
        if pdu_type == 0x03 and len(data) >= 4:  # A-ASSOCIATE-RJ
            result, source, reason = data[1], data[2], data[3]
            self.reject = (result, source, reason)
            if result not in (1, 2) or source not in (1, 2, 3) or reason not in (1, 2, 3, 7):
                return bytearray()  # pynetdicom would raise in its thread
        return data

    def _read(self, nr_bytes: int) -> bytearray:
        data = self.pushback[:nr_bytes]
        del self.pushback[:nr_bytes]
        raw = self.transport.socket
        pending = getattr(raw, "pending", None)  # an SSLSocket's decrypted bytes
        while len(data) < nr_bytes and raw is not None and not self._given_up():
            if not (pending and pending()):
                wait = 0.5 if self._deadline is None else min(
                    0.5, self._deadline - time.monotonic())
                if wait <= 0:
                    self.failure = self.failure or (
                        f"a PDU from the peer took longer than {self.pdu_timeout():g} s "
                        f"to arrive")
                    break
                try:
                    if not select.select([raw], [], [], wait)[0]:
                        continue
                except (OSError, ValueError):
                    break
            try:
                chunk = raw.recv(min(nr_bytes - len(data), 1 << 16))
            except (BlockingIOError, InterruptedError):
                continue
            except OSError as exc:
                import ssl

                if isinstance(exc, ssl.SSLWantReadError):
                    continue
                break
            if not chunk:
                self.closed = True
                break
            data += chunk
            self.last_data = time.monotonic()
        return data


#: DIMSE command fields (PS3.7 E.1-1), request and response
COMMAND_FIELDS = {
    "C-STORE-RQ": 0x0001, "C-STORE-RSP": 0x8001, "C-GET-RQ": 0x0010, "C-GET-RSP": 0x8010,
    "C-FIND-RQ": 0x0020, "C-FIND-RSP": 0x8020, "C-MOVE-RQ": 0x0021, "C-MOVE-RSP": 0x8021,
    "C-ECHO-RQ": 0x0030, "C-ECHO-RSP": 0x8030, "C-CANCEL-RQ": 0x0FFF,
}
#: priorities of a request (PS3.7 9.1.1.1.5 ...)
PRIORITY_MEDIUM, PRIORITY_HIGH, PRIORITY_LOW = 0x0000, 0x0001, 0x0002


class Request(NamedTuple):
    """A DIMSE request in plain values, for :meth:`Exchange.send`; build
    it with :func:`find_request`, :func:`move_request` or
    :func:`echo_request`.  ``identifier`` is the encoded data set (in the
    presentation context's transfer syntax, e.g. from
    :func:`~dimsekit.qr.find.encode_identifier`)."""

    command: str  # "C-FIND", "C-MOVE", "C-ECHO"
    message_id: int
    sop_class_uid: str
    identifier: bytes | None = None
    priority: int = PRIORITY_LOW
    move_destination: str | None = None

    def primitive(self) -> Any:
        """The pynetdicom primitive that carries it."""
        from pynetdicom import dimse_primitives as p

        kinds = {"C-FIND": p.C_FIND, "C-MOVE": p.C_MOVE, "C-ECHO": p.C_ECHO}
        try:
            primitive: Any = kinds[self.command]()
        except KeyError:
            raise ValueError(f"Exchange cannot send a {self.command} request") from None
        primitive.MessageID = self.message_id
        primitive.AffectedSOPClassUID = self.sop_class_uid
        if self.command != "C-ECHO":
            primitive.Priority = self.priority
            primitive.Identifier = BytesIO(self.identifier or b"")
        if self.command == "C-MOVE":
            primitive.MoveDestination = self.move_destination
        return primitive


def find_request(message_id: int, sop_class_uid: str, identifier: bytes, *,
                 priority: int = PRIORITY_LOW) -> Request:
    """A C-FIND request (findscu's priority: LOW)."""
    return Request("C-FIND", message_id, sop_class_uid, identifier, priority)


def move_request(message_id: int, sop_class_uid: str, identifier: bytes, destination: str,
                 *, priority: int = PRIORITY_MEDIUM) -> Request:
    """A C-MOVE request to ``destination`` (an AE title)."""
    return Request("C-MOVE", message_id, sop_class_uid, identifier, priority, destination)


def echo_request(message_id: int, sop_class_uid: str = "1.2.840.10008.1.1") -> Request:
    """A C-ECHO request."""
    return Request("C-ECHO", message_id, sop_class_uid)


def as_primitive(request: Any) -> Any:
    """A :class:`Request` as pynetdicom's primitive; a primitive as it is."""
    return request.primitive() if isinstance(request, Request) else request


class Message(NamedTuple):
    """One DIMSE message as received."""

    context_id: int
    #: command set elements: tag -> value bytes (Implicit VR Little Endian)
    command: dict[int, bytes]
    #: the encoded data set (in the context's transfer syntax), or None
    dataset: bytes | None

    def us(self, tag: int) -> int | None:
        """The value of a US command element, None if absent or empty."""
        value = self.command.get(tag)
        return _US.unpack_from(value)[0] if value and len(value) >= 2 else None

    @property
    def command_field(self) -> int | None:
        return self.us(COMMAND_FIELD)

    @property
    def status(self) -> int | None:
        return self.us(STATUS)

    @property
    def message_id_being_responded_to(self) -> int | None:
        return self.us(MESSAGE_ID_BEING_RESPONDED_TO)

    @property
    def error_comment(self) -> str | None:
        """The Error Comment a failure may carry, as text (None if absent)."""
        value = self.command.get(ERROR_COMMENT)
        text = value.decode("latin-1").strip(" \0") if value else ""
        return text or None


def parse_command_set(data: bytes) -> dict[int, bytes]:
    """Split an Implicit VR Little Endian command set into ``{tag: value}``.

    Raises ValueError if an element runs past the end of ``data``.
    """
    elements: dict[int, bytes] = {}
    offset, end = 0, len(data)
    unpack = _ELEMENT_HEADER.unpack_from
    while offset < end:
        if end - offset < 8:
            raise ValueError(f"command set ends inside an element header at byte {offset}")
        group, element, length = unpack(data, offset)
        offset += 8
        if offset + length > end:
            raise ValueError(f"command element ({group:04X},{element:04X}) is longer "
                             f"than the command set")
        tag = group << 16 | element
        if tag in elements:
            raise ValueError(f"command element ({group:04X},{element:04X}) appears twice")
        elements[tag] = data[offset:offset + length]
        offset += length
    return elements


class _Reassembler:
    """PDV fragments in, complete messages out (PS3.8 E.2)."""

    def __init__(self) -> None:
        self._command: list[bytes | bytearray] = []
        self._dataset: list[bytes | bytearray] = []
        self._size = 0
        self._command_set: dict[int, bytes] | None = None
        self._context_id: int | None = None
        #: the last command set taken apart: (its bytes, its elements, whether
        #: a data set follows); a stream of pending responses repeats one
        self._last: tuple[bytes, dict[int, bytes], bool] | None = None

    def add(self, context_id: int, pdv: bytes) -> Message | None:
        """Take one PDV (message control header + fragment); return the
        message it completes.  Raises ValueError for a malformed message."""
        return self.add_fragment(context_id, pdv[0], pdv[1:])

    def add_fragment(self, context_id: int, header: int,
                     fragment: bytes | bytearray) -> Message | None:
        """:meth:`add` for a PDV's message control header (bit 0: command
        (1) or data set (0); bit 1: last fragment) and its fragment."""
        if self._context_id is not None and context_id != self._context_id:
            raise ValueError(f"a message's fragments came on presentation contexts "
                             f"{self._context_id} and {context_id}")
        self._size += len(fragment)
        if self._size > MAX_MESSAGE:
            raise ValueError(f"a message of more than {MAX_MESSAGE >> 20} MiB")
        self._context_id = context_id
        if header & 1:
            if self._command_set is not None:
                raise ValueError("command fragment where the data set was expected")
            self._command.append(fragment)
            if not header & 2:
                return None
            fragments = self._command
            data = bytes(fragments[0]) if len(fragments) == 1 else b"".join(fragments)
            self._command, self._size = [], 0
            last = self._last
            if last is not None and last[0] == data:
                command, has_data_set = last[1].copy(), last[2]
            else:
                command = parse_command_set(data)
                data_set_type = command.get(COMMAND_DATA_SET_TYPE, b"")
                if COMMAND_FIELD not in command or len(data_set_type) != 2:
                    raise ValueError("command set without CommandField or CommandDataSetType")
                has_data_set = _US.unpack(data_set_type)[0] != NO_DATA_SET
                # a copy: the message's own dict is its receiver's
                self._last = (data, command.copy(), has_data_set)
            if not has_data_set:
                self._context_id = None
                return Message(context_id, command, None)
            self._command_set = command
            return None
        if self._command_set is None:
            raise ValueError("data set fragment without a command set")
        self._dataset.append(fragment)
        if not header & 2:
            return None
        fragments = self._dataset
        message = Message(context_id, self._command_set,
                          bytes(fragments[0]) if len(fragments) == 1
                          else b"".join(fragments))
        self._command_set, self._dataset, self._size = None, [], 0
        self._context_id = None
        return message


class PeerEnded(Exception):
    """The peer ended the exchange or broke the protocol: the association
    cannot go on (the message says how, in a user's words)."""


class Exchange:
    """Send DIMSE requests and receive what the peer answers (see the module).

    ``receive()`` returns the next :class:`Message`, or None when the
    association was aborted, the connection closed, the DIMSE timeout
    passed without a message, or the peer sent a message that cannot be
    taken apart (:attr:`failure` then says why).  After None the exchange
    is over: leave it and abort the association if it is still established
    (:func:`~dimsekit.association.open_association` does that when the
    block raises).

    ``Exchange(assoc, idle)`` gives the fast implementation when it can be
    used, else :class:`PureExchange`.
    """

    #: why the last receive() returned None, when it was the message's fault
    failure: str | None = None
    _context_id: int | None = None

    def __new__(cls, assoc: Any, idle: Any = None) -> Any:
        if cls is Exchange:
            from dimsekit._internals import fast_exchange

            cls = fast_exchange(assoc) or PureExchange
        return super().__new__(cls)

    def __init__(self, assoc: Any, idle: Any = None):
        self.assoc = assoc
        self.idle = idle
        self.failure = None

    def __enter__(self) -> Exchange:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def send(self, request: Any, context_id: int) -> None:
        """Send a :class:`Request` (or a pynetdicom DIMSE primitive:
        ``C_FIND``, ``C_MOVE``, ``C_ECHO``) on presentation context
        ``context_id``."""
        raise NotImplementedError

    def cancel(self, msg_id: int, context_id: int) -> None:
        """Send a C-CANCEL for the request with ``msg_id``."""
        self.assoc.send_c_cancel(msg_id, context_id)

    def receive(self, timeout: float | None | bool = True) -> Message | None:
        """The next message; None: aborted, closed, timed out or malformed
        (:attr:`failure` says which, in words).

        ``timeout``: how long to wait for it in seconds (None: for ever);
        by default the association's DIMSE timeout.  The network timeout,
        when set, also ends a silence of the socket.
        """
        raise NotImplementedError

    def _from_queue(self, guard: SocketGuard, wait: float | None,
                    network_timeout: float | None) -> Any:
        """The next message pynetdicom's DUL thread read, or None: the
        association ended (the guard saw why), ``wait`` passed, or the
        socket was silent for ``network_timeout``."""
        import queue

        msg_queue = self.assoc.dimse.msg_queue
        called = time.monotonic()
        deadline = None if wait is None else called + wait
        while True:
            if guard.failure or guard.ended:
                with contextlib.suppress(queue.Empty):
                    self._context_id, message = msg_queue.get_nowait()  # came before it
                    return message
                return None
            now = time.monotonic()
            until, silence = _wait_end(deadline, max(guard.last_data, called),
                                       network_timeout)
            if until is not None and now >= until:
                self.failure = silence
                return None
            step = 0.05 if until is None else min(0.05, until - now)
            try:
                self._context_id, message = msg_queue.get(timeout=step)
                return message
            except queue.Empty:
                continue

    def _received(self, message: Message | None) -> Message | None:
        if message is not None and log.isEnabledFor(logging.DEBUG):
            status = message.status
            log.debug("received DIMSE command 0x%04X (context %d, responding to message "
                      "ID %s, status %s, %s)", message.command_field, message.context_id,
                      message.message_id_being_responded_to,
                      "-" if status is None else f"0x{status:04X}",
                      "no data set" if message.dataset is None
                      else f"data set of {len(message.dataset)} bytes")
        return message


#: CommandField of each response primitive pynetdicom hands over
_RESPONSE_FIELDS = {"C_FIND": 0x8020, "C_ECHO": 0x8030, "C_GET": 0x8010,
                    "C_MOVE": 0x8021, "C_STORE": 0x8001}


#: C-MOVE/C-GET response counts, as command elements
_SUBOPERATIONS = {0x00001020: "NumberOfRemainingSuboperations",
                  0x00001021: "NumberOfCompletedSuboperations",
                  0x00001022: "NumberOfFailedSuboperations",
                  0x00001023: "NumberOfWarningSuboperations"}


class PureExchange(Exchange):
    """:class:`Exchange` on pynetdicom's public API alone (see the module):
    the requests go out through ``send_c_find``/``send_c_move``/``send_c_echo``, the
    responses come from ``assoc.dimse.get_msg`` as pynetdicom decoded
    them, and are handed on as :class:`Message` (their command elements
    re-encoded, the identifier as the bytes that came)."""

    #: send_c_echo's answer, until receive() hands it on
    _echo: Any = None

    def send(self, request: Any, context_id: int) -> None:
        from pynetdicom.dimse_primitives import C_ECHO, C_FIND, C_MOVE

        primitive = as_primitive(request)
        assoc = self.assoc
        if isinstance(primitive, C_FIND):
            identifier = self._identifier(primitive, context_id)
            # sends at once and pauses the reactor; the generator it returns
            # is not read: the responses are taken off the DIMSE queue here
            assoc.send_c_find(identifier, primitive.AffectedSOPClassUID,
                              msg_id=primitive.MessageID, priority=primitive.Priority)
        elif isinstance(primitive, C_MOVE):
            assoc.send_c_move(self._identifier(primitive, context_id), primitive.MoveDestination,
                              primitive.AffectedSOPClassUID, msg_id=primitive.MessageID,
                              priority=primitive.Priority)
        elif isinstance(primitive, C_ECHO):
            self._echo = assoc.send_c_echo(msg_id=primitive.MessageID)
        else:
            raise TypeError(f"PureExchange cannot send {type(primitive).__name__}")

    def _identifier(self, primitive: Any, context_id: int) -> Any:
        """The request's encoded identifier as the Dataset ``send_c_*`` want
        (they encode it again, in the context's transfer syntax)."""
        from pynetdicom.dsutils import decode

        cx = next(c for c in self.assoc.accepted_contexts if c.context_id == context_id)
        ts = cx.transfer_syntax[0]
        return decode(primitive.Identifier or BytesIO(), ts.is_implicit_VR,
                      ts.is_little_endian, ts.is_deflated)

    def receive(self, timeout: float | None | bool = True) -> Message | None:
        echo = self._echo
        if echo is not None:  # send_c_echo waited for its answer itself
            self._echo = None
            return self._received(self._as_message(None, echo))
        assoc = self.assoc
        dimse = assoc.dimse
        wait = dimse.dimse_timeout if timeout is True else timeout
        if self.idle is not None and dimse.msg_queue.empty():
            self.idle()
        guard = SocketGuard.of(assoc)
        self._context_id = None
        primitive = self._from_queue(guard, wait, assoc.network_timeout)
        if primitive is None:
            if self.failure is None:
                self.failure = guard.failure or guard.ended
            return None
        return self._received(self._as_message(self._context_id, primitive))

    @staticmethod
    def _as_message(context_id: int | None, primitive: Any) -> Message:
        """A pynetdicom response primitive (or send_c_echo's status data
        set) as the :class:`Message` the fast path would have made."""
        command: dict[int, bytes] = {}
        if hasattr(primitive, "is_valid_response"):
            name = type(primitive).__name__
            field = _RESPONSE_FIELDS.get(name, 0xFFFF) if primitive.is_valid_response \
                else 0xFFFF
            responding = primitive.MessageIDBeingRespondedTo
            status = primitive.Status
            comment = primitive.ErrorComment
            identifier = getattr(primitive, "Identifier", None)
            dataset = identifier.getvalue() if identifier is not None else None
        else:  # send_c_echo's status Dataset (empty: no answer came)
            field = 0x8030
            responding = None
            status = primitive.get("Status")
            comment = primitive.get("ErrorComment")
            dataset = None
        command[COMMAND_FIELD] = _US.pack(field)
        if responding is not None:
            command[MESSAGE_ID_BEING_RESPONDED_TO] = _US.pack(responding)
        if status is not None:
            command[STATUS] = _US.pack(status)
        if comment:
            command[ERROR_COMMENT] = str(comment).encode("latin-1", "replace")
        for tag, keyword in _SUBOPERATIONS.items():
            count = getattr(primitive, keyword, None)
            if isinstance(count, int):
                command[tag] = _US.pack(count)
        return Message(context_id or 0, command, dataset)
