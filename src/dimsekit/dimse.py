"""Requests and their responses on an established association, without
pynetdicom's per-message cost on the receiving side.

    with Exchange(assoc, idle=out.flush) as exchange:
        exchange.send(primitive, context_id)     # a pynetdicom DIMSE primitive
        message = exchange.receive()             # Message, or None
        message.status, message.dataset          # encoded data set (bytes) or None

``idle`` (optional) is called whenever ``receive()`` is about to wait for
the peer: the moment to flush buffered output, so that whoever reads it
sees every response dimsekit has, without a flush per message.

Why this exists: pynetdicom 3.0 receives every message in its DUL thread,
which polls the socket, reads each PDU with two ``recv`` calls, decodes it
into objects, runs it through its state machine, decodes the command set
into a pydicom Dataset, builds a DIMSE primitive through validating setters
and fires events, before the thread that asked for the message gets it
from a queue.  In pynetdicom 3.0.4 that is ~0.25 ms per C-FIND response,
more than decoding and printing the response costs, and the two threads
take turns on the GIL for every PDU: a 5,000-match query from Orthanc took
3.3 s through ``send_c_find`` and takes 1.2 s through an :class:`Exchange`
(bench/results/).

What stays pynetdicom's: the association with its DUL thread and state
machine (release, abort, the transport closing, invalid PDUs), encoding and
sending requests (``assoc.dimse.send_msg``), C-CANCEL
(``assoc.send_c_cancel``) and its message queue, on which an abort or a
closed connection arrives as ``(None, None)``.

What an open :class:`Exchange` takes over:

* Joining the fragments (PDVs) of each message into the raw command set and
  the encoded data set.  The command set (always Implicit VR Little Endian)
  is split into elements with :mod:`struct` (~2 µs) rather than decoded by
  pydicom (~30 µs): a response needs two or three of its US values.
  Decoding the data set is left to the caller, who knows which transfer
  syntax and which parts it needs.
* Reading the socket, when it is a plain TCP socket: the calling thread
  takes the socket from the DUL thread (at a point where the DUL is between
  PDUs) and reads P-DATA-TF PDUs itself, many per ``recv``.  The first PDU of
  any other type (A-ABORT, A-RELEASE-RQ, garbage), the end of the
  connection or a socket error ends that: the bytes read but not used go
  back to the DUL thread, which reads them as if they had just arrived, and
  the exchange goes on the way it does over TLS.  Over TLS the DUL thread
  keeps reading (one SSL object must not be used by two threads at once:
  the DUL thread sends while the caller reads); an exchange then replaces
  only ``DIMSEServiceProvider.receive_primitive``, the step that turns the
  P-DATA the DUL thread read into messages, and takes messages off
  pynetdicom's queue.

While an exchange is open, pynetdicom's association reactor is paused, as
its own ``send_c_*`` methods pause it, so that it does not take responses
off the queue.  All of this relies on pynetdicom 3.0's internals (the
reactor checkpoint, ``DULServiceProvider._is_transport_event``,
``_read_pdu_data`` and the idle timer); pyproject.toml pins pynetdicom < 3.1.
"""

from __future__ import annotations

import collections
import logging
import select
import struct
import threading
import time
from typing import Any, NamedTuple

from dimsekit.logs import LOGGER_NAME

log = logging.getLogger(LOGGER_NAME + ".dimse")

# command set elements (PS3.7 E.1), as 32-bit tags
COMMAND_FIELD = 0x00000100
MESSAGE_ID_BEING_RESPONDED_TO = 0x00000120
COMMAND_DATA_SET_TYPE = 0x00000800
STATUS = 0x00000900

NO_DATA_SET = 0x0101
P_DATA_TF = 0x04

#: longest the DUL thread is parked in one go while the caller reads: the
#: delay for what it does unasked (ARTIM timer, an abort's A-ABORT)
_PARKING = 0.05

