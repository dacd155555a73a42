"""How dimsekit receives DIMSE responses (``dimsekit.dimse``): whole however
the peer splits them, and one clear exit 4 however a peer breaks off,
over plain TCP (dimsekit reads the socket itself) and over TLS (pynetdicom's
DUL thread reads it)."""

from __future__ import annotations

import contextlib
import json
import ssl
import struct
import subprocess
import time
from collections.abc import Callable, Iterator

import pytest
from conftest import assert_no_traceback
from pydicom.dataset import Dataset
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, evt
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind

from dimsekit.dimse import Message, _Reassembler, parse_command_set
from dimsekit.testing import QuerySCP
from dimsekit.testing.cli import DIMSEKIT_COMMAND
from dimsekit.testing.sampledata import SampleData, worklist

STUDY_Q = ("-S", "-k", "QueryRetrieveLevel=STUDY", "-k", "PatientName=")


# -- the parts, in-process ---------------------------------------------------------


def _element(tag: int, value: bytes) -> bytes:
    return struct.pack("<HHL", tag >> 16, tag & 0xFFFF, len(value)) + value


def _us(tag: int, value: int) -> bytes:
    return _element(tag, struct.pack("<H", value))


def _pending_command(msg_id: int = 1, data_set: bool = True) -> bytes:
    return (_us(0x00000100, 0x8020) + _us(0x00000120, msg_id)
            + _us(0x00000800, 0x0000 if data_set else 0x0101) + _us(0x00000900, 0xFF00))


def test_command_set_elements_by_tag():
    command = parse_command_set(_pending_command(7) + _element(0x00000902, b"ODD "))
    message = Message(1, command, None)
    assert (message.command_field, message.message_id_being_responded_to,
            message.status) == (0x8020, 7, 0xFF00)
    assert command[0x00000902] == b"ODD "
    with pytest.raises(ValueError, match="longer than the command set"):
        parse_command_set(_pending_command()[:-1])


def test_fragments_of_command_and_data_set_are_joined():
    command, data = _pending_command(3), b"\x08\x00\x52\x00\x06\x00\x00\x00STUDY "
    parts = _Reassembler()
    assert parts.add(1, b"\x01" + command[:5]) is None
    assert parts.add(1, b"\x03" + command[5:]) is None
    assert parts.add(1, b"\x00" + data[:4]) is None
    message = parts.add(1, b"\x02" + data[4:])
    assert message == Message(1, parse_command_set(command), data)
    assert parts.add(1, b"\x03" + _pending_command(data_set=False)).dataset is None


def test_a_repeated_command_set_gives_each_message_its_own_elements():
    """A stream of pending responses repeats one command set, which is taken
    apart once: each message still gets its own dict, and a command set that
    differs (the final response, no data set) is taken apart anew."""
    parts = _Reassembler()
    data = b"\x08\x00\x52\x00\x06\x00\x00\x00STUDY "
    first, second = (parts.add_fragment(1, 3, _pending_command(5)) or
                     parts.add_fragment(1, 2, bytearray(data)) for _ in range(2))
    assert first == second == Message(1, parse_command_set(_pending_command(5)), data)
    assert type(first.dataset) is bytes
    assert first.command is not second.command
    first.command.clear()
    third = parts.add(1, b"\x03" + _pending_command(5)) or parts.add(1, b"\x02" + data)
    assert third.status == 0xFF00 and third.message_id_being_responded_to == 5
    final = parts.add(1, b"\x03" + _pending_command(5, data_set=False))
    assert final is not None and final.dataset is None
    with pytest.raises(ValueError, match="without CommandField or CommandDataSetType"):
        parts.add(1, b"\x03" + _us(0x00000900, 0))


@pytest.mark.parametrize("field", [0x8020, 0x8021])
@pytest.mark.parametrize("responding_to", [7, 8])
@pytest.mark.parametrize("status", [0xFF00, 0xFF01, 0x0000, 0xB000, 0xFE00, None])
@pytest.mark.parametrize("context_id", [1, 3])
@pytest.mark.parametrize("long_values", [False, True])
def test_the_quick_pending_check_agrees_with_the_full_one(field, responding_to, status,
                                                          context_id, long_values):
    """``FindRun.responses`` takes a pending response to its request by a
    look at three command elements; whatever it takes, ``FindRun._check``
    passes with the same status, and the rest is left to ``_check``."""
    from types import SimpleNamespace

    from dimsekit.errors import IncompleteError
    from dimsekit.qr.find import PENDING, FindRun, _pending_status

    pad = b"\x00\x00" if long_values else b""  # longer values: only the first US counts
    command = {0x00000100: struct.pack("<H", field) + pad,
               0x00000120: struct.pack("<H", responding_to) + pad,
               0x00000800: struct.pack("<H", 0)}
    if status is not None:
        command[0x00000900] = struct.pack("<H", status) + pad
    message = Message(context_id, command, b"")
    run = FindRun(None, None)
    run.msg_id = 7
    cx = SimpleNamespace(context_id=1)
    quick = _pending_status(message, run._expected(cx.context_id))
    try:
        full = run._check(SimpleNamespace(label="q"), message, cx, time.monotonic())
    except IncompleteError:
        full = None
    # taken: the status _check gives; left: what _check refuses, a final
    # status, or a pending one in values longer than a US (_check's to read)
    assert quick == (full if not long_values and full in PENDING else None)


