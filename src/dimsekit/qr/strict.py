"""One strict reader's eye for DICOM data sets, for query files (before
the network) and for response identifiers that the fast splitter leaves
to pydicom.

pydicom reads what it can of anything (that is its job): a value running
past the end is cut short, an unknown VR or a binary value of the wrong
length raises only when the value is used.  :func:`check_structure` walks
a data set's elements, items and delimiters once, without recursion and
with bounded work, and raises :class:`NotDicom` at the first thing that is
not strictly DICOM, so that pydicom only parses what passed.
"""

from __future__ import annotations

import re
from typing import Any, Literal

#: the deepest sequence nesting accepted: the bound dimsekit.keys.MAX_DEPTH
#: puts on -k paths
MAX_DEPTH = 64

_ITEM, _ITEM_END, _SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_UNDEFINED = 0xFFFFFFFF
_PIXEL_DATA = 0x7FE00010
#: binary VRs whose length must be a multiple of the value size
VALUE_SIZE = {"US": 2, "SS": 2, "OW": 2, "AT": 4, "UL": 4, "SL": 4, "FL": 4, "OF": 4,
               "OL": 4, "FD": 8, "OD": 8, "UV": 8, "SV": 8, "OV": 8}


_IS = re.compile(rb"[ ]*[+-]?[0-9]+[ \0]*")
_DS = re.compile(rb"[ ]*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?[ \0]*")
NUMBER_PATTERNS = {"IS": _IS, "DS": _DS}


class NotDicom(Exception):
    """Why a data set is not (strictly) DICOM, in a few words."""


def numbers_ok(value: Any, pattern: Any) -> bool:
    """Whether every backslash-separated IS/DS value in ``value`` (bytes)
    matches ``pattern`` (empty values allowed)."""
    value = bytes(value)
    if pattern.fullmatch(value):  # the usual case: one number
        return True
    for part in value.split(b"\\"):
        if part.strip(b" \0") and not pattern.fullmatch(part):
            return False
    return True


