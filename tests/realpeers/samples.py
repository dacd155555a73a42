"""The sample data the archive peers (dcmqrscp, Orthanc) hold.

It is :func:`dimsekit.testing.sampledata.instances`, the data the in-process
:class:`~dimsekit.testing.QuerySCP` answers from: one set of sample data for
every peer. :data:`SAMPLE_PATIENTS` describes it (patients, their studies,
series and images); :func:`make_sample_instances` writes it as Part-10 files,
with 8x8 pixels, and the ``sample_instances`` fixture does that once per
session. Tests compute their expectations from this description.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

from dimsekit.testing import sampledata

__all__ = [
    "SAMPLE_IMAGES",
    "SAMPLE_PATIENTS",
    "SAMPLE_SERIES",
    "SAMPLE_STUDIES",
    "SAMPLE_UID_ROOT",
    "SampleImage",
    "SamplePatient",
    "SampleSeries",
    "SampleStudy",
    "make_sample_instances",
    "sample_instances",
]

#: Made-up UID root of the Part-10 files' implementation class UID.
SAMPLE_UID_ROOT = "1.2.826.0.1.3680043.10.1234"


@dataclass(frozen=True)
class SampleImage:
    """One sample instance (IMAGE level)."""

    sop_instance_uid: str
    instance_number: int
    sop_class_uid: str


@dataclass(frozen=True)
class SampleSeries:
    """One sample series; ``images`` in instance-number order."""

    series_instance_uid: str
    modality: str
    series_number: int
    series_description: str
    images: tuple[SampleImage, ...]


@dataclass(frozen=True)
class SampleStudy:
    """One sample study; ``modalities_in_study`` is what peers should derive."""

    study_instance_uid: str
    study_date: str
    study_time: str
    accession_number: str
    study_description: str
    study_id: str
    series: tuple[SampleSeries, ...]

    @property
    def modalities_in_study(self) -> tuple[str, ...]:
        return tuple(sorted({s.modality for s in self.series}))

    @property
    def image_count(self) -> int:
        return sum(len(s.images) for s in self.series)


@dataclass(frozen=True)
class SamplePatient:
    """One sample patient.

    ``patient_name`` is the Python string; ``specific_character_set`` is
    ``"ISO_IR 100"`` for the Latin-1 patient and ``None`` (default repertoire)
    for the others.
    """

    patient_id: str
    patient_name: str
    patient_birth_date: str
    patient_sex: str
    specific_character_set: str | None
    studies: tuple[SampleStudy, ...]


def _describe(instances: list[Dataset]) -> tuple[SamplePatient, ...]:
    """Group `instances` into patients, studies, series and images, in order."""
    tree: dict[str, tuple[Dataset, dict[str, tuple[Dataset, dict[str, list[Dataset]]]]]] = {}
    for ds in instances:
        _, studies = tree.setdefault(str(ds.PatientID), (ds, {}))
        _, series = studies.setdefault(str(ds.StudyInstanceUID), (ds, {}))
        series.setdefault(str(ds.SeriesInstanceUID), []).append(ds)
    return tuple(
        SamplePatient(
            str(pat.PatientID), str(pat.PatientName), str(pat.PatientBirthDate),
            str(pat.PatientSex), pat.get("SpecificCharacterSet"),
            tuple(
                SampleStudy(
                    str(st.StudyInstanceUID), str(st.StudyDate), str(st.StudyTime),
                    str(st.AccessionNumber), str(st.StudyDescription), str(st.StudyID),
                    tuple(
                        SampleSeries(
                            str(se[0].SeriesInstanceUID), str(se[0].Modality),
                            int(se[0].SeriesNumber), str(se[0].SeriesDescription),
                            tuple(SampleImage(str(im.SOPInstanceUID), int(im.InstanceNumber),
                                              str(im.SOPClassUID)) for im in se),
                        )
                        for se in series.values()
                    ),
                )
                for st, series in studies.values()
            ),
        )
        for pat, studies in tree.values()
    )


#: The sample data (:func:`dimsekit.testing.sampledata.instances`), described.
SAMPLE_PATIENTS: tuple[SamplePatient, ...] = _describe(sampledata.instances())
#: Every sample study, in :data:`SAMPLE_PATIENTS` order.
SAMPLE_STUDIES: tuple[SampleStudy, ...] = tuple(st for p in SAMPLE_PATIENTS for st in p.studies)
#: Every sample series, in :data:`SAMPLE_PATIENTS` order.
SAMPLE_SERIES: tuple[SampleSeries, ...] = tuple(se for st in SAMPLE_STUDIES for se in st.series)
#: Every sample image, in :data:`SAMPLE_PATIENTS` order.
SAMPLE_IMAGES: tuple[SampleImage, ...] = tuple(im for se in SAMPLE_SERIES for im in se.images)


def make_sample_instances(directory: Path | str) -> list[Path]:
    """Write the sample instances as Part-10 files into *directory*.

    Deterministic (same bytes every time): the sample data's fixed UIDs,
    explicit VR little endian, 8x8 8-bit MONOCHROME2 pixels. Returns the
    paths, sorted; each file is named ``<SOPInstanceUID>.dcm``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for ds in sampledata.instances():
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = ds.SOPClassUID
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = f"{SAMPLE_UID_ROOT}.0.1"
        meta.ImplementationVersionName = "DIMSEKIT_TEST"
        ds.file_meta = meta
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows = 8
        ds.Columns = 8
        ds.BitsAllocated = 8
        ds.BitsStored = 8
        ds.HighBit = 7
        ds.PixelRepresentation = 0
        ds.PixelData = bytes((x * 8 + int(ds.InstanceNumber)) % 256 for x in range(64))
        path = directory / f"{ds.SOPInstanceUID}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return sorted(paths)


@pytest.fixture(scope="session")
def sample_instances(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ...]:
    """The sample Part-10 files (see :data:`SAMPLE_PATIENTS`), written once."""
    return tuple(make_sample_instances(tmp_path_factory.mktemp("sample-instances")))
