"""dimsekit.plugins.find.dump.format_dataset against the real DCMTK ``dcmdump``.

Every case is encoded to bytes (a bare data set, as it travels in a C-FIND
response), decoded the way pynetdicom decodes a response identifier, formatted
with ``format_dataset``, and compared line by line with what ``dcmdump -q -f
-t{e,i,b}`` (read a data set without meta header in the given transfer syntax,
default formatting) prints for the same bytes, minus its ``#`` header lines.

``test_real_responses_match_dcmdump`` does the same with the identifiers real
archives (DCMTK dcmqrscp, Orthanc; the ``realpeers`` fixtures) send to
pynetdicom, captured as received.

A missing ``dcmdump`` skips these tests, except with ``CI=true`` where it fails
them (missing peers likewise, see ``realpeers.require_binary``). Deliberate
differences from ``dcmdump`` (decoded non-ASCII text) are asserted explicitly
in ``test_non_ascii_*``.
"""

from __future__ import annotations

import io
import math
import os
import random
import re
import shutil
import struct
import subprocess
import warnings
from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pynetdicom.dsutils import decode, encode

from dimsekit.plugins.find.dump import format_dataset

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

# transfer syntax -> (dcmdump input option, implicit VR, little endian)
SYNTAXES = {
    "implicit": ("-ti", True, True),
    "explicit": ("-te", False, True),
    "bigendian": ("-tb", False, False),
}


def _dcmdump_binary() -> str:
    found = shutil.which("dcmdump")
    if found:
        return found
    if os.environ.get("CI") == "true":
        pytest.fail("dcmdump (DCMTK) not found in PATH; it is required when CI=true")
    pytest.skip("dcmdump (DCMTK) not installed")


