"""Many C-FIND queries, unattended: batches, drill-down, parallel
associations, retries and result caps, for the Python API
(:meth:`dimsekit.Peer.find_many`) and ``dimsekit find --batch`` alike.

    batch = Batch(connect, rows, make, plan=Plan(parallel=4, drill_down="SERIES"))
    for item in batch:
        if isinstance(item, Match):        # item.row, item.dataset, item.level
            ...
        else:                              # RowEnd: item.matches, item.error
            ...
    batch.summary                          # rows, matches, empty, failed

* **Rows** are :class:`RowQuery` -- a prepared query and the row's number.
  They are run in order; with ``parallel=N`` they are spread over N
  associations (one thread each) and the items still come out in row
  order unless ``ordered=False``.  Nothing is held back beyond the rows in
  flight: memory stays flat however many rows there are.
* **Drill-down** (``drill_down="SERIES"``): every match of a query above
  that level gets a query one level down, with the match's unique key
  (and those of the levels above it), until the chosen level; its
  matches follow their parent query's matches in the output.
* **Reconnecting**: a peer that closes or aborts the association after a
  query gets a new association for the next one; a query the peer
  failed is a failed row (:class:`RowEnd`.error) and the batch goes on.
  A query the association broke under after some of its responses is an
  incomplete row (exit 4) and the batch goes on on a new association;
  an association that cannot be had (after the retries) ends the batch.
* **Retries** (``retry=N``): a failure to associate that may be transient
  (:attr:`~dimsekit.errors.AssociationError.transient`), or an abort
  before the first response of a query, is retried up to N times, waiting
  ``retry_wait`` seconds, doubled each time (at most 60 s).  Nothing is
  retried once a response was delivered: no duplicates.
* **Result caps** (``max_per_query=N``): a query that returns N matches,
  or that the peer ends with Cancel nobody asked for or Out of Resources
  (:attr:`~dimsekit.qr.find.Final.capped`), is split in two on a date
  range key (``split_on``, by default the level's date: StudyDate,
  SeriesDate, ...), recursively, until each part is under the cap; the
  matches are merged without duplicates (by the level's unique key).
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import heapq
import logging
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from dimsekit.errors import (
    AssociationError,
    DimsekitError,
    IncompleteError,
    Interrupted,
    PeerFailure,
    UsageError,
)
from dimsekit.qr.models import LEVELS, UNIQUE_KEYS

log = logging.getLogger("dimsekit.find")

#: the return keys a drill-down query asks for when none are given for its level
DEFAULT_LEVEL_KEYS = {
    "PATIENT": ("PatientName", "PatientBirthDate", "PatientSex"),
    "STUDY": ("StudyDate", "StudyTime", "AccessionNumber", "StudyDescription",
              "ModalitiesInStudy"),
    "SERIES": ("Modality", "SeriesNumber", "SeriesDescription", "SeriesDate",
               "NumberOfSeriesRelatedInstances"),
    "IMAGE": ("SOPClassUID", "InstanceNumber"),
}
#: the date key a capped query is split on, by level (``split_on`` overrides)
SPLIT_KEYS = {"PATIENT": "PatientBirthDate", "STUDY": "StudyDate", "SERIES": "SeriesDate",
              "IMAGE": "ContentDate",
              None: "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate"}
#: the range an empty or open date key stands for when it is split
DATE_FLOOR = datetime.date(1850, 1, 1)
DATE_CEILING = datetime.date(2199, 12, 31)
#: the longest wait between retries
MAX_RETRY_WAIT = 60.0


@dataclass
class Plan:
    """How to run a batch (everything besides its rows)."""

    parallel: int = 1
    ordered: bool = True
    drill_down: str | None = None
    #: extra keys (``-k`` KeyOverrides) for the drill-down queries, by level
    level_keys: dict[str, list[Any]] = field(default_factory=dict)
    retry: int = 0
    retry_wait: float = 1.0
    max_per_query: int | None = None
    split_on: str | None = None
    cancel_after: int | None = None

    def check(self, query: Any) -> str | None:
        """A usage error for a plan the query (a prepared
        :class:`~dimsekit.qr.find.Query`) cannot follow; else the query's
        level (:func:`level_of`)."""
        model, level, label = query.model, level_of(query), query.label
        if self.parallel < 1:
            raise UsageError("parallel: at least 1 association")
        if self.max_per_query:
            split_key(self.split_on or SPLIT_KEYS.get(level, "StudyDate"))
        if self.drill_down is None:
            return level
        target = self.drill_down.upper()
        if target not in LEVELS:
            raise UsageError(f"drill-down level {self.drill_down!r}: one of "
                             f"{', '.join(LEVELS[1:])}")
        levels = tuple(getattr(model, "levels", ()) or ())
        if not levels:
            raise UsageError(f"query {label}: drill-down needs a Q/R model with levels "
                             f"(patient, study, psonly), not {model.name}")
        if level not in levels:
            raise UsageError(f"query {label}: drill-down needs a QueryRetrieveLevel of "
                             f"the {model.name} model ({', '.join(levels)}), not {level!r}")
        if target not in levels:
            raise UsageError(f"drill-down to {target}: the {model.name} model has no "
                             f"{target} level ({', '.join(levels)})")
        if levels.index(target) <= levels.index(level):
            raise UsageError(f"query {label}: drill-down to {target} from {level}: "
                             f"the drill-down level must be below the query's")
        return level


@dataclass
class RowQuery:
    """One row of a batch: its number, its label and its prepared query."""

    number: int
    label: str
    query: Any  # dimsekit.qr.find.Query


@dataclass
class Match:
    """A pending response of a row's query (or of a drill-down query made
    from it): the row's number, the Dataset, the level it matched at and
    the response's details (:class:`~dimsekit.qr.find.Response`)."""

    row: int
    dataset: Any
    level: str | None
    depth: int  # 0: the row's own query; 1, 2, ...: drill-down
    response: Any


