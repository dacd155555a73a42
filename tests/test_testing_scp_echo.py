"""QuerySCP's C-ECHO side: records and knobs, checked with pynetdicom's own
AE as the client (independently of any dimsekit command)."""

from __future__ import annotations

import threading
import time

import pytest
from pynetdicom import AE

from dimsekit.testing import MODEL_UIDS, EchoRecord, QuerySCP

VERIFICATION = MODEL_UIDS["verification"]


def associate(scp, *, aet="ECHOSCU", called="ANY-SCP", dimse_timeout=5):
    ae = AE(ae_title=aet)
    ae.acse_timeout = ae.network_timeout = 5
    ae.dimse_timeout = dimse_timeout
    ae.add_requested_context(VERIFICATION)
    assoc = ae.associate("127.0.0.1", scp.port, ae_title=called)
    assert assoc.is_established
    return assoc


def test_echoes_are_recorded_per_peer_and_per_association(dimsekit_scp):
    assoc = associate(dimsekit_scp, aet="MODALITY")
    assert [int(assoc.send_c_echo(msg_id=i).Status) for i in (7, 8)] == [0, 0]
    assoc.release()
    first, second = dimsekit_scp.echoes
    assert isinstance(first, EchoRecord)
    assert (first.calling_ae, first.called_ae, first.message_id, first.status) == (
        "MODALITY", "ANY-SCP", 7, 0x0000)
    assert second.message_id == 8
    (arec,) = dimsekit_scp.associations
    assert arec.echoes == [first, second] and first.association is arec
    assert dimsekit_scp.requests == []  # C-FIND records stay apart
    dimsekit_scp.reset()
    assert dimsekit_scp.echoes == []


def test_echo_status_knob(dimsekit_make_scp):
    scp = dimsekit_make_scp(echo_status=0x0211)
    assoc = associate(scp)
    assert int(assoc.send_c_echo().Status) == 0x0211
    scp.echo_status = None  # knobs are read per request
    assert int(assoc.send_c_echo().Status) == 0x0000
    assoc.release()
    assert [e.status for e in scp.echoes] == [0x0211, 0x0000]


@pytest.mark.parametrize("after", [0, 2])
def test_echo_abort_after_counts_per_association(dimsekit_make_scp, after):
    scp = dimsekit_make_scp(echo_abort_after=after)
    assoc = associate(scp)
    statuses = [assoc.send_c_echo() for _ in range(after + 1)]
    assert ["Status" in s for s in statuses] == [True] * after + [False]
    assoc.join(2)  # its reactor takes the A-ABORT in, then ends
    assert assoc.is_aborted
    arec = scp.associations[0]
    assert arec.wait_ended() and arec.ended == "aborted-by-scp"
    assert [e.status for e in scp.echoes] == [0x0000] * after + [None]
    # a new association starts counting again
    again = associate(scp)
    assert ("Status" in again.send_c_echo()) == (after > 0)
    again.abort()


def test_echo_delay_lets_a_dimse_timeout_expire(dimsekit_make_scp):
    scp = dimsekit_make_scp(echo_delay=5)
    assoc = associate(scp, dimse_timeout=0.2)
    started = time.monotonic()
    assert "Status" not in assoc.send_c_echo()
    assert time.monotonic() - started < 2
    assert scp.associations[0].wait_ended()
    assert scp.echoes[0].status is None  # nothing was answered


def test_stop_cuts_an_echo_delay_short():
    scp = QuerySCP(echo_delay=30).start()
    assoc = associate(scp, dimse_timeout=10)
    started = time.monotonic()
    threading.Timer(0.2, scp.stop).start()
    assert "Status" not in assoc.send_c_echo()
    assert time.monotonic() - started < 5
