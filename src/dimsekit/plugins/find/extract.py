"""``-X/--extract``: one Part-10 file per pending response.

Files are ``rsp0001.dcm``, ``rsp0002.dcm``, ... numbered across the whole
run, in ``-od DIR``.  Each is written to a temp file and linked into place,
so it appears complete or not at all, and an existing file is never
replaced.  Names never come from response contents.
"""

from __future__ import annotations

import os
import re
import tempfile

from dimsekit.api import UsageError

_NAME = re.compile(r"rsp\d{4,}\.dcm")


class Extractor:
    def __init__(self, directory: str, sop_class_uid: str):
        self.directory = directory
        self.sop_class_uid = sop_class_uid
        self.count = 0
        try:
            os.makedirs(directory, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot create output directory {directory!r}: "
                             f"{exc.strerror}") from None
        if not os.access(directory, os.W_OK):
            raise UsageError(f"output directory {directory!r} is not writable")
        existing = sorted(n for n in os.listdir(directory) if _NAME.fullmatch(n))
        if existing:
            raise UsageError(
                f"{os.path.join(directory, existing[0])} exists; refusing to overwrite "
                f"extracted responses (choose another -od)"
            )

    def write(self, ds, sop_class_uid: str | None = None) -> str:
        from pydicom.dataset import FileMetaDataset
        from pydicom.filewriter import dcmwrite
        from pydicom.uid import ExplicitVRLittleEndian, generate_uid

        self.count += 1
        name = os.path.join(self.directory, f"rsp{self.count:04d}.dcm")
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = (ds.get("SOPClassUID")
                                        or sop_class_uid or self.sop_class_uid)
        meta.MediaStorageSOPInstanceUID = ds.get("SOPInstanceUID") or generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta = meta
        fd, tmp = tempfile.mkstemp(prefix=".rsp-", suffix=".part", dir=self.directory)
        try:
            with os.fdopen(fd, "wb") as fh:
                dcmwrite(fh, ds, enforce_file_format=True)
            try:
                os.link(tmp, name)
            except FileExistsError:
                raise UsageError(f"{name} exists; refusing to overwrite it") from None
        finally:
            os.unlink(tmp)
        return name