@dataclass
class RowEnd:
    """A row is over: how many matches it had, how its query ended."""

    row: int
    label: str
    matches: int = 0
    #: the final status of the row's own query (None: it got none)
    status: int | None = None
    #: what went wrong, if anything: PeerFailure, or IncompleteError (which
    #: wins when both happened: results may be incomplete)
    error: DimsekitError | None = None
    #: everything that went wrong, in order (drill-down and split queries
    #: of the row included)
    errors: list[DimsekitError] = field(default_factory=list)
    #: queries sent for the row (drill-down and splits included)
    queries: int = 0
    #: False: the batch ended (no association, interrupted) before the row
    #: was sent; ``error`` says why
    sent: bool = True

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class Summary:
    rows: int = 0
    matches: int = 0
    empty: int = 0
    failed: int = 0
    incomplete: int = 0
    not_sent: int = 0
    associations: int = 0
    retries: int = 0

    def text(self) -> str:
        def n(count: int, word: str, plural: str | None = None) -> str:
            return f"{count} {word if count == 1 else plural or word + 's'}"

        parts = [n(self.rows + self.not_sent, "row"), n(self.matches, "match", "matches"),
                 f"{self.empty} with none", f"{self.failed} failed"]
        if self.incomplete:
            parts.append(f"{self.incomplete} incomplete")
        if self.not_sent:
            parts.append(f"{self.not_sent} not sent")
        parts.append(n(self.associations, "association"))
        if self.retries:
            parts.append(n(self.retries, "retry", "retries"))
        return ", ".join(parts)


class _Stop(Exception):
    """The batch is being shut down: a worker ends quietly."""


# -- one association ----------------------------------------------------------------


class Link:
    """One association of a batch, opened when first needed (with the
    retries of the plan), opened again after the peer closed it."""

    def __init__(self, batch: Batch, idle: Any = None, interrupts: bool = False):
        self.batch = batch
        self.idle = idle
        self.interrupts = interrupts
        self._cm: Any = None
        self._exchange: Any = None
        self.assoc: Any = None
        self.run: Any = None  # FindRun
        self.requests = 0
        self._msg_id = 0

    def ensure(self) -> Any:
        """The FindRun of an open association (AssociationError when none
        can be had; _Stop when the batch is ending)."""
        if self.assoc is not None and self.assoc.is_established and not self.run.broken:
            return self.run
        self.drop(abort=self.assoc is not None)
        attempt = 0
        while True:
            self.batch._check_stop()
            try:
                # one association request at a time: a peer's limit on
                # associations is met in order, not raced
                with self.batch._connecting:
                    cm = self.batch.connect()
                    assoc = cm.__enter__()
            except AssociationError as exc:
                if not exc.transient or attempt >= self.batch.plan.retry:
                    raise
                attempt += 1
                self.batch._retried()
                wait = self.batch.retry_wait(attempt)
                log.warning("%s; retrying in %g s (retry %d of %d)", exc.message, wait,
                            attempt, self.batch.plan.retry)
                self.batch._sleep(wait)
                continue
            break
        from dimsekit.dimse import Exchange
        from dimsekit.qr.find import FindRun

        self._cm, self.assoc = cm, assoc
        self.batch._opened(self)
        try:
            self._exchange = Exchange(assoc, idle=self.idle)
            self._exchange.__enter__()
            self.run = FindRun(assoc, self._exchange, dimse_timeout=self.batch.dimse_timeout,
                               show=self.batch.show, interrupts=self.interrupts)
        except BaseException:
            self.drop(abort=True)
            raise
        self.run.msg_id = self._msg_id
        self.requests = 0
        return self.run

    def drop(self, abort: bool = False) -> None:
        """Release the association (abort it with ``abort``)."""
        exchange, cm = self._exchange, self._cm
        self._exchange = self._cm = self.assoc = None
        if self.run is not None:
            self._msg_id = self.run.msg_id
            abort = abort or self.run.broken
        self.run = None
        try:
            if exchange is not None:
                exchange.__exit__(None, None, None)
        finally:
            if cm is not None:
                if abort:
                    cm.__exit__(_Abort, _Abort(), None)
                else:
                    cm.__exit__(None, None, None)

    def kill(self) -> None:
        """From another thread: abort at once (the batch is interrupted)."""
        assoc = self.assoc
        if assoc is not None:
            try:
                from dimsekit.association import end_threads

                assoc.abort()
                end_threads(assoc, grace=0.5)
            except Exception:  # noqa: BLE001 - it is being torn down anyway
                pass


