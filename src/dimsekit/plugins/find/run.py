"""Running C-FIND: prepare every query before the network, then send them
on one association and turn the outcome into the documented exit code."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from dimsekit.api import (
    CANCEL_GRACE,
    DEFAULT_LEVEL_KEYS,
    SERVICE,
    UNIQUE_KEYS,
    AssociationError,
    AssociationSettings,
    Batch,
    BatchFile,
    DimsekitError,
    Exchange,
    ExitCode,
    FindRun,
    Host,
    IncompleteError,
    Interrupted,
    Match,
    PeerFailure,
    Plan,
    PreparedRows,
    Query,
    Response,
    RowBuilder,
    RowQuery,
    UsageError,
    Writer,
    WriterOptions,
    add_row_element,
    apply_keys,
    finish_query,
    get_logger,
    level_of,
    lint_query,
    negotiation_for,
    negotiation_items,
    open_association,
    parse_keys,
    prepare_queries,
    read_query_file,
    requested_flags,
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
    writer_options: WriterOptions = field(default_factory=lambda: WriterOptions())
    extract: list[tuple[str, str]] = field(default_factory=list)  # (suffix, dir)
    extract_xml_single: str | None = None
    extract_limit: int | None = None
    overwrite: bool = False
    #: batch, drill-down, parallel, retries, result caps: run as a Batch
    plan: Plan | None = None
    #: the rows of a --batch (or the queries, as rows, without one)
    rows: Any = None
    batch: bool = False
    #: --dry-run: say what would be sent, send nothing
    dry_run: bool = False
    #: the model was chosen with -P/-S/-O/-W/-U (not inferred)
    model_given: bool = False

    @classmethod
    def from_cli(cls, *, host: Host, query_files: list[str], peer: str, port: int,
                 association: AssociationSettings, keys: tuple[str, ...],
                 level: str | None, model: str | None, repeat: int,
                 cancel: int | None, fmt: str, output: str | None, extract: bool,
                 output_directory: str, columns: str | None = None,
                 charset: str | None = None, extract_xml: bool = False,
                 extract_xml_single: str | None = None, limit_output: int | None = None,
                 overwrite: bool = False, show_responses: bool = True,
                 correction: bool = False, batch: str | None = None, parallel: int = 1,
                 unordered: bool = False, drill_down: str | None = None, retry: int = 0,
                 retry_wait: float = 1.0, max_per_query: int | None = None,
                 split_on: str | None = None, strict: bool = False, count: bool = False,
                 dry_run: bool = False, **rest: Any) -> FindRequest:
        """Everything that can be wrong with the command line is found here,
        before any network traffic (exit 2)."""
        association.peer, association.port = peer, port
        plain_keys, level_keys = _level_keys(keys)
        overrides = parse_keys(([f"QueryRetrieveLevel={level.upper()}"] if level else [])
                               + plain_keys)
        models = {m.name: m for m in host.information_models(SERVICE)}
        if model is not None and model not in models:
            raise UsageError(f"unknown information model {model!r}")
        chosen = None if model is None else models[model]
        plan = None
        if (batch is not None or parallel > 1 or drill_down or retry or max_per_query
                or level_keys):
            if level_keys and not drill_down:
                raise UsageError(f"-k {next(iter(level_keys))}:KEY sets keys of drill-down "
                                 f"queries: give --drill-down")
            if repeat > 1:
                raise UsageError("--repeat cannot be combined with --batch, --parallel, "
                                 "--drill-down, --retry or --max-per-query")
            plan = Plan(parallel=parallel, ordered=not unordered,
                        drill_down=drill_down.upper() if drill_down else None,
                        level_keys=level_keys, retry=retry, retry_wait=retry_wait,
                        max_per_query=max_per_query, split_on=split_on,
                        cancel_after=cancel)

        def prepare(label: str, ds: Any, applied: list[Any], checked: bool = False,
                    builder: Any = None) -> Any:
            if fmt == "csv" and columns:
                # a --columns key the query lacks becomes a return key
                apply_keys(ds, return_keys_for_columns(columns, ds))
            return finish_query(label, ds, applied, models=models, charset=charset,
                                model=chosen, new_vr=association.new_vr, checked=checked,
                                builder=builder)

        rows: Any = None
        if batch is not None:
            if len(query_files) > 1:
                raise UsageError("--batch takes at most one query file (a template every "
                                 "row is applied to)")
            template = read_query_file(query_files[0]) if query_files else None
            batch_file = BatchFile(batch)
            builder = RowBuilder(template, overrides)

            def prepare_row(row: Any, checked: bool = False) -> Any:
                ds, applied = builder.identifier(row)
                query = prepare(row.label, ds, applied, checked, builder)
                if plan is not None and not checked:
                    plan.check(query)
                return query

            rows = PreparedRows(batch_file.rows, prepare_row).check()
            if not rows.count:
                raise UsageError(f"batch {batch_file.name}: no rows (a header row, then "
                                 f"one row per query)")
            queries = [rows.first]
            used = list(rows.models.values())
        else:
            queries = prepare_queries(
                query_files, plain_keys, models=models.values(), model=model, level=level,
                charset=charset, new_vr=association.new_vr,
                adjust=(lambda ds: apply_keys(ds, return_keys_for_columns(columns, ds)))
                if fmt == "csv" and columns else None)
            used = [q.model for q in queries]
            if plan is not None:
                rows = [RowQuery(n, q.label, q) for n, q in enumerate(queries, 1)]
        if plan is not None:
            for q in queries:
                plan.check(q)

        requested = requested_flags(rest)
        lint = [w for q in queries for w in lint_query(
            q, relational="relational-query" in requested)]
        if strict and lint:
            raise UsageError(f"{lint[0]} (--strict)")
        ext_neg, warnings = negotiation_for(host.extended_negotiation_flags(SERVICE), used,
                                            requested)
        for warning in [*lint, *warnings]:
            log.warning("%s", warning)

        writers = {w.name: w for w in host.writers(SERVICE)}
        if count:
            from dimsekit.plugins.find.writers import COUNT

            writers[COUNT.name] = COUNT
            fmt = COUNT.name
        if fmt not in writers:
            raise UsageError(f"unknown output format {fmt!r}")
        if correction:
            log.info("+dc: pydicom reads responses leniently; nothing more to correct")
        writer_options: WriterOptions = {"columns": columns, "keys": overrides,
                          "queries": [q.identifier for q in queries]
                          + _level_templates(plan, queries),
                          "batch": batch is not None,
                          "drill_down": bool(plan and plan.drill_down)}
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
            extract_limit=limit_output, overwrite=overwrite, plan=plan, rows=rows,
            batch=batch is not None, dry_run=dry_run, model_given=model is not None,
        )


_LEVEL_KEY = re.compile(r"\s*(PATIENT|STUDY|SERIES|IMAGE)\s*:(.*)\Z", re.IGNORECASE | re.DOTALL)


def _level_keys(keys: tuple[str, ...]) -> tuple[list[str], dict[str, list[Any]]]:
    """``-k SERIES:Modality=CT``: keys of the drill-down queries at a level,
    apart from the others."""
    plain: list[str] = []
    by_level: dict[str, list[str]] = {}
    for key in keys:
        m = _LEVEL_KEY.match(key)
        if m is None:
            plain.append(key)
        else:
            by_level.setdefault(m.group(1).upper(), []).append(m.group(2))
    return plain, {level: parse_keys(texts) for level, texts in by_level.items()}


def _level_templates(plan: Plan | None, queries: list[Query]) -> list[Any]:
    """What each drill-down level's queries ask for (for CSV's default
    columns): its unique keys and return keys."""
    if plan is None or not plan.drill_down or not queries:
        return []
    from pydicom import Dataset

    levels = queries[0].model.levels
    start = level_of(queries[0])
    if start not in levels or plan.drill_down not in levels:
        return []
    out = []
    for level in levels[levels.index(start) + 1:levels.index(plan.drill_down) + 1]:
        ds = Dataset()
        setattr(ds, UNIQUE_KEYS[level], "")
        if level in plan.level_keys:
            apply_keys(ds, plan.level_keys[level])
        else:
            for keyword in DEFAULT_LEVEL_KEYS[level]:
                setattr(ds, keyword, "")
        out.append(ds)
    return out

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
            self.failures.append((final.failure(query.label), final))


def run_find(request: FindRequest) -> int:
    """Send every query; return the exit code (or raise a DimsekitError).

    Changes no process-wide state (the CLI tunes its own process first:
    :func:`dimsekit.plugins.find.command.tune_process`)."""
    if request.dry_run:
        from dimsekit.plugins.find.preview import dry_run

        return dry_run(request)
    if request.plan is not None:
        return run_batch(request)
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


@dataclass
class BatchResponse(Response):
    """A pending response of a batch, drill-down or parallel run: a
    :class:`Response` and the batch row it answers (1-based), the level
    it matched at and how deep in the drill-down (0: the row's query)."""

    row: int = 0
    level: str | None = None
    depth: int = 0


def _models_of(request: FindRequest) -> list[str]:
    rows = request.rows
    models = getattr(rows, "models", None)
    if models:
        return list(models)
    return list(dict.fromkeys(q.model.sop_class_uid for q in request.queries))


def run_batch(request: FindRequest) -> int:
    """--batch, --drill-down, --parallel, --retry, --max-per-query: the
    rows through a :class:`~dimsekit.api.Batch`, every match to the
    sinks (tied to its row), a summary on stderr; exit 1 if a row failed,
    4 if one is incomplete."""
    import logging

    from dimsekit.plugins.find.dump import format_dataset

    assert request.plan is not None
    items = negotiation_items(request.ext_neg)
    uids = _models_of(request)
    settings = request.settings

    def connect() -> Any:
        return open_association(settings, uids, ext_neg=items)

    def make(label: str, ds: Any, model: Any) -> Query:
        return finish_query(label, ds, [], models={model.name: model}, model=model,
                            new_vr=settings.new_vr)

    sinks = Sinks(request)
    batch = Batch(connect, request.rows, make, plan=request.plan,
                  dimse_timeout=settings.dimse_timeout, show=format_dataset,
                  interrupts=True, idle=sinks.flush)
    tag_rows = request.batch
    skipped: list[str] = []
    errors: list[DimsekitError] = []
    completed = gone = False
    try:
        for item in batch:
            if isinstance(item, Match):
                ds = item.dataset
                if tag_rows:
                    add_row_element(ds, item.row)
                info = BatchResponse(**vars(item.response), row=item.row, level=item.level,
                                     depth=item.depth)
                try:
                    sinks.write(ds, info)
                except (DimsekitError, OSError):
                    raise
                except Exception as exc:  # noqa: BLE001 - a value no writer can format
                    problem = f"{type(exc).__name__}: {exc}".splitlines()[0]
                    skipped.append(f"row {item.row}, response {info.number}")
                    log.warning("row %d: response %d skipped: %s", item.row, info.number,
                                problem)
            else:
                # what ends the whole batch (no association, interrupted) is
                # the run's own last line, not each row's
                errors.extend(e for e in item.errors
                              if not isinstance(e, (AssociationError, Interrupted)))
                if tag_rows or item.row > 1:
                    for error in errors:
                        log.error("%s", error.message)
                    errors.clear()
                sinks.row_end(item)
        completed = True
    except BrokenPipeError:
        gone = True  # the reader of stdout has what it wanted: nothing more to say
        raise
    finally:
        batch.close()
        try:
            sinks.end(completed=completed)
        except BrokenPipeError:
            gone = True
            raise
        finally:
            summary = batch.summary
            if (tag_rows and summary.rows and not gone
                    and log.isEnabledFor(logging.WARNING)):
                import click

                click.echo(f"I: batch: {summary.text()}", err=True)
    if skipped:
        raise skipped_error(skipped, sinks.count)
    summary = batch.summary
    if errors and summary.rows == 1 and not tag_rows:
        # one query (drill-down, --retry, ...): its own error, as without them
        worst = max(errors, key=lambda e: isinstance(e, IncompleteError))
        for error in errors:
            if error is not worst:
                log.error("%s", error.message)
        raise worst
    noun = "rows" if tag_rows else "queries"
    if summary.incomplete:
        raise IncompleteError(f"{summary.incomplete} of {summary.rows} {noun} incomplete: "
                              f"results may be incomplete (see the errors above)")
    if summary.failed:
        raise PeerFailure(f"{summary.failed} of {summary.rows} {noun} failed "
                          f"(see the errors above)")
    return ExitCode.OK
