"""The fast paths of issue 12 give what the libraries themselves give.

* requests encoded by ``dimsekit._internals.exchange.encode_request`` are
  byte for byte the P-DATA-TF PDUs pynetdicom's ``send_msg`` sends;
* sequence items split by ``dimsekit._internals.datasets.item_splitter``
  are the raw elements pydicom's sequence reader gives, and ``dump``
  formats a sequence from them as it formats pydicom's parse;
* ``dimsekit._internals.datasets.original_encoding`` is pydicom's
  ``Dataset.original_encoding``;
* ``dimsekit.cli.host.entry_points`` lists what
  ``importlib.metadata.entry_points`` lists;
* a batch row's identifier encoded by
  ``dimsekit._internals.encoding.TemplateEncoder`` (the template's
  elements once, the row's own spliced in) is byte for byte what
  pynetdicom's ``encode`` makes of the whole dataset; the row's keys set
  by ``dimsekit.keys.PlainKeys``, its dataset made by
  ``plain_dataset_maker`` and its non-ASCII text found by
  ``RowBuilder.non_ascii`` are what ``apply_keys``, ``Dataset()`` and
  ``_non_ascii`` give.
"""

from __future__ import annotations

import contextlib
import random
import sys
from io import BytesIO

import pytest
from identifiers import CHARSETS, TAGS, VRS, element, encode, identifier, item, mangle
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from dimsekit._internals.datasets import item_splitter, sequence_checker
from dimsekit._internals.exchange import encode_find, encode_request
from dimsekit.cli import host as host_mod
from dimsekit.plugins.find import dump
from dimsekit.qr.decode import decoder
from dimsekit.qr.strict import NotDicom, check_structure

pytestmark = pytest.mark.filterwarnings("ignore:Unknown encoding:UserWarning")


# -- requests ------------------------------------------------------------------------


def pynetdicom_pdus(primitive, context_id: int, max_pdu: int) -> bytes:
    """What ``DIMSEServiceProvider.send_msg`` hands the DUL, as encoded PDUs."""
    from pynetdicom.dimse_messages import C_CANCEL_RQ, C_FIND_RQ
    from pynetdicom.pdu import P_DATA_TF

    message = (C_CANCEL_RQ if type(primitive).__name__ == "C_CANCEL" else C_FIND_RQ)()
    message.primitive_to_message(primitive)
    out = b""
    for p_data in message.encode_msg(context_id, max_pdu):
        pdu = P_DATA_TF()
        pdu.from_primitive(p_data)
        out += pdu.encode()
    return out


UIDS = ["1.2.840.10008.5.1.4.31", "1.2.840.10008.5.1.4.1.2.2.1",
        "1.2.840.10008.5.1.4.1.2.1.1", "1.2.3", "1.2.34"]


def test_find_requests_are_encoded_as_pynetdicom_encodes_them():
    from pynetdicom.dimse_primitives import C_FIND

    rng = random.Random(12)
    for n in range(400):
        primitive = C_FIND()
        primitive.MessageID = rng.choice([1, 2, 255, 256, 65535, rng.randrange(65536)])
        primitive.AffectedSOPClassUID = rng.choice(UIDS)
        primitive.Priority = rng.choice([0, 1, 2])
        size = rng.choice([1, 2, 17, 100, 1000, 5000])
        primitive.Identifier = BytesIO(bytes(rng.randrange(256) for _ in range(size)))
        context_id = rng.choice([1, 3, 127, 255])
        max_pdu = rng.choice([0, 8, 9, 20, 64, 97, 1000, 16382, 1 << 20])
        ours = encode_request(primitive, context_id, max_pdu)
        assert ours == pynetdicom_pdus(primitive, context_id, max_pdu), n
        # the same request written from its values, without the primitive
        assert encode_find(str(primitive.AffectedSOPClassUID), primitive.MessageID,
                           primitive.Priority, primitive.Identifier.getvalue(), context_id,
                           max_pdu) == ours, n


