"""Response identifiers from bytes to pydicom Datasets, per transfer
syntax: on the fast path a splitter for plain identifiers
(:mod:`dimsekit._internals.datasets`), pydicom's reader for the rest and on
the pure path; every identifier pydicom is to read is first looked over
by :func:`~dimsekit.qr.strict.check_structure`."""

from __future__ import annotations

from io import BytesIO
from typing import Any

from dimsekit.qr.strict import NotDicom, check_structure

SPECIFIC_CHARACTER_SET = 0x00080005


def pure_decoder(implicit: bool, little: bool, deflated: bool):
    """The pure path's ``decode``: pydicom's ``read_dataset``, after the
    strict look-over."""
    import zlib

    from pydicom.filereader import read_dataset

    def decode(data: bytes | None):
        decode.problem = None
        if data is None:
            decode.problem = "no identifier"
            return None
        try:
            if deflated:
                data = zlib.decompress(data, -zlib.MAX_WBITS)
            try:
                check_structure(data, implicit, little, ordered=False)
            except NotDicom as exc:
                decode.problem = str(exc)
                return None
            return read_dataset(BytesIO(data), implicit, little)
        except Exception as exc:  # noqa: BLE001 - a malformed identifier is skipped
            decode.problem = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
            return None

    decode.problem = None
    return decode


def decoder(transfer_syntax: Any):
    """``decode(data) -> Dataset | None`` for identifiers in ``transfer_syntax``.

    What pydicom's ``read_dataset`` does, less its per-call overhead (40%
    of its time for a small identifier): the elements stay raw (pydicom
    converts each on first access; the writers format them as they are),
    a plain identifier is split by
    :func:`~dimsekit._internals.datasets.element_splitter`, and the
    Specific Character Set's encodings are looked up once per distinct
    value.  A malformed identifier gives None.
    """
    import zlib

    from pydicom.charset import convert_encodings, default_encoding
    from pydicom.dataelem import convert_raw_data_element
    from pydicom.filereader import data_element_generator

    from dimsekit._internals import fast_path

    implicit, little = transfer_syntax.is_implicit_VR, transfer_syntax.is_little_endian
    deflated = transfer_syntax.is_deflated
    if not fast_path():
        return pure_decoder(implicit, little, deflated)
    from dimsekit._internals.datasets import dataset_maker, element_splitter

    split = element_splitter(implicit) if little else None
    make = dataset_maker(implicit, little)
    encodings: dict[Any, Any] = {None: default_encoding}

    def decode(data: bytes | None):
        decode.problem = None
        if data is None:
            decode.problem = "no identifier"
            return None
        try:
            if deflated:
                data = zlib.decompress(data, -zlib.MAX_WBITS)
            elements = split(data) if split is not None else None
            if elements is None:  # pydicom's to read, leniently: look it over first
                try:
                    check_structure(data, implicit, little, ordered=False)
                except NotDicom as exc:
                    decode.problem = str(exc)
                    return None
                elements = {elem.tag: elem for elem in
                            data_element_generator(BytesIO(data), implicit, little)}
            charset = elements.get(SPECIFIC_CHARACTER_SET)
            key = None if charset is None else charset.value
            encoding = encodings.get(key)
            if encoding is None:
                value = convert_raw_data_element(charset).value
                encoding = encodings[key] = convert_encodings(value)
            return make(elements, encoding)
        except Exception as exc:  # noqa: BLE001 - a malformed identifier is skipped
            decode.problem = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
            return None

    decode.problem = None
    return decode
