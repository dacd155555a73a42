"""DICOM TLS for every command: what the TLS options say, and the
:class:`ssl.SSLContext` they make.

:class:`TLSSettings` is plain data (``association_options`` fills it from
DCMTK's TLS options); :meth:`TLSSettings.context` turns it into a client
context, reading and checking every key, certificate and CA file first, so
that a wrong password or an unreadable file is a usage error (exit 2)
before any network traffic.  :func:`observe` and :func:`failure_reason`
let :func:`dimsekit.association.open_association` say why a handshake
failed, in OpenSSL's words.

Secure by default: the peer's certificate is verified against the CAs
given with ``+cf``/``+cd`` and against its host name or IP address
(``--request-sni`` names another one); only ``-ic`` (or ``+tla`` without
any CA) skips that, and a warning says so.  TLS 1.2 is the floor.

Keys and certificates are parsed with ``cryptography`` (PEM or DER, as
``-pem``/``-der`` say), never by hand; OpenSSL gets the key re-encrypted
with a one-time password through a private temporary file, so a decrypted
key never touches the disk.  Nothing here imports ``ssl`` or
``cryptography`` at module level: ``dimsekit --help`` stays light.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dimsekit.errors import UsageError

log = logging.getLogger("dimsekit.tls")

#: IANA (RFC) cipher suite names, as DCMTK's ``+cs`` takes them, and the
#: OpenSSL names Python's :meth:`ssl.SSLContext.set_ciphers` takes.
#: (DCMTK 3.6.7's ``findscu +cc`` list; ``openssl ciphers -stdname``.)
IANA_CIPHERS = {
    "TLS_RSA_WITH_NULL_SHA": "NULL-SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_RSA_WITH_CAMELLIA_128_CBC_SHA": "CAMELLIA128-SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA256": "AES128-SHA256",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_CAMELLIA_256_CBC_SHA": "CAMELLIA256-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA256": "AES256-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256": "ECDHE-ECDSA-AES128-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256": "ECDHE-RSA-AES128-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_DHE_DSS_WITH_AES_128_CBC_SHA": "DHE-DSS-AES128-SHA",
    "TLS_DHE_DSS_WITH_CAMELLIA_128_CBC_SHA": "DHE-DSS-CAMELLIA128-SHA",
    "TLS_DHE_RSA_WITH_AES_128_CBC_SHA": "DHE-RSA-AES128-SHA",
    "TLS_DHE_RSA_WITH_CAMELLIA_128_CBC_SHA": "DHE-RSA-CAMELLIA128-SHA",
    "TLS_DHE_DSS_WITH_AES_128_CBC_SHA256": "DHE-DSS-AES128-SHA256",
    "TLS_DHE_RSA_WITH_AES_128_CBC_SHA256": "DHE-RSA-AES128-SHA256",
    "TLS_DHE_DSS_WITH_AES_128_GCM_SHA256": "DHE-DSS-AES128-GCM-SHA256",
    "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256": "DHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384": "ECDHE-ECDSA-AES256-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384": "ECDHE-RSA-AES256-SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_DHE_DSS_WITH_AES_256_CBC_SHA": "DHE-DSS-AES256-SHA",
    "TLS_DHE_RSA_WITH_AES_256_CBC_SHA": "DHE-RSA-AES256-SHA",
    "TLS_DHE_DSS_WITH_CAMELLIA_256_CBC_SHA": "DHE-DSS-CAMELLIA256-SHA",
    "TLS_DHE_RSA_WITH_CAMELLIA_256_CBC_SHA": "DHE-RSA-CAMELLIA256-SHA",
    "TLS_DHE_DSS_WITH_AES_256_CBC_SHA256": "DHE-DSS-AES256-SHA256",
    "TLS_DHE_RSA_WITH_AES_256_CBC_SHA256": "DHE-RSA-AES256-SHA256",
    "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "DHE-RSA-CHACHA20-POLY1305",
    "TLS_DHE_DSS_WITH_AES_256_GCM_SHA384": "DHE-DSS-AES256-GCM-SHA384",
    "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384": "DHE-RSA-AES256-GCM-SHA384",
}

#: TLS 1.3 suites: OpenSSL always offers them; they cannot be chosen here
TLS13_CIPHERS = frozenset({
    "TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256", "TLS_AES_128_CCM_SHA256",
    "TLS_AES_128_CCM_8_SHA256",
})

# option spellings, for messages
ENABLE = "+tls/--enable-tls"
ANONYMOUS = "+tla/--anonymous-tls"


@dataclass
class TLSSettings:
    """What the TLS options say (``+tls``/``+tla`` given: TLS is on).

    ``mode`` is ``"authenticated"`` (``+tls KEY CERT``: we present a
    certificate) or ``"anonymous"`` (``+tla``: we present none).
    ``password_source``: ``"prompt"`` (``+ps``, the default: asked for
    only if the key is encrypted), ``"given"`` (``+pw``) or ``"null"``
    (``-pw``).  ``peer_cert``: ``"require"`` (``-rc``), ``"verify"``
    (``-vc``), ``"ignore"`` (``-ic``) or ``None`` (not given: require,
    except ``+tla`` without any CA).  ``server_name``: the name sent as
    SNI and checked against the certificate (default: the peer as given).
    """

    mode: str = "authenticated"
    key_file: str | None = None
    cert_file: str | None = None
    password_source: str = "prompt"
    password: str | None = field(default=None, repr=False)
    key_format: str = "pem"
    ca_files: tuple[str, ...] = ()
    ca_dirs: tuple[str, ...] = ()
    ciphers: tuple[str, ...] = ()
    dhparam: str | None = None
    seed_file: str | None = None
    write_seed_file: str | None = None
    peer_cert: str | None = None
    server_name: str | None = None
    min_version: str = "1.2"
    #: reads a password for ``+ps`` (default: the terminal, else a line of stdin)
    password_reader: Callable[[str], str] | None = field(default=None, repr=False,
                                                          compare=False)
    _context: Any = field(default=None, repr=False, compare=False)

    # -- what the settings mean ----------------------------------------------

    @property
    def has_cas(self) -> bool:
        return bool(self.ca_files or self.ca_dirs)

    @property
    def verifies_peer(self) -> bool:
        """Whether the peer's certificate (and name) is checked."""
        if self.peer_cert == "ignore":
            return False
        # +tla with no CA and no -rc/-vc: nothing to verify against
        return not (self.peer_cert is None and self.mode == "anonymous" and not self.has_cas)

    def hostname_for(self, peer: str) -> str:
        """The name sent as SNI and verified: ``--request-sni`` or the peer."""
        return self.server_name or peer

    def context(self):
        """The client :class:`ssl.SSLContext` (built once; exit 2 if unusable)."""
        if self._context is None:
            self._context = build_context(self)
        return self._context


