"""``dimsekit find`` run as a user runs it, against the in-process recording
peer: what arrived at the peer, what reached stdout/stderr, the exit code."""

from __future__ import annotations

import socket

import pydicom
import pytest
from conftest import assert_no_traceback

from dimsekit.testing import MODEL_UIDS

STUDY_Q = ("-k", "QueryRetrieveLevel=STUDY", "-k", "PatientName=", "-k", "StudyInstanceUID=")


def find(dimsekit, scp, *args, **kwargs):
    result = dimsekit("find", *args, "127.0.0.1", scp.port, **kwargs)
    assert_no_traceback(result)
    return result


def blocks(stdout: str) -> int:
    return stdout.count("Find Response: ")


# -- what the peer receives ----------------------------------------------------


def test_keys_become_the_identifier_and_every_match_is_printed(dimsekit, scp):
    result = find(dimsekit, scp, "-S", *STUDY_Q, "-k", "PatientName=DOE*")
    assert result.returncode == 0, result.stderr
    (request,) = scp.requests
    assert request.identifier.QueryRetrieveLevel == "STUDY"
    assert request.identifier.PatientName == "DOE*"
    assert "StudyInstanceUID" in request.identifier
    assert request.sop_class_uid == MODEL_UIDS["study"]
    assert request.responses > 0
    assert blocks(result.stdout) == request.responses
    assert result.stderr == ""


@pytest.mark.parametrize("args, model", [
    (("-k", "QueryRetrieveLevel=PATIENT", "-k", "PatientName="), "patient"),
    (("-k", "QueryRetrieveLevel=STUDY", "-k", "PatientName="), "study"),
    (("-k", "QueryRetrieveLevel=SERIES", "-k", "StudyInstanceUID=1.2"), "study"),
    (("-k", "PatientName="), "worklist"),
    (("-P", "-k", "QueryRetrieveLevel=STUDY", "-k", "PatientID="), "patient"),
    (("-S", "-P", "-k", "QueryRetrieveLevel=PATIENT"), "patient"),
    (("-P", "-S", "-k", "QueryRetrieveLevel=STUDY"), "study"),
    (("-W", "-S", "-W", "-k", "PatientName="), "worklist"),
    (("-O", "-k", "QueryRetrieveLevel=PATIENT", "-k", "PatientName="), "psonly"),
    (("-U", "-k", "ProcedureStepState=SCHEDULED", "-k", "PatientName="), "ups"),
    (("--ups", "-k", "PatientName="), "ups"),
])
def test_model_flags_rightmost_wins_and_inference(dimsekit, scp, args, model):
    result = find(dimsekit, scp, "-v", *args)
    assert result.returncode == 0, result.stderr
    assert [r.sop_class_uid for r in scp.requests] == [MODEL_UIDS[model]]
    requested = [c.abstract_syntax for c in scp.associations[0].requested_contexts]
    assert requested == [MODEL_UIDS[model]]


def test_inference_is_explained_at_verbose(dimsekit, scp):
    result = find(dimsekit, scp, "-v", "-k", "QueryRetrieveLevel=PATIENT", "-k", "PatientID=")
    assert "patient root information model (QueryRetrieveLevel is PATIENT)" in result.stderr
    assert "I: Requesting Association" in result.stderr


@pytest.mark.parametrize("args", [
    ("-aet", "ME", "-aec", "YOU"),
    ("--aetitle", "ME", "--call", "YOU"),
    ("--calling-aet", "ME", "--called-aet", "YOU"),
])
def test_ae_titles_under_both_tools_spellings(dimsekit, scp, args):
    result = find(dimsekit, scp, *args, *STUDY_Q)
    assert result.returncode == 0, result.stderr
    assoc = scp.associations[0]
    assert (assoc.calling_ae, assoc.called_ae) == ("ME", "YOU")


def test_default_ae_titles(dimsekit, scp):
    find(dimsekit, scp, *STUDY_Q)
    assoc = scp.associations[0]
    assert (assoc.calling_ae, assoc.called_ae) == ("FINDSCU", "ANY-SCP")


IMPLICIT, EXPLICIT, BIG, DEFLATED = ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1",
                                     "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99")


