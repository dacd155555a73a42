"""The JSON writers' fast path gives exactly what pydicom's to_json_dict gives.

Identifiers are generated element by element as raw bytes (so malformed,
padded and oddly encoded values arrive just as a peer could send them),
decoded by find's own decoder, and encoded twice: by JsonEncoder and by
``json.dumps(ds.to_json_dict(...))``.  Where pydicom raises, the encoder
must raise too.
"""

from __future__ import annotations

import json
import logging
import random
import struct
import warnings

import pytest
from identifiers import encode, identifier
from pydicom import config
from pydicom.uid import (
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from dimsekit.plugins.find.jsonfmt import NO_BULK, JsonEncoder, dicom_json
from dimsekit.qr.decode import decoder as _decoder


def pydicom_json(ds) -> str:
    return json.dumps(ds.to_json_dict(bulk_data_threshold=NO_BULK),
                      ensure_ascii=False, separators=(",", ":"))


def outcome(function, ds):
    try:
        return function(ds)
    except Exception as exc:  # noqa: BLE001 - compared, not hidden
        return type(exc)


@pytest.fixture
def quiet_pydicom(monkeypatch):
    monkeypatch.setattr(config.settings, "reading_validation_mode", config.IGNORE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
def test_fast_path_equals_pydicom_on_generated_identifiers(quiet_pydicom, syntax):
    rng = random.Random(20261122)
    decode = _decoder(syntax)
    encoder = JsonEncoder()
    mismatches = []
    for _ in range(1500):
        data = identifier(rng, syntax.is_implicit_VR)
        fast, slow = outcome(encoder.encode, decode(data)), outcome(pydicom_json, decode(data))
        if fast != slow:
            mismatches.append((data, fast, slow))
    assert not mismatches, f"{len(mismatches)} differ; first: {mismatches[0]}"


def test_big_endian_numbers(quiet_pydicom):
    ds_bytes = (struct.pack(">HH", 0x0028, 0x0010) + b"US" + struct.pack(">HH", 2, 512)
                + struct.pack(">HH", 0x0018, 0x0050) + b"DS" + struct.pack(">H", 4) + b"2.5 ")
    decode = _decoder(ExplicitVRBigEndian)
    text = JsonEncoder().encode(decode(ds_bytes))
    assert text == pydicom_json(decode(ds_bytes))
    assert json.loads(text)["00280010"] == {"vr": "US", "Value": [512]}


def test_typical_study_response(quiet_pydicom):
    data = encode([
        (0x00080005, "CS", b"ISO_IR 192"),
        (0x00080020, "DA", b"20200101"),
        (0x00080052, "CS", b"STUDY "),
        (0x00100010, "PN", "Müller^Jürgen=山田^太郎".encode()),
        (0x00201208, "IS", b"42"),
        (0x0020000D, "UI", b"1.2.3.4\x00"),
    ], False, True)
    decode = _decoder(ExplicitVRLittleEndian)
    text = JsonEncoder().encode(decode(data))
    assert text == pydicom_json(decode(data))
    model = json.loads(text)
    assert model["00100010"]["Value"] == [{"Alphabetic": "Müller^Jürgen",
                                          "Ideographic": "山田^太郎"}]
    assert model["00201208"]["Value"] == [42]
    assert model["0020000D"]["Value"] == ["1.2.3.4"]


def test_verbose_runs_leave_it_all_to_pydicom(monkeypatch, caplog):
    """From -v on pydicom validates what it converts and says what is wrong."""
    monkeypatch.setattr(config.settings, "reading_validation_mode", config.WARN)
    pydicom_log = logging.getLogger("pydicom")  # as a CLI run in this process left it
    monkeypatch.setattr(pydicom_log, "propagate", True)
    caplog.set_level(logging.WARNING, logger="pydicom")
    data = encode([(0x00100020, "LO", b"X" * 70)], False, True)
    ds = _decoder(ExplicitVRLittleEndian)(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert json.loads(JsonEncoder().encode(ds))["00100020"]["Value"] == ["X" * 70]
    assert any("exceeds the maximum length of 64" in r.getMessage() for r in caplog.records)


def test_lut_descriptors_keep_pydicoms_correction(quiet_pydicom):
    """pydicom makes a negative first LUT Descriptor value unsigned."""
    data = encode([(0x00283002, "SS", struct.pack("<hhh", -1, 0, 16)),
                   (0x00281101, "US", struct.pack("<HHH", 256, 0, 16))], False, True)
    decode = _decoder(ExplicitVRLittleEndian)
    text = JsonEncoder().encode(decode(data))
    assert text == pydicom_json(decode(data))
    assert json.loads(text)["00283002"]["Value"] == [65535, 0, 16]


@pytest.mark.parametrize("setting, value", [
    ("datetime_conversion", True), ("use_DS_decimal", True),
    ("data_element_callback",  # upper-cases LO values on the way in
     lambda raw, **kwargs: raw._replace(value=raw.value.upper())
     if raw.VR == "LO" and raw.value else raw),
])
def test_changed_pydicom_conversion_settings_leave_it_to_pydicom(quiet_pydicom, monkeypatch,
                                                                 setting, value):
    monkeypatch.setattr(config, setting, value)
    rng = random.Random(11)
    decode = _decoder(ExplicitVRLittleEndian)
    encoder = JsonEncoder()
    for _ in range(200):
        data = identifier(rng, False)
        assert outcome(encoder.encode, decode(data)) == outcome(pydicom_json, decode(data))


def test_a_replaced_pydicom_hook_leaves_it_to_pydicom(quiet_pydicom, monkeypatch):
    from pydicom.hooks import hooks, raw_element_value

    def upper(raw, data, **kwargs):
        raw_element_value(raw, data, **kwargs)
        if isinstance(data["value"], str):
            data["value"] = data["value"].upper()

    monkeypatch.setattr(hooks, "raw_element_value", upper)
    data = encode([(0x00100020, "LO", b"abc")], False, True)
    text = JsonEncoder().encode(_decoder(ExplicitVRLittleEndian)(data))
    assert json.loads(text)["00100020"]["Value"] == ["ABC"]


def test_the_model_the_xml_writer_reads_is_pydicoms(quiet_pydicom):
    """dicom_json (read back from the encoder's text) == to_json_dict."""
    rng = random.Random(99)
    decode = _decoder(ExplicitVRLittleEndian)

    def as_text(model_of):
        return lambda ds: json.dumps(model_of(ds), ensure_ascii=False)

    for _ in range(500):
        data = identifier(rng, False)
        ours = outcome(as_text(dicom_json), decode(data))
        theirs = outcome(as_text(lambda ds: ds.to_json_dict(bulk_data_threshold=NO_BULK)),
                         decode(data))
        assert ours == theirs, data
