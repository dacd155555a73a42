"""Running C-MOVE and C-GET: every query prepared before the network, sent
one after another on one association, the outcome turned into the
documented exit code.

Exit status (dimsekit's contract): 0 when every query ended Success with no
failed or warning sub-operation; 1 when the peer answered a failure, or
sub-operations failed or warned (every query is still sent); 2 usage
error; 3 no association; 4 association lost or timed out mid-way (the
remaining queries are not sent); 5 a received instance could not be
written.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass, field
from typing import Any

import click

from dimsekit.api import (
    AssociationSettings,
    ExitCode,
    Host,
    InstanceWriter,
    PeerFailure,
    Query,
    RetrieveStatus,
    StoreServer,
    UsageError,
    describe_status,
    get_logger,
    negotiation_for,
    negotiation_items,
    open_association,
    prepare_queries,
    requested_flags,
    retrieve,
    retrieve_contexts,
    status_table,
)

log = get_logger("move")


@dataclass
class RetrieveRequest:
    """A checked command line: what to send, where, and where to write."""

    service: str  # "move" or "get"
    settings: AssociationSettings
    queries: list[Query]
    directory: str
    destination: str | None = None
    listen_port: int | None = None
    ext_neg: dict[str, bytes] = field(default_factory=dict)
    #: --dry-run: say what would be sent, send nothing
    dry_run: bool = False

    @classmethod
    def from_cli(cls, host: Host, service: str, association: AssociationSettings, *,
                 keys: tuple[str, ...], query_files: tuple[str, ...], model: str,
                 level: str | None, charset: str | None, output_directory: str,
                 destination: str | None = None, listen_port: int | None = None,
                 dry_run: bool = False, **rest: Any) -> RetrieveRequest:
        """Everything wrong with the command line is found here, before any
        network traffic (exit 2)."""
        models = host.information_models(service)
        queries = prepare_queries(query_files, keys, models=models, model=model,
                                  level=level, charset=charset, new_vr=association.new_vr)
        for query in queries:
            if "QueryRetrieveLevel" not in query.identifier:
                raise UsageError(f"query {query.label}: a C-{service.upper()} needs "
                                 f"QueryRetrieveLevel (-k QueryRetrieveLevel=STUDY or -L)")
        ext_neg, warnings = negotiation_for(host.extended_negotiation_flags(service),
                                            [q.model for q in queries], requested_flags(rest))
        for warning in warnings:
            log.warning("%s", warning)
        return cls(service=service, settings=association, queries=queries,
                   directory=output_directory,
                   destination=(destination or association.calling_aet)
                   if service == "move" else None,
                   listen_port=listen_port or None, ext_neg=ext_neg, dry_run=dry_run)

    @property
    def receives(self) -> bool:
        """Whether instances come to us: always for C-GET, with +P for C-MOVE."""
        return self.service == "get" or self.listen_port is not None


def _receiver(request: RetrieveRequest, writer: InstanceWriter) -> Any:
    """The storage SCP a C-MOVE to ourselves needs, or nothing."""
    if request.service != "move" or request.listen_port is None:
        return contextlib.nullcontext()
    return StoreServer.like(request.settings, request.destination or "", request.listen_port,
                            writer)


def _name(request: RetrieveRequest, query: Query) -> str:
    """``C-MOVE`` for the -k query, ``C-MOVE FILE`` for a query file's."""
    label = "" if query.label == "-k" else f" {query.label}"
    return f"C-{request.service.upper()}{label}"


def _outcome(request: RetrieveRequest, query: Query, final: RetrieveStatus) -> str | None:
    """What went wrong with one query, in one line, or None."""
    name = _name(request, query)
    text = describe_status(final.status, status_table(request.service))
    counts = final.counts()
    if final.category not in ("Success", "Warning"):
        why = f"; {final.error_comment}" if final.error_comment else ""
        return f"{name}: peer answered {text}{why} ({counts})"
    if final.category == "Warning" or final.failed or final.warning:
        failed = (f"; failed: {', '.join(final.failed_instances[:3])}"
                  f"{', ...' if len(final.failed_instances) > 3 else ''}"
                  if final.failed_instances else "")
        return f"{name}: sub-operations failed or warned: {counts} ({text}){failed}"
    return None


def _contexts(request: RetrieveRequest) -> list[Any]:
    """One context per model, then (C-GET) one set of storage contexts: an
    association has room for 128."""
    models = list({q.model.name: q.model for q in request.queries}.values())
    contexts = {cx.abstract_syntax: cx for m in models
                for cx in retrieve_contexts(request.service, m)}
    return sorted(contexts.values(), key=lambda cx: cx.scp_role is not None)[:128]


def dry_run(request: RetrieveRequest) -> int:
    """``--dry-run``: each identifier on stdout (DICOM JSON, one a line);
    where it would go, the models and the contexts on stderr; no network."""
    s = request.settings
    if request.receives and os.path.exists(request.directory) and not os.path.isdir(
            request.directory):
        raise UsageError(f"cannot write to {request.directory}: not a directory")
    say = log.isEnabledFor(logging.WARNING)
    lines = [f"nothing is sent; the association would be requested from {s.peer}:{s.port} "
             f"({s.calling_aet} -> {s.called_aet}){' over TLS' if s.tls else ''}"]
    for query in request.queries:
        click.echo(query.identifier.to_json())
        lines.append(f"{_name(request, query)}: {query.model.help.replace('use ', '')}")
    from pydicom.uid import UID

    contexts = _contexts(request)
    storage = [cx for cx in contexts if cx.scp_role]
    models = [UID(cx.abstract_syntax).name for cx in contexts if not cx.scp_role]
    lines.append(f"would propose {', '.join(models)}"
                 + (f" and {len(storage)} storage SOP classes with the SCP role"
                    if storage else ""))
    if request.service == "move":
        where = (f"to ourselves, listening on port {request.listen_port}"
                 if request.listen_port else "to another AE")
        lines.append(f"would move to {request.destination} ({where})")
    if request.receives:
        lines.append(f"would write what arrives under {request.directory}")
    if say:
        for line in lines:
            click.echo(f"dry-run: {line}", err=True)
    return ExitCode.OK


def run_retrieve(request: RetrieveRequest) -> int:
    """Send every query; return the exit code or raise."""
    if request.dry_run:
        return dry_run(request)
    writer = InstanceWriter(request.directory)
    if request.receives:
        writer.prepare()
    ordered = _contexts(request)
    failures: list[str] = []
    with _receiver(request, writer), open_association(
            request.settings, contexts=ordered,
            ext_neg=negotiation_items(request.ext_neg),
            store=writer if request.service == "get" else None) as assoc:
        for number, query in enumerate(request.queries, 1):
            final = None
            # each pending response's counts are in pynetdicom's -v log
            for status in retrieve(assoc, request.service, query, query.model,
                                   destination=request.destination, message_id=number):
                final = status
            assert final is not None  # retrieve() raises when none comes
            problem = _outcome(request, query, final)
            if problem:
                failures.append(problem)
            elif log.isEnabledFor(logging.WARNING):
                received = (f"; {writer.received} file{'s' * (writer.received != 1)} in "
                            f"{request.directory}" if request.receives else "")
                click.echo(f"I: {_name(request, query)}: {final.counts()}{received}",
                           err=True)
    writer.check()
    for failure in failures[:-1]:
        log.error("%s", failure)
    if failures:
        raise PeerFailure(failures[-1])
    return ExitCode.OK
