"""TLS material for the tests: keys and certificates made with ``trustme``.

:func:`make_tls_material` writes a :class:`TLSMaterial` (a CA, server and
client certificates, an encrypted key, DER copies, a second, untrusted CA,
...) into a directory; the ``tls_material`` fixture does that once per
session.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from .processes import _missing, _run_tool

__all__ = ["TLSMaterial", "make_tls_material", "tls_material"]


@dataclass(frozen=True)
class TLSMaterial:
    """Keys and certificates for TLS tests, all RSA (DCMTK 3.6.7's default
    TLS profile offers RSA suites first), PEM unless named ``*_der``.

    Attributes:
        directory: where the files are.
        ca_cert: the CA that signed every certificate below.
        other_ca_cert: a second CA that signed nothing here (untrusted).
        server_cert, server_key: for ``127.0.0.1`` and ``localhost``.
        wrong_host_cert, wrong_host_key: for ``pacs.example.org`` only.
        client_cert, client_key: a client certificate (not a host name).
        untrusted_client_cert, untrusted_client_key: one signed by the other CA.
        client_key_encrypted: ``client_key`` encrypted with :attr:`password`.
        password: the password of ``client_key_encrypted``.
        client_cert_der, client_key_der, ca_cert_der: DER copies.
        ca_dir: a directory holding ``ca_cert`` under OpenSSL's hashed name
            (``<subject hash>.0``, what DCMTK's ``+cd`` needs), or None when
            no ``openssl`` binary was found to compute the hash.
        ca_dir_plain: a directory holding ``ca_cert`` as ``ca.pem``.
    """

    directory: Path
    ca_cert: Path
    other_ca_cert: Path
    server_cert: Path
    server_key: Path
    wrong_host_cert: Path
    wrong_host_key: Path
    client_cert: Path
    client_key: Path
    untrusted_client_cert: Path
    untrusted_client_key: Path
    client_key_encrypted: Path
    password: str
    client_cert_der: Path
    client_key_der: Path
    ca_cert_der: Path
    ca_dir: Path | None
    ca_dir_plain: Path


def make_tls_material(directory: Path | str, password: str = "dimsekit-Pa55") -> TLSMaterial:
    """Write a fresh :class:`TLSMaterial` into *directory* (needs ``trustme``)."""
    import trustme
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rsa = trustme.KeyType.RSA
    ca = trustme.CA(key_type=rsa, organization_name="dimsekit test CA")
    other = trustme.CA(key_type=rsa, organization_name="dimsekit untrusted CA")

    def write(name: str, blob) -> Path:
        path = directory / name
        blob.write_to_path(str(path))
        return path

    def issue(stem: str, *identities: str, by=ca) -> tuple[Path, Path]:
        cert = by.issue_cert(*identities, key_type=rsa)
        return (write(f"{stem}.pem", cert.cert_chain_pems[0]),
                write(f"{stem}.key", cert.private_key_pem))

    ca_cert = write("ca.pem", ca.cert_pem)
    other_ca_cert = write("other-ca.pem", other.cert_pem)
    server_cert, server_key = issue("server", "127.0.0.1", "localhost")
    wrong_cert, wrong_key = issue("wrong-host", "pacs.example.org")
    client_cert, client_key = issue("client", "findscu@dimsekit.test")
    untrusted_cert, untrusted_key = issue("untrusted-client", "findscu@dimsekit.test",
                                          by=other)

    key = serialization.load_pem_private_key(client_key.read_bytes(), None)
    encrypted = directory / "client-encrypted.key"
    encrypted.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(password.encode())))
    client_key_der = directory / "client.key.der"
    client_key_der.write_bytes(key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption()))
    client_cert_der = directory / "client.pem.der"
    client_cert_der.write_bytes(x509.load_pem_x509_certificate(
        client_cert.read_bytes()).public_bytes(serialization.Encoding.DER))
    ca_cert_der = directory / "ca.der"
    ca_cert_der.write_bytes(x509.load_pem_x509_certificate(
        ca_cert.read_bytes()).public_bytes(serialization.Encoding.DER))

    ca_dir_plain = directory / "ca-dir-plain"
    ca_dir_plain.mkdir(exist_ok=True)
    shutil.copy(ca_cert, ca_dir_plain / "ca.pem")
    ca_dir: Path | None = None
    openssl = shutil.which("openssl")
    if openssl:
        subject_hash = _run_tool([openssl, "x509", "-hash", "-noout", "-in",
                                  str(ca_cert)]).stdout.strip()
        ca_dir = directory / "ca-dir"
        ca_dir.mkdir(exist_ok=True)
        shutil.copy(ca_cert, ca_dir / f"{subject_hash}.0")

    return TLSMaterial(
        directory=directory, ca_cert=ca_cert, other_ca_cert=other_ca_cert,
        server_cert=server_cert, server_key=server_key,
        wrong_host_cert=wrong_cert, wrong_host_key=wrong_key,
        client_cert=client_cert, client_key=client_key,
        untrusted_client_cert=untrusted_cert, untrusted_client_key=untrusted_key,
        client_key_encrypted=encrypted, password=password,
        client_cert_der=client_cert_der, client_key_der=client_key_der,
        ca_cert_der=ca_cert_der, ca_dir=ca_dir, ca_dir_plain=ca_dir_plain,
    )


@pytest.fixture(scope="session")
def tls_material(tmp_path_factory: pytest.TempPathFactory) -> TLSMaterial:
    """Fresh certificates and keys for this session (see :class:`TLSMaterial`)."""
    try:
        import trustme  # noqa: F401
    except ImportError:
        _missing("trustme is not installed (pip install -e '.[test]')")
    return make_tls_material(tmp_path_factory.mktemp("tls"))
