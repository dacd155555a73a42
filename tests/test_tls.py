"""TLS for every command: the options, the context they make, and
``dimsekit find`` against in-process pynetdicom peers that speak TLS,
compared case by case with DCMTK ``findscu`` given the same flags.

Certificates are made for the session by ``trustme`` (``tls_material`` in
realpeers.py).  The agreement table these tests pin down, and the two
places where dimsekit is stricter than DCMTK 3.6.7 on purpose, are in
:data:`CASES`.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import click
import pydicom
import pytest
from click.testing import CliRunner
from conftest import assert_no_traceback, read_until, run_dimsekit, streaming_find
from realpeers import TLSMaterial, run_findscu

from dimsekit.cli import argv as argv_mod
from dimsekit.cli.options import (
    AssociationSettings,
    DimsekitCommand,
    association_options,
)
from dimsekit.testing import QuerySCP
from dimsekit.tls import TLSSettings, read_password

STUDY_QUERY = ("-S", "-k", "QueryRetrieveLevel=STUDY", "-k", "PatientName=",
               "-k", "StudyInstanceUID=")


# ---------------------------------------------------------------------------
# options: what the command line says (no network)
# ---------------------------------------------------------------------------


@click.command(cls=DimsekitCommand)
@association_options("TLSTEST")
def probe(association: AssociationSettings) -> None:
    click.echo(json.dumps(_summary(association.tls)))


def _summary(tls: TLSSettings | None) -> dict | None:
    if tls is None:
        return None
    return {"mode": tls.mode, "key": tls.key_file, "password": tls.password_source,
            "peer_cert": tls.peer_cert, "verifies": tls.verifies_peer,
            "format": tls.key_format, "min": tls.min_version}


def parse(*args: str) -> dict | None:
    result = CliRunner().invoke(probe, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.output.splitlines()[-1])


def test_no_tls_option_means_plain_tcp():
    assert parse() is None
    assert parse("-tls") is None


def test_transport_options_rightmost_wins(tls_material):
    m = tls_material
    key, cert, ca = str(m.client_key), str(m.client_cert), str(m.ca_cert)
    assert parse("+tls", key, cert, "+cf", ca)["mode"] == "authenticated"
    assert parse("+tls", key, cert, "+tla", "+cf", ca)["mode"] == "anonymous"
    assert parse("+tla", "+tls", key, cert, "+cf", ca)["key"] == key
    assert parse("-tls", "+tla", "-tls", "+tls", key, cert, "+cf", ca)["mode"] == \
        "authenticated"
    assert parse("+tls", key, cert, "-tls") is None
    # a flag given twice counts where it was given last
    assert parse("+tla", "+tls", key, cert, "+tla", "-ic")["mode"] == "anonymous"


def test_password_and_peer_options_rightmost_wins(tls_material):
    m = tls_material
    tls = ("+tls", str(m.client_key), str(m.client_cert), "+cf", str(m.ca_cert))
    assert parse(*tls)["password"] == "prompt"
    assert parse(*tls, "+pw", "x", "-pw")["password"] == "null"
    assert parse(*tls, "-pw", "+pw", "x")["password"] == "given"
    assert parse(*tls, "+pw", "x", "+ps")["password"] == "prompt"
    assert parse(*tls, "-ic", "-rc")["peer_cert"] == "require"
    assert parse(*tls, "-rc", "-vc")["verifies"] is True
    assert parse(*tls, "-rc", "-ic")["verifies"] is False
    assert parse(*tls, "-der", "-pem")["format"] == "pem"
    assert parse(*tls, "--tls-min-version", "1.3")["min"] == "1.3"


def test_rightmost_wins_with_attached_values_and_values_like_options(tls_material):
    m = tls_material
    key, cert, ca = str(m.client_key), str(m.client_cert), str(m.ca_cert)
    # --opt=value: the first of +tls's two values attached
    assert parse("+tla", f"--enable-tls={key}", cert, "+cf", ca)["key"] == key
    assert parse(f"--enable-tls={key}", cert, "--anonymous-tls", "+cf", ca)["mode"] == \
        "anonymous"
    tls = ("+tls", key, cert, "+cf", ca)
    assert parse(*tls, "--use-passwd=x", "-pw")["password"] == "null"
    assert parse(*tls, "-pw", "--use-passwd=x")["password"] == "given"
    # a value that looks like an option is a value: +tla is the password here
    assert parse(*tls, "+pw", "+tla") == parse(*tls, "+pw", "x")
    assert parse(*tls, "+pw", "+tla")["mode"] == "authenticated"
    result = CliRunner().invoke(probe, ["+tla", "+tls", "-tls", cert, "+cf", ca])
    assert "cannot read TLS private key file '-tls'" in str(result.exception)


def test_walk_args_reads_the_command_line_as_click_does():
    from dimsekit.cli.options import args_in_order, walk_args

    seen = {}

    @click.command(cls=DimsekitCommand)
    @click.option("-q", is_flag=True)
    @click.option("-v", count=True)
    @click.option("-k", "--key", "keys", multiple=True)
    @click.option("+tls", "--enable-tls", "tls", nargs=2)
    @click.option("--color/--no-color", default=None)
    @click.argument("rest", nargs=-1)
    def cmd(**kwargs):
        seen["given"] = [(g.param.name if g.param else None, g.values)
                         for g in args_in_order(click.get_current_context())]
        seen["kwargs"] = kwargs

    args = ["-qvkA=1", "-k", "-q", "--key=B=2", "pos", "+tls", "K", "C",
            "--enable-tls=K2", "C2", "-vv", "--no-color", "--", "-q", "+tls"]
    result = CliRunner().invoke(cmd, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert seen["given"] == [
        ("q", ()), ("v", ()), ("keys", ("A=1",)), ("keys", ("-q",)), ("keys", ("B=2",)),
        (None, ("pos",)), ("tls", ("K", "C")), ("tls", ("K2", "C2")),
        ("v", ()), ("v", ()), ("color", ()), (None, ("-q",)), (None, ("+tls",)),
    ]
    # what click itself made of the same words
    assert seen["kwargs"]["keys"] == ("A=1", "-q", "B=2")
    assert seen["kwargs"]["v"] == 3 and seen["kwargs"]["tls"] == ("K2", "C2")
    assert seen["kwargs"]["rest"] == ("pos", "-q", "+tls")
    # no DimsekitCommand, no order noted
    ctx = click.Context(click.Command("plain"))
    assert args_in_order(ctx) is None
    assert walk_args(cmd, click.Context(cmd), ["--nope", "-z", "x"]) == [
        (None, ("x",), 2)]


def test_anonymous_tls_verifies_the_peer_whenever_a_ca_is_given():
    assert parse("+tla")["verifies"] is False  # and warns, see below
    assert parse("+tla", "-rc")["verifies"] is True  # asked for: verify
    assert parse("+tla", "-ic")["verifies"] is False


@pytest.mark.parametrize("args, message", [
    (("+pw", "secret"), "+pw/--use-passwd needs +tls/--enable-tls"),
    (("+tla", "-pw"), "-pw/--null-passwd needs +tls/--enable-tls"),
    (("+cf", "ca.pem"), "+cf/--add-cert-file needs +tls/--enable-tls or +tla"),
    (("-ic",), "-rc/-vc/-ic needs +tls/--enable-tls or +tla"),
    (("--request-sni", "pacs"), "--request-sni needs +tls"),
    (("-der",), "-pem/-der needs +tls"),
])
def test_tls_only_options_without_tls_are_a_usage_error(args, message):
    result = CliRunner().invoke(probe, list(args))
    assert result.exit_code != 0
    assert message in str(result.exception)


def test_seed_options_are_accepted_with_and_without_tls(tls_material):
    # OpenSSL seeds itself: +rs/+ws/+wf never fail, even on a missing file
    assert parse("+rs", "/nonexistent/seed", "+ws") is None
    assert parse("+tla", "-ic", "+rs", "/nonexistent/seed", "+wf", "/nonexistent/out")


def test_password_is_masked_in_arguments_and_never_in_repr():
    argv = ["+tls", "k", "c", "+pw", "s3cret", "--use-passwd=s3cret", "--use-passwd",
            "s3cret", "-k", "PatientName=s3cret-not-a-password"]
    shown = argv_mod.masked(argv)
    assert shown.count("****") == 2 and "--use-passwd=****" in shown
    assert "s3cret" not in " ".join(shown[:-1])
    settings = TLSSettings(password_source="given", password="s3cret")
    assert "s3cret" not in repr(settings)


def test_help_imports_neither_ssl_nor_cryptography():
    code = (
        "import sys\n"
        "from dimsekit.cli import main\n"
        "try:\n    main(['find', '--help'])\n"
        "except SystemExit:\n    pass\n"
        "print([m for m in ('ssl', 'cryptography') if m in sys.modules], file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, check=False,
                          text=True, timeout=60)
    assert "+tls, --enable-tls KEY CERT" in proc.stdout
    assert proc.stderr.strip().splitlines()[-1] == "[]"


def test_std_passwd_reads_the_terminal_hidden_or_a_line_of_stdin(monkeypatch):
    import getpass
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO("from stdin\nnext line\n"))
    assert read_password("? ") == "from stdin"

    class Tty(io.StringIO):
        def isatty(self):
            return True

    asked = []
    monkeypatch.setattr(sys, "stdin", Tty(""))
    monkeypatch.setattr(getpass, "getpass", lambda prompt: asked.append(prompt) or "typed")
    assert read_password("Enter pass phrase: ") == "typed"
    assert asked == ["Enter pass phrase: "]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _on_a_terminal(argv: list[str], answer: bytes, timeout: float = 30) -> tuple[bytes, int]:
    """Run ``argv`` on a new pseudo-terminal; type ``answer`` at the prompt."""
    import os
    import pty
    import select
    import time

    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        os.execv(argv[0], argv)
    seen, typed = b"", False
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.1)
            if not ready:
                continue
            try:
                chunk = os.read(fd, 1024)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
            if not typed and b"pass phrase" in seen:
                os.write(fd, answer + b"\n")
                typed = True
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return seen, os.waitstatus_to_exitcode(status)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="pty test")
@pytest.mark.parametrize("answer, code", [("right", 3), ("wrong", 2)])
def test_std_passwd_asks_on_the_terminal_without_echo(answer, code, tls_material):
    m = tls_material
    password = m.password if answer == "right" else "not-the-password"
    # nothing listens on the port: a decrypted key gets as far as connecting (3)
    argv = [sys.executable, "-m", "dimsekit", "find", "+tls", str(m.client_key_encrypted),
            str(m.client_cert), "+cf", str(m.ca_cert), *STUDY_QUERY, "127.0.0.1",
            str(_free_port())]
    seen, status = _on_a_terminal(argv, password.encode())
    text = seen.decode(errors="replace")
    assert f"Enter pass phrase for {m.client_key_encrypted}: " in text
    assert password not in text  # typed, never echoed
    assert status == code, text


# ---------------------------------------------------------------------------
# key and certificate problems: exit 2, one line, before any network traffic
# ---------------------------------------------------------------------------


@pytest.fixture
def silent_listener():
    """A TCP port that records whether anybody connected."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        sock.settimeout(0.05)

        def connected() -> bool:
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                return False
            conn.close()
            return True

        yield SimpleNamespace(port=sock.getsockname()[1], connected=connected)