# ---------------------------------------------------------------------------
# building the context
# ---------------------------------------------------------------------------


def build_context(settings: TLSSettings):
    """A client context for ``settings``; :class:`UsageError` for any bad file."""
    import ssl

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = (ssl.TLSVersion.TLSv1_3 if settings.min_version == "1.3"
                           else ssl.TLSVersion.TLSv1_2)
    if settings.ciphers:
        _set_ciphers(ctx, settings.ciphers)
    if settings.dhparam:
        _load_dhparam(ctx, settings.dhparam)
    _note_seed_options(settings)

    for path in settings.ca_files:
        n = _load_ca_file(ctx, path, settings.key_format)
        log.debug("trusting %d certificate(s) from %s", n, path)
    for path in settings.ca_dirs:
        _load_ca_dir(ctx, path, settings.key_format)

    if settings.mode == "authenticated":
        if not settings.key_file or not settings.cert_file:  # pragma: no cover
            raise UsageError(f"{ENABLE} needs a private key file and a certificate file")
        _load_identity(ctx, settings)

    if settings.verifies_peer:
        ctx.check_hostname = True
        ctx.verify_mode = ssl.CERT_REQUIRED
        if not settings.has_cas:
            log.info("no trusted CA given (+cf/+cd): the peer's certificate "
                     "cannot be verified")
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        why = ("-ic/--ignore-peer-cert" if settings.peer_cert == "ignore"
               else f"{ANONYMOUS} without +cf/+cd")
        log.warning("TLS: the peer's certificate is NOT verified (%s): anyone who "
                    "can intercept the connection can pretend to be the peer", why)
    return ctx


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path!r}: {exc.strerror or exc}") from None


