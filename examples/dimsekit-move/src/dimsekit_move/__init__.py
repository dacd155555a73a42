"""dimsekit-move: ``dimsekit move`` (C-MOVE) and ``dimsekit get`` (C-GET).

A third-party dimsekit plugin, installed as its own distribution and found
through the ``dimsekit`` entry-point group.  It imports nothing from
dimsekit but :mod:`dimsekit.api` and nothing from pynetdicom.  This module
stays light: the commands are built without importing pydicom or
pynetdicom (``dimsekit --help`` calls the hooks below).
"""

from __future__ import annotations

from dimsekit.api import hookimpl

__version__ = "0.1.0"


@hookimpl
def dimsekit_commands(host):
    """The ``move`` and ``get`` commands."""
    from dimsekit_move.command import build_command

    return [build_command(host, "move"), build_command(host, "get")]


@hookimpl
def dimsekit_information_models():
    """Patient root, study root and patient/study only, for C-MOVE and C-GET
    (they become -P/-S/-O of each command)."""
    from dimsekit.api import GET_MODELS, MOVE_MODELS

    return [*MOVE_MODELS, *GET_MODELS]