@pytest.mark.parametrize("flag, proposed", [
    (None, (EXPLICIT, BIG, IMPLICIT)),
    ("-x=", (EXPLICIT, BIG, IMPLICIT)),
    ("-xe", (EXPLICIT, BIG, IMPLICIT)),
    ("-xb", (BIG, EXPLICIT, IMPLICIT)),
    ("-xi", (IMPLICIT,)),
    ("-xd", (DEFLATED, EXPLICIT, BIG, IMPLICIT)),
])
def test_transfer_syntax_proposals(dimsekit, scp, flag, proposed):
    result = find(dimsekit, scp, *([flag] if flag else []), *STUDY_Q)
    assert result.returncode == 0, result.stderr
    (context,) = scp.associations[0].requested_contexts
    assert context.transfer_syntaxes == proposed
    assert scp.requests[0].transfer_syntax in proposed  # the acceptor picks
    assert blocks(result.stdout) == scp.requests[0].responses


def test_max_pdu_is_proposed(dimsekit, scp):
    find(dimsekit, scp, "-pdu", "32768", *STUDY_Q)
    assert scp.associations[0].max_pdu == 32768
    bad = find(dimsekit, scp, "-pdu", "100", *STUDY_Q)
    assert bad.returncode == 2 and "4096" in bad.stderr


@pytest.mark.parametrize("flag, index", [
    ("--relational-query", 0), ("--dt-matching", 1), ("--fuzzy-names", 2),
    ("--timezone-adj", 3), ("--enhanced-conversion", 4),
])
def test_extended_negotiation_flags(dimsekit, scp, flag, index):
    result = find(dimsekit, scp, "-v", "-S", flag, *STUDY_Q)
    assert result.returncode == 0, result.stderr
    sent = scp.associations[0].extended_negotiation[MODEL_UIDS["study"]]
    assert [i for i, b in enumerate(sent) if b] == [index]
    assert ("extended negotiation for Study Root Query/Retrieve Information Model - FIND: "
            "requested") in result.stderr
    assert "the peer accepted" in result.stderr


def test_worklist_ignores_qr_only_flags_with_a_warning(dimsekit, scp):
    result = find(dimsekit, scp, "-W", "--relational-query", "--fuzzy-names",
                  "-k", "PatientName=")
    assert result.returncode == 0
    assert result.stderr_lines == [
        "W: --relational-query does not apply to the worklist model; not requested"]
    sent = scp.associations[0].extended_negotiation[MODEL_UIDS["worklist"]]
    assert [i for i, b in enumerate(sent) if b] == [0, 1, 2]


def test_no_flags_no_extended_negotiation(dimsekit, scp):
    find(dimsekit, scp, *STUDY_Q)
    assert scp.associations[0].extended_negotiation == {}


# -- flow ------------------------------------------------------------------------


def test_repeat_sends_each_query_n_times_on_one_association(dimsekit, scp):
    result = find(dimsekit, scp, "--repeat", "3", *STUDY_Q)
    assert result.returncode == 0
    assert len(scp.associations) == 1 and len(scp.requests) == 3
    assert blocks(result.stdout) == sum(r.responses for r in scp.requests)


def test_cancel_after_n_pending(dimsekit, make_scp):
    scp = make_scp(repeat_matches=20, response_delay=0.01)
    result = find(dimsekit, scp, "--cancel", "2", *STUDY_Q)
    assert result.returncode == 0, result.stderr
    assert blocks(result.stdout) == 2
    (cancel,) = scp.cancels
    assert cancel.after_responses >= 2
    assert scp.requests[0].status == 0xFE00


def test_cancel_ignored_by_the_peer_still_ends_well(dimsekit, make_scp):
    scp = make_scp(repeat_matches=8, honour_cancel=False)
    result = find(dimsekit, scp, "--cancel", "3", *STUDY_Q)
    assert result.returncode == 0, result.stderr
    assert blocks(result.stdout) == 3
    assert scp.requests[0].responses == 8 and scp.requests[0].status == 0x0000


def test_abort_instead_of_release(dimsekit, scp):
    result = find(dimsekit, scp, "--abort", *STUDY_Q)
    assert result.returncode == 0
    assoc = scp.associations[0]
    assert assoc.wait_ended() and assoc.ended == "aborted"
    released = find(dimsekit, scp, *STUDY_Q)
    assert released.returncode == 0
    assert scp.associations[1].wait_ended() and scp.associations[1].ended == "released"


# -- exit codes and one-line errors ----------------------------------------------


def test_failure_status_is_exit_1_and_matches_are_kept(dimsekit, make_scp):
    scp = make_scp(repeat_matches=2, final_status=0xC000)
    result = find(dimsekit, scp, *STUDY_Q)
    assert result.returncode == 1
    assert blocks(result.stdout) == 2
    assert result.stderr_lines == [
        "E: query -k: peer answered 0xC000 (Failure: Unable to Process)"]


