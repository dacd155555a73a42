"""Named peers: the configuration file, ``dimsekit peers``, ``peers check``,
a peer's name in place of PEER PORT for every command, Peer.from_config."""

from __future__ import annotations

import json
import os
import socket
import textwrap

import pytest

import dimsekit
from dimsekit.config import config_path, load_config
from dimsekit.errors import UsageError


def _write(tmp_path, text: str, mode: int = 0o600):
    path = tmp_path / "config.toml"
    path.write_text(textwrap.dedent(text))
    os.chmod(path, mode)
    return path


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_where_the_file_is_looked_for(tmp_path):
    assert config_path({"DIMSEKIT_CONFIG": "/x/c.toml", "XDG_CONFIG_HOME": "/y"}).as_posix() \
        == "/x/c.toml"
    assert config_path({"XDG_CONFIG_HOME": "/y", "HOME": "/h"}).as_posix() == \
        "/y/dimsekit/config.toml"
    assert config_path({"HOME": "/h"}).as_posix() == "/h/.config/dimsekit/config.toml"
    assert load_config(tmp_path / "none.toml").peers == {}


@pytest.mark.parametrize("text, message", [
    ("[peers.a]\nhost = 'h'\nport = 'x'\n",
     "line 3: [peers.a] port = 'x': must be a TCP port (1 to 65535)"),
    ("[peers.a]\nhost = 'h'\n\ncalled_ae = 'X'\n",
     "line 4: [peers.a] unknown key 'called_ae' (known: host, port, called_aet"),
    ("[peers.a]\nport = 104\n", "line 1: [peers.a] has no host"),
    ("[peers.a]\nhost = 'h'\ntls = 'authenticated'\n",
     "line 3: [peers.a] tls = \"authenticated\" needs tls_key and tls_cert"),
    ("[peers.104]\nhost = 'h'\n", "line 1: peer name '104'"),
    ("[peers.a]\nhost = 'h'\ncalled_aet = 'MUCH-TOO-LONG-AE-TITLE'\n",
     "line 3: [peers.a] called_aet = 'MUCH-TOO-LONG-AE-TITLE': must be an AE title"),
    ("[peers.a]\nhost = 'h'\nport = = 3\n", "(at line 3, column 8)"),
    ("[pears.a]\nhost = 'h'\n", "line 1: unknown table or key 'pears'"),
])
def test_a_bad_file_names_the_file_line_and_key(tmp_path, text, message):
    path = _write(tmp_path, text)
    with pytest.raises(UsageError) as caught:
        load_config(path)
    assert str(caught.value).startswith(f"configuration {path}")
    assert message in str(caught.value)


def test_a_readable_password_is_warned_about(tmp_path):
    text = """
        [peers.s]
        host = "h"
        tls = "anonymous"
        tls_key_password = "pw"
        """
    assert load_config(_write(tmp_path, text, 0o600)).warnings == ()
    (warning,) = load_config(_write(tmp_path, text, 0o644)).warnings
    assert "holds a key password and others can read it" in warning


def test_an_entry_becomes_the_options_it_stands_for(tmp_path):
    config = load_config(_write(tmp_path, """
        [peers.pacs]
        host = "pacs.example.org"
        port = 11112
        called_aet = "PACS"
        calling_aet = "ME"
        connect_timeout = 2.5
        dimse_timeout = 60
        max_pdu = 65536
        transfer_syntax = "implicit"
        new_vr = false
        tls = "authenticated"
        tls_key = "me.key"
        tls_cert = "me.crt"
        tls_key_password = "pw"
        tls_ca_files = ["ca1.pem", "ca2.pem"]
        tls_peer_cert = "verify"
        """))
    entry = config.peer("pacs")
    assert (entry.host, entry.port, entry.tls) == ("pacs.example.org", 11112, "authenticated")
    assert entry.options() == [
        "-aec", "PACS", "-aet", "ME", "-to", "2.5", "-td", "60", "-pdu", "65536", "-xi", "-u",
        "+tls", "me.key", "me.crt", "+pw", "pw", "+cf", "ca1.pem", "+cf", "ca2.pem", "-vc"]
    assert entry.shown()["tls_key_password"] == "****"
    with pytest.raises(UsageError, match=r"no peer named 'nope' in .* \(configured: pacs\)"):
        config.peer("nope")
    peer = dimsekit.Peer.from_config("pacs", config.path, dimse_timeout=5)
    s = peer.settings
    assert (s.peer, s.port, s.called_aet, s.calling_aet, s.dimse_timeout, s.max_pdu) == (
        "pacs.example.org", 11112, "PACS", "ME", 5, 65536)
    assert s.transfer_syntaxes == ("1.2.840.10008.1.2",) and s.new_vr is False
    assert (s.tls.mode, s.tls.key_file, s.tls.password, s.tls.ca_files, s.tls.peer_cert) == (
        "authenticated", "me.key", "pw", ("ca1.pem", "ca2.pem"), "verify")


# ---------------------------------------------------------------------------
# as a user runs it
# ---------------------------------------------------------------------------


@pytest.fixture
def configured(tmp_path, make_scp):
    scp = make_scp(ae_title="RECORDER")
    path = _write(tmp_path, f"""
        [peers.rec]
        host = "127.0.0.1"
        port = {scp.port}
        called_aet = "RECORDER"
        calling_aet = "NIGHTLY"

        [peers.down]
        host = "127.0.0.1"
        port = {_closed_port()}
        """)
    return scp, {"DIMSEKIT_CONFIG": str(path)}


