"""Smoke tests for tests/realpeers/: each real peer answers DCMTK findscu.

Every count asserted here is computed from the data the peer serves
(``SAMPLE_PATIENTS``, the worklist files), never hard-coded.
"""

from __future__ import annotations

import fnmatch
import json
import os
import time
import urllib.request
from pathlib import Path

import pydicom
import pytest
from realpeers import (
    SAMPLE_IMAGES,
    SAMPLE_PATIENTS,
    SAMPLE_SERIES,
    SAMPLE_STUDIES,
    DicomPeer,
    _running_peer,
    make_sample_instances,
    require_binary,
    run_findscu,
)

# Registers the fixtures when no conftest.py star-imports them; a conftest that
# does `from realpeers import *` overrides these, so peers still start once.
pytest_plugins = ["realpeers"]


# --------------------------------------------------------------------------
# helpers of the helpers
# --------------------------------------------------------------------------


def test_require_binary_skips_locally_and_fails_on_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no-such-dicom-binary"):
        require_binary("no-such-dicom-binary")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="no-such-dicom-binary"):
        require_binary("no-such-dicom-binary")
    assert Path(require_binary("sh")).is_file()


def _assert_gone(pid: int) -> None:
    """*pid* is dead: missing, or a zombie that init has not reaped yet."""
    deadline = time.monotonic() + 2
    while True:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return
        if state in ("Z", "X") or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert state in ("Z", "X"), f"process {pid} still running (state {state})"