def test_find_requests_are_sent_without_a_primitive_once_the_uid_passed():
    from dimsekit.qr.find import FindRun, Query
    from dimsekit.qr.models import MODELS

    class Recorder:
        def __init__(self):
            self.sent = []

        def send(self, primitive, context_id):
            self.sent.append(encode_request(primitive, context_id, 16382))

        def send_find(self, msg_id, uid, priority, identifier, context_id):
            self.sent.append(encode_find(uid, msg_id, priority, identifier, context_id,
                                         16382))
            return True

    exchange = Recorder()
    run = FindRun(None, exchange)
    query = Query("q", None, MODELS[0])
    for msg_id in (1, 2, 3):
        run.msg_id = msg_id
        run._send(query, b"\x10\x00\x20\x00\x00\x00\x00\x00", 3)
    assert run._uids == {MODELS[0].sop_class_uid: MODELS[0].sop_class_uid}
    # the first request through pynetdicom's primitive, the others not: the same bytes
    from pynetdicom.dimse_primitives import C_FIND

    for msg_id, sent in zip((1, 2, 3), exchange.sent, strict=True):
        primitive = C_FIND()
        primitive.MessageID = msg_id
        primitive.AffectedSOPClassUID = MODELS[0].sop_class_uid
        primitive.Priority = 2
        primitive.Identifier = BytesIO(b"\x10\x00\x20\x00\x00\x00\x00\x00")
        assert sent == pynetdicom_pdus(primitive, 3, 16382)
    # an exchange without send_find (the pure one): the primitive every time
    del Recorder.send_find
    exchange.sent.clear()
    run._send(query, b"\x10\x00\x20\x00\x00\x00\x00\x00", 3)
    assert len(exchange.sent) == 1


def test_cancel_requests_are_encoded_as_pynetdicom_encodes_them():
    from pynetdicom.dimse_primitives import C_CANCEL

    for msg_id in (1, 7, 300, 65535):
        for max_pdu in (0, 8, 13, 16382):
            primitive = C_CANCEL()
            primitive.MessageIDBeingRespondedTo = msg_id
            assert encode_request(primitive, 5, max_pdu) == pynetdicom_pdus(primitive, 5,
                                                                            max_pdu)


def test_what_the_encoder_does_not_take_is_left_to_pynetdicom():
    from pynetdicom.dimse_primitives import C_ECHO, C_FIND

    echo = C_ECHO()
    echo.MessageID = 1
    echo.AffectedSOPClassUID = "1.2.840.10008.1.1"
    assert encode_request(echo, 1, 16382) is None
    empty = C_FIND()
    empty.MessageID = 1
    empty.AffectedSOPClassUID = UIDS[0]
    empty.Identifier = BytesIO(b"")
    assert encode_request(empty, 1, 16382) is None
    empty.Identifier = BytesIO(b"\x08\x00\x52\x00\x00\x00\x00\x00")
    assert encode_request(empty, 1, 7) is None  # pynetdicom's own error


# -- batch identifiers ----------------------------------------------------------------

#: a batch's common -k keys: a worklist sequence, a character set, a private
#: element, an ambiguous VR (US or SS), multiple values, numbers
COMMON_KEYS = ["PatientName=", "StudyDate=", "AccessionNumber=",
               "ScheduledProcedureStepSequence[0].Modality=",
               "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate=20240101",
               "SpecificCharacterSet=ISO_IR 100", "OtherPatientIDs=A\\B", "PatientWeight=70",
               "(0009,0010)=ACME", "(0009,1001)=x", "SmallestImagePixelValue=1",
               "QueryRetrieveLevel=STUDY", "NumberOfStudyRelatedInstances="]
#: a batch file's columns and their cells (one a VR refuses makes no row)
ROW_KEYS = {
    "PatientID": ["", "WP000001", "\u00c41", "a\\b"],
    "PatientName": ["", "DOE^JOHN", "M\u00fcller^J\u00f6rg", "\u5c71\u7530^\u592a\u90ce"],
    "AccessionNumber": ["", "A1"],
    "StudyDate": ["20240101", "20240101-20240131"],
    "PatientWeight": ["72.5", "1e3"],
    "NumberOfStudyRelatedInstances": ["12"],
    "StudyInstanceUID": ["1.2.3.4"],
    "Modality": ["CT"],
    "SpecificCharacterSet": ["", "ISO_IR 192", "ISO_IR 100"],
    "ScheduledProcedureStepSequence": [""],
    "ScheduledProcedureStepSequence[0].Modality": ["MR"],
    "(0009,0010)": ["ACME"],
    "(0009,1001)": ["y"],
    "SmallestImagePixelValue": ["3"],
    "PixelRepresentation": ["1"],
}
SYNTAXES = [(True, True), (False, True), (False, False)]  # (implicit, little)