class _Abort(Exception):
    """Thrown into open_association to make it abort."""


# -- the work -----------------------------------------------------------------------


class _Row:
    """A row's bookkeeping while its queries run."""

    def __init__(self, number: int, label: str):
        self.number = number
        self.end = RowEnd(number, label)
        self.outstanding = 0  # tasks not finished
        self.seen: set[str] | None = None  # unique keys delivered (result caps)
        self.task: _Task  # the row's own query (set when the row starts)


class _Task:
    """One query to send: the row's own, a drill-down one, or a split part."""

    __slots__ = ("row", "query", "path", "level", "upper", "depth", "items", "done",
                 "children")

    def __init__(self, row: _Row, query: Any, path: tuple[int, ...], level: str | None,
                 upper: dict[str, str], depth: int):
        self.row = row
        self.query = query
        self.path = path
        self.level = level
        self.upper = upper  # unique keys of the levels above: keyword -> value
        self.depth = depth
        self.items: deque[Any] = deque()
        self.done = False
        self.children: list[_Task] = []

    def key(self) -> tuple:
        return (self.row.number, self.path)


class Batch(Iterator[Any]):
    """Runs rows of queries and yields :class:`Match` and :class:`RowEnd`
    items (see the module's docstring).

    ``connect()``: a context manager that opens an association (an
    :func:`~dimsekit.association.open_association`); ``rows``: an iterable
    of :class:`RowQuery`; ``make(label, dataset, model)``: prepares a query
    dimsekit builds itself (drill-down, split parts) -- the caller's
    :func:`~dimsekit.qr.query.finish_query`.  ``interrupts``: Ctrl-C
    cancels with a grace and raises Interrupted (the CLI); otherwise a
    KeyboardInterrupt aborts and goes on.  ``idle``: called when the batch
    waits for the peer (flush output).
    """

    def __init__(self, connect: Callable[[], Any], rows: Iterable[RowQuery],
                 make: Callable[[str, Any, Any], Any], *, plan: Plan | None = None,
                 dimse_timeout: float | None = None, show: Any = str,
                 interrupts: bool = False, idle: Any = None):
        self.connect = connect
        self.plan = plan or Plan()
        self.make = make
        self.dimse_timeout = dimse_timeout
        self.show = show
        self.interrupts = interrupts
        self.idle = idle
        self.summary = Summary()
        self._source = rows
        self._rows = iter(rows)
        self._rows_left = True
        self._lock = threading.Condition()
        self._connecting = threading.Lock()
        self._stopping = threading.Event()
        self._fatal: BaseException | None = None
        self._links: list[Link] = []
        self._delivered = 0
        self._items: Generator[Any, None, None] = self._run()
        #: for a Session's check that nothing is being read on it
        self._generator = self._items

    # -- iteration --------------------------------------------------------------

    def __iter__(self) -> Batch:
        return self

    def __next__(self) -> Any:
        try:
            return next(self._items)
        except _IdleFailed as exc:  # the caller's own output, not the association
            raise exc.error from None

    def close(self) -> None:
        """Stop: rows not yet sent are not sent; a query being read is
        cancelled (one association) or its association aborted (parallel)."""
        self._items.close()

    def __enter__(self) -> Batch:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- shared helpers ---------------------------------------------------------

    def retry_wait(self, attempt: int) -> float:
        return min(self.plan.retry_wait * 2 ** (attempt - 1), MAX_RETRY_WAIT)

    def _check_stop(self) -> None:
        if self._stopping.is_set():
            raise _Stop

    def _sleep(self, seconds: float) -> None:
        if self._stopping.wait(seconds):
            raise _Stop

    def _retried(self) -> None:
        with self._lock:
            self.summary.retries += 1

    def _opened(self, link: Link) -> None:
        with self._lock:
            self.summary.associations += 1

    def _next_row(self) -> _Row | None:
        """The next row's first task, or None when there are no more."""
        if not self._rows_left:
            return None
        try:
            rq = next(self._rows)
        except StopIteration:
            self._rows_left = False
            return None
        row = _Row(rq.number, rq.label)
        level = self.plan.check(rq.query)
        row.outstanding = 1
        row.task = _Task(row, self._top_query(rq.query, level), (), level, {}, 0)
        if self.plan.max_per_query:
            row.seen = set()
        self.summary.rows += 1
        return row

    def _top_query(self, query: Any, level: str | None) -> Any:
        """The row's query, with the unique keys drill-down and result caps
        need as return keys (those of its level and the levels above)."""
        wanted = []
        if self.plan.drill_down and level in LEVELS:
            levels = query.model.levels
            wanted = [UNIQUE_KEYS[lv] for lv in levels[:levels.index(level) + 1]]
        elif self.plan.max_per_query and level in UNIQUE_KEYS:
            wanted = [UNIQUE_KEYS[level]]
        missing = [k for k in wanted if k not in query.identifier]
        if not missing:
            return query
        import copy

        ds = copy.deepcopy(query.identifier)
        for keyword in missing:
            setattr(ds, keyword, "")
        return self.make(query.label, ds, query.model)

    # -- running one task on a link -----------------------------------------------

    def _run_task(self, link: Link, task: _Task) -> Iterator[tuple[_Task, Any, Any]]:
        """Send the task's query (and its split parts, if it is capped);
        yield ``(task, Dataset, Response)`` for every delivered match; the
        row's end records how it went.  Raises AssociationError (the batch
        ends), _Stop, Interrupted/KeyboardInterrupt."""
        row = task.row
        try:
            outcome: list[Any] = []
            yield from self._send(link, task, task.query, outcome)
            final, count = outcome
            if task.depth == 0:
                row.end.status = final.status
            if self.plan.max_per_query and (
                    count >= self.plan.max_per_query or final.capped):
                before = len(row.end.errors)
                yield from self._split(link, task, task.query, count, final)
                if task.depth == 0 and len(row.end.errors) == before:
                    row.end.status = 0x0000  # every part ended well: complete
            elif not final.ok:
                self._failed(row, PeerFailure(final.failure(task.query.label),
                                              status=final.status,
                                              error_comment=final.error_comment))
        except (PeerFailure, IncompleteError) as exc:
            self._failed(row, exc)

    def _failed(self, row: _Row, exc: DimsekitError) -> None:
        log.info("%s", exc.message)
        row.end.errors.append(exc)
        if row.end.error is None or (isinstance(exc, IncompleteError)
                                     and not isinstance(row.end.error, IncompleteError)):
            row.end.error = exc

    def _send(self, link: Link, task: _Task, query: Any, outcome: list[Any]
              ) -> Iterator[tuple[_Task, Any, Any]]:
        """One C-FIND request, reconnecting (and retrying) while nothing
        was delivered; yields its matches; ``outcome`` gets (final, matches)."""
        plan = self.plan
        reconnected = False
        attempt = 0
        row = task.row
        seen = row.seen
        unique = UNIQUE_KEYS.get(task.level or "")
        while True:
            run = link.ensure()
            reused = link.requests > 0
            link.requests += 1
            row.end.queries += 1
            count = 0
            responses = run.responses(query, row.number, cancel_after=plan.cancel_after)
            try:
                for ds, info in responses:
                    count += 1
                    if seen is not None:
                        value = _identity(ds, unique)
                        if value in seen:
                            continue
                        seen.add(value)
                    yield task, ds, info
            except IncompleteError as exc:
                link.drop(abort=True)
                if count == 0 and not self._stopping.is_set():
                    if reused and not reconnected:
                        # the peer closed the association after the last query
                        reconnected = True
                        log.info("query %s: the association ended after the previous "
                                 "query (%s); again on a new association", query.label,
                                 exc.message)
                        continue
                    if attempt < plan.retry:
                        attempt += 1
                        self._retried()
                        wait = self.retry_wait(attempt)
                        log.warning("%s; retrying in %g s (retry %d of %d)", exc.message,
                                    wait, attempt, plan.retry)
                        self._sleep(wait)
                        continue
                raise
            except (OSError, RuntimeError) as exc:
                # sending on an association the peer had closed
                link.drop(abort=True)
                if count == 0 and reused and not reconnected:
                    reconnected = True
                    log.info("query %s: the association ended after the previous query "
                             "(%s); again on a new association", query.label, exc)
                    continue
                raise IncompleteError(f"query {query.label}: the association failed: "
                                      f"{exc}", received=count) from None
            finally:
                responses.close()
                if link.run is not None and link.run.broken:
                    link.drop(abort=True)
            final = run.final
            if final is None:  # pragma: no cover - responses() ends with one
                raise IncompleteError(f"query {query.label}: no final status")
            outcome[:] = [final, count]
            return

    def _split(self, link: Link, task: _Task, query: Any, count: int, final: Any
               ) -> Iterator[tuple[_Task, Any, Any]]:
        """``query`` hit the cap: send its two halves (recursively)."""
        key = self.plan.split_on or SPLIT_KEYS.get(task.level, "StudyDate")
        path = split_key(key).path
        ds = query.identifier
        cap = self.plan.max_per_query or 0
        why = (f"{count} matches, the cap" if count >= cap
               else f"peer answered {final.text}")
        value = _value_at(ds, path)
        halves = _halves(_date_range(value))
        if halves is None:
            if not final.capped:
                # the peer said Success: complete, unless it caps silently
                log.warning("query %s: %d matches (the cap) on %s %s, which cannot be "
                            "split further; the peer ended it with Success, so it is "
                            "complete unless the peer cuts results silently", query.label,
                            count, key, _show_range(value))
                return
            self._failed(task.row, IncompleteError(
                f"query {query.label}: {why}, and {key} "
                f"{_show_range(value)} cannot be split further; results may be "
                f"incomplete", received=count))
            return
        log.info("query %s: %s; splitting on %s: %s and %s", query.label, why, key,
                 halves[0], halves[1])
        import copy

        from dimsekit.keys import apply_keys, parse_key

        for part in halves:
            part_ds = copy.deepcopy(ds)
            apply_keys(part_ds, [parse_key(f"{key}={part}")])
            label = f"{task.query.label} [{key}={part}]"
            part_query = self.make(label, part_ds, query.model)
            outcome: list[Any] = []
            yield from self._send(link, task, part_query, outcome)
            part_final, part_count = outcome
            if part_count >= cap or part_final.capped:
                yield from self._split(link, task, part_query, part_count, part_final)
            elif not part_final.ok:
                self._failed(task.row, PeerFailure(part_final.failure(label),
                                                   status=part_final.status,
                                                   error_comment=part_final.error_comment))

    def _children(self, task: _Task, ds: Any) -> _Task | None:
        """The drill-down query for one match of ``task`` (None at the
        target level, or when the match lacks its unique key)."""
        target = self.plan.drill_down
        level = task.level
        if not target or level not in LEVELS:
            return None
        levels = task.query.model.levels
        if levels.index(target.upper()) <= levels.index(level):
            return None
        upper = dict(task.upper)
        for lv in levels[:levels.index(level) + 1]:
            keyword = UNIQUE_KEYS[lv]
            if keyword in upper:
                continue
            value = ds.get(keyword)
            value = getattr(value, "value", value)
            if value in (None, ""):
                log.warning("query %s: a match without %s: no %s query for it",
                            task.query.label, keyword, levels[levels.index(level) + 1])
                return None
            upper[keyword] = str(value).rstrip("\0 ")
        child_level = levels[levels.index(level) + 1]
        from pydicom import Dataset

        from dimsekit.keys import apply_keys

        child = Dataset()
        child.QueryRetrieveLevel = child_level
        for keyword, value in upper.items():
            setattr(child, keyword, value)
        setattr(child, UNIQUE_KEYS[child_level], "")
        extra = self.plan.level_keys.get(child_level)
        if extra is None:
            for keyword in DEFAULT_LEVEL_KEYS[child_level]:
                setattr(child, keyword, "")
        else:
            apply_keys(child, extra)
        specific = task.query.identifier.get("SpecificCharacterSet")
        if specific is not None and "SpecificCharacterSet" not in child:
            child.SpecificCharacterSet = specific
        label = f"{task.row.end.label} {child_level} of {upper[UNIQUE_KEYS[level]]}"
        query = self.make(label, child, task.query.model)
        return _Task(task.row, query, (*task.path, len(task.children)), child_level,
                     upper, task.depth + 1)

    # -- one association, in the caller's thread --------------------------------------

    def _run(self) -> Generator[Any, None, None]:
        if self.plan.parallel > 1:
            yield from self._run_parallel()
            return
        link = Link(self, idle=_guarded(self.idle), interrupts=self.interrupts)
        self._links.append(link)
        row = None
        try:
            while True:
                row = self._next_row()
                if row is None:
                    break
                yield from self._run_row_inline(link, row)
                row = None
        except (DimsekitError, KeyboardInterrupt, _Stop) as exc:
            # the batch ends here: the row being sent is over too (failed,
            # or incomplete), and every row not sent is said to be
            if row is not None:
                yield self._row_end(row, ended_by=exc)
            yield from self._not_sent(exc)
            raise
        finally:
            self._stopping.set()
            link.drop()  # released; aborted when a request broke it

    def _run_row_inline(self, link: Link, row: _Row) -> Iterator[Any]:
        """The row's queries one after another, drill-down in pre-order."""
        pending: deque[_Task] = deque([row.task])
        while pending:
            task = pending.popleft()
            for t, ds, info in self._run_task(link, task):
                yield self._match(t, ds, info)
                child = self._children(t, ds)
                if child is not None:
                    task.children.append(child)
            pending.extendleft(reversed(task.children))
            task.children = []
        yield self._row_end(row)

    # -- N associations, N threads ---------------------------------------------------

    def _run_parallel(self) -> Iterator[Any]:
        plan = self.plan
        self._heap: list[tuple[tuple, int, _Task]] = []
        self._seq = 0
        self._running = 0
        self._order: deque[_Row] = deque()  # rows started, in row order
        self._queue: deque[Any] = deque()  # unordered: items ready
        self._window = max(8, 4 * plan.parallel)
        self._alive = plan.parallel
        threads = []
        for n in range(plan.parallel):
            link = Link(self)
            self._links.append(link)
            t = threading.Thread(target=self._worker, args=(link,), daemon=True,
                                 name=f"dimsekit-batch-{n + 1}")
            threads.append(t)
        for t in threads:
            t.start()
        ok = False
        try:
            if plan.ordered:
                yield from self._emit_ordered()
            else:
                yield from self._emit_unordered()
            ok = self._fatal is None
        except _Ended:
            pass
        except KeyboardInterrupt as exc:
            if not self.interrupts:
                raise
            raise Interrupted(f"interrupted after {self._delivered} responses; "
                              f"{plan.parallel} associations aborted") from exc
        finally:
            self._stopping.set()
            with self._lock:
                self._lock.notify_all()
            if not ok:
                for link in self._links:
                    link.kill()
            for t in threads:
                t.join(5.0)
            if self._fatal is None:
                self._count_not_sent()
        if self._fatal is not None:
            # what arrived is kept: the rows in flight, then the rows not sent
            yield from self._drain(self._fatal)
            yield from self._not_sent(self._fatal)
            raise self._fatal

    def _drain(self, why: BaseException) -> Iterator[Any]:
        """After a worker's fatal error: the items the rows in flight still
        hold, in order, and their RowEnds."""
        if not self.plan.ordered:
            yield from list(self._queue)
            self._queue.clear()
        for row in list(self._order):
            if self.plan.ordered:
                stack = [row.task]
                while stack:
                    task = stack.pop()
                    yield from list(task.items)
                    task.items.clear()
                    stack.extend(reversed(task.children))
            yield self._row_end(row, ended_by=why)
        self._order.clear()

    def _worker(self, link: Link) -> None:
        try:
            while True:
                task = self._take()
                if task is None:
                    break
                self._work(link, task)
        except (_Stop, _Retired):
            pass
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            with self._lock:
                if self._fatal is None:
                    self._fatal = exc
                self._stopping.set()
                self._lock.notify_all()
        finally:
            with self._lock:
                self._alive -= 1
                self._lock.notify_all()
            with contextlib.suppress(Exception):  # ending anyway
                link.drop(abort=self._stopping.is_set() and self._fatal is not None)

    def _take(self) -> _Task | None:
        """The next task in output order: drill-down queries of rows in
        flight first, then the next row (no more than the window ahead)."""
        with self._lock:
            while True:
                if self._stopping.is_set():
                    return None
                if self._heap:
                    _, _, task = heapq.heappop(self._heap)
                    self._running += 1
                    return task
                if self._rows_left and len(self._order) < self._window:
                    row = self._next_row()
                    if row is not None:
                        self._order.append(row)
                        self._running += 1
                        return row.task
                if not self._rows_left and self._running == 0:
                    self._lock.notify_all()
                    return None
                self._lock.wait()

    def _work(self, link: Link, task: _Task) -> None:
        ordered = self.plan.ordered
        emitted = False
        retired = False
        try:
            for t, ds, info in self._run_task(link, task):
                emitted = True
                child = self._children(t, ds)
                with self._lock:
                    match = self._match(t, ds, info)
                    if ordered:
                        t.items.append(match)
                    else:
                        self._queue.append(match)
                    if child is not None:
                        t.children.append(child)
                        t.row.outstanding += 1
                        self._push(child)
                    self._lock.notify_all()
        except AssociationError as exc:
            with self._lock:
                # a peer that takes fewer associations than --parallel asks
                # for: this one retires, its query goes to the others
                retired = not emitted and self._alive > 1 and not self._stopping.is_set()
                if retired:
                    self._running -= 1
                    self._push(task)
                    self._lock.notify_all()
            if retired:
                log.warning("%s; going on with %d associations", exc.message,
                            self._alive - 1)
                raise _Retired from None
            raise
        finally:
            if not retired:
                with self._lock:
                    task.done = True
                    self._running -= 1
                    task.row.outstanding -= 1
                    if not ordered and task.row.outstanding == 0:
                        self._queue.append(self._row_end(task.row))
                        self._order.remove(task.row)
                    self._lock.notify_all()

    def _push(self, task: _Task) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (task.key(), self._seq, task))

    def _emit_ordered(self) -> Iterator[Any]:
        """Items in row order, each row's queries in pre-order."""
        lock = self._lock
        while True:
            with lock:
                while not self._order:
                    if self._done_all():
                        return
                    self._wait()
                row = self._order[0]
            stack = [row.task]
            while stack:
                task = stack.pop()
                while True:
                    with lock:
                        while not task.items and not task.done:
                            self._wait()
                        batch = list(task.items)
                        task.items.clear()
                        done = task.done
                    yield from batch
                    if done and not batch:
                        break
                stack.extend(reversed(task.children))
            with lock:
                self._order.popleft()
                lock.notify_all()
            yield self._row_end(row)

    def _emit_unordered(self) -> Iterator[Any]:
        lock = self._lock
        while True:
            with lock:
                while not self._queue:
                    if self._done_all():
                        return
                    self._wait()
                batch = list(self._queue)
                self._queue.clear()
            yield from batch

    def _done_all(self) -> bool:
        if self._fatal is not None:
            return True
        return not self._rows_left and self._running == 0 and not self._heap

    def _wait(self) -> None:
        if self._fatal is not None:
            raise _Ended
        if self.idle is not None:
            self._lock.release()
            try:
                self.idle()
            finally:
                self._lock.acquire()
        self._lock.wait(0.5)
        if self._fatal is not None:
            raise _Ended

    # -- items ----------------------------------------------------------------------

    def _match(self, task: _Task, ds: Any, info: Any) -> Match:
        task.row.end.matches += 1
        self._delivered += 1
        return Match(task.row.number, ds, task.level, task.depth, info)

    def _row_end(self, row: _Row, ended_by: BaseException | None = None) -> RowEnd:
        end = row.end
        if isinstance(ended_by, DimsekitError) and not isinstance(ended_by, UsageError):
            if isinstance(ended_by, AssociationError) and end.matches:
                ended_by = IncompleteError(f"{ended_by.message} after {end.matches} "
                                           f"responses", received=end.matches)
            if not isinstance(end.error, IncompleteError):
                end.errors.append(ended_by)
                end.error = ended_by
        elif isinstance(ended_by, KeyboardInterrupt) and end.error is None:
            end.error = Interrupted("interrupted")
            end.errors.append(end.error)
        s = self.summary
        s.matches += end.matches
        if isinstance(end.error, (IncompleteError, Interrupted)):
            s.incomplete += 1
        elif end.error is not None:
            s.failed += 1
        elif end.matches == 0:
            s.empty += 1
        return end

    def _not_sent(self, why: BaseException) -> Iterator[RowEnd]:
        """A RowEnd (``sent=False``) for every row the batch did not get
        to, when it ended early; counted in the summary's ``not_sent``."""
        if not self._rows_left or not isinstance(why, AssociationError):
            self._count_not_sent()  # interrupted: counted, not listed
            return
        reason = why if isinstance(why, DimsekitError) else None
        try:
            for rq in self._rows:
                self.summary.not_sent += 1
                yield RowEnd(rq.number, rq.label, error=reason, sent=False,
                             errors=[reason] if reason is not None else [])
        except DimsekitError:
            pass
        self._rows_left = False

    def _count_not_sent(self) -> None:
        """Rows never sent (the batch ended early): counted, not read."""
        if not self._rows_left:
            return
        total = getattr(self._source, "count", None)
        if isinstance(total, int) and total >= self.summary.rows:
            self.summary.not_sent += total - self.summary.rows
            self._rows_left = False
            return
        n = 0
        try:
            for _ in self._rows:
                n += 1
        except DimsekitError:
            pass
        self._rows_left = False
        self.summary.not_sent += n


