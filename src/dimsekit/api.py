"""dimsekit's public API for plugins: import from here and nowhere else.

A plugin is a module (or object) with hook implementations, declared in
its distribution's ``pyproject.toml``::

    [project.entry-points.dimsekit]
    echo = "dimsekit_echo"

and implements hooks from :mod:`dimsekit.hookspecs` with :data:`hookimpl`::

    @hookimpl
    def dimsekit_commands(host):
        return [echo_command]

What a command gets from the host:

- option groups: :func:`general_options`, :func:`logging_options`,
  :func:`association_options` (network, AE titles, transfer syntaxes, TLS),
  :func:`key_options`; :class:`DimsekitCommand` groups ``--help`` by heading,
  :func:`option` adds an option under a heading of the plugin's choosing;
- :func:`open_association`: the association, with one clear
  :class:`AssociationError` (exit 3) for every way of not getting one;
- :class:`Exchange`: send DIMSE requests on it and receive the responses
  as :class:`Message` (raw command elements, encoded data set) without
  pynetdicom's per-message overhead;
- :func:`parse_keys` / :func:`apply_keys` / :func:`build_identifier`: the
  whole ``-k`` grammar;
- :class:`ExitCode` and the exceptions that carry it (:class:`UsageError`,
  :class:`AssociationError`, :class:`IncompleteError`, :class:`PeerFailure`):
  raise them; the host prints one line and exits with the code;
- records for contributions: :class:`InformationModel`,
  :class:`ExtendedNegotiationFlag`, :class:`Writer`;
- :func:`describe_status` / :func:`status_category`: DIMSE statuses in words;
- :func:`get_logger` for a logger that follows ``-q/-v/-d/-ll/-lc``;
- :func:`discard_stdout` once stdout's reader has gone (``| head``) and
  the command goes on for its other outputs.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import pluggy

from dimsekit.association import (
    accepted_context,
    accepted_negotiation,
    open_association,
    presentation_contexts,
    transfer_syntax_name,
    tune_pynetdicom,
)
from dimsekit.cli.host import Host, added_options
from dimsekit.cli.logs import LOGGER_NAME
from dimsekit.cli.options import (
    AssociationSettings,
    DimsekitCommand,
    args_in_order,
    association_options,
    general_options,
    key_options,
    logging_options,
    model_options,
    negotiation_options,
    option,
    peer_arguments,
    requested_flags,
)
from dimsekit.errors import (
    AssociationError,
    DimsekitError,
    ExitCode,
    IncompleteError,
    Interrupted,
    OutputError,
    PeerFailure,
    UsageError,
)
from dimsekit.keys import (
    KeyOverride,
    apply_keys,
    build_identifier,
    element_holder,
    parse_key,
    parse_keys,
)
from dimsekit.records import (
    DatasetWriter,
    ExtendedNegotiationFlag,
    InformationModel,
    ResponseRecord,
    Writer,
    WriterOptions,
)
from dimsekit.status import category as status_category
from dimsekit.status import describe_status

#: marks hook implementations: ``@hookimpl def dimsekit_commands(host): ...``
hookimpl = pluggy.HookimplMarker("dimsekit")


#: names whose modules load on first use: importing the API (every
#: ``--help``, every command) does not pay for them
_LAZY = {"Exchange": "dimsekit.dimse", "Message": "dimsekit.dimse",
         "TLSSettings": "dimsekit.tls", "discard_stdout": "dimsekit.cli",
         **dict.fromkeys(("Request", "find_request", "move_request", "echo_request",
                          "COMMAND_FIELDS", "PRIORITY_LOW", "PRIORITY_MEDIUM",
                          "PRIORITY_HIGH"), "dimsekit.dimse"),
         **dict.fromkeys(("Decoder", "decoder", "sequence_item_splitter", "encode_identifier",
                          "original_encoding_reader"),
                         "dimsekit.qr.decode"),
         # C-FIND building blocks of the library (dimsekit.qr): the find
         # command is built on them; a Q/R API for plugins is issue 13's
         **dict.fromkeys(("FindRun", "Query", "Response", "Final", "CANCEL_GRACE",
                          "negotiation_items", "skipped_error"), "dimsekit.qr.find"),
         **dict.fromkeys(("SERVICE", "MODELS", "FLAGS", "infer_model",
                          "application_information"), "dimsekit.qr.models"),
         **dict.fromkeys(("read_query_file", "check_encodable", "choose_charset",
                          "downgrade_new_vrs", "finish_query", "prepare_queries",
                          "negotiation_for"), "dimsekit.qr.query"),
         "lint_query": "dimsekit.qr.lint",
         **dict.fromkeys(("MOVE", "GET", "MOVE_MODELS", "GET_MODELS", "PRIORITY",
                          "PresentationContext", "RetrieveStatus", "retrieve",
                          "retrieve_contexts", "status_table"), "dimsekit.qr.retrieve"),
         **dict.fromkeys(("ReceivedInstance", "InstanceWriter", "StoreServer",
                          "storage_sop_classes", "safe_file_name", "STORE_SUCCESS",
                          "STORE_OUT_OF_RESOURCES"), "dimsekit.storage"),
         **dict.fromkeys(("Batch", "Plan", "RowQuery", "Match", "RowEnd", "Summary",
                          "LEVELS", "UNIQUE_KEYS", "DEFAULT_LEVEL_KEYS", "level_of"),
                         "dimsekit.qr.batch"),
         **dict.fromkeys(("BatchFile", "Row", "RowBuilder", "PreparedRows", "add_row_element",
                          "ROW_CREATOR"), "dimsekit.qr.rows")}


if TYPE_CHECKING:  # pragma: no cover - what _LAZY loads, for type checkers
    from dimsekit.cli import discard_stdout
    from dimsekit.dimse import (
        COMMAND_FIELDS,
        PRIORITY_HIGH,
        PRIORITY_LOW,
        PRIORITY_MEDIUM,
        Exchange,
        Message,
        Request,
        echo_request,
        find_request,
        move_request,
    )
    from dimsekit.qr.batch import (
        DEFAULT_LEVEL_KEYS,
        LEVELS,
        UNIQUE_KEYS,
        Batch,
        Match,
        Plan,
        RowEnd,
        RowQuery,
        Summary,
        level_of,
    )
    from dimsekit.qr.decode import (
        Decoder,
        decoder,
        encode_identifier,
        original_encoding_reader,
        sequence_item_splitter,
    )
    from dimsekit.qr.find import (
        CANCEL_GRACE,
        Final,
        FindRun,
        Query,
        Response,
        negotiation_items,
        skipped_error,
    )
    from dimsekit.qr.lint import lint_query
    from dimsekit.qr.models import (
        FLAGS,
        MODELS,
        SERVICE,
        application_information,
        infer_model,
    )
    from dimsekit.qr.query import (
        check_encodable,
        choose_charset,
        downgrade_new_vrs,
        finish_query,
        negotiation_for,
        prepare_queries,
        read_query_file,
    )
    from dimsekit.qr.retrieve import (
        GET,
        GET_MODELS,
        MOVE,
        MOVE_MODELS,
        PRIORITY,
        PresentationContext,
        RetrieveStatus,
        retrieve,
        retrieve_contexts,
        status_table,
    )
    from dimsekit.qr.rows import (
        ROW_CREATOR,
        BatchFile,
        PreparedRows,
        Row,
        RowBuilder,
        add_row_element,
    )
    from dimsekit.storage import (
        STORE_OUT_OF_RESOURCES,
        STORE_SUCCESS,
        InstanceWriter,
        ReceivedInstance,
        StoreServer,
        safe_file_name,
        storage_sop_classes,
    )
    from dimsekit.tls import TLSSettings


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(_LAZY[name]), name)


def get_logger(plugin: str) -> logging.Logger:
    """The logger a plugin should use: ``dimsekit.<plugin>``."""
    return logging.getLogger(f"{LOGGER_NAME}.{plugin}")


__all__ = [
    "AssociationError",
    "AssociationSettings",
    "added_options",
    "DimsekitCommand",
    "DimsekitError",
    "Exchange",
    "ExitCode",
    "COMMAND_FIELDS",
    "PRIORITY_HIGH",
    "PRIORITY_LOW",
    "PRIORITY_MEDIUM",
    "Request",
    "echo_request",
    "find_request",
    "move_request",
    "Decoder",
    "decoder",
    "sequence_item_splitter",
    "encode_identifier",
    "original_encoding_reader",
    "accepted_context",
    "accepted_negotiation",
    "ExtendedNegotiationFlag",
    "Host",
    "IncompleteError",
    "InformationModel",
    "Interrupted",
    "OutputError",
    "KeyOverride",
    "Message",
    "PeerFailure",
    "TLSSettings",
    "UsageError",
    "Writer",
    "DatasetWriter",
    "ResponseRecord",
    "WriterOptions",
    "Batch",
    "BatchFile",
    "CANCEL_GRACE",
    "DEFAULT_LEVEL_KEYS",
    "FLAGS",
    "LEVELS",
    "Match",
    "Plan",
    "PreparedRows",
    "ROW_CREATOR",
    "Row",
    "RowBuilder",
    "RowEnd",
    "RowQuery",
    "Summary",
    "UNIQUE_KEYS",
    "add_row_element",
    "element_holder",
    "level_of",
    "Final",
    "FindRun",
    "MODELS",
    "Query",
    "Response",
    "SERVICE",
    "application_information",
    "check_encodable",
    "choose_charset",
    "downgrade_new_vrs",
    "finish_query",
    "infer_model",
    "negotiation_items",
    "read_query_file",
    "skipped_error",
    "prepare_queries",
    "negotiation_for",
    "lint_query",
    "model_options",
    "negotiation_options",
    "requested_flags",
    "peer_arguments",
    "GET",
    "GET_MODELS",
    "MOVE",
    "MOVE_MODELS",
    "PRIORITY",
    "PresentationContext",
    "RetrieveStatus",
    "retrieve",
    "retrieve_contexts",
    "status_table",
    "STORE_OUT_OF_RESOURCES",
    "STORE_SUCCESS",
    "InstanceWriter",
    "ReceivedInstance",
    "StoreServer",
    "safe_file_name",
    "storage_sop_classes",
    "apply_keys",
    "args_in_order",
    "association_options",
    "build_identifier",
    "describe_status",
    "discard_stdout",
    "general_options",
    "get_logger",
    "hookimpl",
    "key_options",
    "logging_options",
    "open_association",
    "option",
    "parse_key",
    "parse_keys",
    "presentation_contexts",
    "status_category",
    "transfer_syntax_name",
    "tune_pynetdicom",
]
