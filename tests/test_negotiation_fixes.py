"""What goes on the wire and what is said about it: extended negotiation
bytes (as pynetdicom's findscu sends them), ``-pdu 0`` and negative
timeouts, ``--version``, the TLS / plain-TCP mismatch lines, and ``-v``
saying each association step once.

Everything runs ``dimsekit`` as a subprocess against the in-process recording
peer (or a real one), and checks what the peer received and what stderr said.
"""

from __future__ import annotations

import platform
import socket
import ssl
import subprocess
import sys
import threading
import time
from importlib.metadata import version

import pytest
from conftest import assert_no_traceback, run_dimsekit

from dimsekit.testing import MODEL_UIDS, QuerySCP
from dimsekit.tls import (
    EXPECTS_TLS_HINT,
    NOT_TLS_HINT,
    TLSSettings,
    failure_reason,
    hint,
    plain_tcp_failure,
)

STUDY_Q = ("-k", "QueryRetrieveLevel=STUDY", "-k", "PatientName=")
MODEL_FLAG = {"patient": "-P", "study": "-S", "psonly": "-O", "worklist": "-W",
              "ups": "-U"}
#: a query each model's peer takes (its answer does not matter here)
MODEL_QUERY = {
    "patient": ("-k", "QueryRetrieveLevel=PATIENT", "-k", "PatientName="),
    "study": STUDY_Q,
    "psonly": ("-k", "QueryRetrieveLevel=PATIENT", "-k", "PatientName="),
    "worklist": ("-k", "PatientName="),
    "ups": ("-k", "ProcedureStepState=SCHEDULED", "-k", "PatientName="),
}


# ---------------------------------------------------------------------------
# 1. extended negotiation: byte for byte what pynetdicom's findscu sends
# ---------------------------------------------------------------------------


def _sent(scp, model: str) -> bytes | None:
    (assoc,) = scp.associations
    return assoc.extended_negotiation.get(MODEL_UIDS[model])


def _pynetdicom_findscu(scp, model: str, flags: tuple[str, ...]) -> bytes | None:
    """What pynetdicom's own findscu app sends for the same flags."""
    scp.reset()
    subprocess.run([sys.executable, "-m", "pynetdicom", "findscu", "-ta", "5",
                    "127.0.0.1", str(scp.port), MODEL_FLAG[model], *flags,
                    *MODEL_QUERY[model]],
                   capture_output=True, text=True, timeout=60, check=False)
    assert scp.wait_idle()
    return _sent(scp, model)


@pytest.mark.parametrize("model, flags, expected", [
    # PS3.4 K.5.1: worklist = 01 01 <fuzzy> <timezone>
    ("worklist", ("--fuzzy-names",), "01 01 01 00"),
    ("worklist", ("--timezone-adj",), "01 01 00 01"),
    ("worklist", ("--fuzzy-names", "--timezone-adj"), "01 01 01 01"),
    # UPS: the C.5 layout, every flag, as pynetdicom's findscu sends it
    ("ups", ("--dt-matching",), "00 01 00 00 00"),
    ("ups", ("--relational-query", "--dt-matching", "--fuzzy-names", "--timezone-adj",
             "--enhanced-conversion"), "01 01 01 01 01"),
    # Q/R: PS3.4 C.5, unchanged
    ("patient", ("--relational-query", "--enhanced-conversion"), "01 00 00 00 01"),
    ("study", ("--dt-matching",), "00 01 00 00 00"),
    ("psonly", ("--timezone-adj",), "00 00 00 01 00"),
])
def test_extended_negotiation_bytes_match_pynetdicom_findscu(dimsekit, scp, model, flags,
                                                             expected):
    result = dimsekit("find", "-ta", "5", MODEL_FLAG[model], *flags, *MODEL_QUERY[model],
                      "127.0.0.1", scp.port)
    assert_no_traceback(result)
    assert scp.wait_idle()
    ours = _sent(scp, model)
    assert ours is not None and ours.hex(" ") == expected, result.stderr
    assert "does not apply" not in result.stderr
    assert _pynetdicom_findscu(scp, model, flags) == ours


def test_worklist_leaves_qr_only_flags_out_as_pynetdicom_does(dimsekit, scp):
    flags = ("--relational-query", "--dt-matching", "--fuzzy-names")
    result = dimsekit("find", "-W", *flags, "-k", "PatientName=", "127.0.0.1", scp.port)
    assert result.returncode == 0, result.stderr
    assert result.stderr_lines == [
        "W: --dt-matching does not apply to the worklist model; not requested",
        "W: --relational-query does not apply to the worklist model; not requested"]
    assert scp.wait_idle()
    assert _sent(scp, "worklist") == bytes([1, 1, 1, 0])
    assert _pynetdicom_findscu(scp, "worklist", flags) == bytes([1, 1, 1, 0])


