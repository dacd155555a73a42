"""The association every command uses: a context manager over pynetdicom.

    with open_association(settings, [sop_class_uid], ext_neg=items) as assoc:
        ...  # assoc is a pynetdicom Association, established

Every way of not getting an association raises
:class:`~dimsekit.errors.AssociationError` (exit 3) with one line saying why:
name not resolved, connection refused or timed out, rejected (result, source,
reason), no presentation context accepted, no answer within the ACSE
timeout, a failed TLS handshake (in OpenSSL's words: ``TLS handshake with
HOST:PORT failed: certificate verify failed: unable to get local issuer
certificate``).  On leaving the block the association is released, or aborted with
``--abort`` (or when the block raises).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from dimsekit.errors import AssociationError

log = logging.getLogger("dimsekit.association")

#: transfer-syntax proposal orders, by option value (DCMTK's -x= -xe -xb -xi -xd)
TRANSFER_SYNTAX_PROPOSALS = {
    # local byte order first: every supported machine is little endian
    "local": ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2"),
    "little": ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2"),
    "big": ("1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2"),
    "implicit": ("1.2.840.10008.1.2",),
    "deflated": ("1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.1",
                 "1.2.840.10008.1.2.2", "1.2.840.10008.1.2"),
}


@dataclass
class AssociationSettings:
    """Everything the shared network options say about one association."""

    peer: str = ""
    port: int = 104
    calling_aet: str = "FINDSCU"
    called_aet: str = "ANY-SCP"
    transfer_syntaxes: tuple[str, ...] = TRANSFER_SYNTAX_PROPOSALS["local"]
    connect_timeout: float | None = 30.0
    acse_timeout: float | None = 30.0
    dimse_timeout: float | None = 30.0
    network_timeout: float | None = 30.0
    max_pdu: int = 16384
    abort: bool = False
    new_vr: bool = True
    #: :class:`dimsekit.tls.TLSSettings` (None: plain TCP); a ready
    #: ``(ssl.SSLContext, server_hostname)`` pair is used as it is
    tls: Any = None

TS_NAMES = {
    "1.2.840.10008.1.2": "Little Endian Implicit",
    "1.2.840.10008.1.2.1": "Little Endian Explicit",
    "1.2.840.10008.1.2.2": "Big Endian Explicit",
    "1.2.840.10008.1.2.1.99": "Deflated Explicit Little Endian",
}


def transfer_syntax_name(uid: str) -> str:
    """DCMTK's name for an uncompressed transfer syntax (the UID otherwise)."""
    return TS_NAMES.get(uid, uid)


@dataclass
class _Observed:
    """What the association's event handlers saw during negotiation."""

    connected: bool = False
    accepted: bool = False
    peer_aborted: bool = False
    connect_errors: list[str] = field(default_factory=list)
    #: ``(stage, exception or None, when)`` for each TLS error the socket
    #: raised (see :func:`dimsekit.tls.observe`)
    tls_errors: list[tuple] = field(default_factory=list)
    #: time.monotonic() when the association was requested
    started: float = 0.0
    abort_pdu: bool = False
    #: the :class:`~dimsekit.dimse.SocketGuard` on the connection
    guard: Any = None
    #: what pynetdicom's DUL logged at ERROR while negotiating
    dul_errors: list[str] = field(default_factory=list)


class _ConnectErrorCapture(logging.Handler):
    """pynetdicom only logs why a TCP connect failed, or that an answer was
    no PDU; keep that text."""

    def __init__(self, observed: _Observed):
        super().__init__(logging.ERROR)
        self.observed = observed

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if msg.startswith("TCP Initialisation Error:"):
            self.observed.connect_errors.append(msg.split(":", 1)[1].strip())
        elif record.name == "pynetdicom.dul":
            self.observed.dul_errors.append(msg)


