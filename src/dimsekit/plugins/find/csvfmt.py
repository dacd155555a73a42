"""``--format csv``: a header row, then one row per response.

Columns come from ``--columns`` (keywords, tags or nested paths in the
``-k`` grammar, e.g. ``ScheduledProcedureStepSequence[0].Modality``) or,
by default, from the user's keys in query order (``-k`` order first, then
the query files' other elements) — never a key dimsekit adds itself, such
as the Specific Character Set of a query with non-ASCII values (name it
with ``-k`` or ``--columns`` to get that column).  A ``--columns`` key the
query lacks is added to it as a return key before the query is sent
(:func:`return_keys_for_columns`), so the peer returns it.  Multiple
values are joined with ``\\``; binary values are base64.
"""

from __future__ import annotations

import base64
import csv
import io
from collections.abc import Iterable
from typing import Any, BinaryIO

from dimsekit.api import UsageError, element_holder, parse_key

SPECIFIC_CHARACTER_SET = 0x00080005


def _paths_of(ds: Any, prefix: str = "", steps: tuple = ()) -> Iterable[tuple[str, tuple]]:
    """(column name, path) for every leaf key of an identifier, in tag order."""
    from pydicom.datadict import keyword_for_tag

    for elem in ds:
        name = keyword_for_tag(elem.tag) or f"({elem.tag.group:04X},{elem.tag.element:04X})"
        if elem.VR == "SQ" and elem.value:
            yield from _paths_of(elem.value[0], f"{prefix}{name}[0].",
                                 steps + ((elem.tag, 0),))
        else:
            yield f"{prefix}{name}", steps + ((elem.tag, None),)


def default_columns(queries: list[Any], keys: list[Any]) -> list[tuple[str, tuple]]:
    """The user's keys in query order: ``-k`` keys first (as typed), then
    the other elements of each query, in tag order.  Specific Character Set
    only when a ``-k`` key names it: dimsekit adds it to a query with
    non-ASCII values, and the CSV is UTF-8 whatever the peer used."""
    seen: dict[tuple, str] = {}
    for key in keys:
        path = tuple(key.path)
        if path and (path[-1][1] is None) and path not in seen:
            seen[path] = key.text.split("=", 1)[0].strip()
    for ds in queries:
        for name, path in _paths_of(ds):
            if path != ((SPECIFIC_CHARACTER_SET, None),):
                seen.setdefault(path, name)
    return [(name, path) for path, name in seen.items()]


def columns_from_option(spec: str) -> list[tuple[str, tuple]]:
    """``--columns K1,K2``: each resolved with the ``-k`` grammar (exit 2 if bad)."""
    out = []
    for text in (part.strip() for part in _split_columns(spec)):
        if text:
            key = parse_key(text)
            if key.value:
                raise UsageError(f"--columns: {text!r} holds a value; a column is "
                                 f"a key alone (e.g. {text.split('=', 1)[0]})")
            path = tuple(key.path)
            if path[-1][1] is not None:  # "Seq[0]" alone: the item, not a value
                path = path[:-1] + ((path[-1][0], None),)
            out.append((text, path))
    return out


def return_keys_for_columns(columns: str | None, query: Any) -> list[Any]:
    """The return keys ``query`` (an identifier) needs for ``--columns``:
    one empty key (``KeyOverride``) for each column it lacks, in column
    order; nothing without ``--columns``.  Apply them to the query with
    ``apply_keys`` before it is sent, so the peer returns those elements;
    keys the query has (with or without a matching value) stay as they are.
    """
    if not columns:
        return []
    keys = []
    for text, path in columns_from_option(columns):
        if not _has(query, path):
            keys.append(parse_key(text.split("=", 1)[0]))
    return keys


_holder = element_holder


def _has(ds: Any, path: tuple) -> bool:
    """Whether the element at ``path`` is in ``ds`` (its items included)."""
    holder = _holder(ds, path)
    return holder is not None and path[-1][0] in holder


def _split_columns(spec: str) -> list[str]:
    """Split at commas outside (gggg,eeee) parentheses."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for ch in spec:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def cell(ds: Any, path: tuple) -> str:
    """The text of the element at ``path`` in ``ds`` ('' if absent)."""
    from pydicom.multival import MultiValue

    current = _holder(ds, path)
    if current is None:
        return ""
    elem = current.get(path[-1][0])
    if elem is None or elem.value is None:
        return ""
    value = elem.value
    if elem.VR == "SQ":
        return ""
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, (MultiValue, list, tuple)):
        return "\\".join("" if v is None else str(v) for v in value)
    return str(value)


class CsvWriter:
    def __init__(self, stream: BinaryIO, options: dict[str, Any]):
        self.stream = stream
        spec = options.get("columns")
        if spec:
            self.columns = columns_from_option(spec)
        else:
            self.columns = default_columns(options.get("queries", []),
                                           options.get("keys", []))
        #: --batch: each line says its row and result (match, none, failed,
        #: incomplete); --drill-down: the level it matched at
        self.batch = bool(options.get("batch"))
        self.levels = bool(options.get("drill_down"))
        self._buffer = io.StringIO()
        self._csv = csv.writer(self._buffer, lineterminator="\r\n")

    def _row(self, values: list[str]) -> None:
        self._csv.writerow(values)
        self.stream.write(self._buffer.getvalue().encode("utf-8"))
        self._buffer.seek(0)
        self._buffer.truncate()

    def _lead(self, row: Any, result: str, level: str | None) -> list[str]:
        lead = [str(row), result] if self.batch else []
        if self.levels:
            lead.append(level or "")
        return lead

    def begin(self) -> None:
        self._row(self._lead("row", "result", "level")
                  + [name for name, _ in self.columns])

    def write(self, ds: Any, info: Any) -> None:
        lead = self._lead(getattr(info, "row", ""), "match", getattr(info, "level", None))
        self._row(lead + [cell(ds, path) for _, path in self.columns])

    def row_end(self, end: Any) -> None:
        """A batch row without matches, or that failed: a line saying so."""
        if not self.batch or (end.matches and end.error is None):
            return
        if not getattr(end, "sent", True):
            result = "not-sent"
        elif end.error is None:
            result = "none"
        else:
            result = ("incomplete" if type(end.error).__name__ in ("IncompleteError",
                                                                   "Interrupted")
                      else "failed")
        self._row(self._lead(end.row, result, None) + [""] * len(self.columns))

    def end(self) -> None:
        self.stream.flush()
