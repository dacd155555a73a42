"""Fast decoding of response identifiers (pydicom 3.0 internals): see
:mod:`dimsekit._internals`.  ``tests/test_decode.py`` holds each piece
side by side with pydicom's own result."""

from __future__ import annotations

from typing import Any

from dimsekit.qr.strict import (
    NUMBER_PATTERNS,
    VALUE_SIZE,
    NotDicom,
    check_structure,
    numbers_ok,
)


def element_splitter(implicit: bool):
    """``split(data) -> {tag: RawDataElement} | None``: what pydicom's
    ``data_element_generator`` yields for a little endian identifier whose
    elements all have a defined length (the usual C-FIND response), at
    half its cost; None for anything else (undefined lengths, items at the
    top level, unknown or switched VRs, truncated data), which is then
    pydicom's to read.  ``tests/test_decode.py`` holds the two side by side.

    Values that :func:`~dimsekit.qr.strict.check_structure` refuses (a binary value that is not a
    whole number of values, IS/DS text that is not a number) and sequences
    give None too: the strict check then says what is wrong.
    """
    import struct

    from pydicom.datadict import DicomDictionary
    from pydicom.dataelem import RawDataElement, empty_value_for_VR
    from pydicom.filereader import ENCODED_VR
    from pydicom.tag import BaseTag
    from pydicom.valuerep import EXPLICIT_VR_LENGTH_32

    head = struct.Struct("<HHL" if implicit else "<HH2sH").unpack_from
    long_length = struct.Struct("<L").unpack_from
    vrs = {vr: vr.decode("latin-1") for vr in ENCODED_VR if len(vr) == 2}
    long_vrs = {vr for vr, text in vrs.items() if text in EXPLICIT_VR_LENGTH_32}
    dictionary = DicomDictionary
    sizes = VALUE_SIZE
    numbers = NUMBER_PATTERNS
    watched = frozenset({"SQ", *sizes, *numbers})
    implicit_vrs: dict[int, str | None] = {}  # tag -> watched dictionary VR

    def split(data: bytes) -> dict | None:
        elements = {}
        end = len(data)
        pos = 0
        while pos < end:
            if end - pos < 8:
                return None
            if implicit:
                group, elem, length = head(data, pos)
                vr = None
                pos += 8
            else:
                group, elem, vr_bytes, length = head(data, pos)
                vr = vrs.get(vr_bytes)
                if vr is None:
                    return None
                if vr_bytes in long_vrs:
                    if end - pos < 12:
                        return None
                    length = long_length(data, pos + 8)[0]
                    pos += 12
                else:
                    pos += 8
            if group == 0xFFFE or length == 0xFFFFFFFF or pos + length > end:
                return None
            tag = BaseTag(group << 16 | elem)
            value = data[pos:pos + length] if length else empty_value_for_VR(vr, raw=True)
            if implicit:  # the dictionary's VR if it is one to look at
                key = group << 16 | elem  # a plain int: BaseTag compares in Python
                known = implicit_vrs.get(key, _UNSEEN)
                if known is _UNSEEN:
                    entry = dictionary.get(key)
                    known = implicit_vrs[key] = (entry[0] if entry and entry[0] in watched
                                                 else None)
            else:
                known = vr
            if known in watched:
                if known == "SQ" and length:  # its items looked over, the element kept raw
                    try:
                        check_structure(value, implicit, True, ordered=False,
                                        sequence=True)
                    except NotDicom:
                        return None
                size = sizes.get(known)
                if size and length % size:
                    return None
                pattern = numbers.get(known)
                if pattern is not None and length and not numbers_ok(value, pattern):
                    return None
            # (an empty value is what pydicom itself puts in: "" or b"")
            elements[tag] = RawDataElement(tag, vr, length, value, pos,  # type: ignore[arg-type]
                                           implicit, True)
            pos += length
        return elements

    return split


_UNSEEN = object()


def dataset_maker(implicit: bool, little: bool):
    """``make(elements, encoding) -> Dataset``: what ``Dataset(elements)``
    and ``set_original_encoding(implicit, little, encoding)`` give, in a
    tenth of the time.

    pydicom's ``Dataset.__init__`` sets a dozen attributes through its own
    ``__setattr__`` (~6 µs, as long as splitting the identifier); here a
    dataset made once per character set lends its attributes to every
    new one (a fresh copy of each mutable one).  Checked against the
    real constructor when the maker is made: should a pydicom release
    set up a dataset differently, the constructor is used.
    """
    from pydicom.dataset import Dataset

    def construct(elements: dict, encoding: Any) -> Any:
        ds = Dataset(elements)
        ds.set_original_encoding(implicit, little, encoding)
        return ds

    templates: dict[int, tuple[Any, dict, list[str]]] = {}
    new = Dataset.__new__

    def make(elements: dict, encoding: Any) -> Any:
        template = templates.get(id(encoding))
        if template is None or template[0] is not encoding:
            state = dict(vars(construct({}, encoding)))
            del state["_dict"]
            mutable = [name for name, value in state.items()
                       if isinstance(value, (dict, list, set, bytearray))]
            template = templates[id(encoding)] = (encoding, state, mutable)
        ds = new(Dataset)
        attributes = ds.__dict__
        attributes.update(template[1])
        for name in template[2]:
            attributes[name] = attributes[name].copy()
        attributes["_dict"] = elements
        return ds

    probe: dict = {}
    made, built = make(probe, ["iso8859"]), construct(probe, ["iso8859"])
    if type(made) is not type(built) or vars(made) != vars(built):
        return construct
    return make


def raw_elements(ds: Any) -> dict | None:
    """``ds``'s elements as pydicom keeps them (tag -> raw or converted
    element), or None when that cannot be had (then use the public API)."""
    from dimsekit._internals import fast_path

    elements = getattr(ds, "_dict", None) if fast_path() else None
    return elements if isinstance(elements, dict) else None
