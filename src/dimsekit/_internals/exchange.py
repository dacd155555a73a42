"""The fast :class:`~dimsekit.dimse.Exchange`: the calling thread reads
the socket, without pynetdicom's per-message cost.

Why: pynetdicom 3.0 receives every message in its DUL thread, which polls
the socket, reads each PDU with two ``recv`` calls, decodes it into
objects, runs it through its state machine, decodes the command set into a
pydicom Dataset, builds a DIMSE primitive through validating setters and
fires events, before the thread that asked for the message gets it from a
queue.  In pynetdicom 3.0.4 that is ~0.25 ms per C-FIND response, more
than decoding and printing the response costs, and the two threads take
turns on the GIL for every PDU: a 5,000-match query from Orthanc took
3.3 s through ``send_c_find`` and takes 1.2 s here (docs/performance.md).

What stays pynetdicom's: the association with its DUL thread and state
machine (release, abort, the transport closing, invalid PDUs), encoding and
sending requests (``assoc.dimse.send_msg``), C-CANCEL
(``assoc.send_c_cancel``) and its message queue, on which an abort or a
closed connection arrives as ``(None, None)``.

What an open exchange takes over:

* Joining the fragments (PDVs) of each message into the raw command set and
  the encoded data set (:class:`~dimsekit.dimse._Reassembler`).
* Reading the socket, when it is a plain TCP socket: the calling thread
  takes the socket from the DUL thread (at a point where the DUL is between
  PDUs) and reads P-DATA-TF PDUs itself, many per ``recv``.  The first PDU of
  any other type (A-ABORT, A-RELEASE-RQ, an unknown type), a PDU longer
  than the maximum length offered, the end of the connection or a socket
  error ends the exchange at once, with the reason in words.  Bytes read
  but not used when an exchange ends normally go to the
  :class:`~dimsekit.dimse.SocketGuard`, which serves them to the next
  exchange or to the DUL thread first.  Over TLS the DUL thread keeps
  reading (one SSL object must not be used by two threads at once); an
  exchange then replaces only ``DIMSEServiceProvider.receive_primitive``
  and takes messages off pynetdicom's queue.

* Sending C-FIND and C-CANCEL requests, while the calling thread has the
  socket and nothing is bound to pynetdicom's "sent" events: the request is
  encoded here (:func:`encode_request`, held byte for byte to pynetdicom's
  own encoding by ``tests/test_perf_equivalence.py``) and written in one
  ``sendall`` by the calling thread.  pynetdicom's ``send_msg`` builds a
  pydicom Dataset for the command set, encodes it twice and hands each PDU
  to the DUL thread, ~0.3 ms per request, as long as wlmscpfs takes to
  answer one.  Any other request (or one sent with the handlers bound)
  goes pynetdicom's way, and every later one of the exchange with it, so
  the socket never has two writers.

While an exchange is open, pynetdicom's association reactor is paused, as
its own ``send_c_*`` methods pause it.  pynetdicom 3.0 internals used
(checked by :func:`dimsekit._internals.fast_exchange`): the reactor
checkpoint and ``_is_paused``, ``DULServiceProvider._is_transport_event``,
``_read_pdu_data``, ``_process_recv_primitive`` and ``_idle_timer``, the
DIMSE message queue's ``queue``.
"""

from __future__ import annotations

import collections
import select
import ssl
import struct
import threading
import time
from typing import Any

from dimsekit.dimse import (
    _PDU_HEADER,
    _PDV_HEADER,
    P_DATA_TF,
    Exchange,
    Message,
    PeerEnded,
    SocketGuard,
    _Reassembler,
    _wait_end,
    describe_ending_pdu,
)

#: longest the DUL thread is parked in one go while the caller reads: the
#: delay for what it does unasked (ARTIM timer, an abort's A-ABORT)
_PARKING = 0.05


class _IdleFailed(Exception):
    """The ``idle`` callback raised (``error``): the caller's failure, not
    the peer's; :meth:`Exchange.receive` raises ``error`` itself."""

    def __init__(self, error: BaseException):
        super().__init__(error)
        self.error = error


