"""C-FIND matching: which datasets answer an identifier, and what they hold.

The matching engine of :class:`~dimsekit.testing.QuerySCP`, free of any
networking: :func:`find_matches` takes a C-FIND identifier, the name of the
information model it was sent for and the data to search
(:class:`~dimsekit.testing.sampledata.SampleData`), and returns the
identifiers of the pending responses, in data order -- or raises
:class:`MatchFailure` with the failure status the peer should answer.

* Patient Root, Study Root and Patient/Study Only (``"patient"``,
  ``"study"``, ``"psonly"``): the data are instances; the entities of the
  query level are found by grouping them on the unique keys of the levels
  down to it, and the computed attributes (``NumberOfStudyRelatedSeries``,
  ``ModalitiesInStudy``, ...) are derived from them.  Keys below the query
  level are answered empty, and only filter when relational queries were
  negotiated (``relational``); with ``strict_hierarchy`` a query that lacks
  the unique key of a level above its own fails (0xA900).
* Modality Worklist and UPS (``"worklist"``, ``"ups"``): the data are flat
  items, matched one by one, sequence keys against their items.

Single values, wildcards (``*``, ``?``), lists of UIDs, date/time ranges and
universal (empty) keys follow PS3.4 C.2.2.2.  Matching is done on decoded
Python strings, so it is independent of the Specific Character Set the query
was encoded in (``M?LLER*`` finds ``MÜLLER^Hans``).  It is case-sensitive,
except for PN values with ``fuzzy`` semantic matching.  ``dt_matching``
matches date and time keys of one pair (``StudyDate`` and ``StudyTime``, ...)
as one date-time range.
"""

from __future__ import annotations

import copy
import re
from collections import Counter, defaultdict
from typing import Any

from pydicom.datadict import keyword_for_tag
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from dimsekit.testing.sampledata import SampleData

__all__ = ["QR_MODELS", "MatchFailure", "find_matches"]

#: the hierarchical query/retrieve models (the others: "worklist", "ups")
QR_MODELS = ("patient", "study", "psonly")


class MatchFailure(Exception):
    """The query cannot be answered: the peer sends failure ``status``
    (e.g. 0xA900, Identifier does not match SOP Class) with ``comment``."""

    def __init__(self, status: int, comment: str) -> None:
        super().__init__(comment)
        self.status = status
        self.comment = comment


def find_matches(
    model: str,
    identifier: Dataset,
    data: SampleData,
    *,
    relational: bool = False,
    dt_matching: bool = False,
    fuzzy: bool = False,
    strict_hierarchy: bool = False,
    retrieve_ae_title: str = "",
) -> list[Dataset]:
    """The pending-response identifiers for C-FIND `identifier` in `model`.

    `relational`, `dt_matching` and `fuzzy` are the extended negotiation
    flags accepted for the model; `retrieve_ae_title` answers a
    ``RetrieveAETitle`` key (``InstanceAvailability`` is always ``ONLINE``).
    Raises :class:`MatchFailure` for a query the model cannot answer.
    """
    if model in QR_MODELS:
        return _match_qr(
            model, identifier, list(data.instances), relational=relational,
            dt_matching=dt_matching, fuzzy=fuzzy, strict_hierarchy=strict_hierarchy,
            retrieve_ae_title=retrieve_ae_title,
        )
    if model in ("worklist", "ups"):
        items = list(data.worklist if model == "worklist" else data.ups)
        return _match_flat(identifier, items, dt_matching, fuzzy, retrieve_ae_title)
    raise MatchFailure(0xA900, f"no matching for model {model!r}")


# --------------------------------------------------------------------------
# entities: flat items, and Q/R entities grouped from instances


def _match_flat(
    identifier: Dataset,
    items: list[Dataset],
    dt_matching: bool,
    fuzzy: bool,
    retrieve_ae_title: str,
) -> list[Dataset]:
    out = []
    for item in items:
        if not _entity_matches(identifier, item, [item], dt_matching, fuzzy, None):
            continue
        rsp = Dataset()
        for q in identifier:
            if q.tag.group in (0x0000, 0x0002) or q.keyword in (
                "SpecificCharacterSet", "QueryRetrieveLevel"
            ):
                continue
            rsp.add(
                _special(q, retrieve_ae_title) or _answer_element(q, item.get(q.tag), fuzzy)
            )
        if "SpecificCharacterSet" in item:
            rsp.SpecificCharacterSet = item.SpecificCharacterSet
        out.append(rsp)
    return out


def _special(q: DataElement, retrieve_ae_title: str) -> DataElement | None:
    """The answer to a key that is not taken from the data, else None."""
    if q.keyword == "RetrieveAETitle":
        return DataElement(q.tag, "AE", retrieve_ae_title)
    if q.keyword == "InstanceAvailability":
        return DataElement(q.tag, "CS", "ONLINE")
    return None


