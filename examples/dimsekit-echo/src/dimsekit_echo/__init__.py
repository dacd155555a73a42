"""dimsekit-echo: ``dimsekit echo PEER PORT``, a C-ECHO (Verification) SCU.

A third-party dimsekit plugin, installed as its own distribution and found
through the ``dimsekit`` entry-point group.  It imports nothing from
dimsekit but :mod:`dimsekit.api`.  This module stays light: the command is
built without importing pydicom or pynetdicom (``dimsekit --help`` calls
the hook below).
"""

from __future__ import annotations

from dimsekit.api import hookimpl

__version__ = "0.1.0"


@hookimpl
def dimsekit_commands(host):
    """The ``echo`` command."""
    from dimsekit_echo.command import build_echo_command

    return [build_echo_command()]