_ELEMENT_HEADER = struct.Struct("<HHL")
_US = struct.Struct("<H")
_PDU_HEADER = struct.Struct(">BxL")
_PDV_HEADER = struct.Struct(">LB")


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
        elements[group << 16 | element] = data[offset:offset + length]
        offset += length
    return elements


class _Reassembler:
    """PDV fragments in, complete messages out (PS3.8 E.2)."""

    def __init__(self) -> None:
        self._command: list[bytes] = []
        self._dataset: list[bytes] = []
        self._command_set: dict[int, bytes] | None = None

    def add(self, context_id: int, pdv: bytes) -> Message | None:
        """Take one PDV (message control header + fragment); return the
        message it completes.  Raises ValueError for a malformed message."""
        header = pdv[0]  # bit 0: command (1) or data set (0); bit 1: last fragment
        if header & 1:
            if self._command_set is not None:
                raise ValueError("command fragment where the data set was expected")
            self._command.append(pdv[1:])
            if not header & 2:
                return None
            command = parse_command_set(b"".join(self._command))
            self._command = []
            data_set_type = command.get(COMMAND_DATA_SET_TYPE, b"")
            if COMMAND_FIELD not in command or len(data_set_type) != 2:
                raise ValueError("command set without CommandField or CommandDataSetType")
            if _US.unpack(data_set_type)[0] == NO_DATA_SET:
                return Message(context_id, command, None)
            self._command_set = command
            return None
        if self._command_set is None:
            raise ValueError("data set fragment without a command set")
        self._dataset.append(pdv[1:])
        if not header & 2:
            return None
        message = Message(context_id, self._command_set, b"".join(self._dataset))
        self._command_set, self._dataset = None, []
        return message


class _IdleFailed(Exception):
    """The ``idle`` callback raised (``error``): the caller's failure, not
    the peer's; :meth:`Exchange.receive` raises ``error`` itself."""

    def __init__(self, error: BaseException):
        super().__init__(error)
        self.error = error


