"""Tests for dimsekit.keys, the host's -k machinery.

The manual examples are the command lines of the two seed manuals, copied
verbatim; ``shlex.split`` turns each into the argv a POSIX shell would pass,
and the ``-k`` arguments are taken from there.  Expected datasets are built
with pydicom directly.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence

from dimsekit.errors import ExitCode, UsageError
from dimsekit.keys import (
    KeyOverride,
    apply_keys,
    build_identifier,
    parse_key,
    parse_keys,
)

# ---------------------------------------------------------------- helpers


def canon(ds: Dataset) -> list:
    """A comparable, strict form: tag, VR, value type and value, recursively."""
    out = []
    for elem in ds:
        value = elem.value
        if elem.VR == "SQ":
            out.append((elem.tag, "SQ", [canon(item) for item in value]))
            continue
        if isinstance(value, MultiValue):
            value = [(type(v).__name__, str(v) if elem.VR in ("IS", "DS", "PN") else v)
                     for v in value]
        elif value is not None:
            value = (type(value).__name__, str(value) if elem.VR in ("IS", "DS", "PN") else value)
        out.append((elem.tag, str(elem.VR), value))
    return out


def ks(command_line: str) -> list[str]:
    """The -k arguments of a command line, as a POSIX shell passes them."""
    argv = shlex.split(command_line)
    return [argv[i + 1] for i, arg in enumerate(argv) if arg in ("-k", "--key")]


def seq(*items: Dataset) -> Sequence:
    return Sequence(list(items))


def item(**kwargs) -> Dataset:
    ds = Dataset()
    for keyword, value in kwargs.items():
        setattr(ds, keyword, value)
    return ds


def make(*elements: tuple) -> Dataset:
    """Dataset from (tag, VR, value) triples."""
    ds = Dataset()
    for tag, vr, value in elements:
        ds.add_new(tag, vr, value)
    return ds


def patqry() -> Dataset:
    """DCMTK manual's patqry.dcm: QueryRetrieveLevel PATIENT, empty name and ID."""
    return item(QueryRetrieveLevel="PATIENT", PatientName="", PatientID="")


# ------------------------------------------------- manual examples, verbatim

HEWETT = item(PatientName="HEWETT*")

DCMTK_EXAMPLES = [
    ('findscu -P -k "(0010,0010)=HEWETT*" caesar 5678 patqry.dcm', HEWETT),
    ('findscu -P -k PatientName="HEWETT*" caesar 5678 patqry.dcm', HEWETT),
    # the old syntax the manual describes ("0010,0010" instead of "(0010,0010)"),
    # written as in the synopsis: gggg,eeee="str"
    ('findscu -P -k 0010,0010="HEWETT*" caesar 5678 patqry.dcm', HEWETT),
    (
        'findscu -W -k "(0040,0100)[0].Modality=CT" caesar 5678',
        item(ScheduledProcedureStepSequence=seq(item(Modality="CT"))),
    ),
]

PYNETDICOM_EXAMPLES = [
    (
        "python -m pynetdicom findscu 11112 -k QueryRetrieveLevel=PATIENT -k PatientName=",
        item(QueryRetrieveLevel="PATIENT", PatientName=""),
    ),
    ("-k QueryRetrieveLevel=PATIENT -k PatientName=",
     item(QueryRetrieveLevel="PATIENT", PatientName="")),
    ("-k (0008,0052)=PATIENT -k (0010,0010)=", item(QueryRetrieveLevel="PATIENT", PatientName="")),
    (
        "-k OtherPatientIDsSequence[2].PatientID=12345678",
        item(OtherPatientIDsSequence=seq(Dataset(), Dataset(), item(PatientID="12345678"))),
    ),
    ("-k PatientName=", item(PatientName="")),
    ("-k (0010,0010)=", item(PatientName="")),
    ("-k PatientName=Citizen^Jan", item(PatientName="Citizen^Jan")),
    ("-k (0010,0010)=Citizen^Jan", item(PatientName="Citizen^Jan")),
    ("-k Columns=1024", make((0x00280011, "US", 1024))),
    ("-k PixelData=00FFEA08", make((0x7FE00010, "OW", b"\x00\xff\xea\x08"))),
    ("-k AcquisitionIndex=1\\\\2\\\\3\\\\4", make((0x00209518, "US", [1, 2, 3, 4]))),
    ("-k BeamSequence=", item(BeamSequence=seq())),
    ("-k (300a,00b0)=", item(BeamSequence=seq())),
    ("-k BeamSequence[0]=", item(BeamSequence=seq(Dataset()))),
    ("-k BeamSequence[3]=", item(BeamSequence=seq(Dataset(), Dataset(), Dataset(), Dataset()))),
    (
        "-k BeamSequence[0].PatientName=CITIZEN^Jan",
        item(BeamSequence=seq(item(PatientName="CITIZEN^Jan"))),
    ),
    (
        "-k BeamSequence[0].BeamLimitingDeviceSequence[0].NumberOfLeafJawPairs=1",
        item(
            BeamSequence=seq(
                item(BeamLimitingDeviceSequence=seq(item(NumberOfLeafJawPairs="1")))
            )
        ),
    ),
]


