"""Where formatted responses go: stdout, or ``-o FILE`` written to a temp
file beside FILE and renamed over it when the run ends — also when it ends
early, so what arrived before a fault is kept."""

from __future__ import annotations

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
            self.stream: BinaryIO = sys.stdout.buffer
            return
        directory = os.path.dirname(os.path.abspath(path))
        try:
            fd, self._tmp = tempfile.mkstemp(prefix=".dimsekit-", suffix=".part",
                                             dir=directory)
        except OSError as exc:
            raise UsageError(f"cannot write output file {path!r}: {exc.strerror}") from None
        self.stream = os.fdopen(fd, "wb")

    def close(self) -> None:
        """Flush; for ``-o``, move the temp file into place."""
        self.stream.flush()
        if self._tmp is None:
            return
        self.stream.close()
        publish(self._tmp, self.path, replace=True)
        self._tmp = None


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
