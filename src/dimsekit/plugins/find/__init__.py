"""The find plugin: ``dimsekit find``, a C-FIND SCU.

Registered through the ``dimsekit`` entry-point group like any third-party
plugin, and written only against :mod:`dimsekit.api`.
"""

from __future__ import annotations

from dimsekit.api import hookimpl


@hookimpl
def dimsekit_commands(host):
    from dimsekit.plugins.find.command import build_find_command

    return [build_find_command(host)]


@hookimpl
def dimsekit_information_models():
    from dimsekit.api import MODELS

    return MODELS


@hookimpl
def dimsekit_extended_negotiation_flags():
    from dimsekit.api import FLAGS

    return FLAGS


@hookimpl
def dimsekit_writers():
    from dimsekit.plugins.find.writers import WRITERS

    return WRITERS
