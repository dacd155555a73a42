"""DIMSE status codes in words, for one-line reports."""

from __future__ import annotations


def describe_status(code: int, table: dict | None = None) -> str:
    """``0xA900 (Failure: Identifier does not match SOP class)``.

    ``table`` is one of pynetdicom's per-service status dictionaries
    (``pynetdicom.status.QR_FIND_SERVICE_CLASS_STATUS``...); the general
    DIMSE statuses are looked up too.
    """
    from pynetdicom.status import GENERAL_STATUS, code_to_category

    entry = (table or {}).get(code) or GENERAL_STATUS.get(code)
    if entry:
        category, text = entry
        return f"0x{code:04X} ({category}: {text})" if text else f"0x{code:04X} ({category})"
    return f"0x{code:04X} ({code_to_category(code)})"


def category(code: int) -> str:
    """pynetdicom's category for a status code: Success, Pending, Cancel, ..."""
    from pynetdicom.status import code_to_category

    return code_to_category(code)
