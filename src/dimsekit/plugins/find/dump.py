"""Render a C-FIND identifier in DCMTK's ``dcmdump`` layout.

:func:`format_dataset` turns a pydicom :class:`~pydicom.dataset.Dataset`,
typically a C-FIND response identifier as pynetdicom decoded it off the wire,
into the text DCMTK 3.6.7's ``dcmdump`` prints for the same bytes (its default
options), one line per element::

    (0008,0005) CS [ISO_IR 100]                             #  10, 1 SpecificCharacterSet
    (0010,0020) LO (no value available)                     #   0, 0 PatientID
    (0040,0100) SQ (Sequence with explicit length #=1)      #  18, 1 ScheduledProcedureStepSequence
      (fffe,e000) na (Item with explicit length #=1)          #  10, 1 Item
        (0008,0060) CS [MR]                                     #   2, 1 Modality
      (fffe,e00d) na (ItemDelimitationItem for re-encoding)   #   0, 0 ItemDelimitationItem
    (fffe,e0dd) na (SequenceDelimitationItem for re-encod.) #   0, 0 SequenceDelimitationItem

What is reproduced from ``dcmdump`` (checked against the real tool by
``tests/test_dump.py``):

* the layout: two spaces of indentation per nesting level, the value column
  padded to 40 characters, ``#``, the value length right-aligned in 3
  columns (``u/l`` for undefined length), the VM in 2 columns, the name;
* values are shown as DCMTK keeps them after reading with its default
  "automatic data correction": a string loses its trailing padding (spaces;
  for UI trailing NULs and every whitespace character), an odd-length value
  is padded with one NUL byte (and its length shown one larger), a value
  that is only padding prints ``(no value available)``; the VM of a string
  is its number of backslash-separated values (1 for LT/ST/UT/UR), of a
  number its count of values, 0 when empty, and always 1 for
  OB/OW/UN/OF/OD/OL/OV;
* shortening of long values (``dcmdump -L``, the default): strings longer
  than 68 characters are cut to 66 and end in ``...``; binary values print at
  most 22 bytes / 13 words / 5 tags; numbers stop before a value that would
  pass column 70 (67 when more values follow) and then print ``...``;
* numbers: US/SS/UL/SL/SV/UV in decimal, FL/FD (and OF/OD) with DCMTK's own
  ``OFStandard::ftoa`` digit generation (9 resp. 17 significant digits, its
  rounding artefacts such as ``1.0000000000000007e-20`` included), AT as
  ``(gggg,eeee)``, OB/UN as ``xx`` bytes and OW as ``xxxx`` words;
* well-known UIDs print as ``=Name`` with DCMTK 3.6.7's UID name table;
* implicit VR data: the VR comes from the data dictionary as DCMTK does it
  (``xs`` for US-or-SS, resolved through PixelRepresentation for the pixel
  value tags, ``lt`` for US-or-OW LUT data, ``ox``, ``up``, ``??`` with a
  hex dump for private and unknown tags, ``LO`` for private creators);
* sequences and items: explicit or undefined length as received, the
  ``#=n`` cardinality, item and delimitation lines.

Deliberate differences from ``dcmdump``:

* **Text is decoded.**  ``dcmdump`` writes the raw bytes of a value (e.g.
  ISO 8859-1 bytes, ISO 2022 escape sequences).  Here values of SH, LO, ST,
  LT, UC, UT and PN are decoded per Specific Character Set (0008,0005)
  (inherited by sequence items) and returned as ``str``, so the caller's
  UTF-8 output is readable.  Column padding and the 66/68-character
  shortening count *characters* of the decoded text where ``dcmdump``
  counts bytes; for single-byte character sets this is exactly ``dcmdump``'s
  layout, for multi-byte ones (UTF-8, GB18030, ISO 2022 Kanji) the padding
  can be narrower than ``dcmdump``'s.  Other string VRs (CS, DA, UI, ...)
  are shown byte-for-character (ISO 8859-1).  The value length after ``#``
  is always the encoded (wire) length.
* **Names come from pydicom's data dictionary** (retired ones prefixed with
  ``RETIRED_``, like DCMTK does), not DCMTK's.  Elements DCMTK 3.6.7 does not
  know yet (newer than its dictionary) are therefore named, and in implicit
  VR typed, where ``dcmdump`` prints ``??``/``Unknown Tag & Data``.  Private
  elements are ``PrivateCreator`` or ``Unknown Tag & Data``; DCMTK's private
  dictionary (vendor tag names) is not used.
* Like ``dcmdump``, control characters in values (e.g. CR LF in an LT) are
  written as they are, so such an element can span more than one line.
* Elements that pydicom has already converted from their raw form (because
  someone accessed them) are re-encoded to compute their length, so padding
  that pydicom stripped on conversion no longer counts and the length can be
  smaller than the received one; untouched (raw) elements are exact.  Lengths
  of explicit-length items are computed from the encoding (for well-formed
  data they equal the received ones).

``format_dataset`` does not modify the dataset except that, like any pydicom
access, reading a defined-length sequence converts it from its raw form.
"""

