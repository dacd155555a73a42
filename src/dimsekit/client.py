"""The Python API: a DICOM peer, queried from a script.

    import dimsekit

    pacs = dimsekit.Peer("pacs.example.org", 104, called_aet="PACS")
    for study in pacs.find({"PatientName": "DOE*", "StudyInstanceUID": ""}):
        print(study.StudyInstanceUID)

    with pacs.connect() as session:           # one association, many requests
        session.echo()
        for accession in ("A1", "A2"):
            for ds in session.find(QueryRetrieveLevel="STUDY", AccessionNumber=accession,
                                   StudyInstanceUID=""):
                ...

Failures raise the exceptions that carry the CLI's exit codes:
:class:`~dimsekit.errors.UsageError` (a bad query, before the network),
:class:`~dimsekit.errors.AssociationError` (no association),
:class:`~dimsekit.errors.PeerFailure` (a failure status: ``.status``),
:class:`~dimsekit.errors.IncompleteError` (lost mid-query, malformed
responses skipped: ``.received``).  Nothing here prints, exits or changes
process-wide state (no gc, pydicom, pynetdicom, logging or warnings
settings); each :class:`Session` has its own association, so threads can
each use their own.  The contract, with tested examples: docs/python-api.md.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dimsekit.association import TRANSFER_SYNTAX_PROPOSALS, AssociationSettings
from dimsekit.errors import AssociationError, IncompleteError, PeerFailure, UsageError
from dimsekit.records import InformationModel

#: Verification SOP Class (C-ECHO)
VERIFICATION = "1.2.840.10008.1.1"
_C_ECHO_RSP = 0x8030


def _models() -> dict[str, InformationModel]:
    from dimsekit.qr.models import MODELS

    return {m.name: m for m in MODELS}


def _model(model: str | InformationModel | None,
           models: dict[str, InformationModel] | None = None) -> InformationModel | None:
    if model is None or isinstance(model, InformationModel):
        return model
    models = models or _models()
    for m in models.values():
        if model in (m.name, m.sop_class_uid):
            return m
    raise UsageError(f"unknown information model {model!r} "
                     f"(one of: {', '.join(models)}, or a SOP class UID)")


def _key_text(path: str, value: Any) -> str:
    """One ``-k`` key from a mapping entry: None or "" is a return key, a
    list or tuple is a multi-valued value (backslash-separated)."""
    if not isinstance(path, str):
        raise UsageError(f"query key {path!r}: keys are keywords, tags or paths (text)")
    if value is None:
        return path
    if isinstance(value, (list, tuple)):
        value = "\\".join(str(v) for v in value)
    elif isinstance(value, bytes):
        raise UsageError(f"query key {path!r}: give the value as text, not bytes")
    return f"{path}={value}"


def make_query(query: Any = None, keys: Mapping[str, Any] | None = None, *,
               model: str | InformationModel | None = None, charset: str | None = None,
               new_vr: bool = True, label: str = "query",
               models: dict[str, InformationModel] | None = None) -> Any:
    """A prepared :class:`~dimsekit.qr.find.Query` from a mapping in the
    ``-k`` grammar, keyword arguments and/or a pydicom Dataset (copied,
    then the keys applied on top), as the CLI prepares ``-k`` and query
    files: model inferred from QueryRetrieveLevel unless given, a Specific
    Character Set chosen for non-ASCII text, the identifier checked to be
    encodable.  Raises UsageError."""
    from pydicom import Dataset

    from dimsekit.keys import apply_keys, parse_keys
    from dimsekit.qr.query import finish_query

    models = models or _models()
    chosen = _model(model, models)
    texts: list[str] = []
    if isinstance(query, Dataset):
        ds = copy.deepcopy(query)
    elif query is None or isinstance(query, Mapping):
        ds = Dataset()
        texts += [_key_text(k, v) for k, v in (query or {}).items()]
    else:
        raise UsageError(f"a query is a mapping of keys or a pydicom Dataset, "
                         f"not {type(query).__name__}")
    texts += [_key_text(k, v) for k, v in (keys or {}).items()]
    overrides = parse_keys(texts)
    apply_keys(ds, overrides)
    if not len(ds):
        raise UsageError("empty query: give at least one key")
    return finish_query(label, ds, overrides, models=models, model=chosen,
                        charset=charset, new_vr=new_vr)


def _level_keys(level_keys: Mapping[str, Any] | None) -> dict[str, list[Any]]:
    """``{"SERIES": {"Modality": None, ...}}`` -> KeyOverrides by level."""
    from dimsekit.keys import parse_keys

    out = {}
    for level, keys in (level_keys or {}).items():
        if isinstance(keys, Mapping):
            texts = [_key_text(k, v) for k, v in keys.items()]
        else:
            texts = [str(k) for k in keys]
        out[str(level).upper()] = parse_keys(texts)
    return out


def _batch_rows(queries: Any, keys: Mapping[str, Any], *, model: Any, charset: str | None,
                new_vr: bool, plan: Any) -> Any:
    """find_many's rows as :class:`~dimsekit.qr.rows.PreparedRows` (checked
    first: a file, a BatchFile or a sequence) or a lazy generator of
    RowQuery (any other iterable: each row prepared when it is sent)."""
    from collections.abc import Sequence

    from pydicom import Dataset

    from dimsekit.keys import parse_keys
    from dimsekit.qr.batch import RowQuery
    from dimsekit.qr.query import finish_query
    from dimsekit.qr.rows import BatchFile, PreparedRows, Row, RowBuilder

    common = parse_keys([_key_text(k, v) for k, v in keys.items()])
    chosen = _model(model)
    models = _models()

    def as_row(number: int, item: Any) -> Row:
        if isinstance(item, Row):
            return item
        label = f"row {number}"
        if isinstance(item, Dataset):
            return Row(number, label, dataset=item)
        if isinstance(item, Mapping):
            try:
                return Row(number, label, keys=parse_keys(
                    [_key_text(k, v) for k, v in item.items()]))
            except UsageError as exc:
                raise UsageError(f"{label}: {exc.message}") from None
        raise UsageError(f"{label}: a query is a mapping of keys or a pydicom Dataset, "
                         f"not {type(item).__name__}")

    builder = RowBuilder(None, common)

    def prepare(row: Row, checked: bool = False) -> Any:
        ds, overrides = builder.identifier(row)
        if not len(ds):
            raise UsageError(f"{row.label}: empty query: give at least one key")
        query = finish_query(row.label, ds, overrides, models=models, model=chosen,
                             charset=charset, new_vr=new_vr, checked=checked,
                             builder=builder)
        if not checked:
            plan.check(query)
        return query

    if isinstance(queries, (str, BatchFile)):
        batch_file = BatchFile(queries) if isinstance(queries, str) else queries
        return PreparedRows(batch_file.rows, prepare).check()
    if isinstance(queries, (Sequence)) and not isinstance(queries, (bytes, Dataset)):
        items = list(queries)
        return PreparedRows(lambda: (as_row(n, q) for n, q in enumerate(items, 1)),
                            prepare).check()

    def lazy() -> Any:
        for n, item in enumerate(queries, 1):
            row = as_row(n, item)
            yield RowQuery(row.number, row.label, prepare(row))

    return lazy()


def _plan(*, parallel: int, ordered: bool, drill_down: str | None,
          level_keys: Mapping[str, Any] | None, retry: int, retry_wait: float,
          max_per_query: int | None, split_on: str | None) -> Any:
    from dimsekit.qr.batch import Plan

    if not isinstance(parallel, int) or parallel < 1:
        raise UsageError(f"parallel: {parallel!r} is not a number of associations (1 or more)")
    if retry < 0 or retry_wait < 0:
        raise UsageError("retry and retry_wait: 0 or more")
    if max_per_query is not None and max_per_query < 1:
        raise UsageError(f"max_per_query: {max_per_query!r} is not a number of matches")
    return Plan(parallel=parallel, ordered=ordered,
                drill_down=drill_down.upper() if drill_down else None,
                level_keys=_level_keys(level_keys), retry=retry, retry_wait=retry_wait,
                max_per_query=max_per_query, split_on=split_on)


class Results(Iterator[Any]):
    """The responses of one C-FIND request, as pydicom Datasets, as they
    arrive.  Leaving early (``break``, an exception, :meth:`close`) sends
    C-CANCEL; once the loop has ended, :attr:`status` is the final status
    (0x0000, a warning, or 0xFE00 after a cancel)."""

    def __init__(self, responses: Callable[[Results], Generator[Any, None, None]]):
        self.count = 0
        #: the final status, once the request has ended
        self.status: int | None = None
        #: the generator that yields the Datasets (and sets :attr:`status`)
        self._generator = responses(self)

    def __iter__(self) -> Results:
        return self

    def __next__(self) -> Any:
        ds = next(self._generator)
        self.count += 1
        return ds

    def close(self) -> None:
        """Stop reading: C-CANCEL, and a short grace for the peer to end
        the request (aborting the association if it does not)."""
        self._generator.close()

    def __enter__(self) -> Results:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class Session:
    """One association with a peer, for many requests in turn (not shared
    between threads: give each thread its own).  Use it as a context
    manager: the association is released on leaving the block (a request
    still being read is cancelled first), aborted when it cannot be
    (the peer went on after C-CANCEL, the association broke) or on Ctrl-C."""

    def __init__(self, settings: AssociationSettings, abstract_syntaxes: list[str],
                 ext_neg: dict[str, bytes]):
        self.settings = settings
        self._syntaxes = abstract_syntaxes
        self._ext_neg = ext_neg
        self._cm: Any = None
        self._assoc: Any = None
        self._busy: Results | None = None
        #: the last message ID used on the association
        self._msg_id = 0

    # -- the association ------------------------------------------------------

    def open(self) -> Session:
        from dimsekit.association import open_association
        from dimsekit.qr.find import negotiation_items

        if self._assoc is not None:
            return self
        cm = open_association(self.settings, self._syntaxes,
                              ext_neg=negotiation_items(self._ext_neg))
        self._assoc = cm.__enter__()
        self._cm = cm
        return self

    def close(self, abort: bool = False) -> None:
        """Release the association (abort it with ``abort=True``)."""
        cm, self._cm, self._assoc = self._cm, None, None
        if cm is None:
            return
        if abort:
            cm.__exit__(_Abort, _Abort(), None)  # open_association aborts
        else:
            cm.__exit__(None, None, None)

    def __enter__(self) -> Session:
        return self.open()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            if self._busy is not None:
                self._busy.close()  # C-CANCEL; aborts if the peer goes on
        finally:
            # a healthy association is released even when the block raised
            # (a failure status, the caller's own error); Ctrl-C aborts
            self.close(abort=exc_type is not None and issubclass(exc_type, KeyboardInterrupt))

    @property
    def is_open(self) -> bool:
        return self._assoc is not None and bool(self._assoc.is_established)

    @property
    def association(self) -> Any:
        """The pynetdicom Association (None when closed)."""
        return self._assoc

    def _ready(self) -> Any:
        import inspect

        busy = self._busy
        if busy is not None and inspect.getgeneratorstate(busy._generator) in (
                inspect.GEN_CREATED, inspect.GEN_CLOSED):
            busy.close()  # never read, or over: nothing on the association
            self._busy = None
        if self._busy is not None:
            raise UsageError("the previous find() on this session is still being read: "
                             "finish or close() it first")
        if not self.is_open:
            raise AssociationError("the session's association is not open (it ended, or "
                                   "was aborted after a failure)")
        return self._assoc

    # -- requests ---------------------------------------------------------------

    def find(self, query: Any = None, /, *, model: str | InformationModel | None = None,
             charset: str | None = None, **keys: Any) -> Results:
        """Send one C-FIND request; its responses as pydicom Datasets.

        ``query``: a mapping in the ``-k`` grammar (``{"PatientName":
        "DOE*", "(0040,0100)[0].Modality": "CT"}``; None or "" is a return
        key), a pydicom Dataset, or nothing; ``keys`` are more keys on top
        (``PatientName="DOE*"``).  ``model``: ``"patient"``, ``"study"``,
        ``"psonly"``, ``"worklist"``, ``"ups"`` or a SOP class UID; by
        default inferred from QueryRetrieveLevel (PATIENT: patient root;
        another: study root; none: worklist).

        Raises, as the loop goes: UsageError (a bad query, before anything
        is sent), PeerFailure (a failure status, after the responses before
        it), IncompleteError (the association lost or the protocol broken
        mid-query, or malformed responses skipped, after the good ones).
        """
        prepared = make_query(query, keys, model=model, charset=charset,
                              new_vr=self.settings.new_vr)
        self._ready()
        return self._start(prepared)

    def _start(self, query: Any) -> Results:
        results = Results(lambda results: self._responses(query, results))
        self._busy = results
        return results

    def _responses(self, query: Any, results: Results) -> Generator[Any, None, None]:
        from dimsekit.dimse import Exchange
        from dimsekit.qr.find import FindRun, skipped_error

        broken = True
        try:
            assoc = self._assoc
            if assoc is None or not assoc.is_established:
                raise AssociationError("the session's association is not open")
            with Exchange(assoc) as exchange:
                # Ctrl-C in a script stays a KeyboardInterrupt (and aborts)
                run = FindRun(assoc, exchange, dimse_timeout=self.settings.dimse_timeout,
                              interrupts=False)
                run.msg_id = self._msg_id  # message IDs go on across requests
                responses = run.responses(query)
                try:
                    for ds, _ in responses:
                        yield ds
                finally:
                    responses.close()
                    broken = run.broken
                    self._msg_id = run.msg_id
                    if run.final is not None:
                        results.status = run.final.status
            final = run.final
            if final is not None and not final.ok:
                raise PeerFailure(final.failure(), status=final.status,
                                  error_comment=final.error_comment)
            if run.skipped:
                raise skipped_error(run.skipped, run.delivered)
        finally:
            self._busy = None
            if broken and self._cm is not None:
                self.close(abort=True)

    def find_many(self, queries: Any, /, *, model: str | InformationModel | None = None,
                  charset: str | None = None, drill_down: str | None = None,
                  level_keys: Mapping[str, Any] | None = None, retry: int = 0,
                  retry_wait: float = 1.0, max_per_query: int | None = None,
                  split_on: str | None = None, parallel: int = 1, **keys: Any) -> Any:
        """Many C-FIND requests on this session's association, one per row
        (see :meth:`Peer.find_many`; one association, so no ``parallel``).
        If the peer closes the association after a query, the session
        opens a new one for the next."""
        from dimsekit.qr.batch import Batch

        if parallel != 1:
            raise UsageError("parallel: a session is one association; use "
                             "Peer.find_many(..., parallel=N) for more")

        plan = _plan(parallel=1, ordered=True, drill_down=drill_down,
                     level_keys=level_keys, retry=retry, retry_wait=retry_wait,
                     max_per_query=max_per_query, split_on=split_on)
        rows = _batch_rows(queries, keys, model=model, charset=charset,
                           new_vr=self.settings.new_vr, plan=plan)
        self._ready()
        batch = Batch(lambda: _SessionAssociation(self), rows, _remake(self.settings.new_vr),
                      plan=plan, dimse_timeout=self.settings.dimse_timeout)
        self._busy = batch  # type: ignore[assignment]
        return batch

    def echo(self) -> None:
        """C-ECHO: returns if the peer answered Success; raises PeerFailure
        (another status), IncompleteError (no answer) or AssociationError
        (Verification not accepted)."""
        from pynetdicom.dimse_primitives import C_ECHO

        from dimsekit.dimse import Exchange
        from dimsekit.status import describe_status

        assoc = self._ready()
        cx = next((c for c in assoc.accepted_contexts
                   if c.abstract_syntax == VERIFICATION), None)
        if cx is None:
            raise AssociationError("the peer accepted no presentation context for "
                                   "Verification (C-ECHO)")
        request = C_ECHO()
        self._msg_id = self._msg_id % 65535 + 1
        request.MessageID = self._msg_id
        request.AffectedSOPClassUID = VERIFICATION
        ok = False
        try:
            with Exchange(assoc) as exchange:
                exchange.send(request, cx.context_id)
                message = exchange.receive()
                if message is None:
                    raise IncompleteError(f"no answer to C-ECHO: "
                                          f"{exchange.failure or 'association aborted'}")
                if message.command_field != _C_ECHO_RSP or message.status is None:
                    raise IncompleteError("the peer answered C-ECHO with something other "
                                          "than a C-ECHO response")
            ok = True
        finally:
            if not ok:
                self.close(abort=True)
        if message.status != 0x0000:
            raise PeerFailure(f"peer answered C-ECHO with {describe_status(message.status)}",
                              status=message.status, error_comment=message.error_comment)


class _SessionAssociation:
    """A session's association as a batch opens it: the session's own
    (opened again if it ended); leaving it keeps it open, unless the batch
    aborts it."""

    def __init__(self, session: Session):
        self.session = session

    def __enter__(self) -> Any:
        return self.session.open()._assoc

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None:
            self.session.close(abort=True)


def _remake(new_vr: bool) -> Any:
    """A batch's ``make``: a query dimsekit builds itself (drill-down,
    split parts), prepared as the user's are."""
    from dimsekit.qr.query import finish_query

    def make(label: str, ds: Any, model: Any) -> Any:
        return finish_query(label, ds, [], models=_models(), model=model, new_vr=new_vr)

    return make