@pytest.mark.parametrize(
    "command_line, expected",
    DCMTK_EXAMPLES + PYNETDICOM_EXAMPLES,
    ids=[c for c, _ in DCMTK_EXAMPLES + PYNETDICOM_EXAMPLES],
)
def test_manual_examples(command_line, expected):
    keys = ks(command_line)
    assert keys, command_line
    got = build_identifier(parse_keys(keys))
    assert canon(got) == canon(expected)
    assert got == expected


def test_manual_examples_on_query_file():
    # DCMTK: "cause any PatientName attribute in patqry.dcm to have the value
    # HEWETT*. If such an attribute is present it will be replaced"
    for line, _ in DCMTK_EXAMPLES[:3]:
        ds = patqry()
        assert apply_keys(ds, parse_keys(ks(line))) is ds
        assert canon(ds) == canon(
            item(QueryRetrieveLevel="PATIENT", PatientName="HEWETT*", PatientID="")
        )


def test_acquisition_index_shell_and_literal_backslashes():
    # through a shell: 1\2\3\4; unprocessed (single quotes, no shell): 1\\2\\3\\4
    expected = canon(make((0x00209518, "US", [1, 2, 3, 4])))
    assert canon(build_identifier([parse_key("AcquisitionIndex=1\\2\\3\\4")])) == expected
    assert canon(build_identifier([parse_key("AcquisitionIndex=1\\\\2\\\\3\\\\4")])) == expected


def test_quotes_are_part_of_the_value():
    # pynetdicom: PatientName="Citizen^Jan" (arriving with its quotes) keeps them
    ds = build_identifier(parse_keys(['PatientName="Citizen^Jan"']))
    assert ds.PatientName == '"Citizen^Jan"'


# ---------------------------------------------------------- grammar details


@pytest.mark.parametrize(
    "text, path, value",
    [
        ("(0010,0010)=SMITH*", ((0x00100010, None),), "SMITH*"),
        ("0010,0010=SMITH*", ((0x00100010, None),), "SMITH*"),
        ("PatientName=SMITH*", ((0x00100010, None),), "SMITH*"),
        ("PatientName", ((0x00100010, None),), None),
        ("PatientName=", ((0x00100010, None),), ""),
        ("PatientName=A=B", ((0x00100010, None),), "A=B"),
        ("(0040,0100)[0].Modality=CT", ((0x00400100, 0), (0x00080060, None)), "CT"),
        ("ScheduledProcedureStepSequence[0].Modality=CT",
         ((0x00400100, 0), (0x00080060, None)), "CT"),
        ("(0040,0100)[0].(0008,0060)=CT", ((0x00400100, 0), (0x00080060, None)), "CT"),
        ("0040,0100[0].0008,0060=CT", ((0x00400100, 0), (0x00080060, None)), "CT"),
        ("(300a,00b0)=", ((0x300A00B0, None),), ""),
        ("(300A,00B0)=", ((0x300A00B0, None),), ""),
        ("BeamSequence[12]", ((0x300A00B0, 12),), None),
        ("(0009,1001)=x", ((0x00091001, None),), "x"),
    ],
)
def test_parse_key(text, path, value):
    key = parse_key(text)
    assert key == KeyOverride(text=text, path=path, value=value)
    with pytest.raises(AttributeError):
        key.value = "other"  # frozen


def build(*texts: str) -> list:
    return canon(build_identifier(parse_keys(texts)))


