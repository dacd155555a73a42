"""Option groups every command shares, and a command class whose ``--help``
groups options under headings the way DCMTK does.

Plugins decorate their callbacks:

    @click.command(cls=DimsekitCommand)
    @general_options
    @logging_options
    @association_options("ECHOSCU")
    @key_options
    def echo(association, keys, ...): ...

``logging_options`` sets logging up before the callback runs;
``association_options`` (network, AE titles, transfer syntaxes, TLS) hands
the callback one ``association`` argument (:class:`AssociationSettings`);
``key_options`` hands it ``keys`` (the raw ``-k`` strings; parse them with
:func:`dimsekit.keys.parse_keys`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

import click

from dimsekit import __version__
from dimsekit.association import TRANSFER_SYNTAX_PROPOSALS, AssociationSettings
from dimsekit.cli.logs import resolve_level, setup_logging


class GroupedOption(click.Option):
    """A click option that remembers the ``--help`` heading it belongs to."""

    def __init__(self, *args: Any, group: str = "options",
                 aliases: tuple[str, ...] = (), **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.group = group
        #: spellings argv pre-processing rewrites to this option (``-x=``)
        self.aliases = aliases

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        record = super().get_help_record(ctx)
        if record is None or not self.aliases:
            return record
        return ", ".join((*self.aliases, record[0])), record[1]


class DimsekitCommand(click.Command):
    """A click command whose help lists options under their group headings,
    and which notes every option and argument in command-line order
    (:func:`args_in_order`, :func:`last_given`) before click parses them."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta[_IN_ORDER] = (ctx, walk_args(self, ctx, args))
        return super().parse_args(ctx, args)

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        groups: dict[str, list[tuple[str, str]]] = {}
        for param in self.get_params(ctx):
            if not isinstance(param, click.Option):
                continue  # arguments are in the usage line
            record = param.get_help_record(ctx)
            if record is None:
                continue
            heading = getattr(param, "group", "general")
            groups.setdefault(heading, []).append(record)
        for heading, records in groups.items():
            with formatter.section(heading):
                formatter.write_dl(records)


# ---------------------------------------------------------------------------
# the command line in order
# ---------------------------------------------------------------------------

#: ``ctx.meta`` slot: ``(ctx, [Given, ...])`` noted by DimsekitCommand
_IN_ORDER = "dimsekit.args_in_order"


class Given(NamedTuple):
    """One option occurrence (``param`` the click option, ``values`` the
    words it took) or one positional argument (``param`` None, one value)."""

    param: click.Option | None
    values: tuple[str, ...]


