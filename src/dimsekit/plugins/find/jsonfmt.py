"""DICOM JSON (PS3.18 Annex F) writers: ``json`` (one array, the body a
QIDO-RS search returns, streamed) and ``ndjson`` (one object per line,
flushed per response).

The JSON is pydicom's :meth:`~pydicom.dataset.Dataset.to_json_dict`, byte
for byte.  Building it through pydicom costs ~150 µs a response, most of it
converting each raw element into a :class:`~pydicom.dataelem.DataElement`
that is thrown away again, so :func:`dataset_json` writes the common case
itself: a raw element of a plain text or binary-number VR whose value is
well formed.  Everything else (sequences, binary and ambiguous VRs,
private tags in implicit VR, ISO 2022 escapes, undecodable text, values
pydicom would complain about, numbers that are not plain numbers) goes
through pydicom.  ``tests/test_jsonfmt.py`` holds the fast path to
pydicom's output over generated identifiers.
"""

from __future__ import annotations

import json
import math
import re
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:  # pragma: no cover
    from pydicom.dataelem import RawDataElement

#: never BulkDataURI: there is nowhere to retrieve bulk data from
NO_BULK = 2**62

_SPECIFIC_CHARACTER_SET = 0x00080005
#: LUT Descriptors: pydicom's raw_element_value hook makes a negative first
#: value unsigned; left to it
_LUT_DESCRIPTORS = frozenset((0x00281101, 0x00281102, 0x00281103, 0x00283002))


def pydicom_json(ds: Any) -> dict:
    """The DICOM JSON model of ``ds`` as pydicom makes it; text decoded per
    Specific Character Set, binary values as InlineBinary."""
    return ds.to_json_dict(bulk_data_threshold=NO_BULK)


_ENCODER: JsonEncoder | None = None


def dicom_json(ds: Any) -> dict:
    """:func:`pydicom_json`'s model, read back from :class:`JsonEncoder`'s
    text (the XML writer's input): the same dict at a fifth of the cost."""
    global _ENCODER
    if _ENCODER is None:
        _ENCODER = JsonEncoder()
    return json.loads(_ENCODER.encode(ds))


# --------------------------------------------------------------------------
# the fast path: one raw element -> its JSON text, or None for "ask pydicom"

_quote: Callable[[str], str] = json.encoder.encode_basestring  # json.dumps's own
_IS = re.compile(r"[ ]*[+-]?[0-9]{1,15}[ ]*\Z")  # longer: pydicom makes a float of it
_DS = re.compile(r"[ ]*[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[ ]*\Z")
_NUMBERS = {"US": ("H", 2), "SS": ("h", 2), "UL": ("L", 4), "SL": ("l", 4),
            "FL": ("f", 4), "FD": ("d", 8)}
_ESC = 0x1B


def _strings(values: list[str]) -> str:
    return ",".join(map(_quote, values))


def _ascii_multi(raw: bytes, encodings: list[str]) -> list[str] | None:
    # AS CS DA DT TM: pydicom's multi_string
    return raw.decode("latin-1").rstrip(" \x00").split("\\")


def _ui(raw: bytes, encodings: list[str]) -> list[str] | None:
    # multi_string, then pydicom's UID class strips each value
    return [s.strip() for s in raw.decode("latin-1").rstrip(" \x00").split("\\")]


def _ae(raw: bytes, encodings: list[str]) -> list[str] | None:
    return [s.strip() for s in raw.decode("latin-1").split("\\")]


def _decode(raw: bytes, encodings: list[str]) -> str | None:
    """pydicom's decode_bytes where it is a plain ``bytes.decode``."""
    if _ESC in raw:
        return None
    try:
        return raw.decode(encodings[0])
    except (UnicodeError, LookupError):
        return None  # pydicom warns and replaces


def _text_multi(raw: bytes, encodings: list[str]) -> list[str] | None:
    # SH LO UC: convert_text
    text = _decode(raw, encodings)
    if text is None:
        return None
    return [s.rstrip("\x00 ") for s in text.split("\\")]


