"""Query lint (dimsekit.qr.lint): each rule fires on what it is about, and
none fires on the reference manuals' examples nor on DCMTK's example
worklist queries."""

from __future__ import annotations

import pytest

from dimsekit.api import MODELS, lint_query, prepare_queries


def lint(*keys: str, model: str | None = None, relational: bool = False) -> list[str]:
    (query,) = prepare_queries([], keys, models=MODELS, model=model)
    return lint_query(query, relational=relational)


@pytest.mark.parametrize("keys, model, expected", [
    (["QueryRetrieveLevel=STUDY", "PatientName=DOE\\SMITH"], None,
     "PatientName has several values (DOE\\SMITH): in C-FIND only UIDs take a list"),
    (["QueryRetrieveLevel=STUDY", "StudyInstanceUID=1.2.3*"], None,
     "StudyInstanceUID = 1.2.3*: UIDs match exactly, wildcards are not allowed"),
    (["QueryRetrieveLevel=STUDY", "Modality=CT"], None,
     "Modality is a SERIES-level key: a STUDY query does not match on it (ask for "
     "ModalitiesInStudy)"),
    (["QueryRetrieveLevel=SERIES", "StudyInstanceUID=1.2", "SOPClassUID=1.2.3"], None,
     "SOPClassUID is an IMAGE-level key: a SERIES query does not match on it"),
    (["PatientName=DOE*"], "study",
     "no QueryRetrieveLevel: a Q/R peer needs one"),
    (["QueryRetrieveLevel=SERIES", "Modality=MR"], None,
     "a SERIES query without one StudyInstanceUID (the STUDY it belongs to)"),
    (["QueryRetrieveLevel=IMAGE", "StudyInstanceUID=1.2", "SeriesInstanceUID="], None,
     "an IMAGE query without one SeriesInstanceUID"),
    (["QueryRetrieveLevel=STUDY", "PatientID=P1", "StudyInstanceUID=1.2"], "patient", None),
    (["QueryRetrieveLevel=SERIES", "StudyInstanceUID=1.2"], "patient",
     "a SERIES query without one PatientID (the PATIENT it belongs to)"),
    (["QueryRetrieveLevel=STUDY", "StudyDate=2024-01-01"], None,
     "StudyDate = 2024-01-01: not YYYYMMDD"),
    (["QueryRetrieveLevel=STUDY", "StudyDate=20240101-20231231"], None,
     "StudyDate = 20240101-20231231: the range ends before it starts"),
    (["QueryRetrieveLevel=STUDY", "StudyDate=20241301"], None,
     "StudyDate = 20241301: not YYYYMMDD"),
    (["QueryRetrieveLevel=STUDY", "StudyTime=25h"], None, "StudyTime = 25h: not HHMMSS"),
    (["QueryRetrieveLevel=STUDY", "PatientName=A^B^C^D^E^F"], None,
     "a person name with more than five components"),
    (["QueryRetrieveLevel=STUDY", "PatientName=A=B=C=D"], None,
     "a person name with more than three component groups"),
])
def test_each_rule(keys, model, expected):
    found = lint(*keys, model=model)
    if expected is None:
        assert found == []
    else:
        assert len(found) == 1 and expected in found[0], found
        assert found[0].startswith("query -k: ")


def test_relational_queries_need_no_parent_keys():
    assert lint("QueryRetrieveLevel=IMAGE", "Modality=CT", relational=True) == []


@pytest.mark.parametrize("keys, model", [
    # DCMTK findscu's manual
    (["(0010,0010)=HEWETT*", "QueryRetrieveLevel=PATIENT", "PatientID="], "patient"),
    (["PatientName=HEWETT*", "QueryRetrieveLevel=PATIENT"], "patient"),
    (["(0040,0100)[0].Modality=CT"], "worklist"),
    # pynetdicom findscu's manual
    (["QueryRetrieveLevel=PATIENT", "PatientName="], None),
    (["(0008,0052)=PATIENT", "(0010,0010)="], None),
    (["OtherPatientIDsSequence[2].PatientID=12345678"], "worklist"),
    (["PatientName=Citizen^Jan", "QueryRetrieveLevel=PATIENT"], None),
    (["Columns=1024", "QueryRetrieveLevel=IMAGE", "StudyInstanceUID=1.2",
      "SeriesInstanceUID=1.2.3"], "study"),
    (["PixelData=00FFEA08"], "worklist"),
    (["AcquisitionIndex=1\\2\\3\\4"], "worklist"),
    (["BeamSequence=", "(300a,00b0)=", "BeamSequence[3]="], "worklist"),
    (["BeamSequence[0].PatientName=CITIZEN^Jan"], "worklist"),
    (["BeamSequence[0].BeamLimitingDeviceSequence[0].NumberOfLeafJawPairs=1"], "worklist"),
    (["StudyDate=20240101-", "QueryRetrieveLevel=STUDY", "StudyTime=0800-1200"], None),
    (["ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate=20240101-20240131",
      "ScheduledProcedureStepSequence[0].ScheduledStationAETitle=CT01"], "worklist"),
])
def test_no_rule_fires_on_the_manuals_examples(keys, model):
    assert lint(*keys, model=model) == []


def test_no_rule_fires_on_dcmtks_example_worklist_queries(worklist_queries):
    queries = prepare_queries([str(p) for p in worklist_queries], models=MODELS,
                              model="worklist")
    assert len(queries) == 13
    assert [w for q in queries for w in lint_query(q)] == []
