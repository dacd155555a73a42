"""Exit codes and the exceptions that carry them to the command line."""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """The exit-status contract of every dimsekit command (docs/exit-codes.md)."""

    OK = 0
    #: the peer answered a request with a failure or unknown status
    PEER_FAILURE = 1
    #: bad option, bad -k, unreadable/invalid input file, unwritable output
    USAGE = 2
    #: no association: refused, unreachable, timed out, rejected, no context
    NO_ASSOCIATION = 3
    #: association aborted or DIMSE/network timeout mid-request, or
    #: responses that could not be decoded: results may be incomplete
    INCOMPLETE = 4
    #: the results could not be written (disk full, I/O error, permission
    #: lost after the run started)
    OUTPUT_FAILED = 5
    #: interrupted (SIGINT/SIGTERM): what arrived is kept, outputs closed valid
    INTERRUPTED = 130


class DimsekitError(Exception):
    """An error a user can cause: one line on stderr and an exit code.

    Raise it (or a subclass) from a command; the host prints ``E: message``
    and exits with ``exit_code``.  Tracebacks are shown only with ``-d``.
    """

    exit_code: ExitCode = ExitCode.USAGE

    def __init__(self, message: str, exit_code: ExitCode | int | None = None):
        super().__init__(message)
        self.message = message
        if exit_code is not None:
            self.exit_code = ExitCode(exit_code)


class UsageError(DimsekitError):
    """Bad input detected before any network traffic (exit 2)."""

    exit_code = ExitCode.USAGE


class AssociationError(DimsekitError):
    """No association could be established (exit 3).

    ``transient``: trying again later may succeed -- the connection was
    refused or timed out, the peer rejected the association as transient,
    aborted or closed it during negotiation, or did not answer in time
    (what ``--retry`` retries); False for what a retry cannot mend (a name
    that does not resolve, a permanent rejection, TLS, no presentation
    context)."""

    exit_code = ExitCode.NO_ASSOCIATION

    def __init__(self, message: str, exit_code: ExitCode | int | None = None, *,
                 transient: bool = False):
        super().__init__(message, exit_code)
        self.transient = transient


class IncompleteError(DimsekitError):
    """The association died or timed out mid-request, or responses had to
    be skipped (exit 4): the results may be incomplete.

    ``received``: how many responses were delivered before it (None when
    not known)."""

    exit_code = ExitCode.INCOMPLETE

    def __init__(self, message: str, exit_code: ExitCode | int | None = None, *,
                 received: int | None = None):
        super().__init__(message, exit_code)
        self.received = received


class PeerFailure(DimsekitError):
    """The peer answered with a failure or unknown status (exit 1).

    ``status``: the DIMSE status code (None when not known);
    ``error_comment``: the Error Comment the peer sent with it, if any."""

    exit_code = ExitCode.PEER_FAILURE

    def __init__(self, message: str, exit_code: ExitCode | int | None = None, *,
                 status: int | None = None, error_comment: str | None = None):
        super().__init__(message, exit_code)
        self.status = status
        self.error_comment = error_comment


class OutputError(DimsekitError):
    """The results could not be written after the run started (exit 5)."""

    exit_code = ExitCode.OUTPUT_FAILED


class Interrupted(DimsekitError):
    """The run was interrupted by a signal (exit 130)."""

    exit_code = ExitCode.INTERRUPTED


class Terminated(KeyboardInterrupt):
    """Raised in the main thread by the CLI's SIGTERM handler: like Ctrl-C,
    but the run aborts at once instead of cancelling with a grace."""

    abort = True

    def __init__(self, how: str = "terminated"):
        super().__init__(how)
        self.how = how
