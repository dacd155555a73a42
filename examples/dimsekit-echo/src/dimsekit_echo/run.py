"""Sending C-ECHO requests on one association, and what the outcome means.

Exit status (dimsekit's contract): 0 when every C-ECHO was answered
Success; 1 when the peer answered one with anything else (every request is
still sent); 3 no association (raised by :func:`dimsekit.api.open_association`);
4 when the association was aborted, the connection lost, or a response did
not come within the DIMSE timeout -- the remaining requests are not sent.
"""

from __future__ import annotations

from typing import Any

from dimsekit.api import (
    AssociationSettings,
    ExitCode,
    IncompleteError,
    PeerFailure,
    describe_status,
    get_logger,
    open_association,
    status_category,
)

log = get_logger("echo")

#: Verification SOP Class
VERIFICATION = "1.2.840.10008.1.1"


class _AbortWatch:
    """Why a C-ECHO got no status: which abort, if any, came from the peer.

    pynetdicom answers an empty status whether the peer sent A-ABORT, the
    connection dropped (A-P-ABORT), its own DIMSE timeout made it abort, or
    the response was invalid; only the ACSE primitives received and the
    association's state tell these apart.
    """

    def __init__(self) -> None:
        self.received: str | None = None

    def on_acse_recv(self, event: Any) -> None:
        name = type(event.primitive).__name__
        if name in ("A_ABORT", "A_P_ABORT") and self.received is None:
            self.received = name

    def lost(self, assoc: Any) -> bool:
        """After an empty status: has the association gone (True), or did
        the peer send a response pynetdicom could not use (False)?"""
        # a lost association's thread ends within moments (pynetdicom's
        # reactor delivers the abort it received, or its own DIMSE-timeout
        # abort kills it); one that still runs got an invalid response
        assoc.join(1.0)
        return not assoc.is_alive() or not assoc.is_established

    def why(self, settings: AssociationSettings) -> str:
        where = f"{settings.peer}:{settings.port}"
        if self.received == "A_ABORT":
            return f"association aborted by {where}"
        if self.received == "A_P_ABORT":
            return f"connection to {where} lost"
        if settings.dimse_timeout is None:
            return f"association with {where} lost"
        return (f"no response from {where} within the DIMSE timeout "
                f"({settings.dimse_timeout:g} s)")


def _label(number: int, repeat: int) -> str:
    return "C-ECHO" if repeat == 1 else f"C-ECHO {number} of {repeat}"


def run_echo(settings: AssociationSettings, repeat: int = 1) -> int:
    """Send ``repeat`` C-ECHO requests; return the exit code or raise."""
    from pynetdicom import evt
    from pynetdicom.status import VERIFICATION_SERVICE_CLASS_STATUS

    watch = _AbortWatch()
    failures: list[str] = []
    with open_association(settings, [VERIFICATION],
                          evt_handlers=[(evt.EVT_ACSE_RECV, watch.on_acse_recv)]) as assoc:
        for number in range(1, repeat + 1):
            # pynetdicom logs each request and response (shown from -v on)
            status = assoc.send_c_echo(msg_id=(number - 1) % 65535 + 1)
            if "Status" in status:
                code = int(status.Status)
                text = describe_status(code, VERIFICATION_SERVICE_CLASS_STATUS)
                if status_category(code) != "Success":
                    failures.append(f"{_label(number, repeat)}: peer answered {text}")
                continue
            if not watch.lost(assoc):
                failures.append(f"{_label(number, repeat)}: invalid response from the peer")
                continue
            for failure in failures:
                log.error(failure)
            answered = f"; {number - 1} of {repeat} answered" if repeat > 1 else ""
            raise IncompleteError(f"{_label(number, repeat)}: {watch.why(settings)}{answered}")
    for failure in failures[:-1]:
        log.error(failure)
    if failures:
        raise PeerFailure(failures[-1])
    return ExitCode.OK
