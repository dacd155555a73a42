"""C-FIND on an open association: each request sent once encoded, its
responses decoded as they arrive, every way of going wrong turned into the
exception that carries its exit code.

    run = FindRun(assoc, exchange, dimse_timeout=30)
    for ds, response in run.responses(query):
        ...                        # pydicom Dataset, Response
    run.final                      # the last request's final status

Shared by the Python API (:class:`dimsekit.Session`) and the ``find``
command: the library yields, the command writes.  Leaving the loop early
(break, an exception in the loop's body, ``close()``) sends C-CANCEL and
gives the peer :data:`CANCEL_GRACE` seconds to end the request; a peer that
goes on leaves the run :attr:`~FindRun.broken` (the association must be
aborted).  The first Ctrl-C (KeyboardInterrupt) while waiting for the peer
does the same and raises :class:`~dimsekit.errors.Interrupted` once the
peer has ended the request; a second one, or one marked ``abort`` (the
CLI's SIGTERM), raises it at once.  With ``interrupts=False`` (the Python
API) KeyboardInterrupt goes on at once and the run is broken.
"""

from __future__ import annotations

import logging
import struct
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

from dimsekit.dimse import COMMAND_FIELD, MESSAGE_ID_BEING_RESPONDED_TO, STATUS, find_request
from dimsekit.errors import AssociationError, IncompleteError, Interrupted, UsageError
from dimsekit.records import InformationModel
from dimsekit.status import category as status_category
from dimsekit.status import describe_status

log = logging.getLogger("dimsekit.find")

PENDING = (0xFF00, 0xFF01)
#: a pending status as its command element value -> the status
_PENDING_VALUES = {struct.pack("<H", code): code for code in PENDING}
CANCEL = 0xFE00
C_FIND_RSP = 0x8020  # CommandField
#: seconds the peer gets to end a request after C-CANCEL (Ctrl-C, or the
#: caller leaving the loop early)
CANCEL_GRACE = 2.0


@dataclass
class Query:
    """A prepared query: its label (file name, ``-k``), identifier and model."""

    label: str
    identifier: Any  # pydicom Dataset
    model: InformationModel
    #: encodes the identifier at less cost (a batch row's, built on a
    #: template: :class:`dimsekit._internals.encoding.TemplateEncoder`);
    #: None: pynetdicom's ``encode``
    encoder: Any = field(default=None, repr=False, compare=False)


@dataclass
class Response:
    """What is known about each pending response besides its identifier."""

    query: int  # 1-based index of the query in the run
    number: int  # 1-based, per request (DCMTK's "Find Response: N")
    status: int
    transfer_syntax: str
    model: InformationModel


@dataclass
class Final:
    """How a request ended: the final status and what the peer said."""

    status: int
    text: str  # the status in words, with the Error Comment if any
    category: str  # "Success", "Warning", "Failure", "Cancel"
    error_comment: str | None
    pending: int  # pending responses received
    cancelled: bool  # C-CANCEL had been sent

    @property
    def ok(self) -> bool:
        """Success, a warning, or Cancel after a cancel that was asked for."""
        return self.category in ("Success", "Warning") or (
            self.status == CANCEL and self.cancelled)

    @property
    def capped(self) -> bool:
        """The peer stopped the matching itself: Cancel nobody asked for
        (how Orthanc's ``LimitFindResults`` ends a capped result) or Out
        of Resources (0xA7xx: too many matches, for many peers)."""
        return ((self.status == CANCEL and not self.cancelled)
                or 0xA700 <= self.status <= 0xA7FF)

    def failure(self, label: str | None = None) -> str:
        """The one line for a request that ended with this failure."""
        text = f"peer answered {self.text}"
        if label is not None:
            text = f"query {label}: {text}"
        if self.capped:
            n = self.pending
            text += (f"; the peer stopped the matching itself after {n} "
                     f"match{'es' * (n != 1)} (a result cap is the usual cause: "
                     f"see --max-per-query)")
        return text


def status_table(model: InformationModel) -> dict:
    from pynetdicom import status

    if model.name == "worklist":
        return status.MODALITY_WORKLIST_SERVICE_CLASS_STATUS
    return status.QR_FIND_SERVICE_CLASS_STATUS