def _m(attr: str) -> Callable[[TLSMaterial], str]:
    return lambda m: str(getattr(m, attr))


@pytest.mark.parametrize("args, message", [
    (("+tls", _m("client_key_encrypted"), _m("client_cert"), "+pw", "wrong"),
     ("cannot decrypt TLS private key '{client_key_encrypted}': wrong password "
      "(+pw/--use-passwd)")),
    (("+tls", _m("client_key_encrypted"), _m("client_cert"), "-pw"),
     ("cannot decrypt TLS private key '{client_key_encrypted}': wrong password "
      "(-pw/--null-passwd: the empty password)")),
    (("+tls", _m("client_key_encrypted"), _m("client_cert")),  # +ps, nothing on stdin
     "cannot decrypt TLS private key '{client_key_encrypted}': wrong password"),
    (("+tls", "{dir}/missing.key", _m("client_cert")),
     "cannot read TLS private key file '{dir}/missing.key': No such file or directory"),
    (("+tls", _m("client_key"), "{dir}/missing.pem"),
     "cannot read TLS certificate file '{dir}/missing.pem': No such file or directory"),
    (("+tls", _m("client_key"), _m("server_cert")),
     "TLS private key '{client_key}' does not belong to certificate '{server_cert}'"),
    (("+tls", _m("client_key_der"), _m("client_cert_der")),
     ("cannot read TLS certificate file '{client_cert_der}': not a PEM certificate "
      "(-der selects the other format)")),
    (("+tls", _m("client_key"), _m("client_cert"), "-der"),
     ("cannot read TLS certificate file '{client_cert}': not a DER certificate "
      "(-pem selects the other format)")),
    (("+tls", _m("client_cert"), _m("client_cert")),
     "cannot read TLS private key file '{client_cert}': not a PEM private key"),
    (("+tla", "+cf", _m("client_key")),
     "cannot read CA certificate file (+cf) '{client_key}': not a PEM certificate"),
    (("+tla", "+cd", "{dir}/no-such-dir"),
     "cannot read CA certificate directory (+cd) '{dir}/no-such-dir'"),
    (("+tla", "+cf", _m("ca_cert"), "+cs", "NO-SUCH-CIPHER"),
     "+cs/--cipher 'NO-SUCH-CIPHER': unknown cipher suite"),
    (("+tla", "+cf", _m("ca_cert"), "+dp", _m("client_key")),
     "cannot read DH parameter file (+dp) '{client_key}'"),
])
def test_unusable_key_material_is_exit_2_before_any_traffic(args, message, tls_material,
                                                           silent_listener):
    m = tls_material
    names = {k: str(v) for k, v in vars(m).items()} | {"dir": str(m.directory)}
    argv = [a(m) if callable(a) else a.format(**names) for a in args]
    result = run_dimsekit("find", *argv, *STUDY_QUERY, "127.0.0.1", silent_listener.port,
                          input="")
    assert_no_traceback(result)
    assert result.returncode == 2, result.stderr
    assert len(result.stderr_lines) == 1, result.stderr
    assert result.stderr_lines[0].startswith(f"E: {message.format(**names)}"), result.stderr
    assert not silent_listener.connected()
    assert m.password not in result.stderr


