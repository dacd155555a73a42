"""Tests of dimsekit.testing.QuerySCP, the in-process recording peer.

The client here is pynetdicom's own AE (not dimsekit), so these tests check
the peer independently of the CLI.  Expected results are computed from
dimsekit.testing.sampledata, not restated.
"""

from __future__ import annotations

import fnmatch
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)
from pynetdicom import AE
from pynetdicom.pdu_primitives import SOPClassExtendedNegotiation

from dimsekit.testing import MODEL_UIDS, QuerySCP, sampledata
from dimsekit.testing.server import wait_for

SRC = Path(__file__).resolve().parents[1] / "src"

PATIENT = MODEL_UIDS["patient"]
STUDY = MODEL_UIDS["study"]
PSONLY = MODEL_UIDS["psonly"]
WORKLIST = MODEL_UIDS["worklist"]
UPS = MODEL_UIDS["ups"]
VERIFICATION = MODEL_UIDS["verification"]
ALL_MODELS = tuple(MODEL_UIDS.values())


# -- helpers ---------------------------------------------------------------


@pytest.fixture
def scp():
    with QuerySCP() as peer:
        yield peer


def client(
    models=ALL_MODELS,
    transfer_syntaxes=None,
    dimse_timeout=5,
    aet="FINDSCU",
):
    ae = AE(ae_title=aet)
    ae.acse_timeout = 5
    ae.dimse_timeout = dimse_timeout
    ae.network_timeout = 5
    for uid in models:
        if transfer_syntaxes:
            ae.add_requested_context(uid, transfer_syntaxes)
        else:
            ae.add_requested_context(uid)
    return ae


def associate(peer, called="ANY-SCP", **kw):
    ext_neg = kw.pop("ext_neg", None)
    max_pdu = kw.pop("max_pdu", 16382)
    assoc = client(**kw).associate(
        "127.0.0.1", peer.port, ae_title=called, ext_neg=ext_neg, max_pdu=max_pdu
    )
    return assoc


def find(assoc, query, model, **kw):
    """Return (pending identifiers, final status code or None)."""
    pending, final = [], None
    for status, ident in assoc.send_c_find(query, model, **kw):
        code = status.get("Status") if status else None
        if code in (0xFF00, 0xFF01):
            pending.append(ident)
        else:
            final = code
    return pending, final




def query(**keys):
    ds = Dataset()
    for kw, value in keys.items():
        setattr(ds, kw, value)
    return ds


def distinct(datasets, keyword):
    seen = []
    for ds in datasets:
        v = str(ds.get(keyword, ""))
        if v not in seen:
            seen.append(v)
    return seen


INSTANCES = sampledata.instances()
WORKLIST_ITEMS = sampledata.worklist()
UPS_ITEMS = sampledata.ups()


# -- basics ----------------------------------------------------------------


def test_echo_and_bound_port(scp):
    assert scp.port > 0 and scp.host == "127.0.0.1" and scp.ae_title == "ANY-SCP"
    assoc = associate(scp, models=[VERIFICATION])
    assert assoc.is_established
    assert assoc.send_c_echo().Status == 0x0000
    assoc.release()


def test_sample_data_is_deterministic_and_shaped():
    again = sampledata.sample_data()
    assert [d.SOPInstanceUID for d in again.instances] == [d.SOPInstanceUID for d in INSTANCES]
    assert len(distinct(INSTANCES, "PatientID")) >= 4
    assert len(distinct(INSTANCES, "StudyInstanceUID")) >= 6
    assert len(distinct(INSTANCES, "SeriesInstanceUID")) >= 10
    assert not any("PixelData" in d for d in INSTANCES)
    latin1 = [d for d in INSTANCES if str(d.PatientName) == sampledata.LATIN1_PATIENT_NAME]
    assert latin1 and all(d.SpecificCharacterSet == "ISO_IR 100" for d in latin1)
    assert all("ScheduledProcedureStepSequence" in d for d in WORKLIST_ITEMS)
    assert all(d.ProcedureStepState == "SCHEDULED" for d in UPS_ITEMS)