from __future__ import annotations

import functools
import math
import struct
from typing import Any

from pydicom.datadict import dictionary_is_retired, dictionary_VR, keyword_for_tag
from pydicom.dataelem import RawDataElement
from pydicom.multival import MultiValue
from pydicom.valuerep import IS, DSdecimal, DSfloat, PersonName

__all__ = ["format_dataset"]

_VALUE_WIDTH = 40  # DCM_OptPrintValueLength: the value column is padded to this
_LINE_WIDTH = 70  # DCM_OptPrintLineLength: longer values are shortened
_UNDEFINED = 0xFFFFFFFF

# VRs whose explicit-VR header has a 4-byte length (12-byte header)
_LONG_HEADER_VRS = frozenset(
    ("OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV")
)
_STRING_VRS = frozenset(
    ("AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN",
     "SH", "ST", "TM", "UC", "UI", "UR", "UT")
)
# VRs affected by Specific Character Set
_CHARSET_VRS = frozenset(("SH", "LO", "ST", "LT", "UC", "UT", "PN"))
# byte strings DCMTK always counts as one value
_SINGLE_VALUE_VRS = frozenset(("LT", "ST", "UT", "UR"))
# VR -> (struct code, size, float precision or 0, VM is always 1)
_NUMBER_VRS = {
    "US": ("H", 2, 0, False),
    "xs": ("H", 2, 0, False),
    "SS": ("h", 2, 0, False),
    "UL": ("L", 4, 0, False),
    "up": ("L", 4, 0, False),
    "SL": ("l", 4, 0, False),
    "UV": ("Q", 8, 0, False),
    "SV": ("q", 8, 0, False),
    "FL": ("f", 4, 9, False),
    "FD": ("d", 8, 17, False),
    "OL": ("L", 4, 0, True),
    "OV": ("Q", 8, 0, True),
    "OF": ("f", 4, 9, True),
    "OD": ("d", 8, 17, True),
}
_WORD_VRS = frozenset(("OW", "lt"))  # printed as 16-bit hex words
# everything else that is not a string, number, AT or SQ is a byte dump
# (OB, UN, ox, ??)

# implicit VR: tags whose US-or-SS VR DCMTK resolves via PixelRepresentation
_PIXEL_REP_TAGS = frozenset((
    0x00280106, 0x00280107, 0x00280108, 0x00280109, 0x00280120, 0x00280121,
    0x00283002, 0x00409211, 0x00409216, 0x00603004, 0x00603006,
))
# implicit VR: OB-or-OW tags DCMTK reads as OW (the others stay "ox")
_OW_TAGS = frozenset((0x7FE00010, 0x5400100A, 0x54001010))
# implicit VR: UL offsets DCMTK shows as "up"
_UP_TAGS = frozenset((0x00041200, 0x00041202, 0x00041400, 0x00041420, 0x00041504))
_TEXT_DELIMS = {0x09, 0x0A, 0x0C, 0x0D}
# what DCMTK drops from anywhere in a UI value (and trailing NULs)
_UI_BLANKS = b" \t\n\v\f\r"


# --------------------------------------------------------------------------
# tag names and dictionary VRs

_TAG_CACHE: dict[int, tuple[str, str, str, dict[int, str]]] = {}
#: most line ends (``" # length,VM name"``) kept for one tag
_TAILS_PER_TAG = 64


def _tag_info(tag: int) -> tuple[str, str, str, dict[int, str]]:
    """``_TAG_CACHE``'s entry for ``tag``: :func:`_tag_names` and the line
    ends made for it so far (``length << 7 | VM`` -> ``" # length,VM
    name"``: formatting the two numbers costs more than the rest of a
    line)."""
    return (*_tag_names(tag), {})


