"""A recording in-process C-FIND / C-ECHO peer built on pynetdicom.

:class:`QuerySCP` answers C-ECHO and C-FIND for the Patient Root, Study Root
and Patient/Study Only Q/R models, Modality Worklist and UPS Pull, from
:mod:`dimsekit.testing.sampledata` (or data of your own), records everything
it receives (:attr:`~QuerySCP.requests`, :attr:`~QuerySCP.echoes`,
:attr:`~QuerySCP.cancels`, :attr:`~QuerySCP.associations`), and has knobs to
misbehave on purpose (slow, failing, aborting, hanging, rejecting peers).
Typical pytest use, with the ``dimsekit_scp`` / ``dimsekit_make_scp``
fixtures of dimsekit's pytest plugin or a fixture of your own::

    @pytest.fixture
    def scp():
        with QuerySCP() as peer:
            yield peer

    def test_something(scp):
        run_my_scu("127.0.0.1", scp.port)
        assert scp.requests[0].identifier.QueryRetrieveLevel == "STUDY"

Notes
-----
* Every knob is read when a C-FIND or C-ECHO (or, for ``reject`` and
  ``accept_models``, an association) arrives, so it can be changed between
  requests.
* The peer sets TCP_NODELAY on each accepted socket; it does not change any
  of pynetdicom's global ``_config`` (``LOG_REQUEST_IDENTIFIERS`` and
  ``LOG_RESPONSE_IDENTIFIERS`` stay on: pynetdicom formats every identifier
  for its log whether or not anything is logged -- a cost, not a bug).
* Matching is done on decoded Python strings, so it is independent of the
  Specific Character Set the query was encoded in (``M?LLER*`` finds
  ``MÜLLER^Hans``).  Matching is case-sensitive, except for PN values when
  fuzzy semantic matching was negotiated.
* pynetdicom 3.0.4 appends a Success response after a handler's *warning*
  status (e.g. 0xB001), which a client then takes as the final response of
  its next query; ``final_status`` works around that (see ``_final``), so a
  warning final status is sent alone, like failures and Cancel.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import re
import socket
import threading
import time
import weakref
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.datadict import keyword_for_tag
from pydicom.sequence import Sequence
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)
from pynetdicom import AE, evt
from pynetdicom.pdu_primitives import A_RELEASE

from dimsekit.testing.sampledata import SampleData, sample_data

__all__ = [
    "QuerySCP",
    "FindRecord",
    "AssociationRecord",
    "CancelRecord",
    "ContextRecord",
    "EchoRecord",
    "MODEL_UIDS",
    "TRANSFER_SYNTAXES",
]

#: short model name -> SOP Class UID of everything QuerySCP serves
MODEL_UIDS: dict[str, str] = {
    "verification": "1.2.840.10008.1.1",
    "patient": "1.2.840.10008.5.1.4.1.2.1.1",
    "study": "1.2.840.10008.5.1.4.1.2.2.1",
    "psonly": "1.2.840.10008.5.1.4.1.2.3.1",
    "worklist": "1.2.840.10008.5.1.4.31",
    "ups": "1.2.840.10008.5.1.4.34.6.3",
}
_MODEL_BY_UID = {v: k for k, v in MODEL_UIDS.items()}
_QR_MODELS = ("patient", "study", "psonly")

#: transfer syntaxes accepted for every model
TRANSFER_SYNTAXES: list[str] = [
    ImplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    DeflatedExplicitVRLittleEndian,
]

# --------------------------------------------------------------------------
# records


@dataclass(frozen=True)
class ContextRecord:
    """A presentation context as requested (all proposed transfer syntaxes)
    or as accepted/rejected (the one negotiated transfer syntax, if any)."""

    context_id: int
    abstract_syntax: str
    transfer_syntaxes: tuple[str, ...]


@dataclass(eq=False)
class AssociationRecord:
    """One association request received by the peer.

    ``ended`` is ``None`` while the association is open, then one of
    ``"released"``, ``"aborted"`` (A-ABORT from the peer or the connection
    dropped), ``"aborted-by-scp"`` (``abort_after`` or :meth:`QuerySCP.stop`),
    ``"rejected"`` (``reject``) or ``"closed"`` (connection closed otherwise).
    """

    calling_ae: str
    called_ae: str
    address: tuple[str, int]
    max_pdu: int | None
    requested_contexts: list[ContextRecord]
    #: SOP Class Extended Negotiation items received: SOP class UID -> app info
    extended_negotiation: dict[str, bytes]
    #: the items the peer answered with (empty when not accepted)
    accepted_extended_negotiation: dict[str, bytes] = field(default_factory=dict)
    accepted_contexts: list[ContextRecord] = field(default_factory=list)
    rejected_contexts: list[ContextRecord] = field(default_factory=list)
    ended: str | None = None
    requests: list["FindRecord"] = field(default_factory=list, repr=False)
    echoes: list["EchoRecord"] = field(default_factory=list, repr=False)
    _done: threading.Event = field(default_factory=threading.Event, repr=False)
    _local_abort: bool = field(default=False, repr=False)
    _active: dict[int, "FindRecord"] = field(default_factory=dict, repr=False)
    # message IDs of C-FIND requests received and not yet answered, and of
    # those among them a C-CANCEL arrived for
    _inflight: set[int] = field(default_factory=set, repr=False)
    _cancelled: set[int] = field(default_factory=set, repr=False)

    def wait_ended(self, timeout: float = 5.0) -> bool:
        """Wait until the association has ended; return whether it has."""
        return self._done.wait(timeout)

    def _end(self, how: str, *, upgrade: bool = False) -> None:
        if self.ended is None or (upgrade and self.ended == "closed"):
            self.ended = how
        self._done.set()

    def ext_flag(self, sop_class_uid: str, index: int) -> bool:
        """Whether byte `index` of the *accepted* extended negotiation for
        `sop_class_uid` is 1 (0 relational, 1 date-time, 2 fuzzy names,
        3 timezone adjustment, 4 enhanced multi-frame conversion)."""
        info = self.accepted_extended_negotiation.get(sop_class_uid, b"")
        return len(info) > index and info[index] == 1


@dataclass(eq=False)
class FindRecord:
    """One C-FIND request received by the peer.

    ``responses`` counts the pending responses handed to pynetdicom;
    ``status`` is the final status sent (``None``: none was sent -- aborted,
    hung, or stopped); ``cancelled_after`` is the number of pending responses
    sent when the peer noticed the C-CANCEL (``None``: no cancel seen).
    """

    identifier: Dataset | None
    sop_class_uid: str
    model: str
    calling_ae: str
    called_ae: str
    message_id: int
    priority: int
    context_id: int
    transfer_syntax: str
    responses: int = 0
    status: int | None = None
    cancelled_after: int | None = None
    association: AssociationRecord | None = field(default=None, repr=False)
    _done: threading.Event = field(default_factory=threading.Event, repr=False)

    def wait_done(self, timeout: float = 5.0) -> bool:
        """Wait until the peer has finished answering this request."""
        return self._done.wait(timeout)


@dataclass(eq=False)
class EchoRecord:
    """One C-ECHO request received by the peer.

    ``status`` is the status answered (``None``: none was sent -- the peer
    aborted instead (``echo_abort_after``), the requestor gave up while
    ``echo_delay`` ran, or :meth:`QuerySCP.stop` was called).
    """

    calling_ae: str
    called_ae: str
    message_id: int
    context_id: int
    transfer_syntax: str
    status: int | None = None
    association: AssociationRecord | None = field(default=None, repr=False)


@dataclass(eq=False)
class CancelRecord:
    """One C-CANCEL received.  ``after_responses`` is the number of pending
    responses the peer had sent for the request when the C-CANCEL arrived
    (``None`` if that request had not started yet).  ``stale`` is True when
    no request with that message ID was in progress (e.g. the C-CANCEL
    crossed the final response); a stale cancel is ignored."""

    message_id: int
    calling_ae: str
    after_responses: int | None
    stale: bool = False
    request: FindRecord | None = field(default=None, repr=False)


# --------------------------------------------------------------------------
# matching

_LEVELS = ("PATIENT", "STUDY", "SERIES", "IMAGE")
_UNIQUE = {
    "PATIENT": "PatientID",
    "STUDY": "StudyInstanceUID",
    "SERIES": "SeriesInstanceUID",
    "IMAGE": "SOPInstanceUID",
}
_MODEL_LEVELS = {
    "patient": _LEVELS,
    "study": _LEVELS[1:],
    "psonly": _LEVELS[:2],
}
_PATIENT_ATTRS = frozenset(
    """PatientName PatientID IssuerOfPatientID IssuerOfPatientIDQualifiersSequence
    PatientBirthDate PatientBirthTime PatientSex OtherPatientIDsSequence
    OtherPatientNames EthnicGroup PatientComments PatientSpeciesDescription
    PatientBreedDescription ResponsiblePerson PatientIdentityRemoved
    NumberOfPatientRelatedStudies NumberOfPatientRelatedSeries
    NumberOfPatientRelatedInstances""".split()
)
_STUDY_ATTRS = frozenset(
    """StudyInstanceUID StudyDate StudyTime AccessionNumber
    IssuerOfAccessionNumberSequence StudyID StudyDescription ReferringPhysicianName
    PhysiciansOfRecord NameOfPhysiciansReadingStudy ProcedureCodeSequence
    ModalitiesInStudy SOPClassesInStudy AnatomicRegionsInStudyCodeSequence
    NumberOfStudyRelatedSeries NumberOfStudyRelatedInstances
    AdmittingDiagnosesDescription PatientAge PatientSize PatientWeight Occupation
    AdditionalPatientHistory OtherStudyNumbers""".split()
)
_SERIES_ATTRS = frozenset(
    """SeriesInstanceUID Modality SeriesNumber SeriesDescription SeriesDate
    SeriesTime BodyPartExamined Laterality PerformedProcedureStepStartDate
    PerformedProcedureStepStartTime RequestAttributesSequence ProtocolName
    OperatorsName PerformingPhysicianName InstitutionName StationName Manufacturer
    NumberOfSeriesRelatedInstances""".split()
)
_COMPUTED = frozenset(
    """NumberOfPatientRelatedStudies NumberOfPatientRelatedSeries
    NumberOfPatientRelatedInstances NumberOfStudyRelatedSeries
    NumberOfStudyRelatedInstances NumberOfSeriesRelatedInstances
    ModalitiesInStudy SOPClassesInStudy""".split()
)
# keys that are answered specially, never matched against the data
_NOT_MATCHED = frozenset(
    """QueryRetrieveLevel SpecificCharacterSet RetrieveAETitle InstanceAvailability
    TimezoneOffsetFromUTC QueryRetrieveView""".split()
)
# (date, time) pairs for combined date-time matching
_DT_PAIRS = {
    "StudyDate": "StudyTime",
    "SeriesDate": "SeriesTime",
    "ContentDate": "ContentTime",
    "AcquisitionDate": "AcquisitionTime",
    "PatientBirthDate": "PatientBirthTime",
    "ScheduledProcedureStepStartDate": "ScheduledProcedureStepStartTime",
    "PerformedProcedureStepStartDate": "PerformedProcedureStepStartTime",
}
_TEXT_VRS = frozenset("AE AS CS LO LT PN SH ST UC UT UR".split())


def _level_index(keyword: str, model: str) -> int:
    """Index into _LEVELS of the level an attribute belongs to."""
    if keyword in _PATIENT_ATTRS:
        return 1 if model == "study" else 0
    if keyword in _STUDY_ATTRS:
        return 1
    if keyword in _SERIES_ATTRS:
        return 2
    return 3


def _values(elem: DataElement | None) -> list[str]:
    """The values of `elem` as stripped strings (empty list: no value)."""
    if elem is None or elem.value is None:
        return []
    value = elem.value
    if isinstance(value, (bytes, bytearray)):
        return [value.hex()] if value else []
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        out = [str(v).strip() for v in value]
    else:
        s = str(value)
        out = [v.strip() for v in s.split("\\")] if "\\" in s else [s.strip()]
    return [v for v in out if v != ""] if any(out) else []


def _is_universal(elem: DataElement) -> bool:
    if elem.VR == "SQ":
        return not elem.value or all(_is_universal(e) for e in elem.value[0])
    return not _values(elem)


def _wildcard_regex(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    parts = []
    for ch in pattern:
        parts.append(".*" if ch == "*" else "." if ch == "?" else re.escape(ch))
    return re.compile("".join(parts), re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def _norm_time(value: str, pad: str) -> str:
    """'HHMMSS.FFFFFF' with missing digits filled with `pad`."""
    value = value.replace(":", "")
    main, _, frac = value.partition(".")
    return main.ljust(6, pad) + "." + frac.ljust(6, pad)


def _norm_date(value: str, pad: str) -> str:
    return value.replace(".", "").ljust(8, pad)


def _norm_dt(value: str, pad: str) -> str:
    value = re.sub(r"[+-]\d{4}$", "", value) if len(value) > 8 else value
    main, _, frac = value.partition(".")
    return main.ljust(14, pad) + "." + frac.ljust(6, pad)


_NORM = {"DA": _norm_date, "TM": _norm_time, "DT": _norm_dt}


def _split_range(q: str, vr: str) -> tuple[str, str] | None:
    """Split a range value into (low, high), '' for an open end; None if
    `q` is a single value."""
    if vr == "DT" and q.count("-") > 1:
        # offsets are ambiguous with ranges: only "A-B" with one '-' is a range
        return None
    if "-" not in q:
        return None
    lo, _, hi = q.partition("-")
    return lo.strip(), hi.strip()


def _match_temporal(q: str, value: str, vr: str) -> bool:
    norm = _NORM[vr]
    v = norm(value, "0")
    rng = _split_range(q, vr)
    if rng is None:
        if vr == "DA":
            return norm(q, "0") == v
        return norm(q, "0") <= v <= norm(q, "9")
    lo, hi = rng
    return (not lo or norm(lo, "0") <= v) and (not hi or v <= norm(hi, "9"))


def _match_value(q: str, value: str, vr: str, fuzzy: bool) -> bool:
    if vr in _NORM:
        return _match_temporal(q, value, vr)
    if vr in _TEXT_VRS:
        ignore_case = fuzzy and vr == "PN"
        if "*" in q or "?" in q:
            return _wildcard_regex(q, ignore_case).fullmatch(value) is not None
        return q.casefold() == value.casefold() if ignore_case else q == value
    if vr in ("IS", "DS", "US", "UL", "SS", "SL", "FL", "FD", "SV", "UV"):
        try:
            return float(q) == float(value)
        except ValueError:
            return q == value
    return q == value  # UI and anything else: exact


def _match_element(q: DataElement, d: DataElement | None, fuzzy: bool) -> bool:
    """Does data element `d` (None: absent) satisfy query key `q`?"""
    if q.VR == "SQ":
        if _is_universal(q):
            return True
        if d is None or not d.value:
            return False
        return any(_match_item(q.value[0], item, fuzzy) for item in d.value)
    wanted = _values(q)
    if not wanted:
        return True
    have = _values(d)
    vr = d.VR if d is not None and d.VR not in ("UN", None) else q.VR
    return any(_match_value(w, h, vr, fuzzy) for w in wanted for h in have)


def _match_item(query: Dataset, item: Dataset, fuzzy: bool) -> bool:
    for q in query:
        if q.tag.group in (0x0000, 0x0002) or q.keyword in _NOT_MATCHED:
            continue
        if not _match_element(q, item.get(q.tag), fuzzy):
            return False
    return True


def _match_combined(query: Dataset, data: Dataset) -> list[str]:
    """Combined date-time matching: return the keywords handled (both of a
    pair, when both have values in the query), or ['!'] if one pair fails."""
    handled: list[str] = []
    for dkw, tkw in _DT_PAIRS.items():
        if dkw not in query or tkw not in query:
            continue
        qd, qt = query.data_element(dkw), query.data_element(tkw)
        if not _values(qd) or not _values(qt):
            continue
        handled += [dkw, tkw]
        dval = _values(data.data_element(dkw)) if dkw in data else []
        tval = _values(data.data_element(tkw)) if tkw in data else []
        if not dval:
            return ["!"]
        value = _norm_date(dval[0], "0") + _norm_time(tval[0] if tval else "", "0")
        drange = _split_range(_values(qd)[0], "DA") or (_values(qd)[0],) * 2
        trange = _split_range(_values(qt)[0], "TM") or (_values(qt)[0],) * 2
        lo = _norm_date(drange[0], "0") + _norm_time(trange[0], "0") if drange[0] else ""
        hi = _norm_date(drange[1], "9") + _norm_time(trange[1], "9") if drange[1] else ""
        if (lo and value < lo) or (hi and value > hi):
            return ["!"]
    return handled


def _empty_like(q: DataElement) -> DataElement:
    if q.VR == "SQ":
        return DataElement(q.tag, "SQ", Sequence())
    return DataElement(q.tag, q.VR, None)


def _answer_element(q: DataElement, d: DataElement | None, fuzzy: bool) -> DataElement:
    """The response element for query key `q` given data element `d`."""
    if d is None:
        return _empty_like(q)
    if q.VR != "SQ" or d.VR != "SQ":
        return copy.deepcopy(d)
    if not q.value:  # zero-length sequence key: return the whole sequence
        return copy.deepcopy(d)
    query_item = q.value[0]
    items = []
    for item in d.value:
        if _match_item(query_item, item, fuzzy):
            items.append(_answer_dataset(query_item, item, fuzzy))
    return DataElement(q.tag, "SQ", Sequence(items))


def _answer_dataset(query: Dataset, data: Dataset, fuzzy: bool) -> Dataset:
    out = Dataset()
    for q in query:
        if q.tag.group in (0x0000, 0x0002) or q.keyword == "SpecificCharacterSet":
            continue
        out.add(_answer_element(q, data.get(q.tag), fuzzy))
    return out


class _Failure(Exception):
    def __init__(self, status: int, comment: str) -> None:
        super().__init__(comment)
        self.status = status
        self.comment = comment


def _status_ds(status: int, comment: str | None = None) -> Dataset:
    ds = Dataset()
    ds.Status = status
    if comment:
        ds.ErrorComment = comment[:64]
    return ds


def _computed(instances: list[Dataset]) -> dict[tuple[str, str], Any]:
    """Per-entity computed attributes: {(keyword, unique value): value}."""
    pat_studies: dict[str, set] = defaultdict(set)
    pat_series: dict[str, set] = defaultdict(set)
    pat_inst: Counter = Counter()
    st_series: dict[str, set] = defaultdict(set)
    st_inst: Counter = Counter()
    st_mod: dict[str, list] = defaultdict(list)
    st_cls: dict[str, list] = defaultdict(list)
    se_inst: Counter = Counter()
    for ds in instances:
        pid = str(ds.get("PatientID", ""))
        st = str(ds.get("StudyInstanceUID", ""))
        se = str(ds.get("SeriesInstanceUID", ""))
        pat_studies[pid].add(st)
        pat_series[pid].add(se)
        pat_inst[pid] += 1
        st_series[st].add(se)
        st_inst[st] += 1
        se_inst[se] += 1
        for target, kw in ((st_mod, "Modality"), (st_cls, "SOPClassUID")):
            v = str(ds.get(kw, "") or "")
            if v and v not in target[st]:
                target[st].append(v)
    out: dict[tuple[str, str], Any] = {}
    for pid in pat_inst:
        out["NumberOfPatientRelatedStudies", pid] = len(pat_studies[pid])
        out["NumberOfPatientRelatedSeries", pid] = len(pat_series[pid])
        out["NumberOfPatientRelatedInstances", pid] = pat_inst[pid]
    for st in st_inst:
        out["NumberOfStudyRelatedSeries", st] = len(st_series[st])
        out["NumberOfStudyRelatedInstances", st] = st_inst[st]
        out["ModalitiesInStudy", st] = st_mod[st]
        out["SOPClassesInStudy", st] = st_cls[st]
    for se in se_inst:
        out["NumberOfSeriesRelatedInstances", se] = se_inst[se]
    return out


_COMPUTED_OWNER = {
    "NumberOfPatientRelatedStudies": "PatientID",
    "NumberOfPatientRelatedSeries": "PatientID",
    "NumberOfPatientRelatedInstances": "PatientID",
    "NumberOfStudyRelatedSeries": "StudyInstanceUID",
    "NumberOfStudyRelatedInstances": "StudyInstanceUID",
    "ModalitiesInStudy": "StudyInstanceUID",
    "SOPClassesInStudy": "StudyInstanceUID",
    "NumberOfSeriesRelatedInstances": "SeriesInstanceUID",
}


def _entity_view(
    rep: Dataset, model: str, level: int, computed: dict[tuple[str, str], Any]
) -> Dataset:
    """The attributes of representative instance `rep` visible at `level`,
    plus the computed ones."""
    view = Dataset()
    for elem in rep:
        kw = elem.keyword
        if kw == "SpecificCharacterSet" or _level_index(kw, model) <= level:
            view.add(elem)
    for kw, owner in _COMPUTED_OWNER.items():
        if _level_index(kw, model) <= level:
            key = (kw, str(rep.get(owner, "")))
            if key in computed:
                setattr(view, kw, computed[key])
    return view


# --------------------------------------------------------------------------
# the peer


def wait_for(predicate: Any, timeout: float = 3.0) -> bool:
    """Poll ``predicate`` until true (False after ``timeout`` seconds).

    pynetdicom updates association state asynchronously: ``send_c_find()``
    can return before ``is_aborted`` is set, so tests wait for it.
    """
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


class QuerySCP:
    """A recording C-ECHO/C-FIND peer running in a background thread.

    Parameters
    ----------
    ae_title, host, port:
        Where to listen.  ``port=0`` binds a free port; read :attr:`port`.
    data:
        A :class:`~dimsekit.testing.sampledata.SampleData` (default: the
        sample data).  Can be replaced later through :attr:`data`.
    repeat_matches:
        ``N``: answer every query with exactly N pending responses, cycling
        through the real matches (or echoing the identifier if none match).
    response_delay:
        Seconds to sleep before each pending response.
    final_status:
        Send this status (e.g. ``0xC000``) instead of Success after the matches.
    abort_after:
        ``N``: abort the association instead of sending pending response N+1
        or the final status, whichever comes first.
    hang_after:
        ``N``: stop answering after N pending responses and never send the
        final status (until the peer aborts or :meth:`stop` is called).
    reject:
        ``(result, source, reason)``: reject every association with it, e.g.
        ``(1, 1, 3)`` = permanent, service user, calling AE title not recognised.
    accept_models:
        Iterable of model names (``"verification"``, ``"patient"``, ``"study"``,
        ``"psonly"``, ``"worklist"``, ``"ups"``) or SOP Class UIDs; only those
        presentation contexts are accepted (``None``: all).
    honour_cancel:
        ``True``: stop at a C-CANCEL and answer 0xFE00 Cancel; ``False``:
        ignore it and send everything (like Orthanc and dcmqrscp).
    accept_extended_negotiation:
        Answer SOP Class Extended Negotiation for the Q/R models by echoing
        the requested bytes (``False``: never answer).  Accepted flags change
        matching: relational (lower-level keys filter), combined date-time,
        fuzzy (case-insensitive) person names.
    strict_hierarchy:
        Fail (0xA900) a hierarchical Q/R query that lacks a unique key of a
        level above the query level (unless relational was negotiated).
    echo_status:
        Answer every C-ECHO with this status (e.g. ``0x0211``, Unrecognised
        operation) instead of ``0x0000`` Success.
    echo_delay:
        Seconds to wait before answering a C-ECHO (to make a requestor's
        DIMSE timeout expire); :meth:`stop` cuts the wait short.
    echo_abort_after:
        ``N``: abort the association instead of answering its C-ECHO N+1
        (``0``: abort at the first C-ECHO).
    ssl_context:
        A server-side :class:`ssl.SSLContext`: speak DICOM TLS (each
        accepted connection is wrapped in it).
    """

    def __init__(
        self,
        ae_title: str = "ANY-SCP",
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        data: SampleData | None = None,
        repeat_matches: int | None = None,
        response_delay: float = 0.0,
        final_status: int | None = None,
        abort_after: int | None = None,
        hang_after: int | None = None,
        reject: tuple[int, int, int] | None = None,
        accept_models: Iterable[str] | None = None,
        honour_cancel: bool = True,
        accept_extended_negotiation: bool = True,
        strict_hierarchy: bool = False,
        echo_status: int | None = None,
        echo_delay: float = 0.0,
        echo_abort_after: int | None = None,
        ssl_context: Any = None,
    ) -> None:
        self.ae_title = ae_title
        self.host = host
        self._requested_port = port
        self._port: int | None = None
        self.data = data if data is not None else sample_data()
        self.repeat_matches = repeat_matches
        self.response_delay = response_delay
        self.final_status = final_status
        self.abort_after = abort_after
        self.hang_after = hang_after
        self.reject = reject
        self.accept_models = accept_models
        self.honour_cancel = honour_cancel
        self.accept_extended_negotiation = accept_extended_negotiation
        self.strict_hierarchy = strict_hierarchy
        self.echo_status = echo_status
        self.echo_delay = echo_delay
        self.echo_abort_after = echo_abort_after
        self.ssl_context = ssl_context

        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server: Any = None
        self._ae: AE | None = None
        self._requests: list[FindRecord] = []
        self._associations: list[AssociationRecord] = []
        self._cancels: list[CancelRecord] = []
        self._echoes: list[EchoRecord] = []
        # pynetdicom Association (a Thread) -> its record; weak, so a long-running
        # peer does not keep finished associations alive
        self._by_assoc: weakref.WeakKeyDictionary[Any, AssociationRecord] = (
            weakref.WeakKeyDictionary()
        )

    # -- lifecycle ---------------------------------------------------------

    @property
    def port(self) -> int:
        """The port actually bound (valid after :meth:`start`)."""
        if self._port is None:
            raise RuntimeError("QuerySCP is not started")
        return self._port

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    @property
    def is_running(self) -> bool:
        return self._server is not None

    def start(self) -> "QuerySCP":
        """Start listening (in a background thread); return self."""
        if self._server is not None:
            return self
        self._stop.clear()
        ae = AE(ae_title=self.ae_title)
        ae.maximum_associations = 64
        for uid in MODEL_UIDS.values():
            ae.add_supported_context(uid, TRANSFER_SYNTAXES)
        handlers = [
            (evt.EVT_CONN_OPEN, self._on_conn_open),
            (evt.EVT_REQUESTED, self._on_requested),
            (evt.EVT_SOP_EXTENDED, self._on_sop_extended),
            (evt.EVT_ESTABLISHED, self._on_established),
            (evt.EVT_RELEASED, self._on_released),
            (evt.EVT_ABORTED, self._on_aborted),
            (evt.EVT_CONN_CLOSE, self._on_conn_close),
            (evt.EVT_DIMSE_RECV, self._on_dimse_recv),
            (evt.EVT_C_FIND, self._on_find),
            (evt.EVT_C_ECHO, self._on_echo),
        ]
        server = ae.start_server(
            (self.host, self._requested_port), block=False, evt_handlers=handlers,
            ssl_context=self.ssl_context,
        )
        self._ae = ae
        self._server = server
        self._port = int(server.server_address[1])
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Stop listening, abort open associations, unblock hung handlers.

        Returns within about `timeout` seconds even if peers misbehave.
        Records stay available.
        """
        server = self._server
        if server is None:
            return
        self._server = None
        self._stop.set()

        deadline = time.monotonic() + timeout
        # serve_forever() polls every 0.5 s; a connection attempt wakes its
        # select() so shutdown() returns at once.
        closer = threading.Thread(target=server.shutdown, daemon=True)
        closer.start()
        closer.join(0.005)
        while closer.is_alive() and time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                socket.create_connection((self.host, self.port), timeout=0.2).close()
            closer.join(0.02)

        # abort whatever is still open (in parallel: each blocking abort
        # waits for the peer to close and then sleeps 0.1 s)
        aborters = []
        for assoc in list(server.active_associations):
            rec = self._by_assoc.get(assoc)
            if rec is not None:
                rec._local_abort = True
            t = threading.Thread(target=self._abort_quietly, args=(assoc,), daemon=True)
            t.start()
            aborters.append((t, assoc))
        for t, assoc in aborters:
            t.join(max(deadline - time.monotonic(), 0.05))
            assoc.join(max(deadline - time.monotonic(), 0.05))

    @staticmethod
    def _abort_quietly(assoc: Any) -> None:
        with contextlib.suppress(Exception):
            assoc.abort(block=True)

    def __enter__(self) -> "QuerySCP":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- records -----------------------------------------------------------

    @property
    def requests(self) -> list[FindRecord]:
        """C-FIND requests received, oldest first (a copy of the list)."""
        with self._lock:
            return list(self._requests)

    @property
    def associations(self) -> list[AssociationRecord]:
        """Associations requested, oldest first (a copy of the list)."""
        with self._lock:
            return list(self._associations)

    @property
    def echoes(self) -> list[EchoRecord]:
        """C-ECHO requests received, oldest first (a copy of the list)."""
        with self._lock:
            return list(self._echoes)

    @property
    def cancels(self) -> list[CancelRecord]:
        """C-CANCEL requests received, oldest first (a copy of the list)."""
        with self._lock:
            return list(self._cancels)

    def reset(self) -> None:
        """Forget all records (knobs and data are kept)."""
        with self._lock:
            self._requests.clear()
            self._associations.clear()
            self._cancels.clear()
            self._echoes.clear()

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until every recorded association has ended."""
        deadline = time.monotonic() + timeout
        for rec in self.associations:
            if not rec.wait_ended(max(0.0, deadline - time.monotonic())):
                return False
        return True

    # -- event handlers ----------------------------------------------------

    def _record_for(self, assoc: Any) -> AssociationRecord | None:
        return self._by_assoc.get(assoc)

    def _on_conn_open(self, event: Any) -> None:
        with contextlib.suppress(Exception):
            sock = event.assoc.dul.socket.socket
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _on_requested(self, event: Any) -> None:
        assoc = event.assoc
        rq = assoc.requestor.primitive
        requested = [
            ContextRecord(
                int(cx.context_id), str(cx.abstract_syntax),
                tuple(str(ts) for ts in cx.transfer_syntax),
            )
            for cx in assoc.requestor.requested_contexts
        ]
        try:
            address = (str(assoc.requestor.address), int(assoc.requestor.port))
        except Exception:
            address = ("", 0)
        rec = AssociationRecord(
            calling_ae=str(rq.calling_ae_title).strip(),
            called_ae=str(rq.called_ae_title).strip(),
            address=address,
            max_pdu=assoc.requestor.maximum_length,
            requested_contexts=requested,
            extended_negotiation={
                str(k): bytes(v) for k, v in assoc.requestor.sop_class_extended.items()
            },
        )
        with self._lock:
            self._associations.append(rec)
            self._by_assoc[assoc] = rec

        reject = self.reject
        if reject is not None:
            rec._end("rejected")
            assoc.acse.send_reject(*reject)
            # what pynetdicom itself does after a reject: wait for the DUL
            # to send it and the peer to close, then stop the threads
            assoc.kill()
            return

        if self.accept_models is not None:
            models = self.accept_models
            models = [models] if isinstance(models, str) else models
            allowed = {MODEL_UIDS.get(m, m) for m in models}
            assoc.acceptor.supported_contexts = [
                cx for cx in assoc.acceptor.supported_contexts
                if cx.abstract_syntax in allowed
            ]

    def _on_sop_extended(self, event: Any) -> dict[str, bytes]:
        rec = self._record_for(event.assoc)
        if not self.accept_extended_negotiation:
            return {}
        qr_uids = {MODEL_UIDS[m] for m in _QR_MODELS}
        reply = {uid: info for uid, info in event.app_info.items() if uid in qr_uids}
        if rec is not None:
            rec.accepted_extended_negotiation = {str(k): bytes(v) for k, v in reply.items()}
        return reply

    def _on_established(self, event: Any) -> None:
        rec = self._record_for(event.assoc)
        if rec is None:
            return

        def conv(cx: Any) -> ContextRecord:
            return ContextRecord(
                int(cx.context_id), str(cx.abstract_syntax),
                tuple(str(ts) for ts in cx.transfer_syntax[:1] if cx.result == 0),
            )

        rec.accepted_contexts = [conv(cx) for cx in event.assoc.accepted_contexts]
        rec.rejected_contexts = [conv(cx) for cx in event.assoc.rejected_contexts]

    def _on_released(self, event: Any) -> None:
        rec = self._record_for(event.assoc)
        if rec is not None:
            rec._end("released", upgrade=True)

    def _on_aborted(self, event: Any) -> None:
        rec = self._record_for(event.assoc)
        if rec is not None:
            rec._end("aborted-by-scp" if rec._local_abort else "aborted", upgrade=True)

    def _on_conn_close(self, event: Any) -> None:
        rec = self._record_for(event.assoc)
        if rec is not None:
            assoc = event.assoc
            if assoc.is_released:
                rec._end("released")
            elif rec._local_abort:
                rec._end("aborted-by-scp")
            elif assoc.is_aborted:
                rec._end("aborted")
            else:
                rec._end("closed")

    def _on_dimse_recv(self, event: Any) -> None:
        # Runs in the DUL thread, in the order messages arrive -- before the
        # reactor thread starts the handler for a C-FIND-RQ.
        cs = getattr(event.message, "command_set", None)
        rec = self._record_for(event.assoc)
        if cs is None or rec is None:
            return
        if cs.get("CommandField") == 0x0020:  # C-FIND-RQ
            rec._inflight.add(int(cs.MessageID))
            return
        if cs.get("CommandField") != 0x0FFF:  # C-CANCEL-RQ
            return
        msg_id = int(cs.MessageIDBeingRespondedTo)
        # pynetdicom itself clears its C-CANCELs before and after each
        # request, losing one that arrives before the handler starts
        stale = msg_id not in rec._inflight
        if not stale:
            rec._cancelled.add(msg_id)
        request = rec._active.get(msg_id)
        cancel = CancelRecord(
            message_id=msg_id,
            calling_ae=rec.calling_ae,
            after_responses=request.responses if request is not None else None,
            stale=stale,
            request=request,
        )
        with self._lock:
            self._cancels.append(cancel)

    # -- C-ECHO ------------------------------------------------------------

    def _on_echo(self, event: Any) -> int:
        assoc = event.assoc
        arec = self._record_for(assoc)
        cx_id, _, ts = event.context
        rec = EchoRecord(
            calling_ae=arec.calling_ae if arec else "",
            called_ae=arec.called_ae if arec else "",
            message_id=int(event.request.MessageID),
            context_id=int(cx_id),
            transfer_syntax=str(ts),
            association=arec,
        )
        with self._lock:
            self._echoes.append(rec)
            if arec is not None:
                arec.echoes.append(rec)
        abort_after, delay = self.echo_abort_after, self.echo_delay
        if abort_after is not None and arec is not None and len(arec.echoes) > abort_after:
            self._abort(assoc)
            return 0x0000  # not sent: pynetdicom sees the association ended
        if delay and self._stop.wait(delay):
            self._halt(assoc)
            return 0x0000
        if not assoc.is_established:
            return 0x0000  # the requestor gave up (DIMSE timeout) meanwhile
        status = 0x0000 if self.echo_status is None else int(self.echo_status)
        rec.status = status
        return status

    # -- C-FIND ------------------------------------------------------------

    def _on_find(self, event: Any) -> Iterator[tuple[Any, Dataset | None]]:
        assoc = event.assoc
        arec = self._record_for(assoc)
        req = event.request
        cx_id, abstract, ts = event.context
        model = _MODEL_BY_UID.get(str(abstract), "?")
        try:
            identifier: Dataset | None = event.identifier
            assert identifier is not None
            identifier.walk(lambda ds, elem: None)  # decode everything now
        except Exception as exc:  # undecodable identifier
            identifier = None
            decode_error: str | None = f"cannot decode identifier: {exc}"
        else:
            decode_error = None
        rec = FindRecord(
            identifier=identifier,
            sop_class_uid=str(req.AffectedSOPClassUID),
            model=model,
            calling_ae=arec.calling_ae if arec else "",
            called_ae=arec.called_ae if arec else "",
            message_id=int(req.MessageID),
            priority=int(req.Priority),
            context_id=int(cx_id),
            transfer_syntax=str(ts),
            association=arec,
        )
        with self._lock:
            self._requests.append(rec)
            if arec is not None:
                arec.requests.append(rec)
                arec._active[rec.message_id] = rec
        try:
            if decode_error is not None or identifier is None:
                yield from self._final(rec, _status_ds(0xC000, decode_error))
                return
            try:
                matches = self._matches(model, identifier, arec)
            except _Failure as failure:
                yield from self._final(rec, _status_ds(failure.status, failure.comment))
                return
            yield from self._respond(event, rec, identifier, matches)
        finally:
            self._finish(rec)

    @staticmethod
    def _finish(rec: FindRecord) -> None:
        """The request is answered (or never will be): late C-CANCELs for
        its message ID are stale from now on."""
        if arec := rec.association:
            arec._active.pop(rec.message_id, None)
            arec._inflight.discard(rec.message_id)
            arec._cancelled.discard(rec.message_id)
        rec._done.set()

    def _final(
        self, rec: FindRecord, status: Dataset, assoc: Any = None
    ) -> Iterator[tuple[Any, Dataset | None]]:
        rec.status = int(status.Status)
        self._finish(rec)
        yield (status, None)
        # Only reached for statuses pynetdicom classes as *warning*: it sent
        # ours and carries on, and would append a Success response of its
        # own after the handler ends -- a second final response that a client
        # takes as the answer to its next query.  pynetdicom skips that when
        # the association looks ended, so pretend for the moment it returns,
        # and undo it when it closes this generator (synchronously, in the
        # same thread, as soon as it drops its reference).
        if assoc is None:
            return
        assoc.is_established = False
        try:
            yield (0xFF00, Dataset())  # never sent
        finally:
            assoc.is_established = True

    def _respond(
        self, event: Any, rec: FindRecord, identifier: Dataset, matches: list[Dataset]
    ) -> Iterator[tuple[Any, Dataset | None]]:
        assoc = event.assoc
        repeat, delay = self.repeat_matches, self.response_delay
        abort_after, hang_after = self.abort_after, self.hang_after
        final, honour = self.final_status, self.honour_cancel
        if repeat is not None:
            pool = matches or [identifier]
            matches = list(itertools.islice(itertools.cycle(pool), repeat))

        def cancelled() -> bool:
            if rec.cancelled_after is None:
                seen = event.is_cancelled  # also pops pynetdicom's copy
                if arec := rec.association:
                    # pynetdicom drops a C-CANCEL that arrives before the
                    # handler starts; our own bookkeeping does not
                    seen = rec.message_id in arec._cancelled
                if seen:
                    rec.cancelled_after = rec.responses
            return rec.cancelled_after is not None

        for match in itertools.chain(matches, [None]):
            if self._stop.is_set():
                self._halt(assoc)
                return
            if abort_after is not None and rec.responses >= abort_after:
                self._abort(assoc)
                return
            if hang_after is not None and rec.responses >= hang_after:
                self._hang(assoc)
                return
            if match is None:
                break
            if delay and self._stop.wait(delay):
                self._halt(assoc)
                return
            if cancelled() and honour:
                yield from self._final(rec, _status_ds(0xFE00))
                return
            rec.responses += 1
            yield (0xFF00, match)

        if cancelled() and honour:
            yield from self._final(rec, _status_ds(0xFE00))
            return
        if final is None or final == 0:
            rec.status = 0
            self._finish(rec)
            return  # pynetdicom sends Success
        yield from self._final(rec, _status_ds(final), assoc)

    def _abort(self, assoc: Any) -> None:
        rec = self._record_for(assoc)
        if rec is not None:
            rec._local_abort = True
        # explicit block=True: `assoc.abort` is swapped between its blocking
        # and non-blocking variants by whichever thread triggers an event
        assoc.abort(block=True)

    def _halt(self, assoc: Any) -> None:
        """stop() is aborting this association: make sure pynetdicom sends
        nothing more for the current request."""
        if not wait_for(lambda: not assoc.is_established, 2.0):
            assoc.is_established = False

    def _hang(self, assoc: Any) -> None:
        """Send nothing until the peer goes away, releases, or stop()."""
        while not self._stop.wait(0.02):
            if assoc.acse.is_aborted() or not assoc.dul.is_alive():
                # the peer aborted or dropped the connection: keep pynetdicom
                # from sending the final response on a dead association
                assoc.is_established = False
                return
            if isinstance(assoc.dul.peek_next_pdu(), A_RELEASE):
                return  # let pynetdicom finish the request and the release
        self._halt(assoc)

    # -- matching ----------------------------------------------------------

    def _matches(
        self, model: str, identifier: Dataset, arec: AssociationRecord | None
    ) -> list[Dataset]:
        uid = MODEL_UIDS.get(model, "")
        flags = (
            (arec.ext_flag(uid, 0), arec.ext_flag(uid, 1), arec.ext_flag(uid, 2))
            if arec is not None else (False, False, False)
        )
        relational, dt_matching, fuzzy = flags
        data = self.data
        if model in _QR_MODELS:
            return self._match_qr(
                model, identifier, list(data.instances), relational, dt_matching, fuzzy
            )
        if model == "worklist":
            return self._match_flat(identifier, list(data.worklist), dt_matching, fuzzy)
        if model == "ups":
            return self._match_flat(identifier, list(data.ups), dt_matching, fuzzy)
        raise _Failure(0xA900, f"unsupported SOP class {uid}")

    def _match_flat(
        self, identifier: Dataset, items: list[Dataset], dt_matching: bool, fuzzy: bool
    ) -> list[Dataset]:
        out = []
        for item in items:
            if not self._entity_matches(identifier, item, [item], dt_matching, fuzzy, None):
                continue
            rsp = Dataset()
            for q in identifier:
                if q.tag.group in (0x0000, 0x0002) or q.keyword in (
                    "SpecificCharacterSet", "QueryRetrieveLevel"
                ):
                    continue
                rsp.add(self._special(q) or _answer_element(q, item.get(q.tag), fuzzy))
            if "SpecificCharacterSet" in item:
                rsp.SpecificCharacterSet = item.SpecificCharacterSet
            out.append(rsp)
        return out

    def _special(self, q: DataElement) -> DataElement | None:
        if q.keyword == "RetrieveAETitle":
            return DataElement(q.tag, "AE", self.ae_title)
        if q.keyword == "InstanceAvailability":
            return DataElement(q.tag, "CS", "ONLINE")
        return None

    def _entity_matches(
        self,
        identifier: Dataset,
        view: Dataset,
        members: list[Dataset],
        dt_matching: bool,
        fuzzy: bool,
        lower: tuple[str, int] | None,
    ) -> bool:
        """`view`: the entity's attributes; `members`: its instances (for
        relational matching of lower-level keys); `lower`: (model, level) when
        keys below the level should be matched against members."""
        handled: set[str] = set()
        if dt_matching:
            res = _match_combined(identifier, view)
            if res == ["!"]:
                return False
            handled.update(res)
        lower_keys = []
        for q in identifier:
            kw = q.keyword or keyword_for_tag(q.tag)
            if q.tag.group in (0x0000, 0x0002) or kw in _NOT_MATCHED or kw in handled:
                continue
            if lower is not None and _level_index(kw, lower[0]) > lower[1]:
                lower_keys.append(q)
                continue
            if not _match_element(q, view.get(q.tag), fuzzy):
                return False
        if lower_keys:
            return any(
                all(_match_element(q, m.get(q.tag), fuzzy) for q in lower_keys)
                for m in members
            )
        return True

    def _match_qr(
        self,
        model: str,
        identifier: Dataset,
        instances: list[Dataset],
        relational: bool,
        dt_matching: bool,
        fuzzy: bool,
    ) -> list[Dataset]:
        level_name = str(identifier.get("QueryRetrieveLevel", "") or "").strip().upper()
        if not level_name:
            raise _Failure(0xA900, "QueryRetrieveLevel missing or empty")
        levels = _MODEL_LEVELS[model]
        if level_name not in levels:
            raise _Failure(0xA900, f"QueryRetrieveLevel {level_name} invalid for model")
        level = _LEVELS.index(level_name)
        hierarchy = [_LEVELS.index(lv) for lv in levels if _LEVELS.index(lv) <= level]
        if self.strict_hierarchy and not relational:
            for lv in hierarchy[:-1]:
                key = _UNIQUE[_LEVELS[lv]]
                if not _values(identifier.get(key)):
                    raise _Failure(0xA900, f"unique key {key} missing")

        groups: dict[tuple[str, ...], list[Dataset]] = {}
        for ds in instances:
            key = tuple(str(ds.get(_UNIQUE[_LEVELS[lv]], "")) for lv in hierarchy)
            groups.setdefault(key, []).append(ds)
        computed = _computed(instances)

        # keys below the query level: matched only with relational queries
        lower = (model, level) if relational else None
        out = []
        for members in groups.values():
            view = _entity_view(members[0], model, level, computed)
            if not relational:
                ident = Dataset()
                for q in identifier:
                    kw = q.keyword or keyword_for_tag(q.tag)
                    if _level_index(kw, model) <= level or kw in _NOT_MATCHED:
                        ident.add(q)
            else:
                ident = identifier
            if not self._entity_matches(ident, view, members, dt_matching, fuzzy, lower):
                continue
            rsp = Dataset()
            for q in identifier:
                kw = q.keyword
                if q.tag.group in (0x0000, 0x0002) or kw == "SpecificCharacterSet":
                    continue
                if kw == "QueryRetrieveLevel":
                    rsp.QueryRetrieveLevel = level_name
                    continue
                special = self._special(q)
                if special is not None:
                    rsp.add(special)
                elif _level_index(kw, model) <= level:
                    rsp.add(_answer_element(q, view.get(q.tag), fuzzy))
                else:
                    rsp.add(_empty_like(q))
            if "QueryRetrieveLevel" not in rsp:
                rsp.QueryRetrieveLevel = level_name
            if "SpecificCharacterSet" in view:
                rsp.SpecificCharacterSet = view.SpecificCharacterSet
            out.append(rsp)
        return out
