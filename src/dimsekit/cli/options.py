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


__all__ = [
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