@pytest.mark.parametrize(
    "texts, expected",
    [
        (["PatientName"], item(PatientName="")),
        (["PatientName=A=B"], item(PatientName="A=B")),
        (["(0040,0100)[0].(0008,0060)=CT"],
         item(ScheduledProcedureStepSequence=seq(item(Modality="CT")))),
        (["0040,0100[0].0008,0060=CT"],
         item(ScheduledProcedureStepSequence=seq(item(Modality="CT")))),
        (["(300A,00B0)"], item(BeamSequence=seq())),
        (["BeamSequence[1]"], item(BeamSequence=seq(Dataset(), Dataset()))),
        (["ModalitiesInStudy=CT\\MR"], item(ModalitiesInStudy=["CT", "MR"])),
        (["ModalitiesInStudy=CT\\\\MR"], item(ModalitiesInStudy=["CT", "MR"])),
        (["StudyDate=20200101-20201231"], item(StudyDate="20200101-20201231")),
        (["PixelSpacing=0.5\\0.25"], item(PixelSpacing=["0.5", "0.25"])),
        (["PatientWeight=72.5"], item(PatientWeight="72.5")),
        (["NumberOfFrames=12"], item(NumberOfFrames="12")),
        (["Columns="], make((0x00280011, "US", None))),
        (["PixelData="], make((0x7FE00010, "OW", None))),
        (["RecommendedDisplayFrameRateInFloat=29.97"], make((0x00089459, "FL", 29.97))),
        (["EventTimeOffset=-1.5"], make((0x00082134, "FD", -1.5))),
        (["SmallestImagePixelValue=5"], make((0x00280106, "US", 5))),
        (["SmallestImagePixelValue=-5"], make((0x00280106, "SS", -5))),
        (["DimensionIndexPointer=00100010"], make((0x00209165, "AT", 0x00100010))),
        (["DimensionIndexPointer=PatientID"], make((0x00209165, "AT", 0x00100020))),
        (["DimensionIndexPointer=(0010,0010)\\0010,0020\\StudyDate"],
         make((0x00209165, "AT", [0x00100010, 0x00100020, 0x00080020]))),
        (["(6000,3000)=00ff"], make((0x60003000, "OW", b"\x00\xff"))),
        (["(6002,0010)=512"], make((0x60020010, "US", 512))),
        (["(0009,0010)=ACME", "(0009,1001)=x"],
         make((0x00090010, "LO", "ACME"), (0x00091001, "LO", "x"))),
        (["(0009,1002)[0].PatientName=X"], make((0x00091002, "SQ", [item(PatientName="X")]))),
        (["OtherPatientIDsSequence[2].PatientID=C", "OtherPatientIDsSequence[0].PatientID=A"],
         item(OtherPatientIDsSequence=seq(item(PatientID="A"), Dataset(), item(PatientID="C")))),
        (["PatientName=A", "PatientName=B"], item(PatientName="B")),
        (["BeamSequence[0].PatientName=X", "BeamSequence="], item(BeamSequence=seq())),
    ],
    ids=lambda v: "|".join(v) if isinstance(v, list) else None,
)
def test_build(texts, expected):
    assert build(*texts) == canon(expected)


def test_binary_numbers_are_python_numbers():
    got = build_identifier(parse_keys(["EventTimeOffset=-1.5"]))
    assert isinstance(got.EventTimeOffset, float)
    got = build_identifier(parse_keys(["Columns=1024", "AcquisitionIndex=1\\2"]))
    assert type(got.Columns) is int and list(got.AcquisitionIndex) == [1, 2]


def test_nested_paths_any_depth():
    text = (
        "BeamSequence[1].ControlPointSequence[0]"
        ".BeamLimitingDevicePositionSequence[2].LeafJawPositions=-10.5\\10.5"
    )
    positions = item(LeafJawPositions=["-10.5", "10.5"])
    expected = item(
        BeamSequence=seq(
            Dataset(),
            item(
                ControlPointSequence=seq(
                    item(BeamLimitingDevicePositionSequence=seq(Dataset(), Dataset(), positions))
                )
            ),
        )
    )
    assert build(text) == canon(expected)
    assert len(parse_key(text).path) == 4


