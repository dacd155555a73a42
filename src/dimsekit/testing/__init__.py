"""Testing support for dimsekit and for plugin authors.

- :class:`QuerySCP` -- an in-process recording DICOM peer (C-ECHO, C-FIND)
  on a free port, with the sample data of :mod:`dimsekit.testing.sampledata`::

      with QuerySCP(ae_title="ANY-SCP") as scp:
          ...  # talk to 127.0.0.1:scp.port
          scp.requests[-1].identifier  # what the SCU sent

- :class:`DimsekitRunner` -- runs the ``dimsekit`` command line in-process,
  built from a plugin manager of your choosing, with dimsekit's exit codes
  and one-line errors; :func:`run_dimsekit` runs it as a subprocess.
- a pytest plugin, :mod:`dimsekit.testing.pytest_plugin` (loaded through the
  ``pytest11`` entry point once dimsekit is installed), with the fixtures
  ``dimsekit_scp``, ``dimsekit_make_scp``, ``dimsekit_plugins``,
  ``dimsekit_cli`` and ``dimsekit_subprocess``.

The peer is three modules, one layer each: :mod:`~dimsekit.testing.matching`
(which sample datasets a C-FIND identifier matches), :mod:`~dimsekit.testing.recording`
(the records of what the peer received) and :mod:`~dimsekit.testing.server`
(:class:`QuerySCP` itself, on pynetdicom).

Names are imported on first use, so loading the pytest plugin costs no
pynetdicom import; using :class:`QuerySCP` or the sample data imports
pynetdicom and pydicom (the records and the matching engine need only
pydicom).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from dimsekit.testing import sampledata
    from dimsekit.testing.cli import DimsekitRunner, Result, run_dimsekit
    from dimsekit.testing.recording import (
        AssociationRecord,
        CancelRecord,
        ContextRecord,
        EchoRecord,
        FindRecord,
    )
    from dimsekit.testing.sampledata import SampleData, sample_data
    from dimsekit.testing.server import MODEL_UIDS, TRANSFER_SYNTAXES, QuerySCP

#: public name -> the module that defines it
_EXPORTS = {
    "QuerySCP": "dimsekit.testing.server",
    "MODEL_UIDS": "dimsekit.testing.server",
    "TRANSFER_SYNTAXES": "dimsekit.testing.server",
    "FindRecord": "dimsekit.testing.recording",
    "EchoRecord": "dimsekit.testing.recording",
    "AssociationRecord": "dimsekit.testing.recording",
    "CancelRecord": "dimsekit.testing.recording",
    "ContextRecord": "dimsekit.testing.recording",
    "SampleData": "dimsekit.testing.sampledata",
    "sample_data": "dimsekit.testing.sampledata",
    "DimsekitRunner": "dimsekit.testing.cli",
    "Result": "dimsekit.testing.cli",
    "run_dimsekit": "dimsekit.testing.cli",
}

#: the names of _EXPORTS, and the sampledata module
__all__ = [
    "MODEL_UIDS",
    "TRANSFER_SYNTAXES",
    "AssociationRecord",
    "CancelRecord",
    "ContextRecord",
    "DimsekitRunner",
    "EchoRecord",
    "FindRecord",
    "QuerySCP",
    "Result",
    "SampleData",
    "run_dimsekit",
    "sample_data",
    "sampledata",
]


def __getattr__(name: str) -> Any:
    if name == "sampledata":
        return importlib.import_module("dimsekit.testing.sampledata")
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # next time: a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
