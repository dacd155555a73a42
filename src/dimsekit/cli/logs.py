"""Logging for every command: stderr, DCMTK's ``I: / W: / E: / D:`` prefixes.

``-q`` silences warnings and errors, ``-v`` shows processing details
(including pynetdicom's), ``-d`` debug output, ``-ll LEVEL`` picks a level by
name (DCMTK's and pynetdicom's spellings), ``-lc FILE`` hands the logging set
up to a :func:`logging.config.fileConfig` file instead.
"""

from __future__ import annotations

import logging
import sys
import warnings

from dimsekit.errors import UsageError

#: the logger plugins should log under (``logging.getLogger("dimsekit.NAME")``)
LOGGER_NAME = "dimsekit"

TRACE = 5
logging.addLevelName(TRACE, "TRACE")

#: every -ll spelling of DCMTK (fatal..trace) and pynetdicom (critical..debug)
LEVELS = {
    "fatal": logging.CRITICAL,
    "critical": logging.CRITICAL,
    "error": logging.ERROR,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
    "trace": TRACE,
}

_PREFIX = {
    TRACE: "T: ",
    logging.DEBUG: "D: ",
    logging.INFO: "I: ",
    logging.WARNING: "W: ",
    logging.ERROR: "E: ",
    logging.CRITICAL: "F: ",
}


class PrefixFormatter(logging.Formatter):
    """``I: message``; multi-line messages get the prefix on every line."""

    def format(self, record: logging.LogRecord) -> str:
        prefix = _PREFIX.get(record.levelno, "I: ")
        text = super().format(record)
        if "\n" not in text:
            return prefix + text
        return "\n".join(prefix + line for line in text.split("\n"))


class _StderrHandler(logging.StreamHandler):
    """A handler that looks up sys.stderr on each write (CliRunner swaps it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):  # noqa: D401
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ assigns it
        pass


_handler: logging.Handler | None = None


#: what pynetdicom's Association logs at INFO right after dimsekit's
#: association module said the same (with more detail): shown once, not twice
_SAID_BY_THE_HOST = frozenset({"Requesting Association", "Releasing Association",
                               "Aborting Association", "Sending C-CANCEL request"})


class _PynetdicomFilter(logging.Filter):
    """Below -v, pynetdicom's own error lines are dropped: the host says it once.

    From -v on, pynetdicom's ``Requesting/Releasing/Aborting Association``
    are dropped too: :func:`dimsekit.association.open_association` logs each
    itself just before it asks pynetdicom to do it.
    """

    threshold = logging.CRITICAL

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("pynetdicom"):
            return True
        if record.name == "pynetdicom.association" and record.levelno == logging.INFO \
                and record.msg in _SAID_BY_THE_HOST:
            return False
        return record.levelno >= self.threshold


_pynetdicom_filter = _PynetdicomFilter()


def resolve_level(quiet: bool, verbose: bool, debug: bool, log_level: str | None) -> int:
    """The effective level; ``-ll`` wins over ``-q/-v/-d``, like DCMTK."""
    if log_level:
        try:
            return LEVELS[log_level.lower()]
        except KeyError:
            raise UsageError(
                f"unknown log level {log_level!r} (choose from {', '.join(LEVELS)})"
            ) from None
    if debug:
        return logging.DEBUG
    if verbose:
        return logging.INFO
    if quiet:
        return logging.CRITICAL + 10
    return logging.WARNING


def setup_logging(level: int, log_config: str | None = None) -> None:
    """Route dimsekit's and pynetdicom's loggers to stderr at ``level``.

    pynetdicom logs its own failures at ERROR; the host reports those itself
    in one line, so below ``-v`` pynetdicom only gets to say CRITICAL things.
    """
    global _handler
    if log_config:
        from logging import config as logging_config

        try:
            logging_config.fileConfig(log_config, disable_existing_loggers=False)
        except Exception as exc:  # noqa: BLE001 - any config error is a usage error
            raise UsageError(f"cannot use log config {log_config!r}: {exc}") from None
        return
    ours = logging.getLogger(LOGGER_NAME)
    theirs = logging.getLogger("pynetdicom")
    pydicom_log = logging.getLogger("pydicom")
    if _handler is None:
        _handler = _StderrHandler()
        _handler.setFormatter(PrefixFormatter("%(message)s"))
        _handler.addFilter(_pynetdicom_filter)
        for logger in (ours, theirs, pydicom_log):
            logger.addHandler(_handler)
            logger.propagate = False
    # pydicom both warns and logs what it finds odd in data: its log lines
    # are shown from -v on; Python warnings are for developers (-d)
    pydicom_log.setLevel(level if level <= logging.INFO else logging.ERROR)
    if level > logging.DEBUG:
        warnings.simplefilter("ignore")
    ours.setLevel(level)
    # pynetdicom's errors stay enabled (the host reads why a connect failed
    # from them) but only reach stderr from -v on
    theirs.setLevel(min(level, logging.ERROR))
    _pynetdicom_filter.threshold = level if level <= logging.INFO else logging.CRITICAL + 10


def current_level() -> int:
    """The level dimsekit's logger was set to (for ``-d`` tracebacks)."""
    return logging.getLogger(LOGGER_NAME).getEffectiveLevel()
