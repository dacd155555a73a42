"""The ``echo`` click command: the host's shared options plus ``--repeat``.

Logging (``-q -v -d -ll -lc``), the association options (AE titles,
transfer syntaxes, timeouts, ``--abort``, TLS) and ``--version`` /
``--arguments`` come from the host's option groups, so ``echo`` spells them
exactly as ``find`` does.  Nothing heavy is imported here.
"""

from __future__ import annotations

import click

from dimsekit.api import (
    DimsekitCommand,
    association_options,
    general_options,
    logging_options,
    option,
    peer_arguments,
)

#: DCMTK echoscu's default calling AE title
DEFAULT_CALLING_AET = "ECHOSCU"


def build_echo_command() -> click.Command:
    """``dimsekit echo [OPTIONS] PEER PORT``."""

    @click.command("echo", cls=DimsekitCommand, context_settings={
        "help_option_names": ["-h", "--help"], "max_content_width": 100})
    @general_options
    @logging_options
    @association_options(DEFAULT_CALLING_AET)
    @option("--repeat", group="network", type=click.IntRange(min=1), default=1,
            show_default=True, metavar="N",
            help="send N C-ECHO requests on the one association")
    @peer_arguments
    def echo(peer: str, port: int, association, repeat: int) -> int:
        """C-ECHO SCU: verify the DICOM connection to PEER PORT.

        Exit status: 0 every C-ECHO answered Success, 1 the peer answered a
        failure status, 2 usage error, 3 no association (refused, rejected,
        Verification not accepted, ...), 4 association aborted or timed
        out mid-way.
        """
        from dimsekit_echo.run import run_echo

        association.peer, association.port = peer, port
        return run_echo(association, repeat)

    return echo
