"""Running C-FIND: prepare every query before the network, then send them
on one association and turn the outcome into the documented exit code."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dimsekit.api import (
    CANCEL_GRACE,
    SERVICE,
    AssociationSettings,
    DimsekitError,
    Exchange,
    ExitCode,
    FindRun,
    Host,
    PeerFailure,
    Query,
    Response,
    UsageError,
    Writer,
    application_information,
    apply_keys,
    finish_query,
    get_logger,
    negotiation_items,
    open_association,
    parse_keys,
    read_query_file,
    skipped_error,
)
from dimsekit.plugins.find.csvfmt import return_keys_for_columns
from dimsekit.plugins.find.sinks import Sinks

log = get_logger("find")

#: seconds the peer gets to end a query after Ctrl-C sent C-CANCEL
INTERRUPT_GRACE = CANCEL_GRACE

__all__ = ["FindRequest", "Query", "Response", "run_find"]


@dataclass
class FindRequest:
    settings: AssociationSettings
    queries: list[Query]
    writer: Writer
    repeat: int = 1
    cancel_after: int | None = None
    ext_neg: dict[str, bytes] = field(default_factory=dict)
    output: str | None = None
    show_responses: bool = True
    writer_options: dict[str, Any] = field(default_factory=dict)
    extract: list[tuple[str, str]] = field(default_factory=list)  # (suffix, dir)
    extract_xml_single: str | None = None
    extract_limit: int | None = None
    overwrite: bool = False

    @classmethod
    def from_cli(cls, *, host: Host, query_files: list[str], peer: str, port: int,
                 association: AssociationSettings, keys: tuple[str, ...],
                 level: str | None, model: str | None, repeat: int,
                 cancel: int | None, fmt: str, output: str | None, extract: bool,
                 output_directory: str, columns: str | None = None,
                 charset: str | None = None, extract_xml: bool = False,
                 extract_xml_single: str | None = None, limit_output: int | None = None,
                 overwrite: bool = False, show_responses: bool = True,
                 correction: bool = False, **rest: Any) -> FindRequest:
        """Everything that can be wrong with the command line is found here,
        before any network traffic (exit 2)."""
        association.peer, association.port = peer, port
        overrides = parse_keys(([f"QueryRetrieveLevel={level.upper()}"] if level else [])
                               + list(keys))
        models = {m.name: m for m in host.information_models(SERVICE)}
        if model is not None and model not in models:
            raise UsageError(f"unknown information model {model!r}")

        sources = [(path, read_query_file(path)) for path in query_files]
        if not sources:
            if not overrides:
                raise UsageError("no query: give -k keys and/or query files")
            from pydicom import Dataset

            sources = [("-k", Dataset())]
        queries = []
        for label, ds in sources:
            apply_keys(ds, overrides)
            if fmt == "csv" and columns:
                # a --columns key the query lacks becomes a return key
                apply_keys(ds, return_keys_for_columns(columns, ds))
            queries.append(finish_query(
                label, ds, overrides, models=models, charset=charset,
                model=None if model is None else models[model],
                new_vr=association.new_vr))

        requested = {k[4:].replace("_", "-") for k, v in rest.items()
                     if k.startswith("ext_") and v}
        ext_neg: dict[str, bytes] = {}
        flags = host.extended_negotiation_flags(SERVICE)
        for m in {q.model.name: q.model for q in queries}.values():
            info, skipped = application_information(flags, m.name, requested)
            for name in skipped:
                log.warning("--%s does not apply to the %s model; not requested", name,
                            m.name)
            if info:
                ext_neg[m.sop_class_uid] = info

        writers = {w.name: w for w in host.writers(SERVICE)}
        if fmt not in writers:
            raise UsageError(f"unknown output format {fmt!r}")
        if correction:
            log.info("+dc: pydicom reads responses leniently; nothing more to correct")
        writer_options = {"columns": columns, "keys": overrides,
                          "queries": [q.identifier for q in queries]}
        if columns:
            from dimsekit.plugins.find.csvfmt import columns_from_option

            columns_from_option(columns)  # a bad column is a usage error now
        extract_to = [(suffix, output_directory) for suffix, on in
                      ((".dcm", extract), (".xml", extract_xml)) if on]
        return cls(
            settings=association, queries=queries, writer=writers[fmt], repeat=repeat,
            cancel_after=cancel, ext_neg=ext_neg, output=output,
            show_responses=show_responses, writer_options=writer_options,
            extract=extract_to, extract_xml_single=extract_xml_single,
            extract_limit=limit_output, overwrite=overwrite,
        )

class _Runner:
    """Sends the queries on one association, each identifier encoded once,
    and hands every pending response to the sinks as it arrives."""

    def __init__(self, request: FindRequest, assoc: Any, sinks: Sinks):
        self.request = request
        self.assoc = assoc
        self.sinks = sinks
        self.failures: list[tuple[str, Any]] = []
        self.skipped: list[str] = []

    def run(self) -> None:
        from dimsekit.plugins.find.dump import format_dataset

        with Exchange(self.assoc, idle=self.sinks.flush) as exchange:
            run = FindRun(self.assoc, exchange, show=format_dataset,
                          dimse_timeout=self.request.settings.dimse_timeout,
                          cancel_grace=INTERRUPT_GRACE)
            try:
                for index, query in enumerate(self.request.queries, 1):
                    for _ in range(self.request.repeat):
                        self.one(run, index, query)
            finally:
                self.skipped = run.skipped

    def one(self, run: FindRun, index: int, query: Query) -> None:
        """One C-FIND request: every response to the sinks."""
        responses = run.responses(query, index, cancel_after=self.request.cancel_after)
        try:
            for ds, info in responses:
                try:
                    self.sinks.write(ds, info)
                except (DimsekitError, OSError):
                    raise
                except Exception as exc:  # noqa: BLE001 - a value no writer can format
                    run.unwritten(query, info.number,
                                  f"{type(exc).__name__}: {exc}".splitlines()[0])
        finally:
            responses.close()
        final = run.final
        if final is not None and not final.ok:
            self.failures.append((f"query {query.label}: peer answered {final.text}", final))


def run_find(request: FindRequest) -> int:
    """Send every query; return the exit code (or raise a DimsekitError).

    Changes no process-wide state (the CLI tunes its own process first:
    :func:`dimsekit.plugins.find.command.tune_process`)."""
    items = negotiation_items(request.ext_neg)
    uids = list(dict.fromkeys(q.model.sop_class_uid for q in request.queries))

    sinks = Sinks(request)
    completed = False
    try:
        with open_association(request.settings, uids, ext_neg=items) as assoc:
            runner = _Runner(request, assoc, sinks)
            runner.run()
        completed = True
    finally:
        sinks.end(completed=completed)
    if runner.skipped:
        for failure, _ in runner.failures:
            log.error(failure)
        raise skipped_error(runner.skipped, sinks.count)
    for failure, _ in runner.failures[:-1]:
        log.error(failure)
    if runner.failures:
        text, final = runner.failures[-1]
        raise PeerFailure(text, status=final.status, error_comment=final.error_comment)
    return ExitCode.OK
