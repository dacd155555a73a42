"""The third-party echo plugin (examples/dimsekit-echo), installed and run as
a user runs it: ``dimsekit echo`` as a subprocess against the in-process
recording peer, DCMTK ``wlmscpfs`` and ``dcmqrscp``, and Orthanc.

Skipped when the distribution is not installed (``pip install -e
./examples/dimsekit-echo``), except under ``CI=true``, where that fails.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import version

import pytest
from conftest import assert_no_traceback

from dimsekit.testing.pytest_plugin import require_module

require_module("dimsekit_echo", hint="pip install -e ./examples/dimsekit-echo")


def echo(dimsekit, peer_port, *args, aec=None, host="127.0.0.1"):
    extra = ("-aec", aec) if aec else ()
    result = dimsekit("echo", *extra, *args, host, peer_port)
    assert_no_traceback(result)
    return result


def test_plugins_lists_echo_with_its_version_and_hooks(dimsekit):
    result = dimsekit("plugins", "--json")
    assert result.returncode == 0, result.stderr
    by_name = {p["name"]: p for p in json.loads(result.stdout)}
    assert by_name["echo"] == {
        "name": "echo",
        "distribution": "dimsekit-echo",
        "version": version("dimsekit-echo"),
        "status": "loaded",
        "hooks": ["dimsekit_commands"],
    }
    assert by_name["find"]["status"] == "loaded"


def test_echo_help_imports_neither_pydicom_nor_pynetdicom():
    code = (
        "import sys\n"
        "from dimsekit.cli import main\n"
        "try:\n"
        "    main(['echo', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "sys.stderr.write(repr([m for m in ('pydicom', 'pynetdicom') if m in sys.modules]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.stderr.endswith("[]"), proc.stderr
    assert "Usage: dimsekit echo [OPTIONS] PEER PORT" in proc.stdout


# -- against the in-process recording peer ------------------------------------


def test_verbose_echo_against_the_recording_peer(dimsekit, scp):
    result = echo(dimsekit, scp.port, "-v", "--repeat", "2")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert "I: Sending Echo Request: MsgID 2" in result.stderr_lines
    assert result.stderr_lines[-1] == "I: Releasing Association"
    assert [(e.calling_ae, e.called_ae, e.status) for e in scp.echoes] == [
        ("ECHOSCU", "ANY-SCP", 0x0000)] * 2


def test_quiet_failure_status_still_exits_1(dimsekit, make_scp):
    scp = make_scp(echo_status=0x0122)
    result = echo(dimsekit, scp.port, "-q")
    assert (result.returncode, result.stderr) == (1, "")
    loud = echo(dimsekit, scp.port)
    assert loud.returncode == 1
    assert loud.stderr_lines == [
        "E: C-ECHO: peer answered 0x0122 (Failure: Refused: SOP Class Not Supported)"]


def test_abort_mid_way_exits_4(dimsekit, make_scp):
    scp = make_scp(echo_abort_after=2)
    result = echo(dimsekit, scp.port, "--repeat", "5")
    assert result.returncode == 4
    assert result.stderr_lines == [
        f"E: C-ECHO 3 of 5: association aborted by 127.0.0.1:{scp.port}; 2 of 5 answered"]


def test_rejected_exits_3(dimsekit, make_scp):
    scp = make_scp(reject=(2, 3, 2))
    result = echo(dimsekit, scp.port)
    assert result.returncode == 3
    assert result.stderr_lines == [
        f"E: association rejected by 127.0.0.1:{scp.port}: Rejected Transient "
        f"(source: Service Provider (Presentation), reason: Local limit exceeded)"]


# -- against real peers --------------------------------------------------------


@pytest.mark.realpeer("wlmscpfs")
def test_echo_wlmscpfs(dimsekit, wlmscpfs_peer):
    result = echo(dimsekit, wlmscpfs_peer.port, "--repeat", "3", aec=wlmscpfs_peer.aet)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


@pytest.mark.realpeer("dcmqrscp")
def test_echo_dcmqrscp(dimsekit, dcmqrscp_peer):
    result = echo(dimsekit, dcmqrscp_peer.port, "-v", aec=dcmqrscp_peer.aet)
    assert result.returncode == 0, result.stderr
    assert "I: accepted: Verification SOP Class with Little Endian Explicit" in (
        result.stderr_lines)


@pytest.mark.realpeer("dcmqrscp")
def test_dcmqrscp_rejects_an_unknown_called_ae_title(dimsekit, dcmqrscp_peer):
    # dcmqrscp closes the connection right after its A-ASSOCIATE-RJ; now and
    # then that close wins the race with pynetdicom's read of the reply, and
    # the host must still find the rejection: repeat to catch the race
    for _ in range(15):
        result = echo(dimsekit, dcmqrscp_peer.port, aec="NOT-ITS-NAME")
        assert result.returncode == 3
        (line,) = result.stderr_lines
        assert line.startswith(f"E: association rejected by 127.0.0.1:{dcmqrscp_peer.port}: "
                               "Rejected Permanent"), line
        assert "Called AE title not recognised" in line


@pytest.mark.realpeer("orthanc")
def test_echo_orthanc(dimsekit, orthanc_peer):
    result = echo(dimsekit, orthanc_peer.port, "--repeat", "2", "-aet", "DIMSEKIT",
                  aec=orthanc_peer.aet)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