# ---------------------------------------------------------------------------
# in-process peers that speak TLS
# ---------------------------------------------------------------------------


def TLSQuerySCP(ssl_context: ssl.SSLContext, **kwargs) -> QuerySCP:
    """:class:`QuerySCP` speaking TLS with ``ssl_context``."""
    return QuerySCP(ssl_context=ssl_context, **kwargs)


def server_context(m: TLSMaterial, *, cert: str = "server",
                   require_client_cert: bool = True) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if cert == "server":
        ctx.load_cert_chain(m.server_cert, m.server_key)
    else:
        ctx.load_cert_chain(m.wrong_host_cert, m.wrong_host_key)
    ctx.load_verify_locations(m.ca_cert)
    ctx.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_NONE
    return ctx


@pytest.fixture(scope="module")
def peers(tls_material):
    """name -> a running peer: ``plain`` (no TLS), ``strict`` (requires a client
    certificate), ``open`` (asks for none), ``wrong_host`` (a certificate
    for pacs.example.org, requires a client certificate)."""
    m = tls_material
    started = {
        "plain": QuerySCP(),
        "strict": TLSQuerySCP(server_context(m)),
        "open": TLSQuerySCP(server_context(m, require_client_cert=False)),
        "wrong_host": TLSQuerySCP(server_context(m, cert="wrong")),
    }
    for scp in started.values():
        scp.start()
    yield started
    for scp in started.values():
        scp.stop()


