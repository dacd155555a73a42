"""Receiving instances: the C-STORE side of C-MOVE and C-GET.

    writer = InstanceWriter("incoming")          # each file complete or absent
    with StoreServer("MOVESCU", 11113, writer):  # a storage SCP for C-MOVE to us
        ...                                      # send the C-MOVE meanwhile

A C-GET receives its instances on its own association: give the same kind
of callable to :func:`dimsekit.association.open_association` as ``store=``.
A store callable takes one :class:`ReceivedInstance` and returns the C-STORE
status to answer (0x0000 Success, or a failure such as 0xA700 Out of
Resources); an exception it raises is answered 0xC000 and kept on the
writer.  Nothing here prints or exits; the server's threads end with the
``with`` block.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import tempfile
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("dimsekit.storage")

#: C-STORE statuses a store callable answers with (PS3.4 Table B.2-1)
STORE_SUCCESS = 0x0000
STORE_OUT_OF_RESOURCES = 0xA700
STORE_CANNOT_UNDERSTAND = 0xC000

#: seconds a sender's association gets to end when the server stops
STOP_GRACE = 2.0

#: a UID as PS3.5 9.1 allows it: only such a name becomes part of a file name
_UID = re.compile(r"[0-9]+(\.[0-9]+)*\Z")


@dataclass(frozen=True)
class ReceivedInstance:
    """One instance a peer sent with C-STORE, still encoded.

    ``data`` is the data set as it came (in ``transfer_syntax``);
    :meth:`part10` gives the DICOM file: preamble, file meta information and
    the data set, without decoding it.
    """

    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax: str
    data: bytes
    #: the calling AE title of whoever sent it
    sender: str = ""
    _part10: Callable[[], bytes] | None = field(default=None, repr=False, compare=False)

    def part10(self) -> bytes:
        """The instance as a DICOM Part-10 file."""
        if self._part10 is not None:
            return self._part10()
        from pydicom.dataset import FileMetaDataset
        from pydicom.filebase import DicomBytesIO
        from pydicom.filewriter import write_file_meta_info
        from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID

        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = UID(self.sop_class_uid)
        meta.MediaStorageSOPInstanceUID = UID(self.sop_instance_uid)
        meta.TransferSyntaxUID = UID(self.transfer_syntax)
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        out = DicomBytesIO()
        out.write(b"\x00" * 128 + b"DICM")
        write_file_meta_info(out, meta, enforce_standard=True)
        return out.getvalue() + self.data


def safe_file_name(instance: ReceivedInstance, number: int) -> str:
    """``<SOP Instance UID>.dcm`` when the UID is a valid UID (digits and
    dots: nothing that could leave the directory), else ``inst<N>.dcm``."""
    uid = instance.sop_instance_uid
    if _UID.match(uid) and len(uid) <= 64:
        return f"{uid}.dcm"
    return f"inst{number:06d}.dcm"


class InstanceWriter:
    """Writes every instance it is given into ``directory`` (created if
    missing) as a Part-10 file, complete or not at all: each is written to a
    temporary file in the directory and renamed when whole.

    File names come from :func:`safe_file_name`; an existing file of that
    name is kept as it is when its bytes are the same (a retrieve run
    twice), and otherwise the new one is written beside it as
    ``<name>.<N>.dcm`` -- nothing is ever overwritten.  Callable as a store
    callable; thread-safe (a storage SCP may receive on several
    associations at once).
    """

    def __init__(self, directory: str | os.PathLike[str]):
        self.directory = Path(directory)
        #: files written (or found already there, identical), in order
        self.paths: list[Path] = []
        #: instances that could not be written: (SOP Instance UID, reason)
        self.errors: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._count = 0

    def prepare(self) -> None:
        """Create the directory, and check it can be written (before any
        network traffic); UsageError (exit 2) when it cannot."""
        from dimsekit.errors import UsageError

        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(prefix=".dimsekit-", dir=self.directory)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise UsageError(f"cannot write to {self.directory}: "
                             f"{exc.strerror or exc}") from None

    def check(self) -> None:
        """OutputError (exit 5) when an instance could not be written."""
        from dimsekit.errors import OutputError

        if self.errors:
            uid, reason = self.errors[0]
            more = f" (and {len(self.errors) - 1} more)" if len(self.errors) > 1 else ""
            raise OutputError(f"cannot write received instance {uid} to "
                              f"{self.directory}: {reason}{more}")

    @property
    def received(self) -> int:
        return len(self.paths)

    def __call__(self, instance: ReceivedInstance) -> int:
        try:
            blob = instance.part10()
            with self._lock:
                self._count += 1
                number = self._count
                path = self._place(instance, number, blob)
                self.paths.append(path)
            return STORE_SUCCESS
        except OSError as exc:
            with self._lock:
                self.errors.append((instance.sop_instance_uid,
                                    exc.strerror or str(exc)))
            return STORE_OUT_OF_RESOURCES

    def _place(self, instance: ReceivedInstance, number: int, blob: bytes) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = safe_file_name(instance, number)
        stem = name[:-4]
        fd, tmp = tempfile.mkstemp(prefix=".dimsekit-", suffix=".part", dir=self.directory)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(blob)
                f.flush()
                os.fsync(f.fileno())
            for n in range(0, 10000):
                target = self.directory / (name if n == 0 else f"{stem}.{n}.dcm")
                try:
                    os.link(tmp, target)  # never replaces an existing file
                except FileExistsError:
                    if _same_bytes(target, blob):
                        return target
                    continue
                return target
            raise OSError(f"too many files named {stem}.*.dcm")
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


def _same_bytes(path: Path, blob: bytes) -> bool:
    try:
        return path.stat().st_size == len(blob) and path.read_bytes() == blob
    except OSError:
        return False


def _received(event: Any) -> ReceivedInstance:
    """A pynetdicom EVT_C_STORE event as a :class:`ReceivedInstance`."""
    request = event.request
    context = event.context
    stream = request.DataSet
    data = stream.getvalue() if hasattr(stream, "getvalue") else bytes(stream or b"")
    requestor = getattr(event.assoc, "requestor", None)
    sender = str(getattr(requestor, "ae_title", "")).strip()
    return ReceivedInstance(
        sop_class_uid=str(request.AffectedSOPClassUID or context.abstract_syntax),
        sop_instance_uid=str(request.AffectedSOPInstanceUID or ""),
        transfer_syntax=str(context.transfer_syntax),
        data=data, sender=sender,
        _part10=lambda: event.encoded_dataset(include_meta=True),
    )


def store_handler(store: Callable[[ReceivedInstance], int],
                  failures: list[BaseException] | None = None) -> Callable[[Any], int]:
    """pynetdicom's EVT_C_STORE handler calling ``store``; what it raises
    is logged, added to ``failures`` and answered 0xC000."""

    def handle(event: Any) -> int:
        try:
            return int(store(_received(event)))
        except Exception as exc:  # noqa: BLE001 - answered, kept, reported by the caller
            log.warning("storing a received instance failed: %s", exc)
            if failures is not None:
                failures.append(exc)
            return STORE_CANNOT_UNDERSTAND

    return handle


def storage_sop_classes() -> tuple[str, ...]:
    """The storage SOP classes a C-GET proposes by default: pynetdicom's
    storage presentation contexts (every storage SOP class, as many as an
    association leaves room for beside one Q/R context)."""
    from pynetdicom import StoragePresentationContexts

    return tuple(str(cx.abstract_syntax) for cx in StoragePresentationContexts)


class StoreServer:
    """A storage SCP on ``port``: the destination of a C-MOVE to ourselves.

    Accepts every storage SOP class in every transfer syntax pynetdicom
    knows, from any calling AE, and hands each instance to ``store``.  A
    context manager: listening when the block starts, stopped (its threads
    joined) when it ends.  ``failures`` holds what ``store`` raised.
    """

    @classmethod
    def like(cls, settings: Any, ae_title: str, port: int,
             store: Callable[[ReceivedInstance], int]) -> StoreServer:
        """A server with the timeouts and maximum PDU length of an
        :class:`~dimsekit.association.AssociationSettings`."""
        return cls(ae_title, port, store, network_timeout=settings.network_timeout,
                   acse_timeout=settings.acse_timeout, dimse_timeout=settings.dimse_timeout,
                   max_pdu=settings.max_pdu)

    def __init__(self, ae_title: str, port: int, store: Callable[[ReceivedInstance], int],
                 *, host: str = "", network_timeout: float | None = 30.0,
                 acse_timeout: float | None = 30.0, dimse_timeout: float | None = 30.0,
                 max_pdu: int = 16384, sop_classes: Iterable[str] | None = None):
        self.ae_title = ae_title
        self.address = (host, port)
        self.store = store
        self.failures: list[BaseException] = []
        self._timeouts = (network_timeout, acse_timeout, dimse_timeout)
        self._max_pdu = max_pdu
        self._sop_classes = sop_classes
        self._server: Any = None

    def __enter__(self) -> StoreServer:
        from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, evt

        from dimsekit.errors import UsageError

        ae = AE(ae_title=self.ae_title)
        ae.network_timeout, ae.acse_timeout, ae.dimse_timeout = self._timeouts
        ae.maximum_pdu_size = self._max_pdu
        ae.require_called_aet = False
        for uid in self._sop_classes or storage_sop_classes():
            ae.add_supported_context(uid, ALL_TRANSFER_SYNTAXES)
        handler = store_handler(self.store, self.failures)
        try:
            self._server = ae.start_server(self.address, block=False,
                                           evt_handlers=[(evt.EVT_C_STORE, handler)])
        except OSError as exc:
            raise UsageError(f"cannot listen on port {self.address[1]} for incoming "
                             f"associations: {exc.strerror or exc}") from None
        return self

    @property
    def port(self) -> int:
        """The port listened on (the one the OS chose, for port 0)."""
        return int(self._server.server_address[1]) if self._server else self.address[1]

    def __exit__(self, *exc_info: object) -> None:
        if self._server is None:
            return
        server, self._server = self._server, None
        active = list(server.active_associations)
        server.shutdown()
        # a peer still releasing its last association gets a moment; one
        # that hangs on is aborted (the files it sent are whole or absent)
        for assoc in active:
            assoc.join(STOP_GRACE)
            if assoc.is_alive():
                assoc.abort()
                assoc.join(STOP_GRACE)
