"""The Python API's C-GET and C-MOVE (``Peer.get``, ``Peer.move``) against
DCMTK dcmqrscp and Orthanc: the instances of a study arrive as files."""

from __future__ import annotations

import pydicom
import pytest

import dimsekit
from dimsekit import PeerFailure, UsageError

PEERS = ["dcmqrscp_peer", "orthanc_peer"]


@pytest.fixture(params=PEERS)
def archive(request):
    return request.getfixturevalue(request.param)


def _a_study(archive):
    patient = archive.patients[0]
    return patient, patient.studies[0]


def _uids(study) -> list[str]:
    return sorted(i.sop_instance_uid for s in study.series for i in s.images)


def test_get_writes_every_instance_of_the_study(archive, tmp_path):
    patient, study = _a_study(archive)
    peer = dimsekit.Peer(archive.host, archive.port, called_aet=archive.aet)
    got = peer.get({"QueryRetrieveLevel": "STUDY", "PatientID": patient.patient_id,
                    "StudyInstanceUID": study.study_instance_uid}, directory=tmp_path)
    assert got.complete
    assert (got.status.completed, got.status.failed) == (study.image_count, 0)
    assert sorted(str(pydicom.dcmread(p).SOPInstanceUID) for p in got.files) == _uids(study)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{u}.dcm"
                                                                for u in _uids(study))


def test_move_to_ourselves_listens_and_writes(archive, move_destinations, tmp_path):
    patient, study = _a_study(archive)
    peer = dimsekit.Peer(archive.host, archive.port, called_aet=archive.aet,
                         calling_aet="DKMOVE")
    moved = peer.move(QueryRetrieveLevel="STUDY", PatientID=patient.patient_id,
                      StudyInstanceUID=study.study_instance_uid,
                      listen_port=move_destinations["DKMOVE"], directory=tmp_path)
    assert moved.complete, moved.status
    assert sorted(str(pydicom.dcmread(p).SOPInstanceUID) for p in moved.files) == _uids(study)


def test_a_move_to_an_unknown_ae_raises_peer_failure(archive, tmp_path):
    _, study = _a_study(archive)
    peer = dimsekit.Peer(archive.host, archive.port, called_aet=archive.aet)
    with pytest.raises(PeerFailure, match=r"C-MOVE: peer answered 0x[AC]") as caught:
        peer.move(QueryRetrieveLevel="STUDY", StudyInstanceUID=study.study_instance_uid,
                  destination="NOSUCHAE")
    assert caught.value.status in (0xA801, 0xC000)


def test_a_retrieve_without_a_level_is_a_usage_error(tmp_path):
    peer = dimsekit.Peer("127.0.0.1", 1)
    with pytest.raises(UsageError, match="QueryRetrieveLevel"):
        peer.get({"StudyInstanceUID": "1.2.3"}, model="study", directory=tmp_path)