def test_no_validation_warnings_for_query_values():
    # wildcards, ranges, lower-case CS: query values pydicom would warn about
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build_identifier(
            parse_keys(
                [
                    "QueryRetrieveLevel=patient",
                    "StudyDate=20200101-",
                    "StudyTime=0800-1200",
                    "PatientName=" + "X" * 80,
                    "StudyInstanceUID=1.2.3*",
                ]
            )
        )


# ------------------------------------------------------ on top of a dataset


def test_apply_keeps_other_elements_and_replaces():
    ds = patqry()
    ds.PatientBirthDate = "19700101"
    apply_keys(ds, parse_keys(["PatientName=SMITH*", "PatientID", "StudyDate=20200101"]))
    assert canon(ds) == canon(
        item(
            QueryRetrieveLevel="PATIENT",
            PatientName="SMITH*",
            PatientID="",
            PatientBirthDate="19700101",
            StudyDate="20200101",
        )
    )


def test_apply_into_existing_sequence_keeps_item_contents():
    ds = item(
        ScheduledProcedureStepSequence=seq(
            item(ScheduledStationAETitle="CT1", Modality="MR")
        )
    )
    apply_keys(ds, parse_keys(["(0040,0100)[0].Modality=CT", "(0040,0100)[2]="]))
    assert canon(ds) == canon(
        item(
            ScheduledProcedureStepSequence=seq(
                item(ScheduledStationAETitle="CT1", Modality="CT"), Dataset(), Dataset()
            )
        )
    )
    # Seq[n]= keeps an existing item as it is; Seq= replaces by an empty sequence
    apply_keys(ds, parse_keys(["ScheduledProcedureStepSequence[0]="]))
    assert ds.ScheduledProcedureStepSequence[0].ScheduledStationAETitle == "CT1"
    apply_keys(ds, parse_keys(["ScheduledProcedureStepSequence="]))
    assert len(ds.ScheduledProcedureStepSequence) == 0


def test_apply_keeps_existing_vr_of_ambiguous_element():
    ds = make((0x00280106, "SS", -3))
    apply_keys(ds, parse_keys(["SmallestImagePixelValue=5"]))
    assert canon(ds) == canon(make((0x00280106, "SS", 5)))


def test_private_vr_from_creator_in_dataset():
    ds = make((0x00190010, "LO", "GEMS_DL_IMG_01"))
    apply_keys(ds, parse_keys(["(0019,1042)=512"]))
    assert canon(ds) == canon(make((0x00190010, "LO", "GEMS_DL_IMG_01"), (0x00191042, "US", 512)))
    with pytest.raises(UsageError, match=r"^bad -k '\(0019,1042\)=big': "):
        apply_keys(ds, parse_keys(["(0019,1042)=big"]))


def test_private_vr_from_existing_element():
    ds = make((0x00091001, "SH", "old"))
    apply_keys(ds, parse_keys(["(0009,1001)=new"]))
    assert canon(ds) == canon(make((0x00091001, "SH", "new")))


def test_apply_on_file_read_back(tmp_path: Path):
    from pydicom import dcmread
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    src = patqry()
    src.ScheduledProcedureStepSequence = seq(item(ScheduledStationAETitle="CT1"))
    src.file_meta = Dataset()
    src.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    src.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.2.1.1"
    src.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    path = tmp_path / "q.dcm"
    src.save_as(path, enforce_file_format=True)
    ds = dcmread(path)
    apply_keys(ds, parse_keys(["PatientName=HEWETT*", "(0040,0100)[0].Modality=CT"]))
    assert ds.QueryRetrieveLevel == "PATIENT" and ds.PatientID == ""
    assert ds.PatientName == "HEWETT*"
    assert ds.ScheduledProcedureStepSequence[0].ScheduledStationAETitle == "CT1"
    assert ds.ScheduledProcedureStepSequence[0].Modality == "CT"


def test_apply_accepts_strings_and_build_is_fresh():
    assert canon(apply_keys(Dataset(), ["PatientName=X"])) == canon(item(PatientName="X"))
    keys = parse_keys(["PatientName=X"])
    first, second = build_identifier(keys), build_identifier(keys)
    assert first is not second and first == second


def test_parse_keys_order_and_empty():
    assert parse_keys([]) == []
    assert [k.text for k in parse_keys(["PatientName", "PatientID="])] == [
        "PatientName",
        "PatientID=",
    ]


