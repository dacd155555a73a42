"""Encoding a batch's identifiers a piece at a time: see
:mod:`dimsekit._internals`.

Why: every row of a batch shares its template's elements
(:class:`~dimsekit.qr.rows.RowBuilder`: the ``-k`` keys and the query
file), and pynetdicom's ``encode`` (pydicom's ``write_dataset``) encodes
them all again for every row -- a worklist template's sequence included,
~70 us of the ~80 us it takes to encode case 5's identifier.

How: pydicom writes a dataset as its elements one after another, in tag
order (retired group lengths left out), each by ``write_data_element``
under the dataset's Specific Character Set, once ``correct_ambiguous_vr``
has been run over it.  Here each of the template's elements is written
once per transfer syntax and character set, by ``write_data_element``
itself, and every row's own elements (those that are not the template's
very objects) are written for the row and spliced in, in tag order.
``tests/test_perf_equivalence.py`` holds the result to pynetdicom's
``encode`` of the same dataset.

The pieces make the whole only while nothing in the identifier depends on
another element, so :meth:`TemplateEncoder.encode` gives None (and the
caller encodes the whole dataset the libraries' way) for anything unusual:
an element with an ambiguous VR anywhere in the template or the row (what
``correct_ambiguous_vr`` would change, by looking at other elements), a
raw (unconverted) element, a row element that is a sequence, a sequence
item with a character set of its own, a character set pydicom would warn
about, a value too long for an explicit VR length (pydicom warns and
writes it as UN), a deflated transfer syntax, ``DIMSEKIT_PURE``.

The template must not be changed in place once it is cached (the
builder's contract: a row's keys replace elements, never change one; a
row that changes anything inside the template works on a copy, whose
elements are the row's own).
"""

from __future__ import annotations

import bisect
import itertools
import operator
import threading
from typing import Any

#: Specific Character Set
_CHARSET = 0x00080005
_NONE_YET: Any = object()
#: template pieces kept per (transfer syntax, character set): a batch uses one or two
_MAX_KEYS = 8


class _Pieces:
    """The template's elements written under one encoding: ``data`` is
    their concatenation, ``tags[i]``'s piece is
    ``data[offsets[i]:offsets[i + 1]]``; ``state``: what they were written
    from (:func:`_state`), ``kept``: its objects, kept alive; ``text``:
    ASCII text is written as it is under this character set
    (:func:`plain_text_writer`)."""

    __slots__ = ("data", "kept", "offsets", "state", "tags", "text")

    def __init__(self, tags: list[int], pieces: list[bytes], state: tuple, kept: tuple,
                 text: bool):
        self.state = state
        self.kept = kept
        self.text = text
        self.tags = tags
        offsets = [0]
        for piece in pieces:
            offsets.append(offsets[-1] + len(piece))
        self.offsets = offsets
        self.data = b"".join(pieces)


def template_encoder(elements: dict) -> TemplateEncoder | None:
    """A :class:`TemplateEncoder` for the rows built on a template whose
    elements are ``elements`` (tag -> element, as every row gets them), or
    None when the fast path is not in use."""
    from dimsekit._internals import fast_path

    if not fast_path():
        return None
    return TemplateEncoder(elements)


