"""docs/scripting.md's examples, run as written (only the peer's address,
AE title and data put in): the shell ones with bash and the installed
``dimsekit``, the Python ones in their own process; against the recording
peer, and the drill-down against DCMTK dcmqrscp too."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from realpeers import SAMPLE_PATIENTS, SAMPLE_STUDIES

DOC = Path(__file__).resolve().parent.parent / "docs" / "scripting.md"
BLOCK = re.compile(r"<!-- (?P<kind>shell|example): (?P<name>[\w-]+) -->\n"
                   r"```(?:sh|python)\n(?P<code>.*?)```", re.S)
BIN = Path(sys.executable).parent


def blocks(kind: str) -> dict[str, str]:
    return {m["name"]: m["code"] for m in BLOCK.finditer(DOC.read_text(encoding="utf-8"))
            if m["kind"] == kind}


def localise(code: str, port: int, aet: str) -> str:
    code = code.replace("pacs.example.org 104", f"127.0.0.1 {port}")
    code = code.replace("-aec PACS", f"-aec {aet}")
    code = re.sub(r'"pacs\.example\.org", \d+', f'"127.0.0.1", {port}', code)
    return code.replace('called_aet="PACS"', f'called_aet="{aet}"')


def shell(name: str, port: int, aet: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(["bash", "-euo", "pipefail", "-c",
                           localise(blocks("shell")[name], port, aet)],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def python(name: str, port: int, aet: str, **replace: str) -> subprocess.CompletedProcess:
    code = localise(blocks("example")[name], port, aet)
    for old, new in replace.items():
        assert old in code, f"{name}: {old!r} not in the example"
        code = code.replace(old, new)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)


def test_every_example_is_run_here():
    assert set(blocks("shell")) == {"reconcile", "stdin", "drill-down", "nightly"}
    assert set(blocks("example")) == {"reconcile", "series-of-studies"}


def test_reconcile(scp, tmp_path):
    accessions = [s.accession_number for s in SAMPLE_STUDIES[:2]] + ["ACC9999"]
    (tmp_path / "accessions.csv").write_text("AccessionNumber\n" + "\n".join(accessions))
    out = shell("reconcile", scp.port, "ANY-SCP", tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stderr == "I: batch: 3 rows, 2 matches, 1 with none, 0 failed, 1 association\n"
    rows = list(csv.DictReader((tmp_path / "found.csv").open()))
    assert [(r["row"], r["result"]) for r in rows] == [("1", "match"), ("2", "match"),
                                                       ("3", "none")]
    assert (tmp_path / "missing-rows.txt").read_text() == "3\n"


def test_stdin(scp, tmp_path):
    out = shell("stdin", scp.port, "ANY-SCP", tmp_path)
    assert out.returncode == 0, out.stderr
    lines = (tmp_path / "patients.ndjson").read_text().splitlines()
    assert [json.loads(line)["00091010"]["Value"] for line in lines] == [[1], [2]]


@pytest.mark.parametrize("real", [False, True])
def test_drill_down(request, scp, tmp_path, real):
    port, aet = scp.port, "ANY-SCP"
    if real:
        peer = request.getfixturevalue("dcmqrscp_peer")
        port, aet = peer.port, peer.aet
    out = shell("drill-down", port, aet, tmp_path)
    assert out.returncode == 0, out.stderr
    rows = list(csv.DictReader((tmp_path / "series.csv").open()))
    studies = SAMPLE_PATIENTS[0].studies
    assert [r["level"] for r in rows if r["level"] == "STUDY"] == ["STUDY"] * len(studies)
    assert sorted(r["SeriesInstanceUID"] for r in rows if r["level"] == "SERIES") == sorted(
        se.series_instance_uid for st in studies for se in st.series)


def test_nightly(scp, tmp_path):
    out = shell("nightly", scp.port, "ANY-SCP", tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "exit status 0\n"
    got = [json.loads(line) for line in (tmp_path / "studies.ndjson").read_text().splitlines()]
    expected = [s for s in SAMPLE_STUDIES if "20200101" <= s.study_date <= "20241231"]
    assert sorted(o["0020000D"]["Value"][0] for o in got) == sorted(
        s.study_instance_uid for s in expected)


def test_python_reconcile(scp):
    accessions = [s.accession_number for s in SAMPLE_STUDIES[:2]] + ["ACC9999"]
    out = python("reconcile", scp.port, "ANY-SCP",
                 **{'["A0001", "A0002", "A0003"]': repr(accessions)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "missing ACC9999 ", "3 rows, 2 matches, 1 with none, 0 failed, 1 association"]


def test_python_series_of_studies(scp):
    out = python("series-of-studies", scp.port, "ANY-SCP")
    assert out.returncode == 0, out.stderr
    studies = SAMPLE_PATIENTS[0].studies
    assert sorted(out.stdout.splitlines()) == sorted(
        f"{st.study_instance_uid} {se.series_instance_uid} {se.modality}"
        for st in studies for se in st.series)