@pytest.mark.parametrize("pdvs, error", [
    ([b"\x02data"], "data set fragment without a command set"),
    ([b"\x03" + _pending_command(), b"\x03" + _pending_command()],
     "command fragment where the data set was expected"),
    ([b"\x03" + _us(0x00000900, 0)], "without CommandField or CommandDataSetType"),
])
def test_malformed_messages_are_errors(pdvs, error):
    parts = _Reassembler()
    with pytest.raises(ValueError, match=error):
        for pdv in pdvs:
            parts.add(1, pdv)


# -- against peers -------------------------------------------------------------------


def find(dimsekit, port: int, *args, tls: tuple[str, ...] = ()):
    result = dimsekit("find", *tls, *args, "127.0.0.1", port)
    assert_no_traceback(result)
    return result


@pytest.fixture(params=["tcp", "tls"])
def transport(request, tls_material) -> tuple[dict, tuple[str, ...]]:
    """(the peer's extra knobs, the client's TLS options): plain TCP, and
    TLS, where pynetdicom's own thread reads the socket."""
    m = tls_material
    if request.param == "tcp":
        return {}, ()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(m.server_cert, m.server_key)
    return {"ssl_context": context}, ("+tla", "+cf", str(m.ca_cert))


@pytest.fixture
def start(transport, make_scp) -> Callable[..., QuerySCP]:
    """``start(**knobs)``: a started peer on this test's transport."""
    server_knobs, _ = transport
    return lambda **knobs: make_scp(**server_knobs, **knobs)


def test_responses_larger_than_a_pdu_arrive_whole(dimsekit, start, transport):
    items = worklist()
    for n, item in enumerate(items):
        item.PatientComments = f"{n} " + "x" * 9000  # ~3 PDUs of 4096 bytes each
    scp = start(data=SampleData(worklist=items))
    result = find(dimsekit, scp.port, "-pdu", "4096", "--format", "ndjson", "-W",
                  "-k", "PatientID=", "-k", "PatientComments=", tls=transport[1])
    assert result.returncode == 0, result.stderr
    got = [json.loads(line) for line in result.stdout.splitlines()]
    comments = sorted(d["00104000"]["Value"][0] for d in got)
    assert comments == sorted(str(item.PatientComments) for item in items)


def test_a_long_query_does_not_trip_the_network_timeout(dimsekit, start, transport):
    # -tn is pynetdicom's idle timer: it must count the responses dimsekit
    # read itself, or the association is aborted instead of released
    scp = start(repeat_matches=8, response_delay=0.2)
    result = find(dimsekit, scp.port, "-tn", "1", "--repeat", "2", *STUDY_Q,
                  tls=transport[1])
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("Find Response: ") == 16
    assert scp.associations[0].wait_ended() and scp.associations[0].ended == "released"


def test_cancel_then_the_next_query_on_the_same_association(dimsekit, start, transport):
    scp = start(repeat_matches=6, honour_cancel=False)
    result = find(dimsekit, scp.port, "--cancel", "2", "--repeat", "3", *STUDY_Q,
                  tls=transport[1])
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("Find Response: ") == 6
    assert [r.responses for r in scp.requests] == [6, 6, 6]
    assert len(scp.associations) == 1


# A peer that breaks off in the middle of a response: it answers one match,
# then sends raw bytes of its own on the association's socket.

PDU = struct.Struct(">BxL")
A_ABORT = PDU.pack(0x07, 4) + b"\x00\x00\x00\x00"


def _p_data(context_id: int, *pdvs: bytes) -> bytes:
    items = b"".join(struct.pack(">LB", len(pdv) + 1, context_id) + pdv for pdv in pdvs)
    return PDU.pack(0x04, len(items)) + items