def _tag_text(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


class _Frame:
    """One open container while checking a data set's structure."""

    __slots__ = ("end", "implicit", "kind", "last", "limit", "little")

    def __init__(self, kind: str, end: int | None, limit: int, implicit: bool,
                 little: bool) -> None:
        self.kind = kind  # "ds" (data set or item), "sq" (sequence), "px" (fragments)
        self.end = end  # None: undefined length, closed by a delimiter
        self.limit = limit  # where it must end at the latest: its own or a parent's end
        self.implicit, self.little = implicit, little
        self.last = -1  # the last tag seen in a data set (ascending order)


def check_structure(body, implicit: bool, little: bool, *, bare: bool = False,
                    ordered: bool = True, max_elements: int | None = None,
                    max_items: int | None = None, sequence: bool = False) -> None:
    """Walk the data set in ``body`` -- its elements, items and delimiters,
    not their values but for IS/DS -- without recursion; NotDicom at the
    first thing that is not strictly DICOM: an element or item that runs
    past its container, trailing bytes, an unclosed sequence, an unknown
    VR, a binary value that is not a whole number of values, IS/DS text
    that is not a number, nesting deeper than MAX_DEPTH, more than
    ``max_elements`` elements or ``max_items`` items; with ``ordered``,
    tags out of ascending order; with ``bare`` (a file without preamble),
    public tags the dictionary does not know.  With ``sequence``, ``body``
    is the value of a sequence element (its items), one level deep."""
    from pydicom.datadict import dictionary_has_tag, dictionary_VR
    from pydicom.valuerep import EXPLICIT_VR_LENGTH_32, STANDARD_VR

    size = len(body)
    stack = [_Frame("sq" if sequence else "ds", size, size, implicit, little)]
    count = items = depth = pos = at = 0
    depth = int(sequence)

    def where(tag: int) -> str:
        return f"{_tag_text(tag)} at byte {at}"

    def push(kind: str, length: int, implicit: bool, little: bool) -> None:
        if length == _UNDEFINED:
            stack.append(_Frame(kind, None, frame.limit, implicit, little))
        else:
            stack.append(_Frame(kind, pos + length, pos + length, implicit, little))

    while True:
        frame = stack[-1]
        if frame.end is not None and pos == frame.end:
            if len(stack) == 1:
                return
            stack.pop()
            depth -= frame.kind != "ds"
            continue
        at, limit = pos, frame.limit
        if limit - pos < 8:
            if frame.end is not None:
                raise NotDicom(f"{limit - pos} stray bytes at byte {pos}")
            if limit == size:
                raise NotDicom("truncated: a sequence or item is not closed")
            raise NotDicom(f"a sequence or item is not closed by byte {limit}, "
                            f"where its parent ends")
        order: Literal["little", "big"] = "little" if frame.little else "big"
        tag = int.from_bytes(body[pos:pos + 2], order) << 16 \
            | int.from_bytes(body[pos + 2:pos + 4], order)
        count += 1
        if max_elements is not None and count > max_elements:
            raise NotDicom(f"more than {max_elements} elements")

        if frame.kind != "ds":  # in a sequence: items, then maybe a delimiter
            length = int.from_bytes(body[pos + 4:pos + 8], order)
            if tag == _SEQ_END and frame.end is None:
                if length:
                    raise NotDicom(f"sequence delimiter with length {length} at byte {pos}")
                pos += 8
                stack.pop()
                depth -= 1
                continue
            if tag != _ITEM:
                raise NotDicom(f"{where(tag)}: expected a sequence item")
            pos += 8
            if frame.kind == "px":  # encapsulated pixel data: byte fragments
                if length == _UNDEFINED or length > limit - pos:
                    raise NotDicom(f"bad pixel data fragment at byte {at}")
                pos += length
                continue
            items += 1
            if max_items is not None and items > max_items:
                raise NotDicom(f"more than {max_items} sequence items")
            if length != _UNDEFINED and length > limit - pos:
                raise NotDicom(f"item at byte {at} runs past its sequence")
            push("ds", length, frame.implicit, frame.little)
            continue

        # in a data set: elements in ascending tag order, maybe an item delimiter
        if tag == _ITEM_END:
            length = int.from_bytes(body[pos + 4:pos + 8], order)
            if frame.end is not None or len(stack) == 1 or length:
                raise NotDicom(f"stray item delimiter at byte {pos}")
            pos += 8
            stack.pop()
            continue
        group = tag >> 16
        if group == 0xFFFE:
            raise NotDicom(f"{where(tag)}: item tag outside a sequence")
        if group in (0x0000, 0x0002) or (group & 1 and group <= 7) or group == 0xFFFF:
            raise NotDicom(f"{where(tag)}: not a data set element")
        if tag <= frame.last and (ordered or tag == frame.last):
            raise NotDicom(f"{where(tag)}: elements out of order" if tag != frame.last
                           else f"{where(tag)}: element twice")
        frame.last = tag
        # a bare data set has no preamble to tell it from other bytes: its
        # public tags must be known ones (group lengths aside)
        if bare and not group & 1 and tag & 0xFFFF and not dictionary_has_tag(tag):
            raise NotDicom(f"unknown tag {_tag_text(tag)}")
        if frame.implicit:
            try:
                vr = str(dictionary_VR(tag))
            except KeyError:
                vr = "UN"
            length, head = int.from_bytes(body[pos + 4:pos + 8], order), 8
        else:
            vr = bytes(body[pos + 4:pos + 6]).decode("latin-1")
            if vr not in STANDARD_VR:
                raise NotDicom(f"{where(tag)}: unknown VR {vr!r}")
            if vr in EXPLICIT_VR_LENGTH_32:
                if limit - pos < 12:
                    raise NotDicom(f"{where(tag)}: truncated element header")
                length, head = int.from_bytes(body[pos + 8:pos + 12], order), 12
            else:
                length, head = int.from_bytes(body[pos + 6:pos + 8], order), 8
        pos += head
        if length == _UNDEFINED:
            if vr == "SQ":
                push("sq", length, frame.implicit, frame.little)
            elif vr == "UN":  # an undefined-length UN is an implicit VR LE sequence
                push("sq", length, True, True)
            elif tag == _PIXEL_DATA and not frame.implicit and vr in ("OB", "OW"):
                push("px", length, False, frame.little)
            else:
                raise NotDicom(f"{where(tag)}: undefined length for VR {vr}")
        elif length > limit - pos:
            raise NotDicom(f"{where(tag)}: value of {length} bytes runs past the end "
                            f"({limit - pos} left)")
        elif vr == "SQ":
            push("sq", length, frame.implicit, frame.little)
        else:
            unit = VALUE_SIZE.get(vr.split(" or ")[0] if " or " in vr else vr, 1)
            if length % unit:
                raise NotDicom(f"{where(tag)}: {length} bytes is not a whole number of "
                                f"{vr} values")
            pattern = NUMBER_PATTERNS.get(vr)
            if pattern is not None and not numbers_ok(body[pos:pos + length], pattern):
                text = bytes(body[pos:pos + length]).decode("latin-1").strip(" \0")
                raise NotDicom(f"{where(tag)}: {text[:64]!r} is not a valid {vr} value")
            pos += length
            continue
        depth += stack[-1].kind != "ds"
        if depth > MAX_DEPTH:
            raise NotDicom(f"sequences nested deeper than {MAX_DEPTH} levels")