def canonical(paths) -> list[str]:
    return sorted(json.dumps(pydicom.dcmread(p).to_json_dict(), sort_keys=True)
                  for p in paths)


def extracted(directory: Path) -> list[Path]:
    return sorted(directory.glob("rsp*.dcm"))


@dataclass
class Outcome:
    returncode: int
    matches: list[str]
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and bool(self.matches)


def run_ours(host: str, port: int, aet: str, out: Path, args, input: str | None = None,
             ) -> Outcome:
    result = run_dimsekit("find", "-X", "-od", out, "-aec", aet, *args, *STUDY_QUERY,
                          host, port, input=input if input is not None else "")
    assert_no_traceback(result)
    return Outcome(result.returncode, canonical(extracted(out)), result.stderr)


def run_dcmtk(host: str, port: int, aet: str, out: Path, args, input: str | None = None,
              ) -> Outcome:
    peer = SimpleNamespace(host=host, port=port, aet=aet)
    result = run_findscu(peer, out, *args, *STUDY_QUERY, input=input)
    return Outcome(result.returncode, canonical(result.responses), result.stderr)


@dataclass(frozen=True)
class Case:
    """One row of the agreement table: the same flags for both tools."""

    id: str
    peer: str
    args: tuple
    ours: str  # "ok", or the last E: line dimsekit prints (alternatives: "|")
    dcmtk_ok: bool
    exit_code: int = 0
    input: str | None = None
    host: str = "127.0.0.1"
    needs_ca_dir: bool = False