# -- Q/R matching ------------------------------------------------------------

LEVEL_CASES = [
    # model, level, parent filter (keyword, value from the first instance), unique key
    (PATIENT, "PATIENT", None, "PatientID"),
    (PATIENT, "STUDY", "PatientID", "StudyInstanceUID"),
    (PATIENT, "SERIES", "StudyInstanceUID", "SeriesInstanceUID"),
    (PATIENT, "IMAGE", "SeriesInstanceUID", "SOPInstanceUID"),
    (STUDY, "STUDY", None, "StudyInstanceUID"),
    (STUDY, "SERIES", "StudyInstanceUID", "SeriesInstanceUID"),
    (STUDY, "IMAGE", "SeriesInstanceUID", "SOPInstanceUID"),
    (PSONLY, "PATIENT", None, "PatientID"),
    (PSONLY, "STUDY", "PatientID", "StudyInstanceUID"),
]


@pytest.mark.parametrize("model,level,parent,unique", LEVEL_CASES)
def test_qr_levels_return_one_response_per_entity(scp, model, level, parent, unique):
    q = query(QueryRetrieveLevel=level, PatientName="")
    setattr(q, unique, "")
    members = INSTANCES
    if parent:
        value = str(INSTANCES[0].get(parent))
        setattr(q, parent, value)
        members = [d for d in INSTANCES if str(d.get(parent)) == value]
    assoc = associate(scp)
    pending, final = find(assoc, q, model)
    assoc.release()
    assert final == 0x0000
    assert [str(r.get(unique)) for r in pending] == distinct(members, unique)
    for rsp in pending:
        extra = {"QueryRetrieveLevel", "SpecificCharacterSet"}
        assert {e.keyword for e in rsp} - extra == {e.keyword for e in q} - extra
        assert rsp.QueryRetrieveLevel == level


def test_study_level_values_and_computed_attributes(scp):
    q = query(
        QueryRetrieveLevel="STUDY", StudyInstanceUID="", StudyDate="", AccessionNumber="",
        ModalitiesInStudy="", NumberOfStudyRelatedInstances="", StudyComments="",
    )
    assoc = associate(scp)
    pending, final = find(assoc, q, STUDY)
    assoc.release()
    assert final == 0
    by_uid = {str(r.StudyInstanceUID): r for r in pending}
    for uid in distinct(INSTANCES, "StudyInstanceUID"):
        members = [d for d in INSTANCES if d.StudyInstanceUID == uid]
        rsp = by_uid[uid]
        assert rsp.StudyDate == members[0].StudyDate
        assert rsp.AccessionNumber == members[0].AccessionNumber
        assert int(rsp.NumberOfStudyRelatedInstances) == len(members)
        modalities = rsp.ModalitiesInStudy
        modalities = [modalities] if isinstance(modalities, str) else list(modalities)
        assert sorted(modalities) == sorted(set(distinct(members, "Modality")))
        # requested key the entity has no value for: present and empty
        assert "StudyComments" in rsp and not rsp.StudyComments


@pytest.mark.parametrize("pattern", ["SMITH*", "*^J*", "M?LLER*", "DOE^John", "*a*", "NOBODY*"])
def test_wildcard_matching(scp, pattern):
    q = query(QueryRetrieveLevel="PATIENT", PatientName=pattern, PatientID="")
    q.SpecificCharacterSet = "ISO_IR 100"
    assoc = associate(scp)
    pending, final = find(assoc, q, PATIENT)
    assoc.release()
    assert final == 0
    expected = distinct(
        [d for d in INSTANCES if fnmatch.fnmatchcase(str(d.PatientName), pattern)], "PatientID"
    )
    assert [str(r.PatientID) for r in pending] == expected


