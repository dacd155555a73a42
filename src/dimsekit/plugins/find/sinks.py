"""Every destination of a pending response: the stdout/-o writer and the
response files (-X, -Xs, -Xx)."""

from __future__ import annotations

from typing import Any

from dimsekit.api import discard_stdout, get_logger
from dimsekit.plugins.find.output import Output

log = get_logger("find")


class Sinks:
    """Every destination of a pending response: the stdout/-o writer and the
    response files; ``end()`` closes each however the run ended.

    When the reader of stdout goes away (``| head``) and there are files
    besides (-X, -Xs), stdout is dropped and the run goes on, so the files
    are complete and the exit code stays the queries'; with stdout alone
    the BrokenPipeError ends the run (the host then exits 0 quietly).
    """

    def __init__(self, request: Any):
        self.items: list[Any] = []
        self.outputs: list[Output] = []
        self._stdout: tuple[Any, Output] | None = None
        for suffix, directory in request.extract:
            from dimsekit.plugins.find import extract

            render = extract.part10 if suffix == ".dcm" else extract.native_xml
            self.items.append(extract.Extractor(directory, suffix, render,
                                                overwrite=request.overwrite,
                                                limit=request.extract_limit))
        if request.extract_xml_single:
            from dimsekit.plugins.find.xmlfmt import XmlWriter

            self._open(XmlWriter, request.extract_xml_single, {})
        if request.show_responses:
            self._open(request.writer.factory, request.output, request.writer_options)

    def _open(self, factory, path: str | None, options: dict) -> None:
        out = Output(path)
        self.outputs.append(out)
        writer = factory(out.stream, options)
        if path is None:
            self._stdout = (writer, out)
        writer.begin()
        self.items.append(writer)

    def _stdout_gone(self, exc: BrokenPipeError) -> None:
        """stdout's reader went away: go on without it if there is more to
        write, or end the run (re-raise)."""
        if self._stdout is None or self.items == [self._stdout[0]]:
            raise exc
        writer, out = self._stdout
        self._stdout = None
        self.items.remove(writer)
        self.outputs.remove(out)
        discard_stdout()  # what it still buffers goes nowhere
        log.info("stdout closed by its reader: going on for the other outputs")

    def write(self, ds: Any, info: Any) -> None:
        for sink in list(self.items):
            try:
                sink.write(ds, info)
            except BrokenPipeError as exc:
                self._stdout_gone(exc)

    def flush(self) -> None:
        """Everything written so far, out: dimsekit is waiting for the peer."""
        for out in list(self.outputs):
            try:
                out.stream.flush()
            except BrokenPipeError as exc:
                self._stdout_gone(exc)

    def end(self) -> None:
        """End every sink and close every output, even when one fails (the
        pipe of stdout closed, a full disk): the others are still finished;
        a failure is raised afterwards, a real one before a closed pipe."""
        failures: list[BaseException] = []
        steps = [getattr(sink, "end", None) for sink in self.items]
        steps += [out.close for out in self.outputs]
        for step in steps:
            if step is None:
                continue
            try:
                step()
            except Exception as exc:  # noqa: BLE001 - re-raised below
                failures.append(exc)
        if failures:
            failures.sort(key=lambda exc: isinstance(exc, BrokenPipeError))
            raise failures[0]
