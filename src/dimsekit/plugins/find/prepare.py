"""Query preparation before the network: query files read strictly,
post-1993 VRs downgraded (-u), a Specific Character Set chosen, and the
identifier checked to be encodable.  Everything here fails with a usage
error (exit 2) naming the file or key."""

from __future__ import annotations

import os
from typing import Any

from dimsekit.api import UsageError, get_logger

log = get_logger("find")


def read_query_file(path: str):
    """A query file as a dataset (its File Meta dropped); exit 2 if unusable."""
    from pydicom import dcmread
    from pydicom.errors import InvalidDicomError

    from pydicom.datadict import dictionary_has_tag

    if not os.path.isfile(path):
        raise UsageError(f"cannot read query file {path!r}: no such file")
    try:
        try:
            ds = dcmread(path)
            bare = False
        except InvalidDicomError:
            ds = dcmread(path, force=True)  # a bare dataset without preamble
            bare = True
        for elem in ds.iterall():  # parse now, not halfway through the run
            elem.value  # noqa: B018
    except Exception as exc:  # noqa: BLE001 - any parse failure is the file's fault
        raise UsageError(f"cannot read query file {path!r}: {exc}") from None
    if len(ds) == 0:
        raise UsageError(f"query file {path!r} holds no DICOM elements")
    if bare:
        # forced parsing reads anything; a real identifier has known tags
        odd = [t for t in ds.keys() if not t.is_private and not dictionary_has_tag(t)]
        if odd:
            raise UsageError(f"cannot read query file {path!r}: not a DICOM file "
                             f"(unknown tag {odd[0]})")
    return ds


NEW_VRS = {"UN", "UT", "UC", "UR", "OV", "SV", "UV", "OD", "OL"}


def downgrade_new_vrs(ds) -> None:
    """``-u``: send post-1993 VRs as OB (DCMTK's --disable-new-vr)."""
    for elem in ds.iterall():
        if elem.VR in NEW_VRS:
            value = elem.value
            if isinstance(value, str):
                value = value.encode("ascii", "replace")
            elif not isinstance(value, (bytes, bytearray)):
                value = str(value).encode("ascii", "replace")
            elem.VR = "OB"
            elem.value = value


def check_encodable(label: str, ds) -> None:
    from pydicom.filewriter import write_dataset
    from pydicom.filebase import DicomBytesIO

    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, False
    try:
        write_dataset(fp, ds)
    except Exception as exc:  # noqa: BLE001
        raise UsageError(f"query {label}: cannot encode the identifier: {exc}") from None


TEXT_VRS = {"SH", "LO", "ST", "LT", "UC", "UT", "PN"}


def _texts(elem) -> list[str]:
    value = elem.value
    if value is None or isinstance(value, (bytes, bytearray)):
        return []
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return [str(v) for v in value]
    return [str(value)]


def _non_ascii(ds) -> list[Any]:
    """Text elements holding characters outside ASCII."""
    return [e for e in ds.iterall()
            if e.VR in TEXT_VRS and any(not t.isascii() for t in _texts(e))]


def choose_charset(label: str, ds, charset: str | None, overrides) -> None:
    """Give ``ds`` a Specific Character Set that encodes every value.

    ``--charset`` wins; a query without one that holds non-ASCII text gets
    the smallest standard one: ISO_IR 100 if Latin-1 will do, else ISO_IR 192.
    A value the set cannot encode is a usage error naming its key.
    """
    from pydicom import config
    from pydicom.charset import convert_encodings, encode_string, python_encoding

    if charset:
        terms = [t.strip() for t in charset.split("\\")]
        unknown = [t for t in terms if t and t not in python_encoding]
        if unknown:
            raise UsageError(f"--charset: unknown character set {unknown[0]!r} "
                             f"(e.g. ISO_IR 100, ISO_IR 192, ISO 2022 IR 87)")
        ds.SpecificCharacterSet = terms if len(terms) > 1 else terms[0]
    texts = _non_ascii(ds)
    if not texts:
        return
    if "SpecificCharacterSet" not in ds:
        def latin1(text: str) -> bool:
            try:
                text.encode("latin-1")
            except UnicodeEncodeError:
                return False
            return True

        term = ("ISO_IR 100" if all(latin1(t) for e in texts for t in _texts(e))
                else "ISO_IR 192")
        ds.SpecificCharacterSet = term
        log.info("query %s: non-ASCII values: Specific Character Set %s added", label, term)
    encodings = convert_encodings(ds.SpecificCharacterSet)
    saved = config.settings.writing_validation_mode
    config.settings.writing_validation_mode = config.RAISE
    try:
        for elem in texts:
            for value in _texts(elem):
                try:
                    encode_string(value, encodings)
                except (UnicodeError, ValueError):
                    raise UsageError(
                        f"{_key_text(elem, overrides)}: {str(value)!r} cannot be encoded "
                        f"in {ds.SpecificCharacterSet}") from None
    finally:
        config.settings.writing_validation_mode = saved


def _key_text(elem, overrides) -> str:
    for key in overrides:
        if key.path and key.path[-1][0] == elem.tag:
            return f"-k {key.text!r}"
    return elem.keyword or str(elem.tag)