def test_latin1_patient_comes_back_with_its_character_set(scp):
    q = query(QueryRetrieveLevel="PATIENT", PatientName="M*LLER^Hans", PatientID="")
    q.SpecificCharacterSet = "ISO_IR 100"
    assoc = associate(scp)
    pending, final = find(assoc, q, PATIENT)
    assoc.release()
    assert final == 0 and len(pending) == 1
    assert str(pending[0].PatientName) == sampledata.LATIN1_PATIENT_NAME
    assert pending[0].SpecificCharacterSet == "ISO_IR 100"
    assert scp.requests[0].identifier.PatientName == "M*LLER^Hans"


@pytest.mark.parametrize(
    "date_range,lo,hi",
    [
        ("20200101-20201231", "20200101", "20201231"),
        ("-20191231", "", "20191231"),
        ("20210101-", "20210101", ""),
        ("20200704", "20200704", "20200704"),
    ],
)
def test_date_range_matching(scp, date_range, lo, hi):
    q = query(QueryRetrieveLevel="STUDY", StudyDate=date_range, StudyInstanceUID="")
    assoc = associate(scp)
    pending, final = find(assoc, q, STUDY)
    assoc.release()
    assert final == 0
    expected = distinct(
        [d for d in INSTANCES if (not lo or d.StudyDate >= lo) and (not hi or d.StudyDate <= hi)],
        "StudyInstanceUID",
    )
    assert expected, "the sample data should have a study in range"
    assert [str(r.StudyInstanceUID) for r in pending] == expected


def test_time_range_and_uid_list_matching(scp):
    uids = distinct(INSTANCES, "StudyInstanceUID")[:3]
    q = query(QueryRetrieveLevel="STUDY", StudyInstanceUID="\\".join(uids), StudyTime="-120000")
    assoc = associate(scp)
    pending, final = find(assoc, q, STUDY)
    assoc.release()
    expected = distinct(
        [d for d in INSTANCES if d.StudyInstanceUID in uids and d.StudyTime <= "120000"],
        "StudyInstanceUID",
    )
    assert final == 0
    assert [str(r.StudyInstanceUID) for r in pending] == expected


@pytest.mark.parametrize("identifier", [{"PatientName": "*"}, {"QueryRetrieveLevel": ""},
                                        {"QueryRetrieveLevel": "FRAME"}])
def test_invalid_qr_identifier_fails(scp, identifier):
    assoc = associate(scp)
    pending, final = find(assoc, query(**identifier), STUDY)
    assoc.release()
    assert pending == [] and final in (0xA900, 0xC000)
    assert scp.requests[0].status == final


def test_patient_study_only_has_no_series_level(scp):
    assoc = associate(scp)
    pending, final = find(assoc, query(QueryRetrieveLevel="SERIES"), PSONLY)
    assoc.release()
    assert pending == [] and final == 0xA900


def test_strict_hierarchy_requires_parent_unique_keys():
    with QuerySCP(strict_hierarchy=True) as peer:
        assoc = associate(peer)
        _, final = find(assoc, query(QueryRetrieveLevel="SERIES", Modality="CT"), STUDY)
        assoc.release()
    assert final == 0xA900


def test_strict_hierarchy_answers_a_query_that_has_the_parent_unique_keys():
    study = INSTANCES[0].StudyInstanceUID
    with QuerySCP(strict_hierarchy=True) as peer:
        assoc = associate(peer)
        q = query(QueryRetrieveLevel="SERIES", StudyInstanceUID=study, SeriesInstanceUID="")
        pending, final = find(assoc, q, STUDY)
        empty_key, final_empty = find(
            assoc, query(QueryRetrieveLevel="SERIES", StudyInstanceUID=""), STUDY
        )
        assoc.release()
    assert final == 0 and final_empty == 0xA900 and empty_key == []
    series = distinct([d for d in INSTANCES if d.StudyInstanceUID == study], "SeriesInstanceUID")
    assert sorted(d.SeriesInstanceUID for d in pending) == sorted(series)


# -- worklist and UPS --------------------------------------------------------