def test_abort_mid_query_is_exit_4_and_output_is_kept(dimsekit, make_scp):
    scp = make_scp(repeat_matches=5, abort_after=2)
    result = find(dimsekit, scp, *STUDY_Q)
    assert result.returncode == 4
    assert blocks(result.stdout) == 2
    assert result.stderr_lines == [
        "E: query -k: the peer aborted the association (source: Service User) "
        "after 2 responses; results may be incomplete"]


def test_dimse_timeout_mid_query_is_exit_4(dimsekit, make_scp):
    scp = make_scp(repeat_matches=5, hang_after=1)
    result = find(dimsekit, scp, "-td", "1", *STUDY_Q)
    assert result.returncode == 4
    assert blocks(result.stdout) == 1
    assert len(result.stderr_lines) == 1
    assert "no response within the DIMSE timeout (1 s) after 1 response" in result.stderr


def test_rejected_association_is_exit_3_with_reason(dimsekit, make_scp):
    scp = make_scp(reject=(1, 1, 3))
    result = find(dimsekit, scp, *STUDY_Q)
    assert result.returncode == 3
    assert result.stdout == ""
    (line,) = result.stderr_lines
    assert line.startswith("E: association rejected by 127.0.0.1:")
    assert "Rejected Permanent" in line and "Calling AE title not recognised" in line


def test_no_presentation_context_is_exit_3(dimsekit, make_scp):
    scp = make_scp(accept_models=["patient"])
    result = find(dimsekit, scp, "-S", *STUDY_Q)
    assert result.returncode == 3
    (line,) = result.stderr_lines
    assert "no presentation context accepted" in line and "Study Root" in line


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_connection_refused_is_exit_3(dimsekit):
    port = _closed_port()
    result = dimsekit("find", *STUDY_Q, "127.0.0.1", port)
    assert result.returncode == 3
    assert result.stderr_lines == [
        f"E: cannot connect to 127.0.0.1:{port}: [Errno 111] Connection refused"]


def test_unknown_host_is_exit_3(dimsekit):
    result = dimsekit("find", *STUDY_Q, "no-such-host.invalid", "104")
    assert result.returncode == 3
    (line,) = result.stderr_lines
    assert line.startswith("E: cannot resolve peer 'no-such-host.invalid'")


def test_quiet_silences_the_error_line_but_not_the_exit_code(dimsekit):
    result = dimsekit("find", "-q", *STUDY_Q, "127.0.0.1", _closed_port())
    assert result.returncode == 3 and result.stderr == ""


def test_debug_shows_a_traceback(dimsekit):
    result = dimsekit("find", "-d", *STUDY_Q, "127.0.0.1", _closed_port())
    assert result.returncode == 3
    assert "Traceback" in result.stderr and "AssociationError" in result.stderr


@pytest.mark.parametrize("args, message", [
    (("-k", "PatientNam=X"), "bad -k 'PatientNam=X': unknown keyword 'PatientNam'"),
    (("-k", "(0010,00ZZ)=X"), "bad -k '(0010,00ZZ)=X'"),
    (("-k", "Columns=abc"), "bad -k 'Columns=abc'"),
    ((), "no query: give -k keys and/or query files"),
    (("-f", "missing.dcm"), "cannot read query file 'missing.dcm': no such file"),
])
def test_usage_errors_before_any_network_traffic(dimsekit, scp, args, message):
    result = find(dimsekit, scp, *args)
    assert result.returncode == 2
    assert len(result.stderr_lines) == 1 and message in result.stderr_lines[0]
    assert scp.associations == []


def test_unknown_option_is_exit_2_in_one_line(dimsekit, scp):
    result = find(dimsekit, scp, "--no-such-option", *STUDY_Q)
    assert result.returncode == 2
    # click's words: "No such option: --x" before 8.4, "No such option '--x'." since
    (line,) = result.stderr_lines
    assert line.startswith("E: No such option") and "--no-such-option" in line
    assert line.endswith("(see 'dimsekit find --help')")
    assert scp.associations == []


def test_bad_port_is_exit_2_in_one_line(dimsekit):
    result = dimsekit("find", "-k", "PatientName=", "127.0.0.1", "http")
    assert result.returncode == 2
    assert result.stderr_lines == [
        "E: Invalid value for 'PORT': 'http' is not a valid integer range. "
        "(see 'dimsekit find --help')"]


def test_a_text_file_is_not_a_query(dimsekit, scp, tmp_path):
    bogus = tmp_path / "notes.txt"
    bogus.write_text("this is not DICOM\n")
    result = dimsekit("find", "127.0.0.1", scp.port, str(bogus))
    assert result.returncode == 2
    assert f"cannot read query file '{bogus}'" in result.stderr
    assert scp.associations == []


