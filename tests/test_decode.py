"""find's identifier decoder gives the elements pydicom's reader gives.

Its splitter reads plain little endian identifiers itself and leaves the
rest (undefined lengths, odd VRs, truncated data) to pydicom; both ways
must yield the same raw elements, and a dataset that reads the same.
"""

from __future__ import annotations

import random
from io import BytesIO

import pytest
from identifiers import encode, identifier, mangle
from pydicom.filereader import data_element_generator
from pydicom.uid import (
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from dimsekit._internals.datasets import dataset_maker as _dataset_maker
from dimsekit._internals.datasets import element_splitter as _element_splitter
from dimsekit.qr.decode import decoder as _decoder

# mangled character sets: pydicom warns about each, as it should
pytestmark = pytest.mark.filterwarnings("ignore:Unknown encoding:UserWarning")


def pydicom_elements(data: bytes, implicit: bool):
    try:
        return {e.tag: e for e in data_element_generator(BytesIO(data), implicit, True)}
    except Exception as exc:  # noqa: BLE001 - compared, not hidden
        return type(exc)


@pytest.mark.parametrize("implicit", [False, True], ids=["explicit", "implicit"])
def test_splitter_yields_what_pydicom_reads_or_leaves_it_to_pydicom(implicit):
    rng = random.Random(4242)
    split = _element_splitter(implicit)
    syntax = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
    taken = 0
    for n in range(3000):
        data = identifier(rng, implicit, sequences=True)
        if n % 5 == 0:
            data = mangle(rng, data)
        ours = split(data)
        if ours is None:
            continue
        taken += 1
        theirs = pydicom_elements(data, implicit)
        if isinstance(theirs, type):  # pydicom refused its Specific Character Set
            assert _decoder(syntax)(data) is None
            continue
        assert ours == theirs, data
        assert [e.tag for e in ours.values()] == [e.tag for e in theirs.values()]
    # the fast way is the common way (odd binary lengths, non-numeric IS/DS
    # and malformed sequences are left to pydicom and the strict check)
    assert taken > 1000


def test_sequences_read_the_same_either_way():
    """An identifier with a defined-length sequence goes the fast way (its
    items looked over by the strict check), one with an undefined-length
    sequence pydicom's: the items read alike."""
    item = encode([(0x00080060, "CS", b"MR"), (0x00400001, "AE", b"SCANNER1")], False, True)
    defined = encode([(0x00400100, "SQ", b"\xfe\xff\x00\xe0" + len(item).to_bytes(4, "little")
                       + item)], False, True)
    undefined = encode([(0x00400100, "SQ", b"\xfe\xff\x00\xe0" + len(item).to_bytes(4, "little")
                         + item, True)], False, True)
    assert _element_splitter(False)(defined) is not None
    assert _element_splitter(False)(undefined) is None
    decode = _decoder(ExplicitVRLittleEndian)
    for data in (defined, undefined):
        step = decode(data).ScheduledProcedureStepSequence[0]
        assert (step.Modality, step.ScheduledStationAETitle) == ("MR", "SCANNER1")


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian,
                                    ExplicitVRBigEndian])
def test_garbage_decodes_to_a_dataset_or_none_never_an_exception(syntax):
    rng = random.Random(7)
    decode = _decoder(syntax)
    for _ in range(300):
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(40)))
        assert decode(data) is None or decode(data).__class__.__name__ == "Dataset"
    data = encode([(0x00100010, "PN", b"Doe^John")], syntax.is_implicit_VR,
                  syntax.is_little_endian)
    assert str(decode(data).PatientName) == "Doe^John"


@pytest.mark.parametrize("implicit,little", [(False, True), (True, True), (False, False)])
def test_made_datasets_are_what_the_constructor_builds(implicit, little):
    from pydicom.dataset import Dataset

    make = _dataset_maker(implicit, little)
    assert make.__name__ == "make"  # this pydicom passes the maker's own check
    elements = _element_splitter(False)(encode([(0x00100010, "PN", b"Doe^John")], False, True))
    encoding = ["iso8859", "utf-8"]
    made = make(elements, encoding)
    built = Dataset(elements)
    built.set_original_encoding(implicit, little, encoding)
    assert type(made) is Dataset and vars(made) == vars(built)
    assert made.original_encoding == (implicit, little)
    assert made.original_character_set == encoding
    other = make({}, encoding)
    made.private_block(0x0009, "DIMSEKIT", create=True).add_new(0x01, "LO", "x")
    assert other._private_blocks == {} and 0x00091001 not in other
    assert str(made.PatientName) == "Doe^John"


def test_the_installed_pydicom_and_pynetdicom_have_what_the_fast_path_uses():
    """Else every run would take the pure path (and the tests above would hold
    the fast path to nothing): the splitter makes RawDataElements as tuples,
    field by field, as pydicom 3.0 lays them out."""
    from pydicom.dataelem import RawDataElement

    from dimsekit._internals import _missing

    assert _missing() == ()
    data = encode([(0x00100010, "PN", b"Doe^John"), (0x00100020, "LO", b"")], False, True)
    made = list(_element_splitter(False)(data).values())
    assert [type(e) for e in made] == [RawDataElement] * 2
    assert made == [RawDataElement(0x00100010, "PN", 8, b"Doe^John", 8, False, True),
                    RawDataElement(0x00100020, "LO", 0, b"", 24, False, True)]
    assert (made[0].is_raw, made[0].is_buffered) == (True, False)
