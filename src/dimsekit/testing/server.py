"""A recording in-process C-FIND / C-ECHO peer built on pynetdicom.

:class:`QuerySCP` answers C-ECHO and C-FIND for the Patient Root, Study Root
and Patient/Study Only Q/R models, Modality Worklist and UPS Pull, from
:mod:`dimsekit.testing.sampledata` (or data of your own), records everything
it receives (:attr:`~QuerySCP.requests`, :attr:`~QuerySCP.echoes`,
:attr:`~QuerySCP.cancels`, :attr:`~QuerySCP.associations`), and has knobs to
misbehave on purpose (slow, failing, aborting, hanging, rejecting peers).
Typical pytest use, with the ``dimsekit_scp`` / ``dimsekit_make_scp``
fixtures of dimsekit's pytest plugin or a fixture of your own::

    @pytest.fixture
    def scp():
        with QuerySCP() as peer:
            yield peer

    def test_something(scp):
        run_my_scu("127.0.0.1", scp.port)
        assert scp.requests[0].identifier.QueryRetrieveLevel == "STUDY"

The peer is built from three layers: :mod:`dimsekit.testing.matching`
decides what a C-FIND matches, :mod:`dimsekit.testing.recording` holds what
was received, and this module runs the pynetdicom server between the two
(negotiation, responses, misbehaviour).

Notes
-----
* Every knob is read when a C-FIND or C-ECHO (or, for ``reject`` and
  ``accept_models``, an association) arrives, so it can be changed between
  requests.
* The peer sets TCP_NODELAY on each accepted socket; it does not change any
  of pynetdicom's global ``_config`` (``LOG_REQUEST_IDENTIFIERS`` and
  ``LOG_RESPONSE_IDENTIFIERS`` stay on: pynetdicom formats every identifier
  for its log whether or not anything is logged -- a cost, not a bug).
* Matching (:mod:`dimsekit.testing.matching`) is done on decoded Python
  strings, independent of the query's Specific Character Set, and is
  case-sensitive except for PN values when fuzzy semantic matching was
  negotiated.
* pynetdicom 3.0.4 appends a Success response after a handler's *warning*
  status (e.g. 0xB001), which a client then takes as the final response of
  its next query; ``final_status`` works around that (see ``_final``), so a
  warning final status is sent alone, like failures and Cancel.
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import threading
import time
import weakref
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydicom.dataset import Dataset
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)
from pynetdicom import AE, evt
from pynetdicom.pdu_primitives import A_RELEASE

from dimsekit.testing.matching import QR_MODELS, MatchFailure, find_matches
from dimsekit.testing.recording import (
    AssociationRecord,
    CancelRecord,
    ContextRecord,
    EchoRecord,
    FindRecord,
)
from dimsekit.testing.sampledata import SampleData, sample_data

if TYPE_CHECKING:  # pragma: no cover
    from typing_extensions import Self

__all__ = ["MODEL_UIDS", "TRANSFER_SYNTAXES", "QuerySCP", "wait_for"]

#: short model name -> SOP Class UID of everything QuerySCP serves
MODEL_UIDS: dict[str, str] = {
    "verification": "1.2.840.10008.1.1",
    "patient": "1.2.840.10008.5.1.4.1.2.1.1",
    "study": "1.2.840.10008.5.1.4.1.2.2.1",
    "psonly": "1.2.840.10008.5.1.4.1.2.3.1",
    "worklist": "1.2.840.10008.5.1.4.31",
    "ups": "1.2.840.10008.5.1.4.34.6.3",
}
_MODEL_BY_UID = {v: k for k, v in MODEL_UIDS.items()}

#: transfer syntaxes accepted for every model
TRANSFER_SYNTAXES: list[str] = [
    ImplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    DeflatedExplicitVRLittleEndian,
]


def wait_for(predicate: Any, timeout: float = 3.0) -> bool:
    """Poll ``predicate`` until true (False after ``timeout`` seconds).

    pynetdicom updates association state asynchronously: ``send_c_find()``
    can return before ``is_aborted`` is set, so tests wait for it.
    """
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def _status_ds(status: int, comment: str | None = None) -> Dataset:
    ds = Dataset()
    ds.Status = status
    if comment:
        ds.ErrorComment = comment[:64]
    return ds


@dataclass(eq=False)
class _Session:
    """The peer's own bookkeeping for one association, next to its record."""

    record: AssociationRecord
    #: the peer aborted it (``abort_after``, :meth:`QuerySCP.stop`)
    local_abort: bool = False
    #: message ID -> the C-FIND request being answered
    active: dict[int, FindRecord] = field(default_factory=dict)
    # message IDs of C-FIND requests received and not yet answered, and of
    # those among them a C-CANCEL arrived for
    inflight: set[int] = field(default_factory=set)
    cancelled: set[int] = field(default_factory=set)


