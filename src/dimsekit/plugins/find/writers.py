"""The output formats the find plugin contributes (``--format``)."""

from __future__ import annotations

from typing import Any, BinaryIO

from dimsekit.api import Writer, transfer_syntax_name
from dimsekit.plugins.find.models import SERVICE


_RULE = "-" * 27


class DumpWriter:
    """DCMTK findscu's layout: one block per response, dcmdump element lines."""

    def __init__(self, stream: BinaryIO, options: dict[str, Any]):
        self.stream = stream

    def begin(self) -> None:
        from dimsekit.plugins.find.dump import format_dataset

        self._format = format_dataset

    def write(self, ds: Any, info: Any) -> None:
        ts = transfer_syntax_name(info.transfer_syntax)
        self.stream.write(
            f"{_RULE}\nFind Response: {info.number} (Pending)\n\n"
            f"# Dicom-Data-Set\n# Used TransferSyntax: {ts}\n"
            f"{self._format(ds)}\n\n".encode("utf-8", "replace")
        )

    def end(self) -> None:
        self.stream.flush()


WRITERS = (
    Writer("dump", SERVICE, DumpWriter,
           "DCMTK findscu's dump layout, one block per response (default)"),
)