def test_worklist_sequence_matching_and_requested_subkeys(scp):
    sps = query(Modality="CT", ScheduledStationAETitle="", ScheduledProcedureStepStartDate="")
    q = query(PatientName="", PatientID="", AccessionNumber="", RequestedProcedureID="")
    q.ScheduledProcedureStepSequence = [sps]
    assoc = associate(scp)
    pending, final = find(assoc, q, WORKLIST)
    assoc.release()
    assert final == 0
    expected = [
        d for d in WORKLIST_ITEMS
        if any(i.Modality == "CT" for i in d.ScheduledProcedureStepSequence)
    ]
    assert expected
    assert [r.AccessionNumber for r in pending] == [d.AccessionNumber for d in expected]
    for rsp, item in zip(pending, expected, strict=True):
        (rsp_item,) = rsp.ScheduledProcedureStepSequence
        assert {e.keyword for e in rsp_item} == {e.keyword for e in sps}
        src = item.ScheduledProcedureStepSequence[0]
        assert rsp_item.ScheduledStationAETitle == src.ScheduledStationAETitle
        assert rsp.RequestedProcedureID == item.RequestedProcedureID
        assert "QueryRetrieveLevel" not in rsp


def test_worklist_date_range_inside_sequence(scp):
    sps = query(ScheduledProcedureStepStartDate="20240116-", Modality="")
    q = query(PatientID="")
    q.ScheduledProcedureStepSequence = [sps]
    assoc = associate(scp)
    pending, _ = find(assoc, q, WORKLIST)
    assoc.release()
    expected = [
        d.PatientID for d in WORKLIST_ITEMS
        if d.ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate >= "20240116"
    ]
    assert [r.PatientID for r in pending] == expected


def test_ups_pull_find(scp):
    wanted = [UPS_ITEMS[0].SOPInstanceUID, UPS_ITEMS[-1].SOPInstanceUID]
    q = query(
        ProcedureStepState="SCHEDULED", SOPInstanceUID="\\".join(wanted),
        ScheduledProcedureStepPriority="", ScheduledProcedureStepStartDateTime="",
        InputReadinessState="", PatientName="",
    )
    assoc = associate(scp)
    pending, final = find(assoc, q, UPS)
    assoc.release()
    assert final == 0
    assert [r.SOPInstanceUID for r in pending] == wanted
    by_uid = {d.SOPInstanceUID: d for d in UPS_ITEMS}
    for rsp in pending:
        src = by_uid[rsp.SOPInstanceUID]
        assert rsp.ScheduledProcedureStepPriority == src.ScheduledProcedureStepPriority
        assert rsp.InputReadinessState == src.InputReadinessState


def test_ups_datetime_range(scp):
    q = query(ScheduledProcedureStepStartDateTime="20240116-", SOPInstanceUID="")
    assoc = associate(scp)
    pending, _ = find(assoc, q, UPS)
    assoc.release()
    expected = [
        d.SOPInstanceUID for d in UPS_ITEMS if d.ScheduledProcedureStepStartDateTime >= "20240116"
    ]
    assert [r.SOPInstanceUID for r in pending] == expected


# -- transfer syntaxes and recording ----------------------------------------------


@pytest.mark.parametrize(
    "ts",
    [ImplicitVRLittleEndian, ExplicitVRLittleEndian, ExplicitVRBigEndian,
     DeflatedExplicitVRLittleEndian],
)
def test_every_uncompressed_transfer_syntax(scp, ts):
    assoc = associate(scp, models=[PATIENT], transfer_syntaxes=[ts])
    assert assoc.is_established
    pending, final = find(assoc, query(QueryRetrieveLevel="PATIENT", PatientName=""), PATIENT)
    assoc.release()
    assert final == 0 and len(pending) == len(distinct(INSTANCES, "PatientID"))
    assert scp.requests[0].transfer_syntax == ts
    assert scp.associations[0].accepted_contexts[0].transfer_syntaxes == (ts,)