_UL = struct.Struct("<HHLL")
_US_ELEMENT = struct.Struct("<HHLH")
_P_DATA_HEADER = struct.Struct(">BxLLB")
#: CommandField (PS3.7 E.1) of a C-FIND-RQ and of a C-CANCEL-RQ
_FIND_RQ, _CANCEL_RQ = 0x0020, 0x0FFF
#: CommandDataSetType as pynetdicom sets it: a data set follows, or none
_DATA_SET_PRESENT, _NO_DATA_SET = 0x0001, 0x0101


def _command_set(uid: str | None, command_field: int, message_id: int | None,
                 responding_to: int | None, priority: int | None,
                 data_set_type: int) -> bytes:
    """A request's command set, Implicit VR Little Endian, as pynetdicom
    encodes it (its elements in tag order, the group length first)."""
    body = bytearray()
    if uid is not None:
        value = uid.encode("ascii")
        if len(value) & 1:
            value += b"\x00"
        body += struct.pack("<HHL", 0x0000, 0x0002, len(value)) + value
    body += _US_ELEMENT.pack(0x0000, 0x0100, 2, command_field)
    if message_id is not None:
        body += _US_ELEMENT.pack(0x0000, 0x0110, 2, message_id)
    if responding_to is not None:
        body += _US_ELEMENT.pack(0x0000, 0x0120, 2, responding_to)
    if priority is not None:
        body += _US_ELEMENT.pack(0x0000, 0x0700, 2, priority)
    body += _US_ELEMENT.pack(0x0000, 0x0800, 2, data_set_type)
    return _UL.pack(0x0000, 0x0000, 4, len(body)) + body


def _p_data_tf(out: bytearray, context_id: int, data: bytes, command: bool,
               max_pdu: int) -> None:
    """``data`` as P-DATA-TF PDUs, one PDV each, fragmented as pynetdicom
    fragments (at most ``max_pdu`` - 6 bytes a fragment; 0: no limit)."""
    step = max_pdu - 6 if max_pdu else max(len(data), 1)
    offset = 0
    while True:
        fragment = data[offset:offset + step]
        final = offset + step >= len(data)
        header = (1 if command else 0) | (2 if final else 0)
        length = len(fragment) + 2  # context ID + message control header
        out += _P_DATA_HEADER.pack(0x04, length + 4, length, context_id)
        out.append(header)
        out += fragment
        if final:
            return
        offset += step


def encode_request(primitive: Any, context_id: int, max_pdu: int) -> bytes | None:
    """The P-DATA-TF PDUs that pynetdicom's ``DIMSEServiceProvider.send_msg``
    sends for ``primitive``, as one byte string; None for what this does not
    encode (anything but a C-FIND request with an identifier and a
    C-CANCEL): then pynetdicom sends it.

    ``max_pdu``: the peer's maximum PDU length (0: unlimited), as
    ``assoc.dimse.maximum_pdu_size`` gives it."""
    if max_pdu and max_pdu < 8:  # pynetdicom raises for these: let it
        return None
    kind = type(primitive).__name__
    if kind == "C_FIND" and getattr(primitive, "MessageIDBeingRespondedTo", None) is None:
        identifier = primitive.Identifier
        return encode_find(primitive.AffectedSOPClassUID, primitive.MessageID,
                           primitive.Priority,
                           identifier.getvalue() if identifier is not None else b"",
                           context_id, max_pdu)
    if kind == "C_CANCEL":
        responding_to = primitive.MessageIDBeingRespondedTo
        if responding_to is None:
            return None
        command = _command_set(None, _CANCEL_RQ, None, responding_to, None, _NO_DATA_SET)
    else:
        return None
    out = bytearray()
    _p_data_tf(out, context_id, command, True, max_pdu)
    return bytes(out)


