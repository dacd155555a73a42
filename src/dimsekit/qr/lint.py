"""Query lint: what a peer would silently ignore, misread or refuse in a
C-FIND identifier, said before it is sent.

    for warning in lint_query(query):              # a prepared Query
        print("W:", warning)

Each rule is a function of the identifier, its information model and
whether relational queries were asked for; each says what is wrong and
what to do instead, citing PS3.4 where it helps.  None fires on the
reference manuals' examples nor on DCMTK's example worklist queries
(tests/test_lint_rules.py).  Nothing here prints.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

from dimsekit.qr.models import LEVELS, QR_MODELS, UNIQUE_KEYS

#: keys of one level only (PS3.4 C.6.1.1 and C.6.2.1), with what to ask
#: for instead at a higher level
_LEVEL_OF = {
    # SERIES
    "Modality": ("SERIES", "ModalitiesInStudy"),
    "SeriesNumber": ("SERIES", None),
    "SeriesInstanceUID": ("SERIES", None),
    "SeriesDescription": ("SERIES", None),
    "SeriesDate": ("SERIES", None),
    "SeriesTime": ("SERIES", None),
    "BodyPartExamined": ("SERIES", None),
    "PerformedProcedureStepStartDate": ("SERIES", None),
    "NumberOfSeriesRelatedInstances": ("SERIES", None),
    # IMAGE
    "SOPInstanceUID": ("IMAGE", None),
    "SOPClassUID": ("IMAGE", "SOPClassesInStudy"),
    "InstanceNumber": ("IMAGE", None),
    "ContentDate": ("IMAGE", None),
    "ContentTime": ("IMAGE", None),
    "AcquisitionDate": ("IMAGE", None),
    "ImageType": ("IMAGE", None),
    "Rows": ("IMAGE", None),
    "Columns": ("IMAGE", None),
    "NumberOfFrames": ("IMAGE", None),
    # STUDY
    "StudyDate": ("STUDY", None),
    "StudyTime": ("STUDY", None),
    "AccessionNumber": ("STUDY", None),
    "StudyID": ("STUDY", None),
    "StudyInstanceUID": ("STUDY", None),
    "StudyDescription": ("STUDY", None),
    "ModalitiesInStudy": ("STUDY", None),
    "ReferringPhysicianName": ("STUDY", None),
    "NumberOfStudyRelatedSeries": ("STUDY", None),
    "NumberOfStudyRelatedInstances": ("STUDY", None),
}

_DA = re.compile(r"\d{8}\Z")
_TM = re.compile(r"(\d{2})(\d{2}(\d{2}(\.\d{1,6})?)?)?\Z")
_DT = re.compile(r"\d{4}(\d{2}(\d{2}(\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?)?)?)?([+-]\d{4})?\Z")
_WILD = re.compile(r"[*?]")
#: PS3.5 6.2: PN has no control characters but ESC (for ISO 2022)
_PN_BAD = re.compile(r"[\x00-\x1a\x1c-\x1f\x7f]")


def _elements(ds: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    for elem in ds:
        name = elem.keyword or f"({elem.tag.group:04X},{elem.tag.element:04X})"
        where = f"{path}{name}"
        if elem.VR == "SQ":
            for i, item in enumerate(elem.value or []):
                yield from _elements(item, f"{where}[{i}].")
        else:
            yield where, elem


def _text(elem: Any) -> str | None:
    value = elem.value
    if value is None or value == "" or isinstance(value, (bytes, bytearray)):
        return None
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)
    return str(value)


def _single_valued(tag: Any) -> bool:
    """The dictionary gives the attribute one value (VM 1): several are
    list matching, which C-FIND has for UIDs only.  An attribute of VM > 1
    (AcquisitionIndex=1\\2\\3) just has several values."""
    from pydicom.datadict import dictionary_VM

    try:
        return bool(dictionary_VM(tag) == "1")
    except KeyError:  # private or unknown: nothing to go on
        return False


def _valid_date(text: str) -> bool:
    if not _DA.match(text):
        return False
    month, day = int(text[4:6]), int(text[6:8])
    return 1 <= month <= 12 and 1 <= day <= 31


def _range_problem(vr: str, text: str) -> str | None:
    """What is wrong with a DA/TM/DT value or range, or None."""
    if _WILD.search(text):
        return None if text == "*" else f"wildcards do not apply to {vr} (PS3.4 C.2.2.2.4)"
    hint = {"DA": "YYYYMMDD (e.g. 20240101) or a range (20240101-20240131)",
            "TM": "HHMMSS (e.g. 0930 or 093000) or a range (0800-1200)",
            "DT": "YYYYMMDDHHMMSS or a range of two"}[vr]
    parts = text.split("-") if vr != "DT" else _dt_parts(text)
    if parts is None or len(parts) > 2:
        return f"not {hint}"
    checks: dict[str, Callable[[str], Any]] = {"DA": _valid_date, "TM": _TM.match,
                                               "DT": _DT.match}
    check = checks[vr]
    ok = all(p == "" or check(p) for p in parts)
    if not ok or parts == ["", ""]:
        return f"not {hint}"
    if len(parts) == 2 and parts[0] and parts[1] and parts[0] > parts[1]:
        return f"the range ends before it starts ({parts[0]} > {parts[1]})"
    return None


def _dt_parts(text: str) -> list[str] | None:
    """A DT range split on its range '-', not on a UTC offset's."""
    if text.count("-") == 0:
        return [text]
    m = re.fullmatch(r"([^-]*?(?:[+-]\d{4})?)-([^-]*(?:[+-]\d{4})?)", text)
    if m is None:
        return None
    return [m.group(1), m.group(2)]