def _tag_names(tag: int) -> tuple[str, str, str]:
    """Return ``("(gggg,eeee) ", name, VR as DCMTK shows it for implicit VR)``."""
    group, element = tag >> 16, tag & 0xFFFF
    head = f"({group:04x},{element:04x}) "
    if group & 1:  # private
        if 0x0010 <= element <= 0x00FF:
            return head, "PrivateCreator", "LO"
        if element == 0:
            return head, "PrivateGroupLength", "UL"
        return head, "Unknown Tag & Data", "??"
    keyword = keyword_for_tag(tag)
    if not keyword:
        if element == 0:
            return head, "GenericGroupLength", "UL"
        return head, "Unknown Tag & Data", "??"
    if dictionary_is_retired(tag):
        keyword = "RETIRED_" + keyword
    return head, keyword, _dcmtk_vr(tag, dictionary_VR(tag))


def _dcmtk_vr(tag: int, vr: str) -> str:
    """Map a pydicom dictionary VR to what DCMTK uses for implicit VR data."""
    if len(vr) == 2:
        if vr == "UL" and tag in _UP_TAGS:
            return "up"
        return vr
    if vr == "US or SS":
        return "xs"
    if vr in ("US or OW", "US or SS or OW"):
        return "lt"
    if vr == "OB or OW":
        if tag in _OW_TAGS or (tag & 0xFF00FFFF) == 0x60003000:
            return "OW"
        return "ox"
    return "??"


# --------------------------------------------------------------------------
# UID names: DCMTK 3.6.7's dcmFindNameOfUID table, package data
# (uid_names.tsv: a "uid<TAB>name" header, then one UID per line), read on
# first use


_UID_NAMES: dict[str, str] | None = None


def _uid_names() -> dict[str, str]:
    global _UID_NAMES
    if _UID_NAMES is None:
        from importlib import resources

        package = __name__.rpartition(".")[0]
        text = resources.files(package).joinpath("uid_names.tsv").read_text("utf-8")
        rows = (line.split("\t", 1) for line in text.splitlines()[1:] if line)
        _UID_NAMES = {uid: name for uid, name in rows}
    return _UID_NAMES


def _uid_name(uid: str) -> str | None:
    return _uid_names().get(uid)


# --------------------------------------------------------------------------
# character sets

_PY_ENCODINGS: dict[tuple[str, ...] | None, list[str]] = {}
_PN_DELIMS = {0x5C, 0x3D, 0x5E}
_MULTI_TEXT_DELIMS = _TEXT_DELIMS | {0x5C}


def _charset_terms(elem: Any) -> tuple[str, ...] | None:
    if elem.__class__ is RawDataElement:
        raw = elem.value or b""
        terms = [t.strip() for t in raw.decode("latin-1").split("\\")]
    else:
        value = elem.value
        if value is None or value == "":
            terms = []
        elif isinstance(value, str):
            terms = [value]
        else:
            terms = [str(v) for v in value]
        terms = [t.strip() for t in terms]
    return tuple(terms) if any(terms) else None


def _py_encodings(charset: tuple[str, ...] | None) -> list[str]:
    encodings = _PY_ENCODINGS.get(charset)
    if encodings is None:
        from pydicom.charset import convert_encodings, default_encoding

        try:
            encodings = convert_encodings(list(charset) if charset else None)
        except Exception:  # noqa: BLE001 - unknown term: pydicom's own fallback is latin-1
            encodings = [default_encoding]
        _PY_ENCODINGS[charset] = encodings
    return encodings


def _decode_text(value: bytes, vr: str, charset: tuple[str, ...] | None) -> str:
    from pydicom.charset import decode_bytes

    if vr == "PN":
        delimiters = _PN_DELIMS
    elif vr in ("LT", "ST", "UT"):
        delimiters = _TEXT_DELIMS
    else:
        delimiters = _MULTI_TEXT_DELIMS
    try:
        return decode_bytes(value, _py_encodings(charset), delimiters)
    except Exception:  # noqa: BLE001 - undecodable: shown byte for character
        return value.decode("latin-1")


# --------------------------------------------------------------------------
# DCMTK's OFStandard::ftoa ("%g"-like, BSD-derived digit generation)


