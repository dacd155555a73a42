"""Property-based fuzz of the ``-k`` grammar and the find's query preparation.

Whatever a user types after ``-k``, the only outcomes allowed are a Dataset
(that can be encoded) or a :class:`~dimsekit.errors.UsageError` with one
line -- never another exception, never a hang or a runaway.  Keys are drawn
from random text and from plausible paths (keywords, tags in both syntaxes,
item indexes small, at the bound and huge, dots, brackets, ``=``,
backslashes, unicode, deep paths).
"""

from __future__ import annotations

import string
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset

from dimsekit.errors import UsageError
from dimsekit.keys import (
    MAX_DEPTH,
    MAX_ITEM_INDEX,
    apply_keys,
    build_identifier,
    parse_keys,
)
from dimsekit.qr.query import (
    check_encodable,
    choose_charset,
    downgrade_new_vrs,
)

# pydicom warns about odd character sets and replaced characters: not our concern here
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:pydicom")

# each example is small: the slowest allowed key (10,000 items) takes well
# under a second; the deadline catches anything quadratic or exponential
FUZZ = settings(max_examples=400, deadline=timedelta(seconds=3), database=None,
                suppress_health_check=[HealthCheck.too_slow])

SEQUENCES = ["ReferencedStudySequence", "ScheduledProcedureStepSequence", "BeamSequence",
             "(0040,0100)", "0008,1110", "(0029,1010)"]
ELEMENTS = ["PatientName", "PatientID", "Modality", "Columns", "AcquisitionIndex",
            "PixelData", "PatientWeight", "NumberOfLeafJawPairs", "DimensionIndexPointer",
            "TextValue", "SpecificCharacterSet", "EventTimeOffset", "SmallestImagePixelValue",
            "RecommendedDisplayFrameRateInFloat", "(0010,0010)", "0010,0020", "(0019,1001)",
            "(0011,0010)", "(7FE0,0010)", "ReferencedStudySequence", "BeamSequence"]
#: names that are wrong in some way
BAD_NAMES = ["OverlayData", "(0002,0010)", "(0000,0900)", "(FFFE,E000)", "(0010,0000)",
             "(0010,00ZZ)", "PatientNam", "Pätient", "", "*", "(", ")", ",", "0010,0010)",
             "Patient Name", "ＰatientName"]
ANY_TEXT = st.text(alphabet=st.characters(exclude_categories=()), max_size=40)


def weighted(good: st.SearchStrategy, *odd: st.SearchStrategy, share: int = 6):
    """``good`` about ``share`` times as often as each of the ``odd`` ones."""
    return st.sampled_from([good] * share + list(odd)).flatmap(lambda strategy: strategy)


INDEXES = weighted(
    st.integers(0, 3).map(str),
    st.integers(MAX_ITEM_INDEX - 2, MAX_ITEM_INDEX + 2).map(str),
    st.integers(0, 10**30).map(str),
    st.sampled_from(["", "*", "-1", " 1", "x", "0001000", "٣", "1.5", "9" * 5000,
                     "1" + "0" * 20]),
    share=12,
)
VALUES = weighted(
    st.sampled_from(["", "SMITH*", "Müller^Hans", "山田^太郎", "Иванов", "1\\2\\3\\4",
                     "1\\\\2", "00FFEA08", "(0010,0010)", "00100010", "PatientName",
                     "70000", "-1", "12", "1.5", "1e999", "nan", "\udcff", "a\nb",
                     "\\" * 50]),
    ANY_TEXT,
    st.text(alphabet="0123456789abcdefABCDEF \\-.eE+", max_size=30),
    share=4,
)
SEQUENCE_STEPS = weighted(
    st.tuples(st.sampled_from(SEQUENCES), INDEXES).map("{0[0]}[{0[1]}]".format),
    st.tuples(st.sampled_from(SEQUENCES + BAD_NAMES) | ANY_TEXT, INDEXES,
              st.sampled_from(["[{}", "{}]", "[[{}]]", "[{}]x", "{}", "[{}]"]))
    .map(lambda t: t[0] + t[2].format(t[1])),
    share=15,
)
LAST_STEPS = weighted(
    st.sampled_from(ELEMENTS),
    SEQUENCE_STEPS,
    st.sampled_from(BAD_NAMES) | ANY_TEXT,
    share=8,
)
DEPTHS = weighted(st.integers(1, 4), st.integers(MAX_DEPTH - 2, MAX_DEPTH + 2),
                  st.just(300), share=6)