class FindRun:
    """C-FIND requests on one open association and their responses.

    ``exchange``: an open :class:`~dimsekit.dimse.Exchange` on ``assoc``.
    After each :meth:`responses` loop, :attr:`final` says how the request
    ended; :attr:`skipped` lists the responses that were malformed
    (``"query X, response N"``), each logged as a warning.
    """

    def __init__(self, assoc: Any, exchange: Any, *, dimse_timeout: float | None = None,
                 cancel_grace: float = CANCEL_GRACE, show: Any = str,
                 interrupts: bool = True):
        self.assoc = assoc
        #: identifiers as text for the log (-v, -d): pydicom's by default
        self.show = show
        #: Ctrl-C cancels with a grace and raises Interrupted (the CLI);
        #: False: KeyboardInterrupt goes on at once, the run broken (a script)
        self.interrupts = interrupts
        self.exchange = exchange
        self.dimse_timeout = dimse_timeout
        self.cancel_grace = cancel_grace
        self.msg_id = 0
        self.final: Final | None = None
        self.skipped: list[str] = []
        #: responses delivered in the run, and to the current request
        self.delivered = 0
        self.delivered_now = 0
        #: the peer did not end a cancelled request: abort the association
        self.broken = False
        self._encoded: tuple[Any, bytes, Any, Query] | None = None
        self._decoders: dict[int, Any] = {}
        #: a model's UID -> as pynetdicom's C_FIND took it (see _send)
        self._uids: dict[str, str] = {}

    def context_for(self, model: InformationModel) -> Any:
        for cx in self.assoc.accepted_contexts:
            if cx.abstract_syntax == model.sop_class_uid:
                return cx
        raise AssociationError(
            f"the peer accepted no presentation context for {model.name} "
            f"({model.sop_class_uid})"
        )

    def _prepared(self, query: Query) -> tuple[Any, bytes, Any]:
        """(context, encoded identifier, decoder): once per query in a row
        (``--repeat``); only the last query's is kept, so a batch of many
        rows holds none of the rows before (the decoder is kept per
        presentation context)."""
        prepared = self._encoded
        if prepared is None or prepared[3] is not query:
            from pynetdicom.dsutils import encode

            from dimsekit.qr.decode import decoder

            cx = self.context_for(query.model)
            ts = cx.transfer_syntax[0]
            identifier = None
            if query.encoder is not None and not ts.is_deflated:
                identifier = query.encoder.encode(query.identifier, ts.is_implicit_VR,
                                                  ts.is_little_endian)
            if identifier is None:
                identifier = encode(query.identifier, ts.is_implicit_VR,
                                    ts.is_little_endian, ts.is_deflated)
            if identifier is None:
                raise UsageError(f"query {query.label}: cannot encode the identifier "
                                 f"in {ts.name}")
            decode = self._decoders.get(cx.context_id)
            if decode is None:
                decode = self._decoders[cx.context_id] = decoder(ts)
            prepared = self._encoded = (cx, identifier, decode, query)
        return prepared[0], prepared[1], prepared[2]

    def _send(self, query: Query, identifier: bytes, context_id: int) -> None:
        """Send the C-FIND request: pynetdicom's C_FIND primitive, whose
        setters check its values; once a model's UID passed them, the fast
        exchange writes the request of the same values without one
        (:meth:`~dimsekit._internals.exchange.FastExchange.send_find`)."""
        uid = self._uids.get(query.model.sop_class_uid)
        send_find = getattr(self.exchange, "send_find", None)
        if (uid is not None and send_find is not None
                and send_find(self.msg_id, uid, 2, identifier, context_id)):
            return
        request = find_request(self.msg_id, query.model.sop_class_uid, identifier).primitive()
        if request.AffectedSOPClassUID:
            self._uids[query.model.sop_class_uid] = str(request.AffectedSOPClassUID)
        self.exchange.send(request, context_id)

    def unwritten(self, query: Query, number: int, problem: str) -> None:
        """A delivered response the caller could not use after all (no
        writer can format one of its values): counted as skipped."""
        self.delivered -= 1
        self.delivered_now -= 1
        self._skip(query, number, problem)

    def responses(self, query: Query, index: int = 1, *,
                  cancel_after: int | None = None) -> Generator[tuple[Any, Response], None, None]:
        """Send one C-FIND request; yield ``(Dataset, Response)`` for each
        pending response until the final one (:attr:`final`)."""
        cx, identifier, decode = self._prepared(query)
        verbose = log.isEnabledFor(logging.INFO)
        debug = log.isEnabledFor(logging.DEBUG)
        exchange = self.exchange
        self.final = None
        self.msg_id = self.msg_id % 65535 + 1
        if verbose:
            log.info("Sending Find Request: MsgID %d (%s)", self.msg_id, query.label)
            log.info("# Request Identifier\n%s", self.show(query.identifier))
        self._send(query, identifier, cx.context_id)

        pending = 0
        self.delivered_now = 0
        cancelled = False
        interrupted: float | None = None  # when the first Ctrl-C came
        last = time.monotonic()
        ended = False
        # what each response repeats, looked up once
        transfer_syntax = cx.transfer_syntax[0]
        model = query.model
        expected = self._expected(cx.context_id)
        try:
            while True:
                try:
                    if interrupted is None:
                        message = exchange.receive()
                    else:
                        message = exchange.receive(timeout=max(
                            0.0, interrupted + self.cancel_grace - time.monotonic()))
                    if message is None:
                        ended = True
                        if interrupted is not None:
                            raise Interrupted(self._interrupted(query, answered=False))
                        raise IncompleteError(self._lost(query, last, exchange.failure),
                                              received=self.delivered)
                    code = _pending_status(message, expected)
                    if code is None:
                        code = self._check(query, message, cx, last)
                    last = time.monotonic()
                    if code not in PENDING:
                        ended = True
                        if interrupted is not None:
                            raise Interrupted(self._interrupted(query, answered=True))
                        self.final = self._final(query, code, pending, cancelled, message)
                        return
                    pending += 1
                    if verbose:
                        log.info("Find Response: %d - 0x%04X (Pending)", pending, code)
                    if cancelled:
                        continue
                    ds = decode(message.dataset)
                    if ds is None:
                        self._skip(query, pending, decode.problem)
                        continue
                    if debug:
                        log.debug("# Response Identifier\n%s", self.show(ds))
                    self.delivered += 1
                    self.delivered_now += 1
                    yield ds, Response(index, pending, code, transfer_syntax, model)
                    if cancel_after and pending >= cancel_after:
                        log.info("Sending Cancel Request: MsgID %d", self.msg_id)
                        exchange.cancel(self.msg_id, cx.context_id)
                        cancelled = True
                except KeyboardInterrupt as exc:
                    if not self.interrupts:
                        raise
                    # the first Ctrl-C: C-CANCEL, then a short grace for the
                    # final status; a second one (or SIGTERM): abort at once
                    if interrupted is not None or getattr(exc, "abort", False):
                        ended = True
                        raise Interrupted(self._interrupted(
                            query, answered=False, how=getattr(exc, "how", None))) from exc
                    interrupted = time.monotonic()
                    cancelled = True
                    try:
                        exchange.cancel(self.msg_id, cx.context_id)
                    except (RuntimeError, OSError):  # the association is gone already
                        ended = True
                        raise Interrupted(self._interrupted(query, answered=False)) from None
                    log.warning("interrupted: C-CANCEL sent; waiting up to %g s for the "
                                "peer to end the query (Ctrl-C again to abort)",
                                self.cancel_grace)
        except GeneratorExit:
            if not ended:
                self._abandon(query, cx, cancelled)
            raise
        except BaseException:
            # raised in the loop: the request did not end as it should
            self.broken = True
            raise

    def _abandon(self, query: Query, cx: Any, cancelled: bool) -> None:
        """The caller left the loop before the final response: C-CANCEL
        (unless sent), then wait up to the grace for the peer to end the
        request; if it does not, the run is broken."""
        if not cancelled:
            log.info("Sending Cancel Request: MsgID %d (the caller stopped reading)",
                     self.msg_id)
            try:
                self.exchange.cancel(self.msg_id, cx.context_id)
            except (RuntimeError, OSError):
                self.broken = True
                return
        deadline = time.monotonic() + self.cancel_grace
        while True:
            left = deadline - time.monotonic()
            message = self.exchange.receive(timeout=max(0.0, left)) if left > 0 else None
            if message is None:
                log.info("query %s: the peer did not end the cancelled request within "
                         "%g s", query.label, self.cancel_grace)
                self.broken = True
                return
            if (message.command_field != C_FIND_RSP
                    or message.message_id_being_responded_to != self.msg_id):
                self.broken = True
                return
            if message.status not in PENDING:
                self.final = self._final(query, message.status or 0, 0, True, message)
                return

    def _expected(self, context_id: int) -> tuple[bytes, bytes, int]:
        """What :func:`_pending_status` looks for in a response to the
        current request."""
        return _C_FIND_RSP_VALUE, _US.pack(self.msg_id), context_id

    def _check(self, query: Query, message: Any, cx: Any, last: float) -> int:
        """The status of a C-FIND response to this request; anything else
        ends the exchange (exit 4): another command, another message ID,
        another presentation context, no status."""
        code = message.status
        problem = None
        if message.command_field != C_FIND_RSP:
            problem = ("the peer sent something other than a C-FIND response "
                       f"(command 0x{message.command_field or 0:04X})")
        elif message.message_id_being_responded_to != self.msg_id:
            problem = (f"the peer answered message ID "
                       f"{message.message_id_being_responded_to}, not {self.msg_id}")
        elif message.context_id != cx.context_id:
            problem = (f"the peer answered on presentation context {message.context_id}, "
                       f"not {cx.context_id}")
        elif code is None:
            problem = "the peer sent a C-FIND response without a status"
        if problem:
            raise IncompleteError(self._lost(query, last, problem), received=self.delivered)
        return code

    def _skip(self, query: Query, number: int, problem: str | None) -> None:
        self.skipped.append(f"query {query.label}, response {number}")
        log.warning("query %s: response %d skipped: its identifier is malformed (%s)",
                    query.label, number, problem or "cannot be decoded")

    def got(self) -> str:
        """"after N responses": those of this request that were delivered
        (and of the whole run, when that is more: --repeat, several queries)."""
        n, total = self.delivered_now, self.delivered
        got = f"after {n} response{'s' * (n != 1)}"
        return got if total == n else f"{got} ({total} in all)"

    def _interrupted(self, query: Query, *, answered: bool,
                     how: str | None = None) -> str:
        got = self.got()
        if how:
            return f"query {query.label}: {how}: association aborted {got}"
        if answered:
            return (f"query {query.label}: interrupted {got} (C-CANCEL sent; the peer "
                    f"ended the query)")
        return f"query {query.label}: interrupted {got}; association aborted"

    def _final(self, query: Query, code: int, pending: int, cancelled: bool,
               message: Any) -> Final:
        text = describe_status(code, status_table(query.model))
        comment = message.error_comment
        if comment:
            text += f", error comment: {comment!r}"
        log.info("Received Final Find Response: %s after %d pending", text, pending)
        final = Final(code, text, status_category(code), comment, pending, cancelled)
        if final.category == "Warning":
            log.warning("query %s: peer answered %s", query.label, text)
        return final

    def _lost(self, query: Query, last: float, failure: str | None) -> str:
        timeout = self.dimse_timeout
        got = self.got()
        if failure:
            return f"query {query.label}: {failure} {got}; results may be incomplete"
        if timeout and time.monotonic() - last >= timeout * 0.9:
            return (f"query {query.label}: no response within the DIMSE timeout "
                    f"({timeout:g} s) {got}; results may be incomplete")
        return (f"query {query.label}: association aborted {got}; "
                f"results may be incomplete")