def _converted(data: bytes, implicit: bool):
    """A random identifier as ``read_query_file`` leaves a query file:
    every element converted, in the items too (None: pydicom refuses it)."""
    from pydicom.filereader import read_dataset

    try:
        ds = read_dataset(BytesIO(data), implicit, True)
        stack = [ds]
        while stack:
            current = stack.pop()
            for elem in current:
                if elem.VR == "SQ":
                    stack.extend(elem.value)
    except Exception:  # noqa: BLE001 - what pydicom cannot read is no template
        return None
    return ds


def _batch_rows(rng: random.Random, count: int):
    from dimsekit.errors import UsageError
    from dimsekit.keys import parse_key
    from dimsekit.qr.rows import Row

    rows = []
    for number in range(1, count + 1):
        if rng.random() < 0.15:  # an NDJSON row: a dataset of its own elements
            implicit = rng.random() < 0.5
            ds = _converted(identifier(rng, implicit, sequences=True), implicit)
            if ds is not None:
                rows.append(Row(number, f"row {number}", dataset=ds))
            continue
        keys = []
        for column in rng.sample(sorted(ROW_KEYS), rng.choice([1, 1, 1, 2, 3])):
            value = rng.choice(ROW_KEYS[column])
            with contextlib.suppress(UsageError):  # a cell the VR refuses
                keys.append(parse_key(f"{column}={value}" if value else column))
        if keys:
            rows.append(Row(number, f"row {number}", keys=keys))
    return rows


@pytest.mark.filterwarnings("ignore")
def test_batch_identifiers_are_encoded_as_pynetdicom_encodes_them():
    import logging

    from pynetdicom.dsutils import encode as whole

    from dimsekit.errors import UsageError
    from dimsekit.keys import parse_keys
    from dimsekit.qr.models import MODELS
    from dimsekit.qr.query import finish_query
    from dimsekit.qr.rows import RowBuilder

    logging.getLogger("pynetdicom").disabled = True  # it logs what pydicom refuses
    models = {m.name: m for m in MODELS}
    rng = random.Random(1213)
    spliced = whole_only = 0
    try:
        for batch in range(150):
            base = None
            if rng.random() < 0.3:
                implicit = rng.random() < 0.5
                base = _converted(identifier(rng, implicit, sequences=True), implicit)
            common = parse_keys(rng.sample(COMMON_KEYS, rng.randint(0, 6)))
            charset = rng.choice([None, None, "ISO_IR 192", "ISO 2022 IR 6\\ISO 2022 IR 87"])
            try:
                builder = RowBuilder(base, common)
            except UsageError:
                continue
            assert builder.encoder is not None
            for row in _batch_rows(rng, 30):
                try:
                    ds, applied = builder.identifier(row)
                    query = finish_query(row.label, ds, applied, models=models,
                                         model=models["worklist"], charset=charset,
                                         builder=builder)
                except UsageError:
                    continue
                assert query.encoder is builder.encoder
                for implicit, little in SYNTAXES:
                    ours = builder.encoder.encode(ds, implicit, little)
                    theirs = whole(ds, implicit, little)
                    if ours is None:
                        whole_only += 1
                        continue
                    assert ours == theirs, (batch, row.number, implicit, little)
                    spliced += 1
    finally:
        logging.getLogger("pynetdicom").disabled = False
    # most rows are spliced; the unusual ones (ambiguous VRs, a row's
    # sequence, unknown character sets) are left to pynetdicom
    assert spliced > 5000, (spliced, whole_only)
    assert whole_only > 1000, (spliced, whole_only)


