"""C-MOVE and C-GET: the retrieve services of Query/Retrieve (PS3.4 C.4.2, C.4.3).

    from dimsekit.api import (GET_MODELS, InstanceWriter, open_association,
                              retrieve, retrieve_contexts)

    writer = InstanceWriter("incoming")
    model = GET_MODELS[1]                                # study root
    with open_association(settings, contexts=retrieve_contexts("get", model),
                          store=writer) as assoc:
        for status in retrieve(assoc, "get", query, model):
            ...                                          # RetrieveStatus, pending then final

A C-MOVE names a destination AE title instead and the instances arrive
on another association (a :class:`~dimsekit.storage.StoreServer` when the
destination is ourselves).  Nothing here prints or exits.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from dimsekit.records import InformationModel

MOVE = "move"
GET = "get"

def _models(service: str, uids: dict[str, str]) -> tuple[InformationModel, ...]:
    """find's Q/R models (flags, help, levels) with ``service``'s SOP classes."""
    from dataclasses import replace

    from dimsekit.qr.models import MODELS

    by_name = {m.name: m for m in MODELS}
    return tuple(replace(by_name[name], sop_class_uid=uid, service=service)
                 for name, uid in uids.items())


#: the C-MOVE information models (PS3.4 C.6): patient root first, as movescu's default
MOVE_MODELS = _models(MOVE, {"patient": "1.2.840.10008.5.1.4.1.2.1.2",
                             "study": "1.2.840.10008.5.1.4.1.2.2.2",
                             "psonly": "1.2.840.10008.5.1.4.1.2.3.2"})
#: the C-GET information models: patient root first, as getscu's default
GET_MODELS = _models(GET, {"patient": "1.2.840.10008.5.1.4.1.2.1.3",
                           "study": "1.2.840.10008.5.1.4.1.2.2.3",
                           "psonly": "1.2.840.10008.5.1.4.1.2.3.3"})

#: PS3.4 priorities of a request
PRIORITY = {"low": 2, "medium": 0, "high": 1}


@dataclass(frozen=True)
class PresentationContext:
    """One presentation context to propose: an abstract syntax, its own
    transfer syntaxes (empty: the association's), and the SCP/SCU roles to
    negotiate for it (None: not negotiated; a C-GET asks for the SCP role
    of every storage SOP class it wants to receive)."""

    abstract_syntax: str
    transfer_syntaxes: tuple[str, ...] = ()
    scu_role: bool | None = None
    scp_role: bool | None = None


def retrieve_contexts(service: str, model: InformationModel,
                      storage_classes: Iterable[str] | None = None,
                      storage_syntaxes: tuple[str, ...] = ()) -> list[PresentationContext]:
    """What a retrieve proposes: the model's context, and for C-GET one
    context per storage SOP class (default:
    :func:`~dimsekit.storage.storage_sop_classes`, up to the 128 an
    association can carry) with the SCP role, as getscu proposes them."""
    contexts = [PresentationContext(model.sop_class_uid)]
    if service == GET:
        from dimsekit.storage import storage_sop_classes

        classes = list(storage_classes if storage_classes is not None
                       else storage_sop_classes())
        contexts += [PresentationContext(uid, storage_syntaxes, scu_role=False, scp_role=True)
                     for uid in classes[:127]]
    return contexts


def status_table(service: str) -> dict[int, tuple[str, str]]:
    """The DIMSE statuses of ``service`` (``"find"``, ``"move"``, ``"get"``,
    ``"store"``, ``"echo"``, ``"worklist"``): code -> (category, meaning),
    for :func:`~dimsekit.status.describe_status`."""
    from pynetdicom import status

    tables = {
        "find": status.QR_FIND_SERVICE_CLASS_STATUS,
        MOVE: status.QR_MOVE_SERVICE_CLASS_STATUS,
        GET: status.QR_GET_SERVICE_CLASS_STATUS,
        "store": status.STORAGE_SERVICE_CLASS_STATUS,
        "echo": status.VERIFICATION_SERVICE_CLASS_STATUS,
        "worklist": status.MODALITY_WORKLIST_SERVICE_CLASS_STATUS,
    }
    try:
        return dict(tables[service])
    except KeyError:
        raise ValueError(f"no status table for service {service!r} "
                         f"(one of: {', '.join(tables)})") from None


@dataclass(frozen=True)
class RetrieveStatus:
    """One C-MOVE or C-GET response: its status, the sub-operation counts
    it carries (None where the peer left one out), and whether it is the
    final one."""

    status: int
    category: str
    final: bool
    remaining: int | None = None
    completed: int | None = None
    failed: int | None = None
    warning: int | None = None
    error_comment: str | None = None
    #: Failed SOP Instance UID List of a final response (PS3.4 C.4.2.1.4)
    failed_instances: tuple[str, ...] = ()

    def counts(self) -> str:
        """``completed 3, failed 0, warning 0`` (what the peer said)."""
        parts = [f"{name} {value}" for name, value in
                 (("completed", self.completed), ("failed", self.failed),
                  ("warning", self.warning)) if value is not None]
        return ", ".join(parts) or "no sub-operation counts"


def _count(ds: Any, keyword: str) -> int | None:
    value = ds.get(keyword)
    try:
        return None if value is None or value == "" else int(value)
    except (TypeError, ValueError):
        return None


def _status(ds: Any, identifier: Any) -> RetrieveStatus:
    from dimsekit.status import category

    code = int(ds.Status)
    kind = category(code)
    failed_uids: tuple[str, ...] = ()
    if identifier is not None and "FailedSOPInstanceUIDList" in identifier:
        value = identifier.FailedSOPInstanceUIDList
        failed_uids = tuple(str(v) for v in (value if isinstance(value, list) or
                                             hasattr(value, "__iter__") and
                                             not isinstance(value, str) else [value]) if v)
    comment = ds.get("ErrorComment")
    return RetrieveStatus(
        status=code, category=kind, final=kind != "Pending",
        remaining=_count(ds, "NumberOfRemainingSuboperations"),
        completed=_count(ds, "NumberOfCompletedSuboperations"),
        failed=_count(ds, "NumberOfFailedSuboperations"),
        warning=_count(ds, "NumberOfWarningSuboperations"),
        error_comment=str(comment) if comment else None,
        failed_instances=failed_uids,
    )


def retrieve(assoc: Any, service: str, query: Any, model: InformationModel, *,
             destination: str | None = None, message_id: int = 1,
             priority: int = 0) -> Iterator[RetrieveStatus]:
    """Send one C-MOVE (``service="move"``, to ``destination``) or C-GET
    on ``assoc`` (from :func:`~dimsekit.association.open_association`) and
    yield each response as a :class:`RetrieveStatus`, the final one last.

    ``query`` is a prepared :class:`~dimsekit.qr.find.Query` or a pydicom
    Dataset.  A C-GET's instances go to the ``store`` callable the
    association was opened with.  Raises IncompleteError when the
    association is lost or no response comes within the DIMSE timeout.
    """
    from dimsekit.errors import IncompleteError, UsageError

    identifier = getattr(query, "identifier", query)
    if service == MOVE:
        if not destination:
            raise UsageError("a C-MOVE needs a destination AE title")
        responses = assoc.send_c_move(identifier, destination, model.sop_class_uid,
                                      msg_id=message_id, priority=priority)
    elif service == GET:
        responses = assoc.send_c_get(identifier, model.sop_class_uid,
                                     msg_id=message_id, priority=priority)
    else:
        raise ValueError(f"not a retrieve service: {service!r}")
    for seen, (ds, found) in enumerate(responses):
        if "Status" not in ds:
            where = f"{assoc.acceptor.address}:{assoc.acceptor.port}"
            raise IncompleteError(
                f"C-{service.upper()}: association with {where} lost or no response "
                f"within the DIMSE timeout after {seen} response{'s' * (seen != 1)}",
                received=seen)
        status = _status(ds, found)
        yield status
        if status.final:
            return
