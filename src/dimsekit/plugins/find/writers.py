"""The output formats the find plugin contributes (``--format``)."""

from __future__ import annotations

from typing import Any, BinaryIO

from dimsekit.api import SERVICE, Writer, transfer_syntax_name

_RULE = "-" * 27


class DumpWriter:
    """DCMTK findscu's layout: one block per response, dcmdump element lines."""

    def __init__(self, stream: BinaryIO, options: dict[str, Any]):
        self.stream = stream
        #: the transfer syntax of the last response and the lines it gave
        self._syntax: Any = None
        self._syntax_lines = ""

    def begin(self) -> None:
        from dimsekit.plugins.find.dump import format_dataset

        self._format = format_dataset

    def write(self, ds: Any, info: Any) -> None:
        syntax = info.transfer_syntax
        if syntax is not self._syntax:  # named once, not for every response
            self._syntax = syntax
            self._syntax_lines = (f"\n\n# Dicom-Data-Set\n# Used TransferSyntax: "
                                  f"{transfer_syntax_name(syntax)}\n")
        self.stream.write(
            f"{_RULE}\nFind Response: {info.number} (Pending){self._syntax_lines}"
            f"{self._format(ds)}\n\n".encode("utf-8", "replace")
        )

    def end(self) -> None:
        self.stream.flush()


class CountWriter:
    """``--count``: nothing per response; the number of matches at the end
    (and, with -v, each query's on stderr)."""

    def __init__(self, stream: BinaryIO, options: dict[str, Any]):
        self.stream = stream
        self.total = 0
        self.per_query: dict[Any, int] = {}

    def begin(self) -> None:
        pass

    def write(self, ds: Any, info: Any) -> None:
        self.total += 1
        key = getattr(info, "row", None) or info.query
        self.per_query[key] = self.per_query.get(key, 0) + 1

    def end(self) -> None:
        from dimsekit.api import get_logger

        log = get_logger("find")
        for key, n in self.per_query.items():
            log.info("query %s: %d match%s", key, n, "es" * (n != 1))
        self.stream.write(f"{self.total}\n".encode())
        self.stream.flush()


#: not a --format: chosen by --count
COUNT = Writer("count", SERVICE, CountWriter, "the number of matches")


def _lazy(module: str, name: str):
    """A factory that imports its writer only when the format is used."""

    def factory(stream: BinaryIO, options: dict[str, Any]):
        from importlib import import_module

        return getattr(import_module(f"dimsekit.plugins.find.{module}"), name)(
            stream, options)

    return factory


WRITERS = (
    Writer("dump", SERVICE, DumpWriter,
           "DCMTK findscu's dump layout, one block per response (default)"),
    Writer("json", SERVICE, _lazy("jsonfmt", "JsonWriter"),
           "one DICOM JSON array (PS3.18 F, as a QIDO-RS search returns it)"),
    Writer("ndjson", SERVICE, _lazy("jsonfmt", "NdjsonWriter"),
           "one DICOM JSON object per line, flushed per response"),
    Writer("xml", SERVICE, _lazy("xmlfmt", "XmlWriter"),
           "PS3.19 Native DICOM Model, one document for all responses"),
    Writer("csv", SERVICE, _lazy("csvfmt", "CsvWriter"),
           "header row + one row per response (--columns)"),
)
