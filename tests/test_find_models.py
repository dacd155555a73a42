"""Model inference and extended-negotiation bytes, as plain functions."""

import pytest

from dimsekit.plugins.find.models import FLAGS, application_information, infer_model


@pytest.mark.parametrize("level, model", [
    (None, "worklist"), ("PATIENT", "patient"), ("patient ", "patient"),
    ("STUDY", "study"), ("SERIES", "study"), ("IMAGE", "study"), ("", "study"),
])
def test_inference(level, model):
    assert infer_model(level)[0] == model


def test_application_information_sets_only_the_requested_bytes():
    info, skipped = application_information(FLAGS, "study", {"fuzzy-names", "dt-matching"})
    assert info == bytes([0, 1, 1, 0, 0]) and skipped == []


def test_worklist_skips_qr_only_flags():
    info, skipped = application_information(FLAGS, "worklist",
                                            {"relational-query", "timezone-adj"})
    assert info == bytes([0, 0, 0, 1]) and skipped == ["relational-query"]


def test_nothing_requested_sends_nothing():
    assert application_information(FLAGS, "patient", set()) == (b"", [])
