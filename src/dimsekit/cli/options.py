"""The option groups every command shares (the command class is in
:mod:`dimsekit.cli.command`, the network and TLS options in
:mod:`dimsekit.cli.network`).

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
from typing import Any, TypeVar

import click

from dimsekit import __version__
from dimsekit.association import AssociationSettings
from dimsekit.cli.command import (
    DimsekitCommand,
    Given,
    GroupedOption,
    _compose,
    args_in_order,
    last_given,
    option,
    walk_args,
)
from dimsekit.cli.logs import resolve_level, setup_logging
from dimsekit.cli.network import MAX_PDU_RANGE, MaxPDU, association_options

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


def plugin_version_lines(host: Any) -> list[str]:
    """One line a loaded plugin: ``plugin echo 0.1.0 (dimsekit-echo)``."""
    lines = []
    for info in host.plugins.values():
        if info.status != "loaded":
            continue
        dist = info.distribution
        from_dist = f" ({dist})" if dist and dist != info.name else ""
        lines.append(f"plugin {info.name} {info.version or 'unknown'}{from_dist}")
    return lines


def _print_version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    lines = version_lines()
    host = getattr(ctx.find_root().command, "host", None)
    if host is not None:
        lines += plugin_version_lines(host)
    click.echo("\n".join(lines))
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
# key overrides
# ---------------------------------------------------------------------------

def complete_keys(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    """Shell completion of ``-k``: the keywords of pydicom's dictionary
    (after a ``LEVEL:`` prefix too); nothing once a value is being typed."""
    from click.shell_completion import CompletionItem

    if "=" in incomplete or "(" in incomplete or "[" in incomplete:
        return []
    prefix, _, word = incomplete.rpartition(":")
    prefix = prefix + ":" if prefix else ""
    from pydicom.datadict import keyword_dict

    found = sorted(k for k in keyword_dict if k.startswith(word) and k)
    return [CompletionItem(prefix + k) for k in found[:500]]


def complete_peer_names(ctx: click.Context, param: click.Parameter,
                        incomplete: str) -> list[Any]:
    """Shell completion of PEER: the configured peers' names."""
    from click.shell_completion import CompletionItem

    from dimsekit.config import load_config
    from dimsekit.errors import DimsekitError

    try:
        peers = load_config().peers
    except DimsekitError:
        return []
    return [CompletionItem(name, help=f"{e.host}:{e.port}")
            for name, e in sorted(peers.items()) if name.startswith(incomplete)]


#: ``PEER PORT``, the arguments every network command starts with: PEER
#: completes to the configured peers' names, and a configured name stands
#: for both (``dimsekit find pacs -k ...``: docs/peers.md)
peer_arguments = _compose(
    click.argument("peer", shell_complete=complete_peer_names),
    click.argument("port", type=click.IntRange(1, 65535)),
)


key_options = _compose(
    option("-k", "--key", "keys", group="override matching keys", multiple=True,
           metavar="KEY[=VALUE]", shell_complete=complete_keys,
           help="override matching key: (gggg,eeee)=VALUE, gggg,eeee=VALUE, "
                "Keyword=VALUE or a path such as "
                "ScheduledProcedureStepSequence[0].Modality=CT; no value: "
                "return key"),
)


# ---------------------------------------------------------------------------
# options made from what plugins contribute
# ---------------------------------------------------------------------------


def model_options(host: Any, service: str, *, group: str = "query information model",
                  default: str | None = None) -> Callable[[_FC], _FC]:
    """One flag option per information model contributed for ``service``
    (``-P/--patient``, ``-S/--study``, ...): the callback gets ``model``,
    the chosen model's name, or ``default`` when none was given (None:
    infer it from QueryRetrieveLevel, see
    :func:`dimsekit.qr.query.prepare_queries`)."""
    models = host.information_models(service)
    chosen = {m.name for m in models}
    if default is not None and default not in chosen:
        raise ValueError(f"default model {default!r} is not one of {sorted(chosen)}")
    options = [
        option(*m.flags, "model", group=group, flag_value=m.name,
               help=m.help + (" (default)" if m.name == default else ""))
        for m in models
    ]

    def use_default(func: Callable) -> Callable:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if kwargs.get("model") is None:
                kwargs["model"] = default
            return func(*args, **kwargs)

        return wrapper

    return _compose(*options, use_default)


#: the prefix of the parameter names :func:`negotiation_options` gives
NEGOTIATION_PREFIX = "ext_"


def negotiation_options(host: Any, service: str, *,
                        group: str = "extended negotiation") -> Callable[[_FC], _FC]:
    """One ``--NAME`` flag per extended-negotiation flag contributed for
    ``service``; read what was asked for with :func:`requested_flags`."""
    return _compose(*[
        option(f"--{f.name}", NEGOTIATION_PREFIX + f.name.replace("-", "_"), group=group,
               is_flag=True, help=f.help)
        for f in host.extended_negotiation_flags(service)
    ])


def requested_flags(kwargs: dict[str, Any]) -> set[str]:
    """The extended-negotiation flag names given on the command line, taken
    out of a callback's ``kwargs`` (``ext_relational_query=True`` ->
    ``"relational-query"``)."""
    names = [k for k in kwargs if k.startswith(NEGOTIATION_PREFIX)]
    return {k[len(NEGOTIATION_PREFIX):].replace("_", "-")
            for k in names if kwargs.pop(k)}


__all__ = [
    "complete_keys",
    "complete_peer_names",
    "peer_arguments",
    "plugin_version_lines",
    "NEGOTIATION_PREFIX",
    "model_options",
    "negotiation_options",
    "requested_flags",
    "AssociationSettings",
    "DimsekitCommand",
    "Given",
    "GroupedOption",
    "MAX_PDU_RANGE",
    "MaxPDU",
    "args_in_order",
    "association_options",
    "general_options",
    "key_options",
    "last_given",
    "logging_options",
    "option",
    "version_lines",
    "version_option",
    "walk_args",
]
