"""``dimsekit find`` as a subprocess against real peers, compared with DCMTK
``findscu`` on the same query (the reference a PACS administrator trusts)."""

from __future__ import annotations

import json
from pathlib import Path

import pydicom
import pytest
from conftest import assert_no_traceback
from realpeers import (
    SAMPLE_IMAGES,
    SAMPLE_PATIENTS,
    SAMPLE_SERIES,
    SAMPLE_STUDIES,
    run_findscu,
)


def canonical(paths) -> list[str]:
    """Response files as sorted canonical DICOM JSON (order-insensitive)."""
    out = []
    for path in paths:
        ds = pydicom.dcmread(path)
        out.append(json.dumps(ds.to_json_dict(), sort_keys=True))
    return sorted(out)


def extracted(directory: Path) -> list[Path]:
    return sorted(directory.glob("rsp*.dcm"))


def find_both(dimsekit, peer, tmp_path, *args, query_file=None):
    """Run DCMTK findscu and dimsekit find with the same arguments."""
    ref = run_findscu(peer, tmp_path / "dcmtk", *args, query_file=query_file)
    assert ref.returncode == 0, ref.stderr
    files = [str(query_file)] if query_file else []
    ours = dimsekit("find", "-X", "+sr", "-od", tmp_path / "ours", "-aec", peer.aet, *args,
                    peer.host, peer.port, *files)
    assert_no_traceback(ours)
    assert ours.returncode == 0, ours.stderr
    return ref, ours


# -- wlmscpfs: Debian's 13 example worklist queries ---------------------------


@pytest.mark.realpeer("wlmscpfs")
@pytest.mark.parametrize("n", range(13))
def test_example_worklist_query_equals_findscu(n, dimsekit, wlmscpfs_peer,
                                               worklist_queries, tmp_path):
    query = worklist_queries[n]
    ref, ours = find_both(dimsekit, wlmscpfs_peer, tmp_path, "-W", query_file=query)
    got = extracted(tmp_path / "ours")
    assert canonical(got) == canonical(ref.responses)
    # one dump block per response on stdout
    assert ours.stdout.count("Find Response: ") == len(got)


@pytest.mark.realpeer("wlmscpfs")
def test_seed_worklist_example_path_key(dimsekit, wlmscpfs_peer, tmp_path):
    # findscu -W -k "(0040,0100)[0].Modality=CT" caesar 5678, with return keys
    args = ("-W", "-k", "(0040,0100)[0].Modality=CT", "-k", "PatientName",
            "-k", "(0040,0100)[0].ScheduledStationAETitle")
    ref, ours = find_both(dimsekit, wlmscpfs_peer, tmp_path, *args)
    got = extracted(tmp_path / "ours")
    assert len(got) > 0
    assert canonical(got) == canonical(ref.responses)
    for path in got:
        assert pydicom.dcmread(path).ScheduledProcedureStepSequence[0].Modality == "CT"


@pytest.mark.realpeer("wlmscpfs")
def test_worklist_model_is_inferred_without_a_level(dimsekit, wlmscpfs_peer):
    result = dimsekit("find", "-v", "-aec", wlmscpfs_peer.aet, "-k", "PatientName=*",
                      wlmscpfs_peer.host, wlmscpfs_peer.port)
    assert result.returncode == 0, result.stderr
    assert "modality worklist information model (no QueryRetrieveLevel" in result.stderr
    assert result.stdout.count("Find Response: ") == len(wlmscpfs_peer.worklist_files)


# -- dcmqrscp: PATIENT / STUDY / SERIES / IMAGE --------------------------------


def _level_args(level, model, **keys):
    args = [model, "-k", f"QueryRetrieveLevel={level}"]
    for key, value in keys.items():
        args += ["-k", f"{key}={value}"]
    return args