class _Retired(Exception):
    """A worker whose association the peer refused while others work."""


class _IdleFailed(Exception):
    """The ``idle`` callback (the caller's flush) failed: its error, carried
    past the handlers that take an OSError for a lost association (a
    reader of stdout gone away is not a reason to reconnect)."""

    def __init__(self, error: BaseException):
        super().__init__(error)
        self.error = error


def _guarded(idle: Any) -> Any:
    if idle is None:
        return None

    def call() -> None:
        try:
            idle()
        except Exception as exc:  # noqa: BLE001 - carried to the caller as it is
            raise _IdleFailed(exc) from exc

    return call


class _Ended(Exception):
    """The emitter stops: a worker failed (its error is raised instead)."""


# -- dates ----------------------------------------------------------------------------


def _identity(ds: Any, unique: str | None) -> str:
    """What tells one match from another when a capped query's parts are
    merged: the level's unique key, or the whole response (worklist, UPS)."""
    if unique is not None:
        value = ds.get(unique)
        if value is not None:
            return str(getattr(value, "value", value))
    import hashlib

    return hashlib.sha1(repr(sorted((e.tag, str(e.value)) for e in ds)).encode(),
                        usedforsecurity=False).hexdigest()


@functools.lru_cache(maxsize=16)
def split_key(text: str) -> Any:
    """The KeyOverride of a date key to split on (UsageError unless it
    names a DA element, at the top level or in a sequence item)."""
    from pydicom.datadict import dictionary_VR

    from dimsekit.keys import parse_key

    try:
        key = parse_key(text)
    except UsageError as exc:
        raise UsageError(f"--split-on: {exc.message}") from None
    tag, index = key.path[-1]
    try:
        vr = dictionary_VR(tag)
    except KeyError:
        vr = None
    if key.value is not None or index is not None or vr != "DA":
        raise UsageError(f"--split-on {text!r}: a date key (VR DA, such as StudyDate) "
                         f"is split, without a value")
    return key


