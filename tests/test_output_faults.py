"""Outputs that fail, and outputs of runs that fail: ``dimsekit find`` run as
a subprocess against the in-process peer.

- A write that fails once the run has started (a full disk, a file grown
  past its limit, the output directory removed or made read-only) is exit 5
  with one ``E:`` line, never a traceback, and leaves no temp file behind.
- ``-o FILE`` is replaced only by a run that produced a result: a run that
  fails before the first response leaves an existing FILE as it was; one
  that fails after some responses keeps them, closed valid.
- ``-X`` implies ``-sr`` unless ``+sr`` is given; csv columns are the
  user's keys, and ``--columns`` adds the keys the query lacks.

Faults are simulated without root: stdout on ``/dev/full`` (ENOSPC), a
file-size limit (``RLIMIT_FSIZE``; Python ignores SIGXFSZ, so a write past
the limit fails with EFBIG), and a directory removed or made read-only
(mode 555, or ``chattr +i`` for root) while the run goes on.
"""

from __future__ import annotations

import csv
import io
import json
import os
import resource
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pydicom
import pytest
from conftest import assert_no_traceback

from dimsekit.testing.cli import DIMSEKIT_COMMAND, Result

STUDY_Q = ("-S", "-k", "QueryRetrieveLevel=STUDY", "-k", "PatientName=",
           "-k", "StudyInstanceUID=")
OLD = b'["the result of an earlier run"]\n'