def _pn_problem(text: str) -> str | None:
    for group in text.split("="):
        if group.count("^") > 4:
            return "more than five components (family^given^middle^prefix^suffix)"
    if text.count("=") > 2:
        return "more than three component groups (alphabetic=ideographic=phonetic)"
    if _PN_BAD.search(text):
        return "a control character"
    return None


def _a(word: str) -> str:
    return f"{'an' if word[:1] in 'AEIOU' else 'a'} {word}"


def lint_query(query: Any, *, relational: bool = False) -> list[str]:
    """The warnings for one prepared query (``query.identifier``,
    ``query.model``, ``query.label``), each one line."""
    ds = query.identifier
    model = query.model.name
    label = f"query {query.label}"
    out: list[str] = []
    level_elem = ds.get("QueryRetrieveLevel")
    level = str(level_elem).strip().upper() if level_elem is not None else None
    if model in QR_MODELS and not level:
        out.append(f"{label}: no QueryRetrieveLevel: a Q/R peer needs one (-L LEVEL or "
                   f"-k QueryRetrieveLevel=STUDY)")
    for where, elem in _elements(ds):
        text = _text(elem)
        if text is None:
            continue
        vr = elem.VR
        if "\\" in text and vr != "UI" and _single_valued(elem.tag):
            out.append(f"{label}: {where} has several values ({text}): in C-FIND only UIDs "
                       f"take a list of values (PS3.4 C.2.2.2.2); send one query per value")
        if vr == "UI" and _WILD.search(text):
            out.append(f"{label}: {where} = {text}: UIDs match exactly, wildcards are not "
                       f"allowed (PS3.4 C.2.2.2.2)")
        if vr in ("DA", "TM", "DT") and "\\" not in text:
            problem = _range_problem(vr, text)
            if problem:
                out.append(f"{label}: {where} = {text}: {problem}")
        if vr == "PN":
            problem = _pn_problem(text)
            if problem:
                out.append(f"{label}: {where} = {text!r}: a person name with {problem}")
    if model in QR_MODELS and level in LEVELS:
        rank = LEVELS.index(level)
        for elem in ds:
            found = _LEVEL_OF.get(elem.keyword)
            if found is None or LEVELS.index(found[0]) <= rank:
                continue
            key_level, instead = found
            hint = f" (ask for {instead})" if instead else ""
            out.append(f"{label}: {elem.keyword} is {_a(key_level)}-level key: {_a(level)} "
                       f"query does not match on it{hint}")
        if not relational and rank >= 2:
            top = 0 if model == "patient" else 1
            for parent in LEVELS[top:rank]:
                key = UNIQUE_KEYS[parent]
                value = ds.get(key)
                text = None if value is None else str(getattr(value, "value", value) or "")
                if not text or "\\" in text or _WILD.search(text):
                    out.append(f"{label}: {_a(level)} query without one {key} (the {parent} "
                               f"it belongs to): a hierarchical query needs the unique key "
                               f"of each level above (PS3.4 C.4.1.2.1), or --relational-query")
    return out