def _certificates(data: bytes, fmt: str) -> list:
    """Every certificate in ``data`` (PEM: all blocks; DER: the one); may raise."""
    from cryptography import x509

    if fmt == "der":
        return [x509.load_der_x509_certificate(data)]
    return list(x509.load_pem_x509_certificates(data))


def _load_certificates(path: str, fmt: str, what: str) -> list:
    data = _read(path, what)
    try:
        certs = _certificates(data, fmt)
    except ValueError:
        other = "-pem" if fmt == "der" else "-der"
        raise UsageError(
            f"cannot read {what} {path!r}: not a {fmt.upper()} certificate "
            f"({other} selects the other format)") from None
    return certs


def _der_bundle(certs: list) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding

    return b"".join(c.public_bytes(Encoding.DER) for c in certs)


def _load_ca_file(ctx, path: str, fmt: str) -> int:
    certs = _load_certificates(path, fmt, "CA certificate file (+cf)")
    ctx.load_verify_locations(cadata=_der_bundle(certs))
    return len(certs)


def _load_ca_dir(ctx, path: str, fmt: str) -> None:
    """Every certificate file in ``path`` (OpenSSL's hashed ``<hash>.0``
    names, as DCMTK needs them, or any other names)."""
    try:
        names = sorted(os.listdir(path))
    except OSError as exc:
        raise UsageError(f"cannot read CA certificate directory (+cd) {path!r}: "
                         f"{exc.strerror or exc}") from None
    found = 0
    for name in names:
        full = os.path.join(path, name)
        if not os.path.isfile(full):
            continue
        try:
            with open(full, "rb") as fh:
                certs = _certificates(fh.read(), fmt)
        except (OSError, ValueError):
            log.debug("+cd %s: %s holds no %s certificate; skipped", path, name,
                      fmt.upper())
            continue
        if certs:
            ctx.load_verify_locations(cadata=_der_bundle(certs))
            found += len(certs)
    if found:
        log.debug("trusting %d certificate(s) from directory %s", found, path)
    else:
        log.warning("CA certificate directory %s holds no %s certificate", path,
                    fmt.upper())


def _set_ciphers(ctx, names: tuple[str, ...]) -> None:
    """DCMTK's ``+cs``: *add* suites to the secure default list (TLS <= 1.2)."""
    import ssl

    added = []
    for name in names:
        if name in TLS13_CIPHERS:
            log.info("+cs %s: TLS 1.3 suites are always offered", name)
            continue
        openssl_name = IANA_CIPHERS.get(name, name)
        probe = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        try:
            probe.set_ciphers(openssl_name)
        except ssl.SSLError:
            raise UsageError(
                f"+cs/--cipher {name!r}: unknown cipher suite (give an OpenSSL name "
                f"such as ECDHE-RSA-AES128-GCM-SHA256 or an IANA name such as "
                f"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)") from None
        added.append(openssl_name)
    if not added:
        return
    default = [c["name"] for c in ctx.get_ciphers() if c.get("protocol") != "TLSv1.3"]
    spec = ":".join(dict.fromkeys([*default, *added]))
    try:
        ctx.set_ciphers(spec)
    except ssl.SSLError as exc:  # pragma: no cover - each name was checked
        raise UsageError(f"+cs/--cipher: {_openssl_text(exc)}") from None
    log.debug("TLS 1.2 cipher suites: %s", spec)


def _load_dhparam(ctx, path: str) -> None:
    import ssl

    _read(path, "DH parameter file (+dp)")
    try:
        ctx.load_dh_params(path)
    except ssl.SSLError as exc:
        raise UsageError(f"cannot read DH parameter file (+dp) {path!r}: "
                         f"{_openssl_text(exc)}") from None
    log.info("+dp/--dhparam: DH parameters only matter to a TLS server; loaded anyway")


def _note_seed_options(settings: TLSSettings) -> None:
    if settings.seed_file or settings.write_seed_file:
        log.info("+rs/+ws/+wf: OpenSSL seeds its random generator itself; the seed "
                 "file options are accepted for compatibility and ignored")


# -- our own key and certificate ---------------------------------------------


def read_password(prompt: str) -> str:
    """``+ps``: ask on the terminal (hidden), else read one line from stdin."""
    stdin = sys.stdin
    if stdin is not None and stdin.isatty():
        import getpass

        return getpass.getpass(prompt)
    line = stdin.readline() if stdin is not None else ""
    return line.rstrip("\r\n")


