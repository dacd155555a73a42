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
the callback one ``association`` argument (:class:`AssociationSettings`); ``key_options`` hands it ``keys`` (the raw
``-k`` strings; parse them with :func:`dimsekit.keys.parse_keys`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Callable

import click

from dimsekit import __version__
from dimsekit.logs import resolve_level, setup_logging


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
    """A click command whose help lists options under their group headings."""

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

general_options = _compose(
    click.version_option(__version__, "--version", prog_name="dimsekit",
                         message="%(prog)s %(version)s"),
    # expanded and printed by the host before click parses (dimsekit.argv)
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

#: transfer-syntax proposal orders, by option value (DCMTK's -x= -xe -xb -xi -xd)
TRANSFER_SYNTAX_PROPOSALS = {
    # local byte order first: every supported machine is little endian
    "local": ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2"),
    "little": ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2"),
    "big": ("1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2"),
    "implicit": ("1.2.840.10008.1.2",),
    "deflated": ("1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.1",
                 "1.2.840.10008.1.2.2", "1.2.840.10008.1.2"),
}


@dataclass
class AssociationSettings:
    """Everything the shared network options say about one association."""

    peer: str = ""
    port: int = 104
    calling_aet: str = "FINDSCU"
    called_aet: str = "ANY-SCP"
    transfer_syntaxes: tuple[str, ...] = TRANSFER_SYNTAX_PROPOSALS["local"]
    connect_timeout: float | None = 30.0
    acse_timeout: float | None = 30.0
    dimse_timeout: float | None = 30.0
    network_timeout: float | None = 30.0
    max_pdu: int = 16384
    abort: bool = False
    new_vr: bool = True
    tls: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


# TLS: the slot every command gets through association_options; the TLS
# work fills it (DESIGN.md "TLS").
_TLS_OPTIONS = (
    option("-tls", "--disable-tls", "tls", group="transport protocol stack",
           flag_value="none", default="none",
           help="use normal TCP/IP connection (default)"),
)


def _timeout(value: float | None) -> float | None:
    # 0 or negative: unlimited (DCMTK's default for -to/-td)
    return None if value is None or value <= 0 else value


def _build_association(calling_aet, called_aet, transfer_syntax, connect_timeout,
                       acse_timeout, dimse_timeout, network_timeout, max_pdu,
                       abort, new_vr, tls, **_: Any) -> AssociationSettings:
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
        new_vr=new_vr,
        tls=None if tls == "none" else tls,
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
        option("+u", "--enable-new-vr", "new_vr", group="value representations",
               flag_value=True, default=True,
               help="enable support for new VRs (UN/UT) (default)"),
        option("-u", "--disable-new-vr", "new_vr", group="value representations",
               flag_value=False, help="disable support for new VRs, convert to OB"),
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
               help="timeout for connection requests (0: unlimited)"),
        option("-ta", "--acse-timeout", group=net, type=float, default=30.0,
               show_default=True, metavar="SECONDS", help="timeout for ACSE messages"),
        option("-td", "--dimse-timeout", group=net, type=float, default=30.0,
               show_default=True, metavar="SECONDS",
               help="timeout for DIMSE messages (0: unlimited)"),
        option("-tn", "--network-timeout", group=net, type=float, default=30.0,
               show_default=True, metavar="SECONDS",
               help="timeout for the network (idle connection)"),
        option("-pdu", "--max-pdu", group=net, type=click.IntRange(4096, 131072),
               default=16384, show_default=True, metavar="BYTES",
               help="set max receive pdu to BYTES (4096..131072)"),
        option("--abort", group=net, is_flag=True,
               help="abort association instead of releasing it"),
        *_TLS_OPTIONS,
        _collect(("calling_aet", "called_aet", "new_vr", "transfer_syntax",
                  "connect_timeout", "acse_timeout", "dimse_timeout",
                  "network_timeout", "max_pdu", "abort", "tls"),
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
