"""Batch files: one query per row, read twice -- once to check every row
before anything is sent, once to send them -- so that memory stays flat
however many rows there are (standard input is spooled to a temporary
file on the first pass).

Two formats, told apart by their first character:

* CSV with a header row: each column names a key in the ``-k`` grammar
  (``PatientID``, ``(0008,0050)``, ``ScheduledProcedureStepSequence[0].Modality``);
  each cell is that key's value, an empty cell a return key;
* NDJSON: one DICOM JSON object per line (``dimsekit find --format ndjson``
  output, for one), or one DICOM JSON array (``--format json``): each
  object's elements are the row's keys.  dimsekit's own batch row element
  (:data:`ROW_CREATOR`) is dropped.

    batch = BatchFile("ids.csv")            # or BatchFile("-", stream=sys.stdin)
    for row in batch.rows():                # Row(number, label, keys | dataset)
        ...
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from dimsekit.errors import UsageError

#: the Private Creator of the element that ties each response of a batch
#: to its row: (0009,0010) LO "DIMSEKIT", (0009,1010) IS row number
ROW_CREATOR = "DIMSEKIT"
ROW_GROUP = 0x0009
ROW_ELEMENT = 0x10  # (0009,xx10) within the block
_ROW_CREATOR_TAG = 0x00090010
_ROW_TAG = 0x00091010

_SPOOL = 1 << 20  # standard input kept in memory up to 1 MiB, then a file
#: what a response says that is no key of the next query: dropped from an
#: NDJSON row (another run's output): the character set (chosen again for
#: the values), where to retrieve from, availability and the "number of
#: related" counts.  Its QueryRetrieveLevel is kept unless -k gives one.
RESPONSE_ONLY = (0x00080005, 0x00080054, 0x00080056, 0x00201200, 0x00201202,
                 0x00201204, 0x00201206, 0x00201208, 0x00201209)
_QUERY_RETRIEVE_LEVEL = 0x00080052
_SPECIFIC_CHARACTER_SET = 0x00080005
#: VRs whose value, an ASCII str, pydicom writes as it is
_PLAIN_TEXT_VRS = frozenset(("AE", "AS", "CS", "DA", "DT", "LO", "LT", "PN", "SH", "ST",
                             "TM", "UC", "UI", "UR", "UT"))


@dataclass
class Row:
    """One row of a batch: its 1-based number, a label for messages, and
    its keys: parsed ``-k`` keys (CSV) or a pydicom Dataset (NDJSON)."""

    number: int
    label: str
    keys: list[Any] | None = None  # KeyOverride
    dataset: Any = None


class BatchFile:
    """A batch of queries in a file (``"-"``: standard input, or ``stream``).

    :meth:`rows` reads it from the start each time it is called; a stream
    is copied as it is read the first time, so it can be read again."""

    def __init__(self, path: str, *, stream: IO[str] | None = None):
        self.path = path
        self.name = "standard input" if path == "-" else path
        self._stream = stream
        self._spool: Any = None
        #: rows read by the last complete pass
        self.count: int | None = None

    def _open(self) -> Any:
        if self._spool is not None:
            self._spool.seek(0)
            return io.TextIOWrapper(self._spool, encoding="utf-8", newline="")
        if self.path == "-" or self._stream is not None:
            import sys

            stream = self._stream if self._stream is not None else sys.stdin
            self._spool = tempfile.SpooledTemporaryFile(_SPOOL)  # noqa: SIM115 - kept
            return _Tee(stream, self._spool)
        try:
            return open(self.path, encoding="utf-8-sig", newline="")  # noqa: SIM115
        except OSError as exc:
            raise UsageError(f"cannot read batch file {self.path!r}: "
                             f"{exc.strerror or exc}") from None

    def close(self) -> None:
        if self._spool is not None:
            self._spool.close()
            self._spool = None

    def rows(self) -> Iterator[Row]:
        """Every row, parsed (UsageError naming the row and column)."""
        stream = self._open()
        try:
            first = _peek(stream)
            if first in ("{", "["):
                yield from self._json_rows(stream, array=first == "[")
            else:
                yield from self._csv_rows(stream)
        except UnicodeDecodeError as exc:
            raise UsageError(f"batch {self.name}: not UTF-8 text ({exc.reason} at byte "
                             f"{exc.start})") from None
        except csv.Error as exc:
            raise UsageError(f"batch {self.name}: not valid CSV ({exc})") from None
        finally:
            if not isinstance(stream, _Tee):
                if isinstance(stream, io.TextIOWrapper) and self._spool is not None:
                    stream.detach()  # the spool stays open for the next pass
                else:
                    stream.close()

    def _csv_rows(self, stream: IO[str]) -> Iterator[Row]:
        from dimsekit.keys import parse_key, value_setter

        first = stream.readline()
        delimiter = next((d for d in (",", ";", "\t") if d in first), ",")
        reader = csv.reader(itertools.chain([first], stream), delimiter=delimiter)
        header = next(reader, None)
        if not header or not any(h.strip() for h in header):
            raise UsageError(f"batch {self.name}: no header row naming the keys "
                             f"(e.g. PatientID,AccessionNumber)")
        columns = [h.strip() for h in header]
        keys = []
        for i, col in enumerate(columns, 1):
            if not col:
                raise UsageError(f"batch {self.name}: column {i} of the header is empty")
            if "=" in col:
                raise UsageError(f"batch {self.name}: header column {col!r}: a column "
                                 f"names a key; its values are in the rows below")
            try:
                keys.append(parse_key(col))
            except UsageError as exc:
                raise UsageError(f"batch {self.name}: header column {col!r}: "
                                 f"{exc.message}") from None
        setters = [value_setter(key) for key in keys]
        width = len(columns)
        number = 0
        for cells in reader:
            if not cells or (len(cells) == 1 and not cells[0].strip()):
                continue  # a blank line
            number += 1
            line = reader.line_num
            label = f"{self.name} row {number} (line {line})"
            if len(cells) != width:
                raise UsageError(f"batch {label}: {len(cells)} cells for {width} columns")
            row_keys = []
            for col, set_value, value in zip(columns, setters, cells, strict=True):
                value = value.strip()
                try:
                    row_keys.append(set_value(value or None))
                except UsageError as exc:
                    raise UsageError(f"batch {label}, column {col!r}: {exc.message}") \
                        from None
            yield Row(number, label, keys=row_keys)
        self.count = number

    def _json_rows(self, stream: IO[str], *, array: bool) -> Iterator[Row]:
        if array:
            try:
                objects = json.load(stream)
            except ValueError as exc:
                raise UsageError(f"batch {self.name}: not valid JSON ({exc})") from None
            lines: Iterator[tuple[int, Any]] = enumerate(objects, 1)
        else:
            lines = _json_lines(self.name, stream)
        number = 0
        for line, obj in lines:
            number += 1
            label = f"{self.name} row {number} (line {line})" if not array else \
                f"{self.name} row {number}"
            yield Row(number, label, dataset=_dataset(label, obj))
        self.count = number


def _json_lines(name: str, stream: IO[str]) -> Iterator[tuple[int, Any]]:
    for line, text in enumerate(stream, 1):
        if not text.strip():
            continue
        try:
            yield line, json.loads(text)
        except ValueError as exc:
            raise UsageError(f"batch {name} line {line}: not valid JSON ({exc})") from None


def _dataset(label: str, obj: Any) -> Any:
    from pydicom import Dataset

    if not isinstance(obj, dict):
        raise UsageError(f"batch {label}: a row is a DICOM JSON object, "
                         f"not {type(obj).__name__}")
    try:
        ds = Dataset.from_json(obj)
        for elem in ds.iterall():
            elem.value  # noqa: B018 - a bad value is found now, not when sent
    except Exception as exc:  # noqa: BLE001 - pydicom raises many kinds
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UsageError(f"batch {label}: not a DICOM JSON object ({text})") from None
    drop_row_element(ds)
    for tag in RESPONSE_ONLY:
        if tag in ds:
            del ds[tag]
    if not len(ds):
        raise UsageError(f"batch {label}: no keys")
    return ds


def drop_row_element(ds: Any) -> None:
    """Remove dimsekit's batch row element (another batch's output read as
    a batch)."""
    try:
        block = ds.private_block(ROW_GROUP, ROW_CREATOR)
    except KeyError:
        return
    start = block.block_start
    for tag in [t for t in ds.keys() if t.group == ROW_GROUP and (  # noqa: SIM118
            t.element == start >> 8 or start <= t.element < start + 0x100)]:
        del ds[tag]


_ADD_ROW_PAIR: Any = None


def add_row_element(ds: Any, row: int) -> None:
    """Tie a response to its batch row: (0009,0010) LO "DIMSEKIT",
    (0009,1010) IS row number (docs/output.md); in the next free block of
    group 0009 when the peer's response uses (0009,0010) already."""
    global _ADD_ROW_PAIR
    if any(tag >> 16 == ROW_GROUP for tag in ds.keys()):  # noqa: SIM118 - tags
        block = ds.private_block(ROW_GROUP, ROW_CREATOR, create=True)
        block.add_new(ROW_ELEMENT, "IS", str(row))
        return
    add = _ADD_ROW_PAIR
    if add is None:
        from dimsekit._internals.datasets import private_pair_adder

        add = _ADD_ROW_PAIR = private_pair_adder(_ROW_CREATOR_TAG, _ROW_TAG, ROW_CREATOR,
                                                 "IS")
    if not add(ds, str(row)):
        ds.add_new(_ROW_CREATOR_TAG, "LO", ROW_CREATOR)
        ds.add_new(_ROW_TAG, "IS", str(row))