class _Abort(Exception):
    """Thrown into open_association to make it abort."""


@dataclass(frozen=True)
class Retrieved:
    """What a :meth:`Peer.get` or :meth:`Peer.move` brought: the final
    response (``.status.completed``, ``.failed``, ``.warning``,
    ``.failed_instances``) and the files written."""

    status: Any
    files: list[Path]

    @property
    def complete(self) -> bool:
        """Success, and no sub-operation failed or warned."""
        return (self.status.category == "Success" and not self.status.failed
                and not self.status.warning)


class Peer:
    """A DICOM peer (an SCP) and how to associate with it.

    Keyword arguments set what the CLI's association options set:
    ``called_aet`` (``-aec``), ``calling_aet`` (``-aet``), ``tls`` (a
    :class:`~dimsekit.tls.TLSSettings`: ``TLSSettings(mode="anonymous",
    ca_files=("ca.pem",))``; None: plain TCP), ``connect_timeout``
    (``-to``), ``acse_timeout`` (``-ta``), ``dimse_timeout`` (``-td``),
    ``network_timeout`` (``-tn``) in seconds (None: no limit),
    ``max_pdu`` (``-pdu``), ``transfer_syntaxes`` (``"local"``,
    ``"little"``, ``"big"``, ``"implicit"``, ``"deflated"`` or UIDs),
    ``new_vr`` (False: ``-u``), ``ext_neg`` (``{sop_class_uid:
    application_information}``: SOP class extended negotiation).
    """

    def __init__(self, host: str, port: int = 104, *, called_aet: str = "ANY-SCP",
                 calling_aet: str = "DIMSEKIT", tls: Any = None,
                 connect_timeout: float | None = 30.0, acse_timeout: float | None = 30.0,
                 dimse_timeout: float | None = 30.0, network_timeout: float | None = 30.0,
                 max_pdu: int = 16384, transfer_syntaxes: str | tuple[str, ...] = "local",
                 new_vr: bool = True, ext_neg: Mapping[str, bytes] | None = None):
        if isinstance(transfer_syntaxes, str):
            if transfer_syntaxes not in TRANSFER_SYNTAX_PROPOSALS:
                raise UsageError(f"transfer_syntaxes: one of "
                                 f"{', '.join(TRANSFER_SYNTAX_PROPOSALS)}, or a tuple of UIDs")
            transfer_syntaxes = TRANSFER_SYNTAX_PROPOSALS[transfer_syntaxes]
        if not (isinstance(port, int) and 0 < port < 65536):
            raise UsageError(f"port: {port!r} is not a TCP port (1 to 65535)")
        for name, value in (("called_aet", called_aet), ("calling_aet", calling_aet)):
            if not value or len(value) > 16 or not value.isascii() or "\\" in value:
                raise UsageError(f"{name}: {value!r} is not an AE title (1 to 16 ASCII "
                                 f"characters, no backslash)")
        if not 0 <= max_pdu < 1 << 32:
            raise UsageError(f"max_pdu: {max_pdu!r} is out of range")
        self.settings = AssociationSettings(
            peer=host, port=port, calling_aet=calling_aet, called_aet=called_aet,
            transfer_syntaxes=tuple(transfer_syntaxes), connect_timeout=connect_timeout,
            acse_timeout=acse_timeout, dimse_timeout=dimse_timeout,
            network_timeout=network_timeout, max_pdu=max_pdu, new_vr=new_vr, tls=tls)
        self.ext_neg = dict(ext_neg or {})

    @classmethod
    def from_config(cls, name: str, path: str | os.PathLike[str] | None = None,
                    **overrides: Any) -> Peer:
        """The peer configured as ``[peers.NAME]`` in dimsekit's
        configuration file (``path``, else ``$DIMSEKIT_CONFIG``, else
        ``$XDG_CONFIG_HOME/dimsekit/config.toml``, else
        ``~/.config/dimsekit/config.toml``: see :mod:`dimsekit.config`);
        ``overrides`` are keyword arguments of :class:`Peer` that win over
        the file.  Raises UsageError (no such peer, a bad file)."""
        from dimsekit.config import load_config

        entry = load_config(path).peer(name)
        return cls(entry.host, entry.port, **{**entry.peer_kwargs(), **overrides})

    def __repr__(self) -> str:
        s = self.settings
        return (f"Peer({s.peer!r}, {s.port}, called_aet={s.called_aet!r}, "
                f"calling_aet={s.calling_aet!r}{', tls=...' if s.tls else ''})")

    def connect(self, *, models: tuple[str, ...] | None = None,
                echo: bool = True) -> Session:
        """A :class:`Session`: one association for many requests.

        ``models``: the information models to propose (default: all five
        C-FIND models); ``echo``: propose Verification too (for
        :meth:`Session.echo`).  The association is requested when the
        ``with`` block is entered (or by :meth:`Session.open`)."""
        chosen = [_model(m) for m in (_models() if models is None else models)]
        syntaxes = [m.sop_class_uid for m in chosen if m is not None]
        if echo:
            syntaxes.append(VERIFICATION)
        return Session(self.settings, syntaxes, self.ext_neg)

    def find(self, query: Any = None, /, *, model: str | InformationModel | None = None,
             charset: str | None = None, **keys: Any) -> Results:
        """One C-FIND request on an association of its own (see
        :meth:`Session.find`); the association is released when the loop
        ends, or aborted when it fails."""
        prepared = make_query(query, keys, model=model, charset=charset,
                              new_vr=self.settings.new_vr)
        return Results(lambda results: self._find(prepared, results))

    def _find(self, query: Any, results: Results) -> Generator[Any, None, None]:
        with Session(self.settings, [query.model.sop_class_uid], self.ext_neg) as session:
            inner = session._start(query)
            try:
                yield from inner
            finally:
                inner.close()
                results.status = inner.status

    def find_many(self, queries: Any, /, *, model: str | InformationModel | None = None,
                  charset: str | None = None, parallel: int = 1, ordered: bool = True,
                  drill_down: str | None = None, level_keys: Mapping[str, Any] | None = None,
                  retry: int = 0, retry_wait: float = 1.0, max_per_query: int | None = None,
                  split_on: str | None = None, **keys: Any) -> Any:
        """Many C-FIND requests, one per row, on one association (or
        ``parallel`` of them); a :class:`~dimsekit.qr.batch.Batch` that
        yields :class:`~dimsekit.Match` (``.row``, ``.dataset``, ``.level``)
        and, when a row is over, :class:`~dimsekit.RowEnd` (``.matches``,
        ``.status``, ``.error``); ``.summary`` once it is over.

        ``queries``: a batch file's path (CSV with a header row of keys,
        or NDJSON of DICOM JSON objects), a :class:`~dimsekit.BatchFile`,
        or an iterable of mappings / Datasets as :meth:`Session.find`
        takes them; ``keys`` are added to every row (a row's own value
        wins).  A file or a sequence is checked whole before anything is
        sent (UsageError naming the row); another iterable row by row.

        ``parallel``: associations (threads); items still come in row order
        unless ``ordered=False``.  ``drill_down``: ``"STUDY"``,
        ``"SERIES"`` or ``"IMAGE"``: every match above that level gets the
        next level's query, with ``level_keys`` (``{"SERIES": {"Modality":
        None}}``) or a default set of return keys.  ``retry``/``retry_wait``:
        failures to associate that may be transient, and aborts before a
        query's first response, are retried (waiting ``retry_wait`` s,
        doubled each time).  ``max_per_query``: a query that returns that
        many matches (or that the peer ends as capped) is split on the date
        key ``split_on`` (default: the level's date, e.g. StudyDate) until
        each part is under it; matches are merged without duplicates.

        A row's failure status or broken query is its RowEnd's ``error``
        and the batch goes on; AssociationError (no association, after the
        retries) ends it."""
        from dimsekit.association import open_association
        from dimsekit.qr.batch import Batch
        from dimsekit.qr.find import negotiation_items

        plan = _plan(parallel=parallel, ordered=ordered, drill_down=drill_down,
                     level_keys=level_keys, retry=retry, retry_wait=retry_wait,
                     max_per_query=max_per_query, split_on=split_on)
        rows = _batch_rows(queries, keys, model=model, charset=charset,
                           new_vr=self.settings.new_vr, plan=plan)
        used = getattr(rows, "models", None)
        uids = list(used) if used else [m.sop_class_uid for m in _models().values()]
        items = negotiation_items(self.ext_neg)
        settings = self.settings

        def connect() -> Any:
            return open_association(settings, uids, ext_neg=items)

        return Batch(connect, rows, _remake(settings.new_vr), plan=plan,
                     dimse_timeout=settings.dimse_timeout)

    def get(self, query: Any = None, /, *, directory: str | os.PathLike[str],
            model: str | InformationModel | None = None, charset: str | None = None,
            **keys: Any) -> Retrieved:
        """One C-GET on an association of its own: what ``query`` matches
        is written to ``directory`` (see :class:`~dimsekit.storage.InstanceWriter`).

        ``query`` and ``keys`` as :meth:`find` takes them; it needs a
        QueryRetrieveLevel.  ``model``: ``"patient"``, ``"study"`` or
        ``"psonly"`` (default: patient root for a PATIENT level, else study
        root).  Returns a :class:`Retrieved`; raises PeerFailure when the
        peer answers a failure, IncompleteError when the association is
        lost, OutputError when an instance cannot be written."""
        return self._retrieve("get", query, keys, model=model, charset=charset,
                              directory=directory)

    def move(self, query: Any = None, /, *, destination: str | None = None,
             listen_port: int | None = None,
             directory: str | os.PathLike[str] | None = None,
             model: str | InformationModel | None = None, charset: str | None = None,
             **keys: Any) -> Retrieved:
        """One C-MOVE on an association of its own, to ``destination``
        (default: our calling AE title).  With ``listen_port``, a storage
        SCP listens there while the C-MOVE runs and writes what arrives to
        ``directory`` (the peer must know ``destination`` at this
        machine's address and that port).  Otherwise as :meth:`get`."""
        if listen_port is not None and directory is None:
            raise UsageError("move(listen_port=...) needs directory= for what arrives")
        return self._retrieve("move", query, keys, model=model, charset=charset,
                              directory=directory, destination=destination,
                              listen_port=listen_port)

    def _retrieve(self, service: str, query: Any, keys: Mapping[str, Any], *,
                  model: Any, charset: str | None, directory: Any,
                  destination: str | None = None, listen_port: int | None = None) -> Retrieved:
        import contextlib

        from dimsekit.association import open_association
        from dimsekit.qr.find import negotiation_items
        from dimsekit.qr.retrieve import GET_MODELS, MOVE_MODELS, retrieve, retrieve_contexts
        from dimsekit.storage import InstanceWriter, StoreServer

        models = {m.name: m for m in (GET_MODELS if service == "get" else MOVE_MODELS)}
        prepared = make_query(query, keys, model=model, charset=charset,
                              new_vr=self.settings.new_vr, models=models)
        if "QueryRetrieveLevel" not in prepared.identifier:
            raise UsageError(f"a C-{service.upper()} needs QueryRetrieveLevel")
        writer = InstanceWriter(directory) if directory is not None else None
        if writer is not None:
            writer.prepare()
        s = self.settings
        destination = destination or s.calling_aet
        server: Any = contextlib.nullcontext()
        if service == "move" and listen_port is not None and writer is not None:
            server = StoreServer.like(s, destination, listen_port, writer)
        final = None
        with server, open_association(
                s, contexts=retrieve_contexts(service, prepared.model),
                ext_neg=negotiation_items(self.ext_neg),
                store=writer if service == "get" else None) as assoc:
            for status in retrieve(assoc, service, prepared, prepared.model,
                                   destination=destination):
                final = status
        assert final is not None and final.final  # retrieve() raises otherwise
        if writer is not None:
            writer.check()
        if final.category not in ("Success", "Warning"):
            from dimsekit.qr.retrieve import status_table
            from dimsekit.status import describe_status

            raise PeerFailure(f"C-{service.upper()}: peer answered "
                              f"{describe_status(final.status, status_table(service))} "
                              f"({final.counts()})", status=final.status)
        return Retrieved(final, list(writer.paths) if writer is not None else [])

    def echo(self) -> None:
        """C-ECHO on an association of its own (see :meth:`Session.echo`)."""
        with self.connect(models=(), echo=True) as session:
            session.echo()