@st.composite
def paths(draw) -> str:
    """1 to 4 steps, or about the depth bound, or far beyond it; a long path
    repeats one drawn step (drawing hundreds would make data generation the
    slow part)."""
    depth = draw(DEPTHS)
    if depth <= 4:
        steps = [draw(SEQUENCE_STEPS) for _ in range(depth - 1)]
    else:
        steps = [draw(SEQUENCE_STEPS)] * (depth - 1)
    steps.append(draw(LAST_STEPS))
    return draw(weighted(st.just("."), st.sampled_from(["..", "", ". "]), share=20)).join(steps)


KEYS = weighted(
    st.tuples(paths(), VALUES).map("=".join),
    paths(),
    ANY_TEXT,
    st.text(alphabet=string.printable + "[].=\\()äé山", max_size=60),
    share=10,
)


def _one_line_usage_error(exc: UsageError) -> None:
    message = str(exc)
    assert message and "\n" not in message and "\r" not in message, message
    assert len(message) < 2000


def prepare(ds: Dataset, overrides) -> Dataset:
    """What the find does with an identifier before the network."""
    downgrade_new_vrs(ds.copy())  # -u on a copy: both paths must hold
    choose_charset("-k", ds, None, overrides)
    check_encodable("-k", ds)
    return ds


def outcome(texts: list[str]) -> Dataset | None:
    """A prepared Dataset, or None for a (well-formed) UsageError."""
    try:
        overrides = parse_keys(texts)
        ds = build_identifier(overrides)
        assert isinstance(ds, Dataset)
        # apply_keys on top of a dataset that already holds the keys' elements
        apply_keys(ds, overrides)
        prepare(ds, overrides)
        event("dataset" + (" (deep)" if max(len(o.path) for o in overrides) > 8 else ""))
        return ds
    except UsageError as exc:
        _one_line_usage_error(exc)
        event("usage error: " + str(exc).rpartition(": ")[2][:12])
        return None


@FUZZ
@given(st.lists(KEYS, min_size=1, max_size=3))
@example(["ReferencedStudySequence[1000000].PatientID="])
@example(["ReferencedStudySequence[12345678901234567890].PatientID="])
@example([".".join(["ReferencedStudySequence[0]"] * 64) + ".PatientID="])
@example([".".join(["ReferencedStudySequence[0]"] * 63) + ".PatientName=Müller"])
@example([".".join(["ReferencedStudySequence[0]"] * 299) + ".PatientID="])
@example([".".join(["ReferencedStudySequence[155]"] * 63) + ".PatientName=山田"])
@example(["ReferencedStudySequence[1000]=", "BeamSequence[1000].BeamNumber=1"])
@example(["PatientName=\udcff"])
@example(["Patient\nName=X"])
def test_keys_make_a_dataset_or_a_usage_error(texts):
    outcome(texts)


@FUZZ
@given(KEYS)
def test_a_key_parsed_alone_or_among_others_fails_alike(text):
    """parse_keys stops at the first bad key with that key's own message."""
    try:
        parse_keys([text])
    except UsageError as exc:
        alone = str(exc)
        with pytest.raises(UsageError) as info:
            parse_keys(["PatientID=", text])
        assert str(info.value) == alone
    else:
        parse_keys(["PatientID=", text])


@settings(max_examples=40, deadline=timedelta(seconds=5), database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(depth=st.integers(1, MAX_DEPTH), width=st.integers(1, MAX_ITEM_INDEX + 1),
       text=st.sampled_from(["SMITH", "Müller", "山田", "\udcff"]),
       charset=st.sampled_from([None, "ISO_IR 100", "ISO_IR 192", "ISO 2022 IR 87"]))
def test_deep_and_wide_identifiers_prepare_in_bounded_time(depth, width, text, charset):
    """Deep (up to 64 levels) and wide (up to 1,001 items) identifiers, text
    in every item: charset choice and the encodability check never recurse
    without bound, never time out, and fail only with a usage error."""
    ds = Dataset()
    level = ds
    for _ in range(depth - 1):
        level.ReferencedStudySequence = [Dataset()]
        level = level.ReferencedStudySequence[0]
    items = [Dataset() for _ in range(width)]
    for item in items:
        item.PatientName = text
    level.ReferencedStudySequence = items
    try:
        choose_charset("-k", ds, charset, [])
        check_encodable("-k", ds)
    except UsageError as exc:
        _one_line_usage_error(exc)
