"""Character sets end to end: whatever the peer answered in, text output is
UTF-8; a query with non-ASCII values gets a character set that encodes it."""

from __future__ import annotations

import json

import pydicom
import pytest
from conftest import assert_no_traceback
from pydicom import Dataset
from pydicom.data import get_charset_files

CHARSET_FILES = sorted(get_charset_files("chr*.dcm"))


def _person_names(ds):
    names = []
    for elem in ds.iterall():
        if elem.VR == "PN" and elem.value:
            values = elem.value if elem.VM > 1 else [elem.value]
            names.extend(str(v) for v in values)
    return names


@pytest.mark.parametrize("path", CHARSET_FILES, ids=lambda p: p.rsplit("/", 1)[-1])
def test_every_pydicom_charset_sample_comes_out_as_utf8(dimsekit, make_scp, tmp_path, path):
    original = pydicom.dcmread(path)
    names = _person_names(original)
    assert names, "each sample holds person names"
    # the sample itself is the identifier; nothing matches it, so the peer
    # answers it back, encoded in the sample's own character set
    scp = make_scp(repeat_matches=1)
    out = tmp_path / "rsp"
    result = dimsekit("find", "-W", "--format", "ndjson", "-X", "+sr", "-od", out,
                      "127.0.0.1", scp.port, path)
    assert_no_traceback(result)
    assert result.returncode == 0, result.stderr
    received = pydicom.dcmread(out / "rsp0001.dcm")
    assert received.SpecificCharacterSet == original.SpecificCharacterSet
    (line,) = result.stdout.splitlines()
    obj = json.loads(line)
    decoded = Dataset.from_json(obj)
    assert _person_names(decoded) == names
    dump = dimsekit("find", "-W", "127.0.0.1", scp.port, path)
    for name in names:
        assert name.split("=")[0] in dump.stdout


@pytest.mark.parametrize("value, charset", [
    ("MÜLLER*", "ISO_IR 100"),
    ("山田*", "ISO_IR 192"),
    ("Ελληνικά", "ISO_IR 192"),
])
def test_query_charset_is_chosen_for_non_ascii_keys(dimsekit, scp, value, charset):
    result = dimsekit("find", "-v", "-W", "-k", f"PatientName={value}", "127.0.0.1", scp.port)
    assert result.returncode == 0, result.stderr
    identifier = scp.requests[0].identifier
    assert identifier.SpecificCharacterSet == charset
    assert str(identifier.PatientName) == value
    assert f"Specific Character Set {charset} added" in result.stderr


def test_ascii_query_gets_no_charset(dimsekit, scp):
    dimsekit("find", "-W", "-k", "PatientName=SMITH*", "127.0.0.1", scp.port)
    assert "SpecificCharacterSet" not in scp.requests[0].identifier


def test_explicit_charset(dimsekit, scp):
    result = dimsekit("find", "-W", "--charset", "ISO_IR 144", "-k", "PatientName=Иванов*",
                      "127.0.0.1", scp.port)
    assert result.returncode == 0, result.stderr
    identifier = scp.requests[0].identifier
    assert identifier.SpecificCharacterSet == "ISO_IR 144"
    assert str(identifier.PatientName) == "Иванов*"


def test_unencodable_value_names_the_key(dimsekit, scp):
    result = dimsekit("find", "-W", "--charset", "ISO_IR 100", "-k", "PatientName=山田",
                      "127.0.0.1", scp.port)
    assert result.returncode == 2
    assert result.stderr_lines == [
        "E: -k 'PatientName=山田': '山田' cannot be encoded in ISO_IR 100"]
    assert scp.associations == []


def test_unknown_charset_is_a_usage_error(dimsekit, scp):
    result = dimsekit("find", "-W", "--charset", "KLINGON", "-k", "PatientName=",
                      "127.0.0.1", scp.port)
    assert result.returncode == 2
    assert "unknown character set 'KLINGON'" in result.stderr