# ------------------------------------------------------------------ errors


ERRORS = [
    ("PatientNam=X", "unknown keyword 'PatientNam'"),
    ("PatientNam", "unknown keyword 'PatientNam'"),
    ("BeamSequence[0].PatientNam=X", "unknown keyword 'PatientNam'"),
    ("(0010,001G)=X", "bad tag '(0010,001G)'"),
    ("(001,0010)=X", "bad tag"),
    ("(00100,010)=X", "bad tag"),
    ("(0010;0010)=X", "bad tag"),
    ("(0010,0010=X", "unbalanced parentheses"),
    ("0010,0010)=X", "unbalanced parentheses"),
    ("00100010=X", "bad tag or keyword '00100010'"),
    ("Patient-Name=X", "bad tag or keyword"),
    ("", "missing tag or keyword"),
    ("=X", "missing tag or keyword before '='"),
    ("BeamSequence[x]=", "bad item index '[x]'"),
    ("BeamSequence[-1]=", "bad item index '[-1]'"),
    ("BeamSequence[]=", "bad item index '[]'"),
    ("BeamSequence[ 1]=", "bad item index"),
    ("BeamSequence[*].PatientName=X", "wildcard"),
    ("BeamSequence[0=", "unbalanced brackets"),
    ("BeamSequence0]=", "unbalanced brackets"),
    ("BeamSequence[0]]=", "unbalanced brackets"),
    ("BeamSequence[[0]=", "unbalanced brackets"),
    ("BeamSequence][0=", "unbalanced brackets"),
    ("BeamSequence[0]x=", "unexpected text after ']'"),
    ("[0].PatientName=X", "missing tag or keyword before '['"),
    ("BeamSequence[0]..PatientName=X", "empty path component"),
    ("BeamSequence[0].=X", "empty path component"),
    (".PatientName=X", "empty path component"),
    ("Columns=abc", "'abc' is not an integer"),
    ("Columns=1.5", "'1.5' is not an integer"),
    ("Columns=70000", "between 0 and 65535"),
    ("Columns=-1", "between 0 and 65535"),
    ("AcquisitionIndex=1\\x\\3", "'x' is not an integer"),
    ("AcquisitionIndex=1\\2\\", "'' is not an integer"),
    ("RecommendedDisplayFrameRateInFloat=fast", "'fast' is not a number"),
    ("EventTimeOffset=1,5", "'1,5' is not a number"),
    ("NumberOfLeafJawPairs=1.5", "'1.5' is not an integer string"),
    ("NumberOfLeafJawPairs=*", "'*' is not an integer string"),
    ("PatientWeight=heavy", "'heavy' is not a decimal string"),
    ("PixelData=0G", "is not hex bytes"),
    ("PixelData=ABC", "is not hex bytes"),
    ("PixelData=0x00FF", "is not hex bytes"),
    ("DimensionIndexPointer=NotAKeyword", "'NotAKeyword' is not a tag"),
    ("DimensionIndexPointer=(0010,00GG)", "is not a tag"),
    ("PatientName[0]=X", "PatientName is not a sequence (VR PN)"),
    ("PatientName[0].PatientID=X", "PatientName is not a sequence"),
    ("(0010,0010)[0].PatientID=X", "(0010,0010) is not a sequence"),
    ("PatientName.PatientID=X", "PatientName is not a sequence"),
    ("BeamSequence.PatientName=X", "sequence BeamSequence needs an item index"),
    ("BeamSequence=X", "BeamSequence is a sequence and takes no value"),
    ("BeamSequence[0]=X", "BeamSequence is a sequence and takes no value"),
    ("(300a,00b0)=X", "(300a,00b0) is a sequence and takes no value"),
    ("OverlayData=00", "repeating-group element"),
    ("(0002,0010)=1.2.840.10008.1.2", "file meta element"),
    ("(0000,0900)=0", "command element"),
    ("(FFFE,E000)=", "item element"),
    ("(0010,0000)=", "group length element"),
]