LEVEL_QUERIES = {
    "PATIENT": (_level_args("PATIENT", "-P", PatientName="", PatientID=""),
                len(SAMPLE_PATIENTS)),
    "STUDY": (_level_args("STUDY", "-S", StudyInstanceUID="", PatientID="",
                          StudyDate="", AccessionNumber=""), len(SAMPLE_STUDIES)),
    "SERIES": (_level_args("SERIES", "-S",
                           StudyInstanceUID=SAMPLE_STUDIES[0].study_instance_uid,
                           SeriesInstanceUID="", Modality=""),
               len(SAMPLE_STUDIES[0].series)),
    "IMAGE": (_level_args("IMAGE", "-P", PatientID=SAMPLE_PATIENTS[0].patient_id,
                          StudyInstanceUID=SAMPLE_STUDIES[0].study_instance_uid,
                          SeriesInstanceUID=SAMPLE_SERIES[0].series_instance_uid,
                          SOPInstanceUID="", InstanceNumber=""),
              len(SAMPLE_SERIES[0].images)),
}


@pytest.mark.realpeer("dcmqrscp")
@pytest.mark.parametrize("level", list(LEVEL_QUERIES))
def test_dcmqrscp_levels_equal_findscu(level, dimsekit, dcmqrscp_peer, tmp_path):
    args, expected = LEVEL_QUERIES[level]
    ref, ours = find_both(dimsekit, dcmqrscp_peer, tmp_path, *args)
    got = extracted(tmp_path / "ours")
    assert len(got) == expected
    assert canonical(got) == canonical(ref.responses)


@pytest.mark.realpeer("dcmqrscp")
def test_seed_patient_example_with_query_file(dimsekit, dcmqrscp_peer, tmp_path):
    # findscu -P -k "(0010,0010)=HEWETT*" caesar 5678 patqry.dcm -- with a
    # patqry.dcm as the DCMTK manual describes it, and a name our data has
    patqry = tmp_path / "patqry.dcm"
    ds = pydicom.Dataset()
    ds.QueryRetrieveLevel = "PATIENT"
    ds.PatientName = ""
    ds.PatientID = ""
    ds.save_as(patqry, implicit_vr=True, little_endian=True)
    for key in ("(0010,0010)=SMITH*", "PatientName=SMITH*"):
        out = tmp_path / key.replace("(", "").replace(")", "").replace(",", "")
        result = dimsekit("find", "-P", "-k", key, "-aec", dcmqrscp_peer.aet,
                          "-X", "-od", out, dcmqrscp_peer.host, dcmqrscp_peer.port, patqry)
        assert result.returncode == 0, result.stderr
        got = [pydicom.dcmread(p) for p in extracted(out)]
        smiths = [p for p in SAMPLE_PATIENTS if p.patient_name.startswith("SMITH")]
        assert len(smiths) == 2  # SMITH^Jane and SMITHERS^Waylon
        assert sorted((str(d.PatientName), str(d.PatientID)) for d in got) == sorted(
            (p.patient_name, p.patient_id) for p in smiths)


# -- Orthanc -------------------------------------------------------------------


@pytest.mark.realpeer("orthanc")
def test_orthanc_study_query_equals_findscu(dimsekit, orthanc_peer, tmp_path):
    args, expected = LEVEL_QUERIES["STUDY"]
    ref, ours = find_both(dimsekit, orthanc_peer, tmp_path, *args)
    got = extracted(tmp_path / "ours")
    assert len(got) == expected
    assert canonical(got) == canonical(ref.responses)


@pytest.mark.realpeer("orthanc")
def test_pynetdicom_seed_example_against_orthanc(dimsekit, orthanc_peer):
    # python -m pynetdicom findscu ADDR 11112 -k QueryRetrieveLevel=PATIENT -k PatientName=
    result = dimsekit("find", "-aec", orthanc_peer.aet, orthanc_peer.host, orthanc_peer.port,
                      "-k", "QueryRetrieveLevel=PATIENT", "-k", "PatientName=")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("Find Response: ") == len(SAMPLE_PATIENTS)
    for patient in SAMPLE_PATIENTS:
        assert f"[{patient.patient_name}]" in result.stdout