def dcmdump_lines(data: bytes, syntax: str, tmp_path: Path) -> list[str]:
    """dcmdump's element lines for the bare data set `data` (bytes -> latin-1)."""
    path = tmp_path / f"ds-{syntax}-{len(list(tmp_path.iterdir()))}.bin"
    path.write_bytes(data)
    proc = subprocess.run(
        [_dcmdump_binary(), "-q", "-f", SYNTAXES[syntax][0], str(path)],
        capture_output=True, check=False, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr.decode("latin-1")
    text = proc.stdout.decode("latin-1")
    # one element per line, except values with CR/LF: split on "\n" only
    return [line for line in text.split("\n") if line and not line.startswith("#")]


def decoded(data: bytes, syntax: str) -> Dataset:
    _, implicit, little = SYNTAXES[syntax]
    return decode(io.BytesIO(data), implicit, little)


def assert_same_lines(mine: list[str], theirs: list[str]) -> None:
    diffs = [
        f"line {i}:\n  mine:    {a!r}\n  dcmdump: {b!r}"
        for i, (a, b) in enumerate(zip(mine, theirs, strict=False)) if a != b
    ]
    assert not diffs and len(mine) == len(theirs), (
        f"{len(mine)} vs {len(theirs)} lines\n" + "\n".join(diffs[:20])
    )


def check_against_dcmdump(data: bytes, syntax: str, tmp_path: Path) -> list[str]:
    theirs = dcmdump_lines(data, syntax, tmp_path)
    mine = format_dataset(decoded(data, syntax)).split("\n")
    assert_same_lines(mine, theirs)
    return mine


# --------------------------------------------------------------------------
# a raw encoder, for values pydicom would normalise (padding, odd lengths...)

_LONG_VRS = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"}
_UNDEFINED = 0xFFFFFFFF


def raw_encode(elements, syntax: str) -> bytes:
    """Encode [(tag, VR, bytes | (items, undefined_length))] verbatim.

    An SQ value is ``([(item_elements, undefined_length), ...], undefined)``.
    Elements are sorted by tag; numeric bytes are given little endian and
    are not swapped (use explicit/implicit only for those).
    """
    _, implicit, little = SYNTAXES[syntax]
    order = "<" if little else ">"
    out = bytearray()
    for tag, vr, value in sorted(elements, key=lambda e: e[0]):
        group, elem = tag >> 16, tag & 0xFFFF
        if vr == "SQ":
            items, undefined = value
            body = bytearray()
            for item, item_undefined in items:
                content = raw_encode(item, syntax)
                body += struct.pack(order + "HHI", 0xFFFE, 0xE000,
                                    _UNDEFINED if item_undefined else len(content))
                body += content
                if item_undefined:
                    body += struct.pack(order + "HHI", 0xFFFE, 0xE00D, 0)
            if undefined:
                body += struct.pack(order + "HHI", 0xFFFE, 0xE0DD, 0)
            value = bytes(body)
            length = _UNDEFINED if undefined else len(value)
        else:
            length = len(value)
        if implicit:
            out += struct.pack(order + "HHI", group, elem, length)
        elif vr in _LONG_VRS:
            out += struct.pack(order + "HH", group, elem) + vr.encode() + b"\0\0"
            out += struct.pack(order + "I", length)
        else:
            out += struct.pack(order + "HH", group, elem) + vr.encode()
            out += struct.pack(order + "H", length)
        out += value
    return bytes(out)


# --------------------------------------------------------------------------
# the main corpus: what C-FIND responses contain, and then some


def corpus(undefined_lengths: bool = False) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"  # known UID: =CTImageStorage
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.12345678901234567890"
    ds.StudyDate = "20240131"
    ds.StudyTime = "101010.123456"
    ds.AcquisitionDateTime = "20240131101010.5+0100"
    ds.AccessionNumber = "ACC0001"
    ds.QueryRetrieveLevel = "STUDY"
    ds.RetrieveAETitle = ["ARCHIVE", "BACKUP"]
    ds.Modality = "CT"
    ds.ModalitiesInStudy = ["CT", "MR", "PR", "SR"]
    ds.InstitutionAddress = "Street 1\\Town"  # ST: backslash is no delimiter
    ds.ReferringPhysicianName = "Who^Doctor^^Dr.=Ideo^Graphic=Phone^Tic"
    ds.AdmittingDiagnosesDescription = ["a" * 40, "b" * 40]  # shortened
    ds.LongCodeValue = "LONGCODE"
    ds.RetrieveURL = "https://pacs.example.org/dicomweb/studies/1.2.3"
    ds.PatientName = "Doe^John^Q^Mr^Jr"
    ds.PatientID = ""
    ds.PatientBirthDate = ""
    ds.PatientAge = "045Y"
    ds.PatientWeight = "72.5"
    ds.MedicalAlerts = ["", ""]
    ds.StrainAdditionalInformation = "UT text"
    ds.AdditionalPatientHistory = "History " * 20  # LT shortened to 66 chars
    ds.BodyPartExamined = "HEAD"
    ds.AcquisitionMatrix = [0, 256, 256, 0]
    ds.ReferencePixelX0 = -123456
    ds.TagAngleSecondAxis = -32768
    ds.RecommendedDisplayFrameRateInFloat = 29.97
    ds.DiffusionBValue = 1000.0
    ds.DiffusionGradientOrientation = [0.5773502691896258, -0.5773502691896258, 1e-20]
    ds.TableFeedPerRotation = 1.0 / 3
    ds.SimpleFrameList = list(range(1000, 1040))  # UL, shortened
    ds.StudyInstanceUID = "1.2.840.113619.2.55.3.604688119.969.1268071029.320"
    ds.StudyID = "S1"
    ds.ImagePositionPatient = ["-125.000", "-125.000", "0"]
    ds.NumberOfStudyRelatedInstances = "42"
    ds.DimensionIndexPointer = 0x00200032
    ds.FrameIncrementPointer = [0x00181063, 0x00181065, 0x00209153, 0x00209154,
                                0x00209155, 0x00209156, 0x00209157]
    ds.PixelSpacing = ["0.5", "0.5"]
    ds.ICCProfile = b"\x01\x02\x03"  # odd length OB: padded with a zero byte
    ds.RedPaletteColorLookupTableData = struct.pack("<5H", 0, 1, 0x1234, 0xABCD, 0xFFFF)
    ds.StudyComments = "retired"
    ds.EncapsulatedDocument = bytes(range(256))
    ds.NumericValue = ["1", "2.5", "-3e4"]
    ds.TextValue = ""
    ds.PointCoordinatesData = struct.pack("<3f", 1.5, -2.0, 0.1)
    ds.LongPrimitivePointIndexList = struct.pack("<3L", 1, 2, 4000000000)
    ds.DoublePointCoordinatesData = struct.pack("<2d", 0.1, 1e300)
    # private block
    ds.add_new(0x00290010, "LO", "ACME 1.0")
    ds.add_new(0x00291001, "LO", "private value")
    ds.add_new(0x00291002, "UN", b"\x00\x01\xfe\xff")
    ds.add_new(0x00291003, "US", 7)
    # sequences: nested two deep, empty items, empty sequence
    code = Dataset()
    code.CodeValue = "X1"
    code.CodingSchemeDesignator = "DCM"
    code.CodeMeaning = "Thing"
    step = Dataset()
    step.Modality = "MR"
    step.ScheduledStationAETitle = "STATION1"
    step.ScheduledProtocolCodeSequence = Sequence([code, Dataset()])
    ds.ScheduledProcedureStepSequence = Sequence([step, Dataset()])
    ds.ContentItemModifierSequence = Sequence()
    ds.ProcedureCodeSequence = Sequence([Dataset()])
    if undefined_lengths:
        for elem in ds.iterall():
            if elem.VR == "SQ":
                elem.is_undefined_length = True
                for item in elem.value:
                    item.is_undefined_length_sequence_item = True
    return ds


@pytest.mark.parametrize("undefined", [False, True], ids=["explicit-length", "undefined-length"])
@pytest.mark.parametrize("syntax", list(SYNTAXES))
def test_corpus_matches_dcmdump(syntax, undefined, tmp_path):
    _, implicit, little = SYNTAXES[syntax]
    data = encode(corpus(undefined), implicit, little)
    mine = check_against_dcmdump(data, syntax, tmp_path)
    text = "\n".join(mine)
    # the corpus really exercises what it claims to
    assert "UI =CTImageStorage" in text
    assert "#=2)" in text and "#=0)" in text
    assert ("u/l" in text) == undefined
    assert "PrivateCreator" in text and "Unknown Tag & Data" in text
    assert "RETIRED_StudyComments" in text
    assert any(line.startswith("        (0008,0104) LO [Thing]") for line in mine)
    assert "..." in text


@pytest.mark.parametrize("syntax", list(SYNTAXES))
def test_converted_elements_render_the_same(syntax, tmp_path):
    """Elements pydicom already converted (someone read them) print the same."""
    _, implicit, little = SYNTAXES[syntax]
    data = encode(corpus(), implicit, little)
    expected = format_dataset(decoded(data, syntax))
    ds = decoded(data, syntax)
    for elem in ds.iterall():  # converts every element from its raw form
        elem.value  # noqa: B018
    assert format_dataset(ds) == expected
    assert expected.split("\n") == dcmdump_lines(data, syntax, tmp_path)


def test_typical_study_response(tmp_path):
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.QueryRetrieveLevel = "STUDY"
    ds.RetrieveAETitle = "ARCHIVE"
    ds.StudyDate = "20240101"
    ds.AccessionNumber = ""
    ds.PatientName = "Doe^John"
    ds.PatientID = "PID1"
    ds.StudyInstanceUID = "1.2.3.4"
    data = encode(ds, True, True)
    assert check_against_dcmdump(data, "implicit", tmp_path) == [
        "(0008,0005) CS [ISO_IR 100]                             #  10, 1 SpecificCharacterSet",
        "(0008,0020) DA [20240101]                               #   8, 1 StudyDate",
        "(0008,0050) SH (no value available)                     #   0, 0 AccessionNumber",
        "(0008,0052) CS [STUDY]                                  #   6, 1 QueryRetrieveLevel",
        "(0008,0054) AE [ARCHIVE]                                #   8, 1 RetrieveAETitle",
        "(0010,0010) PN [Doe^John]                               #   8, 1 PatientName",
        "(0010,0020) LO [PID1]                                   #   4, 1 PatientID",
        "(0020,000d) UI [1.2.3.4]                                #   8, 1 StudyInstanceUID",
    ]


# --------------------------------------------------------------------------
# DCMTK's reading quirks, from hand-made bytes


def _le(fmt: str, *values) -> bytes:
    return struct.pack("<" + fmt, *values)


QUIRKS = [
    # trailing spaces are padding; leading and inner ones are not
    (0x00080050, "SH", b"  "),                       # only padding: no value, length 2
    (0x00080060, "CS", b"A \\B "),                   # odd: NUL appended, nothing stripped
    (0x00080061, "CS", b" A\\ B"),
    (0x00080070, "LO", b"\\\\  "),                   # VM 3 from two backslashes
    (0x00080081, "ST", b"a\\b"),                     # ST: always VM 1
    (0x00081030, "LO", b"abc\x00"),                  # NUL is not padding for text
    (0x00081040, "LO", b" "),
    (0x00081080, "LO", b"a\\b\\c "),
    (0x00081190, "UR", b"http://x "),
    (0x00100010, "PN", b"Doe^John^^^  "),
    (0x00101001, "PN", b"A\\B=C\\"),
    (0x00101020, "DS", b" 1.50 \\ 2 "),
    (0x00104000, "LT", b"abc   "),
    (0x00201208, "IS", b" 42 "),
    (0x00200010, "SH", b"\x00\x00"),
    (0x00324000, "LT", b"   "),
    (0x00400007, "LO", b"ab  "),
    (0x00400009, "SH", b"x"),
    (0x00400011, "SH", b" a b "),
    (0x00400012, "LO", b"\\ "),
    (0x00400241, "AE", b"  AE  "),
    (0x00400242, "SH", b"\x00abc\x00"),
    (0x00400280, "ST", b"x  y  "),
    (0x00402400, "LT", b"line1\r\nline2"),           # printed raw, like dcmdump
    (0x00080020, "DA", b"20200101 "),
    (0x00080030, "TM", b" 1200 "),
    # UIDs: all whitespace and trailing NULs go, then the name lookup
    (0x00080014, "UI", b""),
    (0x00080015, "UI", b"\x00\x00"),
    (0x00080016, "UI", b"1.2.3"),
    (0x00080018, "UI", b"1.2.840.10008.1.2\\1.2.840.10008.1.2.1\x00"),
    (0x00081150, "UI", b"1.2.840.10008.1.2.1"),
    (0x00081155, "UI", b" 1.2.840.10008.1.2\x00"),
    (0x0020000D, "UI", b"1.2.840.10008.5.1.4.1.1.88.59\x00"),
    (0x0020000E, "UI", b"1.2.840.10008.1.2\x00 "),
    (0x00200052, "UI", b"1.2\x00\\1.3\x00"),
    # lengths at the 70-column limit
    (0x00380010, "LO", b"a" * 64),
    (0x00380011, "LO", b"b" * 68),
    (0x00380020, "LO", b"c" * 69),
    (0x00380021, "LO", b"d" * 38),
    (0x00380050, "LO", b"e" * 40),
    # binary values, odd lengths padded with a zero byte
    (0x00280010, "US", b""),
    (0x00280011, "US", b"\x01\x00\x02"),
    (0x00281050, "DS", b""),
    (0x00209165, "AT", _le("HH", 0x10, 0x10) * 5),
    (0x00209167, "AT", _le("HH", 0x10, 0x10) * 6),
    (0x00282000, "OB", bytes(range(23))),
    (0x00420011, "OB", bytes(range(24))),
    (0x00281201, "OW", bytes(range(28))),
    (0x00281202, "OW", bytes(range(30))),
    (0x00281203, "OW", b""),
    # private and unknown
    (0x00090000, "UL", _le("L", 4)),
    (0x00090010, "LO", b"ACME 1.0"),
    (0x00091001, "LO", b"pv"),
    (0x00091002, "UN", b"abcd"),
    (0x00091003, "UN", b""),
    (0x00110001, "LO", b"not a creator"),
    (0x00080000, "UL", _le("L", 4)),
    # US-or-SS and friends resolved (or not) the way DCMTK does
    (0x00280103, "US", _le("H", 1)),                 # PixelRepresentation: signed
    (0x00280106, "SS", _le("h", -1)),                # -> SS in implicit VR
    (0x00280110, "US", _le("H", 65535)),             # -> xs in implicit VR
    (0x00283006, "US", _le("2H", 1, 2)),             # LUTData -> lt
    (0x00283002, "US", _le("3H", 0xFFFF, 0, 16)),
    (0x60003000, "OW", _le("2H", 1, 2)),             # OverlayData
    (0x50000010, "US", _le("H", 1)),                 # retired repeating group
    # sequences of every kind
    (0x00400100, "SQ", ([([(0x00080100, "SH", b"abc"), (0x00080102, "SH", b"ab  ")], False),
                         ([(0x00080100, "SH", b"X2")], True),
                         ([], False)], False)),
    (0x00400441, "SQ", ([([(0x0040A043, "SQ", ([([(0x00080100, "SH", b"deep")], True)], True))],
                          False)], True)),
    (0x00400260, "SQ", ([], True)),
    (0x00400270, "SQ", ([], False)),
]


@pytest.mark.parametrize("syntax", ["explicit", "implicit"])
def test_reading_quirks_match_dcmdump(syntax, tmp_path):
    mine = check_against_dcmdump(raw_encode(QUIRKS, syntax), syntax, tmp_path)
    text = "\n".join(mine)
    assert "(0008,0050) SH (no value available)                     #   2, 0" in text
    assert "(0008,1030) LO [abc\x00]" in text
    assert "(0008,1155) UI =LittleEndianImplicit" in text
    assert "(0040,2400) LT [line1\r\nline2]" in text
    if syntax == "implicit":
        assert "(0028,0106) SS -1" in text and "(0028,0110) xs 65535" in text
        assert "(0028,3006) lt 0001\\0002" in text and "(0009,1001) ?? 70\\76" in text


@pytest.mark.parametrize("syntax", ["explicit", "bigendian"])
def test_binary_vrs_match_dcmdump(syntax, tmp_path):
    """Number VRs and byte order (values packed in the syntax's byte order)."""
    order = "<" if SYNTAXES[syntax][2] else ">"

    def p(fmt, *v):
        return struct.pack(order + fmt, *v)

    elements = [
        (0x00660016, "OF", b""),
        (0x00660017, "OF", p("3f", 1.5, -2.0, 0.1)),
        (0x00660018, "OD", b""),
        (0x00660019, "OD", p("2d", 1.5, 1e-300)),
        (0x00660040, "OL", b""),
        (0x00660041, "OL", p("2L", 1, 4000000000)),
        (0x00660042, "OV", p("2Q", 1, 2**64 - 1)),
        (0x00660043, "OV", b""),
        (0x00660044, "SV", p("2q", -1, -(2**63))),
        (0x00660045, "UV", p("Q", 2**63)),
        (0x00660046, "SV", b""),
        (0x00660047, "OW", b""),
        (0x00660048, "UN", b""),
        (0x00660049, "OB", b"\x01\x02\x03"),
        (0x0066004A, "OW", p("3H", 1, 0xABCD, 0xFFFF)),
        (0x0066004B, "AT", p("4H", 0x0010, 0x0020, 0x7FE0, 0x0010)),
        (0x0066004C, "US", p("2H", 1, 65535)),
        (0x0066004D, "SS", p("2h", -32768, 32767)),
        (0x0066004E, "UL", b"\x01\x02\x03"),
        (0x0066004F, "FL", b""),
        (0x00660050, "FD", b""),
        (0x00660051, "AT", b""),
        (0x00660052, "US", p("40H", *range(40))),
        (0x00660053, "SS", p("40h", *([-1] * 40))),
        (0x00660054, "SL", p("17l", *range(-8, 9))),
        (0x00660055, "FL", p("10f", *[0.1 * i for i in range(10)])),
        (0x00660056, "FD", p("9d", *[10.0 ** i for i in range(-4, 5)])),
        (0x00660057, "AT", p("16H", *([0x0008, 0x0020] * 8))),
        (0x00660058, "UL", p("7L", *([4294967295] * 7))),
    ]
    check_against_dcmdump(raw_encode(elements, syntax), syntax, tmp_path)


def test_float_formatting_matches_dcmdump(tmp_path):
    """FL/FD digits come from a port of DCMTK's OFStandard::ftoa: fuzz it."""
    rnd = random.Random(20240131)
    specials = [0.0, -0.0, 0.5, 9.5, 1e17, 1e16, 99999999999999999.0, 1e-5, 1e-4,
                0.0001, 0.00009999, 2.5e-308, 5e-324, 1.7976931348623157e308,
                float("inf"), float("-inf"), 123456789.123, 1.0 / 3, 2.0 / 3]
    values = list(specials)
    while len(values) < 1500:
        kind = len(values) % 4
        if kind == 0:
            value = struct.unpack("<d", rnd.getrandbits(64).to_bytes(8, "little"))[0]
            if math.isnan(value):  # NaN: DCMTK and we both print "nan", boring
                continue
        elif kind == 1:
            value = rnd.uniform(-1, 1) * 10.0 ** rnd.randint(-40, 40)
        elif kind == 2:
            value = round(rnd.uniform(-1e4, 1e4), rnd.randint(0, 8))
        else:
            value = float(rnd.randint(0, 2**53)) * rnd.choice([1, 0.1, 10, 1e-10])
        values.append(value)
    elements = []
    for i, value in enumerate(values):
        tag = ((0x0009 + 2 * (i // 0xE00)) << 16) | (0x1100 + i % 0xE00)
        if i % 2 and abs(value) < 3e38 or value in (float("inf"), float("-inf")):
            elements.append((tag, "FL", struct.pack("<f", value)))
        else:
            elements.append((tag, "FD", struct.pack("<d", value)))
    check_against_dcmdump(raw_encode(elements, "explicit"), "explicit", tmp_path)


def test_in_memory_dataset_is_shown_as_explicit_little_endian(tmp_path):
    """No original encoding (built, not decoded): explicit VR little endian."""
    ds = corpus()
    mine = format_dataset(ds).split("\n")
    assert_same_lines(mine, dcmdump_lines(encode(ds, False, True), "explicit", tmp_path))


# --------------------------------------------------------------------------
# deliberate difference: text is decoded per Specific Character Set

_LINE = re.compile(r"^( *\([0-9a-f]{4},[0-9a-f]{4}\) \S\S )(.*?) *( # +(?:\d+|u/l), *\d+ .*)$")


def _charset_dataset(charset, name, lo, lt) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = charset
    ds.PatientName = name
    ds.InstitutionName = lo
    ds.PatientComments = lt
    inherited = Dataset()
    inherited.CodeMeaning = lo
    own = Dataset()
    own.SpecificCharacterSet = "ISO_IR 192"
    own.CodeMeaning = "Größe 山"
    ds.ConceptNameCodeSequence = Sequence([inherited, own])
    return ds


@pytest.mark.parametrize("syntax", ["explicit", "implicit"])
def test_non_ascii_latin1_is_dcmdump_decoded(syntax, tmp_path):
    """ISO_IR 100: exactly dcmdump's output read as ISO 8859-1 (one byte, one char)."""
    ds = _charset_dataset("ISO_IR 100", "Müller^Jörg", "Ärztehaus Süd",
                          "Bemerkung: ä ö ü ß " * 5)
    data = encode(ds, SYNTAXES[syntax][1], True)
    mine = format_dataset(decoded(data, syntax)).split("\n")
    theirs = dcmdump_lines(data, syntax, tmp_path)  # raw bytes shown as latin-1
    # the item with its own ISO_IR 192: dcmdump prints 11 UTF-8 bytes and pads
    # for them, we print 7 characters and pad for those
    utf8_item = [i for i, line in enumerate(theirs) if "CodeMeaning" in line][-1]
    assert theirs[utf8_item] == (
        "    (0008,0104) LO [" + "Größe 山".encode().decode("latin-1") + "]"
        + " " * 27 + " #  12, 1 CodeMeaning"
    )
    assert mine[utf8_item] == (
        "    (0008,0104) LO [Größe 山]" + " " * 31 + " #  12, 1 CodeMeaning"
    )
    del mine[utf8_item], theirs[utf8_item]
    assert_same_lines(mine, theirs)
    assert "(0010,0010) PN [Müller^Jörg]                            #  12, 1 PatientName" in mine


@pytest.mark.parametrize("charset,name,lo,lt", [
    ("ISO_IR 192", "山田^太郎=やまだ^たろう", "Größe", "日本語のテキスト" * 6),
    (["", "ISO 2022 IR 87"], "Yamada^Tarou=山田^太郎=やまだ^たろう", "abc", "x"),
    ("GB18030", "Wang^XiaoDong=王^小东", "中文", "测试" * 40),
], ids=["utf8", "iso2022-jis", "gb18030"])
def test_non_ascii_multibyte_is_decoded(charset, name, lo, lt, tmp_path):
    """Multi-byte sets: dcmdump's bytes vs our text; padding counts characters."""
    ds = _charset_dataset(charset, name, lo, lt)
    data = encode(ds, False, True)
    mine = format_dataset(decoded(data, "explicit")).split("\n")
    theirs = dcmdump_lines(data, "explicit", tmp_path)
    assert len(mine) == len(theirs)
    texts = {"PatientName": [name], "InstitutionName": [lo], "PatientComments": [lt],
             "CodeMeaning": [lo, "Größe 山"]}  # inherited, then the item's own
    for my_line, their_line in zip(mine, theirs, strict=True):
        mine_m, theirs_m = _LINE.match(my_line), _LINE.match(their_line)
        assert mine_m and theirs_m, (my_line, their_line)
        # tag, VR, length, VM and name are dcmdump's
        assert mine_m.group(1) == theirs_m.group(1)
        assert mine_m.group(3) == theirs_m.group(3)
        value = mine_m.group(2)
        # the value column is padded to 40 characters (not bytes)
        assert my_line.index(" # ") - len(mine_m.group(1)) == max(len(value), 40)
        keyword = my_line.rsplit(" ", 1)[1]
        if keyword not in texts:
            assert value == theirs_m.group(2)
            continue
        expected = texts[keyword].pop(0)
        if len(expected) + 2 > 70:
            assert value == "[" + expected[:66] + "..."
        else:
            assert value == "[" + expected + "]"
    assert not any(texts.values())
    assert any("[" + name + "]" in line for line in mine)


def test_no_specific_character_set_falls_back_to_latin1(tmp_path):
    data = raw_encode([(0x00100010, "PN", "Gärtner^Ölaf".encode("latin-1"))], "explicit")
    mine = format_dataset(decoded(data, "explicit"))
    assert mine == dcmdump_lines(data, "explicit", tmp_path)[0]
    assert "[Gärtner^Ölaf]" in mine


# --------------------------------------------------------------------------
# real C-FIND responses from real archives (tests/realpeers/ fixtures)


@pytest.fixture(params=[
    pytest.param("dcmqrscp_peer", marks=pytest.mark.realpeer("dcmqrscp")),
    pytest.param("orthanc_peer", marks=pytest.mark.realpeer("orthanc")),
])
def archive(request):
    return request.getfixturevalue(request.param)


@pytest.mark.parametrize("syntax", list(SYNTAXES))
def test_real_responses_match_dcmdump(archive, syntax, tmp_path):
    """pynetdicom's decoded responses vs dcmdump of the identifier bytes received."""
    from pydicom.uid import (
        ExplicitVRBigEndian,
        ExplicitVRLittleEndian,
        ImplicitVRLittleEndian,
    )
    from pynetdicom import AE, evt

    study_root_find = "1.2.840.10008.5.1.4.1.2.2.1"
    transfer_syntax = {"implicit": ImplicitVRLittleEndian, "explicit": ExplicitVRLittleEndian,
                       "bigendian": ExplicitVRBigEndian}[syntax]
    received: list[bytes] = []

    def on_dimse_recv(event):
        data_set = getattr(event.message, "data_set", None)
        if data_set is not None and data_set.getvalue():
            received.append(data_set.getvalue())

    ae = AE()
    ae.add_requested_context(study_root_find, [transfer_syntax])
    assoc = ae.associate(archive.host, archive.port, ae_title=archive.aet,
                         evt_handlers=[(evt.EVT_DIMSE_RECV, on_dimse_recv)])
    assert assoc.is_established
    identifiers = []
    try:
        for level, keys in [
            ("STUDY", ["SpecificCharacterSet", "PatientName", "PatientID", "StudyDate",
                       "StudyTime", "AccessionNumber", "StudyInstanceUID", "ModalitiesInStudy",
                       "ReferringPhysicianName", "StudyDescription",
                       "NumberOfStudyRelatedInstances", "RetrieveAETitle"]),
            ("SERIES", ["SeriesInstanceUID", "Modality", "SeriesNumber", "SeriesDescription",
                        "NumberOfSeriesRelatedInstances"]),
        ]:
            query = Dataset()
            query.QueryRetrieveLevel = level
            for keyword in keys:
                setattr(query, keyword, "")
            for _status, identifier in assoc.send_c_find(query, study_root_find):
                if identifier is not None:
                    identifiers.append(identifier)
    finally:
        assoc.release()
    assert identifiers and len(identifiers) == len(received)
    for identifier, data in zip(identifiers, received, strict=True):
        mine = format_dataset(identifier).split("\n")
        assert_same_lines(mine, dcmdump_lines(data, syntax, tmp_path))
    everything = "\n".join(format_dataset(ds) for ds in identifiers)
    assert "[MÜLLER^Hans]" in everything  # the ISO_IR 100 sample patient


# --------------------------------------------------------------------------
# API


def test_api_indent_and_joining():
    ds = Dataset()
    ds.PatientID = "X"
    item = Dataset()
    item.CodeValue = "C"
    ds.ProcedureCodeSequence = Sequence([item])
    flat = format_dataset(ds)
    assert isinstance(flat, str) and not flat.endswith("\n")
    assert flat.split("\n") == [
        "(0008,1032) SQ (Sequence with explicit length #=1)      #  18, 1 ProcedureCodeSequence",
        "  (fffe,e000) na (Item with explicit length #=1)          #  10, 1 Item",
        "    (0008,0100) SH [C]                                      #   2, 1 CodeValue",
        "  (fffe,e00d) na (ItemDelimitationItem for re-encoding)   #   0, 0 ItemDelimitationItem",
        "(fffe,e0dd) na (SequenceDelimitationItem for re-encod.) #   0, 0 SequenceDelimitationItem",
        "(0010,0020) LO [X]                                      #   2, 1 PatientID",
    ]
    assert format_dataset(ds, indent=2) == "\n".join("    " + line for line in flat.split("\n"))
    assert format_dataset(Dataset()) == ""


def test_does_not_copy_or_convert_plain_elements():
    """Raw elements stay raw (no conversion cost, no mutation) after formatting."""
    from pydicom.dataelem import RawDataElement

    ds = decoded(encode(corpus(), True, True), "implicit")
    format_dataset(ds)
    assert isinstance(ds.get_item(0x00100010), RawDataElement)
    assert isinstance(ds.get_item(0x00080061), RawDataElement)


def test_warnings_are_not_raised_for_ordinary_data():
    ds = decoded(encode(corpus(), False, True), "explicit")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        format_dataset(ds)


def test_uid_names_are_package_data():
    """DCMTK 3.6.7's UID name table ships as ``uid_names.tsv`` next to the
    module (declared in pyproject's package-data, so a wheel has it)."""
    from importlib import resources

    from dimsekit.plugins.find import dump

    text = resources.files(dump.__package__).joinpath("uid_names.tsv").read_text("utf-8")
    header, *lines = text.splitlines()
    assert header == "uid\tname"
    rows = [line.split("\t") for line in lines]
    assert all(len(row) == 2 and row[0] and row[1] and not set(row[1]) & set(" \t")
               for row in rows)
    assert len({uid for uid, _ in rows}) == len(rows) == 436
    assert dump._uid_name("1.2.840.10008.5.1.4.1.1.2") == "CTImageStorage"
    assert dump._uid_name("1.2.840.10008.1.2.4.51") == "JPEGExtended:Process2+4"
    assert dump._uid_name("1.2.3") is None
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.1.1"
    assert format_dataset(ds).split() == [
        "(0008,0016)", "UI", "=VerificationSOPClass", "#", "18,", "1", "SOPClassUID"]