def test_batch_identifiers_are_left_to_pynetdicom_when_unusual(monkeypatch):
    from pydicom import Dataset

    from dimsekit.keys import parse_keys
    from dimsekit.qr.rows import Row, RowBuilder

    def spliced(common, row, base=None):
        builder = RowBuilder(base, parse_keys(common))
        if isinstance(row, Dataset):
            ds, _ = builder.identifier(Row(1, "row 1", dataset=row))
        else:
            ds, _ = builder.identifier(Row(1, "row 1", keys=parse_keys(row)))
        return builder.encoder.encode(ds, False, True)

    wl = ["PatientName=", "ScheduledProcedureStepSequence[0].Modality="]
    assert spliced(wl, ["PatientID=X"]) is not None
    # an ambiguous VR (which -k keys never make), in the template or the row
    ambiguous = Dataset()
    ambiguous.add_new(0x00280106, "US or SS", 1)
    assert spliced(wl, ["PatientID=X"], ambiguous) is None
    assert spliced(wl, ambiguous) is None
    # a row's key inside the template's sequence: the row's own copy
    assert spliced(wl, ["ScheduledProcedureStepSequence[0].Modality=CT"]) is None
    # a character set pydicom would warn about
    assert spliced([*wl, "SpecificCharacterSet=NO SUCH SET"], ["PatientID=X"]) is None
    assert spliced([*wl, "SpecificCharacterSet=ISO_IR 192\\ISO_IR 100"],
                   ["PatientID=X"]) is None
    # an item with its own character set
    base = Dataset()
    item = Dataset()
    item.SpecificCharacterSet = "ISO_IR 100"
    base.ScheduledProcedureStepSequence = [item]
    assert spliced([], ["PatientID=X"], base) is None
    # a template element changed in place (choose_charset with --charset
    # does it to a template's own character set): its piece is written again
    from pynetdicom.dsutils import encode as whole

    builder = RowBuilder(None, parse_keys([*wl, "SpecificCharacterSet=ISO_IR 100"]))
    ds, _ = builder.identifier(Row(1, "row 1", keys=parse_keys(["PatientID=X"])))
    assert builder.encoder.encode(ds, True, True) == whole(ds, True, True)
    ds.SpecificCharacterSet = "ISO_IR 192"
    assert builder.template.SpecificCharacterSet == "ISO_IR 192"  # the template's own
    assert builder.encoder.encode(ds, True, True) == whole(ds, True, True)
    # DIMSEKIT_PURE: no encoder at all
    monkeypatch.setenv("DIMSEKIT_PURE", "1")
    assert RowBuilder(None, parse_keys(wl)).encoder is None


@pytest.mark.parametrize("implicit, little", SYNTAXES)
def test_plain_text_elements_are_written_as_pydicom_writes_them(implicit, little):
    from pydicom.dataelem import DataElement
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_data_element
    from pydicom.uid import UID

    from dimsekit._internals.encoding import PLAIN_TEXT_VRS, plain_text_writer

    write = plain_text_writer(implicit, little)
    rng = random.Random(1216)
    vrs = sorted(PLAIN_TEXT_VRS) + ["PN", "IS", "OB", "US"]
    texts = ["", "A", "AB", "1.2.3", "1.2.34", " X ", "a\\b", "WP000001", "\u00c4", "x" * 70001]
    written = 0
    for n in range(3000):
        vr = rng.choice(vrs)
        tag = rng.choice(TAGS.get(vr) or [0x00100020])
        value = rng.choice(texts)
        if vr == "UI" and rng.random() < 0.5:
            value = UID(value)
        elif rng.random() < 0.1:
            value = [value, "B"]
        try:
            elem = DataElement(tag, vr, value)
        except Exception:  # noqa: BLE001 - a value the VR does not take
            continue
        ours = write(elem)
        if ours is None:
            continue
        for encodings in ("iso8859", ["latin_1"], ["UTF8"], ["iso8859", "iso2022_jp"]):
            fp = DicomBytesIO()
            fp.is_implicit_VR, fp.is_little_endian = implicit, little
            write_data_element(fp, elem, encodings)
            assert ours == fp.getvalue(), (n, vr, value, encodings)
        written += 1
    assert written > 1000, written


@pytest.mark.filterwarnings("ignore")
def test_row_elements_are_added_as_add_new_adds_them(monkeypatch):
    from dimsekit.qr import rows

    rng = random.Random(1217)
    syntax = ExplicitVRLittleEndian
    decode = decoder(syntax)
    added = 0
    for n in range(300):
        data = identifier(rng, False, sequences=rng.random() < 0.3)
        ours, theirs = decode(data), decode(data)
        if ours is None:
            continue
        row = rng.choice([1, 7, 10000, 123456789])
        rows.add_row_element(ours, row)
        # pydicom's own way, as add_row_element does it on the pure path
        with monkeypatch.context() as m:
            m.setenv("DIMSEKIT_PURE", "1")
            rows.add_row_element(theirs, row)
        assert list(ours.keys()) == list(theirs.keys()), n
        for tag in theirs.keys():  # noqa: SIM118 - tags, not elements
            a, b = ours.get_item(tag), theirs.get_item(tag)
            if tag >> 16 == 0x0009 and not isinstance(a, tuple):  # (a raw one: the peer's)
                assert vars(a) == vars(b), (n, tag)
                added += 1
            else:
                assert a is not None and type(a) is type(b), (n, tag)
    assert added > 300, added