def _text_single(raw: bytes, encodings: list[str]) -> list[str] | None:
    # LT ST UT: convert_single_string
    text = _decode(raw, encodings)
    return None if text is None else [text.rstrip("\x00 ")]


def _ur(raw: bytes, encodings: list[str]) -> list[str] | None:
    return [raw.decode("latin-1").rstrip()]


_STRING_VRS: dict[str, Callable[[bytes, list[str]], list[str] | None]] = {
    "AS": _ascii_multi, "CS": _ascii_multi, "DA": _ascii_multi, "DT": _ascii_multi,
    "TM": _ascii_multi, "UI": _ui, "AE": _ae,
    "SH": _text_multi, "LO": _text_multi, "UC": _text_multi,
    "LT": _text_single, "ST": _text_single, "UT": _text_single, "UR": _ur,
}


def _value(vr: str, raw: bytes, little: bool, encodings: list[str]) -> str | None:
    """The ``"Value":[...]`` text of a non-empty value; "" for no value;
    None when pydicom has to do it."""
    convert = _STRING_VRS.get(vr)
    if convert is not None:
        values = convert(raw, encodings)
        if values is None:
            return None
        if len(values) == 1:
            return f',"Value":[{_quote(values[0])}]' if values[0] else ""
        return f',"Value":[{_strings(values)}]'
    if vr == "PN":
        text = _decode(raw.rstrip(b"\x00 "), encodings)
        if text is None:
            return None
        values = text.split("\\")
        if len(values) == 1 and not values[0]:
            return ""
        names = []
        for value in values:
            groups = value.split("=")
            while groups and not groups[-1]:
                groups.pop()
            if not groups:
                return None
            names.append("{" + ",".join(
                f"{key}:{_quote(group)}" for key, group in zip(
                    ('"Alphabetic"', '"Ideographic"', '"Phonetic"'), groups,
                    strict=False)) + "}")
            if len(groups) > 3:
                return None
        return f',"Value":[{",".join(names)}]'
    if vr == "IS" or vr == "DS":
        text = raw.decode("latin-1")
        values = (text if vr == "IS" else text.strip()).rstrip(" \x00").split("\\")
        if len(values) == 1 and not values[0]:
            return ""
        if vr == "IS":
            if not all(_IS.match(v) for v in values):
                return None
            return f',"Value":[{",".join(str(int(v)) for v in values)}]'
        if not all(_DS.match(v) for v in values):
            return None
        floats = [float(v) for v in values]
        if not all(math.isfinite(v) for v in floats):
            return None
        return f',"Value":[{",".join(map(repr, floats))}]'
    number = _NUMBERS.get(vr)
    if number is not None:
        code, size = number
        count, rest = divmod(len(raw), size)
        if rest:
            return None
        if not count:
            return ""
        numbers = struct.unpack(f"{'<' if little else '>'}{count}{code}", raw)
        if code in "fd":
            if not all(math.isfinite(v) for v in numbers):
                return None
            return f',"Value":[{",".join(map(repr, numbers))}]'
        return f',"Value":[{",".join(map(str, numbers))}]'
    return None


def _encodings_for(elements: dict, cache: dict,
                   raw_class: type[RawDataElement]) -> list[str] | None:
    elem = elements.get(_SPECIFIC_CHARACTER_SET)
    if elem is None:
        return cache[None]
    key = elem.value
    if elem.__class__ is not raw_class or not isinstance(key, bytes):
        return None
    encodings = cache.get(key)
    if encodings is None:
        from pydicom.charset import convert_encodings
        from pydicom.dataelem import convert_raw_data_element

        encodings = cache[key] = convert_encodings(convert_raw_data_element(elem).value)
    return encodings


