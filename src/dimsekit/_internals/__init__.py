"""The one seam for other libraries' internals: dimsekit's fast path.

Everything dimsekit does with what pynetdicom and pydicom keep private is
here, and only here:

* :mod:`.exchange`: reading responses in the calling thread (pynetdicom
  3.0's DUL and reactor internals), ~3x fewer CPU cycles per response,
  and writing C-FIND/C-CANCEL requests from it, encoded as pynetdicom
  encodes them (~0.3 ms less per request);
* :mod:`.datasets`: splitting plain identifiers and building Datasets
  without ``Dataset.__init__`` (pydicom 3.0's ``ENCODED_VR``,
  ``Dataset.__dict__``, ``ds._dict``), ~2x faster decoding and output;
  splitting sequence items for ``dump`` and looking them over at a third
  of the strict check's cost;
* :mod:`.encoding`: a batch row's identifier encoded from its template's
  elements, written once, and the row's own, written for the row
  (pydicom's ``write_data_element`` for every piece), ~6x less than
  encoding the whole row.

Each has a pure counterpart on the libraries' public API
(:class:`dimsekit.dimse.PureExchange`; pydicom's own reader in
:mod:`dimsekit.qr.decode`; pynetdicom's ``encode``), used when ``DIMSEKIT_PURE=1`` is set in the
environment or when :func:`fast_path` finds that an installed version
lacks what the fast path needs.  Both give the same results (the tests
run the network-facing suite both ways; ``tests/test_decode.py`` holds
the two decoders side by side).
"""

from __future__ import annotations

import functools
import os
from typing import Any

#: pydicom 3.0's RawDataElement, field by field (the splitter makes them as
#: tuples: :func:`dimsekit._internals.datasets.element_splitter`)
RAW_ELEMENT_FIELDS = ("tag", "VR", "length", "value", "value_tell", "is_implicit_VR",
                      "is_little_endian", "is_raw", "is_buffered")


def pure_requested() -> bool:
    """``DIMSEKIT_PURE`` is set to anything but "" or "0"."""
    return os.environ.get("DIMSEKIT_PURE", "") not in ("", "0")


@functools.cache
def _missing() -> tuple[str, ...]:
    """What the installed pynetdicom/pydicom lack of what the fast path
    uses (empty: all there).  Checked once, on first use."""
    missing = []
    try:
        from pynetdicom.dimse import DIMSEServiceProvider
        from pynetdicom.dul import DULServiceProvider

        for name in ("_is_transport_event", "_read_pdu_data", "_process_recv_primitive"):
            if not callable(getattr(DULServiceProvider, name, None)):
                missing.append(f"pynetdicom DULServiceProvider.{name}")
        if not callable(getattr(DIMSEServiceProvider, "receive_primitive", None)):
            missing.append("pynetdicom DIMSEServiceProvider.receive_primitive")
    except ImportError as exc:  # pragma: no cover - pynetdicom is a dependency
        missing.append(f"pynetdicom ({exc})")
    try:
        from pydicom.dataset import Dataset
        from pydicom.filereader import ENCODED_VR  # noqa: F401

        if not isinstance(getattr(Dataset(), "_dict", None), dict):
            missing.append("pydicom Dataset._dict")
        from pydicom.dataelem import RawDataElement

        if (getattr(RawDataElement, "_fields", None) != RAW_ELEMENT_FIELDS
                or getattr(RawDataElement, "_field_defaults", None)
                != {"is_raw": True, "is_buffered": False}):
            missing.append("pydicom RawDataElement fields " + ", ".join(RAW_ELEMENT_FIELDS))
    except ImportError:
        missing.append("pydicom filereader.ENCODED_VR")
    return tuple(missing)


def fast_path() -> bool:
    """Whether the fast path is in use: not ``DIMSEKIT_PURE``, and the
    installed versions have what it needs."""
    return not pure_requested() and not _missing()


def why_pure() -> str | None:
    """Why the pure path is in use (None: it is not), for ``-d`` logs."""
    if pure_requested():
        return "DIMSEKIT_PURE is set"
    missing = _missing()
    return f"not found: {', '.join(missing)}" if missing else None


def fast_exchange(assoc: Any) -> type | None:
    """The fast Exchange class for ``assoc``, or None: the pure one is to
    be used (``DIMSEKIT_PURE``, or this association lacks the per-instance
    internals the fast path pauses and reads through)."""
    if not fast_path():
        _say_pure(why_pure())
        return None
    dul = getattr(assoc, "dul", None)
    if (getattr(assoc, "_reactor_checkpoint", None) is None
            or not hasattr(assoc, "_is_paused")
            or getattr(dul, "_idle_timer", None) is None
            or not hasattr(getattr(getattr(assoc, "dimse", None), "msg_queue", None),
                           "queue")):
        _say_pure("this association lacks the reactor or DUL internals")
        return None
    from dimsekit._internals.exchange import FastExchange

    return FastExchange


def _say_pure(why: str | None) -> None:
    import logging

    logging.getLogger("dimsekit.dimse").debug("pure path: %s", why)
