"""Output formats: each parses back into the datasets that were received.

The oracle is ``-X``: the Part-10 files of the same run hold exactly what
arrived, so every format is compared with them."""

from __future__ import annotations

import csv
import io
import json
from xml.etree import ElementTree as ET

import pluggy
import pydicom
import pytest
from click.testing import CliRunner
from conftest import assert_no_traceback, read_until, streaming_find
from formats import json_model_as_text, xml_to_json_model
from pydicom import Dataset
from pydicom.sequence import Sequence

from dimsekit.api import Writer, hookimpl
from dimsekit.cli import build_cli
from dimsekit.cli.host import Host


def rich_query(path):
    """A worklist identifier with everything a writer must carry."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientName = "Yamada^Tarou=山田^太郎=やまだ^たろう"
    ds.PatientID = "NO-SUCH-PATIENT"
    ds.OtherPatientIDs = ["A1", "B2", "C3"]
    ds.PatientBirthDate = ""
    ds.PatientWeight = "72.5"
    ds.add_new(0x00101010, "AS", "042Y")
    inner = Dataset()
    inner.CodeValue = "X1"
    inner.CodeMeaning = "Müller Ångström"
    step = Dataset()
    step.Modality = "MR"
    step.ScheduledProtocolCodeSequence = Sequence([inner])
    step.ScheduledStationAETitle = ""
    ds.ScheduledProcedureStepSequence = Sequence([step])
    ds.RequestedProcedureCodeSequence = Sequence([])
    ds.add_new(0x00091010, "LO", "DIMSEKIT TEST")
    ds.add_new(0x00091001, "LO", "private text")
    ds.add_new(0x00091002, "OB", b"\x00\x01\xfe\xff")
    ds.save_as(path, implicit_vr=False, little_endian=True)
    return path


@pytest.fixture
def echo_scp(make_scp):
    # nothing matches NO-SUCH-PATIENT: the peer echoes the identifier N times
    return make_scp(repeat_matches=3)


def run_format(dimsekit, scp, tmp_path, fmt, *extra):
    query = rich_query(tmp_path / "q.dcm")
    out = tmp_path / "rsp"
    # +sr: extracting alone would show nothing on stdout (as in DCMTK)
    result = dimsekit("find", "-W", "--format", fmt, "+sr", "-X", "-od", out, *extra,
                      "127.0.0.1", scp.port, query)
    assert_no_traceback(result)
    assert result.returncode == 0, result.stderr
    received = [pydicom.dcmread(p) for p in sorted(out.glob("rsp*.dcm"))]
    assert len(received) == 3
    return result.stdout, received


def plain(ds):
    """A received Part-10 dataset without its File Meta, as a bare Dataset."""
    out = Dataset()
    out.update(ds)
    return out


@pytest.mark.parametrize("fmt", ["json", "ndjson"])
def test_json_formats_round_trip_through_pydicom(dimsekit, echo_scp, tmp_path, fmt):
    stdout, received = run_format(dimsekit, echo_scp, tmp_path, fmt)
    if fmt == "json":
        objects = json.loads(stdout)
    else:
        lines = stdout.splitlines()
        assert len(lines) == 3
        objects = [json.loads(line) for line in lines]
    assert len(objects) == 3
    for obj, ds in zip(objects, received, strict=True):
        assert Dataset.from_json(obj) == plain(ds)
    first = objects[0]
    assert first["00100010"]["Value"][0] == {
        "Alphabetic": "Yamada^Tarou", "Ideographic": "山田^太郎", "Phonetic": "やまだ^たろう"}
    assert first["00091002"]["InlineBinary"] == "AAH+/w=="
    assert first["00100030"] == {"vr": "DA"}  # empty value: no "Value"
    nested = first["00400100"]["Value"][0]["00400008"]["Value"][0]
    assert nested["00080104"]["Value"] == ["Müller Ångström"]


def test_xml_carries_every_element_attribute_and_value(dimsekit, echo_scp, tmp_path):
    stdout, received = run_format(dimsekit, echo_scp, tmp_path, "xml")
    root = ET.fromstring(stdout.encode("utf-8"))
    assert root.tag == "NativeDicomModels"
    models = root.findall("NativeDicomModel")
    assert len(models) == 3
    for model, ds in zip(models, received, strict=True):
        expected = json_model_as_text(ds.to_json_dict())
        assert xml_to_json_model(model) == expected
    name = models[0].find("DicomAttribute[@tag='00100010']/PersonName/Ideographic")
    assert name.find("FamilyName").text == "山田"


def test_csv_default_columns_are_the_query_keys(dimsekit, echo_scp, tmp_path):
    stdout, received = run_format(dimsekit, echo_scp, tmp_path, "csv", "-k", "PatientID",
                                  "-k", "PatientName")
    rows = list(csv.reader(io.StringIO(stdout)))
    header, body = rows[0], rows[1:]
    assert header[:2] == ["PatientID", "PatientName"]  # -k order first
    assert "OtherPatientIDs" in header
    assert "ScheduledProcedureStepSequence[0].ScheduledProtocolCodeSequence[0].CodeMeaning" \
        in header
    assert len(body) == 3
    row = dict(zip(header, body[0], strict=True))
    assert row["PatientName"] == str(received[0].PatientName)
    assert row["OtherPatientIDs"] == "A1\\B2\\C3"
    assert row["PatientBirthDate"] == ""
    assert row["ScheduledProcedureStepSequence[0].ScheduledProtocolCodeSequence[0]."
               "CodeMeaning"] == "Müller Ångström"


def test_csv_columns_option(dimsekit, echo_scp, tmp_path):
    stdout, received = run_format(
        dimsekit, echo_scp, tmp_path, "csv", "--columns",
        "PatientID,(0010,1000),ScheduledProcedureStepSequence[0].Modality,(0009,1002)")
    rows = list(csv.reader(io.StringIO(stdout)))
    assert rows[0] == ["PatientID", "(0010,1000)",
                       "ScheduledProcedureStepSequence[0].Modality", "(0009,1002)"]
    assert rows[1] == ["NO-SUCH-PATIENT", "A1\\B2\\C3", "MR", "AAH+/w=="]


def test_bad_column_is_a_usage_error(dimsekit, scp):
    result = dimsekit("find", "--format", "csv", "--columns", "PatientNam",
                      "-k", "PatientName=", "127.0.0.1", scp.port)
    assert result.returncode == 2
    assert "PatientNam" in result.stderr_lines[-1]
    assert scp.associations == []


@pytest.mark.parametrize("fmt, check", [
    ("json", lambda text: len(json.loads(text))),
    ("xml", lambda text: len(ET.fromstring(text).findall("NativeDicomModel"))),
    ("ndjson", lambda text: len(text.splitlines())),
])
def test_output_file_is_well_formed_after_an_abort(dimsekit, make_scp, tmp_path, fmt, check):
    scp = make_scp(repeat_matches=6, abort_after=2)
    target = tmp_path / f"out.{fmt}"
    result = dimsekit("find", "--format", fmt, "-o", target, "-k", "PatientName=",
                      "127.0.0.1", scp.port)
    assert result.returncode == 4
    assert check(target.read_text(encoding="utf-8")) == 2


def test_a_plugin_writer_is_selectable(scp):
    class Shout:
        def __init__(self, stream, options):
            self.stream = stream

        def begin(self):
            pass

        def write(self, ds, info):
            self.stream.write(f"{info.number}:{ds.PatientName}\n".upper().encode())

        def end(self):
            self.stream.flush()

    class ShoutPlugin:
        @hookimpl
        def dimsekit_writers(self):
            return [Writer("shout", "find", Shout, "names in capitals")]

    import dimsekit.plugins.find as find_plugin

    host = Host(pluggy.PluginManager("dimsekit"))
    host.register(find_plugin, "find")
    host.register(ShoutPlugin(), "shout")
    cli = build_cli(host)
    helptext = CliRunner().invoke(cli, ["find", "--help"]).output
    assert "shout" in helptext and "ndjson" in helptext
    result = CliRunner().invoke(cli, ["find", "--format", "shout", "-W", "-k",
                                      "PatientName=", "127.0.0.1", str(scp.port)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines and lines[0].startswith("1:") and lines[0] == lines[0].upper()


# -- response files ----------------------------------------------------------------


def test_xml_response_files_limit_and_single_file(dimsekit, make_scp, tmp_path):
    scp = make_scp(repeat_matches=5)
    out = tmp_path / "x"
    single = tmp_path / "all.xml"
    result = dimsekit("find", "-Xx", "-X", "-Xlo", "3", "-Xs", single, "-sr", "-od", out,
                      "-k", "PatientName=", "127.0.0.1", scp.port)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""  # -sr
    assert sorted(p.name for p in out.iterdir()) == [
        "rsp0001.dcm", "rsp0001.xml", "rsp0002.dcm", "rsp0002.xml", "rsp0003.dcm",
        "rsp0003.xml"]
    one = ET.parse(out / "rsp0001.xml").getroot()
    assert one.tag == "NativeDicomModel"
    assert len(ET.parse(single).getroot().findall("NativeDicomModel")) == 5


def test_overwrite_replaces_existing_response_files(dimsekit, make_scp, tmp_path):
    scp = make_scp(repeat_matches=2)
    (tmp_path / "rsp0001.dcm").write_bytes(b"old")
    refused = dimsekit("find", "-X", "-od", tmp_path, "-k", "PatientName=",
                       "127.0.0.1", scp.port)
    assert refused.returncode == 2 and scp.associations == []
    assert (tmp_path / "rsp0001.dcm").read_bytes() == b"old"
    result = dimsekit("find", "-X", "--overwrite", "-od", tmp_path, "-k", "PatientName=",
                      "127.0.0.1", scp.port)
    assert result.returncode == 0, result.stderr
    assert pydicom.dcmread(tmp_path / "rsp0001.dcm").file_meta.TransferSyntaxUID
    assert not list(tmp_path.glob(".rsp-*"))


@pytest.mark.parametrize("fmt, pattern, count", [
    ("dump", b"Find Response: ", 2),
    ("ndjson", b"\n", 2),
    ("csv", b"\n", 3),  # the header, then two rows
])
def test_a_pipe_gets_each_response_while_the_peer_is_still_busy(make_scp, fmt, pattern,
                                                                 count):
    """Output is buffered, but flushed whenever dimsekit waits for the peer:
    here the peer sends two matches and then works on (hangs), and both
    matches reach the pipe while dimsekit is still waiting."""
    scp = make_scp(repeat_matches=5, hang_after=2)
    proc = streaming_find(scp, fmt)
    try:
        got = read_until(proc, pattern, 15, count=count)
        assert got.count(pattern) == count, got
        assert proc.poll() is None  # still waiting for the third match
    finally:
        proc.kill()
        proc.communicate()


@pytest.mark.parametrize("fmt", ["dump", "ndjson", "json", "xml", "csv"])
def test_a_reader_that_stops_early_ends_the_run_quietly(make_scp, fmt):
    """``dimsekit find ... | head -1``: the reader has what it wanted. dimsekit
    aborts the association, says nothing and exits 0."""
    scp = make_scp(repeat_matches=2000)
    proc = streaming_find(scp, fmt)
    first = proc.stdout.readline()
    proc.stdout.close()  # what `head -1` does after its line
    _, stderr = proc.communicate(timeout=60)
    assert first.strip()
    assert proc.returncode == 0, stderr
    assert stderr == b""
    assert scp.wait_idle(10) and scp.associations[0].ended == "aborted"
    assert scp.requests[0].responses < 2000  # it did not read them all


def test_files_of_a_run_whose_stdout_reader_stops_early_are_complete(make_scp, tmp_path):
    """With -X/-Xs besides stdout, a closed stdout is dropped and the run
    goes on: the files hold every match and the exit code is the query's."""
    scp = make_scp(repeat_matches=300)
    single = tmp_path / "all.xml"
    proc = streaming_find(scp, "dump", "+sr", "-X", "-od", str(tmp_path / "each"),
                          "-Xs", str(single))
    proc.stdout.readline()
    proc.stdout.close()
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert stderr == b""
    assert len(list((tmp_path / "each").glob("rsp*.dcm"))) == 300
    assert len(ET.parse(single).getroot().findall("NativeDicomModel")) == 300
    assert scp.wait_idle(10) and scp.associations[0].ended == "released"


def test_help_into_a_closed_pipe_is_exit_0(tmp_path):
    import subprocess
    import sys

    for args in (["--help"], ["--version"], ["find", "--help"], ["plugins"]):
        proc = subprocess.Popen([sys.executable, "-m", "dimsekit", *args],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        proc.stdout.close()  # closed before anything was written
        _, stderr = proc.communicate(timeout=60)
        assert (proc.returncode, stderr) == (0, b""), args