@contextlib.contextmanager
def breaking_peer(then: Callable[[int], bytes],
                  ssl_context: ssl.SSLContext | None = None) -> Iterator[int]:
    """A Study Root C-FIND peer that sends one match, then ``then(context_id)``
    as raw bytes, then nothing; yields its port."""

    def handle(event):
        match = Dataset()
        match.QueryRetrieveLevel = "STUDY"
        match.PatientName = "DOE^John"
        yield 0xFF00, match
        time.sleep(0.3)  # pynetdicom's thread sends the match meanwhile
        event.assoc.dul.socket.socket.sendall(then(event.context.context_id))
        time.sleep(2)

    ae = AE(ae_title="ANY-SCP")
    ae.add_supported_context(StudyRootQueryRetrieveInformationModelFind,
                             ALL_TRANSFER_SYNTAXES)
    server = ae.start_server(("127.0.0.1", 0), block=False, ssl_context=ssl_context,
                             evt_handlers=[(evt.EVT_C_FIND, handle)])
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()


@pytest.fixture
def server_tls(transport, tls_material) -> ssl.SSLContext | None:
    if not transport[1]:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls_material.server_cert, tls_material.server_key)
    return context


def test_an_abort_between_the_fragments_of_a_response(dimsekit, transport, server_tls):
    def command_only(context_id: int) -> bytes:  # the data set never comes
        return _p_data(context_id, b"\x03" + _pending_command(1)) + A_ABORT

    with breaking_peer(command_only, server_tls) as port:
        result = find(dimsekit, port, "-td", "10", *STUDY_Q, tls=transport[1])
    assert result.returncode == 4
    assert result.stdout.count("Find Response: ") == 1
    assert result.stderr_lines == [
        "E: query -k: the peer aborted the association (source: Service User) "
        "after 1 response; results may be incomplete"]


def test_a_malformed_command_set_is_exit_4_at_once(dimsekit, transport, server_tls):
    def truncated(context_id: int) -> bytes:
        return _p_data(context_id, b"\x03" + _pending_command(1)[:-1])

    with breaking_peer(truncated, server_tls) as port:
        started = time.monotonic()
        result = find(dimsekit, port, "-td", "30", *STUDY_Q, tls=transport[1])
    assert time.monotonic() - started < 20  # not the DIMSE timeout
    assert result.returncode == 4
    assert result.stdout.count("Find Response: ") == 1
    (line,) = result.stderr_lines
    assert line.startswith("E: query -k: invalid DIMSE message from the peer (")
    assert line.endswith(") after 1 response; results may be incomplete")


def test_ndjson_reaches_a_pipe_as_each_response_arrives(make_scp, tmp_path):
    scp = make_scp(repeat_matches=3, response_delay=1.0)
    proc = subprocess.Popen(
        [*DIMSEKIT_COMMAND, "find", "--format", "ndjson", *STUDY_Q, "127.0.0.1",
         str(scp.port)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=tmp_path)
    try:
        first = json.loads(proc.stdout.readline())
        assert proc.poll() is None  # still running: the line came before the end
        assert first["00080052"]["Value"] == ["STUDY"]
    finally:
        rest = proc.communicate(timeout=30)[0]
    assert proc.returncode == 0
    assert len(rest.splitlines()) == 2


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"),
                                   ValueError("flush of closed file")])
def test_a_failing_idle_callback_is_the_callers_error_not_the_peers(start, transport,
                                                                    tls_material, error):
    """``idle`` (find flushes its output there) raising: the exception comes
    out of receive() as it is, not as 'the peer closed' or 'invalid DIMSE
    message'."""
    from io import BytesIO

    from pynetdicom.dimse_primitives import C_FIND
    from pynetdicom.dsutils import encode

    from dimsekit.dimse import Exchange

    scp = start(repeat_matches=3, response_delay=0.3)
    ae = AE()
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    tls_args = None
    if transport[1]:
        context = ssl.create_default_context(cafile=str(tls_material.ca_cert))
        tls_args = (context, "localhost")
    assoc = ae.associate("127.0.0.1", scp.port, ae_title=scp.ae_title, tls_args=tls_args)
    assert assoc.is_established
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "STUDY"
    identifier.PatientName = ""
    request = C_FIND()
    request.MessageID = 1
    request.AffectedSOPClassUID = StudyRootQueryRetrieveInformationModelFind
    request.Priority = 2
    request.Identifier = BytesIO(encode(identifier, True, True))

    def idle() -> None:
        raise error

    try:
        with Exchange(assoc, idle=idle) as exchange, pytest.raises(type(error)) as raised:
            exchange.send(request, assoc.accepted_contexts[0].context_id)
            while exchange.receive() is not None:
                pass
        assert raised.value is error
        assert exchange.failure is None
    finally:
        assoc.abort()