def test_runner_reports_early_exit_with_log(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    script = f"echo $$ > {pidfile}; echo 'bind: address in use' >&2; exit 3"
    with (
        pytest.raises(pytest.fail.Exception, match=r"(?s)exited with 3.*address in use"),
        _running_peer("boom", ["sh", "-c", script], workdir=tmp_path, is_ready=lambda: False),
    ):
        pass  # pragma: no cover
    _assert_gone(int(pidfile.read_text()))


def test_runner_times_out_and_kills_peer_and_children(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    # a parent that ignores SIGTERM plus a forked child: both must be gone
    script = f"trap '' TERM; sleep 60 & echo $$ $! > {pidfile}; echo starting; wait"
    with (
        pytest.raises(pytest.fail.Exception, match=r"(?s)did not answer.*starting"),
        _running_peer("stuck", ["sh", "-c", script], workdir=tmp_path,
                      is_ready=lambda: False, timeout=0.5, stop_grace=0.2),
    ):
        pass  # pragma: no cover
    for pid in map(int, pidfile.read_text().split()):
        _assert_gone(pid)


def test_sample_instances_match_description(sample_instances: tuple[Path, ...],
                                            tmp_path: Path) -> None:
    assert len(sample_instances) == len(SAMPLE_IMAGES) == 20
    assert (len(SAMPLE_PATIENTS), len(SAMPLE_STUDIES), len(SAMPLE_SERIES)) == (4, 6, 10)
    datasets = [pydicom.dcmread(p) for p in sample_instances]
    assert {ds.SOPInstanceUID for ds in datasets} == {im.sop_instance_uid for im in SAMPLE_IMAGES}
    latin1 = [ds for ds in datasets if ds.get("SpecificCharacterSet") == "ISO_IR 100"]
    assert latin1 and all(str(ds.PatientName) == "MÜLLER^Hans" for ds in latin1)
    # deterministic: a second run writes the same bytes
    again = make_sample_instances(tmp_path)
    assert [p.read_bytes() for p in again] == [p.read_bytes() for p in sample_instances]


# --------------------------------------------------------------------------
# wlmscpfs: DCMTK's 13 example queries against DCMTK's example worklist
# --------------------------------------------------------------------------


def _values(element: pydicom.DataElement) -> list[str]:
    value = element.value
    items = value if isinstance(value, (list, tuple, pydicom.multival.MultiValue)) else [value]
    return [str(v).strip() for v in items if v is not None]


def _is_universal(key: pydicom.DataElement) -> bool:
    """An empty key (or a sequence of nothing but empty keys) matches anything."""
    if key.VR == "SQ":
        return not key.value or all(_is_universal(k) for item in key.value for k in item)
    return key.value is None or str(key.value).strip() == ""


def _key_matches(key: pydicom.DataElement, target: pydicom.DataElement | None) -> bool:
    """PS3.4 C.2.2.2 matching of one non-universal key, enough for the examples."""
    if target is None:
        return False
    if key.VR == "SQ":  # sequence matching: some item matches the query's item
        return any(_item_matches(key.value[0], item) for item in target.value)
    wanted = str(key.value).strip()
    for have in _values(target):  # multi-valued attribute: any value may match
        if key.VR in ("DA", "TM") and "-" in wanted:  # range matching
            width = 8 if key.VR == "DA" else 6
            low, _, high = (part.strip().ljust(width, "0") if part else part
                            for part in wanted.partition("-"))
            have = have.split(".")[0].ljust(width, "0")
            if (not low or have >= low) and (not high or have <= high):
                return True
        elif fnmatch.fnmatchcase(have, wanted):  # single value / wildcard matching
            return True
    return False


def _item_matches(query: pydicom.Dataset, record: pydicom.Dataset) -> bool:
    return all(
        _key_matches(key, record.get(key.tag))
        for key in query
        if key.tag != 0x00080005 and not _is_universal(key)  # charset is no key
    )


@pytest.mark.realpeer("wlmscpfs")
@pytest.mark.parametrize("number", range(13))
def test_wlmscpfs_example_query(wlmscpfs_peer, number: int, tmp_path: Path) -> None:
    query_file = wlmscpfs_peer.queries[number]
    assert query_file.name == f"wlistqry{number}.dcm"
    query = pydicom.dcmread(query_file, force=True)
    records = [pydicom.dcmread(p, force=True) for p in wlmscpfs_peer.worklist_files]
    expected = sum(_item_matches(query, record) for record in records)

    result = run_findscu(wlmscpfs_peer, tmp_path / "rsp", "-W", query_file=query_file)

    assert result.returncode == 0, result.stderr
    assert result.count == expected, result.stderr
    if number == 0:  # PatientName universal match: every worklist item
        assert result.count == len(wlmscpfs_peer.worklist_files) > 0
    # the returned top-level values are those of the matching worklist items
    matched = [r for r in records if _item_matches(query, r)]
    for key in query:
        if key.VR != "SQ" and key.tag != 0x00080005:
            got = sorted(str(ds.get(key.tag).value or "") for ds in result.datasets())
            want = sorted(str(r.get(key.tag).value or "") if key.tag in r else "" for r in matched)
            assert got == want, key.keyword


# --------------------------------------------------------------------------
# dcmqrscp and Orthanc: the sample instances at every level
# --------------------------------------------------------------------------


def _find(peer: DicomPeer, out_dir: Path, model: str, level: str, *keys: str):
    args = [model, "-k", f"QueryRetrieveLevel={level}"]
    for key in keys:
        args += ["-k", key]
    result = run_findscu(peer, out_dir, *args)
    assert result.returncode == 0, result.stderr
    assert not [line for line in result.stderr.splitlines()
                if line.startswith(("E:", "F:"))], result.stderr
    return result


@pytest.fixture(params=[
    pytest.param("dcmqrscp_peer", marks=pytest.mark.realpeer("dcmqrscp")),
    pytest.param("orthanc_peer", marks=pytest.mark.realpeer("orthanc")),
])
def archive(request: pytest.FixtureRequest):
    """Each archive peer in turn."""
    return request.getfixturevalue(request.param)


def test_patient_level_patient_root(archive, tmp_path: Path) -> None:
    result = _find(archive, tmp_path, "-P", "PATIENT", "PatientID", "PatientName",
                   "PatientBirthDate")
    assert result.count == len(SAMPLE_PATIENTS)
    assert (sorted(str(ds.PatientID) for ds in result.datasets())
            == sorted(p.patient_id for p in SAMPLE_PATIENTS))


def test_study_level_study_root(archive, tmp_path: Path) -> None:
    result = _find(archive, tmp_path, "-S", "STUDY", "StudyInstanceUID", "StudyDate",
                   "AccessionNumber")
    assert result.count == len(SAMPLE_STUDIES)
    got = sorted((ds.StudyInstanceUID, ds.AccessionNumber) for ds in result.datasets())
    assert got == sorted((st.study_instance_uid, st.accession_number) for st in SAMPLE_STUDIES)


def test_series_level_study_root(archive, tmp_path: Path) -> None:
    for n, study in enumerate(SAMPLE_STUDIES):
        result = _find(archive, tmp_path / str(n), "-S", "SERIES",
                       f"StudyInstanceUID={study.study_instance_uid}", "SeriesInstanceUID",
                       "Modality")
        got = sorted((ds.SeriesInstanceUID, ds.Modality) for ds in result.datasets())
        assert got == sorted((se.series_instance_uid, se.modality) for se in study.series)


def test_image_level_patient_root(archive, tmp_path: Path) -> None:
    n = 0
    for patient in SAMPLE_PATIENTS:
        for study in patient.studies:
            for series in study.series:
                n += 1
                result = _find(archive, tmp_path / str(n), "-P", "IMAGE",
                               f"PatientID={patient.patient_id}",
                               f"StudyInstanceUID={study.study_instance_uid}",
                               f"SeriesInstanceUID={series.series_instance_uid}",
                               "SOPInstanceUID", "InstanceNumber")
                got = sorted((int(ds.InstanceNumber), ds.SOPInstanceUID)
                             for ds in result.datasets())
                assert got == [(im.instance_number, im.sop_instance_uid) for im in series.images]
    assert n == len(SAMPLE_SERIES)


def test_latin1_patient_name(archive, tmp_path: Path) -> None:
    """MÜLLER is found with a Latin-1 query (charset in the query, see FIELD-NOTES)."""
    query = pydicom.Dataset()
    query.SpecificCharacterSet = "ISO_IR 100"
    query.QueryRetrieveLevel = "PATIENT"
    query.PatientName = "M*LLER*"
    query.PatientID = ""
    query_file = tmp_path / "query.dcm"
    pydicom.dcmwrite(query_file, query, implicit_vr=False, little_endian=True)
    result = run_findscu(archive, tmp_path / "rsp", "-P", query_file=query_file)
    assert result.returncode == 0, result.stderr
    expected = [p for p in SAMPLE_PATIENTS if p.patient_name.startswith("MÜLLER")]
    assert [str(ds.PatientID) for ds in result.datasets()] == [p.patient_id for p in expected]
    assert [str(ds.PatientName) for ds in result.datasets()] == [p.patient_name for p in expected]


@pytest.mark.realpeer("orthanc")
def test_orthanc_rest_counts_and_study_query(orthanc_peer, tmp_path: Path) -> None:
    with urllib.request.urlopen(f"{orthanc_peer.base_url}/statistics", timeout=10) as response:
        stats = json.load(response)
    assert (stats["CountPatients"], stats["CountStudies"], stats["CountSeries"],
            stats["CountInstances"]) == (
        len(SAMPLE_PATIENTS), len(SAMPLE_STUDIES), len(SAMPLE_SERIES), len(SAMPLE_IMAGES))
    result = _find(orthanc_peer, tmp_path, "-S", "STUDY", "StudyInstanceUID", "ModalitiesInStudy")
    assert result.count == len(SAMPLE_STUDIES)
    derived = {ds.StudyInstanceUID: sorted(_values(ds["ModalitiesInStudy"]))
               for ds in result.datasets()}
    assert derived == {st.study_instance_uid: list(st.modalities_in_study) for st in SAMPLE_STUDIES}


@pytest.mark.realpeer("wlmscpfs")
@pytest.mark.realpeer("dcmqrscp")
@pytest.mark.realpeer("orthanc")
def test_peers_have_own_ports_dirs_and_logs(wlmscpfs_peer, dcmqrscp_peer, orthanc_peer) -> None:
    peers = [wlmscpfs_peer, dcmqrscp_peer, orthanc_peer]
    ports = [p.port for p in peers] + [orthanc_peer.http_port]
    assert len(set(ports)) == len(ports)
    assert len({p.workdir for p in peers}) == len(peers)
    for peer in peers:
        assert peer.host == "127.0.0.1"
        assert peer.workdir.is_dir() and not peer.workdir.is_relative_to(Path.cwd())
        os.kill(peer.pid, 0)  # still running
        assert peer.log_path.is_file()