def test_requests_and_associations_are_recorded(scp):
    ext = SOPClassExtendedNegotiation()
    ext.sop_class_uid = STUDY
    ext.service_class_application_information = b"\x01\x01\x00"
    assoc = associate(scp, called="SOME-SCP", aet="RECORDER", ext_neg=[ext],
                      models=[STUDY, WORKLIST], max_pdu=32768)
    q = query(QueryRetrieveLevel="STUDY", PatientName="DOE*", StudyInstanceUID="")
    find(assoc, q, STUDY, msg_id=42, priority=1)
    assoc.release()
    assert scp.wait_idle()

    (arec,) = scp.associations
    assert (arec.calling_ae, arec.called_ae, arec.max_pdu) == ("RECORDER", "SOME-SCP", 32768)
    assert [c.abstract_syntax for c in arec.requested_contexts] == [STUDY, WORKLIST]
    assert all(len(c.transfer_syntaxes) >= 3 for c in arec.requested_contexts)
    assert {c.abstract_syntax for c in arec.accepted_contexts} == {STUDY, WORKLIST}
    assert arec.extended_negotiation == {STUDY: b"\x01\x01\x00"}
    assert arec.accepted_extended_negotiation == {STUDY: b"\x01\x01\x00"}
    assert arec.ended == "released"

    (rec,) = scp.requests
    assert rec.association is arec and arec.requests == [rec]
    assert (rec.sop_class_uid, rec.model) == (STUDY, "study")
    assert (rec.calling_ae, rec.called_ae) == ("RECORDER", "SOME-SCP")
    assert (rec.message_id, rec.priority) == (42, 1)
    assert rec.identifier == q
    assert rec.responses == len(distinct(
        [d for d in INSTANCES if str(d.PatientName).startswith("DOE")], "StudyInstanceUID"))
    assert rec.status == 0 and rec.cancelled_after is None
    assert scp.cancels == []


def test_relational_extended_negotiation_changes_matching(scp):
    q = query(QueryRetrieveLevel="STUDY", StudyInstanceUID="", Modality="MR")
    baseline = associate(scp, models=[STUDY])
    plain, _ = find(baseline, q, STUDY)
    baseline.release()

    ext = SOPClassExtendedNegotiation()
    ext.sop_class_uid = STUDY
    ext.service_class_application_information = b"\x01"
    relational = associate(scp, models=[STUDY], ext_neg=[ext])
    filtered, _ = find(relational, q, STUDY)
    relational.release()

    assert [str(r.StudyInstanceUID) for r in plain] == distinct(INSTANCES, "StudyInstanceUID")
    assert [str(r.StudyInstanceUID) for r in filtered] == distinct(
        [d for d in INSTANCES if d.Modality == "MR"], "StudyInstanceUID")
    assert all(not r.Modality for r in filtered)


def test_fuzzy_names_negotiated_makes_names_case_insensitive(scp):
    q = query(QueryRetrieveLevel="PATIENT", PatientName="doe*", PatientID="")
    ext = SOPClassExtendedNegotiation()
    ext.sop_class_uid = PATIENT
    ext.service_class_application_information = b"\x00\x00\x01"
    assoc = associate(scp, models=[PATIENT])
    strict, _ = find(assoc, q, PATIENT)
    assoc.release()
    assoc = associate(scp, models=[PATIENT], ext_neg=[ext])
    fuzzy, _ = find(assoc, q, PATIENT)
    assoc.release()
    assert strict == []
    assert [r.PatientID for r in fuzzy] == distinct(
        [d for d in INSTANCES if str(d.PatientName).lower().startswith("doe")], "PatientID")


def test_extended_negotiation_can_be_refused():
    ext = SOPClassExtendedNegotiation()
    ext.sop_class_uid = STUDY
    ext.service_class_application_information = b"\x01"
    with QuerySCP(accept_extended_negotiation=False) as peer:
        assoc = associate(peer, models=[STUDY], ext_neg=[ext])
        assoc.release()
        peer.wait_idle()
        assert peer.associations[0].extended_negotiation == {STUDY: b"\x01"}
        assert peer.associations[0].accepted_extended_negotiation == {}