@pytest.mark.parametrize("level", ["fatal", "critical", "error", "warn", "warning",
                                   "info", "debug", "trace"])
def test_every_log_level_spelling(dimsekit, scp, level):
    result = find(dimsekit, scp, "-ll", level, *STUDY_Q)
    assert result.returncode == 0, result.stderr


def test_log_config_file(dimsekit, scp, tmp_path):
    log = tmp_path / "find.log"
    cfg = tmp_path / "log.ini"
    cfg.write_text(
        "[loggers]\nkeys=root,dimsekit\n[handlers]\nkeys=file\n[formatters]\nkeys=plain\n"
        "[logger_root]\nlevel=WARNING\nhandlers=\n"
        "[logger_dimsekit]\nlevel=INFO\nhandlers=file\nqualname=dimsekit\npropagate=0\n"
        f"[handler_file]\nclass=FileHandler\nformatter=plain\nargs=({str(log)!r},)\n"
        "[formatter_plain]\nformat=%(levelname)s %(message)s\n"
    )
    result = find(dimsekit, scp, "-lc", cfg, *STUDY_Q)
    assert result.returncode == 0, result.stderr
    assert "INFO Requesting Association" in log.read_text()


# -- query files ---------------------------------------------------------------


def _query_file(path, **elements):
    ds = pydicom.Dataset()
    for key, value in elements.items():
        setattr(ds, key, value)
    ds.save_as(path, implicit_vr=False, little_endian=True)
    return path


def test_query_files_in_order_with_keys_on_top(dimsekit, scp, tmp_path):
    a = _query_file(tmp_path / "a.dcm", QueryRetrieveLevel="STUDY", PatientName="A*",
                    StudyDate="")
    b = _query_file(tmp_path / "b.dcm", QueryRetrieveLevel="STUDY", PatientName="B*")
    c = _query_file(tmp_path / "c.dcm", QueryRetrieveLevel="STUDY", PatientName="C*")
    result = dimsekit("find", "-S", "-f", str(b), "127.0.0.1", str(scp.port), str(a),
                      "-k", "PatientID=X1", "--file", str(c))
    assert result.returncode == 0, result.stderr
    assert [str(r.identifier.PatientName) for r in scp.requests] == ["B*", "A*", "C*"]
    assert all(r.identifier.PatientID == "X1" for r in scp.requests)
    assert "StudyDate" in scp.requests[1].identifier  # the file's other keys stay
    assert len(scp.associations) == 1


def test_level_option_sets_query_retrieve_level(dimsekit, scp):
    result = find(dimsekit, scp, "-L", "series", "-k", "StudyInstanceUID=1.2.3",
                  "-k", "SeriesInstanceUID=")
    assert result.returncode == 0, result.stderr
    assert scp.requests[0].identifier.QueryRetrieveLevel == "SERIES"
    assert scp.requests[0].sop_class_uid == MODEL_UIDS["study"]


def test_command_file_and_arguments(dimsekit, scp, tmp_path):
    cmd = tmp_path / "cmd.txt"
    cmd.write_text('-S   -k "PatientName=DOE* JOHN"\n-k QueryRetrieveLevel=STUDY\n')
    result = find(dimsekit, scp, f"@{cmd}", "--arguments")
    assert result.returncode == 0, result.stderr
    assert scp.requests[0].identifier.PatientName == "DOE* JOHN"
    assert result.stderr.startswith("expanded command line to ")
    assert "'PatientName=DOE* JOHN'" in result.stderr


def test_missing_command_file_is_exit_2(dimsekit):
    result = dimsekit("find", "@nope.txt", "127.0.0.1", "104")
    assert result.returncode == 2
    assert result.stderr_lines == [
        "E: cannot read command file 'nope.txt': No such file or directory"]


# -- output --------------------------------------------------------------------


def test_extract_writes_part10_files_numbered_across_the_run(dimsekit, make_scp, tmp_path):
    scp = make_scp(repeat_matches=3)
    out = tmp_path / "out"
    result = find(dimsekit, scp, "-X", "-od", out, "--repeat", "2", *STUDY_Q)
    assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"rsp{i:04d}.dcm" for i in range(1, 7)]
    ds = pydicom.dcmread(out / "rsp0001.dcm")
    assert ds.file_meta.TransferSyntaxUID == EXPLICIT
    assert ds.file_meta.MediaStorageSOPClassUID == MODEL_UIDS["study"]
    assert ds.QueryRetrieveLevel == "STUDY"
    # -w is pynetdicom's spelling of the same thing; never overwrite
    again = find(dimsekit, scp, "-w", "-od", out, *STUDY_Q)
    assert again.returncode == 2
    assert again.stderr_lines == [
        f"E: {out / 'rsp0001.dcm'} exists; refusing to overwrite extracted responses "
        "(choose another -od, or --overwrite)"]
    assert len(scp.associations) == 1  # refused before querying


