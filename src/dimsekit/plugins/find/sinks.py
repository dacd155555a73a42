"""Every destination of a pending response: the stdout/-o writer and the
response files (-X, -Xs, -Xx)."""

from __future__ import annotations

from typing import Any

from dimsekit.api import OutputError, get_logger
from dimsekit.plugins.find.output import Output

log = get_logger("find")


class Sinks:
    """Every destination of a pending response: the stdout/-o writer and the
    response files; ``end(completed)`` closes each however the run ended.

    A write, flush or close that fails (a full disk, an I/O error, a file
    grown past its limit, the output directory gone or read-only) drops
    that output — an ``-o``/``-Xs`` file is discarded, so an existing file
    stays as it was and nothing is left behind — and raises
    ``OutputError`` (exit 5), which ends the run.

    When the reader of stdout goes away (``| head``) and there are files
    besides (-X, -Xs), stdout is dropped and the run goes on, so the files
    are complete and the exit code stays the queries'; with stdout alone
    the BrokenPipeError ends the run (the host then exits 0 quietly).
    """

    def __init__(self, request: Any):
        #: responses written so far
        self.count = 0
        #: (writer, its Output) for stdout/-o/-Xs; (extractor, None) for -X/-Xx
        self._sinks: list[tuple[Any, Output | None]] = []
        self._stdout: tuple[Any, Output] | None = None
        try:
            for suffix, directory in request.extract:
                from dimsekit.plugins.find import extract

                render = extract.part10 if suffix == ".dcm" else extract.native_xml
                self._sinks.append((extract.Extractor(
                    directory, suffix, render, overwrite=request.overwrite,
                    limit=request.extract_limit), None))
            if request.extract_xml_single:
                from dimsekit.plugins.find.xmlfmt import XmlWriter

                self._open(XmlWriter, request.extract_xml_single, {})
            if request.show_responses:
                self._open(request.writer.factory, request.output,
                           request.writer_options)
        except BaseException:
            for _, out in self._sinks:
                if out is not None and out.path is not None:
                    out.discard()
            raise
        from dimsekit.plugins.find import progress

        #: the status line on an interactive stderr (None: not one)
        self.progress = progress.start(self)

    def _open(self, factory, path: str | None, options: dict) -> None:
        out = Output(path)
        try:
            writer = factory(out.stream, options)
            writer.begin()
        except OSError as exc:
            out.discard()
            raise out.error(exc) from None
        except BaseException:
            if path is not None:
                out.discard()
            raise
        if path is None:
            self._stdout = (writer, out)
        self._sinks.append((writer, out))

    def _drop(self, writer: Any, out: Output | None) -> None:
        self._sinks.remove((writer, out))
        if self._stdout is not None and self._stdout[0] is writer:
            self._stdout = None
        if out is not None:
            out.discard()

    def _stdout_gone(self, exc: BrokenPipeError) -> None:
        """stdout's reader went away: go on without it if there is more to
        write, or end the run (re-raise)."""
        if self._stdout is None or len(self._sinks) == 1:
            raise exc
        self._drop(*self._stdout)  # what it still buffers goes nowhere
        log.info("stdout closed by its reader: going on for the other outputs")

    def _failed(self, writer: Any, out: Output | None, exc: OSError) -> None:
        """``writer`` (or its output) could not write: drop it and raise
        OutputError, or deal with stdout's reader having gone."""
        if (isinstance(exc, BrokenPipeError) and self._stdout is not None
                and self._stdout[0] is writer):
            self._stdout_gone(exc)
            return
        self._drop(writer, out)
        if out is not None:
            raise out.error(exc) from None
        raise OutputError(f"cannot write the responses: {exc.strerror or exc}") from None

    def write(self, ds: Any, info: Any) -> None:
        for writer, out in list(self._sinks):
            try:
                writer.write(ds, info)
            except OSError as exc:
                self._failed(writer, out, exc)
        self.count += 1

    def row_end(self, end: Any) -> None:
        """A batch row is over (a writer that lists rows, such as csv,
        shows one without matches or that failed)."""
        for writer, out in list(self._sinks):
            row_end = getattr(writer, "row_end", None)
            if row_end is None:
                continue
            try:
                row_end(end)
            except OSError as exc:
                self._failed(writer, out, exc)

    def flush(self) -> None:
        """Everything written so far, out: dimsekit is waiting for the peer."""
        for writer, out in list(self._sinks):
            if out is None:
                continue
            try:
                out.stream.flush()
            except OSError as exc:
                self._failed(writer, out, exc)

    def end(self, completed: bool) -> None:
        """End every sink and close every output, even when one fails: the
        others are still finished; a failure is raised afterwards (an
        ``OutputError`` before a closed pipe).

        ``completed``: the run ended normally (every query got its final
        status, whatever it was), not by an exception.  An ``-o``/``-Xs``
        file is then put in place — also with zero matches, that is a
        result; so it is after a failure once a response was written (what
        arrived is kept, closed valid).  A run that failed before the first
        response leaves an existing file as it was, and creates none.
        """
        if self.progress is not None:
            self.progress.stop()
        keep = completed or self.count > 0
        if not keep and any(out is not None and out.path is not None
                            for _, out in self._sinks):
            log.info("no response arrived: output files left as they were")
        failures: list[BaseException] = []
        for writer, out in list(self._sinks):
            try:
                end = getattr(writer, "end", None)
                if end is not None:
                    end()
                if out is not None:
                    out.close(keep)
            except OSError as exc:
                try:
                    self._failed(writer, out, exc)
                except BaseException as failure:  # noqa: BLE001 - raised below
                    failures.append(failure)
            except Exception as exc:  # noqa: BLE001 - a writer's bug: raised below
                self._drop(writer, out)
                failures.append(exc)
        self._sinks.clear()
        self._stdout = None
        if failures:
            failures.sort(key=lambda exc: isinstance(exc, BrokenPipeError))
            raise failures[0]