def _unknown_pdu_type(messages: list[str]) -> int | None:
    """The first byte of an answer that was no PDU (0x15: a TLS alert)."""
    for msg in messages:
        if msg.startswith("Unknown PDU type received"):
            with contextlib.suppress(ValueError):
                return int(msg.rsplit("0x", 1)[-1].strip("'"), 16)
    return None


def _on_conn_open(event: Any, observed: _Observed) -> None:
    from dimsekit.dimse import SocketGuard

    observed.connected = True
    # every read of the DUL thread bounded in length and time from here on
    observed.guard = SocketGuard.of(event.assoc)
    # pynetdicom never sets TCP_NODELAY: without it every small PDU waits
    # for the peer's delayed ACK (~40 ms a query)
    import socket

    sock = event.assoc.dul.socket.socket
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if hasattr(sock, "cipher") and log.isEnabledFor(logging.INFO):
        from dimsekit.tls import describe

        log.info("%s", describe(sock))


def _on_acse_recv(event: Any, observed: _Observed) -> None:
    primitive = event.primitive
    result = getattr(primitive, "result", None)
    if result == 0x00:
        observed.accepted = True
    elif hasattr(primitive, "abort_source") or hasattr(primitive, "provider_reason"):
        observed.peer_aborted = True  # A-ABORT / A-P-ABORT from the other side
        # an A-ABORT PDU came (A-P-ABORT: the connection just closed)
        observed.abort_pdu = type(primitive).__name__ == "A_ABORT"


def presentation_contexts(abstract_syntaxes: Iterable[str], transfer_syntaxes: Iterable[str]):
    """One pynetdicom presentation context per abstract syntax."""
    from pynetdicom import build_context

    ts = list(transfer_syntaxes)
    return [build_context(uid, ts) for uid in abstract_syntaxes]


def accepted_context(assoc: Any, sop_class_uid: str) -> tuple[int, Any]:
    """``(context_id, transfer_syntax)`` of the context the peer accepted
    for ``sop_class_uid`` on ``assoc``; AssociationError (exit 3) when it
    accepted none."""
    for cx in assoc.accepted_contexts:
        if cx.abstract_syntax == sop_class_uid:
            return cx.context_id, cx.transfer_syntax[0]
    raise AssociationError(f"the peer accepted no presentation context for "
                           f"{_uid_name(sop_class_uid)}")


def accepted_negotiation(assoc: Any) -> dict[str, bytes]:
    """The SOP Class Extended Negotiation the peer answered on ``assoc``:
    ``{sop_class_uid: application information}`` (a class missing: the
    peer did not answer for it, so none of it is in use)."""
    answered = getattr(assoc.acceptor, "sop_class_extended", None) or {}
    return {str(uid): bytes(info) for uid, info in answered.items() if info is not None}


def _explicit_contexts(records: Iterable[Any], default_syntaxes: Iterable[str],
                       ext_neg: list[Any]) -> list[Any]:
    """pynetdicom contexts for PresentationContext records; their role
    selection items are added to ``ext_neg``."""
    from pynetdicom import build_context, build_role

    out = []
    default = list(default_syntaxes)
    for record in records:
        out.append(build_context(record.abstract_syntax,
                                 list(record.transfer_syntaxes) or default))
        if record.scu_role is not None or record.scp_role is not None:
            ext_neg.append(build_role(record.abstract_syntax,
                                      scu_role=bool(record.scu_role),
                                      scp_role=bool(record.scp_role)))
    return out


def _uid_name(uid: str) -> str:
    from pydicom.uid import UID

    name = UID(uid).name
    return name if name != uid else uid