class QuerySCP:
    """A recording C-ECHO/C-FIND peer running in a background thread.

    Parameters
    ----------
    ae_title, host, port:
        Where to listen.  ``port=0`` binds a free port; read :attr:`port`.
    data:
        A :class:`~dimsekit.testing.sampledata.SampleData` (default: the
        sample data).  Can be replaced later through :attr:`data`.
    repeat_matches:
        ``N``: answer every query with exactly N pending responses, cycling
        through the real matches (or echoing the identifier if none match).
    response_delay:
        Seconds to sleep before each pending response.
    final_status:
        Send this status (e.g. ``0xC000``) instead of Success after the matches.
    abort_after:
        ``N``: abort the association instead of sending pending response N+1
        or the final status, whichever comes first.
    hang_after:
        ``N``: stop answering after N pending responses and never send the
        final status (until the peer aborts or :meth:`stop` is called).
    reject:
        ``(result, source, reason)``: reject every association with it, e.g.
        ``(1, 1, 3)`` = permanent, service user, calling AE title not recognised.
    accept_models:
        Iterable of model names (``"verification"``, ``"patient"``, ``"study"``,
        ``"psonly"``, ``"worklist"``, ``"ups"``) or SOP Class UIDs; only those
        presentation contexts are accepted (``None``: all).
    honour_cancel:
        ``True``: stop at a C-CANCEL and answer 0xFE00 Cancel; ``False``:
        ignore it and send everything (like Orthanc and dcmqrscp).
    accept_extended_negotiation:
        Answer SOP Class Extended Negotiation for the Q/R models by echoing
        the requested bytes (``False``: never answer).  Accepted flags change
        matching: relational (lower-level keys filter), combined date-time,
        fuzzy (case-insensitive) person names.
    strict_hierarchy:
        Fail (0xA900) a hierarchical Q/R query that lacks a unique key of a
        level above the query level (unless relational was negotiated).
    echo_status:
        Answer every C-ECHO with this status (e.g. ``0x0211``, Unrecognised
        operation) instead of ``0x0000`` Success.
    echo_delay:
        Seconds to wait before answering a C-ECHO (to make a requestor's
        DIMSE timeout expire); :meth:`stop` cuts the wait short.
    echo_abort_after:
        ``N``: abort the association instead of answering its C-ECHO N+1
        (``0``: abort at the first C-ECHO).
    ssl_context:
        A server-side :class:`ssl.SSLContext`: speak DICOM TLS (each
        accepted connection is wrapped in it).
    queries_per_association:
        ``N``: after answering N C-FIND requests on an association, abort
        it (as some PACS end every association after one query): at once
        if another request arrives first, else a moment after the last
        final response.
    max_associations:
        How many associations at once (pynetdicom rejects more, as
        rejected-transient, local limit exceeded); read at :meth:`start`.
    status_for:
        ``callable(identifier) -> status or None``: the final status of
        each C-FIND decided from its identifier (None: as usual), e.g. to
        fail one row of a batch.
    """

    def __init__(
        self,
        ae_title: str = "ANY-SCP",
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        data: SampleData | None = None,
        repeat_matches: int | None = None,
        response_delay: float = 0.0,
        final_status: int | None = None,
        abort_after: int | None = None,
        hang_after: int | None = None,
        reject: tuple[int, int, int] | None = None,
        accept_models: Iterable[str] | None = None,
        honour_cancel: bool = True,
        accept_extended_negotiation: bool = True,
        strict_hierarchy: bool = False,
        echo_status: int | None = None,
        echo_delay: float = 0.0,
        echo_abort_after: int | None = None,
        ssl_context: Any = None,
        queries_per_association: int | None = None,
        status_for: Any = None,
        max_associations: int = 64,
    ) -> None:
        self.ae_title = ae_title
        self.host = host
        self._requested_port = port
        self._port: int | None = None
        self.data = data if data is not None else sample_data()
        self.repeat_matches = repeat_matches
        self.response_delay = response_delay
        self.final_status = final_status
        self.abort_after = abort_after
        self.hang_after = hang_after
        self.reject = reject
        self.accept_models = accept_models
        self.honour_cancel = honour_cancel
        self.accept_extended_negotiation = accept_extended_negotiation
        self.strict_hierarchy = strict_hierarchy
        self.echo_status = echo_status
        self.echo_delay = echo_delay
        self.echo_abort_after = echo_abort_after
        self.ssl_context = ssl_context
        self.queries_per_association = queries_per_association
        self.max_associations = max_associations
        self.status_for = status_for

        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server: Any = None
        self._ae: AE | None = None
        self._requests: list[FindRecord] = []
        self._associations: list[AssociationRecord] = []
        self._cancels: list[CancelRecord] = []
        self._echoes: list[EchoRecord] = []
        # pynetdicom Association (a Thread) -> its session; weak, so a
        # long-running peer does not keep finished associations alive
        self._by_assoc: weakref.WeakKeyDictionary[Any, _Session] = (
            weakref.WeakKeyDictionary()
        )

    # -- lifecycle ---------------------------------------------------------

    @property
    def port(self) -> int:
        """The port actually bound (valid after :meth:`start`)."""
        if self._port is None:
            raise RuntimeError("QuerySCP is not started")
        return self._port

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    @property
    def is_running(self) -> bool:
        return self._server is not None

    def start(self) -> Self:
        """Start listening (in a background thread); return self."""
        if self._server is not None:
            return self
        self._stop.clear()
        ae = AE(ae_title=self.ae_title)
        ae.maximum_associations = self.max_associations
        for uid in MODEL_UIDS.values():
            ae.add_supported_context(uid, TRANSFER_SYNTAXES)
        handlers: list[evt.EventHandlerType] = [
            (evt.EVT_CONN_OPEN, self._on_conn_open),
            (evt.EVT_REQUESTED, self._on_requested),
            (evt.EVT_SOP_EXTENDED, self._on_sop_extended),
            (evt.EVT_ESTABLISHED, self._on_established),
            (evt.EVT_RELEASED, self._on_released),
            (evt.EVT_ABORTED, self._on_aborted),
            (evt.EVT_CONN_CLOSE, self._on_conn_close),
            (evt.EVT_DIMSE_RECV, self._on_dimse_recv),
            (evt.EVT_C_FIND, self._on_find),
            (evt.EVT_C_ECHO, self._on_echo),
        ]
        server = ae.start_server(
            (self.host, self._requested_port), block=False, evt_handlers=handlers,
            ssl_context=self.ssl_context,
        )
        assert server is not None  # block=False: start_server returns the server
        self._ae = ae
        self._server = server
        self._port = int(server.server_address[1])
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Stop listening, abort open associations, unblock hung handlers.

        Returns within about `timeout` seconds even if peers misbehave.
        Records stay available.
        """
        server = self._server
        if server is None:
            return
        self._server = None
        self._stop.set()

        deadline = time.monotonic() + timeout
        # serve_forever() polls every 0.5 s; a connection attempt wakes its
        # select() so shutdown() returns at once.
        closer = threading.Thread(target=server.shutdown, daemon=True)
        closer.start()
        closer.join(0.005)
        while closer.is_alive() and time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                socket.create_connection((self.host, self.port), timeout=0.2).close()
            closer.join(0.02)

        # abort whatever is still open (in parallel: each blocking abort
        # waits for the peer to close and then sleeps 0.1 s)
        aborters = []
        for assoc in list(server.active_associations):
            session = self._by_assoc.get(assoc)
            if session is not None:
                session.local_abort = True
            t = threading.Thread(target=self._abort_quietly, args=(assoc,), daemon=True)
            t.start()
            aborters.append((t, assoc))
        for t, assoc in aborters:
            t.join(max(deadline - time.monotonic(), 0.05))
            assoc.join(max(deadline - time.monotonic(), 0.05))

    @staticmethod
    def _abort_quietly(assoc: Any) -> None:
        with contextlib.suppress(Exception):
            assoc.abort(block=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- records -----------------------------------------------------------

    @property
    def requests(self) -> list[FindRecord]:
        """C-FIND requests received, oldest first (a copy of the list)."""
        with self._lock:
            return list(self._requests)

    @property
    def associations(self) -> list[AssociationRecord]:
        """Associations requested, oldest first (a copy of the list)."""
        with self._lock:
            return list(self._associations)

    @property
    def echoes(self) -> list[EchoRecord]:
        """C-ECHO requests received, oldest first (a copy of the list)."""
        with self._lock:
            return list(self._echoes)

    @property
    def cancels(self) -> list[CancelRecord]:
        """C-CANCEL requests received, oldest first (a copy of the list)."""
        with self._lock:
            return list(self._cancels)

    def reset(self) -> None:
        """Forget all records (knobs and data are kept)."""
        with self._lock:
            self._requests.clear()
            self._associations.clear()
            self._cancels.clear()
            self._echoes.clear()

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until every recorded association has ended."""
        deadline = time.monotonic() + timeout
        for rec in self.associations:
            if not rec.wait_ended(max(0.0, deadline - time.monotonic())):
                return False
        return True

    # -- event handlers ----------------------------------------------------

    def _session_for(self, assoc: Any) -> _Session | None:
        return self._by_assoc.get(assoc)

    def _record_for(self, assoc: Any) -> AssociationRecord | None:
        session = self._by_assoc.get(assoc)
        return session.record if session is not None else None

    def _on_conn_open(self, event: Any) -> None:
        with contextlib.suppress(Exception):
            sock = event.assoc.dul.socket.socket
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _on_requested(self, event: Any) -> None:
        assoc = event.assoc
        rq = assoc.requestor.primitive
        requested = [
            ContextRecord(
                int(cx.context_id), str(cx.abstract_syntax),
                tuple(str(ts) for ts in cx.transfer_syntax),
            )
            for cx in assoc.requestor.requested_contexts
        ]
        try:
            address = (str(assoc.requestor.address), int(assoc.requestor.port))
        except Exception:  # noqa: BLE001 - an address is nice to have, never needed
            address = ("", 0)
        rec = AssociationRecord(
            calling_ae=str(rq.calling_ae_title).strip(),
            called_ae=str(rq.called_ae_title).strip(),
            address=address,
            max_pdu=assoc.requestor.maximum_length,
            requested_contexts=requested,
            extended_negotiation={
                str(k): bytes(v) for k, v in assoc.requestor.sop_class_extended.items()
            },
        )
        with self._lock:
            self._associations.append(rec)
            self._by_assoc[assoc] = _Session(rec)

        reject = self.reject
        if reject is not None:
            rec._end("rejected")
            assoc.acse.send_reject(*reject)
            # what pynetdicom itself does after a reject: wait for the DUL
            # to send it and the peer to close, then stop the threads
            assoc.kill()
            return

        if self.accept_models is not None:
            models = self.accept_models
            models = [models] if isinstance(models, str) else models
            allowed = {MODEL_UIDS.get(m, m) for m in models}
            assoc.acceptor.supported_contexts = [
                cx for cx in assoc.acceptor.supported_contexts
                if cx.abstract_syntax in allowed
            ]

    def _on_sop_extended(self, event: Any) -> dict[str, bytes]:
        rec = self._record_for(event.assoc)
        if not self.accept_extended_negotiation:
            return {}
        qr_uids = {MODEL_UIDS[m] for m in QR_MODELS}
        reply = {uid: info for uid, info in event.app_info.items() if uid in qr_uids}
        if rec is not None:
            rec.accepted_extended_negotiation = {str(k): bytes(v) for k, v in reply.items()}
        return reply

    def _on_established(self, event: Any) -> None:
        rec = self._record_for(event.assoc)
        if rec is None:
            return

        def conv(cx: Any) -> ContextRecord:
            return ContextRecord(
                int(cx.context_id), str(cx.abstract_syntax),
                tuple(str(ts) for ts in cx.transfer_syntax[:1] if cx.result == 0),
            )

        rec.accepted_contexts = [conv(cx) for cx in event.assoc.accepted_contexts]
        rec.rejected_contexts = [conv(cx) for cx in event.assoc.rejected_contexts]

    def _on_released(self, event: Any) -> None:
        rec = self._record_for(event.assoc)
        if rec is not None:
            rec._end("released", upgrade=True)

    def _on_aborted(self, event: Any) -> None:
        session = self._session_for(event.assoc)
        if session is not None:
            how = "aborted-by-scp" if session.local_abort else "aborted"
            session.record._end(how, upgrade=True)

    def _on_conn_close(self, event: Any) -> None:
        session = self._session_for(event.assoc)
        if session is not None:
            assoc, rec = event.assoc, session.record
            if assoc.is_released:
                rec._end("released")
            elif session.local_abort:
                rec._end("aborted-by-scp")
            elif assoc.is_aborted:
                rec._end("aborted")
            else:
                rec._end("closed")

    def _on_dimse_recv(self, event: Any) -> None:
        # Runs in the DUL thread, in the order messages arrive -- before the
        # reactor thread starts the handler for a C-FIND-RQ.
        cs = getattr(event.message, "command_set", None)
        session = self._session_for(event.assoc)
        if cs is None or session is None:
            return
        if cs.get("CommandField") == 0x0020:  # C-FIND-RQ
            session.inflight.add(int(cs.MessageID))
            return
        if cs.get("CommandField") != 0x0FFF:  # C-CANCEL-RQ
            return
        msg_id = int(cs.MessageIDBeingRespondedTo)
        # pynetdicom itself clears its C-CANCELs before and after each
        # request, losing one that arrives before the handler starts
        stale = msg_id not in session.inflight
        if not stale:
            session.cancelled.add(msg_id)
        request = session.active.get(msg_id)
        cancel = CancelRecord(
            message_id=msg_id,
            calling_ae=session.record.calling_ae,
            after_responses=request.responses if request is not None else None,
            stale=stale,
            request=request,
        )
        with self._lock:
            self._cancels.append(cancel)

    # -- C-ECHO ------------------------------------------------------------

    def _on_echo(self, event: Any) -> int:
        assoc = event.assoc
        arec = self._record_for(assoc)
        cx_id, _, ts = event.context
        rec = EchoRecord(
            calling_ae=arec.calling_ae if arec else "",
            called_ae=arec.called_ae if arec else "",
            message_id=int(event.request.MessageID),
            context_id=int(cx_id),
            transfer_syntax=str(ts),
            association=arec,
        )
        with self._lock:
            self._echoes.append(rec)
            if arec is not None:
                arec.echoes.append(rec)
        abort_after, delay = self.echo_abort_after, self.echo_delay
        if abort_after is not None and arec is not None and len(arec.echoes) > abort_after:
            self._abort(assoc)
            return 0x0000  # not sent: pynetdicom sees the association ended
        if delay and self._stop.wait(delay):
            self._halt(assoc)
            return 0x0000
        if not assoc.is_established:
            return 0x0000  # the requestor gave up (DIMSE timeout) meanwhile
        status = 0x0000 if self.echo_status is None else int(self.echo_status)
        rec.status = status
        return status

    # -- C-FIND ------------------------------------------------------------

    def _on_find(self, event: Any) -> Iterator[tuple[Any, Dataset | None]]:
        assoc = event.assoc
        session = self._session_for(assoc)
        arec = session.record if session is not None else None
        req = event.request
        cx_id, abstract, ts = event.context
        model = _MODEL_BY_UID.get(str(abstract), "?")
        try:
            identifier: Dataset | None = event.identifier
            assert identifier is not None
            identifier.walk(lambda ds, elem: None)  # decode everything now
        except Exception as exc:  # noqa: BLE001 - any undecodable identifier: 0xC000
            identifier = None
            decode_error: str | None = f"cannot decode identifier: {exc}"
        else:
            decode_error = None
        rec = FindRecord(
            identifier=identifier,
            sop_class_uid=str(req.AffectedSOPClassUID),
            model=model,
            calling_ae=arec.calling_ae if arec else "",
            called_ae=arec.called_ae if arec else "",
            message_id=int(req.MessageID),
            priority=int(req.Priority),
            context_id=int(cx_id),
            transfer_syntax=str(ts),
            association=arec,
        )
        with self._lock:
            self._requests.append(rec)
            if session is not None:
                session.record.requests.append(rec)
                session.active[rec.message_id] = rec
        limit = self.queries_per_association
        if limit is not None and arec is not None and len(arec.requests) > limit:
            self._finish(rec, session)
            self._abort(assoc)
            return
        try:
            if decode_error is not None or identifier is None:
                status = _status_ds(0xC000, decode_error)
                yield from self._final(rec, session, status)
                return
            try:
                matches = self._matches(model, identifier, arec)
            except MatchFailure as failure:
                status = _status_ds(failure.status, failure.comment)
                yield from self._final(rec, session, status)
                return
            yield from self._respond(event, rec, session, identifier, matches)
        finally:
            self._finish(rec, session)
            if limit is not None and arec is not None and len(arec.requests) >= limit:
                self._abort_soon(assoc)

    def _abort_soon(self, assoc: Any) -> None:
        """Abort ``assoc`` a moment after the final response is sent (it is
        sent once this handler returns)."""
        def later() -> None:
            if wait_for(lambda: not assoc.is_established, 0.05):
                return
            with contextlib.suppress(Exception):
                self._abort(assoc)

        threading.Thread(target=later, daemon=True).start()

    def _matches(
        self, model: str, identifier: Dataset, arec: AssociationRecord | None
    ) -> list[Dataset]:
        """What `identifier` matches in :attr:`data`, with the extended
        negotiation flags accepted on the association."""
        uid = MODEL_UIDS.get(model, "")
        relational, dt_matching, fuzzy = (
            (arec.ext_flag(uid, 0), arec.ext_flag(uid, 1), arec.ext_flag(uid, 2))
            if arec is not None else (False, False, False)
        )
        return find_matches(
            model, identifier, self.data, relational=relational, dt_matching=dt_matching,
            fuzzy=fuzzy, strict_hierarchy=self.strict_hierarchy,
            retrieve_ae_title=self.ae_title,
        )

    @staticmethod
    def _finish(rec: FindRecord, session: _Session | None) -> None:
        """The request is answered (or never will be): late C-CANCELs for
        its message ID are stale from now on."""
        if session is not None:
            session.active.pop(rec.message_id, None)
            session.inflight.discard(rec.message_id)
            session.cancelled.discard(rec.message_id)
        rec._done.set()

    def _final(
        self, rec: FindRecord, session: _Session | None, status: Dataset, assoc: Any = None
    ) -> Iterator[tuple[Any, Dataset | None]]:
        rec.status = int(status.Status)
        self._finish(rec, session)
        yield (status, None)
        # Only reached for statuses pynetdicom classes as *warning*: it sent
        # ours and carries on, and would append a Success response of its
        # own after the handler ends -- a second final response that a client
        # takes as the answer to its next query.  pynetdicom skips that when
        # the association looks ended, so pretend for the moment it returns,
        # and undo it when it closes this generator (synchronously, in the
        # same thread, as soon as it drops its reference).
        if assoc is None:
            return
        assoc.is_established = False
        try:
            yield (0xFF00, Dataset())  # never sent
        finally:
            assoc.is_established = True

    def _respond(
        self,
        event: Any,
        rec: FindRecord,
        session: _Session | None,
        identifier: Dataset,
        matches: list[Dataset],
    ) -> Iterator[tuple[Any, Dataset | None]]:
        assoc = event.assoc
        repeat, delay = self.repeat_matches, self.response_delay
        abort_after, hang_after = self.abort_after, self.hang_after
        final, honour = self.final_status, self.honour_cancel
        if self.status_for is not None:
            chosen = self.status_for(identifier)
            if chosen is not None:
                final = chosen
        if repeat is not None:
            pool = matches or [identifier]
            matches = list(itertools.islice(itertools.cycle(pool), repeat))

        def cancelled() -> bool:
            if rec.cancelled_after is None:
                seen = event.is_cancelled  # also pops pynetdicom's copy
                if session is not None:
                    # pynetdicom drops a C-CANCEL that arrives before the
                    # handler starts; our own bookkeeping does not
                    seen = rec.message_id in session.cancelled
                if seen:
                    rec.cancelled_after = rec.responses
            return rec.cancelled_after is not None

        for match in itertools.chain(matches, [None]):
            if self._stop.is_set():
                self._halt(assoc)
                return
            if abort_after is not None and rec.responses >= abort_after:
                self._abort(assoc)
                return
            if hang_after is not None and rec.responses >= hang_after:
                self._hang(assoc)
                return
            if match is None:
                break
            if delay and self._stop.wait(delay):
                self._halt(assoc)
                return
            if cancelled() and honour:
                yield from self._final(rec, session, _status_ds(0xFE00))
                return
            rec.responses += 1
            yield (0xFF00, match)

        if cancelled() and honour:
            yield from self._final(rec, session, _status_ds(0xFE00))
            return
        if final is None or final == 0:
            rec.status = 0
            self._finish(rec, session)
            return  # pynetdicom sends Success
        yield from self._final(rec, session, _status_ds(final), assoc)

    def _abort(self, assoc: Any) -> None:
        session = self._session_for(assoc)
        if session is not None:
            session.local_abort = True
        # explicit block=True: `assoc.abort` is swapped between its blocking
        # and non-blocking variants by whichever thread triggers an event
        assoc.abort(block=True)

    def _halt(self, assoc: Any) -> None:
        """stop() is aborting this association: make sure pynetdicom sends
        nothing more for the current request."""
        if not wait_for(lambda: not assoc.is_established, 2.0):
            assoc.is_established = False

    def _hang(self, assoc: Any) -> None:
        """Send nothing until the peer goes away, releases, or stop()."""
        while not self._stop.wait(0.02):
            if assoc.acse.is_aborted() or not assoc.dul.is_alive():
                # the peer aborted or dropped the connection: keep pynetdicom
                # from sending the final response on a dead association
                assoc.is_established = False
                return
            if isinstance(assoc.dul.peek_next_pdu(), A_RELEASE):
                return  # let pynetdicom finish the request and the release
        self._halt(assoc)