def _load_private_key(data: bytes, password: bytes | None, fmt: str):
    from cryptography.hazmat.primitives import serialization

    load = (serialization.load_der_private_key if fmt == "der"
            else serialization.load_pem_private_key)
    return load(data, password)


def _private_key(settings: TLSSettings):
    """The key of ``+tls KEY CERT``, decrypted as ``+ps``/``+pw``/``-pw`` say."""
    path, fmt = settings.key_file, settings.key_format
    assert path is not None  # build_context: authenticated mode has a key file
    what = "TLS private key file"
    data = _read(path, what)
    other = "-pem" if fmt == "der" else "-der"
    not_a_key = (f"cannot read {what} {path!r}: not a {fmt.upper()} private key "
                 f"({other} selects the other format)")
    try:
        return _load_private_key(data, None, fmt)
    except TypeError:
        pass  # encrypted: needs a password
    except ValueError:
        raise UsageError(not_a_key) from None
    except Exception as exc:  # noqa: BLE001 - unsupported key types and the like
        raise UsageError(f"cannot read {what} {path!r}: {exc}") from None

    if settings.password_source == "given":
        password = settings.password or ""
    elif settings.password_source == "null":
        password = ""
    else:
        reader = settings.password_reader or read_password
        password = reader(f"Enter pass phrase for {path}: ")
    try:
        return _load_private_key(data, password.encode("utf-8"), fmt)
    except (TypeError, ValueError):
        how = {"null": " (-pw/--null-passwd: the empty password)",
               "given": " (+pw/--use-passwd)", "prompt": ""}[settings.password_source]
        raise UsageError(f"cannot decrypt TLS private key {path!r}: wrong "
                         f"password{how}") from None


def _load_identity(ctx, settings: TLSSettings) -> None:
    """Check key and certificate, then hand them to OpenSSL."""
    import secrets
    import ssl
    import tempfile

    from cryptography.hazmat.primitives import serialization

    assert settings.cert_file is not None  # build_context: authenticated mode has one
    certs = _load_certificates(settings.cert_file, settings.key_format,
                               "TLS certificate file")
    key = _private_key(settings)
    spki = (serialization.Encoding.DER,
            serialization.PublicFormat.SubjectPublicKeyInfo)
    if key.public_key().public_bytes(*spki) != certs[0].public_key().public_bytes(*spki):
        raise UsageError(f"TLS private key {settings.key_file!r} does not belong to "
                         f"certificate {settings.cert_file!r}")

    # OpenSSL reads keys from files only: give it the key encrypted with a
    # one-time password in a private directory, removed at once
    onetime = secrets.token_bytes(32)
    key_pem = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.PKCS8,
                                serialization.BestAvailableEncryption(onetime))
    chain_pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)
    with tempfile.TemporaryDirectory(prefix="dimsekit-tls-") as tmp:
        key_path = os.path.join(tmp, "key.pem")
        cert_path = os.path.join(tmp, "cert.pem")
        for path, data in ((key_path, key_pem), (cert_path, chain_pem)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
        try:
            ctx.load_cert_chain(cert_path, key_path, password=onetime)
        except ssl.SSLError as exc:
            raise UsageError(f"cannot use TLS key {settings.key_file!r} with "
                             f"certificate {settings.cert_file!r}: "
                             f"{_openssl_text(exc)}") from None
    log.debug("TLS client certificate: %s", certs[0].subject.rfc4514_string())


# ---------------------------------------------------------------------------
# during the association
# ---------------------------------------------------------------------------


def observe(ctx) -> list:
    """Make ``ctx`` record every TLS error its sockets raise; return the list.

    pynetdicom only logs why a connection failed; the exception itself says
    what OpenSSL said.  Entries are ``(stage, exception, time.monotonic())``:
    errors raised by the handshake have stage ``"handshake"``, later ones
    (TLS 1.3 reports a rejected client certificate after the client's side
    of the handshake) ``"io"``, the peer closing the connection is
    ``("closed", None, when)``.
    """
    import ssl
    import time

    seen: list = []

    def note(stage: str, exc: BaseException | None) -> None:
        seen.append((stage, exc, time.monotonic()))

    class _ObservedSSLSocket(ssl.SSLSocket):
        def do_handshake(self, *args, **kwargs):
            try:
                return super().do_handshake(*args, **kwargs)
            except OSError as exc:
                _mark_tls_answer(exc, self)
                note("handshake", exc)
                raise

        def recv(self, *args, **kwargs):
            try:
                data = super().recv(*args, **kwargs)
            except ssl.SSLError as exc:
                note("io", exc)
                raise
            if not data and (not args or args[0]):
                note("closed", None)  # the peer closed the connection
            return data

        def send(self, *args, **kwargs):
            try:
                return super().send(*args, **kwargs)
            except ssl.SSLError as exc:
                note("io", exc)
                raise

        def sendall(self, *args, **kwargs):
            try:
                return super().sendall(*args, **kwargs)
            except ssl.SSLError as exc:
                note("io", exc)
                raise

    ctx.sslsocket_class = _ObservedSSLSocket
    return seen


#: set on a handshake error: whether the peer had answered in TLS (a
#: ServerHello) before it failed
_TLS_ANSWER = "dimsekit_peer_answered_tls"


def _mark_tls_answer(exc: BaseException, sock) -> None:
    """Note on ``exc`` whether ``sock``'s peer had sent a ServerHello.

    OpenSSL knows the cipher suite from the ServerHello on: no cipher means
    the peer never said a word of TLS (a plain DICOM port resets or closes
    on the ClientHello, or answers it with a PDU).
    """
    try:
        answered = sock.cipher() is not None
    except (OSError, ValueError, AttributeError):  # pragma: no cover
        return
    # AttributeError: an exception without __dict__
    with contextlib.suppress(AttributeError):
        setattr(exc, _TLS_ANSWER, answered)


def peer_never_spoke_tls(exc: BaseException | None) -> bool:
    """Whether a failed handshake looks like a peer that does not speak TLS:
    it answered with something that is no TLS record, or it reset/closed the
    connection before any TLS answer (seen by :func:`observe`)."""
    if exc is None:
        return False
    reason = (getattr(exc, "reason", None) or "").upper()
    if reason in _NOT_TLS_REASONS:
        return True
    return _silent_before_hello(exc)


def _silent_before_hello(exc: BaseException) -> bool:
    """The connection reset, closed or timed out before any TLS answer."""
    import ssl

    return getattr(exc, _TLS_ANSWER, True) is False and isinstance(
        exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError, ConnectionError, TimeoutError))