def _entity_matches(
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
    model: str,
    identifier: Dataset,
    instances: list[Dataset],
    *,
    relational: bool,
    dt_matching: bool,
    fuzzy: bool,
    strict_hierarchy: bool,
    retrieve_ae_title: str,
) -> list[Dataset]:
    level_name = str(identifier.get("QueryRetrieveLevel", "") or "").strip().upper()
    if not level_name:
        raise MatchFailure(0xA900, "QueryRetrieveLevel missing or empty")
    levels = _MODEL_LEVELS[model]
    if level_name not in levels:
        raise MatchFailure(0xA900, f"QueryRetrieveLevel {level_name} invalid for model")
    level = _LEVELS.index(level_name)
    hierarchy = [_LEVELS.index(lv) for lv in levels if _LEVELS.index(lv) <= level]
    if strict_hierarchy and not relational:
        for lv in hierarchy[:-1]:
            key = _UNIQUE[_LEVELS[lv]]
            if key not in identifier or not _values(identifier.data_element(key)):
                raise MatchFailure(0xA900, f"unique key {key} missing")

    groups: dict[tuple[str, ...], list[Dataset]] = {}
    for ds in instances:
        entity = tuple(str(ds.get(_UNIQUE[_LEVELS[lv]], "")) for lv in hierarchy)
        groups.setdefault(entity, []).append(ds)
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
        if not _entity_matches(ident, view, members, dt_matching, fuzzy, lower):
            continue
        rsp = Dataset()
        for q in identifier:
            kw = q.keyword
            if q.tag.group in (0x0000, 0x0002) or kw == "SpecificCharacterSet":
                continue
            if kw == "QueryRetrieveLevel":
                rsp.QueryRetrieveLevel = level_name
                continue
            special = _special(q, retrieve_ae_title)
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


# --------------------------------------------------------------------------
# levels, keys and attributes

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
_PATIENT_ATTRS = frozenset((
    "PatientName", "PatientID", "IssuerOfPatientID",
    "IssuerOfPatientIDQualifiersSequence", "PatientBirthDate", "PatientBirthTime",
    "PatientSex", "OtherPatientIDsSequence", "OtherPatientNames", "EthnicGroup",
    "PatientComments", "PatientSpeciesDescription", "PatientBreedDescription",
    "ResponsiblePerson", "PatientIdentityRemoved", "NumberOfPatientRelatedStudies",
    "NumberOfPatientRelatedSeries", "NumberOfPatientRelatedInstances",
))
_STUDY_ATTRS = frozenset((
    "StudyInstanceUID", "StudyDate", "StudyTime", "AccessionNumber",
    "IssuerOfAccessionNumberSequence", "StudyID", "StudyDescription",
    "ReferringPhysicianName", "PhysiciansOfRecord", "NameOfPhysiciansReadingStudy",
    "ProcedureCodeSequence", "ModalitiesInStudy", "SOPClassesInStudy",
    "AnatomicRegionsInStudyCodeSequence", "NumberOfStudyRelatedSeries",
    "NumberOfStudyRelatedInstances", "AdmittingDiagnosesDescription", "PatientAge",
    "PatientSize", "PatientWeight", "Occupation", "AdditionalPatientHistory",
    "OtherStudyNumbers",
))
_SERIES_ATTRS = frozenset((
    "SeriesInstanceUID", "Modality", "SeriesNumber", "SeriesDescription",
    "SeriesDate", "SeriesTime", "BodyPartExamined", "Laterality",
    "PerformedProcedureStepStartDate", "PerformedProcedureStepStartTime",
    "RequestAttributesSequence", "ProtocolName", "OperatorsName",
    "PerformingPhysicianName", "InstitutionName", "StationName", "Manufacturer",
    "NumberOfSeriesRelatedInstances",
))
# keys that are answered specially, never matched against the data
_NOT_MATCHED = frozenset((
    "QueryRetrieveLevel", "SpecificCharacterSet", "RetrieveAETitle",
    "InstanceAvailability", "TimezoneOffsetFromUTC", "QueryRetrieveView",
))
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
_TEXT_VRS = frozenset(("AE", "AS", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UT", "UR"))


def _level_index(keyword: str, model: str) -> int:
    """Index into _LEVELS of the level an attribute belongs to."""
    if keyword in _PATIENT_ATTRS:
        return 1 if model == "study" else 0
    if keyword in _STUDY_ATTRS:
        return 1
    if keyword in _SERIES_ATTRS:
        return 2
    return 3


# --------------------------------------------------------------------------
# values and element matching


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


# --------------------------------------------------------------------------
# response identifiers


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


# --------------------------------------------------------------------------
# computed attributes of Q/R entities

#: computed attribute -> the unique key of the entity it describes
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
