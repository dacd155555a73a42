"""Model inference and extended-negotiation bytes, as plain functions."""

import pytest

from dimsekit.qr.models import FLAGS, application_information, infer_model


@pytest.mark.parametrize("level, model", [
    (None, "worklist"), ("PATIENT", "patient"), ("patient ", "patient"),
    ("STUDY", "study"), ("SERIES", "study"), ("IMAGE", "study"), ("", "study"),
])
def test_inference(level, model):
    assert infer_model(level)[0] == model


def test_application_information_sets_only_the_requested_bytes():
    info, skipped = application_information(FLAGS, "study", {"fuzzy-names", "dt-matching"})
    assert info == bytes([0, 1, 1, 0, 0]) and skipped == []


def test_worklist_skips_qr_only_flags_and_sets_its_reserved_bytes():
    # PS3.4 K.5.1: 01 01 <fuzzy> <timezone>
    info, skipped = application_information(FLAGS, "worklist",
                                            {"relational-query", "timezone-adj"})
    assert info == bytes([1, 1, 0, 1]) and skipped == ["relational-query"]
    assert application_information(FLAGS, "worklist", {"fuzzy-names"})[0] == bytes(
        [1, 1, 1, 0])


def test_worklist_with_only_qr_flags_sends_nothing():
    assert application_information(FLAGS, "worklist", {"dt-matching"}) == (
        b"", ["dt-matching"])


def test_ups_takes_every_flag_in_the_qr_layout():
    names = {f.name for f in FLAGS}
    assert application_information(FLAGS, "ups", names) == (bytes([1] * 5), [])
    assert application_information(FLAGS, "ups", {"dt-matching"}) == (
        bytes([0, 1, 0, 0, 0]), [])


def test_a_plugin_flag_for_every_model_keeps_the_worklist_reserved_bytes():
    from dimsekit.api import ExtendedNegotiationFlag

    extra = ExtendedNegotiationFlag("sixth-byte", "find", 5, "set byte 6")
    assert application_information((*FLAGS, extra), "worklist", {"sixth-byte"}) == (
        bytes([1, 1, 0, 0, 0, 1]), [])
    assert application_information([extra], "study", {"sixth-byte"}) == (
        bytes([0, 0, 0, 0, 0, 1]), [])


def test_nothing_requested_sends_nothing():
    assert application_information(FLAGS, "patient", set()) == (b"", [])
