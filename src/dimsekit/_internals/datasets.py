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


def element_splitter(implicit: bool, sequences: bool = False):
    """``split(data) -> {tag: RawDataElement} | None``: what pydicom's
    ``data_element_generator`` yields for a little endian identifier whose
    elements all have a defined length (the usual C-FIND response), at
    half its cost; None for anything else (undefined lengths, items at the
    top level, unknown or switched VRs, truncated data), which is then
    pydicom's to read.  ``tests/test_decode.py`` holds the two side by side.

    Values that :func:`~dimsekit.qr.strict.check_structure` refuses (a binary value that is not a
    whole number of values, IS/DS text that is not a number) and sequences
    give None too: the strict check then says what is wrong.

    ``sequences``: a sequence's items are looked over by
    :func:`sequence_checker` first (explicit VR), which passes only what the
    strict check passes, at a third of its cost, and leaves the items it
    split for ``dump`` (:func:`item_splitter`); what it does not pass, the
    strict check decides.
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
    quick_check = sequence_checker(implicit) if sequences else None

    # a RawDataElement as its constructor makes it, without the call of its
    # generated __new__ (~80 ns an element): its fields checked by
    # dimsekit._internals._missing(), the result by tests/test_decode.py
    new = tuple.__new__
    raw = RawDataElement

    def watched_ok(known: Any, value: Any, length: int) -> bool:
        """A value of a watched VR passes what the strict check asks."""
        if known == "SQ" and length and (quick_check is None or quick_check(value) is None):
            # its items looked over, the element kept raw
            try:
                check_structure(value, implicit, True, ordered=False, sequence=True)
            except NotDicom:
                return False
        size = sizes.get(known)
        if size and length % size:
            return False
        pattern = numbers.get(known)
        return pattern is None or not length or numbers_ok(value, pattern)

    def split_explicit(data: bytes) -> dict | None:
        elements = {}
        end = len(data)
        pos = 0
        while pos < end:
            if end - pos < 8:
                return None
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
            # (an empty value is what pydicom itself puts in: "" or b"")
            value = data[pos:pos + length] if length else empty_value_for_VR(vr, raw=True)
            if vr in watched and not watched_ok(vr, value, length):
                return None
            elements[tag] = new(raw, (tag, vr, length, value, pos, False, True, True, False))
            pos += length
        return elements

    def split_implicit(data: bytes) -> dict | None:
        elements = {}
        end = len(data)
        pos = 0
        while pos < end:
            if end - pos < 8:
                return None
            group, elem, length = head(data, pos)
            pos += 8
            if group == 0xFFFE or length == 0xFFFFFFFF or pos + length > end:
                return None
            key = group << 16 | elem  # a plain int: BaseTag compares in Python
            tag = BaseTag(key)
            value = data[pos:pos + length] if length else empty_value_for_VR(None, raw=True)
            # the dictionary's VR if it is one to look at
            known = implicit_vrs.get(key, _UNSEEN)
            if known is _UNSEEN:
                entry = dictionary.get(key)
                known = implicit_vrs[key] = (entry[0] if entry and entry[0] in watched
                                             else None)
            if known is not None and not watched_ok(known, value, length):
                return None
            elements[tag] = new(raw, (tag, None, length, value, pos, True, True, True, False))
            pos += length
        return elements

    return split_implicit if implicit else split_explicit


_UNSEEN = object()
#: (value, implicit, items) of the sequence :func:`sequence_checker` split
#: last: ``dump`` formats that response next and takes the items from here
_LAST_ITEMS: list[Any] = [None, None, None]


def sequence_checker(implicit: bool):
    """``check(value) -> items | None``: the items of a sequence value
    (as :func:`item_splitter` gives them) when the strict look-over
    (``check_structure(value, implicit, True, ordered=False,
    sequence=True)``) would pass it; None when it might not, and then it is
    the strict check's to decide.  Explicit VR only (implicit: always None).

    What it passes, the strict check passes: items of defined length that
    fill the value; in each, elements :func:`element_splitter` takes (known
    VRs, whole binary values, IS/DS numbers, values within the item), none
    lost to a repeated tag (their encoded sizes add up to the item's),
    none of a group the strict check refuses (0000, 0002, odd groups up to
    0007, FFFF) and no sequence nested in them (whose nesting depth the
    strict check counts).  ``tests/test_perf_equivalence.py`` holds it to
    ``check_structure`` over thousands of generated and mangled sequences.
    """
    if implicit:
        return lambda value: None
    from pydicom.valuerep import EXPLICIT_VR_LENGTH_32, STANDARD_VR

    items = item_splitter(False)
    long_vrs = frozenset(EXPLICIT_VR_LENGTH_32)
    standard = frozenset(STANDARD_VR)

    def check(value: bytes) -> list[dict] | None:
        found = items(value)
        if found is None:
            return None
        size = 0
        for elements in found:
            size += 8  # the item's tag and length
            for tag, elem in elements.items():
                group = tag >> 16
                vr = elem.VR
                if (group in (0x0000, 0x0002, 0xFFFF) or (group & 1 and group <= 7)
                        or vr == "SQ" or vr not in standard):
                    return None
                size += (12 if vr in long_vrs else 8) + elem.length
        if size != len(value):  # an element lost to a repeated tag
            return None
        _LAST_ITEMS[:] = (value, False, found)
        return found

    return check


def item_splitter(implicit: bool):
    """``items(value) -> [{tag: RawDataElement}, ...] | None``: the items
    of a little endian, defined-length sequence value as pydicom's
    sequence reader makes them (each item's raw elements, what
    :func:`element_splitter` gives), without building a Dataset per item;
    None when an item has an undefined length or is not what
    :func:`element_splitter` takes (then it is pydicom's to read).
    ``tests/test_perf_equivalence.py`` holds it to pydicom's result."""
    import struct

    split = element_splitter(implicit)
    head = struct.Struct("<HHL").unpack_from

    def items(value: bytes | None) -> list[dict] | None:
        out: list[dict] = []
        if not value:  # an empty sequence (implicit VR: None)
            return out
        seen = _LAST_ITEMS
        if seen[0] is value and seen[1] == implicit:  # just split (its value kept alive)
            return seen[2]
        pos, end = 0, len(value)
        while pos < end:
            if end - pos < 8:
                return None
            group, elem, length = head(value, pos)
            pos += 8
            if group != 0xFFFE or elem != 0xE000 or length == 0xFFFFFFFF \
                    or pos + length > end:
                return None
            elements = split(value[pos:pos + length])
            if elements is None:
                return None
            out.append(elements)
            pos += length
        return out

    return items


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


def original_encoding(ds: Any) -> tuple[Any, Any]:
    """``ds.original_encoding`` (``(None, None)`` for what has none) as
    pydicom 3.0 keeps it, in ``_read_implicit`` and ``_read_little``: its
    property builds the typing generics of a ``cast`` on every call (~0.4
    us, a response's worth of dump lines).  Anything else: the property.
    ``tests/test_perf_equivalence.py`` holds the two side by side."""
    state = getattr(ds, "__dict__", None)
    if state is not None:
        implicit = state.get("_read_implicit", _UNSEEN)
        little = state.get("_read_little", _UNSEEN)
        if implicit is not _UNSEEN and little is not _UNSEEN:
            return implicit, little
    return getattr(ds, "original_encoding", (None, None))


def plain_dataset_maker():
    """``make(elements) -> Dataset``: what ``Dataset(elements)`` gives
    (a batch row's identifier, made of its template's elements and its
    own), at a tenth of the cost, as :func:`dataset_maker` makes it;
    pydicom's constructor itself on the pure path, or should a pydicom
    release set up a dataset differently."""
    from pydicom.dataset import Dataset

    from dimsekit._internals import fast_path

    if not fast_path():
        return Dataset
    state = dict(vars(Dataset({})))
    del state["_dict"]
    mutable = [name for name, value in state.items()
               if isinstance(value, (dict, list, set, bytearray))]
    new = Dataset.__new__

    def make(elements: dict) -> Any:
        ds = new(Dataset)
        attributes = ds.__dict__
        attributes.update(state)
        for name in mutable:
            attributes[name] = attributes[name].copy()
        attributes["_dict"] = elements
        return ds

    probe: dict = {}
    made, built = make(probe), Dataset(probe)
    if type(made) is not type(built) or vars(made) != vars(built):
        return Dataset
    return make


def private_pair_adder(creator_tag: int, tag: int, creator: str, vr: str):
    """``add(ds, value) -> bool``: what ``ds.add_new(creator_tag, "LO",
    creator)`` and then ``ds.add_new(tag, vr, value)`` do to a data set that
    has no element of their private group yet (the caller's to know: a
    batch's row element, :func:`dimsekit.qr.rows.add_row_element`), at a
    third of the cost.  ``Dataset.__setitem__`` does nothing to such a pair
    but store them and give the second its ``private_creator`` (the
    first's value; its debug log line aside), which is done here on the
    data set's element dict.  False, with nothing done, on the pure path
    (then it is ``add_new``'s to do).  ``tests/test_perf_equivalence.py``
    holds the two side by side."""
    from pydicom.dataelem import DataElement

    from dimsekit._internals import fast_path

    def add(ds: Any, value: Any) -> bool:
        elements = getattr(ds, "_dict", None) if fast_path() else None
        if type(elements) is not dict:
            return False
        first = DataElement(creator_tag, "LO", creator)
        second = DataElement(tag, vr, value)
        second.private_creator = first.value
        elements[first.tag] = first
        elements[second.tag] = second
        return True

    return add


def raw_elements(ds: Any) -> dict | None:
    """``ds``'s elements as pydicom keeps them (tag -> raw or converted
    element), or None when that cannot be had (then use the public API)."""
    from dimsekit._internals import fast_path

    elements = getattr(ds, "_dict", None) if fast_path() else None
    return elements if isinstance(elements, dict) else None