# -- knobs -----------------------------------------------------------------


def test_repeat_matches_and_response_delay():
    with QuerySCP(repeat_matches=200) as peer:
        assoc = associate(peer)
        pending, final = find(assoc, query(QueryRetrieveLevel="STUDY", PatientName=""), STUDY)
        assert final == 0 and len(pending) == 200
        peer.repeat_matches, peer.response_delay = 3, 0.1
        t0 = time.monotonic()
        pending, final = find(assoc, query(QueryRetrieveLevel="STUDY", PatientID="NOBODY"), STUDY)
        assert time.monotonic() - t0 >= 0.3
        assoc.release()
    assert final == 0 and len(pending) == 3


@pytest.mark.parametrize("honour", [True, False])
def test_cancel_is_recorded_and_honoured_or_ignored(honour):
    total, cancel_at = 30, 3
    with QuerySCP(repeat_matches=total, response_delay=0.01, honour_cancel=honour) as peer:
        assoc = associate(peer)
        q = query(QueryRetrieveLevel="PATIENT", PatientName="")
        pending, final = 0, None
        for status, _ in assoc.send_c_find(q, PATIENT, msg_id=7):
            if status.Status == 0xFF00:
                pending += 1
                if pending == cancel_at:
                    assoc.send_c_cancel(7, None, PATIENT)
            else:
                final = status.Status
        assoc.release()
        (cancel,) = peer.cancels
        (rec,) = peer.requests
    assert cancel.message_id == 7 and cancel.request is rec and not cancel.stale
    assert cancel_at <= cancel.after_responses < total
    assert rec.cancelled_after is not None and rec.cancelled_after >= cancel.after_responses
    if honour:
        assert final == 0xFE00 and rec.status == 0xFE00 and pending < total
    else:
        assert final == 0 and rec.status == 0 and pending == total


def test_cancel_while_a_slow_response_is_pending():
    with QuerySCP(response_delay=0.3) as peer:
        assoc = associate(peer, models=[PATIENT])
        statuses = []
        for status, _ in assoc.send_c_find(query(QueryRetrieveLevel="PATIENT"), PATIENT,
                                           msg_id=3):
            if not statuses:
                assoc.send_c_cancel(3, None, PATIENT)
            statuses.append(status.Status)
        assoc.release()
        rec = peer.requests[0]
    # pynetdicom's send_c_find yields nothing before the first response, so
    # the cancel goes out after it; honoured at the next response
    assert statuses[-1] == 0xFE00 and rec.status == 0xFE00
    assert rec.cancelled_after == 1 == peer.cancels[0].after_responses


def test_a_late_cancel_does_not_cancel_the_next_query_with_the_same_id(scp):
    # a C-CANCEL that crossed the final response is recorded as stale and
    # must not cancel a later request that reuses the message ID
    q = query(QueryRetrieveLevel="PATIENT", PatientID="")
    assoc = associate(scp, models=[PATIENT])
    first = find(assoc, q, PATIENT, msg_id=9)
    assoc.send_c_cancel(9, None, PATIENT)
    assert wait_for(lambda: len(scp.cancels) == 1)
    second = find(assoc, q, PATIENT, msg_id=9)
    assoc.release()
    assert first == second and first[1] == 0
    (cancel,) = scp.cancels
    assert cancel.stale and cancel.request is None
    assert [r.cancelled_after for r in scp.requests] == [None, None]


def test_final_status_knob(scp):
    scp.final_status = 0xC000
    assoc = associate(scp)
    pending, final = find(assoc, query(QueryRetrieveLevel="PATIENT", PatientID=""), PATIENT)
    assoc.release()
    assert final == 0xC000 and len(pending) == len(distinct(INSTANCES, "PatientID"))
    assert scp.requests[0].status == 0xC000