def _ftoa_round(digits: list[str], fract: float, ch: str | None,
                expon: int | None) -> int | None:
    """Round the digit string up if the next digit is > 4 (ftoa_round)."""
    if fract:  # noqa: SIM108 - a nested conditional expression reads worse
        nxt = math.modf(fract * 10)[1]
    else:
        nxt = ord(ch) - 48 if ch else 0
    if nxt > 4:
        i = len(digits) - 1
        while True:
            if digits[i] == ".":
                i -= 1
            if digits[i] != "9":
                digits[i] = chr(ord(digits[i]) + 1)
                break
            digits[i] = "0"
            if i == 0:
                if expon is not None:  # e-format: 9.99 -> 1.00e+1
                    digits[0] = "1"
                    expon += 1
                else:  # f-format: 99.9 -> 100.0
                    digits.insert(0, "1")
                break
            i -= 1
    return expon


def _ftoa(val: float, prec: int) -> str:
    if math.isnan(val):
        return "nan"
    if val == math.inf:
        return "inf"
    if val == -math.inf:
        return "-inf"
    sign = ""
    if val < 0:
        sign = "-"
        val = -val
    fract, integer = math.modf(val)
    idigits: list[str] = []
    while integer:
        tmp, integer = math.modf(integer / 10)
        idigits.append(chr(48 + int((tmp + 0.01) * 10)))
    idigits.reverse()
    expcnt = len(idigits)
    t: list[str] = []
    modf = math.modf
    if expcnt > prec or (not expcnt and fract and fract < 0.0001):
        # e-style; g counts significant digits, e digits after the point
        prec -= 1
        if expcnt:
            t.append(idigits[0])
            if prec:
                t.append(".")
            p = 1
            while prec and p < expcnt:
                t.append(idigits[p])
                p += 1
                prec -= 1
            if not prec and p < expcnt:
                fract = 0.0
                expcnt = _ftoa_round(t, 0.0, idigits[p], expcnt)  # type: ignore[assignment]
            expcnt -= 1
        elif fract:
            expcnt = -1
            while True:
                fract, tmp = modf(fract * 10)
                if tmp:
                    break
                expcnt -= 1
            t.append(chr(48 + int(tmp)))
            if prec:
                t.append(".")
        else:
            t.append("0")
            if prec:
                t.append(".")
        if fract:
            while prec:
                fract, tmp = modf(fract * 10)
                t.append(chr(48 + int(tmp)))
                prec -= 1
                if not fract:
                    break
            if fract:
                expcnt = _ftoa_round(t, fract, None, expcnt)  # type: ignore[assignment]
        while t and t[-1] == "0":
            t.pop()
        if t and t[-1] == ".":
            t.pop()
        exp = expcnt
        return sign + "".join(t) + (f"e-{-exp:02d}" if exp < 0 else f"e+{exp:02d}")
    if expcnt:
        t.extend(idigits)
        prec -= expcnt
    else:
        t.append("0")
    dotrim = bool(prec)
    if dotrim:
        t.append(".")
    if fract:
        if prec:
            while True:  # leading zeros of the fraction are not significant
                fract, tmp = modf(fract * 10)
                t.append(chr(48 + int(tmp)))
                if tmp:
                    break
            while True:
                prec -= 1
                if not (prec and fract):
                    break
                fract, tmp = modf(fract * 10)
                t.append(chr(48 + int(tmp)))
        if fract:
            _ftoa_round(t, fract, None, None)
    if dotrim:
        while t and t[-1] == "0":
            t.pop()
        if t and t[-1] == ".":
            t.pop()
    if sign and all(c in "0." for c in t):  # no negative zero
        sign = ""
    return sign + "".join(t)


# --------------------------------------------------------------------------
# values


def _join_numbers(strs: list[str]) -> str:
    """Join with backslashes, shortened the way DCMTK's numeric print() does."""
    text = "\\".join(strs)
    if len(text) < _LINE_WIDTH:
        return text
    count = len(strs)
    printed = 0
    parts = []
    for i, s in enumerate(strs):
        if i:
            s = "\\" + s
        new = printed + len(s)
        if new <= _LINE_WIDTH and (i + 1 == count or new + 3 <= _LINE_WIDTH):
            parts.append(s)
            printed = new
        else:
            if i + 1 < count:
                parts.append("...")
            break
    return "".join(parts)