def _elements_of(ds) -> list:
    """Everything about each element that encoding or a message could see."""
    return [(int(e.tag), e.VR, repr(e.value), type(e.value).__name__, e.validation_mode,
             getattr(e, "private_creator", None)) for e in ds]


@pytest.mark.filterwarnings("ignore")
def test_plain_keys_are_applied_as_apply_keys_applies_them():
    from pydicom import Dataset

    from dimsekit.errors import UsageError
    from dimsekit.keys import KeyOverride, PlainKeys, apply_keys, parse_key, parse_keys

    rng = random.Random(1214)
    columns = [*ROW_KEYS, "PatientAge", "PatientSize", "StudyTime", "PixelData",
               "ReferencedFrameNumber", "(0010,1001)", "SamplesPerPixel",
               "SelectorATValue", "SelectorOBValue", "(0009,1002)"]
    values = ["", "1", "-2", "70000", "1.5", "abc", "A\\B", "M\u00fcller", "0A0B", "(0010,0010)",
              "PatientName", "20240101", "120000", None]
    applier = PlainKeys()
    plain = errors = 0
    for n in range(3000):
        keys = []
        for column in rng.sample(columns, rng.choice([1, 1, 2, 3])):
            value = rng.choice(values)
            # made by hand: a value the VR refuses is refused when applied
            keys.append(KeyOverride(column if value is None else f"{column}={value}",
                                    parse_key(column).path, value))
        texts = [k.text for k in keys]
        template = Dataset()
        apply_keys(template, parse_keys(rng.sample(COMMON_KEYS, rng.randint(0, 4))))
        base = {elem.tag: elem for elem in template}
        elements = dict(base)
        try:
            applied = applier.apply(elements, keys)
        except UsageError as exc:
            with pytest.raises(UsageError) as theirs:
                apply_keys(Dataset(dict(base)), keys)
            assert exc.message == theirs.value.message, (n, texts)
            errors += 1
            continue
        if not applied:
            assert elements == base  # nothing applied
            continue
        plain += 1
        expected = apply_keys(Dataset(dict(base)), keys)
        assert _elements_of(Dataset(elements)) == _elements_of(expected), (n, texts)
    assert plain > 800, (plain, errors)
    assert errors > 300, (plain, errors)


def test_plain_datasets_are_made_as_pydicom_makes_them(monkeypatch):
    from pydicom import Dataset
    from pydicom.dataelem import DataElement

    from dimsekit._internals.datasets import plain_dataset_maker

    make = plain_dataset_maker()
    assert make is not Dataset  # the fast path is in use
    elements = {elem.tag: elem for elem in (DataElement(0x00100020, "LO", "X"),
                                            DataElement(0x00100010, "PN", ""))}
    made, built = make(elements), Dataset(elements)
    assert type(made) is Dataset and vars(made) == vars(built)
    assert made._dict is elements
    # each dataset its own mutable attributes
    other = make({})
    for name, value in vars(made).items():
        if isinstance(value, (dict, list, set)) and name != "_dict":
            assert value is not vars(other)[name], name
    monkeypatch.setenv("DIMSEKIT_PURE", "1")
    assert plain_dataset_maker() is Dataset


@pytest.mark.filterwarnings("ignore")
def test_row_non_ascii_text_is_what_non_ascii_finds():
    from dimsekit.errors import UsageError
    from dimsekit.keys import parse_keys
    from dimsekit.qr.query import _non_ascii
    from dimsekit.qr.rows import RowBuilder

    rng = random.Random(1215)
    fast = 0
    for _ in range(60):
        base = None
        if rng.random() < 0.5:
            implicit = rng.random() < 0.5
            base = _converted(identifier(rng, implicit, sequences=True), implicit)
        try:
            builder = RowBuilder(base, parse_keys(rng.sample(COMMON_KEYS, rng.randint(0, 6))))
        except UsageError:
            continue
        for row in _batch_rows(rng, 30):
            try:
                ds, _ = builder.identifier(row)
            except UsageError:
                continue
            ours = builder.non_ascii(ds)
            assert ours == _non_ascii(ds)
            fast += builder._ascii and not ours
    assert fast > 600, fast