def _peek(stream: IO[str]) -> str:
    """The first character that is not white space, without consuming it
    (streams are read through a line buffer)."""
    if isinstance(stream, _Tee):
        return stream.peek_char()
    pos = stream.tell()
    while True:
        c = stream.read(1)
        if not c or not c.isspace():
            stream.seek(pos)
            return c
        pos = stream.tell()


class _Tee(io.TextIOBase):
    """A text stream read once and copied (UTF-8) into ``spool``."""

    def __init__(self, stream: IO[str], spool: Any):
        self._stream = stream
        self._spool = spool
        self._pending = ""

    def peek_char(self) -> str:
        while True:
            line = self.readline()
            if not line:
                return ""
            stripped = line.lstrip()
            if stripped:
                self._pending = line
                return stripped[0]

    def readline(self, size: int = -1) -> str:  # type: ignore[override]
        if self._pending:
            line, self._pending = self._pending, ""
            return line
        line = self._stream.readline()
        if line:
            if line.startswith("\ufeff") and self._spool.tell() == 0:
                line = line[1:]
            self._spool.write(line.encode("utf-8", "surrogateescape"))
        return line

    def read(self, size: int | None = -1) -> str:
        parts: list[str] = []
        while True:
            line = self.readline()
            if not line:
                return "".join(parts)
            parts.append(line)

    def __iter__(self) -> Iterator[str]:  # type: ignore[override]
        return self

    def __next__(self) -> str:  # type: ignore[override]
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def readable(self) -> bool:
        return True