def _format_string(vr: str, value: bytes, charset: tuple[str, ...] | None
                   ) -> tuple[str, int, int]:
    """:func:`_format_value` for the string VRs."""
    n = len(value)
    if n & 1:  # DCMTK pads any odd-length value with a NUL byte
        value += b"\x00"
        n += 1
    s = value.translate(None, _UI_BLANKS).rstrip(b"\x00") if vr == "UI" else value.rstrip(b" ")
    if not s:
        return "(no value available)", 0, n
    vm = 1 if vr in _SINGLE_VALUE_VRS else s.count(b"\\") + 1
    if vr in _CHARSET_VRS and (not s.isascii() or b"\x1b" in s):  # ESC: ISO 2022
        text = _decode_text(s, vr, charset)
    else:
        text = s.decode("latin-1")
    if vr == "UI" and vm == 1:
        name = _uid_name(text)
        if name:
            text = "=" + name
            if len(text) > _LINE_WIDTH:
                text = text[: _LINE_WIDTH - 3] + "..."
            return text, vm, n
    if len(text) + 2 > _LINE_WIDTH:
        return "[" + text[: _LINE_WIDTH - 4] + "...", vm, n
    return "[" + text + "]", vm, n


def _format_value(
    vr: str, value: bytes, little: bool, charset: tuple[str, ...] | None
) -> tuple[str, int, int]:
    """Return (value text, VM, shown length) for an element value."""
    if vr in _STRING_VRS:
        return _format_string(vr, value, charset)
    n = len(value)
    if n & 1:  # DCMTK pads any odd-length value with a NUL byte
        value += b"\x00"
        n += 1

    number = _NUMBER_VRS.get(vr)
    if number is not None:
        code, size, prec, single = number
        count = n // size
        if not count:
            return "(no value available)", 1 if single else 0, n
        vals = struct.unpack(
            ("<" if little else ">") + str(count) + code, value[: count * size]
        )
        strs = [_ftoa(v, prec) for v in vals] if prec else [str(v) for v in vals]
        return _join_numbers(strs), 1 if single else count, n

    if vr == "AT":
        count = n // 4
        if not count:
            return "(no value available)", 0, n
        shown = 5 if count * 12 - 1 > _LINE_WIDTH else count
        words = struct.unpack(
            ("<" if little else ">") + str(2 * shown) + "H", value[: 4 * shown]
        )
        text = "\\".join(
            f"({words[i]:04x},{words[i + 1]:04x})" for i in range(0, 2 * shown, 2)
        )
        return (text + "..." if shown < count else text), count, n

    if vr in _WORD_VRS:
        count = n // 2
        if not count:
            return "(no value available)", 1, n
        shown = 13 if count * 5 - 1 > _LINE_WIDTH else count
        words = struct.unpack(
            ("<" if little else ">") + str(shown) + "H", value[: 2 * shown]
        )
        text = "\\".join([f"{w:04x}" for w in words])
        return (text + "..." if shown < count else text), 1, n

    # OB, UN, ox, ?? and anything unknown: a byte dump
    if not n:
        return "(no value available)", 1, n
    if n * 3 - 1 > _LINE_WIDTH:
        return value[:22].hex("\\") + "...", 1, n
    return value.hex("\\"), 1, n


def _encode_fast(vr: str, value: Any, little: bool) -> bytes | None:
    """Encode the common converted values directly; None: use pydicom's writer.

    Gives the same bytes as pydicom's writer (with its padding to even length).
    """
    if value is None:
        return b""
    if vr in _STRING_VRS:
        if isinstance(value, str):
            text = value
        elif isinstance(value, (MultiValue, list, tuple)):
            text = "\\".join([str(v) for v in value])
        elif isinstance(value, (PersonName, DSfloat, DSdecimal, IS)):
            text = str(value)
        else:
            return None
        if not text.isascii():
            return None  # needs the Specific Character Set: pydicom encodes
        raw = text.encode("ascii")
        if len(raw) & 1:
            raw += b"\x00" if vr == "UI" else b" "
        return raw
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    number = _NUMBER_VRS.get(vr)
    if number is not None and number[0] in "HhLlQqfd":
        if isinstance(value, (int, float)):
            value = (value,)
        try:
            return struct.pack(
                ("<" if little else ">") + str(len(value)) + number[0], *value
            )
        except (TypeError, struct.error):
            return None
    return None