def test_output_file_keeps_what_arrived_before_an_abort(dimsekit, make_scp, tmp_path):
    scp = make_scp(repeat_matches=5, abort_after=3)
    target = tmp_path / "results.txt"
    result = find(dimsekit, scp, "-o", target, *STUDY_Q)
    assert result.returncode == 4
    assert result.stdout == ""
    assert blocks(target.read_text()) == 3
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


def test_silent_peer_is_an_acse_timeout(dimsekit):
    # a listening socket that never answers: the kernel completes the TCP
    # handshake, nobody sends A-ASSOCIATE-AC
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        result = dimsekit("find", "-ta", "1", *STUDY_Q, "127.0.0.1", port)
    assert result.returncode == 3
    assert result.stderr_lines == [
        f"E: no answer to the association request from 127.0.0.1:{port} within "
        "1.0 s (ACSE timeout)"]


def test_missing_arguments_is_one_line(dimsekit):
    result = dimsekit("find", "-k", "PatientName=")
    assert result.returncode == 2
    assert result.stderr_lines == [
        "E: Missing argument 'PEER'. (see 'dimsekit find --help')"]


def test_a_plugin_adds_an_extended_negotiation_flag_and_a_model(scp):
    """dimsekit_extended_negotiation_flags and dimsekit_information_models
    from a plugin of the test's own become options of find."""
    import pluggy
    from click.testing import CliRunner

    import dimsekit.plugins.find as find_plugin
    from dimsekit.api import ExtendedNegotiationFlag, InformationModel, hookimpl
    from dimsekit.cli import build_cli
    from dimsekit.cli.host import Host

    class Extra:
        @hookimpl
        def dimsekit_extended_negotiation_flags(self):
            return [ExtendedNegotiationFlag("sixth-byte", "find", 5, "set byte 6")]

        @hookimpl
        def dimsekit_information_models(self):
            return [InformationModel("study-again", MODEL_UIDS["study"], "find",
                                     ("--study-again",), "study root, by another name")]

    host = Host(pluggy.PluginManager("dimsekit"))
    host.register(find_plugin, "find")
    host.register(Extra(), "extra")
    cli = build_cli(host)
    assert "--sixth-byte" in CliRunner().invoke(cli, ["find", "--help"]).output
    result = CliRunner().invoke(cli, ["find", "--study-again", "--sixth-byte", *STUDY_Q,
                                      "127.0.0.1", str(scp.port)])
    assert result.exit_code == 0, result.output
    sent = scp.associations[0].extended_negotiation[MODEL_UIDS["study"]]
    assert [i for i, b in enumerate(sent) if b] == [5]


@pytest.mark.parametrize("option", ["-o", "-Xs"])
def test_an_output_file_that_is_a_directory_is_exit_2_before_connecting(dimsekit, scp,
                                                                        tmp_path, option):
    result = find(dimsekit, scp, option, str(tmp_path), *STUDY_Q)
    assert result.returncode == 2
    assert result.stderr_lines == [
        f"E: cannot write output file '{tmp_path}': it is a directory"]
    assert scp.associations == []
    assert [p.name for p in tmp_path.iterdir()] == []  # no .part left behind


def test_a_closed_stdout_is_exit_2_unless_nothing_is_to_be_shown(scp, tmp_path):
    import shlex
    import subprocess

    from dimsekit.testing.cli import DIMSEKIT_COMMAND

    def run(*args):
        command = shlex.join([*DIMSEKIT_COMMAND, "find", *args, *STUDY_Q, "127.0.0.1",
                              str(scp.port)])
        return subprocess.run(["sh", "-c", f"exec {command} >&-"], capture_output=True,
                              text=True, timeout=60, cwd=tmp_path)

    closed = run()
    assert closed.returncode == 2
    assert closed.stderr == ("E: stdout is closed: give -o FILE for the responses, "
                             "or -sr to show none\n")
    assert run("-sr").returncode == 0
    assert run("-o", str(tmp_path / "out.txt")).returncode == 0
    assert "Find Response: 1" in (tmp_path / "out.txt").read_text()