def walk_args(command: click.Command, ctx: click.Context, args: list[str]) -> list[Given]:
    """Every option occurrence and positional argument of ``args``, in order.

    click hands a callback each option's value, not where it stood; this walk
    reads ``args`` as click's parser does, from public click API only
    (``get_params``, ``opts``, ``secondary_opts``, ``nargs``, ``is_flag``,
    ``count``): ``--opt=value``, ``-kVALUE``, clustered short flags (``-qv``),
    ``--`` (everything after it positional), and options taking several
    values (``+tls KEY CERT``).  Unknown options take no value (click
    reports them when it parses).
    """
    long_opts: dict[str, click.Option] = {}
    short_opts: dict[str, click.Option] = {}
    prefixes = {"-", "--"}
    for param in command.get_params(ctx):
        if not isinstance(param, click.Option):
            continue
        for opt in (*param.opts, *param.secondary_opts):
            prefix, name = _split_opt(opt)
            prefixes.add(prefix[:1])
            if len(prefix) == 1 and len(name) == 1:
                short_opts[opt] = param
            else:
                long_opts[opt] = param
                prefixes.add(prefix)

    def normal(opt: str) -> str:
        if ctx.token_normalize_func is None:
            return opt
        prefix, name = _split_opt(opt)
        return f"{prefix}{ctx.token_normalize_func(name)}"

    out: list[Given] = []
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            break
        if not (arg[:1] in prefixes and len(arg) > 1):
            out.append(Given(None, (arg,)))
            if not ctx.allow_interspersed_args:
                break  # the first positional ends the options
            continue
        opt, eq, attached = arg.partition("=")
        found = long_opts.get(normal(opt))
        if found is not None:
            n = _takes(found)
            if eq and n:
                out.append(Given(found, (attached, *args[i:i + n - 1])))
                i += n - 1
            else:
                out.append(Given(found, tuple(args[i:i + n])))
                i += n
            continue
        if arg[:2] in prefixes:  # "--nope": unknown, never a cluster of short ones
            if ctx.ignore_unknown_options:
                out.append(Given(None, (arg,)))
            continue
        for j in range(1, len(arg)):  # -qv, -kVALUE: short options, clustered
            found = short_opts.get(normal(arg[0] + arg[j]))
            if found is None:
                break  # unknown: click reports it
            n = _takes(found)
            if not n:
                out.append(Given(found, ()))
            elif j + 1 < len(arg):  # the rest of the word is the first value
                out.append(Given(found, (arg[j + 1:], *args[i:i + n - 1])))
                i += n - 1
                break
            else:
                out.append(Given(found, tuple(args[i:i + n])))
                i += n
                break
    else:
        return out
    # "--", or the first positional without interspersed arguments
    out.extend(Given(None, (a,)) for a in args[i:])
    return out


def _split_opt(opt: str) -> tuple[str, str]:
    """``"--name"`` -> ``("--", "name")``, ``"+tls"`` -> ``("+", "tls")``
    (click's rule: a doubled first character is a two-character prefix)."""
    first = opt[:1]
    if first.isalnum():
        return "", opt
    if opt[1:2] == first:
        return opt[:2], opt[2:]
    return first, opt[1:]


def _takes(param: click.Option) -> int:
    """How many words an occurrence of ``param`` takes."""
    return 0 if param.is_flag or param.count else param.nargs


def args_in_order(ctx: click.Context) -> list[Given] | None:
    """The command line of ``ctx``'s command as :func:`walk_args` read it,
    or None when the command is not a :class:`DimsekitCommand`."""
    record = ctx.meta.get(_IN_ORDER)
    if record is None or record[0] is not ctx:
        return None
    return record[1]


def option(*decls: str, group: str, **kwargs: Any) -> Callable:
    """``click.option`` for a :class:`GroupedOption` under heading ``group``."""
    return click.option(*decls, cls=GroupedOption, group=group, **kwargs)


def _compose(*decorators: Callable) -> Callable:
    def apply(func: Callable) -> Callable:
        for deco in reversed(decorators):
            func = deco(func)
        return func

    return apply


def _collect(names: tuple[str, ...], into: str, build: Callable[..., Any]) -> Callable:
    """Wrap a callback: pop ``names`` from its kwargs, pass ``into=build(...)``."""

    def deco(func: Callable) -> Callable:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            picked = {name: kwargs.pop(name) for name in names}
            kwargs[into] = build(**picked)
            return func(*args, **kwargs)

        return wrapper

    return deco


# ---------------------------------------------------------------------------
# general
# ---------------------------------------------------------------------------

#: the libraries ``--version`` names after dimsekit (distribution names)
_VERSIONED = ("pydicom", "pynetdicom")


def version_lines() -> list[str]:
    """What ``--version`` prints: dimsekit first, then the libraries it runs
    on.  Versions come from installed metadata, so neither pydicom nor
    pynetdicom is imported; ``ssl`` tells which OpenSSL TLS uses."""
    import platform
    import ssl
    from importlib.metadata import PackageNotFoundError, version

    lines = [f"dimsekit {__version__}"]
    for dist in _VERSIONED:
        try:
            lines.append(f"{dist} {version(dist)}")
        except PackageNotFoundError:
            lines.append(f"{dist} not installed")
    lines.append(f"Python {platform.python_version()} ({platform.python_implementation()})")
    lines.append(ssl.OPENSSL_VERSION)
    return lines