def run(*args, cwd, stdout=subprocess.PIPE, fsize: int | None = None,
        timeout: float = 60) -> Result:
    """``dimsekit ARGS`` as a subprocess; ``fsize``: the largest file (bytes)
    it may write."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    proc = subprocess.run([*DIMSEKIT_COMMAND, *map(str, args)], cwd=cwd, stdout=stdout,
                          stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                          timeout=timeout, preexec_fn=limit if fsize else None,
                          check=False)
    out = proc.stdout.decode("utf-8", "replace") if proc.stdout is not None else ""
    return Result(proc.returncode, out, proc.stderr.decode("utf-8", "replace"))


def find(scp, *args, **kwargs) -> Result:
    return run("find", *args, "127.0.0.1", scp.port, **kwargs)


def assert_one_error(result: Result, code: int, *fragments: str) -> str:
    assert_no_traceback(result)
    assert result.returncode == code, result.stderr
    (line,) = result.stderr_lines
    assert line.startswith("E: "), line
    for fragment in fragments:
        assert fragment in line, line
    return line


def leftovers(*directories: Path) -> list[str]:
    """Temp files anywhere under ``directories``."""
    return [str(p) for d in directories if d.exists() for p in d.rglob("*")
            if p.name.endswith(".part") or p.name.startswith((".dimsekit-", ".rsp-"))]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- write failures: exit 5 -------------------------------------------------------


@pytest.mark.parametrize("fmt", ["dump", "json", "ndjson", "xml", "csv"])
def test_stdout_on_a_full_disk_is_exit_5(make_scp, tmp_path, fmt):
    scp = make_scp(repeat_matches=50)
    with open("/dev/full", "wb") as full:
        result = find(scp, "--format", fmt, *STUDY_Q, cwd=tmp_path, stdout=full)
    assert_one_error(result, 5, "cannot write the responses to stdout",
                     "No space left on device")
    assert scp.wait_idle(10)


def test_stdout_on_a_full_disk_beside_response_files(make_scp, tmp_path):
    """stdout fails (not a closed pipe: a real write error): the run ends
    with exit 5; the response files written so far are complete."""
    scp = make_scp(repeat_matches=3000)
    out = tmp_path / "rsp"
    with open("/dev/full", "wb") as full:
        result = find(scp, "+sr", "-X", "-od", out, *STUDY_Q, cwd=tmp_path, stdout=full)
    assert_one_error(result, 5, "stdout", "No space left on device")
    files = sorted(out.glob("rsp*.dcm"))
    assert 0 < len(files) < 3000
    for path in files:
        pydicom.dcmread(path)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("fmt", ["json", "dump", "csv"])
@pytest.mark.parametrize("existing", [True, False])
def test_output_file_grown_past_its_limit_is_exit_5(make_scp, tmp_path, fmt, existing):
    scp = make_scp(repeat_matches=400)
    target = tmp_path / "out.txt"
    if existing:
        target.write_bytes(OLD)
    result = find(scp, "--format", fmt, "-o", target, *STUDY_Q, cwd=tmp_path,
                  fsize=20_000)
    line = assert_one_error(result, 5, f"cannot write output file '{target}'",
                            "File too large")
    assert scp.requests and scp.requests[0].responses > 0  # the run had started
    if existing:
        assert line.endswith("(the existing file is left unchanged)")
        assert target.read_bytes() == OLD
    else:
        assert line.endswith("(no file created)")
        assert not target.exists()
    assert leftovers(tmp_path) == []
    assert result.stdout == ""


def test_xml_single_file_grown_past_its_limit_is_exit_5(make_scp, tmp_path):
    scp = make_scp(repeat_matches=400)
    single = tmp_path / "all.xml"
    single.write_bytes(b"<old/>")
    result = find(scp, "-Xs", single, *STUDY_Q, cwd=tmp_path, fsize=20_000)
    assert_one_error(result, 5, f"'{single}'", "File too large")
    assert single.read_bytes() == b"<old/>"
    assert leftovers(tmp_path) == []


def test_response_file_past_the_limit_is_exit_5(make_scp, tmp_path):
    scp = make_scp(repeat_matches=5)
    out = tmp_path / "rsp"
    result = find(scp, "-X", "-od", out, *STUDY_Q, cwd=tmp_path, fsize=64)
    assert_one_error(result, 5, f"cannot write response file '{out / 'rsp0001.dcm'}'",
                     "File too large")
    assert list(out.iterdir()) == []  # nothing half-written, no temp file
    assert result.stdout == ""


def _popen(scp, *args, cwd) -> subprocess.Popen:
    return subprocess.Popen([*DIMSEKIT_COMMAND, "find", *map(str, args), "127.0.0.1",
                             str(scp.port)], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)


def _wait_for(path: Path, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.01)


def _finish(proc: subprocess.Popen) -> Result:
    out, err = proc.communicate(timeout=60)
    return Result(proc.returncode, out.decode("utf-8", "replace"),
                  err.decode("utf-8", "replace"))


def test_output_directory_removed_mid_run_is_exit_5(make_scp, tmp_path):
    """The -od directory disappears after two files: exit 5, and the -o file
    of the same run keeps the responses that arrived, closed valid."""
    scp = make_scp(repeat_matches=100, response_delay=0.05)
    out = tmp_path / "rsp"
    target = tmp_path / "out.json"
    target.write_bytes(OLD)
    proc = _popen(scp, "-X", "-od", out, "--format", "json", "-o", target, *STUDY_Q,
                  cwd=tmp_path)
    _wait_for(out / "rsp0002.dcm")
    shutil.rmtree(out)
    result = _finish(proc)
    assert_one_error(result, 5, "cannot write response file",
                     f"the output directory '{out}' no longer exists")
    kept = json.loads(target.read_text(encoding="utf-8"))
    assert 2 <= len(kept) < 100
    assert leftovers(tmp_path) == []


def _read_only(path: Path):
    """Make directory ``path`` read-only, for root too (``chattr +i``: root
    writes into a mode 555 directory); returns how to undo it."""
    if os.geteuid() != 0:
        path.chmod(0o555)
        return lambda: path.chmod(0o755)
    done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip("root, and no chattr +i here: cannot make a directory read-only")
    return lambda: subprocess.run(["chattr", "-i", str(path)], check=True)


@pytest.mark.skipif(not shutil.which("chattr") and os.geteuid() == 0,
                    reason="root, and no chattr: cannot make a directory read-only")
def test_output_directory_made_read_only_mid_run_is_exit_5(make_scp, tmp_path):
    """-od and the -o file's directory become read-only after two files:
    exit 5, no temp file anywhere, the old -o file as it was."""
    scp = make_scp(repeat_matches=100, response_delay=0.05)
    out = tmp_path / "rsp"
    target = tmp_path / "out.json"
    target.write_bytes(OLD)
    probe = tmp_path / "probe"
    probe.mkdir()
    _read_only(probe)()  # skips here, before dimsekit runs, if it cannot be done
    probe.rmdir()
    proc = _popen(scp, "-X", "-od", out, "--format", "json", "-o", target, *STUDY_Q,
                  cwd=tmp_path)
    _wait_for(out / "rsp0002.dcm")
    undo = [_read_only(out)]
    try:
        undo.append(_read_only(tmp_path))  # -o cannot be put in place either
        result = _finish(proc)
    finally:
        for step in reversed(undo):
            step()
    line = assert_one_error(result, 5)
    assert "Permission denied" in line or "Operation not permitted" in line
    assert "response file" in line or "output file" in line
    assert target.read_bytes() == OLD
    assert len(list(out.glob("rsp*.dcm"))) >= 2
    assert leftovers(tmp_path) == []


# -- -o FILE: replaced only by a run that produced a result ------------------------


def test_connection_refused_leaves_the_output_file_as_it_was(tmp_path):
    target = tmp_path / "good.json"
    target.write_bytes(OLD)
    result = run("find", "--format", "json", "-o", target, *STUDY_Q, "127.0.0.1",
                 closed_port(), cwd=tmp_path)
    assert_one_error(result, 3, "cannot connect")
    assert target.read_bytes() == OLD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.json"]


def test_no_output_file_is_created_by_a_run_without_a_result(tmp_path):
    target = tmp_path / "new.json"
    result = run("find", "--format", "json", "-o", target, "-Xs", tmp_path / "all.xml",
                 *STUDY_Q, "127.0.0.1", closed_port(), cwd=tmp_path)
    assert_one_error(result, 3)
    assert list(tmp_path.iterdir()) == []


def test_rejected_association_leaves_the_output_file_as_it_was(make_scp, tmp_path):
    scp = make_scp(reject=(1, 1, 3))
    target = tmp_path / "good.json"
    target.write_bytes(OLD)
    result = find(scp, "--format", "json", "-o", target, *STUDY_Q, cwd=tmp_path)
    assert_one_error(result, 3, "association rejected")
    assert target.read_bytes() == OLD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.json"]


def test_abort_before_the_first_response_leaves_the_output_file_as_it_was(make_scp,
                                                                        tmp_path):
    scp = make_scp(repeat_matches=5, abort_after=0)
    target = tmp_path / "good.json"
    target.write_bytes(OLD)
    result = find(scp, "--format", "json", "-o", target, *STUDY_Q, cwd=tmp_path)
    assert_one_error(result, 4)
    assert target.read_bytes() == OLD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.json"]


def test_zero_matches_is_a_result_and_replaces_the_output_file(make_scp, tmp_path):
    scp = make_scp()
    target = tmp_path / "good.json"
    target.write_bytes(OLD)
    result = find(scp, "--format", "json", "-o", target, "-S",
                  "-k", "QueryRetrieveLevel=STUDY", "-k", "PatientName=NO^SUCH^PATIENT",
                  cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert scp.requests[0].responses == 0
    assert json.loads(target.read_text()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.json"]


@pytest.mark.parametrize("fmt, count", [
    ("json", lambda text: len(json.loads(text))),
    ("csv", lambda text: len(list(csv.reader(io.StringIO(text)))) - 1),
])
def test_a_run_that_fails_after_some_responses_keeps_them(make_scp, tmp_path, fmt, count):
    scp = make_scp(repeat_matches=6, abort_after=2)
    target = tmp_path / f"good.{fmt}"
    target.write_bytes(OLD)
    result = find(scp, "--format", fmt, "-o", target, *STUDY_Q, cwd=tmp_path)
    assert_one_error(result, 4)
    assert count(target.read_text(encoding="utf-8")) == 2
    assert leftovers(tmp_path) == []


def test_the_output_file_gets_the_usual_permissions(make_scp, tmp_path):
    scp = make_scp(repeat_matches=2)
    target = tmp_path / "out.txt"
    proc = subprocess.run(["sh", "-c", 'umask 027 && exec "$@"', "sh", *DIMSEKIT_COMMAND,
                           "find", "-o", str(target), "-X", "-od", str(tmp_path / "rsp"),
                           *STUDY_Q, "127.0.0.1", str(scp.port)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=60,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    assert target.stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "rsp" / "rsp0001.dcm").stat().st_mode & 0o777 == 0o640


# -- -X implies -sr -------------------------------------------------------------------


@pytest.mark.parametrize("extract", [("-X",), ("-w",), ("-Xx",), ("-Xs", "all.xml")])
def test_extracting_shows_nothing_on_stdout_unless_asked(make_scp, tmp_path, extract):
    scp = make_scp(repeat_matches=2)
    hidden = find(scp, *extract, "-od", tmp_path / "a", *STUDY_Q, cwd=tmp_path)
    assert hidden.returncode == 0, hidden.stderr
    assert hidden.stdout == ""
    shown = find(scp, "+sr", *extract, "-od", tmp_path / "b", *STUDY_Q, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.count("Find Response: ") == 2
    # rightmost wins
    again = find(scp, "+sr", "-sr", "-Xx", "-od", tmp_path / "c", *STUDY_Q, cwd=tmp_path)
    assert again.stdout == ""


def test_an_explicit_output_file_is_written_when_extracting(make_scp, tmp_path):
    scp = make_scp(repeat_matches=2)
    target = tmp_path / "out.json"
    result = find(scp, "-X", "-od", tmp_path / "rsp", "--format", "json", "-o", target,
                  *STUDY_Q, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(json.loads(target.read_text())) == 2
    assert len(list((tmp_path / "rsp").glob("rsp*.dcm"))) == 2


# -- csv columns -----------------------------------------------------------------------


def test_csv_columns_never_show_the_character_set_dimsekit_added(make_scp, tmp_path):
    scp = make_scp(repeat_matches=2)
    result = find(scp, "--format", "csv", "-W", "-k", "PatientName=Ångström^Nobody",
                  "-k", "PatientID=", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert scp.requests[0].identifier.SpecificCharacterSet == "ISO_IR 100"
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["PatientName", "PatientID"]
    assert [row[0] for row in rows[1:]] == ["Ångström^Nobody"] * 2  # echoed back
    named = find(scp, "--format", "csv", "-W", "-k", "PatientName=Ångström^Nobody",
                 "-k", "SpecificCharacterSet=ISO_IR 192", cwd=tmp_path)
    assert next(csv.reader(io.StringIO(named.stdout))) == ["PatientName",
                                                          "SpecificCharacterSet"]


def _columns_hook_wired() -> bool:
    run_py = Path(__file__).parent.parent / "src/dimsekit/plugins/find/run.py"
    return "return_keys_for_columns" in run_py.read_text(encoding="utf-8")


@pytest.mark.skipif(not _columns_hook_wired(),
                    reason="FindRequest.from_cli does not call return_keys_for_columns yet")
def test_columns_the_query_lacks_become_return_keys(make_scp, tmp_path):
    scp = make_scp()
    result = find(scp, "--format", "csv", "--columns", "PatientName,StudyDate,PatientID",
                  "-S", "-k", "QueryRetrieveLevel=STUDY", "-k", "PatientName=DOE*",
                  cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    sent = scp.requests[0].identifier
    assert sent.PatientName == "DOE*"  # kept as the user gave it
    assert "StudyDate" in sent and "PatientID" in sent
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["PatientName", "StudyDate", "PatientID"]
    assert rows[1:] and all(row[1] and row[2] for row in rows[1:])


def test_return_keys_for_columns():
    from pydicom import Dataset
    from pydicom.sequence import Sequence

    from dimsekit.api import apply_keys
    from dimsekit.plugins.find.csvfmt import return_keys_for_columns

    query = Dataset()
    query.PatientName = "DOE*"
    step = Dataset()
    step.Modality = "CT"
    query.ScheduledProcedureStepSequence = Sequence([step])
    assert return_keys_for_columns(None, query) == []
    keys = return_keys_for_columns(
        "PatientName,PatientID,ScheduledProcedureStepSequence[0].Modality,"
        "ScheduledProcedureStepSequence[0].ScheduledStationAETitle,(0008,0020)", query)
    assert [k.text for k in keys] == [
        "PatientID", "ScheduledProcedureStepSequence[0].ScheduledStationAETitle",
        "(0008,0020)"]
    apply_keys(query, keys)
    assert query.PatientName == "DOE*" and query.PatientID == ""
    assert query.StudyDate == ""
    (item,) = query.ScheduledProcedureStepSequence
    assert item.Modality == "CT" and item.ScheduledStationAETitle == ""


# -- the temp file where the file system has no O_TMPFILE ------------------------------


def test_pending_file_without_o_tmpfile_leaves_nothing_behind(tmp_path, monkeypatch):
    from dimsekit.plugins.find import output

    monkeypatch.setattr(output, "_unnamed_file", lambda directory: None)
    target = tmp_path / "a.txt"
    target.write_text("old")
    dropped = output.PendingFile(str(tmp_path))
    dropped.stream.write(b"new")
    assert len(list(tmp_path.glob(".dimsekit-*.part"))) == 1
    dropped.discard()
    refused = output.PendingFile(str(tmp_path))
    refused.stream.write(b"new")
    with pytest.raises(FileExistsError):
        refused.publish(str(target), replace=False)
    refused.discard()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]
    replaced = output.PendingFile(str(tmp_path))
    replaced.stream.write(b"new")
    replaced.publish(str(target), replace=True)
    assert target.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_pending_file_with_o_tmpfile_is_never_seen_half_written(tmp_path):
    from dimsekit.plugins.find import output

    probe = output._unnamed_file(str(tmp_path))
    if probe is None:
        pytest.skip("no O_TMPFILE here")
    os.close(probe)
    pending = output.PendingFile(str(tmp_path))
    pending.stream.write(b"data")
    assert list(tmp_path.iterdir()) == []  # unnamed (or a temp name elsewhere)
    pending.publish(str(tmp_path / "x"), replace=False)
    assert (tmp_path / "x").read_bytes() == b"data"
    assert [p.name for p in tmp_path.iterdir()] == ["x"]



# -- -o on what is not a regular file ------------------------------------------------


def test_o_on_a_device_writes_to_it_and_never_replaces_it(make_scp, tmp_path):
    """/dev/full: written to (exit 5: no space), and still the device after;
    renaming a file over it would have replaced the device (as root)."""
    scp = make_scp(repeat_matches=50)
    before = os.stat("/dev/full")
    result = find(scp, *STUDY_Q, "--format", "json", "-o", "/dev/full", cwd=tmp_path)
    assert_one_error(result, 5, "/dev/full", "No space left on device")
    after = os.stat("/dev/full")
    assert (after.st_mode, after.st_rdev, after.st_ino) == (
        before.st_mode, before.st_rdev, before.st_ino)


def test_o_on_a_fifo_feeds_its_reader(make_scp, tmp_path):
    scp = make_scp(repeat_matches=3)
    fifo = tmp_path / "responses"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE)
    result = find(scp, *STUDY_Q, "--format", "json", "-o", fifo, cwd=tmp_path)
    out, _ = reader.communicate(timeout=30)
    assert result.returncode == 0, result.stderr
    assert len(json.loads(out)) == 3
    assert fifo.is_fifo()


def test_o_through_a_symlink_replaces_its_target_and_keeps_the_link(make_scp, tmp_path):
    scp = make_scp(repeat_matches=2)
    (tmp_path / "target.json").write_bytes(OLD)
    (tmp_path / "link.json").symlink_to("target.json")
    result = find(scp, *STUDY_Q, "--format", "json", "-o", "link.json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "link.json").is_symlink()
    assert len(json.loads((tmp_path / "target.json").read_text())) == 2
    assert not leftovers(tmp_path)
