"""What :class:`~dimsekit.testing.QuerySCP` received: one record per event.

Plain dataclasses, filled in by the peer (:mod:`dimsekit.testing.server`)
from pynetdicom's threads and read by tests through
:attr:`QuerySCP.associations <dimsekit.testing.QuerySCP.associations>`,
``requests``, ``echoes`` and ``cancels``:

* :class:`AssociationRecord` -- an association request, its presentation
  contexts and extended negotiation, how it ended, and the requests on it;
* :class:`FindRecord` -- a C-FIND request: the identifier as decoded, and
  what the peer answered (pending responses, final status, cancel seen);
* :class:`EchoRecord` -- a C-ECHO request and the status answered;
* :class:`CancelRecord` -- a C-CANCEL and where the request it cancels was;
* :class:`ContextRecord` -- one presentation context.

Fields the peer fills in later (``ended``, ``status``, ``responses``, ...)
change while a test reads them; :meth:`AssociationRecord.wait_ended` and
:meth:`FindRecord.wait_done` wait for them to settle.  The peer's own
bookkeeping (which requests are in flight, which were cancelled) is not
part of a record.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from pydicom.dataset import Dataset

__all__ = [
    "AssociationRecord",
    "CancelRecord",
    "ContextRecord",
    "EchoRecord",
    "FindRecord",
]


@dataclass(frozen=True)
class ContextRecord:
    """A presentation context as requested (all proposed transfer syntaxes)
    or as accepted/rejected (the one negotiated transfer syntax, if any)."""

    context_id: int
    abstract_syntax: str
    transfer_syntaxes: tuple[str, ...]


@dataclass(eq=False)
class AssociationRecord:
    """One association request received by the peer.

    ``ended`` is ``None`` while the association is open, then one of
    ``"released"``, ``"aborted"`` (A-ABORT from the peer or the connection
    dropped), ``"aborted-by-scp"`` (``abort_after`` or :meth:`QuerySCP.stop`),
    ``"rejected"`` (``reject``) or ``"closed"`` (connection closed otherwise).
    """

    calling_ae: str
    called_ae: str
    address: tuple[str, int]
    max_pdu: int | None
    requested_contexts: list[ContextRecord]
    #: SOP Class Extended Negotiation items received: SOP class UID -> app info
    extended_negotiation: dict[str, bytes]
    #: the items the peer answered with (empty when not accepted)
    accepted_extended_negotiation: dict[str, bytes] = field(default_factory=dict)
    accepted_contexts: list[ContextRecord] = field(default_factory=list)
    rejected_contexts: list[ContextRecord] = field(default_factory=list)
    ended: str | None = None
    requests: list[FindRecord] = field(default_factory=list, repr=False)
    echoes: list[EchoRecord] = field(default_factory=list, repr=False)
    _done: threading.Event = field(default_factory=threading.Event, repr=False)

    def wait_ended(self, timeout: float = 5.0) -> bool:
        """Wait until the association has ended; return whether it has."""
        return self._done.wait(timeout)

    def _end(self, how: str, *, upgrade: bool = False) -> None:
        """Record how the association ended (the first word wins, except
        that ``upgrade`` replaces a plain ``"closed"``)."""
        if self.ended is None or (upgrade and self.ended == "closed"):
            self.ended = how
        self._done.set()

    def ext_flag(self, sop_class_uid: str, index: int) -> bool:
        """Whether byte `index` of the *accepted* extended negotiation for
        `sop_class_uid` is 1 (0 relational, 1 date-time, 2 fuzzy names,
        3 timezone adjustment, 4 enhanced multi-frame conversion)."""
        info = self.accepted_extended_negotiation.get(sop_class_uid, b"")
        return len(info) > index and info[index] == 1


@dataclass(eq=False)
class FindRecord:
    """One C-FIND request received by the peer.

    ``responses`` counts the pending responses handed to pynetdicom;
    ``status`` is the final status sent (``None``: none was sent -- aborted,
    hung, or stopped); ``cancelled_after`` is the number of pending responses
    sent when the peer noticed the C-CANCEL (``None``: no cancel seen).
    """

    identifier: Dataset | None
    sop_class_uid: str
    model: str
    calling_ae: str
    called_ae: str
    message_id: int
    priority: int
    context_id: int
    transfer_syntax: str
    responses: int = 0
    status: int | None = None
    cancelled_after: int | None = None
    association: AssociationRecord | None = field(default=None, repr=False)
    _done: threading.Event = field(default_factory=threading.Event, repr=False)

    def wait_done(self, timeout: float = 5.0) -> bool:
        """Wait until the peer has finished answering this request."""
        return self._done.wait(timeout)


@dataclass(eq=False)
class EchoRecord:
    """One C-ECHO request received by the peer.

    ``status`` is the status answered (``None``: none was sent -- the peer
    aborted instead (``echo_abort_after``), the requestor gave up while
    ``echo_delay`` ran, or :meth:`QuerySCP.stop` was called).
    """

    calling_ae: str
    called_ae: str
    message_id: int
    context_id: int
    transfer_syntax: str
    status: int | None = None
    association: AssociationRecord | None = field(default=None, repr=False)


@dataclass(eq=False)
class CancelRecord:
    """One C-CANCEL received.  ``after_responses`` is the number of pending
    responses the peer had sent for the request when the C-CANCEL arrived
    (``None`` if that request had not started yet).  ``stale`` is True when
    no request with that message ID was in progress (e.g. the C-CANCEL
    crossed the final response); a stale cancel is ignored."""

    message_id: int
    calling_ae: str
    after_responses: int | None
    stale: bool = False
    request: FindRecord | None = field(default=None, repr=False)