def _value_at(ds: Any, path: Any) -> Any:
    """The value at a ``-k`` path in ``ds`` (None if absent)."""
    from dimsekit.keys import element_holder

    holder = element_holder(ds, path)
    elem = None if holder is None else holder.get(path[-1][0])
    return None if elem is None else elem.value


def level_of(query: Any) -> str | None:
    """A prepared query's QueryRetrieveLevel, upper case (None: none)."""
    value = query.identifier.get("QueryRetrieveLevel")
    if value is None:
        return None
    return str(getattr(value, "value", value)).strip().upper() or None


def _parse_date(text: str) -> datetime.date:
    return datetime.datetime.strptime(text.strip(), "%Y%m%d").date()


def _date_range(value: Any) -> tuple[datetime.date, datetime.date] | None:
    """The (first, last) day a date matching key covers; None when it is
    not a date or a range of dates."""
    text = str(getattr(value, "value", value) or "").strip()
    try:
        if not text:
            return DATE_FLOOR, DATE_CEILING
        if "-" in text:
            first, _, last = text.partition("-")
            return (_parse_date(first) if first.strip() else DATE_FLOOR,
                    _parse_date(last) if last.strip() else DATE_CEILING)
        day = _parse_date(text)
        return day, day
    except ValueError:
        return None


def _halves(span: tuple[datetime.date, datetime.date] | None) -> tuple[str, str] | None:
    if span is None:
        return None
    first, last = span
    if first >= last:
        return None
    middle = first + (last - first) // 2
    fmt = "%Y%m%d"

    def text(a: datetime.date, b: datetime.date) -> str:
        return a.strftime(fmt) if a == b else f"{a.strftime(fmt)}-{b.strftime(fmt)}"

    return text(first, middle), text(middle + datetime.timedelta(days=1), last)


def _show_range(value: Any) -> str:
    text = str(getattr(value, "value", value) or "").strip()
    return repr(text) if text else "(empty)"


__all__ = ["Batch", "Interrupted", "Link", "Match", "Plan", "RowEnd", "RowQuery",
           "Summary", "level_of"]
