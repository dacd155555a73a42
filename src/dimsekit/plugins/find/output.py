"""Where formatted responses go: stdout, or ``-o FILE`` written to a temp
file beside FILE and renamed over it when the run ends — also when it ends
early, so what arrived before a fault is kept.

Output is written through a 64 KiB buffer (stdout too, unless it is a
terminal), so thousands of responses cost a few dozen ``write()`` calls,
and flushed whenever dimsekit waits for the peer (the find run passes
its flush to :class:`~dimsekit.api.Exchange` as ``idle``): a pipe sees
each response as soon as dimsekit has it, not when 64 KiB are full.
ndjson flushes after every response besides (its documented promise).
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
from typing import BinaryIO

from dimsekit.api import UsageError


class Output:
    """A binary stream for a writer, and how to finish it."""

    def __init__(self, path: str | None):
        self.path = path
        self._tmp: str | None = None
        if path is None:
            self.stream: BinaryIO = _stdout()
            return
        if os.path.isdir(path):
            raise UsageError(f"cannot write output file {path!r}: it is a directory")
        directory = os.path.dirname(os.path.abspath(path))
        try:
            fd, self._tmp = tempfile.mkstemp(prefix=".dimsekit-", suffix=".part",
                                             dir=directory)
        except OSError as exc:
            raise UsageError(f"cannot write output file {path!r}: {exc.strerror}") from None
        self.stream = os.fdopen(fd, "wb", buffering=BUFFER_SIZE)

    def close(self) -> None:
        """Flush; for ``-o``, move the temp file into place."""
        self.stream.flush()
        if self._tmp is None:
            return
        self.stream.close()
        publish(self._tmp, self.path, replace=True)
        self._tmp = None


BUFFER_SIZE = 1 << 16


def _stdout() -> BinaryIO:
    """stdout through a 64 KiB buffer of its own: ``sys.stdout.buffer``
    makes one ``write()`` per call under PYTHONUNBUFFERED, which many
    environments set.  A terminal keeps ``sys.stdout.buffer`` (a person
    watching should not wait for 64 KiB), and so does a stdout without a
    file descriptor (click's test runner)."""
    if sys.stdout is None:  # started with stdout closed (>&-)
        raise UsageError("stdout is closed: give -o FILE for the responses, "
                         "or -sr to show none")
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, io.UnsupportedOperation):
        return sys.stdout.buffer
    if os.isatty(fd):
        return sys.stdout.buffer
    sys.stdout.flush()
    return open(fd, "wb", buffering=BUFFER_SIZE, closefd=False)


def publish(tmp: str, path: str, *, replace: bool) -> None:
    """Move a finished temp file to ``path`` with the usual permissions.

    ``replace=False`` refuses an existing ``path`` (FileExistsError) without
    a window in which two writers could both succeed.
    """
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(tmp, 0o666 & ~mask)
    if replace:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)
    finally:
        os.unlink(tmp)