class TemplateEncoder:
    """Encodes datasets that hold the template's ``elements`` (the same
    objects, under the same tag objects) and a few of their own (see the
    module)."""

    def __init__(self, elements: dict):
        from pydicom.charset import STAND_ALONE_ENCODINGS, default_encoding, python_encoding
        from pydicom.dataelem import DataElement
        from pydicom.filebase import DicomBytesIO
        from pydicom.filewriter import write_data_element
        from pydicom.valuerep import AMBIGUOUS_VR, EXPLICIT_VR_LENGTH_32

        self._DataElement = DataElement
        self._DicomBytesIO = DicomBytesIO
        self._write = write_data_element
        self._ambiguous = frozenset(AMBIGUOUS_VR)
        self._long = frozenset(EXPLICIT_VR_LENGTH_32)
        self._known = python_encoding
        self._default = default_encoding
        self._stand_alone = STAND_ALONE_ENCODINGS
        # the row's dict has the same tag objects: found by identity
        self._template = dict(elements)
        self._elements = list(self._template.values())
        self._watch = _watch(self._elements)
        #: (implicit, little, character set) -> _Pieces, or None: unusable
        self._pieces: dict[tuple, _Pieces | None] = {}
        self._lock = threading.Lock()
        self._text = {(implicit, little): plain_text_writer(implicit, little)
                      for implicit in (True, False) for little in (True, False)}
        #: the Python codecs under which ASCII text is written as it is
        self._ascii_codecs = frozenset(python_encoding[term] for term in
                                       ("ISO_IR 6", "ISO_IR 100", "ISO_IR 192"))

    # -- per row -------------------------------------------------------------------

    def encode(self, ds: Any, implicit: bool, little: bool) -> bytes | None:
        """``ds`` encoded as pynetdicom's ``encode(ds, implicit, little)``
        encodes it, or None: the caller is to encode it that way."""
        template = self._template
        DataElement = self._DataElement
        own = []
        shared = 0
        for tag, elem in ds.items():
            if template.get(tag) is elem:
                shared += 1
                continue
            if type(elem) is not DataElement or elem.VR == "SQ" or elem.VR in self._ambiguous:
                return None
            own.append((int(tag), elem))
        charset = ds.get_item(_CHARSET)
        if charset is None:
            encodings: Any = self._default  # what write_dataset passes
            key: Any = None
        else:
            if type(charset) is not DataElement:
                return None
            encodings = charset.value
            key = encodings if isinstance(encodings, str) else tuple(encodings)
        pieces = self._pieces.get((implicit, little, key), _NONE_YET)
        if pieces is not _NONE_YET and pieces is not None and pieces.state != _state(
                self._watch):
            pieces = _NONE_YET  # a template element was changed in place: again
        if pieces is _NONE_YET:
            pieces = self._cache((implicit, little, key), encodings, implicit, little)
        if pieces is None:
            return None
        tags, offsets, data = pieces.tags, pieces.offsets, pieces.data
        if not own:
            return data if shared == len(template) else None
        own.sort(key=_first)
        out = []
        start = 0
        replaced = 0
        text = self._text[implicit, little] if pieces.text else None
        try:
            for tag, elem in own:
                at = bisect.bisect_left(tags, tag)
                end = offsets[at]
                if end > start:
                    out.append(data[start:end])
                if at < len(tags) and tags[at] == tag:
                    replaced += 1
                    start = offsets[at + 1]
                else:
                    start = end
                if tag & 0xFFFF == 0 and tag >> 16 > 6:
                    continue  # a retired group length: pydicom leaves it out
                piece = text(elem) if text is not None else None
                if piece is None:
                    piece = self._element(elem, encodings, implicit, little)
                out.append(piece)
        except Exception:  # noqa: BLE001 - the libraries' way says what is wrong
            return None
        if shared + replaced != len(template):
            return None  # a template element missing (or left out of the pieces)
        out.append(data[start:])
        return b"".join(out)

    def _element(self, elem: Any, encodings: Any, implicit: bool, little: bool) -> bytes:
        fp = self._DicomBytesIO()
        fp.is_implicit_VR = implicit
        fp.is_little_endian = little
        self._write(fp, elem, encodings)
        return fp.getvalue()

    # -- the template, once per encoding ---------------------------------------------

    def _cache(self, key: tuple, encodings: Any, implicit: bool, little: bool
               ) -> _Pieces | None:
        with self._lock:
            pieces = self._make(encodings, implicit, little)
            if key in self._pieces or len(self._pieces) < _MAX_KEYS:
                self._pieces[key] = pieces
            return pieces

    def _make(self, encodings: Any, implicit: bool, little: bool) -> _Pieces | None:
        if not self._charset_ok(encodings):
            return None
        # before writing: what is written from
        watch = self._watch = _watch(self._elements)
        state = _state(watch)
        kept = (watch, [e.value for e in watch[0]], [e.VR for e in watch[0]],
                [list(s) for s in watch[1]], [list(i.values()) for i in watch[2]])
        tags: list[int] = []
        pieces: list[bytes] = []
        for tag, elem in sorted(self._template.items(), key=lambda item: int(item[0])):
            number = int(tag)
            if number & 0xFFFF == 0 and number >> 16 > 6:
                return None  # left out by pydicom: not worth a special case
            if not self._plain(elem, 0):
                return None
            try:
                piece = self._element(elem, encodings, implicit, little)
            except Exception:  # noqa: BLE001 - the libraries' way says what is wrong
                return None
            if (not implicit and elem.VR not in self._long
                    and len(piece) - 8 > 0xFFFF):
                return None  # pydicom warns and writes it as UN
            tags.append(number)
            pieces.append(piece)
        from pydicom.charset import convert_encodings

        codecs = convert_encodings(encodings)
        return _Pieces(tags, pieces, state, kept, codecs[0] in self._ascii_codecs)

    def _charset_ok(self, encodings: Any) -> bool:
        """A Specific Character Set pydicom converts without a warning."""
        if encodings is self._default:
            return True
        terms = [encodings] if isinstance(encodings, str) else list(encodings)
        if not terms:
            return True
        if not terms[0]:
            terms[0] = "ISO_IR 6"
        if not all(isinstance(t, str) and t in self._known for t in terms):
            return False
        return len(terms) == 1 or not any(t in self._stand_alone for t in terms)

    def _plain(self, elem: Any, depth: int) -> bool:
        """A converted element with no ambiguous VR in it (items included),
        whose items have no character set of their own."""
        if type(elem) is not self._DataElement or elem.VR in self._ambiguous:
            return False
        if elem.VR != "SQ":
            return True
        if depth > 64:
            return False
        from pydicom.dataset import Dataset

        for item in elem.value or ():
            if not isinstance(item, Dataset) or _CHARSET in item:
                return False
            if not all(self._plain(e, depth + 1) for e in item.values()):
                return False
        return True