# -- sequence items -------------------------------------------------------------------


def pydicom_items(ds, tag):
    """The raw elements of each item pydicom's reader makes of ``tag``."""
    return [_placeless(item_ds._dict) for item_ds in ds[tag].value]


def _placeless(elements: dict) -> dict:
    """Raw elements without ``value_tell`` (where in the stream a value
    was: pydicom counts from the start of the identifier, the splitter from
    the start of the item; nothing reads it)."""
    return {tag: elem._replace(value_tell=0) for tag, elem in elements.items()}


@pytest.mark.parametrize("implicit", [False, True], ids=["explicit", "implicit"])
def test_items_split_as_pydicom_reads_them(implicit):
    rng = random.Random(1212)
    syntax = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
    decode = decoder(syntax)
    split = item_splitter(implicit)
    taken = 0
    for n in range(2000):
        data = identifier(rng, implicit, sequences=True)
        if n % 5 == 0:
            data = mangle(rng, data)
        ds = decode(data)
        if ds is None:
            continue
        for tag, elem in list(ds._dict.items()):
            if type(elem).__name__ != "RawDataElement" or elem.length == 0xFFFFFFFF:
                continue
            if not (elem.VR == "SQ" or (implicit and tag in dump._TAG_CACHE
                                        and dump._TAG_CACHE[tag][2] == "SQ")
                    or (implicit and elem.VR is None and _dictionary_vr(tag) == "SQ")):
                continue
            ours = split(elem.value)
            copy = decode(data)
            if ours is None:
                continue
            taken += 1
            assert [_placeless(elements) for elements in ours] == pydicom_items(copy, tag), data
    assert taken > 100


def _dictionary_vr(tag: int) -> str | None:
    from pydicom.datadict import DicomDictionary

    entry = DicomDictionary.get(tag)
    return entry[0] if entry else None


def test_undefined_length_items_are_left_to_pydicom():
    body = encode([(0x00080060, "CS", b"MR")], False, True)
    assert item_splitter(False)(item(body, undefined=False)) is not None
    assert item_splitter(False)(item(body, undefined=True)) is None
    assert item_splitter(False)(b"\xfe\xff\x00\xe0\x10\x00\x00\x00") is None  # past the end


def _hazardous_item_body(rng: random.Random) -> bytes:
    """An item's elements, now and then with what the strict check refuses
    and the splitter might take: a refused group, a repeated tag, a nested
    sequence, a bad VR, an odd binary length."""
    codec = CHARSETS[rng.choice(list(CHARSETS))]
    elements = []
    for vr in rng.sample(VRS, rng.randint(0, 6)):
        if len(vr) == 2 and vr not in ("OB", "OW", "ox"):
            elements.append((rng.choice(TAGS[vr]), vr, element(rng, vr, codec)))
    hazard = rng.random()
    if hazard < 0.1:
        elements.append((rng.choice([0x00000010, 0x00020010, 0x00031010, 0x00071000,
                                     0xFFFF0010]), "LO", b"AB"))
    body = encode(elements, False, True)
    if 0.1 <= hazard < 0.2 and elements:  # the first element again, right after it
        first = encode(elements[:1], False, True)
        body = first + first + body[len(first):] if body.startswith(first) else body + body
    if 0.2 <= hazard < 0.3:
        inner = item(encode([(0x00080060, "CS", b"MR")], False, True), rng.random() < 0.5)
        body += encode([(0x00400100, "SQ", inner)], False, True)
    if 0.3 <= hazard < 0.35:
        body += b"\x10\x00\x10\x00QQ\x02\x00ab"
    if 0.35 <= hazard < 0.4:
        body += encode([(0x00280010, "US", b"\x01\x02\x03")], False, True)[:-1]
    return body


def test_the_quick_sequence_check_passes_only_what_the_strict_check_passes():
    rng = random.Random(2024)
    check = sequence_checker(False)
    passed = refused = 0
    for n in range(6000):
        value = b"".join(item(_hazardous_item_body(rng), rng.random() < 0.1)
                         for _ in range(rng.randint(0, 3)))
        if n % 4 == 0 and value:
            value = mangle(rng, value)
        if not value:
            continue
        try:
            check_structure(value, False, True, ordered=False, sequence=True)
            strict = True
        except NotDicom:
            strict = False
        quick = check(value)
        if quick is not None:
            assert strict, value
            passed += 1
            assert quick == item_splitter(False)(bytes(value))
        refused += not strict
    assert passed > 500 and refused > 500
    assert sequence_checker(True)(b"\xfe\xff\x00\xe0\x00\x00\x00\x00") is None


