"""Query preparation before the network: query files read strictly,
post-1993 VRs downgraded (-u), a Specific Character Set chosen, and the
identifier checked to be encodable.  Everything here fails with a usage
error (exit 2) naming the file or key."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from typing import Any

from dimsekit.errors import UsageError
from dimsekit.qr.strict import (
    MAX_DEPTH,
    NotDicom,
    _tag_text,
    check_structure,
)

log = logging.getLogger("dimsekit.find")


#: the largest query file read (a real identifier is a few hundred bytes)
MAX_QUERY_FILE_BYTES = 16 * 1024 * 1024
#: the most data elements (items included) a query file may hold
MAX_FILE_ELEMENTS = 20_000
#: the most sequence items a query file may hold
MAX_FILE_ITEMS = 10_000

def read_query_file(path: str):
    """A query file as a dataset (its File Meta dropped); exit 2 if unusable.

    Only DICOM is accepted: a Part-10 file (preamble + ``DICM``) or a bare
    data set (DCMTK ``dump2dcm -F``), each of which must parse completely and
    strictly -- every element and item inside its container and the file,
    known VRs, tags in ascending order, no trailing bytes, sequences nested
    at most :data:`MAX_DEPTH` levels, binary values of a whole number of
    values and IS/DS values that are numbers.  pydicom reads what it can of
    anything (that is its job); the structure is therefore checked here
    first, without recursion and with bounded work, and pydicom then parses
    only what passed.
    """
    if not os.path.exists(path):
        raise UsageError(f"cannot read query file {path!r}: no such file")
    if not os.path.isfile(path):
        raise UsageError(f"cannot read query file {path!r}: not a regular file")
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_QUERY_FILE_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"cannot read query file {path!r}: {exc.strerror or exc}") from None
    if len(data) > MAX_QUERY_FILE_BYTES:
        raise UsageError(f"cannot read query file {path!r}: larger than "
                         f"{MAX_QUERY_FILE_BYTES // (1024 * 1024)} MiB")
    try:
        ds = _parse_strictly(data)
    except NotDicom as exc:
        raise UsageError(f"cannot read query file {path!r}: not a DICOM file ({exc})") from None
    if len(ds) == 0:
        raise UsageError(f"query file {path!r} holds no DICOM elements")
    return ds


def _parse_strictly(data: bytes):
    """The data set in ``data`` (File Meta dropped), or NotDicom."""
    import io

    from pydicom import dcmread

    if not data:
        raise NotDicom("empty file")
    part10 = len(data) >= 132 and data[128:132] == b"DICM"
    start = 132 if part10 else 0
    start, syntax = _scan_file_meta(data, start)
    body = memoryview(data)[start:]
    implicit, little, deflated = _encoding(syntax, body)
    if deflated:
        body = memoryview(_inflate(body))
    bare = not part10 and start == 0
    check_structure(body, implicit, little, bare=bare, max_elements=MAX_FILE_ELEMENTS,
                    max_items=MAX_FILE_ITEMS)
    try:
        ds = dcmread(io.BytesIO(data), force=True)
    except Exception as exc:  # noqa: BLE001 - whatever pydicom finds wrong
        raise NotDicom(_one_line(exc)) from None
    if len(body) and tuple(ds.original_encoding[:2]) != (implicit, little):
        raise NotDicom("ambiguous encoding")
    _check_values(ds)
    return ds


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0][:200] if text else "") or type(exc).__name__


def _encoding(syntax: str | None, body) -> tuple[bool, bool, bool]:
    """(implicit VR, little endian, deflated) of the data set."""
    if syntax is None:  # a bare data set: pydicom's guess, which is then checked
        from pydicom.valuerep import STANDARD_VR

        if len(body) < 6:
            raise NotDicom(f"{len(body)} bytes, too short for a data element")
        group = int.from_bytes(body[0:2], "little")
        explicit = bytes(body[4:6]).decode("latin-1") in STANDARD_VR
        return not explicit, not (explicit and group >= 1024), False
    from pydicom.uid import UID

    uid = UID(syntax)
    try:
        return uid.is_implicit_VR, uid.is_little_endian, uid.is_deflated
    except ValueError:
        raise NotDicom(f"unknown Transfer Syntax UID {_clip(syntax)!r}") from None


def _inflate(body) -> bytes:
    import zlib

    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, MAX_QUERY_FILE_BYTES + 1)
    except zlib.error as exc:
        raise NotDicom(f"deflated data set: {exc}") from None
    if len(out) > MAX_QUERY_FILE_BYTES:
        raise NotDicom(f"deflated data set larger than "
                        f"{MAX_QUERY_FILE_BYTES // (1024 * 1024)} MiB")
    # a NUL pad byte (PS3.5 A.5), or a gzip-style CRC + size, may follow
    if not inflater.eof or len(inflater.unused_data) > 8:
        raise NotDicom("deflated data set is truncated or followed by other bytes")
    return out


def _clip(text: str, size: int = 64) -> str:
    return text if len(text) <= size else f"{text[:size - 3]}..."


def _scan_file_meta(data: bytes, pos: int) -> tuple[int, str | None]:
    """Where the File Meta group (explicit VR little endian, if any) ends,
    and its Transfer Syntax UID."""
    from pydicom.valuerep import EXPLICIT_VR_LENGTH_32, STANDARD_VR

    syntax = None
    last = -1
    count = 0
    while len(data) - pos >= 8 and int.from_bytes(data[pos:pos + 2], "little") == 2:
        count += 1
        if count > MAX_FILE_ELEMENTS:
            raise NotDicom(f"more than {MAX_FILE_ELEMENTS} File Meta elements")
        tag = int.from_bytes(data[pos:pos + 2], "little") << 16 \
            | int.from_bytes(data[pos + 2:pos + 4], "little")
        vr = data[pos + 4:pos + 6].decode("latin-1")
        if vr not in STANDARD_VR or vr == "SQ":
            raise NotDicom(f"File Meta element {_tag_text(tag)} has a bad VR {vr!r}")
        if tag <= last:
            raise NotDicom(f"File Meta element {_tag_text(tag)} out of order")
        last = tag
        if vr in EXPLICIT_VR_LENGTH_32:
            if len(data) - pos < 12:
                raise NotDicom("truncated File Meta")
            length, pos = int.from_bytes(data[pos + 8:pos + 12], "little"), pos + 12
        else:
            length, pos = int.from_bytes(data[pos + 6:pos + 8], "little"), pos + 8
        if length > len(data) - pos:
            raise NotDicom(f"truncated File Meta element {_tag_text(tag)}")
        if tag == 0x00020010:
            raw = data[pos:pos + length].rstrip(b"\0 ")
            try:
                syntax = raw.decode("ascii")
            except UnicodeDecodeError:
                raise NotDicom("bad Transfer Syntax UID") from None
        pos += length
    return pos, syntax


def _check_values(ds) -> None:
    """Convert every value now (not halfway through the run), without
    recursion; that IS/DS values are numbers, check_structure saw already.
    (pydicom's warnings about odd values go where the caller sends
    warnings: the CLI shows them at -d.)"""
    stack = [ds]
    while stack:
        current = stack.pop()
        for tag in list(current.keys()):
            try:
                elem = current[tag]
            except Exception as exc:  # noqa: BLE001 - any conversion failure
                raise NotDicom(f"{_tag_text(tag)}: {_one_line(exc)}") from None
            if elem.VR == "SQ":
                stack.extend(elem.value)


def _elements(ds):
    """Every element of ``ds`` and of its sequence items, depth first, in
    order -- like ``Dataset.iterall`` but without recursion."""
    from itertools import chain

    stack = [iter(ds)]
    while stack:
        elem = next(stack[-1], None)
        if elem is None:
            stack.pop()
            continue
        yield elem
        if elem.VR == "SQ" and elem.value:
            stack.append(chain.from_iterable(elem.value))


def _depth(ds) -> int:
    """How deep sequences nest in ``ds`` (0: none), without recursion."""
    deepest = 0
    stack = [(ds, 0)]
    while stack:
        current, level = stack.pop()
        deepest = max(deepest, level)
        for elem in current:
            if elem.VR == "SQ":
                stack.extend((item, level + 1) for item in elem.value)
    return deepest


NEW_VRS = {"UN", "UT", "UC", "UR", "OV", "SV", "UV", "OD", "OL"}


def downgrade_new_vrs(ds) -> None:
    """``-u``: send post-1993 VRs as OB (DCMTK's --disable-new-vr)."""
    for elem in _elements(ds):
        if elem.VR in NEW_VRS:
            value = elem.value
            if isinstance(value, str):
                value = value.encode("ascii", "replace")
            elif not isinstance(value, (bytes, bytearray)):
                value = str(value).encode("ascii", "replace")
            elem.VR = "OB"
            elem.value = value


def check_encodable(label: str, ds) -> None:
    """Encode every value once (explicit VR little endian) so that a value
    that cannot be sent is a usage error naming it, before the network.

    Element by element and without recursion: pydicom's ``write_dataset``
    recurses once per sequence level and re-wraps an error at every level
    (the message doubles each time), so it is never run here; the nesting is
    bounded (MAX_DEPTH) before pydicom's own (recursive) VR correction."""
    from pydicom.charset import default_encoding
    from pydicom.dataset import Dataset
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import correct_ambiguous_vr, write_data_element

    depth = _depth(ds)
    if depth > MAX_DEPTH:
        raise UsageError(f"query {label}: sequences nested {depth} levels deep "
                         f"(at most {MAX_DEPTH})")
    try:
        correct_ambiguous_vr(ds, True)
    except Exception as exc:  # noqa: BLE001
        raise UsageError(f"query {label}: cannot encode the identifier: "
                         f"{_one_line(exc)}") from None
    stack = [(ds, default_encoding)]
    while stack:
        current, parent = stack.pop()
        encodings = current.get("SpecificCharacterSet", parent)
        for elem in current:
            if elem.VR == "SQ":
                for item in elem.value or ():
                    if not isinstance(item, Dataset):
                        raise UsageError(f"query {label}: cannot encode "
                                         f"{_elem_name(elem)}: an item is not a data set")
                    stack.append((item, encodings))
                continue
            fp = DicomBytesIO()
            fp.is_little_endian, fp.is_implicit_VR = True, False
            try:
                write_data_element(fp, elem, encodings)
            except Exception as exc:  # noqa: BLE001 - whatever pydicom refuses
                raise UsageError(f"query {label}: cannot encode {_elem_name(elem)}: "
                                 f"{_one_line(exc)}") from None


def _elem_name(elem) -> str:
    return elem.keyword or _tag_text(elem.tag)


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
    return [e for e in _elements(ds)
            if e.VR in TEXT_VRS and any(not t.isascii() for t in _texts(e))]


def choose_charset(label: str, ds, charset: str | None, overrides,
                   non_ascii: Any = None) -> None:
    """Give ``ds`` a Specific Character Set that encodes every value.

    ``--charset`` wins; a query without one that holds non-ASCII text gets
    the smallest standard one: ISO_IR 100 if Latin-1 will do, else ISO_IR 192.
    A value the set cannot encode is a usage error naming its key.
    ``non_ascii(ds)``: finds the text elements that are not ASCII, for
    ``_non_ascii`` (a batch's :meth:`~dimsekit.qr.rows.RowBuilder.non_ascii`).
    """
    from pydicom.charset import convert_encodings, python_encoding

    if charset:
        terms = [t.strip() for t in charset.split("\\")]
        unknown = [t for t in terms if t and t not in python_encoding]
        if unknown:
            raise UsageError(f"--charset: unknown character set {unknown[0]!r} "
                             f"(e.g. ISO_IR 100, ISO_IR 192, ISO 2022 IR 87)")
        ds.SpecificCharacterSet = terms if len(terms) > 1 else terms[0]
    texts = (non_ascii or _non_ascii)(ds)
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
    for elem in texts:
        for value in _texts(elem):
            if not _encodable(str(value), encodings):
                raise UsageError(
                    f"{_key_text(elem, overrides)}: {str(value)!r} cannot be encoded "
                    f"in {ds.SpecificCharacterSet}")


def _encodable(value: str, encodings: list[str]) -> bool:
    """``value`` encodes in ``encodings`` without replacement characters:
    in one of them, or (ISO 2022) in parts, as pydicom's ``encode_string``
    tries, which is asked only then -- it warns where it has to replace --
    and its result read back.  No pydicom setting is touched."""
    from pydicom.charset import decode_bytes, encode_string

    for encoding in encodings:
        try:
            value.encode(encoding)
            return True
        except (UnicodeError, LookupError):
            continue
    if len(encodings) < 2:
        return False
    try:
        return decode_bytes(encode_string(value, encodings), encodings, set()) == value
    except (UnicodeError, ValueError, LookupError):
        return False


def _key_text(elem, overrides) -> str:
    for key in overrides:
        if key.path and key.path[-1][0] == elem.tag:
            return f"-k {key.text!r}"
    return elem.keyword or str(elem.tag)


def finish_query(label: str, ds: Any, overrides: Any, *, models: Mapping[str, Any],
                 model: Any = None, charset: str | None = None,
                 new_vr: bool = True, checked: bool = False,
                 check: Any = None, builder: Any = None) -> Any:
    """The prepared :class:`~dimsekit.qr.find.Query` once the keys are
    applied to ``ds`` -- the steps the find command and the Python API
    share: post-1993 VRs downgraded (``new_vr=False``: ``-u``), a Specific
    Character Set chosen, the model (an InformationModel) given or inferred
    from QueryRetrieveLevel among ``models`` (name -> model), the
    identifier checked to be encodable (unless ``checked``: a batch row
    prepared once already; ``check(label, ds)`` instead of
    :func:`check_encodable`).  ``builder``: the batch's
    :class:`~dimsekit.qr.rows.RowBuilder` that made ``ds``, whose
    shortcuts then check it and find its non-ASCII text at the cost of the
    row's own elements, and encode it (:attr:`~dimsekit.qr.find.Query.encoder`).
    Raises UsageError."""
    from dimsekit.qr.find import Query
    from dimsekit.qr.models import infer_model

    if not new_vr:
        downgrade_new_vrs(ds)
    choose_charset(label, ds, charset, overrides,
                   builder.non_ascii if builder is not None else None)
    if model is None:
        name, why = infer_model(ds.get("QueryRetrieveLevel"))
        if name not in models:  # a retrieve service has no worklist to fall back on
            raise UsageError(f"query {label}: {why}: give -k QueryRetrieveLevel=LEVEL "
                             f"(PATIENT, STUDY, SERIES or IMAGE) or choose a model "
                             f"({', '.join(m.flags[-1] for m in models.values())})")
        model = models[name]
        if not checked and log.isEnabledFor(logging.INFO):
            log.info("query %s: %s (%s)", label, model.help.replace("use ", ""), why)
    if builder is not None:
        check = check or builder.check_encodable
    if not checked:
        (check or check_encodable)(label, ds)
    return Query(label, ds, model, builder.encoder if builder is not None else None)


def prepare_queries(query_files: Iterable[str], keys: Iterable[str] = (), *,
                    models: Iterable[Any], model: str | None = None,
                    level: str | None = None, charset: str | None = None,
                    new_vr: bool = True, adjust: Any = None) -> list[Any]:
    """Every query of a command line, prepared before the network: each
    query file read strictly (:func:`read_query_file`), the ``-k`` keys
    (and ``-L LEVEL``) applied on top, or ``-k`` alone as the one query
    when there is no file; then :func:`finish_query` (``-u``, character
    set, the model named by ``model`` among ``models`` or inferred from
    QueryRetrieveLevel, encodability).  ``adjust(ds)`` may change each
    identifier first (find's ``--columns``).  Returns
    :class:`~dimsekit.qr.find.Query` records; raises UsageError."""
    from pydicom import Dataset

    from dimsekit.keys import apply_keys, parse_keys

    by_name = {m.name: m for m in models}
    if model is not None and model not in by_name:
        raise UsageError(f"unknown information model {model!r}")
    chosen = None if model is None else by_name[model]
    overrides = parse_keys(([f"QueryRetrieveLevel={level.upper()}"] if level else [])
                           + list(keys))
    sources = [(path, read_query_file(path)) for path in query_files]
    if not sources:
        if not overrides:
            raise UsageError("no query: give -k keys and/or query files")
        sources = [("-k", Dataset())]
    queries = []
    for label, ds in sources:
        apply_keys(ds, overrides)
        if adjust is not None:
            adjust(ds)
        queries.append(finish_query(label, ds, overrides, models=by_name, model=chosen,
                                    charset=charset, new_vr=new_vr))
    return queries


def negotiation_for(flags: Iterable[Any], models: Iterable[Any],
                    requested: Iterable[str]) -> tuple[dict[str, bytes], list[str]]:
    """SOP Class Extended Negotiation for the models a command's queries
    use: ``({sop class uid: application information}, warnings)``, given
    the flag records of its service and the flag names the user asked for
    (``--relational-query`` -> ``"relational-query"``).  The warnings name
    each flag that does not apply to a model.  Turn the dict into items
    for :func:`~dimsekit.association.open_association` with
    :func:`~dimsekit.qr.find.negotiation_items`."""
    from dimsekit.qr.models import application_information

    flags = list(flags)
    wanted = set(requested)
    ext_neg: dict[str, bytes] = {}
    warnings: list[str] = []
    for m in {m.name: m for m in models}.values():
        info, skipped = application_information(flags, m.name, wanted)
        warnings += [f"--{name} does not apply to the {m.name} model; not requested"
                     for name in skipped]
        if info:
            ext_neg[m.sop_class_uid] = info
    return ext_neg, warnings
