"""The information models and extended-negotiation flags of C-FIND,
and the rule that picks a model when no flag is given."""

from __future__ import annotations

from dimsekit.records import ExtendedNegotiationFlag, InformationModel

SERVICE = "find"

MODELS = (
    InformationModel("worklist", "1.2.840.10008.5.1.4.31", SERVICE, ("-W", "--worklist"),
                     "use modality worklist information model"),
    InformationModel("patient", "1.2.840.10008.5.1.4.1.2.1.1", SERVICE,
                     ("-P", "--patient"), "use patient root information model",
                     levels=("PATIENT", "STUDY", "SERIES", "IMAGE")),
    InformationModel("study", "1.2.840.10008.5.1.4.1.2.2.1", SERVICE, ("-S", "--study"),
                     "use study root information model",
                     levels=("STUDY", "SERIES", "IMAGE")),
    InformationModel("psonly", "1.2.840.10008.5.1.4.1.2.3.1", SERVICE, ("-O", "--psonly"),
                     "use patient/study only information model",
                     levels=("PATIENT", "STUDY")),
    InformationModel("ups", "1.2.840.10008.5.1.4.34.6.3", SERVICE, ("-U", "--ups"),
                     "use unified procedure step pull information model"),
)

_QR = ("patient", "study", "psonly")
#: the hierarchical Q/R models (relational only when negotiated)
QR_MODELS = frozenset(_QR)
#: the Q/R levels, top down
LEVELS = ("PATIENT", "STUDY", "SERIES", "IMAGE")
#: the unique key of each Q/R level (PS3.4 C.6)
UNIQUE_KEYS = {"PATIENT": "PatientID", "STUDY": "StudyInstanceUID",
               "SERIES": "SeriesInstanceUID", "IMAGE": "SOPInstanceUID"}
#: the models that take PS3.4 C.5 (Q/R) byte layout; UPS gets it too, as
#: pynetdicom's findscu sends it (every model but the worklist)
_C5 = (*_QR, "ups")

# PS3.4 Table C.5-1 (Q/R FIND extended negotiation); byte_index is 0-based.
# The worklist (PS3.4 K.5.1) has fuzzy matching and timezone adjustment at the
# same bytes 2 and 3; its bytes 0 and 1 are reserved and always 1 (RESERVED).
FLAGS = (
    ExtendedNegotiationFlag("relational-query", SERVICE, 0,
                            "request the use of relational queries (not with -W)", _C5),
    ExtendedNegotiationFlag("dt-matching", SERVICE, 1,
                            "request the use of date-time matching (not with -W)", _C5),
    ExtendedNegotiationFlag("fuzzy-names", SERVICE, 2,
                            "request the use of fuzzy semantic matching of person names",
                            (*_C5, "worklist")),
    ExtendedNegotiationFlag("timezone-adj", SERVICE, 3,
                            "request the use of timezone query adjustment",
                            (*_C5, "worklist")),
    ExtendedNegotiationFlag("enhanced-conversion", SERVICE, 4,
                            "request the use of enhanced multi-frame image conversion "
                            "(not with -W)", _C5),
)

#: bytes a model's application information always has set, whatever was
#: requested: PS3.4 K.5.1 "01 01 <fuzzy> <timezone>" for the worklist
RESERVED: dict[str, dict[int, int]] = {"worklist": {0: 1, 1: 1}}


def infer_model(level: str | None) -> tuple[str, str]:
    """(model name, why) when no model flag was given (docs/find.md, "query information model")."""
    if level is None:
        return "worklist", "no QueryRetrieveLevel in the query"
    if level.strip().upper() == "PATIENT":
        return "patient", "QueryRetrieveLevel is PATIENT"
    return "study", f"QueryRetrieveLevel is {level.strip() or 'empty'}"


def application_information(flags, model: str, requested: set[str]) -> tuple[bytes, list[str]]:
    """The extended-negotiation bytes for ``model`` and the flags that do not apply.

    Nothing (``b""``) when no applicable flag was requested; otherwise one
    byte per applicable flag position (0 or 1) plus the model's reserved
    bytes -- byte for byte what pynetdicom's findscu sends:
    ``rq dt fz tz ec`` for Q/R and UPS, ``01 01 fz tz`` for the worklist.
    """
    applicable = [f for f in flags if not f.models or model in f.models]
    skipped = sorted(name for name in requested
                     if name not in {f.name for f in applicable})
    chosen = [f for f in applicable if f.name in requested]
    if not chosen:
        return b"", skipped
    fixed = RESERVED.get(model, {})
    size = max([f.byte_index for f in applicable] + list(fixed)) + 1
    info = bytearray(size)
    for index, value in fixed.items():
        info[index] = value
    for f in chosen:
        info[f.byte_index] = 1
    return bytes(info), skipped
