"""dimsekit: DICOM network clients (SCUs), as a Python library and a CLI.

The Python API (docs/python-api.md)::

    import dimsekit

    pacs = dimsekit.Peer("pacs.example.org", 104, called_aet="PACS")
    for ds in pacs.find({"QueryRetrieveLevel": "STUDY", "PatientName": "DOE*",
                         "StudyInstanceUID": ""}):
        print(ds.StudyInstanceUID)

Plugins (``dimsekit echo``, ...) build commands on :mod:`dimsekit.api`.
Names load on first use: ``import dimsekit`` costs next to nothing.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# a library logs and never prints: without a handler of the application's,
# Python's last-resort handler would write warnings to stderr
logging.getLogger(__name__).addHandler(logging.NullHandler())

#: public name -> module that defines it
_PUBLIC = {
    "Peer": "dimsekit.client",
    "Session": "dimsekit.client",
    "Results": "dimsekit.client",
    "Retrieved": "dimsekit.client",
    "OutputError": "dimsekit.errors",
    "TLSSettings": "dimsekit.tls",
    "DimsekitError": "dimsekit.errors",
    "UsageError": "dimsekit.errors",
    "AssociationError": "dimsekit.errors",
    "PeerFailure": "dimsekit.errors",
    "IncompleteError": "dimsekit.errors",
    "Interrupted": "dimsekit.errors",
    "ExitCode": "dimsekit.errors",
    "Batch": "dimsekit.qr.batch",
    "Match": "dimsekit.qr.batch",
    "RowEnd": "dimsekit.qr.batch",
    "BatchFile": "dimsekit.qr.rows",
}

__all__ = [
    "AssociationError",
    "Batch",
    "BatchFile",
    "Match",
    "RowEnd",
    "DimsekitError",
    "ExitCode",
    "IncompleteError",
    "Interrupted",
    "Peer",
    "PeerFailure",
    "Results",
    "Retrieved",
    "OutputError",
    "Session",
    "TLSSettings",
    "UsageError",
]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from dimsekit.client import Peer, Results, Retrieved, Session
    from dimsekit.errors import (
        AssociationError,
        DimsekitError,
        ExitCode,
        IncompleteError,
        Interrupted,
        OutputError,
        PeerFailure,
        UsageError,
    )
    from dimsekit.qr.batch import Batch, Match, RowEnd
    from dimsekit.qr.rows import BatchFile
    from dimsekit.tls import TLSSettings


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'dimsekit' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_PUBLIC})
