"""The ``move`` and ``get`` click commands, in DCMTK movescu's and getscu's
spellings.

Logging, the association options (AE titles, transfer syntaxes, timeouts,
``--abort``, TLS), ``-k`` and ``--version`` / ``--arguments`` come from the
host's option groups; ``-P/-S/-O`` are made from the information models
contributed for each service.  Nothing heavy is imported here.
"""

from __future__ import annotations

from typing import Any

import click

from dimsekit.api import (
    DimsekitCommand,
    Host,
    association_options,
    general_options,
    key_options,
    logging_options,
    model_options,
    negotiation_options,
    option,
    peer_arguments,
)

#: DCMTK's default calling AE titles
DEFAULT_CALLING_AET = {"move": "MOVESCU", "get": "GETSCU"}
_DOC = {
    "move": """C-MOVE SCU: ask PEER PORT to send what the query matches to an AE.

    The destination is -aem AETITLE (default: our own calling AE title); with
    +P N, dimsekit listens on port N for the instances itself and writes them
    under -od DIR, each file complete or absent, named SOPInstanceUID.dcm.
    Exit status: 0 every sub-operation completed, 1 the peer answered a
    failure or some sub-operations failed or warned, 2 usage error, 3 no
    association, 4 association lost mid-way, 5 instances could not be written.
    """,
    "get": """C-GET SCU: retrieve what the query matches from PEER PORT.

    The instances come back on the same association (every storage SOP
    class is proposed with the SCP role) and are written under -od DIR, each
    file complete or absent, named SOPInstanceUID.dcm.  Exit status: 0 every
    sub-operation completed, 1 the peer answered a failure or some
    sub-operations failed or warned, 2 usage error, 3 no association, 4
    association lost mid-way, 5 instances could not be written.
    """,
}


def build_command(host: Host, service: str) -> click.Command:
    """``dimsekit move|get [OPTIONS] PEER PORT [QUERY_FILE]...``."""
    decorators: list[Any] = [
        click.command(service, cls=DimsekitCommand, help=_DOC[service], context_settings={
            "help_option_names": ["-h", "--help"], "max_content_width": 100}),
        general_options,
        logging_options,
        key_options,
        option("-L", "--level", group="query", metavar="LEVEL",
               type=click.Choice(["PATIENT", "STUDY", "SERIES", "IMAGE"],
                                 case_sensitive=False),
               help="set QueryRetrieveLevel (PATIENT, STUDY, SERIES or IMAGE)"),
        option("--charset", group="query", metavar="TERM",
               help="Specific Character Set of the query (default: none if ASCII, "
                    "else the smallest standard set that encodes every value)"),
        model_options(host, service, group="retrieve information model", default="patient"),
        association_options(DEFAULT_CALLING_AET[service]),
    ]
    if service == "move":
        decorators += [
            option("-aem", "--move", "destination", group="application entity titles",
                   metavar="AETITLE",
                   help="move destination AE title (default: the calling AE title)"),
            option("+P", "--port", "listen_port", group="port for incoming associations",
                   type=click.IntRange(1, 65535), metavar="N",
                   help="listen on port N for the instances moved to us (default: "
                        "no port: the destination is another AE)"),
            option("--no-port", "listen_port", group="port for incoming associations",
                   flag_value=0, help="no port for incoming associations (default)"),
        ]
    decorators += [
        option("--dry-run", group="flow", is_flag=True,
               help="parse, check and build everything, then print the identifiers that "
                    "would be sent (DICOM JSON, one a line) and, on stderr, where they "
                    "would go; no network"),
        negotiation_options(host, service),
        option("-od", "--output-directory", group="output", metavar="DIR", default=".",
               show_default=True, help="write received instances to DIR (created if "
                                       "missing)"),
        peer_arguments,
        click.argument("query_files", nargs=-1, metavar="[QUERY_FILE]..."),
    ]

    def command(peer: str, port: int, association: Any, **kwargs: Any) -> int:
        from dimsekit_move.run import RetrieveRequest, run_retrieve

        association.peer, association.port = peer, port
        return run_retrieve(RetrieveRequest.from_cli(host, service, association, **kwargs))

    built: Any = command
    for deco in reversed(decorators):
        built = deco(built)
    assert isinstance(built, click.Command)
    return built
