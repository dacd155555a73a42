"""``--dry-run``: everything a run would send, and nothing sent.

On stdout, each identifier in the chosen ``--format`` (the dump layout by
default, one ``Request Identifier`` block each; a batch's rows in order);
on stderr, where it would go, each query's information model and why, the
presentation contexts and the extended negotiation that would be proposed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import click

from dimsekit.api import (
    ExitCode,
    Response,
    get_logger,
    infer_model,
    transfer_syntax_name,
)
from dimsekit.plugins.find.sinks import Sinks

log = get_logger("find")

_RULE = "-" * 27


def _queries(request: Any) -> Iterator[tuple[str, Any]]:
    """(label, prepared query) of everything the run would send first
    (drill-down queries depend on the matches: they are not known)."""
    if request.rows is not None:
        for row in request.rows:
            yield row.label, row.query
    else:
        for query in request.queries:
            for _ in range(request.repeat):
                yield query.label, query


def _why(request: Any, query: Any) -> str:
    if request.model_given:
        return "chosen with its option"
    level = query.identifier.get("QueryRetrieveLevel")
    return infer_model(None if level is None else str(level))[1]


def _say(line: str) -> None:
    if log.isEnabledFor(30):  # not -q
        click.echo(f"dry-run: {line}", err=True)


class _RequestDump:
    """The dump layout for requests: a block per identifier."""

    def __init__(self, stream: Any, options: Any):
        self.stream = stream

    def begin(self) -> None:
        from dimsekit.plugins.find.dump import format_dataset

        self._format = format_dataset

    def write(self, ds: Any, info: Any) -> None:
        self.stream.write(f"{_RULE}\nFind Request: {info.number}\n\n# Dicom-Data-Set\n"
                          f"{self._format(ds)}\n\n".encode("utf-8", "replace"))

    def end(self) -> None:
        self.stream.flush()


def dry_run(request: Any) -> int:
    """Say what ``request`` would send; exit 0."""
    s = request.settings
    tls = " over TLS" if s.tls is not None else ""
    _say(f"nothing is sent; the association would be requested from "
         f"{s.peer}:{s.port} ({s.calling_aet} -> {s.called_aet}){tls}")
    models: dict[str, Any] = {}
    if request.writer.name == "dump":
        request.writer = type(request.writer)("dump", request.writer.service, _RequestDump,
                                              request.writer.help)
    sinks = Sinks(request)
    completed = False
    try:
        for number, (label, query) in enumerate(_queries(request), 1):
            model = query.model
            models.setdefault(model.sop_class_uid, model)
            _say(f"query {label}: {model.help.replace('use ', '')} ({_why(request, query)})")
            sinks.write(query.identifier, Response(number, number, 0xFF00,
                                                   s.transfer_syntaxes[0], model))
        completed = True
    finally:
        sinks.end(completed=completed)
    syntaxes = ", ".join(transfer_syntax_name(ts) for ts in s.transfer_syntaxes)
    from pydicom.uid import UID

    for uid in models:
        _say(f"would propose {UID(uid).name} ({uid}) with {syntaxes}")
        info = request.ext_neg.get(uid)
        if info:
            _say(f"would request extended negotiation for {UID(uid).name}: "
                 f"{' '.join(f'{b:02x}' for b in info)}")
    if request.plan is not None and request.plan.drill_down:
        _say(f"then, for every match, the next level's queries down to "
             f"{request.plan.drill_down} (they depend on the matches)")
    return ExitCode.OK