def test_warning_final_status_is_sent_alone(scp):
    # pynetdicom would append its own Success after a warning status; the
    # next query must still get its own answers
    scp.final_status = 0xB001
    assoc = associate(scp)
    q = query(QueryRetrieveLevel="PATIENT", PatientID=str(INSTANCES[0].PatientID))
    first = find(assoc, q, PATIENT)
    second = find(assoc, q, PATIENT)
    assoc.release()
    assert first == second and first[1] == 0xB001 and len(first[0]) == 1
    assert scp.wait_idle() and scp.associations[0].ended == "released"


def test_combined_datetime_matching_when_negotiated(scp):
    q = query(QueryRetrieveLevel="STUDY", StudyInstanceUID="",
              StudyDate="20200101-20201231", StudyTime="120000-")
    ext = SOPClassExtendedNegotiation()
    ext.sop_class_uid = STUDY
    ext.service_class_application_information = b"\x00\x01"
    results = []
    for ext_neg in (None, [ext]):
        assoc = associate(scp, models=[STUDY], ext_neg=ext_neg)
        results.append([str(r.StudyInstanceUID) for r in find(assoc, q, STUDY)[0]])
        assoc.release()
    separate = distinct([d for d in INSTANCES if d.StudyDate.startswith("2020")
                         and d.StudyTime >= "120000"], "StudyInstanceUID")
    combined = distinct([d for d in INSTANCES if "20200101120000" <= d.StudyDate + d.StudyTime
                         <= "20201231235959"], "StudyInstanceUID")
    assert separate != combined, "the sample data should tell the two apart"
    assert results == [separate, combined]


@pytest.mark.parametrize("after", [0, 2])
def test_abort_after(after):
    with QuerySCP(abort_after=after) as peer:
        assoc = associate(peer)
        pending, final = find(assoc, query(QueryRetrieveLevel="IMAGE", SOPInstanceUID=""), STUDY)
        assert final is None and len(pending) == after
        assert wait_for(lambda: assoc.is_aborted)
        assert peer.wait_idle()
        assert peer.associations[0].ended == "aborted-by-scp"
        assert peer.requests[0].responses == after and peer.requests[0].status is None


def test_hang_after_hits_client_dimse_timeout_and_stop_stays_fast():
    peer = QuerySCP(hang_after=1).start()
    try:
        assoc = associate(peer, dimse_timeout=1)
        t0 = time.monotonic()
        pending, final = find(assoc, query(QueryRetrieveLevel="PATIENT", PatientID=""), PATIENT)
        waited = time.monotonic() - t0
        assert len(pending) == 1 and final is None
        assert wait_for(lambda: assoc.is_aborted)
        assert 0.9 <= waited < 3
        assert peer.requests[0].status is None
        assert peer.wait_idle(3)
        assert peer.associations[0].ended == "aborted"
    finally:
        t0 = time.monotonic()
        peer.stop()
        assert time.monotonic() - t0 < 1.5


def test_stop_unblocks_a_hung_query_and_aborts_the_client():
    peer = QuerySCP(hang_after=2).start()
    assoc = associate(peer, dimse_timeout=30)
    got = []
    worker = threading.Thread(
        target=lambda: got.append(find(assoc, query(QueryRetrieveLevel="PATIENT"), PATIENT)))
    worker.start()
    deadline = time.monotonic() + 5
    while not (peer.requests and peer.requests[0].responses == 2) and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)
    t0 = time.monotonic()
    peer.stop()
    assert time.monotonic() - t0 < 1.5
    worker.join(5)
    assert not worker.is_alive() and wait_for(lambda: assoc.is_aborted)
    assert got[0][1] is None
    assert peer.associations[0].ended == "aborted-by-scp"


def test_stop_is_fast_with_an_idle_association_open():
    peer = QuerySCP().start()
    assoc = associate(peer)
    assert assoc.is_established
    t0 = time.monotonic()
    peer.stop()
    assert time.monotonic() - t0 < 1.0
    assert wait_for(lambda: assoc.is_aborted)
    peer.stop()  # idempotent


