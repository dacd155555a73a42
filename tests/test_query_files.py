"""Query files are read strictly: DICOM (a Part-10 file, or a bare data set
that parses completely) or a usage error before the network.

In-process tests of :func:`read_query_file` (valid files of every encoding,
DCMTK ``dump2dcm`` output, pydicom's sample files; PDF, gzip, random bytes,
empty, text, truncated, trailing bytes, hostile nesting, inflation bombs,
FIFOs), a hypothesis fuzz of mutated files, and the real command run as a
subprocess.
"""

from __future__ import annotations

import gzip
import io
import os
import random
import shutil
import struct
import subprocess
import zlib
from datetime import timedelta
from pathlib import Path

import pydicom
import pytest
from conftest import assert_no_traceback
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)
from test_find_cli import _query_file

from dimsekit.errors import UsageError
from dimsekit.keys import apply_keys, parse_keys
from dimsekit.qr.query import (
    MAX_DEPTH,
    check_encodable,
    choose_charset,
    read_query_file,
)

# pydicom warns about what it finds odd in data: not what is tested here
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:pydicom")

PYDICOM_FILES = Path(pydicom.__file__).parent / "data"


# ---------------------------------------------------------------- building


def identifier() -> Dataset:
    """A query with text, numbers, a multi-value, and a nested sequence."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.QueryRetrieveLevel = "STUDY"
    ds.ModalitiesInStudy = ["CT", "MR"]
    ds.PatientName = "MÜLLER*"
    ds.PatientID = ""
    ds.StudyInstanceUID = ""
    ds.Rows = 512
    step = Dataset()
    step.Modality = "CT"
    step.ScheduledProcedureStepStartDate = ""
    ds.ScheduledProcedureStepSequence = [step]
    return ds


def encode(ds: Dataset, *, implicit: bool = False, little: bool = True) -> bytes:
    fp = DicomBytesIO()
    fp.is_implicit_VR, fp.is_little_endian = implicit, little
    write_dataset(fp, ds)
    return fp.getvalue()


def part10(ds: Dataset, syntax=ExplicitVRLittleEndian) -> bytes:
    """``ds`` as a Part-10 file in ``syntax``."""
    ds = ds.copy()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.2.2.1"
    ds.file_meta.MediaStorageSOPInstanceUID = "1.2.3.4"
    ds.file_meta.TransferSyntaxUID = syntax
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def element(tag: int, vr: str, value: bytes) -> bytes:
    """One explicit VR little endian element."""
    if vr in ("SQ", "OB", "OW", "UN", "UT", "UC", "UR"):
        return struct.pack("<HH2sHL", tag >> 16, tag & 0xFFFF, vr.encode(), 0, len(value)) + value
    return struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, vr.encode(), len(value)) + value


ITEM = struct.pack("<HHL", 0xFFFE, 0xE000, 0xFFFFFFFF)
ITEM_END = struct.pack("<HHL", 0xFFFE, 0xE00D, 0)
SEQ_END = struct.pack("<HHL", 0xFFFE, 0xE0DD, 0)
LEVEL = element(0x00080052, "CS", b"STUDY ")


def nested(levels: int) -> bytes:
    """A bare data set with ``levels`` undefined-length sequences nested."""
    seq = struct.pack("<HH2sHL", 0x0008, 0x1110, b"SQ", 0, 0xFFFFFFFF)
    return (LEVEL + (seq + ITEM) * levels + element(0x00100020, "LO", b"X ")
            + (ITEM_END + SEQ_END) * levels)


def write(tmp_path: Path, data: bytes, name: str = "q.dcm") -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def rejected(path: str, reason: str = "") -> str:
    with pytest.raises(UsageError) as info:
        read_query_file(path)
    message = str(info.value)
    assert message.startswith(f"cannot read query file {path!r}: "), message
    assert reason in message, message
    assert "\n" not in message and len(message) < 1000
    return message


# ---------------------------------------------------------------- valid files


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian,
                                    ExplicitVRBigEndian, DeflatedExplicitVRLittleEndian])
def test_part10_files_in_every_uncompressed_syntax(tmp_path, syntax):
    ds = read_query_file(write(tmp_path, part10(identifier(), syntax)))
    assert ds.PatientName == "MÜLLER*" and ds.Rows == 512
    assert ds.ScheduledProcedureStepSequence[0].Modality == "CT"
    assert "TransferSyntaxUID" not in ds  # the File Meta is dropped


@pytest.mark.parametrize("implicit, little", [(False, True), (True, True), (False, False)])
def test_bare_data_sets(tmp_path, implicit, little):
    ds = read_query_file(write(tmp_path, encode(identifier(), implicit=implicit, little=little)))
    assert ds.ModalitiesInStudy == ["CT", "MR"]
    assert ds.ScheduledProcedureStepSequence[0].Modality == "CT"


def test_a_file_written_by_pydicom_as_in_test_find_cli(tmp_path):
    path = _query_file(tmp_path / "a.dcm", QueryRetrieveLevel="STUDY", PatientName="A*")
    assert read_query_file(str(path)).PatientName == "A*"


def test_nesting_up_to_the_bound_is_read(tmp_path):
    ds = read_query_file(write(tmp_path, nested(MAX_DEPTH)))
    for _ in range(MAX_DEPTH):
        ds = ds.ReferencedStudySequence[0]
    assert ds.PatientID == "X"


DUMP = """\
(0008,0005) CS [ISO_IR 100]
(0008,0020) DA [20240101-20241231]
(0008,0052) CS [STUDY]
(0008,0061) CS [CT\\MR]
(0010,0010) PN [M\xdcLLER*]
(0010,0020) LO []
(0020,000d) UI []
(0020,1206) IS []
(0028,0010) US 512
(0040,0100) SQ (Sequence with undefined length)
(fffe,e000) na (Item with undefined length)
(0008,0060) CS [CT]
(0040,0002) DA []
(fffe,e00d) na (ItemDelimitationItem)
(fffe,e0dd) na (SequenceDelimitationItem)
"""


@pytest.mark.skipif(shutil.which("dump2dcm") is None, reason="DCMTK dump2dcm not installed")
@pytest.mark.parametrize("options", ["", "+ti", "+tb", "+td", "-e", "+g", "+p 16 8", "-u",
                                     "-F", "-F +ti", "-F +tb", "-F -e", "-F +g",
                                     "-F +ti +g"])
def test_files_made_by_dcmtk_dump2dcm(tmp_path, options):
    dump = tmp_path / "q.dump"
    dump.write_bytes(DUMP.encode("latin-1"))
    out = tmp_path / "q.dcm"
    subprocess.run(["dump2dcm", *options.split(), str(dump), str(out)], check=True,
                   capture_output=True)
    ds = read_query_file(str(out))
    assert ds.PatientName == "MÜLLER*" and ds.Rows == 512
    assert ds.ScheduledProcedureStepSequence[0].Modality == "CT"


@pytest.mark.parametrize("name", [
    "test_files/CT_small.dcm", "test_files/MR_small_bigendian.dcm",
    "test_files/ExplVR_BigEndNoMeta.dcm", "test_files/ExplVR_LitEndNoMeta.dcm",
    "test_files/image_dfl.dcm",
    "test_files/rtplan.dcm", "test_files/JPEG2000.dcm", "charset_files/chrSQEncoding.dcm",
])
def test_pydicom_sample_files(name):
    path = PYDICOM_FILES / name
    if not path.exists():
        pytest.skip(f"{name} is not in this pydicom")
    ds = read_query_file(str(path))
    assert len(ds) == len(pydicom.dcmread(path, force=True))


# ---------------------------------------------------------------- not DICOM


NOT_DICOM = {
    "pdf": b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n",
    "gzip": gzip.compress(b"(0010,0010) PN [DOE^J]\n" * 20),
    "gzip-magic": b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + bytes(range(40)),
    "random": random.Random(20240101).randbytes(4096),
    "empty": b"",
    "text": b"this is not DICOM\n",
    "png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x02",
    "zeros": bytes(1024),
    "json": b'{"00100010": {"vr": "PN", "Value": [{"Alphabetic": "DOE"}]}}',
    "preamble only": bytes(128) + b"DICM",
}


@pytest.mark.parametrize("name", NOT_DICOM)
def test_not_dicom_is_a_usage_error(tmp_path, name):
    data = NOT_DICOM[name]
    message = rejected(write(tmp_path, data))
    assert "not a DICOM file (" in message or "holds no DICOM elements" in message


def test_file_meta_without_a_data_set_holds_no_elements(tmp_path):
    path = write(tmp_path, file_meta_only(ExplicitVRLittleEndian))
    with pytest.raises(UsageError, match="holds no DICOM elements"):
        read_query_file(path)


def test_random_bytes_never_pass(tmp_path):
    rng = random.Random(7)
    for size in (1, 7, 8, 12, 64, 132, 500):
        for _ in range(40):
            rejected(write(tmp_path, rng.randbytes(size)))


@pytest.mark.parametrize("implicit, little", [(False, True), (True, True), (False, False)])
def test_truncated_anywhere_but_between_elements_is_refused(tmp_path, implicit, little):
    """Cut a bare data set at every byte: only a cut between two top-level
    elements leaves a (shorter) data set; anything else is refused."""
    ds = identifier()
    pieces = [encode(Dataset({elem.tag: elem}), implicit=implicit, little=little)
              for elem in ds]
    data = b"".join(pieces)
    assert data == encode(ds, implicit=implicit, little=little)
    boundaries = {sum(map(len, pieces[:n])): n for n in range(1, len(pieces) + 1)}
    path = tmp_path / "cut.dcm"
    for cut in range(1, len(data)):
        path.write_bytes(data[:cut])
        if cut in boundaries:
            assert len(read_query_file(str(path))) == boundaries[cut]
        else:
            rejected(str(path), "not a DICOM file")


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, DeflatedExplicitVRLittleEndian])
def test_truncated_part10_files_are_refused(tmp_path, syntax):
    data = part10(identifier(), syntax)
    # (the last byte of a deflated file may be its pad byte, which can go)
    for cut in (5, 131, 140, 200, len(data) - 40, len(data) - 3, len(data) - 2):
        rejected(write(tmp_path, data[:cut]))


@pytest.mark.parametrize("extra", [b"\0", b"abc", b"\0" * 7, b"garbage!", b"x" * 13,
                                   LEVEL, ITEM_END, SEQ_END, ITEM])
def test_trailing_bytes_are_refused(tmp_path, extra):
    rejected(write(tmp_path, encode(identifier()) + extra), "not a DICOM file")


@pytest.mark.parametrize("data, reason", [
    (LEVEL + element(0x00100010, "QQ", b"DOE^J "), "unknown VR 'QQ'"),
    (element(0x00100010, "PN", b"DOE^J ") + LEVEL, "out of order"),
    (LEVEL + element(0x00200013, "IS", b"abc "), "'abc' is not a valid IS value"),
    (LEVEL + element(0x00101030, "DS", b"1.2.3 "), "is not a valid DS value"),
    (LEVEL + element(0x00280010, "US", b"abc"), "not a whole number of US values"),
    (LEVEL + element(0x00100010, "PN", b"DOE^J ")[:-1] + b"\xff" * 0, "runs past the end"),
    (LEVEL + ITEM + ITEM_END, "item tag outside a sequence"),
    (LEVEL + ITEM_END, "stray item delimiter"),
    (element(0x00000900, "US", b"\0\0") + LEVEL, "not a data set element"),
    (LEVEL + element(0x00100011, "LO", b"X "), "unknown tag (0010,0011)"),
    (nested(MAX_DEPTH + 1), f"nested deeper than {MAX_DEPTH} levels"),
    (nested(100_000), f"nested deeper than {MAX_DEPTH} levels"),
    (nested(3)[:-8], "truncated: a sequence or item is not closed"),
    (nested(3)[:-3], "truncated: a sequence or item is not closed"),
    # an item of 20 bytes holding an undefined-length sequence that is longer
    (LEVEL + element(0x00081110, "SQ", struct.pack("<HHL", 0xFFFE, 0xE000, 20)
                     + nested(1)[len(LEVEL):]), "not closed by byte 54, where its parent ends"),
    (LEVEL + struct.pack("<HH2sHL", 0x0008, 0x1110, b"SQ", 0, 0xFFFFFFFF)
     + (struct.pack("<HHL", 0xFFFE, 0xE000, 0) * 10_001) + SEQ_END, "more than 10000"),
    (LEVEL + element(0x00080060, "CS", b"CT")
     + element(0x00100010, "PN", b"A" * 60000)[:8], "runs past the end"),
])
def test_malformed_data_sets_are_refused(tmp_path, data, reason):
    rejected(write(tmp_path, data), reason)


def file_meta_only(syntax) -> bytes:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.2.2.1"
    meta.MediaStorageSOPInstanceUID = "1.2.3.4"
    meta.TransferSyntaxUID = syntax
    fp = DicomBytesIO()
    fp.is_implicit_VR, fp.is_little_endian = False, True
    write_file_meta_info(fp, meta)
    return bytes(128) + b"DICM" + fp.getvalue()


def test_inflation_bomb_is_refused_without_inflating_it(tmp_path):
    header = file_meta_only(DeflatedExplicitVRLittleEndian)
    squeezer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    payload = (element(0x00080052, "CS", b"STUDY ")
               + element(0x00091010, "OB", bytes(64 * 1024 * 1024)))
    bomb = squeezer.compress(payload) + squeezer.flush()
    assert len(bomb) < 200_000
    rejected(write(tmp_path, header + bomb), "larger than 16 MiB")


def test_a_huge_file_is_refused_unread(tmp_path):
    path = tmp_path / "huge.dcm"
    with open(path, "wb") as fh:  # sparse: costs no disk
        fh.truncate(17 * 1024 * 1024)
    rejected(str(path), "larger than 16 MiB")


def test_a_directory_or_fifo_is_not_read(tmp_path):
    rejected(str(tmp_path), "not a regular file")
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)  # opening it to read would block forever
    rejected(str(fifo), "not a regular file")
    rejected(str(tmp_path / "missing.dcm"), "no such file")


# ---------------------------------------------------------------- fuzz


SEED_FILES = [encode(identifier()), encode(identifier(), implicit=True),
              encode(identifier(), little=False), part10(identifier()), nested(4)]


@st.composite
def mutated(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(SEED_FILES)))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "insert", "delete", "cut", "dup"]))
        pos = draw(st.integers(0, len(data)))
        if kind == "flip" and pos < len(data):
            data[pos] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=12))
        elif kind == "delete":
            del data[pos:pos + draw(st.integers(1, 12))]
        elif kind == "cut":
            del data[pos:]
        elif kind == "dup":
            data[pos:pos] = data[pos:pos + draw(st.integers(1, 40))]
    return bytes(data)


@settings(max_examples=300, deadline=timedelta(seconds=2), database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.one_of(mutated(), st.binary(max_size=300)))
@example(data=nested(MAX_DEPTH + 1))
@example(data=b"\x08\x00\x05\x00CS\x0a\x00ISO_IR 100")
def test_any_bytes_give_a_usable_dataset_or_a_usage_error(tmp_path, data):
    path = write(tmp_path, data, "fuzz.dcm")
    try:
        ds = read_query_file(path)
    except UsageError as exc:
        assert "\n" not in str(exc)
        return
    # what was accepted goes through the rest of the preparation cleanly
    overrides = parse_keys(["PatientName=Müller*"])
    try:
        apply_keys(ds, overrides)
        choose_charset(path, ds, None, overrides)
        check_encodable(path, ds)
    except UsageError as exc:
        assert "\n" not in str(exc)


# ---------------------------------------------------------------- the command


@pytest.mark.parametrize("name", ["pdf", "gzip-magic", "random", "empty", "text"])
def test_the_command_stops_at_a_non_dicom_query_file(dimsekit, tmp_path, name):
    path = write(tmp_path, NOT_DICOM[name], f"{name}.dcm")
    result = dimsekit("find", "-S", "127.0.0.1", "9", path)
    assert_no_traceback(result)
    assert result.returncode == 2, result.stderr  # 3 would mean it tried to connect
    assert len(result.stderr_lines) == 1, result.stderr
    assert result.stderr_lines[0].startswith(f"E: cannot read query file '{path}': "
                                             "not a DICOM file (")


def test_the_command_stops_at_a_truncated_query_file(dimsekit, tmp_path):
    data = part10(identifier())
    path = write(tmp_path, data[:len(data) - 5], "cut.dcm")
    result = dimsekit("find", "-S", "127.0.0.1", "9", "-f", path)
    assert_no_traceback(result)
    assert result.returncode == 2
    assert len(result.stderr_lines) == 1
    assert result.stderr_lines[0].startswith(f"E: cannot read query file '{path}': "
                                             "not a DICOM file (")


@pytest.mark.parametrize("order", ["bad first", "good first"])
def test_a_good_query_file_is_not_sent_when_another_is_bad(dimsekit, scp, tmp_path, order):
    good = str(_query_file(tmp_path / "good.dcm", QueryRetrieveLevel="STUDY",
                           PatientName="A*"))
    bad = write(tmp_path, NOT_DICOM["pdf"], "bad.dcm")
    files = [bad, good] if order == "bad first" else [good, bad]
    result = dimsekit("find", "-S", "127.0.0.1", scp.port, *files)
    assert_no_traceback(result)
    assert result.returncode == 2
    assert len(result.stderr_lines) == 1 and "not a DICOM file" in result.stderr_lines[0]
    assert scp.associations == [] and scp.requests == []