@pytest.fixture
def pydicom_sequences(monkeypatch):
    """dump with every sequence parsed by pydicom (the pure path's way)."""

    def use_pydicom():
        dump._item_splitter.cache_clear()
        monkeypatch.setattr("dimsekit._internals.fast_path", lambda: False)

    yield use_pydicom
    dump._item_splitter.cache_clear()


@pytest.mark.parametrize("implicit", [False, True], ids=["explicit", "implicit"])
def test_dump_of_sequences_is_the_same_from_raw_items(implicit, pydicom_sequences):
    rng = random.Random(4321)
    syntax = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
    decode = decoder(syntax)
    samples = []
    for n in range(1500):
        data = identifier(rng, implicit, sequences=True)
        if n % 7 == 0:
            data = mangle(rng, data)
        ds = decode(data)
        if ds is not None:
            samples.append((data, dump.format_dataset(ds)))
    assert sum("(Sequence with" in text for _, text in samples) > 100
    pydicom_sequences()
    for data, fast in samples:
        assert dump.format_dataset(decode(data)) == fast, data


def test_original_encoding_is_what_pydicom_says():
    """dump reads a dataset's original encoding where pydicom 3.0 keeps it
    (its property costs as much as a few dump lines): the same answer for
    datasets read, made, built and changed, and the property's for
    anything else."""
    from types import SimpleNamespace

    from pydicom.dataset import Dataset
    from pydicom.filereader import read_dataset

    from dimsekit._internals.datasets import original_encoding

    rng = random.Random(77)
    seen = []
    for syntax in (ExplicitVRLittleEndian, ImplicitVRLittleEndian):
        implicit = syntax.is_implicit_VR
        for _ in range(50):
            data = identifier(rng, implicit, sequences=True)
            made = decoder(syntax)(data)
            if made is not None:
                seen.append(made)
                seen.extend(elem.value[0] for elem in made if elem.VR == "SQ" and elem.value)
            seen.append(read_dataset(BytesIO(data), implicit, True))
    changed = Dataset()
    changed.set_original_encoding(False, False, "iso8859")
    seen += [Dataset(), changed]
    assert {original_encoding(ds) for ds in seen} == {(None, None), (False, True),
                                                       (True, True), (False, False)}
    for ds in seen:
        assert original_encoding(ds) == ds.original_encoding
    other = SimpleNamespace(original_encoding=(True, False))
    assert original_encoding(other) == (True, False)
    assert original_encoding(object()) == (None, None)


# -- entry points ---------------------------------------------------------------------


def _metadata_entry_points(group):
    from importlib.metadata import entry_points

    return [(ep.name, ep.value, ep.group, str(ep.dist._path)) for ep in
            entry_points(group=group)]


def _ours(group):
    found = host_mod._read_entry_points(group)
    assert found is not None
    return [(ep.name, ep.value, ep.group, str(ep.dist._path)) for ep in found]


def _dist(root, folder, name, text):
    info = root / folder
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    if text is not None:
        (info / "entry_points.txt").write_text(text)


@pytest.mark.parametrize("group", ["dimsekit", "console_scripts", "pytest11"])
def test_entry_points_are_what_importlib_metadata_lists(group):
    assert _ours(group) == _metadata_entry_points(group)


