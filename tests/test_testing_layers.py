"""The layers of dimsekit.testing's peer: matching, recording, server.

The matching engine and the records need no network stack; the package's
public names come from whichever layer defines them.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydicom.dataset import Dataset

from dimsekit import testing
from dimsekit.testing import matching, recording, sampledata, server


def test_every_public_name_resolves_to_its_layer():
    assert set(testing.__all__) == {*testing._EXPORTS, "sampledata"}
    for name in testing.__all__:
        assert getattr(testing, name) is not None
    assert testing.QuerySCP is server.QuerySCP
    assert testing.MODEL_UIDS is server.MODEL_UIDS
    for record in ("AssociationRecord", "CancelRecord", "ContextRecord", "EchoRecord",
                   "FindRecord"):
        assert getattr(testing, record) is getattr(recording, record)


def test_matching_and_records_do_not_import_pynetdicom():
    code = (
        "import sys, dimsekit.testing.matching, dimsekit.testing.recording\n"
        "print('pynetdicom' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"


def test_find_matches_without_a_peer():
    data = sampledata.sample_data()
    query = Dataset()
    query.QueryRetrieveLevel = "PATIENT"
    query.PatientID = ""
    query.PatientName = "SMITH*"
    got = matching.find_matches("patient", query, data)
    want = {str(ds.PatientID) for ds in data.instances if str(ds.PatientName).startswith("SMITH")}
    assert {str(ds.PatientID) for ds in got} == want and len(got) == len(want)
    assert all(ds.QueryRetrieveLevel == "PATIENT" for ds in got)

    del query.QueryRetrieveLevel
    with pytest.raises(matching.MatchFailure) as failure:
        matching.find_matches("study", query, data)
    assert failure.value.status == 0xA900