@pytest.mark.parametrize("text, reason", ERRORS, ids=[t or "<empty>" for t, _ in ERRORS])
def test_errors(text, reason):
    with pytest.raises(UsageError) as info:
        parse_key(text)
    message = str(info.value)
    assert message.startswith(f"bad -k '{text}': "), message
    assert reason in message
    assert "\n" not in message
    assert info.value.exit_code == ExitCode.USAGE
    # parse_keys fails the same way, naming the bad key among good ones
    with pytest.raises(UsageError) as info2:
        parse_keys(["PatientID=", text])
    assert str(info2.value) == message


def test_error_message_example_from_brief():
    with pytest.raises(UsageError) as info:
        parse_key("PatientNam=X")
    assert str(info.value).startswith("bad -k 'PatientNam=X': unknown keyword 'PatientNam'")
    assert "did you mean 'PatientName'" in str(info.value)


def test_error_names_key_with_backslashes_verbatim():
    text = "AcquisitionIndex=1\\x"
    with pytest.raises(UsageError) as info:
        parse_key(text)
    assert str(info.value).startswith("bad -k 'AcquisitionIndex=1\\x': ")


def test_apply_errors_name_the_key():
    with pytest.raises(UsageError, match=r"^bad -k 'Columns=abc': "):
        apply_keys(Dataset(), ["Columns=abc"])


# ------------------------------------------------------------------ import