def test_entry_points_of_odd_distributions(tmp_path, monkeypatch):
    import importlib

    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    _dist(first, "Zeta_Plug-1.0.dist-info", "Zeta_Plug",
          "# a comment\n[console_scripts]\nz = zeta:main\n\n[dimsekit]\n"
          "  zeta  =  zeta.plugin : hooks [extra]\n; not a comment = in 3.11\n")
    _dist(first, "alpha.plug-2.0.dist-info", "alpha.plug", "[dimsekit]\nalpha=alpha_mod\n")
    _dist(first, "alpha_plug-1.0.egg-info", "alpha_plug", "[dimsekit]\nshadowed=x\n")
    _dist(first, "noentries-1.0.dist-info", "noentries", None)
    (first / "old-1.0.egg-info").write_text("Name: old\n")  # a PKG-INFO style file
    _dist(second, "zeta_plug-3.0.dist-info", "zeta_plug", "[dimsekit]\nshadowed=y\n")
    _dist(second, "beta-1.0.dist-info", "beta", "[dimsekit]\nbeta = beta_mod:plugin\n")
    monkeypatch.setattr(sys, "path", [str(first), "", str(tmp_path / "missing"),
                                      str(second), *sys.path])
    monkeypatch.chdir(tmp_path)
    importlib.invalidate_caches()
    for group in ("dimsekit", "console_scripts"):
        assert _ours(group) == _metadata_entry_points(group)
    (beta,) = [ep for ep in host_mod.entry_points("dimsekit") if ep.name == "beta"]
    assert (beta.dist.name, beta.dist.version) == ("beta", "1.0")


def test_entry_points_go_to_importlib_metadata_when_unsure(tmp_path, monkeypatch):
    bad = tmp_path / "bad"
    bad.mkdir()
    _dist(bad, "bad-1.0.dist-info", "bad", "[dimsekit]\nno equals sign\n")
    monkeypatch.setattr(sys, "path", [str(bad), *sys.path])
    assert host_mod._read_entry_points("dimsekit") is None
    zipped = tmp_path / "plugins.zip"
    zipped.write_bytes(b"PK\x05\x06" + bytes(18))
    monkeypatch.setattr(sys, "path", [str(zipped), *sys.path[1:]])
    assert host_mod._read_entry_points("dimsekit") is None
    monkeypatch.setattr(sys, "path", sys.path[1:])

    class Finder:
        @staticmethod
        def find_distributions(context=None):
            return iter(())

    monkeypatch.setattr(sys, "meta_path", [Finder, *sys.meta_path])
    assert host_mod._read_entry_points("dimsekit") is None
    assert [ep.name for ep in host_mod.entry_points("dimsekit")] == [
        name for name, *_ in _metadata_entry_points("dimsekit")]


# -- the request's route over a real association -------------------------------------


@pytest.mark.network
@pytest.mark.parametrize("bound", [False, True], ids=["direct", "sent-handler"])
def test_requests_go_direct_unless_something_watches_what_is_sent(make_scp, bound,
                                                                  monkeypatch):
    """Without a "sent" handler the calling thread writes each C-FIND
    itself; with one bound (a script's), pynetdicom sends it and the handler
    sees it.  The peer answers alike either way, query after query."""
    from pydicom.dataset import Dataset
    from pynetdicom import AE, _config, evt
    from pynetdicom.dimse_primitives import C_FIND
    from pynetdicom.dsutils import encode as encode_dataset
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind as MODEL

    from dimsekit._internals import fast_path
    from dimsekit.dimse import Exchange

    monkeypatch.setattr(_config, "LOG_HANDLER_LEVEL", "none")
    scp = make_scp(repeat_matches=3)
    seen: list[str] = []
    handlers = [(evt.EVT_DIMSE_SENT, lambda event: seen.append(
        type(event.message).__name__))] if bound else []
    ae = AE()
    ae.add_requested_context(MODEL)
    assoc = ae.associate("127.0.0.1", scp.port, ae_title=scp.ae_title,
                         evt_handlers=handlers)
    assert assoc.is_established
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "STUDY"
    identifier.PatientName = ""
    statuses = []
    try:
        with Exchange(assoc) as exchange:
            assert getattr(exchange, "_direct", False) is (fast_path() and not bound)
            for msg_id in (1, 2):
                request = C_FIND()
                request.MessageID = msg_id
                request.AffectedSOPClassUID = MODEL
                request.Priority = 2
                request.Identifier = BytesIO(encode_dataset(identifier, True, True))
                exchange.send(request, assoc.accepted_contexts[0].context_id)
                while True:
                    message = exchange.receive()
                    assert message is not None, exchange.failure
                    assert message.message_id_being_responded_to == msg_id
                    statuses.append(message.status)
                    if message.status not in (0xFF00, 0xFF01):
                        break
        assoc.release()
    finally:
        if assoc.is_established:
            assoc.abort()
    pending = [s for s in statuses if s in (0xFF00, 0xFF01)]
    assert statuses[-1] == 0x0000 and len(pending) == len(statuses) - 2 > 0
    assert seen == (["C_FIND_RQ", "C_FIND_RQ"] if bound else [])