KEY, CERT, CA = _m("client_key"), _m("client_cert"), _m("ca_cert")
AUTH = ("+tls", KEY, CERT, "+cf", CA)
HANDSHAKE = "TLS handshake with {where} failed: "

#: dimsekit vs DCMTK findscu 3.6.7, the same flags, in-process pynetdicom peers
CASES = [
    Case("good-certs", "strict", AUTH, "ok", True),
    # (OpenSSL servers send their CA along: "self-signed certificate in chain")
    Case("untrusted-ca", "strict", ("+tls", KEY, CERT, "+cf", _m("other_ca_cert")),
         HANDSHAKE + "certificate verify failed: self-signed certificate in certificate "
         "chain", False, 3),
    Case("no-ca-given", "strict", ("+tls", KEY, CERT),
         HANDSHAKE + "certificate verify failed: self-signed certificate in certificate "
         "chain; no trusted CA was given (+cf FILE, +cd DIR)", False, 3),
    # DCMTK 3.6.7 never checks the peer's host name: dimsekit does (secure default)
    Case("host-mismatch", "wrong_host", AUTH,
         HANDSHAKE + "certificate verify failed: IP address mismatch, certificate is not "
         "valid for '127.0.0.1'; the certificate names another host (--request-sni NAME "
         "verifies another name, -ic none)", True, 3),
    Case("host-mismatch-ic", "wrong_host", (*AUTH, "-ic"), "ok", True),
    # TLS 1.3: the server's alert comes after the client's side of the
    # handshake; when it closes first the alert is lost, and all a client
    # can see is the connection closing
    Case("client-cert-missing", "strict", ("+tla", "+cf", CA),
         HANDSHAKE + "tlsv13 alert certificate required; does the peer require a client "
         "certificate (+tls KEY CERT)?|"
         + HANDSHAKE + "the peer closed the connection (unexpected EOF); does the peer "
         "require a client certificate (+tls KEY CERT)?", False, 3),
    Case("client-cert-untrusted", "strict",
         ("+tls", _m("untrusted_client_key"), _m("untrusted_client_cert"), "+cf", CA),
         HANDSHAKE + "tlsv1 alert unknown ca; does the peer trust our client "
         "certificate?|"
         + HANDSHAKE + "the peer closed the connection (unexpected EOF); does the peer "
         "trust our client certificate?", False, 3),
    Case("anonymous", "open", ("+tla", "+cf", CA), "ok", True),
    # +tla without a CA: dimsekit skips verification and warns (docs/tls.md);
    # DCMTK 3.6.7 still verifies, against no CA, and fails
    Case("anonymous-no-ca", "open", ("+tla",), "ok", False),
    Case("encrypted-key-use-passwd", "strict",
         ("+tls", _m("client_key_encrypted"), CERT, "+pw", _m("password"), "+cf", CA),
         "ok", True),
    Case("encrypted-key-wrong-passwd", "strict",
         ("+tls", _m("client_key_encrypted"), CERT, "+pw", "wrong", "+cf", CA),
         "cannot decrypt TLS private key '{client_key_encrypted}': wrong password "
         "(+pw/--use-passwd)", False, 2),
    Case("encrypted-key-null-passwd", "strict",
         ("+tls", _m("client_key_encrypted"), CERT, "-pw", "+cf", CA),
         "cannot decrypt TLS private key '{client_key_encrypted}': wrong password "
         "(-pw/--null-passwd: the empty password)", False, 2),
    Case("encrypted-key-std-passwd", "strict",
         ("+tls", _m("client_key_encrypted"), CERT, "+ps", "+cf", CA),
         "ok", True, input="{password}\n"),
    Case("der-key-and-cert", "strict",
         ("-der", "+tls", _m("client_key_der"), _m("client_cert_der"),
          "+cf", _m("ca_cert_der")), "ok", True),
    Case("ca-directory", "strict", ("+tls", KEY, CERT, "+cd", _m("ca_dir")), "ok", True,
         needs_ca_dir=True),
    # DCMTK's +cd finds CAs by OpenSSL's hashed file names only
    Case("ca-directory-plain-names", "strict",
         ("+tls", KEY, CERT, "+cd", _m("ca_dir_plain")), "ok", False),
]


