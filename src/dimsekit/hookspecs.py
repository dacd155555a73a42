"""Every dimsekit hook, in one module.

All hooks are prefixed ``dimsekit_``.  Each returns an iterable of records
(see :mod:`dimsekit.records`) or None; the host collects the results of all
plugins (no first-result-wins hooks).  Implement them with
:data:`dimsekit.api.hookimpl`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:  # pragma: no cover
    import click

    from dimsekit.cli.host import Host
    from dimsekit.records import ExtendedNegotiationFlag, InformationModel, Writer

hookspec = pluggy.HookspecMarker("dimsekit")


# ---------------------------------------------------------------------------
# commands
# ---------------------------------------------------------------------------


@hookspec
def dimsekit_commands(host: Host) -> Iterable[click.Command] | None:
    """Contribute top-level commands (``dimsekit NAME``).

    Called once, when the CLI is built (also for ``dimsekit --help``), after
    every plugin is registered.  ``host`` gives access to what other plugins
    contribute (``host.information_models(service)``,
    ``host.extended_negotiation_flags(service)``, ``host.writers(service)``).
    Return click commands; build them cheaply (no pydicom/pynetdicom import
    here: import inside the command callback).  Two plugins returning the
    same command name is an error naming both.
    """


@hookspec
def dimsekit_add_options(command: str, host: Host) -> Iterable[Any] | None:
    """Contribute options to another plugin's command (pytest's
    ``pytest_addoption``, tox's ``tox_add_option``).

    Called once per command when the CLI is built, ``command`` being its
    name (``"find"``, ``"move"``, ...).  Return option decorators, as made
    by :func:`dimsekit.api.option` (or ``click.option``); each is added to
    the command.  The command's own callback never sees their values: the
    host takes them out and hands them to :func:`dimsekit_before_command`
    before the command runs; :func:`dimsekit.api.added_options` reads them
    during the run.  An option spelled like one the command has already is
    an error naming the plugin.
    """


@hookspec
def dimsekit_before_command(command: str, options: dict[str, Any]) -> None:
    """Called when ``command`` is about to run, with the values of the
    options plugins added to it (:func:`dimsekit_add_options`; parameter
    name -> value, default values included).  Returns nothing; raise a
    :class:`~dimsekit.errors.UsageError` to refuse the command line."""


# ---------------------------------------------------------------------------
# contributions that commands consume
# ---------------------------------------------------------------------------


@hookspec
def dimsekit_information_models() -> Iterable[InformationModel] | None:
    """Contribute information models (name, SOP class UID, service, flags).

    Called lazily, the first time a command asks the host for models.
    Returns :class:`~dimsekit.records.InformationModel` records; a model's
    flags become options of the commands of its ``service``.
    """


@hookspec
def dimsekit_extended_negotiation_flags() -> Iterable[ExtendedNegotiationFlag] | None:
    """Contribute SOP Class Extended Negotiation flags (``--relational-query``...).

    Called lazily, when a command of the flag's ``service`` is built.
    Returns :class:`~dimsekit.records.ExtendedNegotiationFlag` records; each
    becomes a ``--NAME`` option and one byte of the negotiation item.
    """


@hookspec
def dimsekit_writers() -> Iterable[Writer] | None:
    """Contribute output formats (``--format NAME``).

    Called lazily, when a command of the writer's ``service`` is built.
    Returns :class:`~dimsekit.records.Writer` records; names must be unique
    within a service.
    """
