"""Where formatted responses go: stdout, or ``-o FILE`` written to a file
that gets FILE's name only when the run ends with a result (see
:meth:`Output.close`); a file that is not kept, or whose writing failed,
leaves nothing behind and an existing FILE as it was.

Output is written through a 64 KiB buffer (stdout too, unless it is a
terminal), so thousands of responses cost a few dozen ``write()`` calls,
and flushed whenever dimsekit waits for the peer (the find run passes
its flush to :class:`~dimsekit.api.Exchange` as ``idle``): a pipe sees
each response as soon as dimsekit has it, not when 64 KiB are full.
ndjson flushes after every response besides (its documented promise).

A failed write, flush or close raises OSError here; the caller
(:class:`~dimsekit.plugins.find.sinks.Sinks`) calls :meth:`Output.discard`
and raises :meth:`Output.error`, an ``OutputError`` (exit 5).
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import secrets
import sys
import tempfile
from typing import BinaryIO

from dimsekit.api import OutputError, UsageError, discard_stdout


class Output:
    """A binary stream for a writer, and how to finish it."""

    def __init__(self, path: str | None):
        self.path = path
        self._file: PendingFile | None = None
        self._direct = False  # written in place: a device or a FIFO
        if path is None:
            self.stream: BinaryIO = _stdout()
            return
        if os.path.isdir(path):
            raise UsageError(f"cannot write output file {path!r}: it is a directory")
        # a symbolic link stays one: the file it points to is replaced
        self._target = os.path.realpath(path)
        if os.path.exists(self._target) and not os.path.isfile(self._target):
            # a device or a FIFO (/dev/stdout, a named pipe) is written to, as
            # a shell's > does; renaming a file over it would destroy it
            try:
                self.stream = open(  # noqa: SIM115 - kept open; close()/discard() close it
                    self._target, "wb", buffering=BUFFER_SIZE)
            except OSError as exc:
                raise UsageError(f"cannot write output file {path!r}: "
                                 f"{_reason(exc)}") from None
            self._direct = True
            return
        directory = os.path.dirname(self._target)
        try:
            self._file = PendingFile(directory, buffering=BUFFER_SIZE)
        except OSError as exc:
            raise UsageError(f"cannot write output file {path!r}: {_reason(exc)}") from None
        self.stream = self._file.stream

    def close(self, keep: bool = True) -> None:
        """Flush; for ``-o``, give the file its name (``keep``) or drop it.

        Raises OSError when the last bytes cannot be written or the file
        cannot be put in place; call :meth:`discard` then.
        """
        if self._direct:
            self.stream.close()
            return
        if self._file is None:
            self.stream.flush()
            return
        if not keep:
            self.discard()
            return
        self._file.publish(self._target, replace=True)
        self._file = None

    def discard(self) -> None:
        """After a failure: drop what is not written yet (a file's whole
        content, so an existing FILE stays as it was).  Never raises."""
        if self._direct:
            with contextlib.suppress(OSError, ValueError):
                self.stream.close()
        elif self._file is not None:
            self._file.discard()
            self._file = None
        elif self.path is None:
            discard_stdout()  # what is still buffered goes nowhere, at exit too
            with contextlib.suppress(OSError, ValueError):
                self.stream.flush()

    def error(self, exc: OSError) -> OutputError:
        """The one line that says which output failed, and why."""
        if self.path is None:
            return OutputError(f"cannot write the responses to stdout: {_reason(exc)}")
        if self._direct:
            return OutputError(f"cannot write output file {self.path!r}: {_reason(exc)}")
        state = ("the existing file is left unchanged" if os.path.lexists(self.path)
                 else "no file created")
        return OutputError(f"cannot write output file {self.path!r}: {_reason(exc)} "
                           f"({state})")


BUFFER_SIZE = 1 << 16


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


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


class PendingFile:
    """A new file in ``directory`` that appears under its name complete, or
    not at all (:meth:`publish`, :meth:`discard`).

    On Linux it is an unnamed file (``O_TMPFILE``) linked into place when
    done, so a failure — a full disk, the directory removed or made
    read-only meanwhile, even SIGKILL — leaves nothing behind.  Elsewhere
    (or on a file system without ``O_TMPFILE``) it is a ``.dimsekit-*.part``
    file beside the target, renamed into place or removed.
    """

    def __init__(self, directory: str, *, buffering: int = -1):
        self.directory = directory
        self._name: str | None = None  # the named temp file of the fallback
        fd = _unnamed_file(directory)
        if fd is None:
            fd, self._name = tempfile.mkstemp(prefix=".dimsekit-", suffix=".part",
                                              dir=directory)
        try:
            self.stream: BinaryIO = os.fdopen(fd, "wb", buffering=buffering)
        except BaseException:
            os.close(fd)
            self._unlink()
            raise

    def publish(self, path: str, *, replace: bool) -> None:
        """Flush, close and name the file ``path`` (with the permissions a
        new file gets).  ``replace=False`` refuses an existing ``path``
        (FileExistsError) without a window in which two writers could both
        succeed.  On OSError the caller calls :meth:`discard`."""
        self.stream.flush()
        if self._name is None:
            _link_unnamed(self.stream.fileno(), path, replace=replace)
            self.stream.close()
            return
        self.stream.close()
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(self._name, 0o666 & ~mask)
        if replace:
            os.replace(self._name, path)
        else:
            os.link(self._name, path)
            self._unlink()
        self._name = None

    def discard(self) -> None:
        """Drop the file; never raises."""
        with contextlib.suppress(OSError, ValueError):
            self.stream.close()  # the descriptor is closed even if the flush fails
        self._unlink()

    def _unlink(self) -> None:
        if self._name is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._name)
            self._name = None


_PROC_FD = "/proc/self/fd"
_NO_TMPFILE = {errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL,
               getattr(errno, "ENOTSUP", errno.EOPNOTSUPP)}


def _unnamed_file(directory: str) -> int | None:
    """A descriptor of a new unnamed file in ``directory``, or None where
    there is no such thing (no ``O_TMPFILE``, no /proc to link it by)."""
    flag = getattr(os, "O_TMPFILE", 0)
    if not flag or not os.path.isdir(_PROC_FD):
        return None
    try:
        return os.open(directory, flag | os.O_WRONLY | os.O_CLOEXEC, 0o666)
    except OSError as exc:
        if exc.errno in _NO_TMPFILE:  # the file system (or kernel) has none
            return None
        raise


def _link_unnamed(fd: int, path: str, *, replace: bool) -> None:
    """Give the unnamed file ``fd`` the name ``path`` (linkat through
    /proc, which needs no privilege for a file opened without O_EXCL)."""
    source = f"{_PROC_FD}/{fd}"
    directory, name = os.path.split(os.path.abspath(path))
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        if not replace:
            os.link(source, name, dst_dir_fd=dir_fd, follow_symlinks=True)
            return
        # link(2) never replaces: link to a fresh name, rename that over path
        while True:
            temp = f".dimsekit-{secrets.token_hex(6)}.part"
            try:
                os.link(source, temp, dst_dir_fd=dir_fd, follow_symlinks=True)
                break
            except FileExistsError:
                continue
        try:
            os.replace(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp, dir_fd=dir_fd)
            raise
    finally:
        os.close(dir_fd)