class _SocketReader:
    """Reads P-DATA-TF PDUs off a plain TCP association socket in the
    calling thread, while pynetdicom's DUL thread stays off it.

    The DUL thread hands the socket over in ``_is_transport_event``, the
    one place where it checks for incoming data, so never in the middle of
    a PDU.  Bytes given back are served to its ``_read_pdu_data`` by the
    socket's ``recv`` until they are used up; then both methods are
    pynetdicom's again.
    """

    def __init__(self, assoc: Any):
        self.dul = assoc.dul
        self.sock = assoc.dul.socket.socket
        self.owned = False
        self.buffer = bytearray()
        self.pushback = bytearray()  # read here, for the DUL thread to read again
        self._messages: collections.deque[Message] = collections.deque()
        self._lock = threading.Lock()
        self._want = False
        self._granted = threading.Event()
        self._installed = False
        self._transport_event = self.dul._is_transport_event
        self._recv = self.dul.socket.recv
        self.idle: Any = None  # called before read() waits for the socket
        self._wake = threading.Event()  # ends the DUL thread's parking

    # -- taking and giving back the socket ---------------------------------

    def acquire(self) -> bool:
        """Take the socket over from the DUL thread; False if it has stopped."""
        with self._lock:
            self._want = True
            # instance attributes shadow the DUL's and its socket's methods
            self.dul._is_transport_event = self._dul_transport_event
            self.dul.socket.recv = self._dul_recv
            self._installed = True
        while not self._granted.wait(0.05):
            if not self.dul.is_alive():
                with self._lock:
                    if self.owned:
                        return True
                    self._want = False
                    self._uninstall()
                return False
        return True

    def release(self, keep: bool = True) -> None:
        """Give the socket back with what was read but not used (``keep``)
        or without it (after a timeout or a malformed message, when the
        association is to be aborted anyway)."""
        with self._lock:
            if not self.owned:
                return
            if keep:
                self.pushback += self.buffer
            self.buffer.clear()
            self._messages.clear()
            # the DUL thread restarts its idle (network) timer on every PDU;
            # it read none while this thread had the socket
            self.dul._idle_timer.restart()
            self.owned = False
            if not self.pushback:
                self._uninstall()
        self._wake.set()  # the DUL thread reads again from here on

    def wake(self) -> None:
        """Something was queued for the DUL thread to send: unpark it."""
        self._wake.set()

    def _uninstall(self) -> None:  # with the lock held
        if self._installed:
            self._installed = False
            del self.dul._is_transport_event
            del self.dul.socket.recv

    # DUL thread: DULServiceProvider._is_transport_event and socket.recv
    def _dul_transport_event(self) -> bool:
        with self._lock:
            if self._want:
                self._want = False
                self.owned = True
                self._granted.set()
            owned = self.owned
            if not owned:
                given_back = bool(self.pushback)
                if not given_back:
                    self._uninstall()
        if owned:
            # Nothing to read for the DUL thread while this reader has the
            # socket: park it instead of letting it poll (and take the GIL)
            # every millisecond.  wake() (a request queued to send) or the
            # socket going back ends the parking, and what was queued is
            # sent at once rather than after the reactor's next sleep.
            if self._wake.wait(_PARKING):
                self._wake.clear()
            return self.dul._process_recv_primitive()
        if given_back:
            self.dul._read_pdu_data()  # reads the pushback through _dul_recv
            return True
        return self._transport_event()

    def _dul_recv(self, nr_bytes: int) -> bytearray:
        data = self.pushback[:nr_bytes]
        del self.pushback[:nr_bytes]
        if len(data) < nr_bytes:
            data += self._recv(nr_bytes - len(data))
        return data

    # -- reading --------------------------------------------------------------

    def read(self, reassembler: _Reassembler, timeout: float | None) -> Message | None:
        """The next message, or None when the socket went back to the DUL
        thread (a PDU other than P-DATA-TF came, or the connection ended).
        Raises TimeoutError when no message came within ``timeout`` and
        ValueError for a malformed P-DATA-TF; the socket then goes back
        without what was read of it.  What ``idle`` raises comes out as
        :class:`_IdleFailed`, the socket back with what was read."""
        if self._messages:
            return self._messages.popleft()
        deadline = None if timeout is None else time.monotonic() + timeout
        buffer = self.buffer
        while True:
            while len(buffer) >= 6:
                pdu_type, length = _PDU_HEADER.unpack_from(buffer)
                if pdu_type != P_DATA_TF:
                    self.release()
                    return None
                end = 6 + length
                if len(buffer) < end:
                    break
                try:
                    self._pdvs(reassembler, buffer, 6, end)
                except (ValueError, struct.error):
                    self.release(keep=False)
                    raise
                del buffer[:end]
                if self._messages:
                    return self._messages.popleft()
            if self.idle is not None and not self._readable(0):
                # the peer is still at work: the caller's turn (flush output);
                # the time that takes is not the peer's
                started = time.monotonic()
                try:
                    self.idle()
                except BaseException as exc:
                    self.release()  # the stream is fine: keep what was read
                    raise _IdleFailed(exc) from exc
                if deadline is not None:
                    deadline += time.monotonic() - started
            try:
                wait = None if deadline is None else max(0.0, deadline - time.monotonic())
                data = self.sock.recv(1 << 16) if self._readable(wait) else None
            except OSError:
                data = b""
            if data is None:
                self.release(keep=False)
                raise TimeoutError
            if not data:  # closed or failed: the DUL thread finds out itself
                self.release()
                return None
            buffer += data

    def _readable(self, wait: float | None) -> bool:
        try:
            return bool(select.select([self.sock], [], [], wait)[0])
        except OSError:  # a closed socket: recv says so
            return True

    def _pdvs(self, reassembler: _Reassembler, pdu: bytearray, offset: int,
              end: int) -> None:
        """Hand the PDV items in ``pdu[offset:end]`` to ``reassembler``."""
        while offset < end:
            if end - offset < 6:
                raise ValueError("P-DATA-TF ends inside a PDV item header")
            length, context_id = _PDV_HEADER.unpack_from(pdu, offset)
            if length < 2 or offset + 4 + length > end:
                raise ValueError(f"PDV item of {length} bytes does not fit its PDU")
            message = reassembler.add(context_id, bytes(pdu[offset + 5:offset + 4 + length]))
            if message is not None:
                self._messages.append(message)
            offset += 4 + length


