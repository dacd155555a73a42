"""DICOM JSON (PS3.18 Annex F) writers: ``json`` (one array, the body a
QIDO-RS search returns, streamed) and ``ndjson`` (one object per line,
flushed per response)."""

from __future__ import annotations

import json
from typing import Any, BinaryIO

#: never BulkDataURI: there is nowhere to retrieve bulk data from
NO_BULK = 2**62


def dicom_json(ds: Any) -> dict:
    """The DICOM JSON model of ``ds``; text decoded per Specific Character Set,
    binary values as InlineBinary."""
    return ds.to_json_dict(bulk_data_threshold=NO_BULK)


class JsonWriter:
    """``[`` obj ``,`` obj ... ``]``: valid JSON however the run ends."""

    def __init__(self, stream: BinaryIO, options: dict[str, Any]):
        self.stream = stream
        self.count = 0

    def begin(self) -> None:
        self.stream.write(b"[")

    def write(self, ds: Any, info: Any) -> None:
        sep = b",\n" if self.count else b"\n"
        self.count += 1
        self.stream.write(sep + json.dumps(dicom_json(ds), ensure_ascii=False).encode("utf-8"))

    def end(self) -> None:
        self.stream.write(b"\n]\n" if self.count else b"]\n")
        self.stream.flush()


class NdjsonWriter:
    """One DICOM JSON object per line, flushed as it arrives (``| jq``)."""

    def __init__(self, stream: BinaryIO, options: dict[str, Any]):
        self.stream = stream

    def begin(self) -> None:
        pass

    def write(self, ds: Any, info: Any) -> None:
        line = json.dumps(dicom_json(ds), ensure_ascii=False, separators=(",", ":"))
        self.stream.write(line.encode("utf-8") + b"\n")
        self.stream.flush()

    def end(self) -> None:
        self.stream.flush()
