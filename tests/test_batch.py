"""Batches, drill-down, parallel associations, retries and result caps
(``dimsekit find --batch/--drill-down/--parallel/--retry/--max-per-query``)
run as a user runs them, against the recording peer and the real ones."""

from __future__ import annotations

import csv
import io
import json
import threading
import time
from pathlib import Path

import pydicom
import pytest
from conftest import assert_no_traceback
from realpeers import ORTHANC_CAP, SAMPLE_PATIENTS, SAMPLE_SERIES, SAMPLE_STUDIES, free_port

from dimsekit.testing import QuerySCP

PATIENTS = [p.patient_id for p in SAMPLE_PATIENTS]
STUDY_KEYS = ("-k", "QueryRetrieveLevel=STUDY", "-k", "StudyInstanceUID=")


def find(dimsekit, port, *args, **kwargs):
    result = dimsekit("find", *args, "127.0.0.1", port, **kwargs)
    assert_no_traceback(result)
    return result


def write_csv(path: Path, header: str, *rows: str) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def summary(result) -> str:
    lines = [line for line in result.stderr_lines if line.startswith("I: batch:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


# -- batch files --------------------------------------------------------------------


def test_each_row_is_one_query_on_one_association(dimsekit, scp, tmp_path):
    ids = write_csv(tmp_path / "ids.csv", "PatientID", PATIENTS[0], "NOBODY", PATIENTS[1])
    result = find(dimsekit, scp.port, "--batch", ids, "-k", "QueryRetrieveLevel=PATIENT",
                  "-k", "PatientName=", "--format", "csv")
    assert result.returncode == 0, result.stderr
    assert [r.identifier.PatientID for r in scp.requests] == [PATIENTS[0], "NOBODY",
                                                              PATIENTS[1]]
    assert all("PatientName" in r.identifier for r in scp.requests)  # -k on every row
    assert len(scp.associations) == 1
    rows = csv_rows(result.stdout)
    assert [(r["row"], r["result"], r["PatientID"]) for r in rows] == [
        ("1", "match", PATIENTS[0]), ("2", "none", ""), ("3", "match", PATIENTS[1])]
    assert rows[0]["PatientName"] == str(SAMPLE_PATIENTS[0].patient_name)
    assert summary(result) == ("I: batch: 3 rows, 2 matches, 1 with none, 0 failed, "
                               "1 association")


def test_rows_from_standard_input(dimsekit, scp):
    result = find(dimsekit, scp.port, "--batch", "-", "-k", "QueryRetrieveLevel=STUDY",
                  "-k", "StudyDate=", "--format", "csv",
                  input=f"AccessionNumber,PatientID\n{SAMPLE_STUDIES[0].accession_number},\n"
                        f",{PATIENTS[1]}\n")
    assert result.returncode == 0, result.stderr
    assert [r.identifier.AccessionNumber for r in scp.requests] == [
        SAMPLE_STUDIES[0].accession_number, ""]
    rows = csv_rows(result.stdout)
    assert rows[0]["row"] == "1" and rows[0]["StudyDate"] == SAMPLE_STUDIES[0].study_date
    patient1 = SAMPLE_PATIENTS[1]
    assert [r["row"] for r in rows[1:]] == ["2"] * len(patient1.studies)


def test_every_format_ties_a_response_to_its_row(dimsekit, scp, tmp_path):
    ids = write_csv(tmp_path / "ids.csv", "PatientID", "NOBODY", PATIENTS[1])
    common = ("--batch", ids, "-k", "QueryRetrieveLevel=PATIENT", "-k", "PatientName=")
    ndjson = find(dimsekit, scp.port, *common, "--format", "ndjson")
    assert ndjson.returncode == 0, ndjson.stderr
    (line,) = ndjson.stdout.splitlines()
    obj = json.loads(line)
    assert obj["00090010"] == {"vr": "LO", "Value": ["DIMSEKIT"]}
    assert obj["00091010"] == {"vr": "IS", "Value": [2]}
    ds = pydicom.Dataset.from_json(obj)  # still valid DICOM JSON
    assert ds.PatientID == PATIENTS[1]
    dump = find(dimsekit, scp.port, *common)
    assert "(0009,1010) IS [2]" in dump.stdout
    xml = find(dimsekit, scp.port, *common, "--format", "xml")
    assert 'tag="00091010" vr="IS" privateCreator="DIMSEKIT"' in xml.stdout
    out = tmp_path / "x"
    extract = find(dimsekit, scp.port, *common, "-X", "-od", out)
    assert extract.returncode == 0, extract.stderr
    (rsp,) = sorted(out.glob("rsp*.dcm"))
    assert pydicom.dcmread(rsp).private_block(0x0009, "DIMSEKIT")[0x10].value == 2


def test_another_runs_ndjson_output_is_a_batch(dimsekit, scp, tmp_path):
    first = find(dimsekit, scp.port, "-k", "QueryRetrieveLevel=PATIENT", "-k", "PatientID=",
                 "--format", "ndjson")
    assert first.returncode == 0
    patients = first.stdout.splitlines()
    assert len(patients) == len(PATIENTS)
    (tmp_path / "patients.ndjson").write_text(first.stdout)
    scp.requests.clear() if hasattr(scp.requests, "clear") else None
    second = find(dimsekit, scp.port, "--batch", tmp_path / "patients.ndjson",
                  "-k", "PatientName=", "--format", "csv")
    assert second.returncode == 0, second.stderr
    rows = csv_rows(second.stdout)
    assert [r["PatientID"] for r in rows] == PATIENTS
    assert [r["row"] for r in rows] == [str(n) for n in range(1, len(PATIENTS) + 1)]
    # the second batch's output again: the first batch's row element is not a key
    (tmp_path / "again.ndjson").write_text(find(
        dimsekit, scp.port, "--batch", tmp_path / "patients.ndjson", "--format",
        "ndjson").stdout)
    third = find(dimsekit, scp.port, "--batch", tmp_path / "again.ndjson")
    assert third.returncode == 0, third.stderr
    assert all(0x00091010 not in r.identifier and 0x00090010 not in r.identifier
               for r in scp.requests[-len(PATIENTS):])
    # the next level comes from -k, not from the rows (another run's level);
    # what only a response says (where to retrieve from) is no key
    fourth = find(dimsekit, scp.port, "--batch", tmp_path / "patients.ndjson", "-k",
                  "QueryRetrieveLevel=STUDY", "-k", "StudyInstanceUID=", "--format", "csv")
    assert fourth.returncode == 0, fourth.stderr
    sent = [r.identifier for r in scp.requests[-len(PATIENTS):]]
    assert {str(i.QueryRetrieveLevel) for i in sent} == {"STUDY"}
    assert not any("RetrieveAETitle" in i for i in sent)
    assert len(csv_rows(fourth.stdout)) == len(SAMPLE_STUDIES)


@pytest.mark.parametrize("content, message", [
    ("PatientID,NoSuchKeyword\nA,B\n", "header column 'NoSuchKeyword'"),
    ("PatientID,Columns\nA,1\nB,wide\n", "row 2 (line 3), column 'Columns'"),
    ("PatientID\nA\nB,C\n", "row 2 (line 3): 2 cells for 1 columns"),
    ("PatientID\n", "no rows"),
    ('{"00100020": {"vr": "LO", "Value": ["A"]}}\n{not json\n', "line 2: not valid JSON"),
])
def test_every_row_is_checked_before_the_first_is_sent(dimsekit, scp, tmp_path, content,
                                                          message):
    batch = tmp_path / "rows"
    batch.write_text(content)
    result = find(dimsekit, scp.port, "--batch", batch, "-k", "QueryRetrieveLevel=PATIENT")
    assert result.returncode == 2, result.stderr
    assert message in result.stderr_lines[-1]
    assert len(result.stderr_lines) == 1
    assert scp.associations == []


def test_a_failing_row_is_reported_and_the_batch_goes_on(dimsekit, make_scp, tmp_path):
    scp = make_scp(status_for=lambda ds: 0xC000 if ds.PatientID == PATIENTS[1] else None)
    ids = write_csv(tmp_path / "ids.csv", "PatientID", *PATIENTS[:3])
    result = find(dimsekit, scp.port, "--batch", ids, "-k", "QueryRetrieveLevel=PATIENT",
                  "--format", "csv")
    assert result.returncode == 1, result.stderr
    assert len(scp.requests) == 3
    rows = csv_rows(result.stdout)
    # the matches the peer sent before its failure status are kept
    assert [(r["row"], r["result"]) for r in rows] == [
        ("1", "match"), ("2", "match"), ("2", "failed"), ("3", "match")]
    assert any("row 2 (line 3): peer answered 0xC000" in line
               for line in result.stderr_lines), result.stderr
    assert "1 failed" in summary(result)
    assert result.stderr_lines[-1] == "E: 1 of 3 rows failed (see the errors above)"


def test_a_peer_that_ends_every_association_after_one_query(dimsekit, make_scp, tmp_path):
    scp = make_scp(queries_per_association=1)
    ids = write_csv(tmp_path / "ids.csv", "PatientID", *PATIENTS)
    result = find(dimsekit, scp.port, "--batch", ids, "-k", "QueryRetrieveLevel=PATIENT",
                  "--format", "csv")
    assert result.returncode == 0, result.stderr
    assert [r["PatientID"] for r in csv_rows(result.stdout)] == PATIENTS
    answered = [r for r in scp.requests if r.responses]
    assert [r.identifier.PatientID for r in answered] == PATIENTS
    assert f"{len(PATIENTS)} associations" in summary(result)


# -- parallel associations ----------------------------------------------------------


def test_parallel_keeps_row_order_and_unordered_has_the_same_lines(dimsekit, make_scp,
                                                                    tmp_path):
    scp = make_scp(response_delay=0.02)
    ids = write_csv(tmp_path / "ids.csv", "PatientID", *reversed(PATIENTS), *PATIENTS)
    common = ("--batch", ids, "-k", "QueryRetrieveLevel=STUDY", "-k", "AccessionNumber=",
              "--format", "csv")
    sequential = find(dimsekit, scp.port, *common)
    assert sequential.returncode == 0, sequential.stderr
    before = len(scp.associations)
    parallel = find(dimsekit, scp.port, *common, "--parallel", "3")
    assert parallel.returncode == 0, parallel.stderr
    assert parallel.stdout == sequential.stdout
    assert len(scp.associations) - before == 3
    unordered = find(dimsekit, scp.port, *common, "--parallel", "3", "--unordered")
    assert unordered.returncode == 0, unordered.stderr
    assert sorted(unordered.stdout.splitlines()) == sorted(sequential.stdout.splitlines())


# -- drill-down -----------------------------------------------------------------------


def test_drill_down_to_series_then_images(dimsekit, scp):
    study = SAMPLE_STUDIES[0]
    result = find(dimsekit, scp.port, *STUDY_KEYS, "-k",
                  f"AccessionNumber={study.accession_number}", "--drill-down", "IMAGE",
                  "-k", "IMAGE:InstanceNumber=", "--format", "csv")
    assert result.returncode == 0, result.stderr
    rows = csv_rows(result.stdout)
    series = list(study.series)
    images = [im for se in series for im in se.images]
    assert [r["level"] for r in rows] == (["STUDY"] + ["SERIES"] * len(series)
                                          + ["IMAGE"] * len(images))
    assert [r["SeriesInstanceUID"] for r in rows[1:1 + len(series)]] == [
        se.series_instance_uid for se in series]
    assert sorted(r["SOPInstanceUID"] for r in rows if r["level"] == "IMAGE") == sorted(
        im.sop_instance_uid for im in images)
    series_queries = [r for r in scp.requests if r.identifier.QueryRetrieveLevel == "SERIES"]
    assert [q.identifier.StudyInstanceUID for q in series_queries] == [
        study.study_instance_uid]
    image_queries = [r for r in scp.requests if r.identifier.QueryRetrieveLevel == "IMAGE"]
    assert {q.identifier.SeriesInstanceUID for q in image_queries} == {
        se.series_instance_uid for se in series}
    assert all(list(q.identifier.keys())  # -k IMAGE:... replaces the default keys
               and "SOPClassUID" not in q.identifier for q in image_queries)
    assert len(scp.associations) == 1


def test_drill_down_level_keys_filter(dimsekit, scp):
    result = find(dimsekit, scp.port, *STUDY_KEYS, "--drill-down", "SERIES",
                  "-k", "SERIES:Modality=CT", "-k", "SERIES:SeriesDescription=",
                  "--parallel", "2", "--format", "csv")
    assert result.returncode == 0, result.stderr
    got = [r for r in csv_rows(result.stdout) if r["level"] == "SERIES"]
    assert sorted(r["SeriesInstanceUID"] for r in got) == sorted(
        se.series_instance_uid for se in SAMPLE_SERIES if se.modality == "CT")


@pytest.mark.parametrize("args, message", [
    (("-k", "PatientName=", "--drill-down", "SERIES"), "drill-down needs a Q/R model"),
    (("-k", "QueryRetrieveLevel=SERIES", "--drill-down", "SERIES"), "must be below"),
    (("-k", "QueryRetrieveLevel=STUDY", "-k", "SERIES:Modality="), "give --drill-down"),
    (("-k", "QueryRetrieveLevel=STUDY", "--batch", "-", "--repeat", "2"), "--repeat"),
])
def test_drill_down_usage_errors(dimsekit, scp, args, message):
    result = find(dimsekit, scp.port, *args, input="PatientID\nA\n")
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert scp.associations == []


# -- retries ----------------------------------------------------------------------------


def test_retry_waits_for_a_peer_that_comes_up(dimsekit, tmp_path):
    port = free_port()
    started: list[QuerySCP] = []

    def later() -> None:
        time.sleep(1.0)
        started.append(QuerySCP(port=port).start())

    thread = threading.Thread(target=later)
    thread.start()
    try:
        result = find(dimsekit, port, "-k", "QueryRetrieveLevel=PATIENT", "-k",
                      f"PatientID={PATIENTS[0]}", "--retry", "4", "--retry-wait", "0.4",
                      "--format", "csv")
    finally:
        thread.join()
        for scp in started:
            scp.stop()
    assert result.returncode == 0, result.stderr
    assert PATIENTS[0] in result.stdout
    assert any("retrying in 0.4 s (retry 1 of 4)" in line for line in result.stderr_lines)


def test_retries_run_out_on_an_unreachable_peer(dimsekit):
    port = free_port()
    started = time.monotonic()
    result = find(dimsekit, port, "-k", "QueryRetrieveLevel=PATIENT", "--retry", "2",
                  "--retry-wait", "0.2")
    assert result.returncode == 3
    retries = [line for line in result.stderr_lines if "retrying in" in line]
    assert [line.split("retrying in ")[1] for line in retries] == [
        "0.2 s (retry 1 of 2)", "0.4 s (retry 2 of 2)"]
    assert result.stderr_lines[-1].startswith(f"E: cannot connect to 127.0.0.1:{port}")
    assert time.monotonic() - started >= 0.6


def test_a_permanent_rejection_is_not_retried(dimsekit, make_scp):
    scp = make_scp(reject=(1, 1, 3))
    result = find(dimsekit, scp.port, "-k", "QueryRetrieveLevel=PATIENT", "--retry", "3")
    assert result.returncode == 3
    assert len(scp.associations) == 1
    assert not any("retrying" in line for line in result.stderr_lines)


def test_an_abort_before_the_first_response_is_retried(dimsekit, make_scp):
    scp = make_scp(abort_after=0)
    result = find(dimsekit, scp.port, "-k", "QueryRetrieveLevel=PATIENT", "--retry", "2",
                  "--retry-wait", "0")
    assert result.returncode == 4, result.stderr
    assert len(scp.requests) == 3


def test_nothing_is_retried_after_a_response(dimsekit, make_scp):
    scp = make_scp(abort_after=1)
    result = find(dimsekit, scp.port, "-k", "QueryRetrieveLevel=PATIENT", "-k", "PatientID=",
                  "--retry", "3", "--retry-wait", "0", "--format", "csv")
    assert result.returncode == 4, result.stderr
    assert len(scp.requests) == 1
    assert len(csv_rows(result.stdout)) == 1  # what arrived is kept


# -- the Python API ---------------------------------------------------------------------


def test_find_many_from_python(scp, tmp_path):
    import dimsekit

    pacs = dimsekit.Peer("127.0.0.1", scp.port)
    batch = pacs.find_many([{"PatientID": PATIENTS[0]}, {"PatientID": "NOBODY"}],
                           QueryRetrieveLevel="PATIENT", PatientName="")
    items = list(batch)
    assert [(type(i).__name__, i.row) for i in items] == [
        ("Match", 1), ("RowEnd", 1), ("RowEnd", 2)]
    assert items[0].dataset.PatientName == str(SAMPLE_PATIENTS[0].patient_name)
    assert (items[1].matches, items[2].matches) == (1, 0)
    assert batch.summary.text() == ("2 rows, 1 match, 1 with none, 0 failed, "
                                    "1 association")
    ids = write_csv(tmp_path / "ids.csv", "PatientID", *PATIENTS)
    with pacs.connect() as session:
        found = [i.dataset.PatientID for i in session.find_many(
            str(ids), QueryRetrieveLevel="PATIENT") if isinstance(i, dimsekit.Match)]
        assert found == PATIENTS
        session.echo()  # the session is usable again
    with pytest.raises(dimsekit.UsageError, match="row 2"):
        pacs.find_many([{"PatientID": "A"}, {"NoSuchKeyword": "B"}])


def test_find_many_drill_down_and_failures_from_python(make_scp):
    import dimsekit

    scp = make_scp(status_for=lambda ds: 0xA700 if ds.get("PatientID") == "BAD" else None)
    pacs = dimsekit.Peer("127.0.0.1", scp.port)
    ends = {}
    series = []
    for item in pacs.find_many([{"PatientID": PATIENTS[0]}, {"PatientID": "BAD"}],
                               QueryRetrieveLevel="STUDY", StudyInstanceUID="",
                               drill_down="SERIES", parallel=2):
        if isinstance(item, dimsekit.RowEnd):
            ends[item.row] = item
        elif item.level == "SERIES":
            series.append(item.dataset.SeriesInstanceUID)
    assert sorted(series) == sorted(se.series_instance_uid for st in
                                    SAMPLE_PATIENTS[0].studies for se in st.series)
    assert ends[1].ok and ends[1].queries == 1 + len(SAMPLE_PATIENTS[0].studies)
    assert isinstance(ends[2].error, dimsekit.PeerFailure)
    assert ends[2].error.status == 0xA700


# -- real peers -------------------------------------------------------------------------


@pytest.mark.realpeer("wlmscpfs")
def test_worklist_batch_against_wlmscpfs(dimsekit, wlmscpfs_peer, tmp_path):
    records = [pydicom.dcmread(p, force=True) for p in wlmscpfs_peer.worklist_files]
    ids = sorted({str(r.PatientID) for r in records})
    batch = write_csv(tmp_path / "ids.csv", "PatientID", *ids, "NOBODY")
    result = find(dimsekit, wlmscpfs_peer.port, "-aec", wlmscpfs_peer.aet, "--batch", batch,
                  "-k", "PatientName=", "-k", "ScheduledProcedureStepSequence[0].Modality=",
                  "--format", "csv")
    assert result.returncode == 0, result.stderr
    rows = csv_rows(result.stdout)
    for n, pid in enumerate(ids, 1):
        expected = sum(1 for r in records if str(r.PatientID) == pid)
        got = [r for r in rows if r["row"] == str(n)]
        assert len(got) == expected and all(r["PatientID"] == pid for r in got)
    assert rows[-1] == {**rows[-1], "row": str(len(ids) + 1), "result": "none"}
    assert "1 association" in summary(result)


@pytest.mark.realpeer("dcmqrscp")
def test_drill_down_against_dcmqrscp(dimsekit, dcmqrscp_peer):
    result = find(dimsekit, dcmqrscp_peer.port, "-aec", dcmqrscp_peer.aet, "-P",
                  "-k", "QueryRetrieveLevel=PATIENT", "-k", "PatientID=",
                  "--drill-down", "SERIES", "--format", "csv")
    assert result.returncode == 0, result.stderr
    rows = csv_rows(result.stdout)
    levels = [r["level"] for r in rows]
    assert levels.count("PATIENT") == len(SAMPLE_PATIENTS)
    assert levels.count("STUDY") == len(SAMPLE_STUDIES)
    assert sorted(r["SeriesInstanceUID"] for r in rows if r["level"] == "SERIES") == sorted(
        se.series_instance_uid for se in SAMPLE_SERIES)


@pytest.mark.realpeer("orthanc")
def test_parallel_drill_down_against_orthanc(dimsekit, orthanc_peer):
    common = ("-aec", orthanc_peer.aet, "-S", *STUDY_KEYS, "--drill-down", "SERIES",
              "--format", "csv")
    one = find(dimsekit, orthanc_peer.port, *common)
    four = find(dimsekit, orthanc_peer.port, *common, "--parallel", "4")
    assert one.returncode == four.returncode == 0, four.stderr
    assert four.stdout == one.stdout
    series = [r for r in csv_rows(four.stdout) if r["level"] == "SERIES"]
    assert sorted(r["SeriesInstanceUID"] for r in series) == sorted(
        se.series_instance_uid for se in SAMPLE_SERIES)


@pytest.mark.realpeer("orthanc")
def test_orthanc_result_cap_without_and_with_max_per_query(dimsekit, orthanc_capped_peer):
    peer = orthanc_capped_peer
    common = ("-aec", peer.aet, "-S", *STUDY_KEYS, "-k", "StudyDate=", "--format", "csv")
    capped = find(dimsekit, peer.port, *common)
    assert capped.returncode == 1
    assert len(csv_rows(capped.stdout)) == ORTHANC_CAP
    assert "peer answered 0xFE00" in capped.stderr_lines[-1]
    assert (f"the peer stopped the matching itself after {ORTHANC_CAP} matches"
            in capped.stderr_lines[-1])
    split = find(dimsekit, peer.port, *common, "--max-per-query", str(ORTHANC_CAP), "-v")
    assert split.returncode == 0, split.stderr
    uids = [r["StudyInstanceUID"] for r in csv_rows(split.stdout)]
    assert len(uids) == len(set(uids))  # merged without duplicates
    assert sorted(uids) == sorted(st.study_instance_uid for st in SAMPLE_STUDIES)
    assert any("splitting on StudyDate" in line for line in split.stderr_lines)


def test_rows_do_not_leak_into_each_other(dimsekit, scp, tmp_path):
    # rows share the -k template: a row's values, its character set and its
    # sequence items stay its own
    batch = tmp_path / "rows.csv"
    batch.write_text("PatientName,ScheduledProcedureStepSequence[0].Modality\n"
                     "MÜLLER*,MR\nSMITH*,\n,CT\n", encoding="utf-8")
    result = find(dimsekit, scp.port, "--batch", batch, "-k", "PatientID=",
                  "-k", "ScheduledProcedureStepSequence[0].ScheduledStationAETitle=",
                  "--format", "csv")
    assert result.returncode == 0, result.stderr
    got = [r.identifier for r in scp.requests]
    assert [str(i.PatientName) for i in got] == ["MÜLLER*", "SMITH*", ""]
    assert [i.get("SpecificCharacterSet") for i in got] == ["ISO_IR 100", None, None]
    items = [i.ScheduledProcedureStepSequence[0] for i in got]
    assert [it.Modality for it in items] == ["MR", "", "CT"]
    assert all("ScheduledStationAETitle" in it for it in items)
    assert all("PatientID" in i for i in got)


def test_parallel_goes_on_with_the_associations_the_peer_allows(dimsekit, make_scp, tmp_path):
    scp = make_scp(max_associations=2, response_delay=0.05)
    ids = write_csv(tmp_path / "ids.csv", "PatientID", *PATIENTS, *PATIENTS)
    result = find(dimsekit, scp.port, "--batch", ids, "-k", "QueryRetrieveLevel=PATIENT",
                  "--parallel", "4", "--format", "csv")
    assert result.returncode == 0, result.stderr
    assert [r["PatientID"] for r in csv_rows(result.stdout)] == PATIENTS * 2
    refused = [line for line in result.stderr_lines if "going on with" in line]
    assert refused and all("rejected" in line for line in refused), result.stderr


@pytest.mark.parametrize("parallel", ["1", "3"])
def test_ctrl_c_ends_a_batch_with_130_and_keeps_what_arrived(make_scp, tmp_path, parallel):
    import signal
    import subprocess
    import sys

    from conftest import read_until

    scp = make_scp(response_delay=0.3)
    ids = write_csv(tmp_path / "ids.csv", "PatientID", *(PATIENTS * 5))
    proc = subprocess.Popen(
        [sys.executable, "-m", "dimsekit", "find", "--batch", str(ids), "--parallel",
         parallel, "-k", "QueryRetrieveLevel=PATIENT", "--format", "ndjson", "127.0.0.1",
         str(scp.port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    got = read_until(proc, b"\n", count=2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    lines = (got + out).decode().splitlines()
    assert proc.returncode == 130, err.decode()
    assert len(lines) >= 2 and all(json.loads(line)["00091010"] for line in lines)
    stderr = err.decode().splitlines()
    assert any(line.startswith("I: batch: ") for line in stderr)
    assert stderr[-1].startswith("E: ") and "interrupted" in stderr[-1]
    assert "Traceback" not in err.decode()


def test_max_per_query_splits_on_the_date_until_under_the_cap(dimsekit, scp):
    result = find(dimsekit, scp.port, *STUDY_KEYS, "-k", "StudyDate=", "--max-per-query", "2",
                  "--format", "csv")
    assert result.returncode == 0, result.stderr
    uids = [r["StudyInstanceUID"] for r in csv_rows(result.stdout)]
    assert sorted(uids) == sorted(st.study_instance_uid for st in SAMPLE_STUDIES)
    dates = [str(r.identifier.StudyDate) for r in scp.requests]
    assert dates[0] == "" and all("-" in d or d.isdigit() for d in dates[1:])
    # every part that was not split further got fewer matches than the cap
    parts = {d: r.responses for d, r in zip(dates, scp.requests, strict=True)}
    leaves = [d for d in dates[1:] if not any(
        o != d and o.split("-")[0] >= d.split("-")[0] and o.split("-")[-1] <= d.split("-")[-1]
        for o in dates[1:])]
    assert leaves and all(parts[d] < 2 for d in leaves)


@pytest.mark.parametrize("key", ["PatientName", "StudyDate=2020", "StudyTime"])
def test_split_on_must_name_a_date_key(dimsekit, scp, key):
    result = find(dimsekit, scp.port, *STUDY_KEYS, "--max-per-query", "2", "--split-on", key)
    assert result.returncode == 2
    assert "--split-on" in result.stderr_lines[-1]
    assert scp.associations == []


def test_the_row_element_moves_aside_for_a_vendors_private_group():
    from pydicom import Dataset

    from dimsekit.api import add_row_element
    from dimsekit.qr.rows import drop_row_element

    ds = Dataset()
    ds.add_new(0x00090010, "LO", "GEMS_IDEN_01")
    ds.add_new(0x00091001, "LO", "vendor")
    add_row_element(ds, 5)
    assert ds.private_block(0x0009, "DIMSEKIT")[0x10].value == 5
    assert ds[0x00091001].value == "vendor"
    drop_row_element(ds)
    assert sorted(ds.keys()) == [0x00090010, 0x00091001]


def test_every_row_has_a_line_when_the_association_cannot_be_had(dimsekit, tmp_path):
    port = free_port()
    ids = write_csv(tmp_path / "ids.csv", "PatientID", *PATIENTS[:3])
    result = find(dimsekit, port, "--batch", ids, "-k", "QueryRetrieveLevel=PATIENT",
                  "--retry", "1", "--retry-wait", "0", "--format", "csv")
    assert result.returncode == 3
    assert [(r["row"], r["result"]) for r in csv_rows(result.stdout)] == [
        ("1", "failed"), ("2", "not-sent"), ("3", "not-sent")]
    assert summary(result).startswith("I: batch: 3 rows, 0 matches, 0 with none, 1 failed, "
                                      "2 not sent")
    errors = [line for line in result.stderr_lines if line.startswith("E: ")]
    assert len(errors) == 1 and "cannot connect" in errors[0]


def test_parallel_rows_in_flight_are_kept_when_the_peer_goes_away(dimsekit, make_scp,
                                                                   tmp_path):
    scp = make_scp(response_delay=0.05)
    ids = write_csv(tmp_path / "ids.csv", "PatientID", *(PATIENTS * 10))

    def stop_peer_soon() -> None:
        time.sleep(0.8)
        scp.reject = (1, 1, 3)  # new associations refused from now on
        scp.queries_per_association = 0  # and the open ones aborted

    thread = threading.Thread(target=stop_peer_soon)
    thread.start()
    result = find(dimsekit, scp.port, "--batch", ids, "-k", "QueryRetrieveLevel=PATIENT",
                  "--parallel", "2", "--format", "csv")
    thread.join()
    assert result.returncode == 3, result.stderr
    rows = csv_rows(result.stdout)
    per_row = {}
    for r in rows:
        per_row.setdefault(r["row"], []).append(r["result"])
    assert list(per_row) == [str(n) for n in range(1, len(PATIENTS) * 10 + 1)]
    assert "not-sent" in per_row[str(len(PATIENTS) * 10)]


def test_a_single_day_at_the_cap_that_the_peer_ended_well_is_complete(dimsekit, scp):
    study = SAMPLE_STUDIES[0]
    result = find(dimsekit, scp.port, *STUDY_KEYS, "-k", f"StudyDate={study.study_date}",
                  "--max-per-query", "1", "--format", "csv")
    assert result.returncode == 0, result.stderr
    assert len(csv_rows(result.stdout)) == 1
    assert any("cannot be split further; the peer ended it with Success" in line
               for line in result.stderr_lines)


def test_library_find_many_prints_nothing_of_its_own(tmp_path):
    import subprocess
    import sys

    port = free_port()
    code = ("import dimsekit\n"
            f"b = dimsekit.Peer('127.0.0.1', {port}).find_many([{{'PatientID': 'X'}}],"
            " retry=1, retry_wait=0)\n"
            "try:\n    list(b)\nexcept dimsekit.AssociationError as e:\n"
            "    print('exit', e.exit_code, b.summary.not_sent)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.stderr == ""
    assert out.stdout == "exit 3 0\n"


def test_semicolons_and_spaces_in_a_spreadsheet_csv(dimsekit, scp, tmp_path):
    batch = tmp_path / "excel.csv"
    batch.write_text(f"PatientID; PatientName\r\n {PATIENTS[0]} ;\r\n", encoding="utf-8-sig")
    result = find(dimsekit, scp.port, "--batch", batch, "-k", "QueryRetrieveLevel=PATIENT",
                  "--format", "csv")
    assert result.returncode == 0, result.stderr
    assert scp.requests[0].identifier.PatientID == PATIENTS[0]
    assert [r["PatientID"] for r in csv_rows(result.stdout)] == [PATIENTS[0]]


def test_a_split_row_ends_with_success(scp):
    import dimsekit

    pacs = dimsekit.Peer("127.0.0.1", scp.port)
    items = list(pacs.find_many([{"StudyDate": ""}], QueryRetrieveLevel="STUDY",
                                StudyInstanceUID="", max_per_query=2))
    end = items[-1]
    assert isinstance(end, dimsekit.RowEnd)
    assert (end.status, end.error, end.matches) == (0x0000, None, len(SAMPLE_STUDIES))
    assert end.queries > 1


def test_a_reader_that_stops_early_ends_a_batch_quietly(make_scp, tmp_path):
    """``dimsekit find --batch ... | head -1``: the closed stdout ends the
    run at once (exit 0, nothing said), and is not taken for a lost
    association: no reconnection for each row that is left."""
    import subprocess

    from dimsekit.testing.cli import DIMSEKIT_COMMAND

    rows = tmp_path / "rows.csv"
    rows.write_text("PatientID\n" + "PAT001\n" * 300)
    scp = make_scp(repeat_matches=50)
    proc = subprocess.Popen(
        [*DIMSEKIT_COMMAND, "find", "--batch", str(rows), "-k", "QueryRetrieveLevel=PATIENT",
         "-k", "PatientName=", "127.0.0.1", str(scp.port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    first = proc.stdout.readline()
    proc.stdout.close()  # what `head -1` does after its line
    _, stderr = proc.communicate(timeout=60)
    assert first.strip()
    assert (proc.returncode, stderr) == (0, b"")
    assert scp.wait_idle(10)
    assert len(scp.associations) == 1
    assert len(scp.requests) < 300