@pytest.mark.parametrize("reject", [(1, 1, 3), (2, 3, 1), (1, 2, 2)])
def test_reject(reject):
    with QuerySCP(reject=reject) as peer:
        assoc = associate(peer, aet="STRANGER")
        assert assoc.is_rejected and not assoc.is_established
        rj = assoc.acceptor.primitive
        assert (rj.result, rj.result_source, rj.diagnostic) == reject
        assert peer.associations[0].ended == "rejected"
        assert peer.associations[0].calling_ae == "STRANGER"
        peer.reject = None  # knobs apply to the next association
        assoc = associate(peer)
        assert assoc.is_established
        assoc.release()


def test_accept_models_restricts_presentation_contexts():
    with QuerySCP(accept_models=["worklist"]) as peer:
        assoc = associate(peer, models=[STUDY, PATIENT])
        assert not assoc.is_established
        assert peer.wait_idle()
        rec = peer.associations[0]
        assert rec.accepted_contexts == []
        assert {c.abstract_syntax for c in rec.rejected_contexts} == {STUDY, PATIENT}

        peer.accept_models = [VERIFICATION, STUDY]
        assoc = associate(peer, models=[STUDY, PATIENT, VERIFICATION])
        assert [c.abstract_syntax for c in assoc.accepted_contexts] == [STUDY, VERIFICATION]
        assoc.release()


def test_reset_and_independent_peers():
    with QuerySCP(ae_title="ONE") as one, QuerySCP(ae_title="TWO") as two:
        assert one.port != two.port
        for peer in (one, two):
            assoc = associate(peer, called=peer.ae_title)
            find(assoc, query(QueryRetrieveLevel="PATIENT"), PATIENT)
            assoc.release()
        assert [r.called_ae for r in one.requests + two.requests] == ["ONE", "TWO"]
        one.reset()
        assert one.requests == [] and one.associations == [] and len(two.requests) == 1


def test_custom_data():
    data = sampledata.SampleData(instances=INSTANCES[:1])
    with QuerySCP(data=data) as peer:
        assoc = associate(peer)
        pending, _ = find(assoc, query(QueryRetrieveLevel="IMAGE", SOPInstanceUID=""), STUDY)
        wl, _ = find(assoc, query(PatientName=""), WORKLIST)
        assoc.release()
    assert [r.SOPInstanceUID for r in pending] == [INSTANCES[0].SOPInstanceUID]
    assert wl == []


# -- the demo module ----------------------------------------------------------------


def _demo_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    return env


def test_demo_runs_a_command_with_the_port():
    cmd = [sys.executable, "-m", "dimsekit.demo", "--",
           sys.executable, "-c", "import sys; print(sys.argv[1])", "{port}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_demo_env(), timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().isdigit() and int(proc.stdout) > 0


def test_demo_command_can_query_the_peer_and_exit_status_propagates():
    code = (
        "import sys; from pynetdicom import AE; ae = AE(); "
        "ae.add_requested_context('1.2.840.10008.1.1'); "
        "a = ae.associate('127.0.0.1', int(sys.argv[1]), ae_title=sys.argv[2]); "
        "s = a.send_c_echo(); a.release(); sys.exit(5 if s.Status == 0 else 1)"
    )
    cmd = [sys.executable, "-m", "dimsekit.demo", "--",
           sys.executable, "-c", code, "{port}", "{aet}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_demo_env(), timeout=30)
    assert proc.returncode == 5, proc.stderr


def test_demo_serves_until_interrupted():
    proc = subprocess.Popen(
        [sys.executable, "-m", "dimsekit.demo", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_demo_env(),
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("listening on 127.0.0.1:")
        assert line.rstrip().endswith("(AE DEMO-SCP)")
        port = int(line.split(":")[1].split()[0])
        assoc = client(models=[VERIFICATION]).associate("127.0.0.1", port, ae_title="DEMO-SCP")
        assert assoc.send_c_echo().Status == 0
        assoc.release()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