_COPY: Any = None
_DATASET: Any = None
_APPLY_KEYS: Any = None
_NON_ASCII: Any = None


class RowBuilder:
    """A batch's rows as identifiers: ``base`` (a query file's Dataset;
    None: empty) with the batch's common ``keys`` (``-k``) applied once,
    then each row's keys on top -- a row's value wins over a common
    return key.

    A row whose keys are all top-level elements shares the template's
    other elements instead of copying them (apply_keys replaces an
    element, never changes one in place); any other row gets a deep copy."""

    def __init__(self, base: Any, keys: list[Any]):
        global _COPY, _DATASET, _APPLY_KEYS, _NON_ASCII
        import copy

        from pydicom import Dataset

        from dimsekit._internals.datasets import plain_dataset_maker
        from dimsekit._internals.encoding import template_encoder
        from dimsekit.keys import PlainKeys, apply_keys
        from dimsekit.qr.query import TEXT_VRS, _non_ascii

        # imported once here, not once a row
        _COPY, _DATASET, _APPLY_KEYS, _NON_ASCII = copy, Dataset, apply_keys, _non_ascii
        self.template = copy.deepcopy(base) if base is not None else Dataset()
        apply_keys(self.template, keys)
        self.keys = list(keys)
        #: the template's elements (converted), which every row shares
        self._elements = {elem.tag: elem for elem in self.template}
        #: encodes a row's identifier at the cost of the row's own elements
        #: (None: the pure path; :attr:`Query.encoder <dimsekit.qr.find.Query>`)
        self.encoder = template_encoder(self._elements)
        #: Dataset(elements), at less cost on the fast path
        self._make = plain_dataset_maker()
        #: a row's keys set straight into its elements (most CSV columns)
        self._plain = PlainKeys()
        #: the template holds no text that is not ASCII (see :meth:`non_ascii`)
        self._ascii = not _non_ascii(self.template)
        self._text_vrs = TEXT_VRS
        #: the top-level tags the last row set on a shared template (None:
        #: the row got a copy of its own)
        self._fresh: frozenset[int] | None = None
        #: (Specific Character Set, tags a row sets) under which the
        #: template's other elements were found encodable
        self._template_ok: set[tuple[str, frozenset[int]]] = set()

    def identifier(self, row: Row) -> tuple[Any, list[Any]]:
        """The row's identifier, and every key applied (for messages)."""
        copy, apply_keys = _COPY, _APPLY_KEYS
        template = self.template
        keys = row.keys
        if keys is not None:
            if all(len(k.path) == 1 and k.path[0][1] is None for k in keys):
                elements = dict(self._elements)
                self._fresh = frozenset(k.path[0][0] for k in keys)
                if self._plain.apply(elements, keys):
                    return self._make(elements), [*self.keys, *keys]
                ds = self._make(elements)
            else:
                ds = copy.deepcopy(template)
                self._fresh = None
            apply_keys(ds, keys)
            return ds, [*self.keys, *keys]
        ds = self._make(dict(self._elements))
        level_given = _QUERY_RETRIEVE_LEVEL in template
        fresh = set()
        for elem in row.dataset:
            if elem.tag == _QUERY_RETRIEVE_LEVEL and level_given:
                continue  # another run's level: -k says which level now
            ds[elem.tag] = elem
            fresh.add(elem.tag)
        self._fresh = frozenset(fresh)
        return ds, self.keys

    def non_ascii(self, ds: Any) -> list[Any]:
        """:func:`~dimsekit.qr.query._non_ascii` of a row's identifier (its
        text elements that hold characters outside ASCII), at the cost of
        the row's own elements when the template holds none: the template's
        elements are shared, and nothing changes their text in place."""
        elements = self._elements
        if not self._ascii:
            return _NON_ASCII(ds)
        text_vrs = self._text_vrs
        for tag, elem in ds.items():
            if elements.get(tag) is elem:
                continue
            vr = elem.VR
            if vr == "SQ" or getattr(elem, "is_raw", True):
                return _NON_ASCII(ds)
            if vr in text_vrs:
                value = elem.value
                if value is not None and not (isinstance(value, str) and value.isascii()):
                    return _NON_ASCII(ds)  # (or several values, a PersonName): in full
        return []

    def check_encodable(self, label: str, ds: Any) -> None:
        """:func:`~dimsekit.qr.query.check_encodable` for the row
        :meth:`identifier` made last, at the cost of the row's own
        elements once the template's were checked under the same Specific
        Character Set (the template is shared, so it cannot have changed)."""
        from dimsekit.qr.query import check_encodable

        Dataset = _DATASET
        fresh = self._fresh
        charset = ds.get(_SPECIFIC_CHARACTER_SET)
        key = (repr(None if charset is None else charset.value), fresh or frozenset())
        if fresh is None or key not in self._template_ok:
            check_encodable(label, ds)
            if fresh is not None:
                self._template_ok.add(key)
            return
        own: dict[Any, Any] = {}
        for tag in fresh:
            elem = ds.get(tag)
            if elem is None:
                continue
            value = elem.value
            if elem.VR in _PLAIN_TEXT_VRS and isinstance(value, str) and value.isascii():
                continue  # ASCII text in a text VR: nothing pydicom could refuse
            own[tag] = elem
        if not own:
            return
        if charset is not None:
            own[_SPECIFIC_CHARACTER_SET] = charset
        check_encodable(label, Dataset(own))