def _resolve(case: Case, m: TLSMaterial) -> tuple[list[str], str | None, dict]:
    names = {k: str(v) for k, v in vars(m).items()}
    args = [a(m) if callable(a) else a for a in case.args]
    stdin = case.input.format(**names) if case.input else None
    return args, stdin, names


@pytest.fixture(scope="module")
def plain_matches(peers, tmp_path_factory) -> list[str]:
    """What the same query returns without TLS (the reference)."""
    scp = peers["plain"]
    out = run_ours("127.0.0.1", scp.port, scp.ae_title, tmp_path_factory.mktemp("plain"), ())
    assert out.ok, out.stderr
    return out.matches


@pytest.mark.realpeer("findscu")
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_dimsekit_and_findscu_agree(case, peers, plain_matches, tls_material, tmp_path):
    if case.needs_ca_dir and tls_material.ca_dir is None:
        pytest.skip("no openssl binary to name the CA directory's file")
    args, stdin, names = _resolve(case, tls_material)
    scp = peers[case.peer]
    where = f"{case.host}:{scp.port}"
    ours = run_ours(case.host, scp.port, scp.ae_title, tmp_path / "ours", args, stdin)
    ref = run_dcmtk(case.host, scp.port, scp.ae_title, tmp_path / "dcmtk", args, stdin)

    assert ref.ok is case.dcmtk_ok, ref.stderr
    if case.ours == "ok":
        assert ours.ok, ours.stderr
        assert ours.matches == plain_matches
        if ref.ok:
            assert ref.matches == plain_matches
    else:
        assert ours.returncode == case.exit_code, ours.stderr
        assert ours.matches == []
        expected = ["E: " + alt.format(where=where, **names)
                    for alt in case.ours.split("|")]
        assert ours.stderr.splitlines()[-1] in expected, ours.stderr
    assert tls_material.password not in ours.stderr


