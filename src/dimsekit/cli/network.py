"""``association_options``: the network, AE title, transfer-syntax and
TLS options of DCMTK's SCUs (both tools' spellings), turned into one
:class:`~dimsekit.association.AssociationSettings` for the callback.  The
TLS option table follows DCMTK's option set; the work is done by
:mod:`dimsekit.tls`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from dimsekit.association import TRANSFER_SYNTAX_PROPOSALS, AssociationSettings
from dimsekit.cli.command import _collect, _compose, _given, last_given, option

_TLS_STACK = "transport protocol stack"
_TLS_PW = "TLS private key password (only with --enable-tls)"
_TLS_FMT = "TLS key and certificate file format"
_TLS_CA = "TLS certification authority"
_TLS_CS = "TLS ciphersuite and protocol version"
_TLS_SEED = "TLS pseudo random generator (accepted, not needed)"
_TLS_PEER = "TLS peer authentication"


_TLS_OPTIONS = (
    # rightmost wins within each group although they take different numbers
    # of values: _build_tls asks last_given
    option("-tls", "--disable-tls", "tls_disable", group=_TLS_STACK, is_flag=True,
           help="use normal TCP/IP connection (default)"),
    option("+tls", "--enable-tls", "tls_enable", group=_TLS_STACK, nargs=2,
           metavar="KEY CERT",
           help="use authenticated secure TLS connection: private key file "
                "KEY, certificate file CERT"),
    option("+tla", "--anonymous-tls", "tls_anonymous", group=_TLS_STACK, is_flag=True,
           help="use secure TLS connection without certificate"),
    option("+ps", "--std-passwd", "tls_std_passwd", group=_TLS_PW, is_flag=True,
           help="prompt user to type password on stdin (default; only if the "
                "key is encrypted)"),
    option("+pw", "--use-passwd", "tls_use_passwd", group=_TLS_PW, metavar="PASSWORD",
           help="use specified password (visible to other users: prefer +ps)"),
    option("-pw", "--null-passwd", "tls_null_passwd", group=_TLS_PW, is_flag=True,
           help="use empty string as password"),
    option("-pem", "--pem-keys", "tls_key_format", group=_TLS_FMT, flag_value="pem",
           help="read keys and certificates as PEM file (default)"),
    option("-der", "--der-keys", "tls_key_format", group=_TLS_FMT, flag_value="der",
           help="read keys and certificates as DER file (also +cf/+cd files)"),
    option("+cf", "--add-cert-file", "tls_ca_files", group=_TLS_CA, multiple=True,
           metavar="FILE", help="add certificate file to list of certificates "
                                "(trusted CAs; repeatable)"),
    option("+cd", "--add-cert-dir", "tls_ca_dirs", group=_TLS_CA, multiple=True,
           metavar="DIR", help="add certificates in DIR to list of certificates "
                               "(every certificate file in it; repeatable)"),
    option("+cs", "--cipher", "tls_ciphers", group=_TLS_CS, multiple=True,
           metavar="NAME", help="add ciphersuite to list of negotiated suites "
                                "(OpenSSL or IANA name; TLS 1.2; repeatable)"),
    option("+dp", "--dhparam", "tls_dhparam", group=_TLS_CS, metavar="FILE",
           help="read DH parameters for DH/DSS ciphersuites (a server's concern)"),
    option("--tls-min-version", "tls_min_version", group=_TLS_CS,
           type=click.Choice(["1.2", "1.3"]), default="1.2", show_default=True,
           metavar="VERSION", help="lowest TLS protocol version accepted: 1.2 or 1.3"),
    option("+rs", "--seed", "tls_seed", group=_TLS_SEED, metavar="FILE",
           help="seed random generator with contents of FILE"),
    option("+ws", "--write-seed", "tls_write_seed", group=_TLS_SEED, is_flag=True,
           help="write back modified seed (only with --seed)"),
    option("+wf", "--write-seed-file", "tls_write_seed_file", group=_TLS_SEED,
           metavar="FILE", help="write modified seed to file FILE (only with --seed)"),
    option("-rc", "--require-peer-cert", "tls_peer_cert", group=_TLS_PEER,
           flag_value="require",
           help="verify peer certificate and host name, fail if absent (default)"),
    option("-vc", "--verify-peer-cert", "tls_peer_cert", group=_TLS_PEER,
           flag_value="verify",
           help="verify peer certificate if present (a TLS server always "
                "presents one: as -rc)"),
    option("-ic", "--ignore-peer-cert", "tls_peer_cert", group=_TLS_PEER,
           flag_value="ignore", help="don't verify peer certificate (insecure)"),
    option("--request-sni", "--tls-server-name", "tls_server_name", group=_TLS_PEER,
           metavar="NAME", help="send NAME as TLS server name (SNI) and verify the "
                                "peer certificate against it (default: PEER)"),
)

#: the TLS parameters' names, and how to call each in a message
_TLS_SPELLINGS = {
    "tls_disable": "-tls/--disable-tls",
    "tls_enable": "+tls/--enable-tls",
    "tls_anonymous": "+tla/--anonymous-tls",
    "tls_std_passwd": "+ps/--std-passwd",
    "tls_use_passwd": "+pw/--use-passwd",
    "tls_null_passwd": "-pw/--null-passwd",
    "tls_key_format": "-pem/-der",
    "tls_ca_files": "+cf/--add-cert-file",
    "tls_ca_dirs": "+cd/--add-cert-dir",
    "tls_ciphers": "+cs/--cipher",
    "tls_dhparam": "+dp/--dhparam",
    "tls_min_version": "--tls-min-version",
    "tls_seed": "+rs/--seed",
    "tls_write_seed": "+ws/--write-seed",
    "tls_write_seed_file": "+wf/--write-seed-file",
    "tls_peer_cert": "-rc/-vc/-ic",
    "tls_server_name": "--request-sni",
}
_TLS_NAMES = tuple(_TLS_SPELLINGS)
_PASSWORD_OPTIONS = ("tls_std_passwd", "tls_use_passwd", "tls_null_passwd")
#: accepted for compatibility, never an error (OpenSSL seeds itself)
_SEED_OPTIONS = ("tls_seed", "tls_write_seed", "tls_write_seed_file")


def _build_tls(values: dict[str, Any]) -> Any:
    """:class:`~dimsekit.tls.TLSSettings` from the TLS options, or None (no TLS).

    Options that only make sense with TLS are a usage error without it
    (DCMTK's rule; it also catches a forgotten ``+tls`` before plain-text
    traffic goes out), except the seed options, which are never an error.
    """
    from dimsekit.errors import UsageError

    ctx = click.get_current_context()
    stack = last_given(ctx, ("tls_disable", "tls_enable", "tls_anonymous"))
    mode = {"tls_enable": "authenticated", "tls_anonymous": "anonymous"}.get(stack or "")
    if mode != "authenticated":
        for name in _PASSWORD_OPTIONS:
            if _given(ctx, name):
                raise UsageError(f"{_TLS_SPELLINGS[name]} needs +tls/--enable-tls")
    if mode is None:
        for name in _TLS_NAMES[3:]:
            if name in _PASSWORD_OPTIONS or name in _SEED_OPTIONS:
                continue
            if _given(ctx, name):
                raise UsageError(f"{_TLS_SPELLINGS[name]} needs +tls/--enable-tls "
                                 f"or +tla/--anonymous-tls")
        return None

    from dimsekit.tls import TLSSettings  # only now: plain TCP never loads it

    password_option = last_given(ctx, _PASSWORD_OPTIONS)
    password_source = {"tls_use_passwd": "given", "tls_null_passwd": "null"}.get(
        password_option or "", "prompt")
    key_file, cert_file = values["tls_enable"] or (None, None)
    write_seed = values["tls_write_seed_file"] or (
        values["tls_seed"] if values["tls_write_seed"] else None)
    return TLSSettings(
        mode=mode,
        key_file=key_file if mode == "authenticated" else None,
        cert_file=cert_file if mode == "authenticated" else None,
        password_source=password_source,
        password=values["tls_use_passwd"] if password_source == "given" else None,
        key_format=values["tls_key_format"] or "pem",
        ca_files=tuple(values["tls_ca_files"] or ()),
        ca_dirs=tuple(values["tls_ca_dirs"] or ()),
        ciphers=tuple(values["tls_ciphers"] or ()),
        dhparam=values["tls_dhparam"],
        seed_file=values["tls_seed"],
        write_seed_file=write_seed,
        peer_cert=values["tls_peer_cert"],
        server_name=values["tls_server_name"],
        min_version=values["tls_min_version"] or "1.2",
    )


def _timeout(value: float | None) -> float | None:
    # 0: unlimited (DCMTK's default for -to/-td); negative never gets here
    return None if value is None or value == 0 or value == float("inf") else value


def _non_negative(ctx: click.Context, param: click.Parameter,
                  value: float | None) -> float | None:
    """A timeout in seconds: 0 (unlimited) or more; negative is a usage error."""
    if value is not None and not value >= 0:  # NaN too
        raise click.BadParameter(f"{value:g} is negative: give seconds, 0 for unlimited"
                                 if value < 0 else
                                 f"{value:g} is not a number of seconds (0: unlimited)")
    return value


#: PS3.8 D.3.3.1: a maximum length of 0 means no limit
MAX_PDU_RANGE = (4096, 131072)


class MaxPDU(click.ParamType):
    """``-pdu``: 0 (unlimited, PS3.8) or 4096..131072 bytes."""

    name = "max_pdu"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> int:
        if isinstance(value, int):
            number = value
        else:
            try:
                number = int(str(value).strip(), 10)
            except ValueError:
                self.fail(f"{value!r} is not a whole number of bytes", param, ctx)
        low, high = MAX_PDU_RANGE
        if number != 0 and not low <= number <= high:
            self.fail(f"{number} is not 0 (unlimited) or in {low}..{high}", param, ctx)
        return number


def _build_association(calling_aet, called_aet, transfer_syntax, connect_timeout,
                       acse_timeout, dimse_timeout, network_timeout, max_pdu,
                       abort, new_vr, **tls_values: Any) -> AssociationSettings:
    tls = _build_tls(tls_values)
    if tls is not None:
        # keys, certificates, CAs read now: a wrong password or an unreadable
        # file is a usage error before any network traffic
        tls.context()
    return AssociationSettings(
        calling_aet=calling_aet,
        called_aet=called_aet,
        transfer_syntaxes=TRANSFER_SYNTAX_PROPOSALS[transfer_syntax or "local"],
        connect_timeout=_timeout(connect_timeout),
        acse_timeout=_timeout(acse_timeout),
        dimse_timeout=_timeout(dimse_timeout),
        network_timeout=_timeout(network_timeout),
        max_pdu=max_pdu,
        abort=abort,
        new_vr=new_vr is not False,  # None: neither +u nor -u given
        tls=tls,
    )


def _ae_title(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if value is None:
        return value
    if not 0 < len(value) <= 16 or "\\" in value or not value.isprintable():
        raise click.BadParameter(
            f"{value!r}: an AE title is 1 to 16 printable characters, no backslash"
        )
    return value


def association_options(default_calling_aet: str = "DIMSEKIT") -> Callable:
    """The association/network option group; callback gets ``association``.

    Use as ``@association_options("FINDSCU")``: the argument is the default
    calling AE title (DCMTK tools each have their own).
    """
    net = "network"
    _AS = "application entity titles"
    return _compose(
        option("-aet", "--aetitle", "--calling-aet", "calling_aet", group=_AS,
               default=default_calling_aet, show_default=True, metavar="AETITLE",
               callback=_ae_title, help="set my calling AE title"),
        option("-aec", "--call", "--called-aet", "called_aet", group=_AS,
               default="ANY-SCP", show_default=True, metavar="AETITLE",
               callback=_ae_title, help="set called AE title of peer"),
        # both of a pair sharing a name say default=None ("not given"): click
        # 8.2 gives a flag_value=False option without a default the default
        # False, and that one wins over its partner's (8.3 and later do not)
        option("+u", "--enable-new-vr", "new_vr", group="value representations",
               flag_value=True, default=None,
               help="enable support for new VRs (UN/UT) (default)"),
        option("-u", "--disable-new-vr", "new_vr", group="value representations",
               flag_value=False, default=None,
               help="disable support for new VRs, convert to OB"),
        option("--propose-uncompr", "transfer_syntax", group="transfer syntaxes",
               flag_value="local", aliases=("-x=",),
               help="propose all uncompressed TS, explicit VR with local "
                    "byte ordering first (default)"),
        option("-xe", "--propose-little", "transfer_syntax", group="transfer syntaxes",
               flag_value="little",
               help="propose all uncompressed TS, explicit VR little endian first"),
        option("-xb", "--propose-big", "transfer_syntax", group="transfer syntaxes",
               flag_value="big",
               help="propose all uncompressed TS, explicit VR big endian first"),
        option("-xi", "--propose-implicit", "transfer_syntax", group="transfer syntaxes",
               flag_value="implicit", help="propose implicit VR little endian TS only"),
        option("-xd", "--propose-deflated", "transfer_syntax", group="transfer syntaxes",
               flag_value="deflated",
               help="propose deflated explicit VR little endian TS first"),
        option("-to", "--timeout", "connect_timeout", group=net, type=float,
               default=30.0, show_default=True, metavar="SECONDS",
               callback=_non_negative,
               help="timeout for connection requests (0: unlimited)"),
        option("-ta", "--acse-timeout", group=net, type=float, default=30.0,
               show_default=True, metavar="SECONDS", callback=_non_negative,
               help="timeout for ACSE messages"),
        option("-td", "--dimse-timeout", group=net, type=float, default=30.0,
               show_default=True, metavar="SECONDS", callback=_non_negative,
               help="timeout for DIMSE messages (0: unlimited)"),
        option("-tn", "--network-timeout", group=net, type=float, default=30.0,
               show_default=True, metavar="SECONDS", callback=_non_negative,
               help="timeout for the network (idle connection)"),
        option("-pdu", "--max-pdu", group=net, type=MaxPDU(),
               default=16384, show_default=True, metavar="BYTES",
               help="set max receive pdu to BYTES (4096..131072, 0: unlimited)"),
        option("--abort", group=net, is_flag=True,
               help="abort association instead of releasing it"),
        *_TLS_OPTIONS,
        _collect(("calling_aet", "called_aet", "new_vr", "transfer_syntax",
                  "connect_timeout", "acse_timeout", "dimse_timeout",
                  "network_timeout", "max_pdu", "abort", *_TLS_NAMES),
                 "association", _build_association),
    )