class PreparedRows:
    """A batch's rows as prepared queries, read twice: :meth:`check`
    prepares every row once and keeps nothing but the models used (a bad
    row is a UsageError before anything is sent); iterating prepares each
    row again as it is sent, so memory stays flat.

    ``source()``: a fresh iterable of :class:`Row` each call;
    ``prepare(row, checked=False)``: its :class:`~dimsekit.qr.find.Query`
    (``checked``: the row was prepared before, so its identifier is known
    to be encodable)."""

    def __init__(self, source: Any, prepare: Any):
        self.source = source
        self.prepare = prepare
        #: rows counted by check()
        self.count = 0
        #: the first row's prepared query (for default CSV columns)
        self.first: Any = None
        #: the information models the rows use, in order of first use
        self.models: dict[str, Any] = {}

    def check(self) -> PreparedRows:
        for row in self.source():
            query = self.prepare(row)
            if self.first is None:
                self.first = query
            self.models.setdefault(query.model.sop_class_uid, query.model)
            self.count += 1
        return self

    def __iter__(self) -> Iterator[Any]:
        """Each row prepared again, as it is sent (already checked: the
        identifier is not encoded twice, ``prepare(row, checked=True)``)."""
        from dimsekit.qr.batch import RowQuery

        for row in self.source():
            yield RowQuery(row.number, row.label, self.prepare(row, checked=True))