def test_worklist_with_only_qr_flags_sends_no_item(dimsekit, scp):
    result = dimsekit("find", "-W", "--dt-matching", "-k", "PatientName=",
                      "127.0.0.1", scp.port)
    assert result.returncode == 0, result.stderr
    assert scp.wait_idle()
    assert scp.associations[0].extended_negotiation == {}


# ---------------------------------------------------------------------------
# 2. -pdu 0 (PS3.8: no limit) and negative timeouts
# ---------------------------------------------------------------------------


def test_max_pdu_0_is_no_limit(dimsekit, scp):
    result = dimsekit("find", "-pdu", "0", "-S", *STUDY_Q, "127.0.0.1", scp.port)
    assert result.returncode == 0, result.stderr
    assert scp.associations[0].max_pdu == 0
    assert result.stdout.count("Find Response: ") == scp.requests[0].responses > 0


@pytest.mark.parametrize("value", ["100", "4095", "131073", "-1", "x"])
def test_other_max_pdu_values_are_still_usage_errors(dimsekit, scp, value):
    result = dimsekit("find", "-pdu", value, "-S", *STUDY_Q, "127.0.0.1", scp.port)
    assert result.returncode == 2
    (line,) = result.stderr_lines
    assert line.startswith("E: Invalid value for '-pdu' / '--max-pdu': ")
    assert "4096..131072" in line or "whole number" in line
    assert scp.associations == []


@pytest.mark.parametrize("option, name", [
    ("-to", "--timeout"), ("-ta", "--acse-timeout"), ("-td", "--dimse-timeout"),
    ("-tn", "--network-timeout"),
])
@pytest.mark.parametrize("value", ["-1", "-0.5", "nan"])
def test_negative_timeouts_are_usage_errors(dimsekit, scp, option, name, value):
    result = dimsekit("find", option, value, "-S", *STUDY_Q, "127.0.0.1", scp.port)
    assert_no_traceback(result)
    assert result.returncode == 2
    (line,) = result.stderr_lines
    assert line.startswith(f"E: Invalid value for '{option}' / '{name}': {value} is "), line
    assert scp.associations == []


@pytest.mark.parametrize("option", ["-to", "-ta", "-td", "-tn"])
def test_timeout_0_is_still_unlimited(dimsekit, scp, option):
    result = dimsekit("find", option, "0", "-S", *STUDY_Q, "127.0.0.1", scp.port)
    assert result.returncode == 0, result.stderr


# ---------------------------------------------------------------------------
# 3. --version
# ---------------------------------------------------------------------------


def _version_lines() -> list[str]:
    return [f"pydicom {version('pydicom')}", f"pynetdicom {version('pynetdicom')}",
            f"Python {platform.python_version()} ({platform.python_implementation()})",
            ssl.OPENSSL_VERSION]


@pytest.mark.parametrize("args", [["--version"], ["find", "--version"]])
def test_version_names_dimsekit_and_the_libraries(args):
    from dimsekit import __version__

    result = run_dimsekit(*args)
    assert result.returncode == 0 and result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[:5] == [f"dimsekit {__version__}", *_version_lines()]
    # then one line a loaded plugin, the built-in find first
    assert lines[5] == f"plugin find {__version__} (dimsekit)"
    assert all(line.startswith("plugin ") for line in lines[5:])