def test_import_does_not_load_pydicom():
    src = Path(__file__).resolve().parents[1] / "src"
    env = dict(os.environ, PYTHONPATH=str(src))
    code = (
        "import sys, dimsekit.keys; "
        "bad = [m for m in ('pydicom', 'pynetdicom') if m in sys.modules]; "
        "sys.exit(f'imported at import time: {bad}' if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# ------------------------------------------------------------------ bounds


def _deep(levels: int, leaf: str = "PatientID=") -> str:
    return ".".join(["ReferencedStudySequence[0]"] * (levels - 1) + [leaf])


@pytest.mark.parametrize("text, reason", [
    ("ReferencedStudySequence[1001]=", "item index [1001] is too large (at most 1000)"),
    ("ReferencedStudySequence[1000000].PatientID=", "item index [1000000] is too large"),
    ("ReferencedStudySequence[12345678901234567890].PatientID=", "is too large"),
    ("ReferencedStudySequence[" + "9" * 6000 + "]=", "is too large"),  # > int()'s digit limit
    ("ReferencedStudySequence[00000000000000001001]=", "is too large"),
    (_deep(65), "path is 65 levels deep (at most 64)"),
    (_deep(300), "path is 300 levels deep (at most 64)"),
    (".".join(["ReferencedStudySequence[999]"] * 11) + "=", "would create 11000 sequence items"),
])
def test_bounds_are_usage_errors_while_parsing(text, reason):
    with pytest.raises(UsageError) as info:
        parse_key(text)
    message = str(info.value)
    assert message.startswith("bad -k '") and reason in message, message
    assert "\n" not in message and len(message) < 1000  # a long key is shown shortened


def test_at_the_bounds_keys_work():
    assert parse_key("ReferencedStudySequence[1000]=").path[0][1] == 1000
    assert parse_key("ReferencedStudySequence[0001000]=").path[0][1] == 1000
    ds = build_identifier([_deep(64, "PatientName=Müller")])
    level, depth = ds, 1
    while "ReferencedStudySequence" in level:
        level, depth = level.ReferencedStudySequence[0], depth + 1
    assert depth == 64 and level.PatientName == "Müller"
    wide = build_identifier(["ReferencedStudySequence[1000].PatientID=X"])
    assert len(wide.ReferencedStudySequence) == 1001


def test_keys_together_create_at_most_10000_items():
    keys = [f"{name}[999]=" for name in ("ReferencedStudySequence", "BeamSequence",
                                         "ReferencedSeriesSequence", "ReferencedImageSequence",
                                         "ScheduledProcedureStepSequence",
                                         "ReferencedPatientSequence", "ProcedureCodeSequence",
                                         "ReferencedVisitSequence", "OtherPatientIDsSequence",
                                         "ReferencedInstanceSequence", "RequestAttributesSequence")]
    overrides = parse_keys(keys)  # each alone is fine
    with pytest.raises(UsageError, match=r"^bad -k 'RequestAttributesSequence\[999\]=': "
                                         r"the keys would create more than 10000"):
        build_identifier(overrides)
    # items that already exist are not created again
    ds = build_identifier(keys[:9] + ["ReferencedStudySequence[999].PatientID=X"] * 50)
    assert ds.ReferencedStudySequence[999].PatientID == "X"


def test_a_key_with_a_newline_still_makes_a_one_line_error():
    with pytest.raises(UsageError) as info:
        parse_key("Patient\nName=X")
    assert "\n" not in str(info.value)
    assert str(info.value).startswith("bad -k 'Patient\\nName=X': ")


# ------------------------------------------------------------ the command


def _run_bounded(*args: str) -> tuple:
    """``dimsekit ARGS`` in a subprocess under a 2 GiB address-space and a
    30 s CPU limit (a runaway dies instead of eating the machine); returns
    (exit code, stderr lines, wall seconds, peak RSS in MiB)."""
    import resource
    import tempfile
    import time

    from dimsekit.testing.cli import DIMSEKIT_COMMAND

    with tempfile.TemporaryFile() as err:
        start = time.monotonic()
        proc = subprocess.Popen([*DIMSEKIT_COMMAND, *args], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=err)
        try:  # (set from here, not in the child: no preexec_fn in a threaded test run)
            resource.prlimit(proc.pid, resource.RLIMIT_AS, (2 << 30, 2 << 30))
            resource.prlimit(proc.pid, resource.RLIMIT_CPU, (30, 30))
        except ProcessLookupError:  # already gone
            pass
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.monotonic() - start
        err.seek(0)
        lines = [line for line in err.read().decode("utf-8", "replace").splitlines()
                 if line.strip()]
    return proc.returncode, lines, seconds, usage.ru_maxrss / 1024


@pytest.mark.parametrize("key, reason", [
    ("ReferencedStudySequence[1000000].PatientID=", "item index [1000000] is too large"),
    ("ReferencedStudySequence[12345678901234567890].PatientID=", "is too large"),
    (_deep(65), "path is 65 levels deep (at most 64)"),
    (_deep(300), "path is 300 levels deep (at most 64)"),
])
def test_the_command_refuses_out_of_bounds_keys_quickly_and_small(key, reason):
    # port 9: nothing listens, so an attempt to connect would be exit 3
    code, lines, seconds, peak_mib = _run_bounded("find", "-k", key, "127.0.0.1", "9")
    assert code == 2, lines
    assert len(lines) == 1 and lines[0].startswith("E: bad -k '") and reason in lines[0], lines
    assert not any("Traceback" in line for line in lines)
    # before: 25 s and 622 MiB for [1000000]; 24 GB and counting for 300 levels
    assert seconds < 10 and peak_mib < 200, (seconds, peak_mib)


def test_the_command_prepares_keys_at_the_bounds_quickly():
    """64 levels deep, and 9,828 items: prepared in a moment; exit 3 shows it
    got as far as connecting."""
    deep = _deep(64, "PatientName=Müller")
    wide = ".".join(["ReferencedStudySequence[155]"] * 63 + ["PatientName=山田"])
    for key in (deep, wide):
        code, lines, seconds, peak_mib = _run_bounded("find", "-k", key, "127.0.0.1", "9")
        assert code == 3, lines
        assert seconds < 10 and peak_mib < 300, (seconds, peak_mib)


def test_keys_at_the_bounds_reach_the_peer(dimsekit, scp):
    result = dimsekit("find", "-W", "-k", _deep(64, "PatientName=Müller"),
                      "-k", "BeamSequence[1000].BeamNumber=7", "127.0.0.1", scp.port)
    assert result.returncode == 0, result.stderr
    level, depth = scp.requests[0].identifier, 1
    assert len(level.BeamSequence) == 1001 and level.BeamSequence[1000].BeamNumber == 7
    while "ReferencedStudySequence" in level:
        level, depth = level.ReferencedStudySequence[0], depth + 1
    assert depth == 64 and level.PatientName == "Müller"


def test_hand_made_overrides_are_held_to_the_same_bounds():
    tag = 0x00081110  # ReferencedStudySequence
    deep = KeyOverride("deep", ((tag, 0),) * 65 + ((0x00100020, None),), "")
    with pytest.raises(UsageError, match="path is 66 levels deep"):
        apply_keys(Dataset(), [deep])
    huge = KeyOverride("huge", ((tag, 10**9),), None)
    with pytest.raises(UsageError, match="too large"):
        apply_keys(Dataset(), [huge])
