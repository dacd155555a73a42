"""docs/python-api.md's examples, run as scripts are run: each in its own
Python process, as written, with only the peer's address, AE title, file
names and accession numbers put in; against the recording peer and
against DCMTK dcmqrscp (TLS: Orthanc)."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parent.parent / "docs" / "python-api.md"
EXAMPLE = re.compile(r"<!-- example: (?P<name>[\w-]+) -->\n```python\n(?P<code>.*?)```", re.S)


def examples() -> dict[str, str]:
    return {m["name"]: m["code"] for m in EXAMPLE.finditer(DOC.read_text(encoding="utf-8"))}


def run_example(name: str, port: int, aet: str, **replace: str) -> subprocess.CompletedProcess:
    code = examples()[name]
    code = re.sub(r'"pacs\.example\.org", \d+', f'"127.0.0.1", {port}', code)
    code = code.replace('called_aet="PACS"', f'called_aet="{aet}"')
    for old, new in replace.items():
        assert old in code, f"{name}: {old!r} not in the example"
        code = code.replace(old, new)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)


@pytest.fixture(params=["recording", "dcmqrscp"])
def peer(request, make_scp):
    """(port, called AE, {study UID: accession number}) of a peer holding
    sample data."""
    if request.param == "recording":
        scp = make_scp()
        studies = {i.StudyInstanceUID: i.AccessionNumber for i in scp.data.instances}
        return scp.port, "ANY-SCP", studies
    real = request.getfixturevalue("dcmqrscp_peer")
    from realpeers import SAMPLE_STUDIES

    return real.port, real.aet, {s.study_instance_uid: s.accession_number
                                 for s in SAMPLE_STUDIES}


def test_every_example_is_run_here():
    assert set(examples()) == {"one-query", "accession-loop", "first-ten", "tls", "errors"}


def test_one_query(peer):
    port, aet, studies = peer
    out = run_example("one-query", port, aet)
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""  # the library prints nothing of its own
    printed = {line.split()[0] for line in out.stdout.splitlines()}
    assert printed == set(studies)


def test_accession_loop(peer):
    port, aet, studies = peer
    accessions = sorted(set(studies.values()))
    out = run_example("accession-loop", port, aet,
                      **{'["A0001", "A0002", "A0003"]': repr(accessions + ["NO-SUCH"])})
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == len(accessions) + 1
    for accession, line in zip(accessions, lines, strict=False):  # the last line: below
        expected = sorted(uid for uid, acc in studies.items() if acc == accession)
        assert line.startswith(f"{accession} {len(expected)} ")
        assert all(uid in line for uid in expected)
    assert lines[-1] == "NO-SUCH 0 []"


def test_first_ten(make_scp):
    scp = make_scp(repeat_matches=40, response_delay=0.005, honour_cancel=True)
    out = run_example("first-ten", scp.port, "ANY-SCP")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 11 and lines[-1] == "final status: 65024"  # 0xFE00
    assert len(scp.cancels) == 1 and len(scp.echoes) == 1
    assert len(scp.associations) == 1


def test_first_ten_against_a_real_peer(dcmqrscp_peer):
    out = run_example("first-ten", dcmqrscp_peer.port, dcmqrscp_peer.aet)
    assert out.returncode == 0, out.stderr
    from realpeers import SAMPLE_PATIENTS

    lines = out.stdout.splitlines()
    assert len(lines) == min(10, len(SAMPLE_PATIENTS)) + 1
    assert lines[-1] == "final status: 0"  # every match had come before the cancel


def test_tls_against_orthanc(orthanc_tls_peer, tls_material):
    m = tls_material
    out = run_example("tls", orthanc_tls_peer.port, orthanc_tls_peer.aet,
                      **{'"client.key"': repr(str(m.client_key)),
                         '"client.pem"': repr(str(m.client_cert)),
                         '"ca.pem"': repr(str(m.ca_cert))})
    assert out.returncode == 0, out.stderr
    from realpeers import SAMPLE_PATIENTS

    assert sorted(out.stdout.split()) == sorted(p.patient_id for p in SAMPLE_PATIENTS)


def test_errors_no_association():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = run_example("errors", port, "ANY-SCP")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("no association: cannot connect to 127.0.0.1:")


def test_errors_failure_and_incomplete(make_scp):
    failing = make_scp(final_status=0xA700)
    out = run_example("errors", failing.port, "ANY-SCP")
    assert out.stdout.startswith("failed: 0xA700"), out.stdout + out.stderr
    aborting = make_scp(repeat_matches=10, abort_after=3)
    out = run_example("errors", aborting.port, "ANY-SCP")
    assert out.stdout.startswith("incomplete after 3 matches:"), out.stdout + out.stderr
    fine = make_scp()
    out = run_example("errors", fine.port, "ANY-SCP")
    studies = {i.StudyInstanceUID for i in fine.data.instances}
    assert out.stdout == f"{len(studies)} studies\n"
