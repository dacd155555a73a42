"""Deterministic sample data for :class:`dimsekit.testing.QuerySCP`.

Everything here is built with pydicom from fixed tables, so every call
returns equal datasets (UIDs come from :func:`pydicom.uid.generate_uid` with
fixed entropy sources).  The data is small and only carries the attributes a
query needs; there is no pixel data.

* :func:`instances` -- one dataset per composite instance (image), each
  carrying its patient, study, series and instance attributes.  The Q/R
  levels (PATIENT, STUDY, SERIES, IMAGE) are derived from these by grouping
  on the unique keys.  4 patients, 6 studies, 10 series, 20 instances.
* :func:`worklist` -- 5 Modality Worklist items.
* :func:`ups` -- 3 Unified Procedure Step workitems (all SCHEDULED).
* :func:`sample_data` -- all three in a :class:`SampleData`.

One patient, ``MÜLLER^Hans``, has Specific Character Set ``ISO_IR 100``
(Latin-1) on all of his datasets; everything else is plain ASCII.

Tests should compute expected results from these datasets rather than
restating counts, so that the data can grow without breaking them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

__all__ = [
    "LATIN1_PATIENT_NAME",
    "SampleData",
    "instances",
    "sample_data",
    "uid",
    "ups",
    "worklist",
]

LATIN1_PATIENT_NAME = "MÜLLER^Hans"

# SOP classes of the (virtual) instances
_CT = "1.2.840.10008.5.1.4.1.1.2"  # CT Image Storage
_MR = "1.2.840.10008.5.1.4.1.1.4"  # MR Image Storage
_CR = "1.2.840.10008.5.1.4.1.1.1"  # Computed Radiography Image Storage
_MG = "1.2.840.10008.5.1.4.1.1.1.2"  # Digital Mammography X-Ray Image Storage - Presentation
_SR = "1.2.840.10008.5.1.4.1.1.88.22"  # Enhanced SR Storage
_UPS_PUSH = "1.2.840.10008.5.1.4.34.6.1"  # UPS Push SOP Class (the workitems' SOP class)


def uid(*parts: object) -> str:
    """Return the deterministic sample UID for `parts` (e.g. ``uid("study", 1)``)."""
    return generate_uid(entropy_srcs=["dimsekit-sample-data", *map(str, parts)])


# (PatientID, PatientName, PatientBirthDate, PatientSex, SpecificCharacterSet)
_PATIENTS = [
    ("PAT001", "DOE^John", "19700101", "M", None),
    ("PAT002", "SMITH^Jane", "19851215", "F", None),
    ("PAT003", LATIN1_PATIENT_NAME, "19601120", "M", "ISO_IR 100"),
    ("PAT004", "SMITHERS^Waylon", "19550505", "M", None),
]

# (PatientID, StudyDate, StudyTime, AccessionNumber, StudyID, StudyDescription,
#  ReferringPhysicianName, [(Modality, SeriesDescription, BodyPartExamined,
#  SOPClassUID, number of instances), ...])
_STUDIES = [
    ("PAT001", "20190312", "083000", "ACC1001", "S1001", "CT CHEST", "HOUSE^Gregory",
     [("CT", "AXIAL 5mm", "CHEST", _CT, 3), ("CT", "CORONAL MPR", "CHEST", _CT, 2)]),
    ("PAT001", "20200704", "141500", "ACC1002", "S1002", "MR BRAIN", "HOUSE^Gregory",
     [("MR", "T1 SAG", "HEAD", _MR, 2), ("MR", "T2 AX", "HEAD", _MR, 2)]),
    ("PAT002", "20200115", "101010", "ACC2001", "S2001", "CT ABDOMEN", "WILSON^James",
     [("CT", "PORTAL VENOUS", "ABDOMEN", _CT, 2), ("SR", "REPORT", "ABDOMEN", _SR, 1)]),
    ("PAT002", "20211130", "090000", "ACC2002", "S2002", "MAMMO SCREENING", "",
     [("MG", "CC/MLO", "BREAST", _MG, 2)]),
    ("PAT003", "20201224", "235959", "ACC3001", "S3001", "MRT Schädel", "BRÜHL^Anna",
     [("MR", "T1 nativ", "HEAD", _MR, 2), ("MR", "FLAIR", "HEAD", _MR, 1)]),
    ("PAT004", "20220601", "120000", "ACC4001", "S4001", "CR THORAX", "",
     [("CR", "PA", "CHEST", _CR, 3)]),
]

# (PatientID, AccessionNumber, RequestedProcedureID, RequestedProcedureDescription,
#  Modality, ScheduledStationAETitle, StartDate, StartTime,
#  ScheduledPerformingPhysicianName, ScheduledProcedureStepDescription)
_WORKLIST = [
    ("PAT001", "ACC5001", "RP5001", "CT CHEST FOLLOW-UP", "CT", "CT01",
     "20240115", "080000", "CHASE^Robert", "CT CHEST W/O"),
    ("PAT002", "ACC5002", "RP5002", "MR KNEE LEFT", "MR", "MR01",
     "20240115", "093000", "CAMERON^Allison", "MR KNEE"),
    ("PAT003", "ACC5003", "RP5003", "CT Abdomen", "CT", "CT02",
     "20240116", "111500", "BRÜHL^Anna", "CT Abdomen nativ"),
    ("PAT004", "ACC5004", "RP5004", "US ABDOMEN", "US", "US01",
     "20240116", "140000", "", "US ABDOMEN"),
    ("PAT001", "ACC5005", "RP5005", "MR BRAIN CONTROL", "MR", "MR01",
     "20240117", "163000", "FOREMAN^Eric", "MR BRAIN W/ CONTRAST"),
]

# (PatientID, ScheduledProcedureStepPriority, ScheduledProcedureStepStartDateTime,
#  InputReadinessState, ProcedureStepLabel)
_UPS = [
    ("PAT001", "HIGH", "20240115080000", "READY", "CAD CHEST CT"),
    ("PAT002", "MEDIUM", "20240116120000", "INCOMPLETE", "MAMMO CAD"),
    ("PAT003", "LOW", "20240117090000", "UNAVAILABLE", "Perfusion Auswertung"),
]


def _patient(pid: str) -> tuple[str, str, str, str, str | None]:
    return next(p for p in _PATIENTS if p[0] == pid)


def _with_patient(ds: Dataset, pid: str) -> Dataset:
    _, name, birth, sex, charset = _patient(pid)
    if charset:
        ds.SpecificCharacterSet = charset
    ds.PatientName = name
    ds.PatientID = pid
    ds.PatientBirthDate = birth
    ds.PatientSex = sex
    return ds


def instances() -> list[Dataset]:
    """Return one dataset per sample instance, in a fixed order."""
    out: list[Dataset] = []
    for st_no, (pid, sdate, stime, acc, sid, sdesc, ref, series) in enumerate(_STUDIES, 1):
        study_uid = uid("study", st_no)
        for se_no, (modality, se_desc, body, sop_class, count) in enumerate(series, 1):
            series_uid = uid("series", st_no, se_no)
            for in_no in range(1, count + 1):
                ds = _with_patient(Dataset(), pid)
                ds.StudyInstanceUID = study_uid
                ds.StudyDate = sdate
                ds.StudyTime = stime
                ds.AccessionNumber = acc
                ds.StudyID = sid
                ds.StudyDescription = sdesc
                ds.ReferringPhysicianName = ref
                ds.SeriesInstanceUID = series_uid
                ds.Modality = modality
                ds.SeriesNumber = se_no
                ds.SeriesDescription = se_desc
                ds.SeriesDate = sdate
                ds.SeriesTime = stime
                ds.BodyPartExamined = body
                ds.SOPClassUID = sop_class
                ds.SOPInstanceUID = uid("instance", st_no, se_no, in_no)
                ds.InstanceNumber = in_no
                ds.ContentDate = sdate
                ds.ContentTime = stime
                out.append(ds)
    return out


def worklist() -> list[Dataset]:
    """Return the sample Modality Worklist items."""
    out: list[Dataset] = []
    for no, (pid, acc, rpid, rpdesc, modality, station, sdate, stime, phys, spsdesc) in (
        enumerate(_WORKLIST, 1)
    ):
        ds = _with_patient(Dataset(), pid)
        ds.AccessionNumber = acc
        ds.RequestedProcedureID = rpid
        ds.RequestedProcedureDescription = rpdesc
        ds.StudyInstanceUID = uid("worklist-study", no)
        ds.ReferringPhysicianName = ""
        sps = Dataset()
        sps.Modality = modality
        sps.ScheduledStationAETitle = station
        sps.ScheduledProcedureStepStartDate = sdate
        sps.ScheduledProcedureStepStartTime = stime
        sps.ScheduledPerformingPhysicianName = phys
        sps.ScheduledProcedureStepDescription = spsdesc
        sps.ScheduledProcedureStepID = f"SPS{no:04d}"
        ds.ScheduledProcedureStepSequence = [sps]
        out.append(ds)
    return out


def ups() -> list[Dataset]:
    """Return the sample UPS workitems (ProcedureStepState SCHEDULED)."""
    out: list[Dataset] = []
    for no, (pid, prio, start, readiness, label) in enumerate(_UPS, 1):
        ds = _with_patient(Dataset(), pid)
        ds.SOPClassUID = _UPS_PUSH
        ds.SOPInstanceUID = uid("ups", no)
        ds.ProcedureStepState = "SCHEDULED"
        ds.ScheduledProcedureStepPriority = prio
        ds.ScheduledProcedureStepStartDateTime = start
        ds.InputReadinessState = readiness
        ds.ProcedureStepLabel = label
        ds.WorklistLabel = "DEMO"
        out.append(ds)
    return out


@dataclass
class SampleData:
    """The data a :class:`~dimsekit.testing.QuerySCP` answers from.

    ``instances`` are instance-level Q/R datasets (each with its patient,
    study and series attributes); ``worklist`` and ``ups`` are flat lists of
    Modality Worklist items and UPS workitems.  Any list may be empty.
    """

    instances: list[Dataset] = field(default_factory=list)
    worklist: list[Dataset] = field(default_factory=list)
    ups: list[Dataset] = field(default_factory=list)


def sample_data() -> SampleData:
    """Return a fresh copy of the complete sample data."""
    return SampleData(instances=instances(), worklist=worklist(), ups=ups())