#: VRs whose str value pydicom writes as its characters (write_string,
#: write_text, write_DA/DT/TM with a str, write_UI), padded to an even
#: length with a space (UI: a NUL)
PLAIN_TEXT_VRS = frozenset(("AE", "AS", "CS", "DA", "DT", "LO", "LT", "SH", "ST", "TM",
                            "UC", "UI", "UR", "UT"))


def plain_text_writer(implicit: bool, little: bool):
    """``write(elem) -> bytes | None``: what pydicom's ``write_data_element``
    writes for ``elem`` when its VR is one of :data:`PLAIN_TEXT_VRS` and its
    value a str of ASCII characters (a batch row's cell, mostly), for a
    data set whose Specific Character Set writes ASCII as it is (none,
    ISO_IR 6, 100 or 192 first: the caller's to know); None for anything
    else (then it is pydicom's to write).  ``tests/test_perf_equivalence.py``
    holds the two side by side."""
    import struct

    from pydicom.dataelem import DataElement
    from pydicom.valuerep import EXPLICIT_VR_LENGTH_32

    end = "<" if little else ">"
    implicit_head = struct.Struct(end + "HHL").pack
    short_head = struct.Struct(end + "HH2sH").pack
    long_head = struct.Struct(end + "HH2s2xL").pack
    vrs = {vr: vr.encode("ascii") for vr in PLAIN_TEXT_VRS}
    long_vrs = frozenset(EXPLICIT_VR_LENGTH_32) & PLAIN_TEXT_VRS

    def write(elem: Any) -> bytes | None:
        value = elem.value
        vr = elem.VR
        if (not isinstance(value, str) or not value.isascii() or vr not in vrs
                or type(elem) is not DataElement or elem.is_undefined_length):
            return None
        data = value.encode("ascii")
        if len(data) & 1:
            data += b"\0" if vr == "UI" else b" "
        tag = elem.tag
        if implicit:
            return implicit_head(tag >> 16, tag & 0xFFFF, len(data)) + data
        if vr in long_vrs:
            return long_head(tag >> 16, tag & 0xFFFF, vrs[vr], len(data)) + data
        if len(data) > 0xFFFF:
            return None  # pydicom warns and writes it as UN
        return short_head(tag >> 16, tag & 0xFFFF, vrs[vr], len(data)) + data

    return write


def _first(pair: tuple[int, Any]) -> int:
    return pair[0]


def _watch(elements: list[Any]) -> tuple[list[Any], list[Any], list[Any]]:
    """What :func:`_state` looks at: every element of the template (in the
    items too), every sequence's item list and every item."""
    elems: list[Any] = []
    sequences: list[Any] = []
    items: list[Any] = []
    stack = list(elements)
    while stack:
        elem = stack.pop()
        elems.append(elem)
        if elem.VR == "SQ":
            sequence = elem.value or ()
            sequences.append(sequence)
            for item in sequence:
                items.append(item)
                stack.extend(item.values())
    return elems, sequences, items


_VALUE = operator.attrgetter("value")
_VR = operator.attrgetter("VR")
_ITEM_ELEMENTS = operator.methodcaller("values")


def _state(watch: tuple[list[Any], list[Any], list[Any]]) -> tuple[tuple[int, ...], ...]:
    """The template's state by identity (``watch``: :func:`_watch`): the
    ids of each element's value and VR, of each sequence's items and of
    each item's elements.  The pieces keep those objects alive, so that no
    other object can take one of their ids while they are compared.

    Nothing in dimsekit changes the template in place once a row was
    encoded (the first rows may: ``choose_charset`` with ``--charset``
    sets the template's Specific Character Set, ``-u`` changes VRs), but
    should anything replace one of these, the pieces are written again."""
    elems, sequences, items = watch
    return (tuple(map(id, map(_VALUE, elems))), tuple(map(id, map(_VR, elems))),
            tuple(map(id, itertools.chain.from_iterable(sequences))),
            tuple(map(id, itertools.chain.from_iterable(map(_ITEM_ELEMENTS, items)))))
