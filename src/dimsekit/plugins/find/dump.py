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

import math
import struct
from typing import Any

from pydicom.dataelem import RawDataElement
from pydicom.datadict import dictionary_is_retired, dictionary_VR, keyword_for_tag
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


# --------------------------------------------------------------------------
# tag names and dictionary VRs

_TAG_CACHE: dict[int, tuple[str, str, str]] = {}


def _tag_info(tag: int) -> tuple[str, str, str]:
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
# UID names (DCMTK 3.6.7 dcmFindNameOfUID table, loaded on first use)

_UID_NAMES: dict[str, str] | None = None


def _uid_name(uid: str) -> str | None:
    global _UID_NAMES
    if _UID_NAMES is None:
        _UID_NAMES = dict(
            line.split(" ", 1) for line in _UID_TABLE.splitlines() if line
        )
    return _UID_NAMES.get(uid)


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
        except Exception:  # unknown term: pydicom's own fallback is latin-1
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
    except Exception:
        return value.decode("latin-1")


# --------------------------------------------------------------------------
# DCMTK's OFStandard::ftoa ("%g"-like, BSD-derived digit generation)


def _ftoa_round(digits: list[str], fract: float, ch: str | None,
                expon: int | None) -> int | None:
    """Round the digit string up if the next digit is > 4 (ftoa_round)."""
    if fract:
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
    if val != val:
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
        return sign + "".join(t) + ("e-%02d" % -exp if exp < 0 else "e+%02d" % exp)
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
    if vr == "UI":
        s = value.translate(None, b" \t\n\v\f\r").rstrip(b"\x00")
    else:
        s = value.rstrip(b" ")
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
        if prec:
            strs = [_ftoa(v, prec) for v in vals]
        else:
            strs = [str(v) for v in vals]
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
    except Exception:
        value = elem.value
        if isinstance(value, (bytes, bytearray)):
            return bytes(value)
        if isinstance(value, int):
            value = [value]
        try:  # US-or-SS etc. left ambiguous by pydicom
            vals = [int(v) for v in value]
            code = "h" if any(v < 0 for v in vals) else "H"
            return struct.pack(("<" if little else ">") + str(len(vals)) + code, *vals)
        except Exception:
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
        elements = {tag: ds.get_item(tag) for tag in ds.keys()}
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
    except Exception:
        return None


def _format_items(ds: Any, level: int, out: list[str], implicit: bool,
                  little: bool, charset: tuple[str, ...] | None) -> int:
    """Append the lines of `ds` to `out`; return its encoded length."""
    elements = _elements(ds)
    cs_elem = elements.get(0x00080005)
    if cs_elem is not None:
        charset = _charset_terms(cs_elem)
    indent = "  " * level
    total = 0
    # plain ints: pydicom's BaseTag compares in Python, ints in C
    for tag, elem in sorted(zip(map(int, elements), elements.values())):
        info = _TAG_CACHE.get(tag)
        if info is None:
            info = _TAG_CACHE[tag] = _tag_info(tag)
        head, name, dict_vr = info
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
                if vr in _STRING_VRS:
                    value = elem.value
                    s = value.rstrip(b" ")
                    if (s and s.isascii() and vr != "UI" and not len(value) & 1
                            and len(s) <= _LINE_WIDTH - 2 and 0x1B not in s):
                        # _format_string's common case, inline: most values are
                        # this (0x1B: the ESC of ISO 2022, which needs decoding)
                        vm = 1 if vr in _SINGLE_VALUE_VRS else s.count(b"\\") + 1
                        text = f"[{s.decode('ascii')}]"
                        length = len(value)
                    else:
                        text, vm, length = _format_string(vr, value, charset)
                else:
                    text, vm, length = _format_value(vr, elem.value, e_little, charset)
                out.append(f"{indent}{head}{vr} {text:<40} # {length:>3},{vm:>2} {name}")
                total += (8 if e_implicit or vr not in _LONG_HEADER_VRS else 12) + elem.length
                continue
            raw_length = elem.length if elem.length != _UNDEFINED else None
            elem = ds[tag]  # let pydicom parse the sequence
        else:
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
        elif implicit:  # as for raw elements: DCMTK's view of the dictionary
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
    implicit, little = getattr(ds, "original_encoding", (None, None))
    if implicit is None:
        implicit = False
    if little is None:
        little = True
    out: list[str] = []
    _format_items(ds, indent, out, bool(implicit), bool(little), None)
    return "\n".join(out)