#: OpenSSL's reasons for bytes that are no TLS record
_NOT_TLS_REASONS = ("WRONG_VERSION_NUMBER", "PACKET_LENGTH_TOO_LONG",
                    "RECORD_LAYER_FAILURE", "UNKNOWN_PROTOCOL", "HTTP_REQUEST",
                    "RECORD_LENGTH_MISMATCH")

#: the hint for a TLS client at a port that does not speak TLS
NOT_TLS_HINT = ("; the peer may not speak TLS on this port "
                "(for plain DICOM leave out +tls/+tla)")

#: the hint for a plain TCP client at a port that speaks TLS only
EXPECTS_TLS_HINT = "; the peer may expect TLS (+tls KEY CERT or +tla)"

#: TLS record content types (RFC 8446 5.1): the first byte of anything a
#: TLS peer sends, which a plain DICOM client reads as a PDU type
TLS_RECORD_TYPES = {0x14: "change cipher spec", 0x15: "alert", 0x16: "handshake",
                    0x17: "application data"}


def tls_record_type(first_byte: int | None) -> str | None:
    """The TLS record type ``first_byte`` (read where a PDU type was
    expected) stands for, or None: ``0x15`` -> ``"alert"``."""
    return TLS_RECORD_TYPES.get(first_byte) if first_byte is not None else None


def plain_tcp_failure(where: str, first_byte: int | None = None) -> str:
    """The line for a plain-TCP association the peer ended without a DICOM
    answer: no A-ASSOCIATE-AC/RJ, no A-ABORT, the connection just closed or
    reset (what a TLS-only port does with an A-ASSOCIATE-RQ).

    ``first_byte``: what came where a PDU type was expected, if anything
    did (pynetdicom logs it as an unknown PDU type): a TLS record type
    (``0x15``, an alert) says TLS for sure.
    """
    kind = tls_record_type(first_byte)
    if kind is not None:
        return (f"{where} answered the association request with a TLS {kind} record, "
                f"not a DICOM PDU{EXPECTS_TLS_HINT}")
    if first_byte is not None:
        return (f"{where} answered the association request with something other than "
                f"a DICOM PDU (first byte 0x{first_byte:02X}): is it a DICOM port?")
    return (f"{where} closed the connection without answering the association "
            f"request{EXPECTS_TLS_HINT}")