def encode_find(uid: Any, message_id: int | None, priority: int | None, data: bytes,
                context_id: int, max_pdu: int) -> bytes | None:
    """:func:`encode_request` of a C-FIND request whose AffectedSOPClassUID,
    MessageID, Priority and encoded Identifier are these, without building
    the primitive (pynetdicom's setters check each value, ~7 us a request;
    the caller's values are known to be good: a model's UID, a message ID
    it counts, priority 2); None as there."""
    if max_pdu and max_pdu < 8:
        return None
    if not data or not uid or message_id is None or priority is None:
        return None
    command = _command_set(str(uid), _FIND_RQ, message_id, None, priority,
                           _DATA_SET_PRESENT)
    out = bytearray()
    _p_data_tf(out, context_id, command, True, max_pdu)
    _p_data_tf(out, context_id, data, False, max_pdu)
    return bytes(out)


_SENT_EVENTS = ("EVT_DIMSE_SENT", "EVT_PDU_SENT", "EVT_DATA_SENT")


def _sent_handlers(assoc: Any) -> bool:
    """Whether something would see what pynetdicom sends: a handler bound
    to one of its "sent" events (a script's; pynetdicom's own log handlers
    when its log shows INFO, as at ``-d``).  Then requests go pynetdicom's
    way."""
    import logging

    try:
        from pynetdicom import _handlers, evt

        quiet = not logging.getLogger(_handlers.__name__).isEnabledFor(logging.INFO)
        standard = (_handlers.standard_dimse_sent_handler,
                    _handlers.standard_pdu_sent_handler)
        for name in _SENT_EVENTS:
            for bound in assoc.get_handlers(getattr(evt, name)):
                handler = bound[0] if isinstance(bound, tuple) else bound
                if not (quiet and handler in standard):
                    return True
    except Exception:  # noqa: BLE001 - cannot tell: pynetdicom's way
        return True
    return False