class Exchange:
    """Send DIMSE requests and receive what the peer answers (see the module).

    ``receive()`` returns the next :class:`Message`, or None when the
    association was aborted, the connection closed, the DIMSE timeout
    passed without a message, or the peer sent a message that cannot be
    taken apart (:attr:`failure` then says why).  After None the exchange
    is over: leave it and abort the association if it is still established
    (:func:`~dimsekit.association.open_association` does that when the
    block raises).
    """

    def __init__(self, assoc: Any, idle: Any = None):
        import ssl

        self.assoc = assoc
        self.idle = idle
        #: why the last receive() returned None, when it was the message's fault
        self.failure: str | None = None
        self._reassembler = _Reassembler()
        sock = getattr(assoc.dul.socket, "socket", None)
        self._reader = (_SocketReader(assoc) if sock is not None
                        and not isinstance(sock, ssl.SSLSocket) else None)
        if self._reader is not None:
            self._reader.idle = idle

    def __enter__(self) -> "Exchange":
        assoc = self.assoc
        # pynetdicom's own pause: its reactor parks at its checkpoint
        assoc._reactor_checkpoint.clear()
        while not assoc._is_paused:
            time.sleep(0.0001)
        assoc.dimse.receive_primitive = self._receive_primitive
        if self._reader is not None and not self._reader.acquire():
            self._reader = None
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if self._reader is not None:
            self._reader.release()
        del self.assoc.dimse.receive_primitive  # pynetdicom's method again
        self.assoc._reactor_checkpoint.set()

    def send(self, primitive: Any, context_id: int) -> None:
        """Send a pynetdicom DIMSE primitive (e.g. ``C_FIND``)."""
        self.assoc.dimse.send_msg(primitive, context_id)
        if self._reader is not None:
            self._reader.wake()

    def cancel(self, msg_id: int, context_id: int) -> None:
        """Send a C-CANCEL for the request with ``msg_id``."""
        self.assoc.send_c_cancel(msg_id, context_id)
        if self._reader is not None:
            self._reader.wake()

    def receive(self) -> Message | None:
        """The next message; None: aborted, closed, timed out or malformed."""
        reader = self._reader
        if reader is not None and reader.owned:
            try:
                message = reader.read(self._reassembler, self.assoc.dimse_timeout)
            except _IdleFailed as exc:
                raise exc.error from None
            except (ValueError, struct.error) as exc:
                self.failure = f"invalid DIMSE message from the peer ({exc})"
                return None
            except TimeoutError:  # no message within the DIMSE timeout
                return None
            if message is not None:
                return self._received(message)
            # the socket went back to the DUL thread: it reads from here on
        if self.idle is not None and self.assoc.dimse.msg_queue.empty():
            self.idle()
        _, message = self.assoc.dimse.get_msg(block=True)
        if message is not None and not isinstance(message, Message):
            # pynetdicom's own path had queued it before the exchange began
            self.failure = f"unexpected {type(message).__name__} from the peer"
            return None
        return self._received(message)

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

    # DUL thread: DIMSEServiceProvider.receive_primitive
    def _receive_primitive(self, primitive: Any) -> None:
        if self.failure is not None:
            return  # the association is being aborted: nothing more makes sense
        try:
            for context_id, data in primitive.presentation_data_value_list:
                message = self._reassembler.add(context_id, data)
                if message is not None:
                    self.assoc.dimse.msg_queue.put((context_id, message))
        except (ValueError, struct.error) as exc:
            self.failure = f"invalid DIMSE message from the peer ({exc})"
            self.assoc.dimse.msg_queue.put((None, None))  # receive() returns None
