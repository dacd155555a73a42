"""Running C-FIND: prepare every query before the network, then send them
on one association and turn the outcome into the documented exit code."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any

from dimsekit.api import (
    AssociationError,
    AssociationSettings,
    DimsekitError,
    Exchange,
    ExitCode,
    Host,
    IncompleteError,
    InformationModel,
    Interrupted,
    PeerFailure,
    UsageError,
    Writer,
    apply_keys,
    describe_status,
    get_logger,
    open_association,
    parse_keys,
    status_category,
)
from dimsekit.plugins.find.models import SERVICE, application_information, infer_model
from dimsekit.plugins.find.csvfmt import return_keys_for_columns
from dimsekit.plugins.find.decode import decoder
from dimsekit.plugins.find.prepare import (
    check_encodable,
    choose_charset,
    downgrade_new_vrs,
    read_query_file,
)
from dimsekit.plugins.find.sinks import Sinks

log = get_logger("find")

PENDING = (0xFF00, 0xFF01)
#: seconds the peer gets to end a query after Ctrl-C sent C-CANCEL
INTERRUPT_GRACE = 2.0
CANCEL = 0xFE00
C_FIND_RSP = 0x8020  # CommandField
SPECIFIC_CHARACTER_SET = 0x00080005


@dataclass
class Query:
    label: str
    identifier: Any  # pydicom Dataset
    model: InformationModel


@dataclass
class Response:
    """What a writer learns about each response besides its identifier."""

    query: int  # 1-based index of the query in the run
    number: int  # 1-based, per query (DCMTK's "Find Response: N")
    status: int
    transfer_syntax: str
    model: InformationModel


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
                 correction: bool = False, **rest: Any) -> "FindRequest":
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
            if not association.new_vr:
                downgrade_new_vrs(ds)
            choose_charset(label, ds, charset, overrides)
            if model is not None:
                chosen = models[model]
            else:
                name, why = infer_model(ds.get("QueryRetrieveLevel"))
                chosen = models[name]
                log.info("query %s: %s (%s)", label, chosen.help.replace("use ", ""), why)
            check_encodable(label, ds)
            queries.append(Query(label, ds, chosen))

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

def _status_table(model: InformationModel) -> dict:
    from pynetdicom import status

    if model.name == "worklist":
        return status.MODALITY_WORKLIST_SERVICE_CLASS_STATUS
    return status.QR_FIND_SERVICE_CLASS_STATUS


class _Runner:
    """Sends the queries on one association, each identifier encoded once,
    and hands every pending response to the sinks as it arrives."""

    def __init__(self, request: FindRequest, assoc: Any, sinks: "Sinks"):
        self.request = request
        self.assoc = assoc
        self.sinks = sinks
        self.failures: list[str] = []
        #: "query X, response N" of each response that was skipped
        self.skipped: list[str] = []
        self.msg_id = 0
        self.written_now = 0

    def context_for(self, model: InformationModel):
        for cx in self.assoc.accepted_contexts:
            if cx.abstract_syntax == model.sop_class_uid:
                return cx
        raise AssociationError(
            f"the peer accepted no presentation context for {model.name} "
            f"({model.sop_class_uid})"
        )

    def run(self) -> None:
        from pynetdicom.dsutils import encode

        with Exchange(self.assoc, idle=self.sinks.flush) as exchange:
            for index, query in enumerate(self.request.queries, 1):
                cx = self.context_for(query.model)
                ts = cx.transfer_syntax[0]
                identifier = encode(query.identifier, ts.is_implicit_VR,
                                    ts.is_little_endian, ts.is_deflated)
                if identifier is None:
                    raise UsageError(f"query {query.label}: cannot encode the identifier "
                                     f"in {ts.name}")
                decode = decoder(ts)
                for _ in range(self.request.repeat):
                    self.one(exchange, index, query, cx, identifier, decode)

    def one(self, exchange: Exchange, index: int, query: Query, cx: Any,
            identifier: bytes, decode: Any) -> None:
        """Send one C-FIND request and take its responses until the final one."""
        from pynetdicom.dimse_primitives import C_FIND

        verbose = log.isEnabledFor(logging.INFO)
        debug = log.isEnabledFor(logging.DEBUG)
        self.msg_id = self.msg_id % 65535 + 1
        request = C_FIND()
        request.MessageID = self.msg_id
        request.AffectedSOPClassUID = query.model.sop_class_uid
        request.Priority = 2
        request.Identifier = BytesIO(identifier)
        if verbose:
            log.info("Sending Find Request: MsgID %d (%s)", self.msg_id, query.label)
            _log_identifier(logging.INFO, "Request Identifier", query.identifier)
        exchange.send(request, cx.context_id)

        cancel_after = self.request.cancel_after
        pending = 0
        self.written_now = 0  # responses to this request written out
        cancelled = False
        interrupted: float | None = None  # when the first Ctrl-C came
        last = time.monotonic()
        while True:
            try:
                if interrupted is None:
                    message = exchange.receive()
                else:
                    message = exchange.receive(
                        timeout=max(0.0, interrupted + INTERRUPT_GRACE - time.monotonic()))
                if message is None:
                    if interrupted is not None:
                        raise Interrupted(self._interrupted(query, answered=False))
                    raise IncompleteError(self._lost(query, last, exchange.failure))
                code = self._check(query, message, cx, last)
                last = time.monotonic()
                if code not in PENDING:
                    if interrupted is not None:
                        raise Interrupted(self._interrupted(query, answered=True))
                    self._final(query, code, pending, cancelled, message)
                    return
                pending += 1
                if verbose:
                    log.info("Find Response: %d - 0x%04X (Pending)", pending, code)
                if cancelled:
                    continue
                ds = decode(message.dataset)
                if ds is None:
                    self._skip(query, pending, decode.problem)
                    continue
                if debug:
                    _log_identifier(logging.DEBUG, "Response Identifier", ds)
                self._write(ds, Response(index, pending, code, cx.transfer_syntax[0],
                                         query.model), query)
                if cancel_after and pending >= cancel_after:
                    log.info("Sending Cancel Request: MsgID %d", self.msg_id)
                    exchange.cancel(self.msg_id, cx.context_id)
                    cancelled = True
            except KeyboardInterrupt as exc:
                # the first Ctrl-C: C-CANCEL, then a short grace for the
                # final status; a second one (or SIGTERM): abort at once
                if interrupted is not None or getattr(exc, "abort", False):
                    raise Interrupted(self._interrupted(query, answered=False,
                                                        how=getattr(exc, "how", None)))
                interrupted = time.monotonic()
                cancelled = True
                try:
                    exchange.cancel(self.msg_id, cx.context_id)
                except (RuntimeError, OSError):  # the association is gone already
                    raise Interrupted(self._interrupted(query, answered=False)) from None
                log.warning("interrupted: C-CANCEL sent; waiting up to %g s for the peer "
                            "to end the query (Ctrl-C again to abort)", INTERRUPT_GRACE)

    def _check(self, query: Query, message: Any, cx: Any, last: float) -> int:
        """The status of a C-FIND response to this request; anything else
        ends the exchange (exit 4): another command, another message ID,
        another presentation context, no status."""
        code = message.status
        problem = None
        if message.command_field != C_FIND_RSP:
            problem = ("the peer sent something other than a C-FIND response "
                       f"(command 0x{message.command_field or 0:04X})")
        elif message.message_id_being_responded_to != self.msg_id:
            problem = (f"the peer answered message ID "
                       f"{message.message_id_being_responded_to}, not {self.msg_id}")
        elif message.context_id != cx.context_id:
            problem = (f"the peer answered on presentation context {message.context_id}, "
                       f"not {cx.context_id}")
        elif code is None:
            problem = "the peer sent a C-FIND response without a status"
        if problem:
            raise IncompleteError(self._lost(query, last, problem))
        return code

    def _skip(self, query: Query, number: int, problem: str | None) -> None:
        self.skipped.append(f"query {query.label}, response {number}")
        log.warning("query %s: response %d skipped: its identifier is malformed (%s)",
                    query.label, number, problem or "cannot be decoded")

    def _write(self, ds: Any, info: "Response", query: Query) -> None:
        try:
            self.sinks.write(ds, info)
            self.written_now += 1
        except (DimsekitError, OSError):
            raise
        except Exception as exc:  # noqa: BLE001 - a value no writer can format
            self._skip(query, info.number, f"{type(exc).__name__}: {exc}".splitlines()[0])

    def _got(self) -> str:
        """"after N responses": those of this request that were written (and
        of the whole run, when that is more: --repeat, several queries)."""
        n, total = self.written_now, self.sinks.count
        got = f"after {n} response{'s' * (n != 1)}"
        return got if total == n else f"{got} ({total} written in all)"

    def _interrupted(self, query: Query, *, answered: bool,
                     how: str | None = None) -> str:
        got = self._got()
        if how:
            return f"query {query.label}: {how}: association aborted {got}"
        if answered:
            return f"query {query.label}: interrupted {got} (C-CANCEL sent; the peer ended the query)"
        return f"query {query.label}: interrupted {got}; association aborted"

    def _final(self, query: Query, code: int, pending: int, cancelled: bool,
               message: Any) -> None:
        text = describe_status(code, _status_table(query.model))
        if message.error_comment:
            text += f", error comment: {message.error_comment!r}"
        category = status_category(code)
        log.info("Received Final Find Response: %s after %d pending", text, pending)
        if category == "Success" or (code == CANCEL and cancelled):
            return
        if category == "Warning":
            log.warning("query %s: peer answered %s", query.label, text)
            return
        self.failures.append(f"query {query.label}: peer answered {text}")

    def _lost(self, query: Query, last: float, failure: str | None) -> str:
        timeout = self.request.settings.dimse_timeout
        got = self._got()
        if failure:
            return f"query {query.label}: {failure} {got}; results may be incomplete"
        if timeout and time.monotonic() - last >= timeout * 0.9:
            return (f"query {query.label}: no response within the DIMSE timeout "
                    f"({timeout:g} s) {got}; results may be incomplete")
        return (f"query {query.label}: association aborted {got}; "
                f"results may be incomplete")

def _log_identifier(level: int, title: str, ds: Any) -> None:
    from dimsekit.plugins.find.dump import format_dataset

    log.log(level, "# %s\n%s", title, format_dataset(ds))

def run_find(request: FindRequest) -> int:
    """Send every query; return the exit code (or raise a DimsekitError).

    Changes no process-wide state (the CLI tunes its own process first:
    :func:`dimsekit.plugins.find.command.tune_process`)."""
    from pynetdicom.pdu_primitives import SOPClassExtendedNegotiation

    items = []
    for uid, info in request.ext_neg.items():
        item = SOPClassExtendedNegotiation()
        item.sop_class_uid = uid
        item.service_class_application_information = info
        items.append(item)
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
        for failure in runner.failures:
            log.error(failure)
        n = len(runner.skipped)
        raise IncompleteError(
            f"{n} response{'s' * (n != 1)} skipped because {'they were' if n != 1 else 'it was'} "
            f"malformed ({runner.skipped[0]}{', ...' if n > 1 else ''}); results are incomplete")
    for failure in runner.failures[:-1]:
        log.error(failure)
    if runner.failures:
        raise PeerFailure(runner.failures[-1])
    return ExitCode.OK