def _print_version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    click.echo("\n".join(version_lines()))
    ctx.exit()


_FC = TypeVar("_FC", bound="Callable[..., Any] | click.Command")


def version_option(func: _FC) -> _FC:
    """``--version`` for a command or group: :func:`version_lines`, then exit."""
    return click.option("--version", is_flag=True, expose_value=False, is_eager=True,
                        callback=_print_version,
                        help="Show the version and exit.")(func)


general_options = _compose(
    version_option,
    # expanded and printed by the host before click parses (dimsekit.cli.argv)
    option("--arguments", group="general", is_flag=True, expose_value=False,
           help="print expanded command line arguments"),
)


# ---------------------------------------------------------------------------
# logging
# ---------------------------------------------------------------------------


def _setup_logging_from(quiet: bool, verbose: bool, debug: bool,
                        log_level: str | None, log_config: str | None) -> None:
    setup_logging(resolve_level(quiet, verbose, debug, log_level), log_config)


def _logging_wrapper(func: Callable) -> Callable:
    names = ("quiet", "verbose", "debug", "log_level", "log_config")

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _setup_logging_from(**{name: kwargs.pop(name) for name in names})
        return func(*args, **kwargs)

    return wrapper


logging_options = _compose(
    option("-q", "--quiet", group="logging", is_flag=True,
           help="quiet mode, print no warnings and errors"),
    option("-v", "--verbose", group="logging", is_flag=True,
           help="verbose mode, print processing details"),
    option("-d", "--debug", group="logging", is_flag=True,
           help="debug mode, print debug information (and tracebacks)"),
    option("-ll", "--log-level", group="logging", metavar="LEVEL",
           help="use level LEVEL for the logger: fatal, critical, error, "
                "warn, warning, info, debug, trace"),
    option("-lc", "--log-config", group="logging", metavar="FILE",
           type=click.Path(exists=True, dir_okay=False),
           help="use logging config FILE (Python logging.config.fileConfig format)"),
    _logging_wrapper,
)


# ---------------------------------------------------------------------------
# association / network
# ---------------------------------------------------------------------------

# AssociationSettings and TRANSFER_SYNTAX_PROPOSALS are the library's
# (dimsekit.association); the options below fill them in.


# ---------------------------------------------------------------------------
# TLS (DCMTK's option set; the work is done by dimsekit.tls)
# ---------------------------------------------------------------------------


def last_given(ctx: click.Context, names: tuple[str, ...]) -> str | None:
    """Which of the options ``names`` (parameter names) came last, if any.

    DCMTK resolves mutually exclusive options rightmost-wins.  Options that
    share one click name get that from click (>= 8.2), but only when they
    take the same number of values; ``-tls`` / ``+tls KEY CERT`` / ``+tla``
    do not, so the command line is read in order (:func:`args_in_order`;
    a command that is not a :class:`DimsekitCommand` has no order noted).
    """
    seen = [g.param.name for g in args_in_order(ctx) or ()
            if g.param is not None and g.param.name in names]
    if seen:
        return seen[-1]
    # none on the command line (an environment variable, a default map), or
    # no order noted: the first of names given wins
    for name in names:
        if _given(ctx, name):
            return name
    return None


def _given(ctx: click.Context, name: str) -> bool:
    from click.core import ParameterSource

    source = ctx.get_parameter_source(name)
    return source is not None and source not in (ParameterSource.DEFAULT,)


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


# ---------------------------------------------------------------------------
# key overrides
# ---------------------------------------------------------------------------

key_options = _compose(
    option("-k", "--key", "keys", group="override matching keys", multiple=True,
           metavar="KEY[=VALUE]",
           help="override matching key: (gggg,eeee)=VALUE, gggg,eeee=VALUE, "
                "Keyword=VALUE or a path such as "
                "ScheduledProcedureStepSequence[0].Modality=CT; no value: "
                "return key"),
)