class _SocketReader:
    """Reads the PDUs of an established association off a plain TCP socket
    in the calling thread, while pynetdicom's DUL thread stays off it.

    The DUL thread hands the socket over in ``_is_transport_event``, the
    one place where it checks for incoming data, so never in the middle of
    a PDU.  P-DATA-TF PDUs become messages here; any other PDU, the end of
    the connection or a malformed PDU end the exchange (:class:`PeerEnded`)
    with the reason in words.  Bytes read but not used when the socket goes
    back (the next request's answer, when an exchange ends early) go to the
    :class:`SocketGuard`, which serves them to the DUL thread first.
    """

    def __init__(self, assoc: Any):
        self.dul = assoc.dul
        self.assoc = assoc
        self.sock = assoc.dul.socket.socket
        self.guard = SocketGuard.of(assoc)
        self.owned = False
        self.buffer = bytearray()
        self._messages: collections.deque[Message] = collections.deque()
        self._lock = threading.Lock()
        self._want = False
        self._granted = threading.Event()
        self._installed = False
        # pynetdicom's own method (not a previous reader's, still installed
        # while it had bytes to give back)
        self._transport_event = type(self.dul)._is_transport_event.__get__(self.dul)
        self.idle: Any = None  # called before read() waits for the socket
        self._wake = threading.Event()  # ends the DUL thread's parking

    # -- taking and giving back the socket ---------------------------------

    def acquire(self) -> bool:
        """Take the socket over from the DUL thread; False if it has stopped."""
        with self._lock:
            self._want = True
            # an instance attribute shadows the DUL's method
            self.dul._is_transport_event = self._dul_transport_event
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
                self.guard.give_back(self.buffer)
            self.buffer.clear()
            self._messages.clear()
            # the DUL thread restarts its idle (network) timer on every PDU;
            # it read none while this thread had the socket
            self.dul._idle_timer.restart()
            self.owned = False
            if not self.guard.pushback:
                self._uninstall()
        self._wake.set()  # the DUL thread reads again from here on

    def wake(self) -> None:
        """Something was queued for the DUL thread to send: unpark it."""
        self._wake.set()

    def send(self, data: bytes) -> None:
        """Write ``data`` (whole PDUs) to the socket from the calling
        thread; only while it has the socket and the DUL thread has nothing
        of its own to send (see :meth:`FastExchange.send`)."""
        self.sock.sendall(data)

    def _uninstall(self) -> None:  # with the lock held
        if self._installed:
            self._installed = False
            del self.dul._is_transport_event

    # DUL thread: DULServiceProvider._is_transport_event
    def _dul_transport_event(self) -> bool:
        with self._lock:
            if self._want:
                self._want = False
                self.owned = True
                # between PDUs: bytes an earlier exchange gave back come first
                self.buffer[:0] = self.guard.pushback
                self.guard.pushback.clear()
                self._granted.set()
            owned = self.owned
            if not owned:
                given_back = bool(self.guard.pushback)
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
            self.dul._read_pdu_data()  # reads the pushback through the guard
            return True
        return self._transport_event()

    # -- reading --------------------------------------------------------------

    def read(self, reassembler: _Reassembler, timeout: float | None,
             network_timeout: float | None = None) -> Message:
        """The next message.  Raises TimeoutError when none came within
        ``timeout`` (or the socket was silent for ``network_timeout``),
        ValueError for a malformed P-DATA-TF and :class:`PeerEnded` for any
        other PDU or the end of the connection; in each case the socket goes
        back without what was read of it.  What ``idle`` raises comes out as
        :class:`_IdleFailed`, the socket back with what was read."""
        if self._messages:
            return self._messages.popleft()
        now = time.monotonic()
        deadline = None if timeout is None else now + timeout
        silent_since = now
        buffer = self.buffer
        guard = self.guard
        p_data_limit = guard.limit(P_DATA_TF) or 0  # what too_long() allows a P-DATA-TF
        while True:
            while len(buffer) >= 6:
                pdu_type, length = _PDU_HEADER.unpack_from(buffer)
                refused = (None if pdu_type == P_DATA_TF and length <= p_data_limit
                           else guard.too_long(pdu_type, length))
                if refused:
                    self.release(keep=False)
                    raise PeerEnded(refused)
                if pdu_type != P_DATA_TF:
                    if len(buffer) < 6 + min(length, 4):
                        break  # an A-ABORT's source and reason are 4 bytes in
                    ended = describe_ending_pdu(pdu_type, buffer[6:6 + length])
                    self.release(keep=False)
                    raise PeerEnded(ended)
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
                spent = time.monotonic() - started
                silent_since += spent
                if deadline is not None:
                    deadline += spent
            until, silence = _wait_end(deadline, silent_since, network_timeout)
            wait = None if until is None else max(0.0, until - time.monotonic())
            try:
                data = self.sock.recv(1 << 16) if self._readable(wait) else None
            except OSError as exc:
                self.release(keep=False)
                raise PeerEnded(f"the connection failed ({exc.strerror or exc})") from None
            if data is None:
                self.release(keep=False)
                raise TimeoutError(silence or "")
            if not data:
                self.guard.closed = True
                self.release(keep=False)
                raise PeerEnded("the peer closed the connection"
                                + (" in the middle of a PDU" if buffer else ""))
            silent_since = time.monotonic()
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
            # the fragment without its message control header: one copy
            message = reassembler.add_fragment(context_id, pdu[offset + 5],
                                               pdu[offset + 6:offset + 4 + length])
            if message is not None:
                self._messages.append(message)
            offset += 4 + length


