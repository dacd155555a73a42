"""Response identifiers from bytes to pydicom Datasets, per transfer
syntax: on the fast path a splitter for plain identifiers
(:mod:`dimsekit._internals.datasets`), pydicom's reader for the rest and on
the pure path; every identifier pydicom is to read is first looked over
by :func:`~dimsekit.qr.strict.check_structure`."""

from __future__ import annotations

import zlib
from io import BytesIO
from typing import Any

from dimsekit.qr.strict import NotDicom, check_structure

SPECIFIC_CHARACTER_SET = 0x00080005


class Decoder:
    """``decode(data) -> Dataset | None``; after None, :attr:`problem` says
    why (in words, for the warning that the response was skipped)."""

    def __init__(self, read: Any, deflated: bool):
        self._read = read
        self._deflated = deflated
        self.problem: str | None = None

    def __call__(self, data: bytes | None) -> Any:
        self.problem = None
        if data is None:
            self.problem = "no identifier"
            return None
        try:
            if self._deflated:
                data = zlib.decompress(data, -zlib.MAX_WBITS)
            return self._read(data)
        except NotDicom as exc:
            self.problem = str(exc)
        except Exception as exc:  # noqa: BLE001 - a malformed identifier is skipped
            self.problem = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
        return None


def pure_decoder(implicit: bool, little: bool, deflated: bool) -> Decoder:
    """The pure path's decoder: pydicom's ``read_dataset``, after the
    strict look-over."""
    from pydicom.filereader import read_dataset

    def read(data: bytes) -> Any:
        check_structure(data, implicit, little, ordered=False)
        return read_dataset(BytesIO(data), implicit, little)

    return Decoder(read, deflated)


def decoder(transfer_syntax: Any) -> Decoder:
    """The :class:`Decoder` for identifiers in ``transfer_syntax``.

    On the fast path, what pydicom's ``read_dataset`` does, less its
    per-call overhead (40% of its time for a small identifier): the
    elements stay raw (pydicom converts each on first access; the writers
    format them as they are), a plain identifier is split by
    :func:`~dimsekit._internals.datasets.element_splitter`, and the
    Specific Character Set's encodings are looked up once per distinct
    value.  A malformed identifier gives None.
    """
    from pydicom.charset import convert_encodings, default_encoding
    from pydicom.dataelem import convert_raw_data_element
    from pydicom.filereader import data_element_generator

    from dimsekit._internals import fast_path

    implicit, little = transfer_syntax.is_implicit_VR, transfer_syntax.is_little_endian
    deflated = transfer_syntax.is_deflated
    if not fast_path():
        return pure_decoder(implicit, little, deflated)
    from dimsekit._internals.datasets import dataset_maker, element_splitter

    split = element_splitter(implicit, sequences=True) if little else None
    make = dataset_maker(implicit, little)
    encodings: dict[Any, Any] = {None: default_encoding}

    def read(data: bytes) -> Any:
        elements = split(data) if split is not None else None
        if elements is None:  # pydicom's to read, leniently: look it over first
            check_structure(data, implicit, little, ordered=False)
            elements = {elem.tag: elem for elem in
                        data_element_generator(BytesIO(data), implicit, little)}
        charset = elements.get(SPECIFIC_CHARACTER_SET)
        key = None if charset is None else charset.value
        encoding = encodings.get(key)
        if encoding is None:
            value = convert_raw_data_element(charset).value  # type: ignore[arg-type]
            encoding = encodings[key] = convert_encodings(value)
        return make(elements, encoding)

    return Decoder(read, deflated)


def sequence_item_splitter(implicit: bool) -> Any:
    """``items(value) -> [ {tag: raw element} ... ] | None``: a raw
    sequence value split into its items' raw elements without pydicom
    parsing it (the fast path: :mod:`dimsekit._internals`), None for what
    only pydicom reads; or None on the pure path (``DIMSEKIT_PURE=1``),
    where every sequence is pydicom's.  For writers that format sequences
    from their bytes (find's dump)."""
    from dimsekit._internals import fast_path

    if not fast_path():
        return None
    from dimsekit._internals.datasets import item_splitter

    return item_splitter(implicit)


def encode_identifier(ds: Any, transfer_syntax: Any) -> bytes:
    """A request's identifier (a pydicom Dataset) encoded in
    ``transfer_syntax`` (a pydicom UID, e.g. the accepted context's: see
    :func:`~dimsekit.association.accepted_context`), as pynetdicom encodes
    it.  Raises UsageError when it cannot be encoded."""
    from pydicom.uid import UID
    from pynetdicom.dsutils import encode

    from dimsekit.errors import UsageError

    ts = UID(str(transfer_syntax))
    data = encode(ds, ts.is_implicit_VR, ts.is_little_endian, ts.is_deflated)
    if data is None:
        raise UsageError(f"cannot encode the identifier in {ts.name}")
    return bytes(data)


def original_encoding_reader() -> Any:
    """``read(ds) -> (is_implicit_VR, is_little_endian)``: pydicom's
    ``ds.original_encoding`` for a decoded identifier; on the fast path
    without the property's cost (~0.4 us: see :mod:`dimsekit._internals`).
    For writers that format from the encoding (find's dump)."""
    from dimsekit._internals import fast_path

    if fast_path():
        from dimsekit._internals.datasets import original_encoding

        return original_encoding
    return lambda ds: getattr(ds, "original_encoding", (None, None))