class JsonEncoder:
    """``encode(ds) -> str``: the compact JSON text of ``ds``'s DICOM JSON
    model, as ``json.dumps(pydicom_json(ds), ensure_ascii=False,
    separators=(",", ":"))`` gives it."""

    def __init__(self) -> None:
        from pydicom import config
        from pydicom.charset import default_encoding
        from pydicom.datadict import dictionary_VR
        from pydicom.dataelem import RawDataElement
        from pydicom.hooks import hooks, raw_element_value, raw_element_vr

        self._raw = RawDataElement
        self._dictionary_vr = dictionary_VR
        self._encodings: dict[Any, list[str]] = {None: [default_encoding]}
        self._config = config
        self._hooks = hooks
        self._default_hooks = (raw_element_value, raw_element_vr)

    def _as_pydicom_would(self) -> bool:
        """Whether the fast path writes what pydicom would: not from -v on
        (pydicom then validates every value it converts and says what is
        wrong), nor when someone changed how pydicom converts values."""
        config = self._config
        return (config.settings.reading_validation_mode == config.IGNORE
                and not (config.datetime_conversion or config.use_IS_numpy
                         or config.use_DS_numpy or config.use_DS_decimal
                         or config.data_element_callback)
                and (self._hooks.raw_element_value, self._hooks.raw_element_vr)
                == self._default_hooks)

    def _implicit_vr(self, tag: int) -> str | None:
        if tag >> 16 & 1:  # private: pydicom needs the creator
            return None
        try:
            vr = self._dictionary_vr(tag)
        except KeyError:
            return None
        return vr if len(vr) == 2 else None

    def encode(self, ds: Any) -> str:
        elements = getattr(ds, "_dict", None) if self._as_pydicom_would() else None
        if (elements is None
                or (encodings := _encodings_for(elements, self._encodings, self._raw)) is None):
            return json.dumps(pydicom_json(ds), ensure_ascii=False, separators=(",", ":"))
        parts = []
        raw_class = self._raw
        for tag, elem in elements.items():
            text = None
            if (elem.__class__ is raw_class and elem.value is not None
                    and tag not in _LUT_DESCRIPTORS):
                vr = elem.VR or self._implicit_vr(tag)
                if vr is not None:
                    value = _value(vr, elem.value, elem.is_little_endian, encodings)
                    if value is not None:
                        text = f'"{tag:08X}":{{"vr":"{vr}"{value}}}'
            if text is None:
                element = ds[tag].to_json_dict(None, NO_BULK)
                text = f'"{tag:08X}":' + json.dumps(
                    element, ensure_ascii=False, separators=(",", ":"))
            parts.append(text)
        return "{" + ",".join(parts) + "}"


class JsonWriter:
    """``[`` obj ``,`` obj ... ``]``: valid JSON however the run ends."""

    def __init__(self, stream: BinaryIO, options: dict[str, Any]):
        self.stream = stream
        self.count = 0

    def begin(self) -> None:
        self.stream.write(b"[")
        self._encode = JsonEncoder().encode

    def write(self, ds: Any, info: Any) -> None:
        sep = b",\n" if self.count else b"\n"
        self.count += 1
        self.stream.write(sep + self._encode(ds).encode("utf-8"))

    def end(self) -> None:
        self.stream.write(b"\n]\n" if self.count else b"]\n")
        self.stream.flush()


class NdjsonWriter:
    """One DICOM JSON object per line, flushed per response (docs/output.md,
    "ndjson": a ``| jq`` or a line-reading script gets each match as soon as
    it is written; the other formats are flushed whenever dimsekit waits for
    the peer)."""

    def __init__(self, stream: BinaryIO, options: dict[str, Any]):
        self.stream = stream

    def begin(self) -> None:
        self._encode = JsonEncoder().encode

    def write(self, ds: Any, info: Any) -> None:
        self.stream.write(self._encode(ds).encode("utf-8") + b"\n")
        self.stream.flush()

    def end(self) -> None:
        self.stream.flush()