def test_skipping_verification_says_so(peers, tls_material, tmp_path):
    m, scp = tls_material, peers["wrong_host"]
    ours = run_ours("127.0.0.1", scp.port, scp.ae_title, tmp_path,
                    ("+tls", str(m.client_key), str(m.client_cert), "-ic"))
    assert ours.ok, ours.stderr
    assert ours.stderr.splitlines() == [
        ("W: TLS: the peer's certificate is NOT verified (-ic/--ignore-peer-cert): anyone "
         "who can intercept the connection can pretend to be the peer")]
    anon = run_ours("127.0.0.1", peers["open"].port, "ANY-SCP", tmp_path / "anon",
                    ("+tla",))
    assert anon.ok and "(+tla/--anonymous-tls without +cf/+cd)" in anon.stderr


def test_server_name_is_sent_and_verified(peers, tls_material, tmp_path):
    m, scp = tls_material, peers["wrong_host"]
    seen = []
    scp.ssl_context.sni_callback = lambda sock, name, ctx: seen.append(name)
    try:
        ours = run_ours("127.0.0.1", scp.port, scp.ae_title, tmp_path,
                        (*(a(m) if callable(a) else a for a in AUTH),
                         "--request-sni", "pacs.example.org"))
    finally:
        scp.ssl_context.sni_callback = None
    assert ours.ok, ours.stderr
    assert seen == ["pacs.example.org"]


def test_verbose_names_protocol_cipher_and_peer(peers, tls_material, tmp_path):
    m, scp = tls_material, peers["strict"]
    result = run_dimsekit("find", "-v", "+tls", m.client_key, m.client_cert, "+cf",
                          m.ca_cert, "+rs", "seed.bin", "+ws", *STUDY_QUERY,
                          "127.0.0.1", scp.port)
    assert result.returncode == 0, result.stderr
    assert "I: +rs/+ws/+wf: OpenSSL seeds its random generator itself" in result.stderr
    assert "(FINDSCU -> ANY-SCP) over TLS" in result.stderr
    line = next(ln for ln in result.stderr.splitlines() if "TLS connection:" in ln)
    assert "TLSv1.3" in line and "peer certificate verified" in line
    assert "127.0.0.1, localhost" in line