def _encode_value(elem: Any, little: bool, charset: tuple[str, ...] | None) -> bytes:
    """Encode a converted (non-raw) DataElement's value to its bytes."""
    vr = elem.VR
    if vr and len(vr) == 2:
        raw = _encode_fast(vr, elem.value, little)
        if raw is not None:
            return raw
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_data_element

    fp = DicomBytesIO()
    fp.is_little_endian = little
    fp.is_implicit_VR = True  # no VR in the header: 8 bytes, never ambiguous
    try:
        write_data_element(fp, elem, list(charset) if charset else None)
    except Exception:  # noqa: BLE001 - a value pydicom cannot write: encoded below
        value = elem.value
        if isinstance(value, (bytes, bytearray)):
            return bytes(value)
        if isinstance(value, int):
            value = [value]
        try:  # US-or-SS etc. left ambiguous by pydicom
            vals = [int(v) for v in value]
            code = "h" if any(v < 0 for v in vals) else "H"
            return struct.pack(("<" if little else ">") + str(len(vals)) + code, *vals)
        except Exception:  # noqa: BLE001 - anything else: its text
            return str(value).encode("utf-8")
    return fp.getvalue()[8:]


# --------------------------------------------------------------------------
# datasets and sequences


def _line(out: list[str], indent: str, head: str, vr: str, text: str,
          length: int | str, vm: int, name: str) -> None:
    # the value column is _VALUE_WIDTH (40) wide; _format_items inlines this
    out.append(f"{indent}{head}{vr} {text:<40} # {length:>3},{vm:>2} {name}")


def _elements(ds: Any) -> dict:
    elements = getattr(ds, "_dict", None)
    if elements is None:  # not pydicom 3's layout: go the public way
        # iterating a Dataset yields its elements, converted: keys() are tags
        elements = {tag: ds.get_item(tag) for tag in ds.keys()}  # noqa: SIM118
    return elements


def _pixel_representation(elements: dict, little: bool) -> int | None:
    elem = elements.get(0x00280103)
    if elem is None:
        return None
    try:
        if elem.__class__ is RawDataElement:
            value = elem.value or b""
            if len(value) < 2:
                return None
            return struct.unpack("<H" if elem.is_little_endian else ">H", value[:2])[0]
        return int(elem.value)
    except Exception:  # noqa: BLE001 - unreadable: as if absent
        return None


class _NeedsDataset(Exception):
    """An item split by :func:`_raw_sequence` holds what only pydicom reads:
    the sequence is formatted from pydicom's parse instead."""


@functools.cache
def _item_splitter(implicit: bool) -> Any:
    """The fast path's sequence item splitter (None: pydicom parses every
    sequence): :func:`dimsekit.api.sequence_item_splitter`."""
    from dimsekit.api import sequence_item_splitter

    return sequence_item_splitter(implicit)


def _raw_sequence(out: list[str], level: int, head: str, name: str, elem: Any,
                  implicit: bool, little: bool, charset: tuple[str, ...] | None) -> int | None:
    """A raw, defined-length, little endian sequence of explicit-length
    items formatted from its bytes, as :func:`_format_sequence` formats
    pydicom's parse of it (without converting the element); None: the
    sequence is not that, pydicom is to parse it."""
    split = _item_splitter(bool(elem.is_implicit_VR))
    items = split(elem.value) if split is not None else None
    if items is None:
        return None
    start = len(out)
    out.append("")  # the sequence's line, once its items are known good
    item_end, sequence_end = _delimitation_lines(level)
    try:
        for elements in items:
            at = len(out)
            out.append("")  # the item's line, once its length is known
            item_length = _format_elements(elements, None, level + 2, out, implicit,
                                           little, charset)
            key: tuple = (level, 0, len(elements), item_length)
            line = _STRUCTURES.get(key)
            if line is None:
                line = _structure_line(key, "  " * (level + 1), "(fffe,e000) ", "na",
                                       f"(Item with explicit length #={len(elements)})",
                                       item_length, "Item")
            out[at] = line
            out.append(item_end)
    except _NeedsDataset:
        del out[start:]
        return None
    key = (level, head, len(items), elem.length)
    line = _STRUCTURES.get(key)
    if line is None:
        line = _structure_line(key, "  " * level, head, "SQ",
                               f"(Sequence with explicit length #={len(items)})",
                               elem.length, name)
    out[start] = line
    out.append(sequence_end)
    return (8 if implicit else 12) + elem.length


#: the item and sequence lines :func:`_raw_sequence` made, by (level, 0 for an
#: item or the sequence's head, number of items or elements, length); a
#: stream of responses has the same few over and over
_STRUCTURES: dict[tuple, str] = {}
_STRUCTURE_LINES = 4096  # at most


def _structure_line(key: tuple, indent: str, head: str, vr: str, text: str, length: int,
                    name: str) -> str:
    """:func:`_line`'s line for an item or a sequence, kept under ``key``."""
    line = f"{indent}{head}{vr} {text:<40} # {length:>3}, 1 {name}"
    if len(_STRUCTURES) < _STRUCTURE_LINES:
        _STRUCTURES[key] = line
    return line