class FastExchange(Exchange):
    """The fast :class:`~dimsekit.dimse.Exchange` (see the module)."""

    def __init__(self, assoc: Any, idle: Any = None):
        super().__init__(assoc, idle)
        self._reassembler = _Reassembler()
        sock = getattr(assoc.dul.socket, "socket", None)
        self._reader = (_SocketReader(assoc) if sock is not None
                        and not isinstance(sock, ssl.SSLSocket) else None)
        if self._reader is not None:
            self._reader.idle = idle
        #: requests are encoded and written here (see the module); False
        #: once one went pynetdicom's way: one writer at a time
        self._direct = self._reader is not None and not _sent_handlers(assoc)
        #: why a request could not be written (receive() then says so)
        self._send_failed: str | None = None

    def __enter__(self) -> FastExchange:
        assoc = self.assoc
        # pynetdicom's own pause: its reactor parks at its checkpoint
        assoc._reactor_checkpoint.clear()
        while not assoc._is_paused:
            time.sleep(0.0001)
        assoc.dimse.receive_primitive = self._receive_primitive
        if self._reader is not None and not self._reader.acquire():
            self._reader = None
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._reader is not None:
            self._reader.release()
        del self.assoc.dimse.receive_primitive  # pynetdicom's method again
        # messages this exchange queued but nobody took (a peer that goes
        # on after a fault) mean nothing to pynetdicom's reactor
        msg_queue = self.assoc.dimse.msg_queue
        with msg_queue.mutex:
            kept = [item for item in msg_queue.queue if not isinstance(item[1], Message)]
            msg_queue.queue.clear()
            msg_queue.queue.extend(kept)
        self.assoc._reactor_checkpoint.set()

    def send(self, request: Any, context_id: int) -> None:
        """Send a :class:`~dimsekit.dimse.Request` or a pynetdicom DIMSE
        primitive (e.g. ``C_FIND``)."""
        from dimsekit.dimse import as_primitive

        primitive = as_primitive(request)
        if self._send_direct(primitive, context_id):
            return
        self.assoc.dimse.send_msg(primitive, context_id)
        if self._reader is not None:
            self._reader.wake()

    def send_find(self, msg_id: int, uid: str, priority: int, identifier: bytes,
                  context_id: int) -> bool:
        """Send a C-FIND request written here (:func:`encode_find`), as
        :meth:`send` sends the C_FIND primitive of these values; False,
        with nothing sent, when it is not this thread's to write (then
        the caller sends the primitive with :meth:`send`)."""
        if not self._owned():
            return False
        data = encode_find(uid, msg_id, priority, identifier, context_id,
                           self.assoc.dimse.maximum_pdu_size)
        if data is None:
            return False  # send() finds it is pynetdicom's to send
        self._write(data)
        return True

    def cancel(self, msg_id: int, context_id: int) -> None:
        if self._owned():
            from pynetdicom.dimse_primitives import C_CANCEL

            primitive = C_CANCEL()
            primitive.MessageIDBeingRespondedTo = msg_id
            if self._send_direct(primitive, context_id):
                return
        super().cancel(msg_id, context_id)
        if self._reader is not None:
            self._reader.wake()

    def _send_direct(self, primitive: Any, context_id: int) -> bool:
        """Encode and write ``primitive`` in this thread (see the module);
        False: it is pynetdicom's to send, from now on every request is."""
        if not self._owned():
            return False
        data = encode_request(primitive, context_id, self.assoc.dimse.maximum_pdu_size)
        if data is None:
            self._direct = False
            return False
        self._write(data)
        return True

    def _owned(self) -> bool:
        """Requests are this thread's to write: the fast path reads the socket."""
        reader = self._reader
        return self._direct and reader is not None and reader.owned

    def _write(self, data: bytes) -> None:
        assert self._reader is not None
        try:
            self._reader.send(data)
        except OSError as exc:
            # the connection is gone: the receive that follows says so
            self._send_failed = (f"the connection failed while sending "
                                 f"({exc.strerror or exc})")

    def receive(self, timeout: float | None | bool = True) -> Message | None:
        assoc = self.assoc
        if self._send_failed is not None:
            self.failure = self._send_failed
            if self._reader is not None:
                self._reader.release(keep=False)
            return None
        wait = assoc.dimse_timeout if timeout is True else timeout
        reader = self._reader
        if reader is not None and reader.owned:
            try:
                message = reader.read(self._reassembler, wait, assoc.network_timeout)
            except _IdleFailed as exc:
                raise exc.error from None
            except PeerEnded as exc:
                self.failure = str(exc)
                return None
            except (ValueError, struct.error) as exc:
                self.failure = f"invalid DIMSE message from the peer ({exc})"
                return None
            except TimeoutError as exc:  # no message within the DIMSE timeout
                self.failure = str(exc) or None
                return None
            return self._received(message)
        if self.idle is not None and assoc.dimse.msg_queue.empty():
            self.idle()
        guard = SocketGuard.of(assoc)
        message = self._from_queue(guard, wait, assoc.network_timeout)
        if message is None:
            if self.failure is None:
                self.failure = guard.failure or guard.ended
            return None
        if not isinstance(message, Message):
            # pynetdicom's own path had queued it before the exchange began
            self.failure = f"unexpected {type(message).__name__} from the peer"
            return None
        return self._received(message)

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