_SSL_TEXT = re.compile(r"^\[[^\]]*\]\s*(?P<text>.*?)\s*(?:\(_ssl\.c:\d+\))?$")


def _openssl_text(exc: BaseException) -> str:
    """OpenSSL's words without Python's decoration (``[SSL: X] ... (_ssl.c:N)``)."""
    text = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], str) else str(exc)
    m = _SSL_TEXT.match(text)
    return (m.group("text") if m else text).strip() or type(exc).__name__


def failure_reason(exc: BaseException) -> str:
    """One line for a failed handshake, as OpenSSL reports it.

    ``certificate verify failed: unable to get local issuer certificate``,
    ``certificate verify failed: IP address mismatch, certificate is not
    valid for '127.0.0.2'``, ``tlsv13 alert certificate required``, ...
    """
    import ssl

    if isinstance(exc, ssl.SSLCertVerificationError):
        detail = (exc.verify_message or "").rstrip(".")
        return f"certificate verify failed: {detail}" if detail else _openssl_text(exc)
    before = " before any TLS answer" if _silent_before_hello(exc) else ""
    if isinstance(exc, ssl.SSLEOFError):
        return f"the peer closed the connection (unexpected EOF){before}"
    if isinstance(exc, ssl.SSLError):
        return _openssl_text(exc)
    if isinstance(exc, OSError):  # reset, timed out, ... mid-handshake
        return (exc.strerror or str(exc) or type(exc).__name__) + before
    return str(exc)  # pragma: no cover


def hint(settings: TLSSettings, exc: BaseException | None) -> str:
    """``"; "`` and a pointer to the likely cause, or ``""``.

    ``exc`` None: the peer closed the TLS connection without a word (after
    the handshake: it speaks TLS).  A handshake the peer never answered in
    TLS (reset, closed, or not a TLS record) points at a port without TLS
    (:data:`NOT_TLS_HINT`), whatever our certificate.
    """
    import ssl

    if isinstance(exc, ssl.SSLCertVerificationError):
        if "mismatch" in (exc.verify_message or ""):
            return ("; the certificate names another host (--request-sni NAME "
                    "verifies another name, -ic none)")
        if not settings.has_cas:
            return "; no trusted CA was given (+cf FILE, +cd DIR)"
        return ""
    if peer_never_spoke_tls(exc):
        return NOT_TLS_HINT
    reason = (getattr(exc, "reason", None) or "").upper()
    about_our_cert = "ALERT" in reason and any(
        word in reason for word in ("CERTIFICATE", "UNKNOWN_CA", "ACCESS_DENIED"))
    if exc is None or about_our_cert or isinstance(
            exc, (ssl.SSLEOFError, ConnectionResetError, BrokenPipeError)):
        if settings.mode == "anonymous":
            return "; does the peer require a client certificate (+tls KEY CERT)?"
        return "; does the peer trust our client certificate?"
    return ""


def describe(sock) -> str:
    """What was negotiated on ``sock``, for ``-v``."""
    try:
        version = sock.version()
        cipher = sock.cipher()
    except (AttributeError, ValueError, OSError):  # pragma: no cover
        return "TLS"
    text = f"TLS connection: {version}, {cipher[0] if cipher else '?'}"
    try:
        cert = sock.getpeercert()
    except (ValueError, OSError):  # pragma: no cover
        cert = None
    if cert:
        subject = ", ".join("=".join(kv) for rdn in cert.get("subject", ()) for kv in rdn)
        issuer = ", ".join("=".join(kv) for rdn in cert.get("issuer", ()) for kv in rdn)
        names = ", ".join(v for _, v in cert.get("subjectAltName", ()))
        text += f"; peer certificate verified: {subject or names or '?'}"
        if names:
            text += f" [{names}]"
        if issuer:
            text += f", issued by {issuer}"
    else:
        text += "; peer certificate not verified"
    return text
