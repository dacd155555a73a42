"""Response files: ``-X`` (Part-10 ``rspNNNN.dcm``) and ``-Xx`` (PS3.19 XML
``rspNNNN.xml``), one per pending response, numbered across the whole run.

Each file is written as a :class:`~dimsekit.plugins.find.output.PendingFile`
and then linked into place, so it appears complete or not at all; an
existing file is refused before the query starts (or replaced with
``--overwrite``).  ``-Xlo N`` stops after N files.  Names never come from
response contents.  A file that cannot be written once the run has started
(a full disk, the directory removed or made read-only) is an
``OutputError`` (exit 5), and leaves nothing behind.
"""

from __future__ import annotations

import errno
import io
import os
import re
from collections.abc import Callable
from typing import Any

from dimsekit.api import OutputError, UsageError, get_logger
from dimsekit.plugins.find.output import PendingFile

log = get_logger("find")


def part10(ds: Any, info: Any) -> bytes:
    """A response as a Part-10 file (Explicit VR Little Endian, File Meta)."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.filewriter import dcmwrite
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.get("SOPClassUID") or info.model.sop_class_uid
    meta.MediaStorageSOPInstanceUID = ds.get("SOPInstanceUID") or generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    buffer = io.BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def native_xml(ds: Any, info: Any) -> bytes:
    from dimsekit.plugins.find.xmlfmt import native_xml as render

    return render(ds)


class Extractor:
    """Writes ``rspNNNN<suffix>`` files into ``directory``."""

    def __init__(self, directory: str, suffix: str, render: Callable[[Any, Any], bytes],
                 *, overwrite: bool = False, limit: int | None = None):
        self.directory = directory
        self.suffix = suffix
        self.render = render
        self.overwrite = overwrite
        self.limit = limit
        self.count = 0
        try:
            os.makedirs(directory, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot create output directory {directory!r}: "
                             f"{exc.strerror}") from None
        if not os.access(directory, os.W_OK):
            raise UsageError(f"output directory {directory!r} is not writable")
        if not overwrite:
            pattern = re.compile(r"rsp\d{4,}" + re.escape(suffix))
            existing = sorted(n for n in os.listdir(directory) if pattern.fullmatch(n))
            if existing:
                raise UsageError(
                    f"{os.path.join(directory, existing[0])} exists; refusing to "
                    f"overwrite extracted responses (choose another -od, or --overwrite)"
                )

    def write(self, ds: Any, info: Any) -> None:
        if self.limit is not None and self.count >= self.limit:
            if self.count == self.limit:
                log.info("-Xlo %d reached: no more response files", self.limit)
                self.count += 1
            return
        self.count += 1
        name = os.path.join(self.directory, f"rsp{self.count:04d}{self.suffix}")
        data = self.render(ds, info)
        pending = None
        try:
            pending = PendingFile(self.directory)
            pending.stream.write(data)
            pending.publish(name, replace=self.overwrite)
        except OSError as exc:
            if pending is not None:
                pending.discard()
            raise self.error(name, exc) from None
        except BaseException:  # Ctrl-C in the middle: no half file, no .part
            if pending is not None:
                pending.discard()
            raise

    def error(self, name: str, exc: OSError) -> OutputError:
        """The one line that says which response file failed, and why."""
        if isinstance(exc, FileExistsError):  # made by someone else meanwhile
            return OutputError(f"{name} appeared while the responses were being "
                               f"written; refusing to overwrite it")
        if exc.errno == errno.ENOENT and not os.path.isdir(self.directory):
            return OutputError(f"cannot write response file {name!r}: the output "
                               f"directory {self.directory!r} no longer exists")
        return OutputError(f"cannot write response file {name!r}: "
                           f"{exc.strerror or exc}")