# DCMTK 3.6.7 UID names: "uid name" per line (from dcmFindNameOfUID)
_UID_TABLE = """\
1.2.840.10008.1.1 VerificationSOPClass
1.2.840.10008.1.2 LittleEndianImplicit
1.2.840.10008.1.2.1 LittleEndianExplicit
1.2.840.10008.1.2.1.99 DeflatedLittleEndianExplicit
1.2.840.10008.1.2.2 BigEndianExplicit
1.2.840.10008.1.2.4.50 JPEGBaseline
1.2.840.10008.1.2.4.51 JPEGExtended:Process2+4
1.2.840.10008.1.2.4.52 JPEGExtended:Process3+5
1.2.840.10008.1.2.4.53 JPEGSpectralSelection:Non-hierarchical:Process6+8
1.2.840.10008.1.2.4.54 JPEGSpectralSelection:Non-hierarchical:Process7+9
1.2.840.10008.1.2.4.55 JPEGFullProgression:Non-hierarchical:Process10+12
1.2.840.10008.1.2.4.56 JPEGFullProgression:Non-hierarchical:Process11+13
1.2.840.10008.1.2.4.57 JPEGLossless:Non-hierarchical:Process14
1.2.840.10008.1.2.4.58 JPEGLossless:Non-hierarchical:Process15
1.2.840.10008.1.2.4.59 JPEGExtended:Hierarchical:Process16+18
1.2.840.10008.1.2.4.60 JPEGExtended:Hierarchical:Process17+19
1.2.840.10008.1.2.4.61 JPEGSpectralSelection:Hierarchical:Process20+22
1.2.840.10008.1.2.4.62 JPEGSpectralSelection:Hierarchical:Process21+23
1.2.840.10008.1.2.4.63 JPEGFullProgression:Hierarchical:Process24+26
1.2.840.10008.1.2.4.64 JPEGFullProgression:Hierarchical:Process25+27
1.2.840.10008.1.2.4.65 JPEGLossless:Hierarchical:Process28
1.2.840.10008.1.2.4.66 JPEGLossless:Hierarchical:Process29
1.2.840.10008.1.2.4.70 JPEGLossless:Non-hierarchical-1stOrderPrediction
1.2.840.10008.1.2.4.80 JPEGLSLossless
1.2.840.10008.1.2.4.81 JPEGLSLossy
1.2.840.10008.1.2.4.90 JPEG2000LosslessOnly
1.2.840.10008.1.2.4.91 JPEG2000
1.2.840.10008.1.2.4.92 JPEG2000MulticomponentLosslessOnly
1.2.840.10008.1.2.4.93 JPEG2000Multicomponent
1.2.840.10008.1.2.4.94 JPIPReferenced
1.2.840.10008.1.2.4.95 JPIPReferencedDeflate
1.2.840.10008.1.2.4.100 MPEG2MainProfile@MainLevel
1.2.840.10008.1.2.4.101 MPEG2MainProfile@HighLevel
1.2.840.10008.1.2.4.102 MPEG4HighProfile/Level4.1
1.2.840.10008.1.2.4.103 MPEG4BDcompatibleHighProfile/Level4.1
1.2.840.10008.1.2.4.104 MPEG4HighProfile/Level4.2For2DVideo
1.2.840.10008.1.2.4.105 MPEG4HighProfile/Level4.2For3DVideo
1.2.840.10008.1.2.4.106 MPEG4StereoHighProfile/Level4.2
1.2.840.10008.1.2.4.107 HEVCMainProfile/Level5.1
1.2.840.10008.1.2.4.108 HEVCMain10Profile/Level5.1
1.2.840.10008.1.2.5 RLELossless
1.2.840.10008.1.2.6.1 RFC2557MIMEEncapsulation
1.2.840.10008.1.2.6.2 XMLEncoding
1.2.840.10008.1.2.7.1 SMPTEST2110-20:UncompressedProgressiveActiveVideo
1.2.840.10008.1.2.7.2 SMPTEST2110-20:UncompressedInterlacedActiveVideo
1.2.840.10008.1.2.7.3 SMPTEST2110-30:PCMDigitalAudio
1.2.840.10008.1.3.10 MediaStorageDirectoryStorage
1.2.840.10008.1.4.1.1 TalairachBrainAtlasFrameOfReference
1.2.840.10008.1.4.1.2 SPM2T1FrameOfReference
1.2.840.10008.1.4.1.3 SPM2T2FrameOfReference
1.2.840.10008.1.4.1.4 SPM2PDFrameOfReference
1.2.840.10008.1.4.1.5 SPM2EPIFrameOfReference
1.2.840.10008.1.4.1.6 SPM2FILT1FrameOfReference
1.2.840.10008.1.4.1.7 SPM2PETFrameOfReference
1.2.840.10008.1.4.1.8 SPM2TRANSMFrameOfReference
1.2.840.10008.1.4.1.9 SPM2SPECTFrameOfReference
1.2.840.10008.1.4.1.10 SPM2GRAYFrameOfReference
1.2.840.10008.1.4.1.11 SPM2WHITEFrameOfReference
1.2.840.10008.1.4.1.12 SPM2CSFFrameOfReference
1.2.840.10008.1.4.1.13 SPM2BRAINMASKFrameOfReference
1.2.840.10008.1.4.1.14 SPM2AVG305T1FrameOfReference
1.2.840.10008.1.4.1.15 SPM2AVG152T1FrameOfReference
1.2.840.10008.1.4.1.16 SPM2AVG152T2FrameOfReference
1.2.840.10008.1.4.1.17 SPM2AVG152PDFrameOfReference
1.2.840.10008.1.4.1.18 SPM2SINGLESUBJT1FrameOfReference
1.2.840.10008.1.4.2.1 ICBM452T1FrameOfReference
1.2.840.10008.1.4.2.2 ICBMSingleSubjectMRIFrameOfReference
1.2.840.10008.1.4.3.1 IEC61217FixedCoordinateSystemFrameOfReference
1.2.840.10008.1.4.3.2 StandardRoboticCoordinateSystemFrameOfReference
1.2.840.10008.1.4.3.3 IEC61217TableTopCoordinateSystemFrameOfReference
1.2.840.10008.1.4.4.1 SRI24FrameOfReferenc
1.2.840.10008.1.4.5.1 Colin27FrameOfReference
1.2.840.10008.1.4.6.1 LPBA40AIRFrameOfReference
1.2.840.10008.1.4.6.2 LPBA40FLIRTFrameOfReference
1.2.840.10008.1.4.6.3 LPBA40SPM5FrameOfReference
1.2.840.10008.1.5.1 HotIronColorPaletteSOPInstance
1.2.840.10008.1.5.2 PETColorPaletteSOPInstance
1.2.840.10008.1.5.3 HotMetalBlueColorPaletteSOPInstance
1.2.840.10008.1.5.4 PET20StepColorPaletteSOPInstance
1.2.840.10008.1.5.5 SpringColorPaletteSOPInstance
1.2.840.10008.1.5.6 SummerColorPaletteSOPInstance
1.2.840.10008.1.5.7 FallColorPaletteSOPInstance
1.2.840.10008.1.5.8 WinterColorPaletteSOPInstance
1.2.840.10008.1.9 RETIRED_BasicStudyContentNotificationSOPClass
1.2.840.10008.1.20.1 StorageCommitmentPushModelSOPClass
1.2.840.10008.1.20.1.1 StorageCommitmentPushModelSOPInstance
1.2.840.10008.1.20.2 RETIRED_StorageCommitmentPullModelSOPClass
1.2.840.10008.1.20.2.1 RETIRED_StorageCommitmentPullModelSOPInstance
1.2.840.10008.1.40 ProceduralEventLoggingSOPClass
1.2.840.10008.1.40.1 ProceduralEventLoggingSOPInstance
1.2.840.10008.1.42 SubstanceAdministrationLoggingSOPClass
1.2.840.10008.1.42.1 SubstanceAdministrationLoggingSOPInstance
1.2.840.10008.2.6.1 DICOMUIDRegistryCodingScheme
1.2.840.10008.2.16.4 DICOMControlledTerminologyCodingScheme
1.2.840.10008.3.1.1.1 StandardApplicationContext
1.2.840.10008.3.1.2.1.1 RETIRED_DetachedPatientManagementSOPClass
1.2.840.10008.3.1.2.1.4 RETIRED_DetachedPatientManagementMetaSOPClass
1.2.840.10008.3.1.2.2.1 RETIRED_DetachedVisitManagementSOPClass
1.2.840.10008.3.1.2.3.1 RETIRED_DetachedStudyManagementSOPClass
1.2.840.10008.3.1.2.3.2 RETIRED_StudyComponentManagementSOPClass
1.2.840.10008.3.1.2.3.3 ModalityPerformedProcedureStepSOPClass
1.2.840.10008.3.1.2.3.4 ModalityPerformedProcedureStepRetrieveSOPClass
1.2.840.10008.3.1.2.3.5 ModalityPerformedProcedureStepNotificationSOPClass
1.2.840.10008.3.1.2.5.1 RETIRED_DetachedResultsManagementSOPClass
1.2.840.10008.3.1.2.5.4 RETIRED_DetachedResultsManagementMetaSOPClass
1.2.840.10008.3.1.2.5.5 RETIRED_DetachedStudyManagementMetaSOPClass
1.2.840.10008.3.1.2.6.1 RETIRED_DetachedInterpretationManagementSOPClass
1.2.840.10008.4.2 StorageServiceClass
1.2.840.10008.5.1.1.1 BasicFilmSessionSOPClass
1.2.840.10008.5.1.1.2 BasicFilmBoxSOPClass
1.2.840.10008.5.1.1.4 BasicGrayscaleImageBoxSOPClass
1.2.840.10008.5.1.1.4.1 BasicColorImageBoxSOPClass
1.2.840.10008.5.1.1.4.2 RETIRED_ReferencedImageBoxSOPClass
1.2.840.10008.5.1.1.9 BasicGrayscalePrintManagementMetaSOPClass
1.2.840.10008.5.1.1.9.1 RETIRED_ReferencedGrayscalePrintManagementMetaSOPClass
1.2.840.10008.5.1.1.14 PrintJobSOPClass
1.2.840.10008.5.1.1.15 BasicAnnotationBoxSOPClass
1.2.840.10008.5.1.1.16 PrinterSOPClass
1.2.840.10008.5.1.1.16.376 PrinterConfigurationRetrievalSOPClass
1.2.840.10008.5.1.1.17 PrinterSOPInstance
1.2.840.10008.5.1.1.17.376 PrinterConfigurationRetrievalSOPInstance
1.2.840.10008.5.1.1.18 BasicColorPrintManagementMetaSOPClass
1.2.840.10008.5.1.1.18.1 RETIRED_ReferencedColorPrintManagementMetaSOPClass
1.2.840.10008.5.1.1.22 VOILUTBoxSOPClass
1.2.840.10008.5.1.1.23 PresentationLUTSOPClass
1.2.840.10008.5.1.1.24 RETIRED_ImageOverlayBoxSOPClass
1.2.840.10008.5.1.1.24.1 RETIRED_BasicPrintImageOverlayBoxSOPClass
1.2.840.10008.5.1.1.25 RETIRED_PrintQueueSOPInstance
1.2.840.10008.5.1.1.26 RETIRED_PrintQueueManagementSOPClass
1.2.840.10008.5.1.1.27 RETIRED_StoredPrintStorage
1.2.840.10008.5.1.1.29 RETIRED_HardcopyGrayscaleImageStorage
1.2.840.10008.5.1.1.30 RETIRED_HardcopyColorImageStorage
1.2.840.10008.5.1.1.31 RETIRED_PullPrintRequestSOPClass
1.2.840.10008.5.1.1.32 RETIRED_PullStoredPrintManagementMetaSOPClass
1.2.840.10008.5.1.1.33 MediaCreationManagementSOPClass
1.2.840.10008.5.1.1.40 DisplaySystemSOPClass
1.2.840.10008.5.1.1.40.1 DisplaySystemSOPInstance
1.2.840.10008.5.1.4.1.1.1 ComputedRadiographyImageStorage
1.2.840.10008.5.1.4.1.1.1.1 DigitalXRayImageStorageForPresentation
1.2.840.10008.5.1.4.1.1.1.1.1 DigitalXRayImageStorageForProcessing
1.2.840.10008.5.1.4.1.1.1.2 DigitalMammographyXRayImageStorageForPresentation
1.2.840.10008.5.1.4.1.1.1.2.1 DigitalMammographyXRayImageStorageForProcessing
1.2.840.10008.5.1.4.1.1.1.3 DigitalIntraOralXRayImageStorageForPresentation
1.2.840.10008.5.1.4.1.1.1.3.1 DigitalIntraOralXRayImageStorageForProcessing
1.2.840.10008.5.1.4.1.1.2 CTImageStorage
1.2.840.10008.5.1.4.1.1.2.1 EnhancedCTImageStorage
1.2.840.10008.5.1.4.1.1.2.2 LegacyConvertedEnhancedCTImageStorage
1.2.840.10008.5.1.4.1.1.3 RETIRED_UltrasoundMultiframeImageStorage
1.2.840.10008.5.1.4.1.1.3.1 UltrasoundMultiframeImageStorage
1.2.840.10008.5.1.4.1.1.4 MRImageStorage
1.2.840.10008.5.1.4.1.1.4.1 EnhancedMRImageStorage
1.2.840.10008.5.1.4.1.1.4.2 MRSpectroscopyStorage
1.2.840.10008.5.1.4.1.1.4.3 EnhancedMRColorImageStorage
1.2.840.10008.5.1.4.1.1.4.4 LegacyConvertedEnhancedMRImageStorage
1.2.840.10008.5.1.4.1.1.5 RETIRED_NuclearMedicineImageStorage
1.2.840.10008.5.1.4.1.1.6 RETIRED_UltrasoundImageStorage
1.2.840.10008.5.1.4.1.1.6.1 UltrasoundImageStorage
1.2.840.10008.5.1.4.1.1.6.2 EnhancedUSVolumeStorage
1.2.840.10008.5.1.4.1.1.7 SecondaryCaptureImageStorage
1.2.840.10008.5.1.4.1.1.7.1 MultiframeSingleBitSecondaryCaptureImageStorage
1.2.840.10008.5.1.4.1.1.7.2 MultiframeGrayscaleByteSecondaryCaptureImageStorage
1.2.840.10008.5.1.4.1.1.7.3 MultiframeGrayscaleWordSecondaryCaptureImageStorage
1.2.840.10008.5.1.4.1.1.7.4 MultiframeTrueColorSecondaryCaptureImageStorage
1.2.840.10008.5.1.4.1.1.8 RETIRED_StandaloneOverlayStorage
1.2.840.10008.5.1.4.1.1.9 RETIRED_StandaloneCurveStorage
1.2.840.10008.5.1.4.1.1.9.1 DRAFT_WaveformStorage
1.2.840.10008.5.1.4.1.1.9.1.1 TwelveLeadECGWaveformStorage
1.2.840.10008.5.1.4.1.1.9.1.2 GeneralECGWaveformStorage
1.2.840.10008.5.1.4.1.1.9.1.3 AmbulatoryECGWaveformStorage
1.2.840.10008.5.1.4.1.1.9.2.1 HemodynamicWaveformStorage
1.2.840.10008.5.1.4.1.1.9.3.1 CardiacElectrophysiologyWaveformStorage
1.2.840.10008.5.1.4.1.1.9.4.1 BasicVoiceAudioWaveformStorage
1.2.840.10008.5.1.4.1.1.9.4.2 GeneralAudioWaveformStorage
1.2.840.10008.5.1.4.1.1.9.5.1 ArterialPulseWaveformStorage
1.2.840.10008.5.1.4.1.1.9.6.1 RespiratoryWaveformStorage
1.2.840.10008.5.1.4.1.1.9.6.2 MultichannelRespiratoryWaveformStorage
1.2.840.10008.5.1.4.1.1.9.7.1 RoutineScalpElectroencephalogramWaveformStorage
1.2.840.10008.5.1.4.1.1.9.7.2 ElectromyogramWaveformStorage
1.2.840.10008.5.1.4.1.1.9.7.3 ElectrooculogramWaveformStorage
1.2.840.10008.5.1.4.1.1.9.7.4 SleepElectroencephalogramWaveformStorage
1.2.840.10008.5.1.4.1.1.9.8.1 BodyPositionWaveformStorage
1.2.840.10008.5.1.4.1.1.10 RETIRED_StandaloneModalityLUTStorage
1.2.840.10008.5.1.4.1.1.11 RETIRED_StandaloneVOILUTStorage
1.2.840.10008.5.1.4.1.1.11.1 GrayscaleSoftcopyPresentationStateStorage
1.2.840.10008.5.1.4.1.1.11.2 ColorSoftcopyPresentationStateStorage
1.2.840.10008.5.1.4.1.1.11.3 PseudoColorSoftcopyPresentationStateStorage
1.2.840.10008.5.1.4.1.1.11.4 BlendingSoftcopyPresentationStateStorage
1.2.840.10008.5.1.4.1.1.11.5 XAXRFGrayscaleSoftcopyPresentationStateStorage
1.2.840.10008.5.1.4.1.1.11.6 GrayscalePlanarMPRVolumetricPresentationStateStorage
1.2.840.10008.5.1.4.1.1.11.7 CompositingPlanarMPRVolumetricPresentationStateStorage
1.2.840.10008.5.1.4.1.1.11.8 AdvancedBlendingPresentationStateStorage
1.2.840.10008.5.1.4.1.1.11.9 VolumeRenderingVolumetricPresentationStateStorage
1.2.840.10008.5.1.4.1.1.11.10 SegmentedVolumeRenderingVolumetricPresentationStateStorage
1.2.840.10008.5.1.4.1.1.11.11 MultipleVolumeRenderingVolumetricPresentationStateStorage
1.2.840.10008.5.1.4.1.1.12.1 XRayAngiographicImageStorage
1.2.840.10008.5.1.4.1.1.12.1.1 EnhancedXAImageStorage
1.2.840.10008.5.1.4.1.1.12.2 XRayRadiofluoroscopicImageStorage
1.2.840.10008.5.1.4.1.1.12.2.1 EnhancedXRFImageStorage
1.2.840.10008.5.1.4.1.1.12.3 RETIRED_XRayAngiographicBiPlaneImageStorage
1.2.840.10008.5.1.4.1.1.13.1.1 XRay3DAngiographicImageStorage
1.2.840.10008.5.1.4.1.1.13.1.2 XRay3DCraniofacialImageStorage
1.2.840.10008.5.1.4.1.1.13.1.3 BreastTomosynthesisImageStorage
1.2.840.10008.5.1.4.1.1.13.1.4 BreastProjectionXRayImageStorageForPresentation
1.2.840.10008.5.1.4.1.1.13.1.5 BreastProjectionXRayImageStorageForProcessing
1.2.840.10008.5.1.4.1.1.14.1 IntravascularOpticalCoherenceTomographyImageStorageForPresentation
1.2.840.10008.5.1.4.1.1.14.2 IntravascularOpticalCoherenceTomographyImageStorageForProcessing
1.2.840.10008.5.1.4.1.1.20 NuclearMedicineImageStorage
1.2.840.10008.5.1.4.1.1.30 ParametricMapStorage
1.2.840.10008.5.1.4.1.1.66 RawDataStorage
1.2.840.10008.5.1.4.1.1.66.1 SpatialRegistrationStorage
1.2.840.10008.5.1.4.1.1.66.2 SpatialFiducialsStorage
1.2.840.10008.5.1.4.1.1.66.3 DeformableSpatialRegistrationStorage
1.2.840.10008.5.1.4.1.1.66.4 SegmentationStorage
1.2.840.10008.5.1.4.1.1.66.5 SurfaceSegmentationStorage
1.2.840.10008.5.1.4.1.1.66.6 TractographyResultsStorage
1.2.840.10008.5.1.4.1.1.67 RealWorldValueMappingStorage
1.2.840.10008.5.1.4.1.1.68.1 SurfaceScanMeshStorage
1.2.840.10008.5.1.4.1.1.68.2 SurfaceScanPointCloudStorage
1.2.840.10008.5.1.4.1.1.77.1 RETIRED_VLImageStorage
1.2.840.10008.5.1.4.1.1.77.1.1 VLEndoscopicImageStorage
1.2.840.10008.5.1.4.1.1.77.1.1.1 VideoEndoscopicImageStorage
1.2.840.10008.5.1.4.1.1.77.1.2 VLMicroscopicImageStorage
1.2.840.10008.5.1.4.1.1.77.1.2.1 VideoMicroscopicImageStorage
1.2.840.10008.5.1.4.1.1.77.1.3 VLSlideCoordinatesMicroscopicImageStorage
1.2.840.10008.5.1.4.1.1.77.1.4 VLPhotographicImageStorage
1.2.840.10008.5.1.4.1.1.77.1.4.1 VideoPhotographicImageStorage
1.2.840.10008.5.1.4.1.1.77.1.5.1 OphthalmicPhotography8BitImageStorage
1.2.840.10008.5.1.4.1.1.77.1.5.2 OphthalmicPhotography16BitImageStorage
1.2.840.10008.5.1.4.1.1.77.1.5.3 StereometricRelationshipStorage
1.2.840.10008.5.1.4.1.1.77.1.5.4 OphthalmicTomographyImageStorage
1.2.840.10008.5.1.4.1.1.77.1.5.5 WideFieldOphthalmicPhotographyStereographicProjectionImageStorage
1.2.840.10008.5.1.4.1.1.77.1.5.6 WideFieldOphthalmicPhotography3DCoordinatesImageStorage
1.2.840.10008.5.1.4.1.1.77.1.5.7 OphthalmicOpticalCoherenceTomographyEnFaceImageStorage
1.2.840.10008.5.1.4.1.1.77.1.5.8 OphthalmicOpticalCoherenceTomographyBscanVolumeAnalysisStorage
1.2.840.10008.5.1.4.1.1.77.1.6 VLWholeSlideMicroscopyImageStorage
1.2.840.10008.5.1.4.1.1.77.1.7 DermoscopicPhotographyImageStorage
1.2.840.10008.5.1.4.1.1.77.2 RETIRED_VLMultiframeImageStorage
1.2.840.10008.5.1.4.1.1.78.1 LensometryMeasurementsStorage
1.2.840.10008.5.1.4.1.1.78.2 AutorefractionMeasurementsStorage
1.2.840.10008.5.1.4.1.1.78.3 KeratometryMeasurementsStorage
1.2.840.10008.5.1.4.1.1.78.4 SubjectiveRefractionMeasurementsStorage
1.2.840.10008.5.1.4.1.1.78.5 VisualAcuityMeasurementsStorage
1.2.840.10008.5.1.4.1.1.78.6 SpectaclePrescriptionReportStorage
1.2.840.10008.5.1.4.1.1.78.7 OphthalmicAxialMeasurementsStorage
1.2.840.10008.5.1.4.1.1.78.8 IntraocularLensCalculationsStorage
1.2.840.10008.5.1.4.1.1.79.1 MacularGridThicknessAndVolumeReportStorage
1.2.840.10008.5.1.4.1.1.80.1 OphthalmicVisualFieldStaticPerimetryMeasurementsStorage
1.2.840.10008.5.1.4.1.1.81.1 OphthalmicThicknessMapStorage
1.2.840.10008.5.1.4.1.1.82.1 CornealTopographyMapStorage
1.2.840.10008.5.1.4.1.1.88.1 DRAFT_SRTextStorage
1.2.840.10008.5.1.4.1.1.88.2 DRAFT_SRAudioStorage
1.2.840.10008.5.1.4.1.1.88.3 DRAFT_SRDetailStorage
1.2.840.10008.5.1.4.1.1.88.4 DRAFT_SRComprehensiveStorage
1.2.840.10008.5.1.4.1.1.88.11 BasicTextSRStorage
1.2.840.10008.5.1.4.1.1.88.22 EnhancedSRStorage
1.2.840.10008.5.1.4.1.1.88.33 ComprehensiveSRStorage
1.2.840.10008.5.1.4.1.1.88.34 Comprehensive3DSRStorage
1.2.840.10008.5.1.4.1.1.88.35 ExtensibleSRStorage
1.2.840.10008.5.1.4.1.1.88.40 ProcedureLogStorage
1.2.840.10008.5.1.4.1.1.88.50 MammographyCADSRStorage
1.2.840.10008.5.1.4.1.1.88.59 KeyObjectSelectionDocumentStorage
1.2.840.10008.5.1.4.1.1.88.65 ChestCADSRStorage
1.2.840.10008.5.1.4.1.1.88.67 XRayRadiationDoseSRStorage
1.2.840.10008.5.1.4.1.1.88.68 RadiopharmaceuticalRadiationDoseSRStorage
1.2.840.10008.5.1.4.1.1.88.69 ColonCADSRStorage
1.2.840.10008.5.1.4.1.1.88.70 ImplantationPlanSRDocumentStorage
1.2.840.10008.5.1.4.1.1.88.71 AcquisitionContextSRStorage
1.2.840.10008.5.1.4.1.1.88.72 SimplifiedAdultEchoSRStorage
1.2.840.10008.5.1.4.1.1.88.73 PatientRadiationDoseSRStorage
1.2.840.10008.5.1.4.1.1.88.74 PlannedImagingAgentAdministrationSRStorage
1.2.840.10008.5.1.4.1.1.88.75 PerformedImagingAgentAdministrationSRStorage
1.2.840.10008.5.1.4.1.1.88.76 EnhancedXRayRadiationDoseSRStorage
1.2.840.10008.5.1.4.1.1.90.1 ContentAssessmentResultsStorage
1.2.840.10008.5.1.4.1.1.91.1 MicroscopyBulkSimpleAnnotationsStorage
1.2.840.10008.5.1.4.1.1.104.1 EncapsulatedPDFStorage
1.2.840.10008.5.1.4.1.1.104.2 EncapsulatedCDAStorage
1.2.840.10008.5.1.4.1.1.104.3 EncapsulatedSTLStorage
1.2.840.10008.5.1.4.1.1.104.4 EncapsulatedOBJStorage
1.2.840.10008.5.1.4.1.1.104.5 EncapsulatedMTLStorage
1.2.840.10008.5.1.4.1.1.128 PositronEmissionTomographyImageStorage
1.2.840.10008.5.1.4.1.1.128.1 LegacyConvertedEnhancedPETImageStorage
1.2.840.10008.5.1.4.1.1.129 RETIRED_StandalonePETCurveStorage
1.2.840.10008.5.1.4.1.1.130 EnhancedPETImageStorage
1.2.840.10008.5.1.4.1.1.131 BasicStructuredDisplayStorage
1.2.840.10008.5.1.4.1.1.200.1 CTDefinedProcedureProtocolStorage
1.2.840.10008.5.1.4.1.1.200.2 CTPerformedProcedureProtocolStorage
1.2.840.10008.5.1.4.1.1.200.3 ProtocolApprovalStorage
1.2.840.10008.5.1.4.1.1.200.4 FINDProtocolApprovalInformationModel
1.2.840.10008.5.1.4.1.1.200.5 MOVEProtocolApprovalInformationModel
1.2.840.10008.5.1.4.1.1.200.6 GETProtocolApprovalInformationModel
1.2.840.10008.5.1.4.1.1.200.7 XADefinedProcedureProtocolStorage
1.2.840.10008.5.1.4.1.1.200.8 XAPerformedProcedureProtocolStorage
1.2.840.10008.5.1.4.1.1.481.1 RTImageStorage
1.2.840.10008.5.1.4.1.1.481.2 RTDoseStorage
1.2.840.10008.5.1.4.1.1.481.3 RTStructureSetStorage
1.2.840.10008.5.1.4.1.1.481.4 RTBeamsTreatmentRecordStorage
1.2.840.10008.5.1.4.1.1.481.5 RTPlanStorage
1.2.840.10008.5.1.4.1.1.481.6 RTBrachyTreatmentRecordStorage
1.2.840.10008.5.1.4.1.1.481.7 RTTreatmentSummaryRecordStorage
1.2.840.10008.5.1.4.1.1.481.8 RTIonPlanStorage
1.2.840.10008.5.1.4.1.1.481.9 RTIonBeamsTreatmentRecordStorage
1.2.840.10008.5.1.4.1.1.481.10 RTPhysicianIntentStorage
1.2.840.10008.5.1.4.1.1.481.11 RTSegmentAnnotationStorage
1.2.840.10008.5.1.4.1.1.481.12 RTRadiationSetStorage
1.2.840.10008.5.1.4.1.1.481.13 CArmPhotonElectronRadiationStorage
1.2.840.10008.5.1.4.1.1.481.14 TomotherapeuticRadiationStorage
1.2.840.10008.5.1.4.1.1.481.15 RoboticArmRadiationStorage
1.2.840.10008.5.1.4.1.1.481.16 RTRadiationRecordSetStorage
1.2.840.10008.5.1.4.1.1.481.17 RTRadiationSalvageRecordStorage
1.2.840.10008.5.1.4.1.1.481.18 TomotherapeuticRadiationRecordStorage
1.2.840.10008.5.1.4.1.1.481.19 CArmPhotonElectronRadiationRecordStorage
1.2.840.10008.5.1.4.1.1.481.20 RoboticRadiationRecordStorage
1.2.840.10008.5.1.4.1.1.481.21 RTRadiationSetDeliveryInstructionStorage
1.2.840.10008.5.1.4.1.1.481.22 RTTreatmentPreparationStorage
1.2.840.10008.5.1.4.1.1.501.1 DICOS_CTImageStorage
1.2.840.10008.5.1.4.1.1.501.2.1 DICOS_DigitalXRayImageStorageForPresentation
1.2.840.10008.5.1.4.1.1.501.2.2 DICOS_DigitalXRayImageStorageForProcessing
1.2.840.10008.5.1.4.1.1.501.3 DICOS_ThreatDetectionReportStorage
1.2.840.10008.5.1.4.1.1.501.4 DICOS_2DAITStorage
1.2.840.10008.5.1.4.1.1.501.5 DICOS_3DAITStorage
1.2.840.10008.5.1.4.1.1.501.6 DICOS_QuadrupoleResonanceStorage
1.2.840.10008.5.1.4.1.1.601.1 DICONDE_EddyCurrentImageStorage
1.2.840.10008.5.1.4.1.1.601.2 DICONDE_EddyCurrentMultiframeImageStorage
1.2.840.10008.5.1.4.1.2.1.1 FINDPatientRootQueryRetrieveInformationModel
1.2.840.10008.5.1.4.1.2.1.2 MOVEPatientRootQueryRetrieveInformationModel
1.2.840.10008.5.1.4.1.2.1.3 GETPatientRootQueryRetrieveInformationModel
1.2.840.10008.5.1.4.1.2.2.1 FINDStudyRootQueryRetrieveInformationModel
1.2.840.10008.5.1.4.1.2.2.2 MOVEStudyRootQueryRetrieveInformationModel
1.2.840.10008.5.1.4.1.2.2.3 GETStudyRootQueryRetrieveInformationModel
1.2.840.10008.5.1.4.1.2.3.1 RETIRED_FINDPatientStudyOnlyQueryRetrieveInformationModel
1.2.840.10008.5.1.4.1.2.3.2 RETIRED_MOVEPatientStudyOnlyQueryRetrieveInformationModel
1.2.840.10008.5.1.4.1.2.3.3 RETIRED_GETPatientStudyOnlyQueryRetrieveInformationModel
1.2.840.10008.5.1.4.1.2.4.2 MOVECompositeInstanceRootRetrieve
1.2.840.10008.5.1.4.1.2.4.3 GETCompositeInstanceRootRetrieve
1.2.840.10008.5.1.4.1.2.5.3 GETCompositeInstanceRetrieveWithoutBulkData
1.2.840.10008.5.1.4.20.1 FINDDefinedProcedureProtocolInformationModel
1.2.840.10008.5.1.4.20.2 MOVEDefinedProcedureProtocolInformationModel
1.2.840.10008.5.1.4.20.3 GETDefinedProcedureProtocolInformationModel
1.2.840.10008.5.1.4.31 FINDModalityWorklistInformationModel
1.2.840.10008.5.1.4.32 RETIRED_GeneralPurposeWorklistManagementMetaSOPClass
1.2.840.10008.5.1.4.32.1 RETIRED_FINDGeneralPurposeWorklistInformationModel
1.2.840.10008.5.1.4.32.2 RETIRED_GeneralPurposeScheduledProcedureStepSOPClass
1.2.840.10008.5.1.4.32.3 RETIRED_GeneralPurposePerformedProcedureStepSOPClass
1.2.840.10008.5.1.4.33 InstanceAvailabilityNotificationSOPClass
1.2.840.10008.5.1.4.34.1 DRAFT_RTBeamsDeliveryInstructionStorage
1.2.840.10008.5.1.4.34.2 DRAFT_RTConventionalMachineVerification
1.2.840.10008.5.1.4.34.3 DRAFT_RTIonMachineVerification
1.2.840.10008.5.1.4.34.4 DRAFT_UnifiedWorklistAndProcedureStepServiceClass
1.2.840.10008.5.1.4.34.4.1 DRAFT_UnifiedProcedureStepPushSOPClass
1.2.840.10008.5.1.4.34.4.2 DRAFT_UnifiedProcedureStepWatchSOPClass
1.2.840.10008.5.1.4.34.4.3 DRAFT_UnifiedProcedureStepPullSOPClass
1.2.840.10008.5.1.4.34.4.4 DRAFT_UnifiedProcedureStepEventSOPClass
1.2.840.10008.5.1.4.34.5 UPSGlobalSubscriptionSOPInstance
1.2.840.10008.5.1.4.34.5.1 UPSFilteredGlobalSubscriptionSOPInstance
1.2.840.10008.5.1.4.34.6 UnifiedWorklistAndProcedureStepServiceClass
1.2.840.10008.5.1.4.34.6.1 UnifiedProcedureStepPushSOPClass
1.2.840.10008.5.1.4.34.6.2 UnifiedProcedureStepWatchSOPClass
1.2.840.10008.5.1.4.34.6.3 UnifiedProcedureStepPullSOPClass
1.2.840.10008.5.1.4.34.6.4 UnifiedProcedureStepEventSOPClass
1.2.840.10008.5.1.4.34.6.5 UnifiedProcedureStepQuerySOPClass
1.2.840.10008.5.1.4.34.7 RTBeamsDeliveryInstructionStorage
1.2.840.10008.5.1.4.34.8 RTConventionalMachineVerification
1.2.840.10008.5.1.4.34.9 RTIonMachineVerification
1.2.840.10008.5.1.4.34.10 RTBrachyApplicationSetupDeliveryInstructionStorage
1.2.840.10008.5.1.4.37.1 GeneralRelevantPatientInformationQuery
1.2.840.10008.5.1.4.37.2 BreastImagingRelevantPatientInformationQuery
1.2.840.10008.5.1.4.37.3 CardiacRelevantPatientInformationQuery
1.2.840.10008.5.1.4.38.1 HangingProtocolStorage
1.2.840.10008.5.1.4.38.2 FINDHangingProtocolInformationModel
1.2.840.10008.5.1.4.38.3 MOVEHangingProtocolInformationModel
1.2.840.10008.5.1.4.39.1 ColorPaletteStorage
1.2.840.10008.5.1.4.39.2 FINDColorPaletteInformationModel
1.2.840.10008.5.1.4.39.3 MOVEColorPaletteInformationModel
1.2.840.10008.5.1.4.39.4 GETColorPaletteInformationModel
1.2.840.10008.5.1.4.41 ProductCharacteristicsQuerySOPClass
1.2.840.10008.5.1.4.42 SubstanceApprovalQuerySOPClass
1.2.840.10008.5.1.4.43.1 GenericImplantTemplateStorage
1.2.840.10008.5.1.4.43.2 FINDGenericImplantTemplateInformationModel
1.2.840.10008.5.1.4.43.3 MOVEGenericImplantTemplateInformationModel
1.2.840.10008.5.1.4.43.4 GETGenericImplantTemplateInformationModel
1.2.840.10008.5.1.4.44.1 ImplantAssemblyTemplateStorage
1.2.840.10008.5.1.4.44.2 FINDImplantAssemblyTemplateInformationModel
1.2.840.10008.5.1.4.44.3 MOVEImplantAssemblyTemplateInformationModel
1.2.840.10008.5.1.4.44.4 GETImplantAssemblyTemplateInformationModel
1.2.840.10008.5.1.4.45.1 ImplantTemplateGroupStorage
1.2.840.10008.5.1.4.45.2 FINDImplantTemplateGroupInformationModel
1.2.840.10008.5.1.4.45.3 MOVEImplantTemplateGroupInformationModel
1.2.840.10008.5.1.4.45.4 GETImplantTemplateGroupInformationModel
1.2.840.10008.7.1.1 NativeDICOMModel
1.2.840.10008.7.1.2 AbstractMultiDimensionalImageModel
1.2.840.10008.8.1.1 DICOMContentMappingResource
1.2.840.10008.10.1 VideoEndoscopicImageRealTimeCommunication
1.2.840.10008.10.2 VideoPhotographicImageRealTimeCommunication
1.2.840.10008.10.3 AudioWaveformRealTimeCommunication
1.2.840.10008.10.4 RenditionSelectionDocumentRealTimeCommunication
1.2.840.10008.15.0.3.1 LDAP_dicomDeviceName
1.2.840.10008.15.0.3.2 LDAP_dicomDescription
1.2.840.10008.15.0.3.3 LDAP_dicomManufacturer
1.2.840.10008.15.0.3.4 LDAP_dicomManufacturerModelName
1.2.840.10008.15.0.3.5 LDAP_dicomSoftwareVersion
1.2.840.10008.15.0.3.6 LDAP_dicomVendorData
1.2.840.10008.15.0.3.7 LDAP_dicomAETitle
1.2.840.10008.15.0.3.8 LDAP_dicomNetworkConnectionReference
1.2.840.10008.15.0.3.9 LDAP_dicomApplicationCluster
1.2.840.10008.15.0.3.10 LDAP_dicomAssociationInitiator
1.2.840.10008.15.0.3.11 LDAP_dicomAssociationAcceptor
1.2.840.10008.15.0.3.12 LDAP_dicomHostname
1.2.840.10008.15.0.3.13 LDAP_dicomPort
1.2.840.10008.15.0.3.14 LDAP_dicomSOPClass
1.2.840.10008.15.0.3.15 LDAP_dicomTransferRole
1.2.840.10008.15.0.3.16 LDAP_dicomTransferSyntax
1.2.840.10008.15.0.3.17 LDAP_dicomPrimaryDeviceType
1.2.840.10008.15.0.3.18 LDAP_dicomRelatedDeviceReference
1.2.840.10008.15.0.3.19 LDAP_dicomPreferredCalledAETitle
1.2.840.10008.15.0.3.20 LDAP_dicomTLSCyphersuite
1.2.840.10008.15.0.3.21 LDAP_dicomAuthorizedNodeCertificateReference
1.2.840.10008.15.0.3.22 LDAP_dicomThisNodeCertificateReference
1.2.840.10008.15.0.3.23 LDAP_dicomInstalled
1.2.840.10008.15.0.3.24 LDAP_dicomStationName
1.2.840.10008.15.0.3.25 LDAP_dicomDeviceSerialNumber
1.2.840.10008.15.0.3.26 LDAP_dicomInstitutionName
1.2.840.10008.15.0.3.27 LDAP_dicomInstitutionAddress
1.2.840.10008.15.0.3.28 LDAP_dicomInstitutionDepartmentName
1.2.840.10008.15.0.3.29 LDAP_dicomIssuerOfPatientID
1.2.840.10008.15.0.3.30 LDAP_dicomPreferredCallingAETitle
1.2.840.10008.15.0.3.31 LDAP_dicomSupportedCharacterSet
1.2.840.10008.15.0.4.1 LDAP_dicomConfigurationRoot
1.2.840.10008.15.0.4.2 LDAP_dicomDevicesRoot
1.2.840.10008.15.0.4.3 LDAP_dicomUniqueAETitlesRegistryRoot
1.2.840.10008.15.0.4.4 LDAP_dicomDevice
1.2.840.10008.15.0.4.5 LDAP_dicomNetworkAE
1.2.840.10008.15.0.4.6 LDAP_dicomNetworkConnection
1.2.840.10008.15.0.4.7 LDAP_dicomUniqueAETitle
1.2.840.10008.15.0.4.8 LDAP_dicomTransferCapability
1.2.840.10008.15.1.1 UniversalCoordinatedTimeSynchronizationFrameOfReference
1.2.840.113619.5.2 PrivateGELittleEndianImplicitWithBigEndianPixelData
"""
