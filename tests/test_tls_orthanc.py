"""DICOM TLS against a real peer: Orthanc 1.10 (DCMTK 3.6.7 inside) with
``DicomTlsEnabled`` and a client certificate required, ``dimsekit find``
and DCMTK ``findscu`` given the same flags, and the matches compared with
what plain Orthanc returns for the same query without TLS."""

from __future__ import annotations

import pytest
from test_tls import (
    AUTH,
    CA,
    CERT,
    HANDSHAKE,
    KEY,
    Case,
    _m,
    _resolve,
    run_dcmtk,
    run_ours,
)

#: dimsekit vs DCMTK findscu 3.6.7 against Orthanc 1.10 with TLS
ORTHANC_CASES = [
    Case("good-certs", "orthanc", AUTH, "ok", True),
    Case("untrusted-ca", "orthanc", ("+tls", KEY, CERT, "+cf", _m("other_ca_cert")),
         HANDSHAKE + "certificate verify failed: self-signed certificate in certificate "
         "chain", False, 3),
    # Orthanc binds every address: 127.0.0.2 reaches it under a name its
    # certificate does not hold. DCMTK 3.6.7 does not check host names.
    Case("host-mismatch", "orthanc", AUTH,
         HANDSHAKE + "certificate verify failed: IP address mismatch, certificate is not "
         "valid for '127.0.0.2'; the certificate names another host (--request-sni NAME "
         "verifies another name, -ic none)", True, 3, host="127.0.0.2"),
    Case("host-mismatch-ic", "orthanc", (*AUTH, "-ic"), "ok", True, host="127.0.0.2"),
    # Orthanc closes the connection without a TLS alert (DCMTK sees a reset)
    Case("client-cert-missing", "orthanc", ("+tla", "+cf", CA),
         HANDSHAKE + "the peer closed the connection (unexpected EOF); does the peer "
         "require a client certificate (+tls KEY CERT)?|"
         + HANDSHAKE + "tlsv13 alert certificate required; does the peer require a client "
         "certificate (+tls KEY CERT)?", False, 3),
    Case("client-cert-untrusted", "orthanc",
         ("+tls", _m("untrusted_client_key"), _m("untrusted_client_cert"), "+cf", CA),
         HANDSHAKE + "the peer closed the connection (unexpected EOF); does the peer "
         "trust our client certificate?|"
         + HANDSHAKE + "tlsv1 alert unknown ca; does the peer trust our client "
         "certificate?", False, 3),
    Case("encrypted-key-use-passwd", "orthanc",
         ("+tls", _m("client_key_encrypted"), CERT, "+pw", _m("password"), "+cf", CA),
         "ok", True),
    Case("encrypted-key-wrong-passwd", "orthanc",
         ("+tls", _m("client_key_encrypted"), CERT, "+pw", "wrong", "+cf", CA),
         "cannot decrypt TLS private key '{client_key_encrypted}': wrong password "
         "(+pw/--use-passwd)", False, 2),
    Case("encrypted-key-null-passwd", "orthanc",
         ("+tls", _m("client_key_encrypted"), CERT, "-pw", "+cf", CA),
         "cannot decrypt TLS private key '{client_key_encrypted}': wrong password "
         "(-pw/--null-passwd: the empty password)", False, 2),
    Case("encrypted-key-std-passwd", "orthanc",
         ("+tls", _m("client_key_encrypted"), CERT, "+cf", CA), "ok", True,
         input="{password}\n"),
    Case("der-key-and-cert", "orthanc",
         ("-der", "+tls", _m("client_key_der"), _m("client_cert_der"),
          "+cf", _m("ca_cert_der")), "ok", True),
    Case("ca-directory", "orthanc", ("+tls", KEY, CERT, "+cd", _m("ca_dir")), "ok", True,
         needs_ca_dir=True),
]


@pytest.fixture(scope="module")
def orthanc_plain_matches(orthanc_peer, tmp_path_factory) -> list[str]:
    """The same query, to the plain Orthanc holding the same instances."""
    p = orthanc_peer
    out = run_ours(p.host, p.port, p.aet, tmp_path_factory.mktemp("orthanc-plain"), ())
    assert out.ok, out.stderr
    return out.matches


@pytest.mark.realpeer("orthanc")
@pytest.mark.parametrize("case", ORTHANC_CASES, ids=[c.id for c in ORTHANC_CASES])
def test_dimsekit_and_findscu_agree_against_orthanc(case, orthanc_tls_peer,
                                                    orthanc_plain_matches, tls_material,
                                                    tmp_path):
    if case.needs_ca_dir and tls_material.ca_dir is None:
        pytest.skip("no openssl binary to name the CA directory's file")
    args, stdin, names = _resolve(case, tls_material)
    peer = orthanc_tls_peer
    where = f"{case.host}:{peer.port}"
    ours = run_ours(case.host, peer.port, peer.aet, tmp_path / "ours", args, stdin)
    ref = run_dcmtk(case.host, peer.port, peer.aet, tmp_path / "dcmtk", args, stdin)

    assert ref.ok is case.dcmtk_ok, ref.stderr
    if case.ours == "ok":
        assert ours.ok, ours.stderr + peer.log_text()[-2000:]
        assert ours.matches == orthanc_plain_matches
        if ref.ok:
            assert ref.matches == orthanc_plain_matches
    else:
        assert ours.returncode == case.exit_code, ours.stderr
        assert ours.matches == []
        expected = ["E: " + alt.format(where=where, **names)
                    for alt in case.ours.split("|")]
        assert ours.stderr.splitlines()[-1] in expected, ours.stderr
    assert tls_material.password not in ours.stderr