def test_find_by_name(dimsekit, configured):
    scp, env = configured
    result = dimsekit("find", "rec", "-L", "PATIENT", "-k", "PatientID=PAT001", "-k", "PatientName",
                      env=env)
    assert result.returncode == 0, result.stderr
    assert "PAT001" in result.stdout
    (assoc,) = scp.associations
    assert (assoc.calling_ae, assoc.called_ae) == ("NIGHTLY", "RECORDER")


def test_the_command_line_wins_over_the_file(dimsekit, configured):
    scp, env = configured
    result = dimsekit("find", "-aet", "ADHOC", "rec", "-L", "PATIENT", "-k", "PatientID=", env=env)
    assert result.returncode == 0, result.stderr
    assert scp.associations[-1].calling_ae == "ADHOC"
    # an explicit port after the name is used
    result = dimsekit("find", "rec", str(_closed_port()), "-L", "PATIENT", "-k", "PatientID=",
                      env=env)
    assert result.returncode == 3
    assert result.stderr.startswith("E: cannot connect to 127.0.0.1:")


def test_plugins_commands_take_the_name_too(dimsekit, configured):
    scp, env = configured
    result = dimsekit("echo", "rec", env=env)
    assert (result.returncode, result.stderr) == (0, "")
    assert scp.associations[-1].calling_ae == "NIGHTLY"


def test_a_name_that_is_not_configured_is_a_host(dimsekit, configured):
    _, env = configured
    result = dimsekit("find", "no-such-peer.invalid", "104", "-P", "-k", "PatientID=",
                      env=env)
    assert result.returncode == 3
    assert "no-such-peer.invalid" in result.stderr


def test_peers_lists_them_without_passwords(dimsekit, tmp_path):
    path = _write(tmp_path, """
        [peers.pacs]
        host = "pacs.example.org"
        called_aet = "PACS"
        tls = "anonymous"
        tls_key_password = "s3cret"
        """)
    result = dimsekit("peers", env={"DIMSEKIT_CONFIG": str(path)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "NAME  ADDRESS               CALLED AE  CALLING AE  TLS",
        "pacs  pacs.example.org:104  PACS       -           anonymous"]
    shown = dimsekit("peers", "--json", env={"DIMSEKIT_CONFIG": str(path)})
    assert "s3cret" not in shown.stdout + shown.stderr
    (row,) = json.loads(shown.stdout)
    assert row["settings"]["tls_key_password"] == "****"


def test_peers_check_echoes_each(dimsekit, configured):
    scp, env = configured
    result = dimsekit("peers", "check", env=env)
    assert result.returncode == 3, result.stderr
    header, rec, down = result.stdout.splitlines()
    assert header.split() == ["NAME", "ADDRESS", "CALLED", "AE", "TLS", "RESULT", "MS"]
    assert rec.split()[:5] == ["rec", f"127.0.0.1:{scp.port}", "RECORDER", "no", "ok"]
    assert down.startswith("down") and "cannot connect to 127.0.0.1:" in down
    only = dimsekit("peers", "check", "--json", "rec", env=env)
    assert only.returncode == 0, only.stderr
    (row,) = json.loads(only.stdout)
    assert row["result"] == "ok" and row["ms"] > 0
    unknown = dimsekit("peers", "check", "nope", env=env)
    assert unknown.returncode == 2
    assert unknown.stderr.startswith("E: no peer named 'nope'")


def test_a_bad_file_is_exit_2_when_used(dimsekit, tmp_path):
    path = _write(tmp_path, "[peers.a]\nhost = 'h'\nport = 0\n")
    result = dimsekit("find", "a", "-k", "PatientID=", env={"DIMSEKIT_CONFIG": str(path)})
    assert result.returncode == 2
    assert result.stderr == (f"E: configuration {path}, line 3: [peers.a] port = 0: must be "
                             f"a TCP port (1 to 65535)\n")


def test_two_real_peers_by_name(dimsekit, tmp_path, orthanc_peer, wlmscpfs_peer):
    """What a new user does: a config with Orthanc and wlmscpfs, peers
    check, then a query of each by name."""
    path = _write(tmp_path, f"""
        [peers.orthanc]
        host = "{orthanc_peer.host}"
        port = {orthanc_peer.port}
        called_aet = "{orthanc_peer.aet}"

        [peers.worklist]
        host = "{wlmscpfs_peer.host}"
        port = {wlmscpfs_peer.port}
        called_aet = "{wlmscpfs_peer.aet}"
        """)
    env = {"DIMSEKIT_CONFIG": str(path)}
    check = dimsekit("peers", "check", env=env)
    assert check.returncode == 0, check.stdout + check.stderr
    assert [line.split()[4] for line in check.stdout.splitlines()[1:]] == ["ok", "ok"]
    patient = orthanc_peer.patients[0]
    studies = dimsekit("find", "orthanc", "--format", "ndjson", "-k",
                       "QueryRetrieveLevel=STUDY", "-k", f"PatientID={patient.patient_id}",
                       "-k", "StudyInstanceUID", env=env)
    assert studies.returncode == 0, studies.stderr
    assert len(studies.stdout.splitlines()) == len(patient.studies)
    worklist = dimsekit("find", "worklist", "-W", "-k", "PatientName",
                        env=env)
    assert worklist.returncode == 0, worklist.stderr
    assert worklist.stdout.count("Find Response:") == len(wlmscpfs_peer.worklist_files)