@pytest.mark.parametrize("args, version", [
    (("--tls-min-version", "1.3"), "TLSv1.3"),
    (("+cs", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"), "TLSv1.3"),
])
def test_protocol_floor_and_ciphers(args, version, peers, tls_material, tmp_path):
    m, scp = tls_material, peers["strict"]
    result = run_dimsekit("find", "-v", "+tls", m.client_key, m.client_cert, "+cf",
                          m.ca_cert, *args, *STUDY_QUERY, "127.0.0.1", scp.port)
    assert result.returncode == 0, result.stderr
    assert f"TLS connection: {version}" in result.stderr


def test_a_peer_capped_below_the_floor_fails_the_handshake(tls_material, tmp_path):
    ctx = server_context(tls_material)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    scp = TLSQuerySCP(ctx).start()
    try:
        m = tls_material
        base = ("+tls", m.client_key, m.client_cert, "+cf", m.ca_cert)
        ok = run_dimsekit("find", *base, *STUDY_QUERY, "127.0.0.1", scp.port)
        assert ok.returncode == 0, ok.stderr
        refused = run_dimsekit("find", *base, "--tls-min-version", "1.3", *STUDY_QUERY,
                               "127.0.0.1", scp.port)
        assert refused.returncode == 3
        assert refused.stderr_lines[-1].startswith(
            f"E: TLS handshake with 127.0.0.1:{scp.port} failed: ")
        assert "version" in refused.stderr_lines[-1]
    finally:
        scp.stop()


def test_tls_to_a_plain_dicom_port_is_one_clear_line(tls_material):
    m = tls_material
    scp = QuerySCP().start()  # its own: it takes the ClientHello for a bad PDU
    try:
        result = run_dimsekit("find", "+tls", m.client_key, m.client_cert, "+cf", m.ca_cert,
                              *STUDY_QUERY, "127.0.0.1", scp.port)
    finally:
        scp.stop(timeout=0.3)
    assert_no_traceback(result)
    assert result.returncode == 3
    assert result.stderr_lines == [
        (f"E: TLS handshake with 127.0.0.1:{scp.port} failed: wrong version number; "
         "the peer may not speak TLS on this port (for plain DICOM leave out +tls/+tla)")]


@pytest.fixture
def raw_tls_peer(tls_material):
    """``start(mode)``: a TLS server that completes the handshake, reads the
    association request, then closes (``close``), sends an A-ABORT
    (``abort``) or says nothing for 1.5 s (``silent``)."""
    import threading

    ctx = server_context(tls_material, require_client_cert=False)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.settimeout(10)

    def serve(mode: str) -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with ctx.wrap_socket(conn, server_side=True) as tls:
            tls.recv(6)
            if mode == "abort":
                tls.sendall(bytes([0x07, 0, 0, 0, 0, 4, 0, 0, 2, 0]))  # A-ABORT
            elif mode == "silent":
                tls.settimeout(1.5)
                with contextlib.suppress(OSError):
                    while tls.recv(1024):
                        pass
            with contextlib.suppress(OSError):
                tls.unwrap()

    def start(mode: str) -> int:
        threading.Thread(target=serve, args=(mode,), daemon=True).start()
        return listener.getsockname()[1]

    yield start
    listener.close()


@pytest.mark.parametrize("mode, message", [
    ("close", ("E: TLS connection to {where} closed by the peer before it answered the "
               "association request; does the peer require a client certificate "
               "(+tls KEY CERT)?")),
    ("abort", ("E: association aborted by {where} during negotiation "
               "(source: Service Provider, reason: reason-not-specified)")),
    ("silent", ("E: no answer to the association request from {where} within 1.0 s "
                "(ACSE timeout)")),
])
def test_what_happens_after_the_handshake_is_told_apart(mode, message, raw_tls_peer,
                                                        tls_material):
    port = raw_tls_peer(mode)
    result = run_dimsekit("find", "-ta", "1", "+tla", "+cf", tls_material.ca_cert,
                          *STUDY_QUERY, "127.0.0.1", port)
    assert_no_traceback(result)
    assert result.returncode == 3
    assert result.stderr_lines == [message.format(where=f"127.0.0.1:{port}")]


def test_a_rejection_over_tls_is_reported_as_a_rejection(tls_material):
    scp = TLSQuerySCP(server_context(tls_material), reject=(1, 1, 7)).start()
    try:
        m = tls_material
        result = run_dimsekit("find", "+tls", m.client_key, m.client_cert, "+cf",
                              m.ca_cert, *STUDY_QUERY, "127.0.0.1", scp.port)
    finally:
        scp.stop(timeout=0.5)
    assert result.returncode == 3
    assert result.stderr_lines[-1].startswith(
        f"E: association rejected by 127.0.0.1:{scp.port}: ")


def test_over_tls_a_pipe_gets_each_response_while_the_peer_is_still_busy(tls_material):
    """Over TLS the DUL thread reads the socket; output is flushed whenever
    the exchange would wait on its queue."""
    m = tls_material
    scp = TLSQuerySCP(server_context(m), repeat_matches=5, hang_after=2).start()
    proc = streaming_find(scp, "dump", "+tls", str(m.client_key), str(m.client_cert),
                          "+cf", str(m.ca_cert))
    try:
        got = read_until(proc, b"Find Response: 2 (Pending)", 15)
        assert b"Find Response: 2 (Pending)" in got, (got, proc.poll())
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.communicate()
        scp.stop()