def _log_negotiation(assoc: Any, ext_neg: list[Any]) -> None:
    if not log.isEnabledFor(logging.INFO):
        return
    for cx in assoc.accepted_contexts:
        log.info("accepted: %s with %s", _uid_name(cx.abstract_syntax),
                 transfer_syntax_name(cx.transfer_syntax[0]))
    for cx in assoc.rejected_contexts:
        log.info("rejected: %s", _uid_name(cx.abstract_syntax))
    answered = assoc.acceptor.sop_class_extended
    for item in ext_neg:
        uid = getattr(item, "sop_class_uid", None)
        asked = getattr(item, "service_class_application_information", None)
        if uid is None or asked is None:
            continue
        info = answered.get(uid)
        if info is None:
            log.info("extended negotiation for %s: requested %s, not answered by the peer "
                     "(so not in use)", _uid_name(uid), _hex(asked))
        else:
            log.info("extended negotiation for %s: requested %s, the peer accepted %s",
                     _uid_name(uid), _hex(asked), _hex(info))


def _hex(data: bytes) -> str:
    return " ".join(f"{b:02x}" for b in data)


def _most_telling(errors: list[tuple]) -> BaseException | None:
    """OpenSSL's own reason (an alert, a verify error) over a bare EOF/reset;
    None when the peer only closed the connection."""
    import ssl

    raised = [exc for _, exc, _ in errors if exc is not None]
    for exc in raised:
        if isinstance(exc, ssl.SSLError) and not isinstance(
                exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
            return exc
    return raised[0] if raised else None


def _tls_failure(settings: AssociationSettings, observed: _Observed) -> str | None:
    """Why a TLS association never got going, or None if TLS is not to blame."""
    from dimsekit.tls import TLSSettings, failure_reason, hint

    tls = settings.tls if isinstance(settings.tls, TLSSettings) else TLSSettings()
    where = f"{settings.peer}:{settings.port}"
    if not observed.tls_errors or observed.accepted:
        return None
    exc = _most_telling(observed.tls_errors)
    if exc is not None:
        return f"TLS handshake with {where} failed: {failure_reason(exc)}{hint(tls, exc)}"
    closed_after = observed.tls_errors[0][2] - observed.started
    if observed.abort_pdu or (settings.acse_timeout is not None
                              and closed_after >= settings.acse_timeout):
        return None  # the peer said why, or we gave up first: not TLS's doing
    return (f"TLS connection to {where} closed by the peer before it answered the "
            f"association request{hint(tls, None)}")


def _failure(settings: AssociationSettings, assoc: Any, observed: _Observed,
             elapsed: float = 0.0) -> tuple[str, bool]:
    """Why the association failed, and whether that may be transient
    (worth a retry)."""
    from dimsekit.dimse import describe_reject

    where = f"{settings.peer}:{settings.port}"
    guard = observed.guard
    if guard is not None and guard.reject is not None:
        # result 2: rejected-transient (PS3.8 9.3.4)
        return (f"association rejected by {where}: {describe_reject(*guard.reject)}",
                guard.reject[0] == 2)
    if guard is not None and guard.failure:
        return f"no association with {where}: {guard.failure}", False
    if settings.tls is not None:
        reason = _tls_failure(settings, observed)
        if reason:
            return reason, False
    if not observed.connected:
        reason = observed.connect_errors[-1] if observed.connect_errors else "no connection"
        return f"cannot connect to {where}: {reason}", True
    if observed.accepted and not assoc.accepted_contexts:
        wanted = ", ".join(_uid_name(cx.abstract_syntax) for cx in assoc.rejected_contexts)
        return f"no presentation context accepted by {where} (proposed: {wanted})", False
    told = observed.abort_pdu or (guard is not None and guard.abort is not None)
    if settings.tls is None and not told and (
            observed.peer_aborted
            or (settings.acse_timeout and elapsed < 0.9 * settings.acse_timeout)):
        # no PDU came back: the connection closed, or the answer was no PDU
        # (a TLS-only port does either with an A-ASSOCIATE-RQ)
        first = _unknown_pdu_type(observed.dul_errors)
        if first is not None or not observed.dul_errors:
            from dimsekit.tls import plain_tcp_failure

            return plain_tcp_failure(where, first), True
    # an A-ABORT PDU the guard read is the peer's abort, whether or not
    # pynetdicom's ACSE got to hand it on before the connection closed
    if observed.peer_aborted or (guard is not None and guard.abort is not None):
        how = ""
        if guard is not None and guard.abort is not None:
            from dimsekit.dimse import describe_abort

            how = f" ({describe_abort(*guard.abort)})"
        return f"association aborted by {where} during negotiation{how}", True
    if settings.acse_timeout and elapsed < 0.9 * settings.acse_timeout:
        return f"{where} closed the connection during association negotiation", True
    return (f"no answer to the association request from {where} within "
            f"{settings.acse_timeout} s (ACSE timeout)", True)


def tune_pynetdicom() -> None:
    """What the command line sets in pynetdicom's process-wide config for
    its log level (the library sets none of it): pynetdicom then formats
    PDUs and identifiers for its log only when they will be shown."""
    from pynetdicom import _config

    debug = log.isEnabledFor(logging.DEBUG)
    # pynetdicom formats every response identifier for its log even when
    # nothing is logged; only do that work when it will be shown
    _config.LOG_RESPONSE_IDENTIFIERS = debug
    _config.LOG_REQUEST_IDENTIFIERS = log.isEnabledFor(logging.INFO)
    # its standard handlers describe every PDU and DIMSE message for the
    # debug log, shown or not; they are bound when an association is created
    _config.LOG_HANDLER_LEVEL = "standard" if debug else "none"


def _resolve(peer: str, port: int) -> str | tuple[str, int, int]:
    """The address ``ae.associate`` connects to: the peer's first IPv4
    address, else its first IPv6 one (as pynetdicom >= 3.0.3 picks it).
    Resolved here because pynetdicom 3.0.0 to 3.0.2 hand the name to the
    socket: an unknown name is then only a logged connect error, and a name
    without a dot gets an IPv6 socket, which cannot reach an IPv4-only host."""
    import socket  # not at import: `dimsekit --help` does without it

    try:  # an IPv4 address as getaddrinfo would give it back: no look-up (whose
        # idna codec alone costs ~2 ms of start-up)
        if socket.inet_ntop(socket.AF_INET, socket.inet_pton(socket.AF_INET, peer)) == peer:
            return peer
    except (OSError, ValueError, TypeError):
        pass
    try:
        infos = socket.getaddrinfo(peer, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise AssociationError(
            f"cannot resolve peer {peer!r}: {exc.strerror or exc}") from None
    for family in (socket.AF_INET, socket.AF_INET6):
        for found, *_, sockaddr in infos:
            if found != family:
                continue
            if len(sockaddr) == 4:  # IPv6: (address, port, flowinfo, scope_id)
                return str(sockaddr[0]), sockaddr[2], sockaddr[3]
            return str(sockaddr[0])
    raise AssociationError(f"cannot resolve peer {peer!r}: no IPv4 or IPv6 address")


def _tls_args(settings: AssociationSettings, observed: _Observed) -> tuple | None:
    """pynetdicom's ``(SSLContext, server_hostname)`` for ``settings.tls``."""
    if settings.tls is None:
        return None
    if isinstance(settings.tls, tuple):  # a ready pair from a plugin or a test
        context, hostname = settings.tls
    else:
        context = settings.tls.context()
        hostname = settings.tls.hostname_for(settings.peer)
    from dimsekit.tls import observe

    # the socket records what OpenSSL said; pynetdicom only logs it
    observed.tls_errors = observe(context)
    return context, hostname


@contextlib.contextmanager
def open_association(
    settings: AssociationSettings,
    abstract_syntaxes: Iterable[str] = (),
    *,
    contexts: Iterable[Any] = (),
    ext_neg: Iterable[Any] = (),
    evt_handlers: Iterable[tuple] = (),
    store: Callable[[Any], int] | None = None,
) -> Iterator[Any]:
    """Request an association and yield it once established.

    ``abstract_syntaxes`` are SOP class UIDs, each proposed with the
    transfer syntaxes of ``settings``; ``contexts`` are
    :class:`~dimsekit.qr.retrieve.PresentationContext` records, each with
    its own transfer syntaxes (empty: the settings') and SCP/SCU roles to
    negotiate (a C-GET's storage classes).  ``ext_neg`` are negotiation
    items (:func:`~dimsekit.qr.find.negotiation_items`); ``store`` a
    callable that gets every instance the peer sends on this association
    (C-GET sub-operations) as a :class:`~dimsekit.storage.ReceivedInstance`
    and returns the C-STORE status; ``evt_handlers`` extra pynetdicom
    ``(event, handler[, args])`` bindings.
    """
    import socket

    from pynetdicom import AE, evt

    address = _resolve(settings.peer, settings.port)
    ext_neg = list(ext_neg)
    ae = AE(ae_title=settings.calling_aet)
    ae.connection_timeout = settings.connect_timeout
    ae.acse_timeout = settings.acse_timeout
    ae.dimse_timeout = settings.dimse_timeout
    ae.network_timeout = settings.network_timeout
    contexts = [*presentation_contexts(abstract_syntaxes, settings.transfer_syntaxes),
                *_explicit_contexts(contexts, settings.transfer_syntaxes, ext_neg)]
    if not contexts:
        raise ValueError("open_association: no abstract syntax or presentation context")
    if len(contexts) > 128:
        raise ValueError(f"open_association: {len(contexts)} presentation contexts; "
                         f"an association carries at most 128")

    observed = _Observed()
    handlers = [
        (evt.EVT_CONN_OPEN, _on_conn_open, [observed]),
        (evt.EVT_ACSE_RECV, _on_acse_recv, [observed]),
        *evt_handlers,
    ]
    if store is not None:
        from dimsekit.storage import store_handler

        handlers.append((evt.EVT_C_STORE, store_handler(store)))
    tls_args = _tls_args(settings, observed)
    observed.started = time.monotonic()
    capture = _ConnectErrorCapture(observed)
    transport_log = logging.getLogger("pynetdicom.transport")
    transport_log.addHandler(capture)
    dul_log = logging.getLogger("pynetdicom.dul")
    dul_log.addHandler(capture)
    log.info("Requesting Association with %s:%s (%s -> %s)%s", settings.peer,
             settings.port, settings.calling_aet, settings.called_aet,
             " over TLS" if tls_args else "")
    started = time.monotonic()
    try:
        assoc = ae.associate(
            address,
            settings.port,
            contexts=contexts,
            ae_title=settings.called_aet,
            max_pdu=settings.max_pdu,
            ext_neg=list(ext_neg) or None,
            tls_args=tls_args,
            evt_handlers=handlers,
        )
    except socket.gaierror as exc:
        raise AssociationError(
            f"cannot resolve peer {settings.peer!r}: {exc.strerror or exc}"
        ) from None
    except BaseException:  # Ctrl-C while negotiating: no thread left behind
        import threading

        from pynetdicom.dul import DULServiceProvider

        for thread in threading.enumerate():
            if isinstance(thread, DULServiceProvider) and thread.assoc.ae is ae:
                end_threads(thread.assoc)
        raise
    finally:
        transport_log.removeHandler(capture)
        dul_log.removeHandler(capture)

    if not assoc.is_established:
        reason, transient = _failure(settings, assoc, observed, time.monotonic() - started)
        end_threads(assoc)
        raise AssociationError(reason, transient=transient)
    ok = False
    try:
        _check_peer_max_pdu(settings, assoc)
        _check_transfer_syntaxes(settings, assoc, contexts)
        _log_negotiation(assoc, ext_neg)
        yield assoc
        ok = True
    finally:
        try:
            if assoc.is_established:
                if settings.abort or not ok:
                    log.info("Aborting Association")
                    # nothing more is read: a DUL thread blocked in a read
                    # would hold up pynetdicom's abort (it waits for it)
                    guard = _guard(assoc)
                    if guard is not None:
                        guard.stop_reading()
                    state = getattr(getattr(assoc.dul, "state_machine", None),
                                    "current_state", "Sta6")
                    if state not in ("Sta1", "Sta13"):
                        # (in Sta13 pynetdicom has aborted already: a second
                        # abort is an invalid event that kills its thread)
                        assoc.abort()
                elif _peer_gone(assoc):
                    # nothing left to release with (pynetdicom would wait
                    # the whole ACSE timeout for an answer that cannot come)
                    log.warning("%s:%s closed the connection before the association "
                                "was released", settings.peer, settings.port)
                else:
                    log.info("Releasing Association")
                    if assoc.acse_timeout is None:
                        # -ta 0: pynetdicom would wait for the A-RELEASE-RP
                        # for ever; the network timeout still bounds it
                        assoc.acse_timeout = settings.network_timeout
                    assoc.release()
        finally:
            end_threads(assoc)


#: the smallest maximum PDU length a peer may accept with: a PDV item's
#: header and a fragment must fit (PS3.8 9.3.5); nothing real is near it
MIN_PEER_PDU = 64


def _check_peer_max_pdu(settings: AssociationSettings, assoc: Any) -> None:
    if getattr(assoc.acceptor, "maximum_length", 0) is None:
        # PS3.8 D.1 makes the item mandatory; pynetdicom cannot send without
        # a value (TypeError): take its absence as "no limit", as 0 says
        from pynetdicom.pdu_primitives import MaximumLengthNotification

        log.warning("%s:%s accepted the association without a Maximum Length item; "
                    "taking its maximum PDU length as unlimited", settings.peer,
                    settings.port)
        item = MaximumLengthNotification()
        item.maximum_length_received = 0
        assoc.acceptor.primitive.user_information.append(item)
    peer_max = getattr(assoc.acceptor, "maximum_length", 0) or 0
    if 0 < peer_max < MIN_PEER_PDU:
        raise AssociationError(
            f"{settings.peer}:{settings.port} accepted the association with a maximum "
            f"PDU length of {peer_max} bytes, too small to carry a request "
            f"(at least {MIN_PEER_PDU})")


def _guard(assoc: Any) -> Any:
    """The association's socket guard, if it has one (dimsekit.dimse loads
    only when an association exists: not for --help)."""
    from dimsekit.dimse import SocketGuard

    return SocketGuard.installed(assoc)


def _peer_gone(assoc: Any) -> bool:
    """The connection has ended: the DUL thread stopped or read its end."""
    guard = _guard(assoc)
    return not assoc.dul.is_alive() or (guard is not None and guard.closed)


def _check_transfer_syntaxes(settings: AssociationSettings, assoc: Any,
                             proposed: list[Any]) -> None:
    """PS3.8 9.3.3.2: an accepted context carries one of the transfer syntaxes
    proposed for it; anything else cannot be spoken (or is not one at all)."""
    offered = {cx.abstract_syntax: set(cx.transfer_syntax) for cx in proposed}
    for cx in assoc.accepted_contexts:
        chosen = cx.transfer_syntax[0] if cx.transfer_syntax else None
        if chosen not in offered.get(cx.abstract_syntax, ()):
            raise AssociationError(
                f"{settings.peer}:{settings.port} accepted {_uid_name(cx.abstract_syntax)} "
                f"with transfer syntax {_uid_name(chosen) if chosen else None}, which "
                f"dimsekit did not propose")


def end_threads(assoc: Any, grace: float = 2.0) -> None:
    """Make sure pynetdicom's DUL thread for ``assoc`` ends: it is not a
    daemon, and one blocked on a silent socket would keep the process
    alive.  The socket guard wakes a blocked read and refuses more; the
    thread is told to stop and given up to ``grace`` seconds."""
    dul = getattr(assoc, "dul", None)
    if dul is None or not dul.is_alive():
        return
    guard = _guard(assoc)
    if guard is not None:
        guard.stop()
    dul.kill_dul()
    dul.join(grace)