_US = struct.Struct("<H")
_C_FIND_RSP_VALUE = _US.pack(C_FIND_RSP)


def _pending_status(message: Any, expected: tuple[bytes, bytes, int]) -> int | None:
    """The status of ``message`` when it is a pending C-FIND response to
    this request, as :meth:`FindRun._check` would pass it (``expected``:
    :meth:`FindRun._expected`); None for anything else, which is then
    ``_check``'s to judge (a final status, a wrong message ID, ...)."""
    command = message.command
    status = command.get(STATUS)
    if (status in _PENDING_VALUES and command.get(COMMAND_FIELD) == expected[0]
            and command.get(MESSAGE_ID_BEING_RESPONDED_TO) == expected[1]
            and message.context_id == expected[2]):
        return _PENDING_VALUES[status]
    return None


def negotiation_items(ext_neg: dict[str, bytes]) -> list[Any]:
    """pynetdicom's SOP Class Extended Negotiation items: ``{uid: bytes}``."""
    from pynetdicom.pdu_primitives import SOPClassExtendedNegotiation

    items = []
    for uid, info in ext_neg.items():
        item = SOPClassExtendedNegotiation()
        item.sop_class_uid = uid
        item.service_class_application_information = info
        items.append(item)
    return items


def skipped_error(skipped: list[str], received: int) -> IncompleteError:
    """The error for a run whose malformed responses were skipped."""
    n = len(skipped)
    return IncompleteError(
        f"{n} response{'s' * (n != 1)} skipped because "
        f"{'they were' if n != 1 else 'it was'} malformed "
        f"({skipped[0]}{', ...' if n > 1 else ''}); results are incomplete",
        received=received)
