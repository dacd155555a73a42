"""``dimsekit echo`` against dimsekit's in-process recording peer.

These tests use only dimsekit's pytest plugin (installed with dimsekit):
``dimsekit_scp`` / ``dimsekit_make_scp`` start the peer on a free port,
``dimsekit_cli`` runs the CLI in-process, built from a plugin manager that
holds this plugin alone (``dimsekit_plugins`` below).
"""

from __future__ import annotations

import socket

import pytest

from dimsekit.testing.pytest_plugin import require_module

dimsekit_echo = require_module(
    "dimsekit_echo", hint="pip install -e ./examples/dimsekit-echo")

VERIFICATION = "1.2.840.10008.1.1"
IMPLICIT = "1.2.840.10008.1.2"


@pytest.fixture
def dimsekit_plugins():
    return {"echo": dimsekit_echo}


def echo(cli, scp, *args):
    result = cli("echo", *args, "127.0.0.1", scp.port)
    assert "Traceback" not in result.stderr, result.stderr
    return result


def test_one_echo_with_echoscus_ae_titles(dimsekit_cli, dimsekit_scp):
    result = echo(dimsekit_cli, dimsekit_scp)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    (assoc,) = dimsekit_scp.associations
    assert (assoc.calling_ae, assoc.called_ae) == ("ECHOSCU", "ANY-SCP")
    assert [cx.abstract_syntax for cx in assoc.requested_contexts] == [VERIFICATION]
    assert assoc.wait_ended() and assoc.ended == "released"
    assert [(e.message_id, e.status) for e in dimsekit_scp.echoes] == [(1, 0x0000)]


def test_repeat_sends_n_echoes_on_one_association(dimsekit_cli, dimsekit_scp):
    result = echo(dimsekit_cli, dimsekit_scp, "--repeat", "3")
    assert result.returncode == 0, result.stderr
    assert len(dimsekit_scp.associations) == 1
    assert [e.message_id for e in dimsekit_scp.echoes] == [1, 2, 3]


def test_shared_association_options(dimsekit_cli, dimsekit_make_scp):
    scp = dimsekit_make_scp(ae_title="PACS")
    result = echo(dimsekit_cli, scp, "-aet", "MODALITY1", "--call", "PACS", "-xi",
                  "-pdu", "8192", "--abort")
    assert result.returncode == 0, result.stderr
    (assoc,) = scp.associations
    assert (assoc.calling_ae, assoc.called_ae, assoc.max_pdu) == ("MODALITY1", "PACS", 8192)
    assert assoc.requested_contexts[0].transfer_syntaxes == (IMPLICIT,)
    assert assoc.wait_ended() and assoc.ended == "aborted"


def test_a_failure_status_exits_1_after_every_echo(dimsekit_cli, dimsekit_make_scp):
    scp = dimsekit_make_scp(echo_status=0x0211)
    result = echo(dimsekit_cli, scp, "--repeat", "2")
    assert result.returncode == 1
    assert len(scp.echoes) == 2
    assert result.stderr_lines[-1] == (
        "E: C-ECHO 2 of 2: peer answered 0x0211 (Failure: Unrecognised Operation)")


def test_an_abort_mid_way_exits_4(dimsekit_cli, dimsekit_make_scp):
    scp = dimsekit_make_scp(echo_abort_after=1)
    result = echo(dimsekit_cli, scp, "--repeat", "3")
    assert result.returncode == 4
    assert result.stderr_lines == [
        f"E: C-ECHO 2 of 3: association aborted by 127.0.0.1:{scp.port}; 1 of 3 answered"]
    assert [e.status for e in scp.echoes] == [0x0000, None]


def test_no_answer_within_the_dimse_timeout_exits_4(dimsekit_cli, dimsekit_make_scp):
    scp = dimsekit_make_scp(echo_delay=5)
    result = echo(dimsekit_cli, scp, "-td", "0.3")
    assert result.returncode == 4
    assert result.stderr_lines == [
        f"E: C-ECHO: no response from 127.0.0.1:{scp.port} within the DIMSE timeout (0.3 s)"]


@pytest.mark.parametrize("knobs, message", [
    ({"reject": (1, 1, 3)}, "association rejected by {where}: Rejected Permanent "
     "(source: Service User, reason: Calling AE title not recognised)"),
    ({"accept_models": ["study"]},
     "no presentation context accepted by {where} (proposed: Verification SOP Class)"),
])
def test_no_association_exits_3(dimsekit_cli, dimsekit_make_scp, knobs, message):
    scp = dimsekit_make_scp(**knobs)
    result = echo(dimsekit_cli, scp)
    assert result.returncode == 3
    assert result.stderr_lines == ["E: " + message.format(where=f"127.0.0.1:{scp.port}")]
    assert scp.echoes == []


def test_connection_refused_exits_3(dimsekit_cli):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: refused
        result = dimsekit_cli("echo", "-to", "5", "127.0.0.1", port)
    assert result.returncode == 3
    assert result.stderr_lines[-1].startswith(f"E: cannot connect to 127.0.0.1:{port}: ")


@pytest.mark.parametrize("args", [
    ["--repeat", "0", "127.0.0.1", "104"],
    ["127.0.0.1"],
    ["127.0.0.1", "notaport"],
    ["-aet", "WAY-TOO-LONG-AE-TITLE", "127.0.0.1", "104"],
    ["--no-such-option", "127.0.0.1", "104"],
])
def test_usage_errors_exit_2_in_one_line(dimsekit_cli, args):
    result = dimsekit_cli("echo", *args)
    assert result.returncode == 2
    assert len(result.stderr_lines) == 1 and result.stderr.startswith("E: ")


def test_help_groups_the_hosts_options_and_repeat():
    from dimsekit.testing import DimsekitRunner

    result = DimsekitRunner(plugins=[dimsekit_echo])("echo", "--help")
    assert result.returncode == 0
    for heading in ("logging:", "application entity titles:", "network:",
                    "transport protocol stack:"):
        assert f"\n{heading}\n" in result.stdout
    assert "--repeat N" in result.stdout and "[default: ECHOSCU]" in result.stdout