def test_version_imports_neither_pydicom_nor_pynetdicom():
    code = (
        "import sys\n"
        "from dimsekit.cli import main\n"
        "try:\n"
        "    main(['--version'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = [m for m in ('pydicom', 'pynetdicom') if m in sys.modules]\n"
        "sys.stderr.write(repr(heavy))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)
    assert proc.stderr.endswith("[]"), proc.stderr
    assert proc.stdout.startswith("dimsekit ")


# ---------------------------------------------------------------------------
# 4. TLS to a plain port, plain TCP to a TLS port
# ---------------------------------------------------------------------------

TLS_QUERY = ("-ta", "5", "-S", *STUDY_Q)


def _tls_args(m, how: str) -> tuple[str, ...]:
    if how == "auth":
        return ("+tls", str(m.client_key), str(m.client_cert), "+cf", str(m.ca_cert))
    return ("+tla", "+cf", str(m.ca_cert))


def _assert_not_tls_line(result, port: int) -> None:
    assert_no_traceback(result)
    assert result.returncode == 3
    (line,) = result.stderr_lines
    assert line.startswith(f"E: TLS handshake with 127.0.0.1:{port} failed: "), line
    assert line.endswith(NOT_TLS_HINT), line
    assert "client certificate" not in line


@pytest.mark.parametrize("how", ["auth", "anonymous"])
def test_tls_to_a_plain_in_process_peer_says_it_may_not_speak_tls(tls_material, how):
    scp = QuerySCP().start()  # pynetdicom: reads the ClientHello as a bad PDU
    try:
        result = run_dimsekit("find", *_tls_args(tls_material, how), *TLS_QUERY,
                              "127.0.0.1", scp.port)
    finally:
        scp.stop(timeout=0.3)
    _assert_not_tls_line(result, scp.port)


@pytest.mark.realpeer("dcmqrscp")
@pytest.mark.parametrize("how", ["auth", "anonymous"])
def test_tls_to_plain_dcmqrscp_says_it_may_not_speak_tls(dcmqrscp_peer, tls_material, how):
    """DCMTK resets the connection on the ClientHello: no TLS answer at all,
    which is no client-certificate problem."""
    result = run_dimsekit("find", *_tls_args(tls_material, how), *TLS_QUERY,
                          "127.0.0.1", dcmqrscp_peer.port)
    _assert_not_tls_line(result, dcmqrscp_peer.port)
    assert " before any TLS answer;" in result.stderr


@pytest.mark.realpeer("Orthanc")
@pytest.mark.parametrize("how", ["auth", "anonymous"])
def test_tls_to_plain_orthanc_says_it_may_not_speak_tls(orthanc_peer, tls_material, how):
    result = run_dimsekit("find", *_tls_args(tls_material, how), *TLS_QUERY,
                          "127.0.0.1", orthanc_peer.port)
    _assert_not_tls_line(result, orthanc_peer.port)


def _expects_tls(result, port: int) -> None:
    assert_no_traceback(result)
    assert result.returncode == 3
    assert result.stderr_lines == [
        f"E: 127.0.0.1:{port} closed the connection without answering the association "
        f"request{EXPECTS_TLS_HINT}"]


def test_plain_tcp_to_an_in_process_tls_peer_says_it_may_expect_tls(tls_material):
    """Needs the association.py change (plain_tcp_failure in _failure)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tls_material.server_cert, tls_material.server_key)
    scp = QuerySCP(ssl_context=ctx).start()
    try:
        result = run_dimsekit("find", *TLS_QUERY, "127.0.0.1", scp.port)
    finally:
        scp.stop(timeout=0.3)
    _expects_tls(result, scp.port)


@pytest.mark.realpeer("Orthanc")
def test_plain_tcp_to_orthanc_tls_says_it_may_expect_tls(orthanc_tls_peer):
    """Needs the association.py change (plain_tcp_failure in _failure)."""
    result = run_dimsekit("find", *TLS_QUERY, "127.0.0.1", orthanc_tls_peer.port)
    _expects_tls(result, orthanc_tls_peer.port)


@pytest.fixture
def answering_listener():
    """``start(reply)``: a TCP server that reads a request, answers ``reply``
    and closes; returns its port."""
    listeners = []

    def start(reply: bytes) -> int:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(2)
        listener.settimeout(10)
        listeners.append(listener)

        def serve() -> None:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                conn.sendall(reply)
                time.sleep(0.3)

        threading.Thread(target=serve, daemon=True).start()
        return listener.getsockname()[1]

    yield start
    for listener in listeners:
        listener.close()


def test_a_tls_alert_in_answer_to_plain_tcp_says_tls(answering_listener):
    """Needs the association.py change (pynetdicom.dul's "Unknown PDU type")."""
    port = answering_listener(bytes([0x15, 3, 3, 0, 2, 2, 0x46]))  # protocol_version
    result = run_dimsekit("find", *TLS_QUERY, "127.0.0.1", port)
    assert result.returncode == 3
    assert result.stderr_lines == [
        f"E: 127.0.0.1:{port} answered the association request with a TLS alert record, "
        f"not a DICOM PDU{EXPECTS_TLS_HINT}"]


def test_a_non_dicom_answer_is_named(answering_listener):
    """Needs the association.py change (pynetdicom.dul's "Unknown PDU type")."""
    port = answering_listener(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    result = run_dimsekit("find", *TLS_QUERY, "127.0.0.1", port)
    assert result.returncode == 3
    assert result.stderr_lines == [
        f"E: 127.0.0.1:{port} answered the association request with something other "
        "than a DICOM PDU (first byte 0x48): is it a DICOM port?"]


def test_an_a_abort_in_answer_to_plain_tcp_is_still_an_abort(answering_listener):
    port = answering_listener(bytes([0x07, 0, 0, 0, 0, 4, 0, 0, 2, 0]))
    result = run_dimsekit("find", *TLS_QUERY, "127.0.0.1", port)
    assert result.returncode == 3
    (line,) = result.stderr_lines
    assert line.startswith(f"E: association aborted by 127.0.0.1:{port} during negotiation")
    assert "TLS" not in line


def _marked(exc: BaseException, answered: bool) -> BaseException:
    exc.dimsekit_peer_answered_tls = answered  # as dimsekit.tls.observe marks it
    return exc


@pytest.mark.parametrize("exc", [
    ConnectionResetError(104, "Connection reset by peer"),
    ssl.SSLEOFError(8, "EOF occurred in violation of protocol"),
])
def test_a_handshake_never_answered_in_tls_blames_the_port_not_the_certificate(exc):
    exc = _marked(exc, answered=False)
    for mode in ("authenticated", "anonymous"):
        assert hint(TLSSettings(mode=mode), exc) == NOT_TLS_HINT
    assert failure_reason(exc).endswith(" before any TLS answer")


def test_a_handshake_the_peer_answered_still_points_at_our_certificate():
    exc = _marked(ConnectionResetError(104, "Connection reset by peer"), answered=True)
    assert hint(TLSSettings(mode="anonymous"), exc) == (
        "; does the peer require a client certificate (+tls KEY CERT)?")
    assert hint(TLSSettings(mode="authenticated"), exc) == (
        "; does the peer trust our client certificate?")
    assert failure_reason(exc) == "Connection reset by peer"
    # closed after the handshake (TLS 1.3 rejects a certificate then): unmarked
    assert hint(TLSSettings(mode="anonymous"), ssl.SSLEOFError(8, "EOF")) == (
        "; does the peer require a client certificate (+tls KEY CERT)?")


def test_plain_tcp_failure_lines():
    assert plain_tcp_failure("pacs:104") == (
        "pacs:104 closed the connection without answering the association request; "
        "the peer may expect TLS (+tls KEY CERT or +tla)")
    assert plain_tcp_failure("pacs:104", 0x16) == (
        "pacs:104 answered the association request with a TLS handshake record, not a "
        "DICOM PDU; the peer may expect TLS (+tls KEY CERT or +tla)")


# ---------------------------------------------------------------------------
# 5. -v says each association step once
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("extra, ending", [((), "Releasing Association"),
                                           (("--abort",), "Aborting Association")])
def test_verbose_says_each_association_step_once(dimsekit, scp, extra, ending):
    result = dimsekit("find", "-v", *extra, "-S", *STUDY_Q, "127.0.0.1", scp.port)
    assert result.returncode == 0, result.stderr
    lines = result.stderr_lines
    requesting = [line for line in lines if "Requesting Association" in line]
    assert requesting == [
        f"I: Requesting Association with 127.0.0.1:{scp.port} (FINDSCU -> ANY-SCP)"]
    assert lines.count("I: Association Accepted") == 1
    assert lines.count(f"I: {ending}") == 1
    assert not any(other in line for line in lines
                   for other in ("Releasing Association", "Aborting Association")
                   if other != ending)


def test_pynetdicom_still_speaks_for_itself_where_dimsekit_does_not():
    """The filter drops only the three lines dimsekit says itself."""
    import logging

    from dimsekit.cli.logs import _PynetdicomFilter

    f = _PynetdicomFilter()
    f.threshold = logging.INFO

    def record(name: str, level: int, msg: str) -> logging.LogRecord:
        return logging.LogRecord(name, level, __file__, 1, msg, (), None)

    assert not f.filter(record("pynetdicom.association", logging.INFO,
                               "Requesting Association"))
    assert f.filter(record("pynetdicom.acse", logging.INFO, "Aborting Association"))
    assert f.filter(record("pynetdicom.acse", logging.INFO, "Association Accepted"))
    assert f.filter(record("pynetdicom.association", logging.ERROR,
                           "Releasing Association"))
    assert f.filter(record("dimsekit.association", logging.INFO, "Releasing Association"))