@pytest.mark.realpeer("orthanc")
def test_orthanc_image_level_count(dimsekit, orthanc_peer, tmp_path):
    result = dimsekit("find", "-S", "-L", "IMAGE", "-k", "SOPInstanceUID=",
                      "-k", f"StudyInstanceUID={SAMPLE_STUDIES[0].study_instance_uid}",
                      "-k", f"SeriesInstanceUID={SAMPLE_SERIES[0].series_instance_uid}",
                      "-aec", orthanc_peer.aet, "-X", "-od", tmp_path,
                      orthanc_peer.host, orthanc_peer.port)
    assert result.returncode == 0, result.stderr
    uids = sorted(pydicom.dcmread(p).SOPInstanceUID for p in extracted(tmp_path))
    assert uids == sorted(im.sop_instance_uid for im in SAMPLE_SERIES[0].images)
    assert len(SAMPLE_IMAGES) > len(uids)


# -- output formats against real peers -------------------------------------------


def _parse(fmt: str, stdout: str) -> list:
    from xml.etree import ElementTree as ET

    from formats import xml_to_json_model

    if fmt == "json":
        return json.loads(stdout)
    if fmt == "ndjson":
        return [json.loads(line) for line in stdout.splitlines()]
    root = ET.fromstring(stdout.encode("utf-8"))
    return [xml_to_json_model(m) for m in root.findall("NativeDicomModel")]


def _expected(fmt: str, datasets) -> list:
    from formats import json_model_as_text

    models = [d.to_json_dict() for d in datasets]
    return models if fmt != "xml" else [json_model_as_text(m) for m in models]


def _sorted(models):
    return sorted(models, key=lambda m: json.dumps(m, sort_keys=True))


@pytest.mark.realpeer("wlmscpfs")
@pytest.mark.parametrize("fmt", ["json", "ndjson", "xml"])
def test_formats_against_wlmscpfs_equal_findscu(fmt, dimsekit, wlmscpfs_peer,
                                                worklist_queries, tmp_path):
    query = worklist_queries[1]
    ref = run_findscu(wlmscpfs_peer, tmp_path / "dcmtk", "-W", query_file=query)
    assert ref.count > 0
    result = dimsekit("find", "-W", "--format", fmt, "-aec", wlmscpfs_peer.aet,
                      wlmscpfs_peer.host, wlmscpfs_peer.port, query)
    assert result.returncode == 0, result.stderr
    assert _sorted(_parse(fmt, result.stdout)) == _sorted(_expected(fmt, ref.datasets()))


@pytest.mark.realpeer("orthanc")
@pytest.mark.parametrize("fmt", ["json", "ndjson", "xml", "csv"])
def test_formats_against_orthanc_equal_findscu(fmt, dimsekit, orthanc_peer, tmp_path):
    import csv
    import io

    args, expected = LEVEL_QUERIES["STUDY"]
    args = [*args, "-k", "PatientName="]
    ref = run_findscu(orthanc_peer, tmp_path / "dcmtk", *args)
    assert ref.count == expected
    result = dimsekit("find", "--format", fmt, "-aec", orthanc_peer.aet, *args,
                      orthanc_peer.host, orthanc_peer.port)
    assert result.returncode == 0, result.stderr
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(result.stdout)))
        got = sorted((r["StudyInstanceUID"], r["PatientName"], r["StudyDate"]) for r in rows)
        want = sorted((d.StudyInstanceUID, str(d.PatientName), d.StudyDate)
                      for d in ref.datasets())
        assert got == want
        assert any(r["PatientName"] == "MÜLLER^Hans" for r in rows)  # Latin-1 in, UTF-8 out
        return
    assert _sorted(_parse(fmt, result.stdout)) == _sorted(_expected(fmt, ref.datasets()))