@functools.cache
def _delimitation_lines(level: int) -> tuple[str, str]:
    """The item and sequence delimitation lines of a defined-length
    sequence at ``level`` formatted from its raw items."""
    item: list[str] = []
    _line(item, "  " * (level + 1), "(fffe,e00d) ", "na",
          "(ItemDelimitationItem for re-encoding)", 0, 0, "ItemDelimitationItem")
    _line(item, "  " * level, "(fffe,e0dd) ", "na",
          "(SequenceDelimitationItem for re-encod.)", 0, 0, "SequenceDelimitationItem")
    return item[0], item[1]


def _original_encoding(ds: Any) -> tuple[Any, Any]:
    """pydicom's ``ds.original_encoding``, through
    :func:`dimsekit.api.original_encoding_reader` (chosen on first use)."""
    global _original_encoding
    from dimsekit.api import original_encoding_reader

    _original_encoding = original_encoding_reader()
    return _original_encoding(ds)


def _format_items(ds: Any, level: int, out: list[str], implicit: bool,
                  little: bool, charset: tuple[str, ...] | None) -> int:
    """Append the lines of `ds` to `out`; return its encoded length."""
    return _format_elements(_elements(ds), ds, level, out, implicit, little, charset)


def _format_elements(elements: dict, ds: Any, level: int, out: list[str], implicit: bool,
                     little: bool, charset: tuple[str, ...] | None) -> int:
    """:func:`_format_items` for ``elements`` (``ds``'s, or an item's that
    :func:`_raw_sequence` split: ``ds`` None, and what needs pydicom's
    parse raises :class:`_NeedsDataset`)."""
    cs_elem = elements.get(0x00080005)
    if cs_elem is not None:
        charset = _charset_terms(cs_elem)
    indent = "  " * level
    total = 0
    # plain ints: pydicom's BaseTag compares in Python, ints in C; elements
    # usually come in order, and then need no sorting
    tags = list(map(int, elements))
    in_order = sorted(tags)
    for tag, elem in (zip(in_order, elements.values(), strict=True) if tags == in_order
                      else sorted(zip(tags, elements.values(), strict=True))):
        info = _TAG_CACHE.get(tag)
        if info is None:
            info = _TAG_CACHE[tag] = _tag_info(tag)
        head, name, dict_vr, tails = info
        if elem.__class__ is RawDataElement and elem.value is not None:
            vr = elem.VR
            e_little = elem.is_little_endian
            e_implicit = elem.is_implicit_VR
            if vr is None or e_implicit:
                vr = dict_vr
            if vr != "SQ" and elem.length != _UNDEFINED:
                if vr == "xs" and tag in _PIXEL_REP_TAGS:
                    pixel_rep = _pixel_representation(elements, e_little)
                    if pixel_rep is not None:
                        vr = "SS" if pixel_rep == 1 else "US"
                text = None
                if vr in _STRING_VRS:
                    value = elem.value
                    length = len(value)
                    s = (value.translate(None, _UI_BLANKS).rstrip(b"\x00") if vr == "UI"
                         else value.rstrip(b" "))
                    if (s and s.isascii() and not length & 1
                            and len(s) <= _LINE_WIDTH - 2 and 0x1B not in s):
                        # _format_string's common case, inline: most values are
                        # this (0x1B: the ESC of ISO 2022, which needs decoding)
                        vm = 1 if vr in _SINGLE_VALUE_VRS else s.count(b"\\") + 1
                        value_text = s.decode("ascii")
                        if vr != "UI" or vm != 1 or value_text not in (
                                _UID_NAMES if _UID_NAMES is not None else _uid_names()):
                            text = f"[{value_text}]"
                    if text is None:
                        text, vm, length = _format_string(vr, value, charset)
                else:
                    text, vm, length = _format_value(vr, elem.value, e_little, charset)
                key = length << 7 | vm
                tail = tails.get(key) if vm < 128 else None
                if tail is None:
                    tail = f" # {length:>3},{vm:>2} {name}"
                    if vm < 128 and len(tails) < _TAILS_PER_TAG:
                        tails[key] = tail
                out.append(f"{indent}{head}{vr} {text:<40}{tail}")
                total += (8 if e_implicit or vr not in _LONG_HEADER_VRS else 12) + elem.length
                continue
            raw_length = elem.length if elem.length != _UNDEFINED else None
            if vr == "SQ" and raw_length is not None and e_little:
                sq_length = _raw_sequence(out, level, head, name, elem, implicit, little,
                                          charset)
                if sq_length is not None:
                    total += sq_length
                    continue
            if ds is None:
                raise _NeedsDataset
            elem = ds[tag]  # let pydicom parse the sequence
        else:
            if ds is None:
                raise _NeedsDataset
            if elem.__class__ is RawDataElement:  # deferred value
                elem = ds[tag]
            raw_length = None
        vr = elem.VR
        if vr == "SQ":
            total += _format_sequence(
                out, level, head, name, elem, raw_length, implicit, little, charset
            )
            continue
        if vr is None or len(vr) != 2:
            vr = _dcmtk_vr(tag, vr or "")
        elif implicit and (dict_vr != "??" or vr == "UN"):
            # as for raw elements: DCMTK's view of the dictionary (but an
            # element made here, such as --batch's row, keeps its known VR)
            vr = dict_vr
        if vr == "xs" and tag in _PIXEL_REP_TAGS:
            pixel_rep = _pixel_representation(elements, little)
            if pixel_rep is not None:
                vr = "SS" if pixel_rep == 1 else "US"
        value = _encode_value(elem, little, charset)
        text, vm, length = _format_value(vr, value, little, charset)
        _line(out, indent, head, vr, text, length, vm, name)
        total += (8 if implicit or vr not in _LONG_HEADER_VRS else 12) + len(value)
    return total


