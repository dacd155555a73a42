"""``dimsekit move`` and ``dimsekit get`` end to end, as subprocesses,
against DCMTK dcmqrscp and Orthanc: what arrives is compared instance by
instance with what DCMTK movescu / getscu receive for the same query.

The real peers come from dimsekit's own test suite (``tests/realpeers`` in
the repository this example lives in): started once per session on free
loopback ports, configured with the move destinations of the
``move_destinations`` fixture.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest

from dimsekit.testing.pytest_plugin import require_module

_SUITE = Path(__file__).resolve().parents[3] / "tests"
if str(_SUITE) not in sys.path:
    sys.path.insert(0, str(_SUITE))

from realpeers import (  # noqa: E402 - fixtures, from the suite's folder
    dcmqrscp_peer,
    move_destinations,
    orthanc_peer,
    require_binary,
    sample_instances,
)

__all__ = ["dcmqrscp_peer", "move_destinations", "orthanc_peer", "sample_instances"]

require_module("dimsekit_move", hint="pip install -e ./examples/dimsekit-move")

pytestmark = pytest.mark.network

PEERS = ["dcmqrscp_peer", "orthanc_peer"]


@pytest.fixture(params=PEERS)
def archive(request):
    return request.getfixturevalue(request.param)


def _study(archive, n: int = 0):
    studies = [s for p in archive.patients for s in p.studies]
    return studies[n]


def _patient_of(archive, study):
    return next(p for p in archive.patients if study in p.studies)


def _content(directory: Path) -> dict[str, pydicom.Dataset]:
    """SOP Instance UID -> data set (file meta left out: each tool writes
    its own) of every DICOM file in ``directory``."""
    out = {}
    for path in sorted(directory.iterdir()):
        if path.is_file() and not path.name.startswith("."):
            ds = pydicom.dcmread(path)
            out[str(ds.SOPInstanceUID)] = ds
    return out


def _same(ours: dict[str, pydicom.Dataset], theirs: dict[str, pydicom.Dataset]) -> None:
    assert sorted(ours) == sorted(theirs)
    for uid, ds in ours.items():
        mine = {e.tag: e.value for e in ds}
        other = {e.tag: e.value for e in theirs[uid]}
        assert mine == other, uid


def _dcmtk(tool: str, archive, out: Path, *args: str) -> subprocess.CompletedProcess:
    out.mkdir()
    return subprocess.run(
        [require_binary(tool), "-od", str(out), "-aec", archive.aet, *args,
         archive.host, str(archive.port)],
        capture_output=True, text=True, timeout=120, check=False,
        stdin=subprocess.DEVNULL, env={**os.environ, "TCP_NODELAY": "1"})


def _study_keys(archive, study) -> list[str]:
    patient = _patient_of(archive, study)
    return ["-k", "QueryRetrieveLevel=STUDY", "-k", f"PatientID={patient.patient_id}",
            "-k", f"StudyInstanceUID={study.study_instance_uid}"]


def test_move_to_itself_receives_what_movescu_receives(archive, move_destinations,
                                                       dimsekit_subprocess, tmp_path):
    study = _study(archive)
    keys = _study_keys(archive, study)
    port = move_destinations["DKMOVE"]
    result = dimsekit_subprocess("move", "-aec", archive.aet, "-aem", "DKMOVE", "+P", port,
                      "-od", tmp_path / "ours", *keys, archive.host, archive.port)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    n = study.image_count
    assert f"completed {n}, failed 0, warning 0; {n} file" in result.stderr
    theirs = _dcmtk("movescu", archive, tmp_path / "dcmtk", "-aem", "DCMTKMOVE",
                    "+P", str(move_destinations["DCMTKMOVE"]), *keys)
    assert theirs.returncode == 0, theirs.stderr
    ours = _content(tmp_path / "ours")
    assert len(ours) == n
    assert {p.name for p in (tmp_path / "ours").iterdir()} == {f"{u}.dcm" for u in ours}
    _same(ours, _content(tmp_path / "dcmtk"))


def test_get_receives_what_getscu_receives(archive, dimsekit_subprocess, tmp_path):
    study = _study(archive, 1)
    keys = _study_keys(archive, study)
    result = dimsekit_subprocess("get", "-aec", archive.aet, "-od", tmp_path / "ours", *keys,
                      archive.host, archive.port)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    n = study.image_count
    assert f"completed {n}, failed 0, warning 0; {n} file" in result.stderr
    theirs = _dcmtk("getscu", archive, tmp_path / "dcmtk", *keys)
    assert theirs.returncode == 0, theirs.stderr
    ours = _content(tmp_path / "ours")
    assert len(ours) == n
    _same(ours, _content(tmp_path / "dcmtk"))


def test_series_level_get_in_the_study_root(archive, dimsekit_subprocess, tmp_path):
    study = _study(archive)
    series = study.series[0]
    result = dimsekit_subprocess("get", "-S", "-aec", archive.aet, "-od", tmp_path,
                      "-k", "QueryRetrieveLevel=SERIES",
                      "-k", f"StudyInstanceUID={study.study_instance_uid}",
                      "-k", f"SeriesInstanceUID={series.series_instance_uid}",
                      archive.host, archive.port)
    assert result.returncode == 0, result.stderr
    assert sorted(_content(tmp_path)) == sorted(i.sop_instance_uid for i in series.images)


def test_a_second_run_keeps_the_files_and_adds_none(archive, dimsekit_subprocess, tmp_path):
    study = _study(archive)
    args = ["get", "-aec", archive.aet, "-od", tmp_path, *_study_keys(archive, study),
            archive.host, archive.port]
    first = dimsekit_subprocess(*args)
    assert first.returncode == 0, first.stderr
    before = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    second = dimsekit_subprocess(*args)
    assert second.returncode == 0, second.stderr
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == before


def test_move_to_an_unknown_destination_is_a_peer_failure(archive, dimsekit_subprocess, tmp_path):
    study = _study(archive)
    result = dimsekit_subprocess("move", "-aec", archive.aet, "-aem", "NOSUCHAE", "-od", tmp_path,
                      *_study_keys(archive, study), archive.host, archive.port)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("E:")]
    # dcmqrscp says why; Orthanc answers "Unable to Process"
    expected = {"dcmqrscp": "0xA801 (Failure: Move destination unknown)",
                "orthanc": "0xC000 (Failure: Unable to Process)"}[archive.name]
    assert line.startswith(f"E: C-MOVE: peer answered {expected}"), line
    assert list(tmp_path.iterdir()) == []


def test_move_without_a_port_leaves_the_sub_operations_to_the_destination(
        archive, dimsekit_subprocess, tmp_path, move_destinations):
    # nobody listens at DKMOVE's port: every sub-operation fails, and says so
    study = _study(archive)
    result = dimsekit_subprocess("move", "-aec", archive.aet, "-aem", "DKMOVE", "-od", tmp_path,
                      *_study_keys(archive, study), archive.host, archive.port)
    assert result.returncode == 1, result.stderr
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("E:")]
    assert line.startswith("E: C-MOVE: peer answered 0x"), line
    if archive.name == "dcmqrscp":  # it counts the sub-operations it could not do
        assert f"failed {study.image_count}" in line, line
    assert list(tmp_path.iterdir()) == []