def _format_sequence(out: list[str], level: int, head: str, name: str, elem: Any,
                     raw_length: int | None, implicit: bool, little: bool,
                     charset: tuple[str, ...] | None) -> int:
    indent = "  " * level
    item_indent = indent + "  "
    items = elem.value or ()
    body: list[str] = []
    seq_length = 0
    for item in items:
        item_lines: list[str] = []
        item_length = _format_items(item, level + 2, item_lines, implicit, little, charset)
        count = len(_elements(item))
        if getattr(item, "is_undefined_length_sequence_item", False):
            _line(body, item_indent, "(fffe,e000) ", "na",
                  f"(Item with undefined length #={count})", "u/l", 1, "Item")
            body.extend(item_lines)
            _line(body, item_indent, "(fffe,e00d) ", "na",
                  "(ItemDelimitationItem)", 0, 0, "ItemDelimitationItem")
            seq_length += item_length + 16
        else:
            _line(body, item_indent, "(fffe,e000) ", "na",
                  f"(Item with explicit length #={count})", item_length, 1, "Item")
            body.extend(item_lines)
            _line(body, item_indent, "(fffe,e00d) ", "na",
                  "(ItemDelimitationItem for re-encoding)", 0, 0, "ItemDelimitationItem")
            seq_length += item_length + 8
    header = 8 if implicit else 12
    if elem.is_undefined_length:
        _line(out, indent, head, "SQ",
              f"(Sequence with undefined length #={len(items)})", "u/l", 1, name)
        out.extend(body)
        _line(out, indent, "(fffe,e0dd) ", "na", "(SequenceDelimitationItem)",
              0, 0, "SequenceDelimitationItem")
        return header + seq_length + 8
    if raw_length is not None:
        seq_length = raw_length
    _line(out, indent, head, "SQ",
          f"(Sequence with explicit length #={len(items)})", seq_length, 1, name)
    out.extend(body)
    _line(out, indent, "(fffe,e0dd) ", "na", "(SequenceDelimitationItem for re-encod.)",
          0, 0, "SequenceDelimitationItem")
    return header + seq_length


def format_dataset(ds: Any, indent: int = 0) -> str:
    """Return `ds` rendered like ``dcmdump`` prints a data set.

    One line per element (plus item and delimitation lines for sequences),
    joined with ``"\\n"``, without a trailing newline and without dcmdump's
    ``# Dicom-Data-Set`` header lines.  `indent` is the nesting level to start
    at: every level indents by two spaces, as dcmdump does for items.

    The transfer syntax the dataset was decoded from (pydicom's
    ``original_encoding``) decides header sizes of computed item lengths and
    the implicit-VR presentation; a dataset built in memory is treated as
    explicit VR little endian.
    """
    implicit, little = _original_encoding(ds)
    if implicit is None:
        implicit = False
    if little is None:
        little = True
    out: list[str] = []
    _format_items(ds, indent, out, bool(implicit), bool(little), None)
    return "\n".join(out)

